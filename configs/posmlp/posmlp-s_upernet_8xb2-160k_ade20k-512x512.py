_base_ = './posmlp-t_upernet_8xb2-160k_ade20k-512x512.py'
# PosMLP-S; drop path 0.3: the Swin / AS-MLP segmentation setting for this size (docs/papers.md, "Detection and
# segmentation recipes")
model = dict(
    backbone=dict(
        arch='small', drop_path_rate=0.3, init_cfg=dict(checkpoint='checkpoints/posmlp-small_in1k.pth')),
    decode_head=dict(in_channels=[128, 256, 512, 1024]),
    auxiliary_head=dict(in_channels=512))
