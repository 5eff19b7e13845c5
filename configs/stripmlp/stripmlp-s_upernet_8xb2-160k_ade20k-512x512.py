_base_ = './stripmlp-t_upernet_8xb2-160k_ade20k-512x512.py'
# Strip-MLP-S; drop path 0.3: the Swin / AS-MLP segmentation setting for this size (docs/papers.md, "Detection and
# segmentation recipes")
model = dict(
    backbone=dict(
        arch='small', drop_path_rate=0.3, init_cfg=dict(checkpoint='checkpoints/stripmlp-small_in1k.pth')),
    decode_head=dict(in_channels=[96, 192, 384, 768]),
    auxiliary_head=dict(in_channels=384))
