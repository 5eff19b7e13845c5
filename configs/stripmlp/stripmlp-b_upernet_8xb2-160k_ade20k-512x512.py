_base_ = './stripmlp-t_upernet_8xb2-160k_ade20k-512x512.py'
# Strip-MLP-B; drop path 0.5: the Swin / AS-MLP segmentation setting for this size (docs/papers.md, "Detection and
# segmentation recipes")
model = dict(
    backbone=dict(
        arch='base', drop_path_rate=0.5, init_cfg=dict(checkpoint='checkpoints/stripmlp-base_in1k.pth')),
    decode_head=dict(in_channels=[112, 224, 448, 896]),
    auxiliary_head=dict(in_channels=448))
