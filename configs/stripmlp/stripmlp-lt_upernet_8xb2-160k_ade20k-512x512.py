_base_ = './stripmlp-t_upernet_8xb2-160k_ade20k-512x512.py'
# Strip-MLP-T* (light tiny, 12 blocks); drop path 0.2: our choice, below the 0.3 of Swin-T / AS-MLP-T for the
# shallower model (no peer has a segmentation setting for an 18M backbone)
model = dict(
    backbone=dict(
        arch='light_tiny', drop_path_rate=0.2,
        init_cfg=dict(checkpoint='checkpoints/stripmlp-light-tiny_in1k.pth')),
    decode_head=dict(in_channels=[80, 160, 320, 640]),
    auxiliary_head=dict(in_channels=320))
