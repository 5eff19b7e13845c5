_base_ = './swin-msmlp-t_upernet_8xb2-160k_ade20k-512x512.py'
# Swin + MS-MLP hybrid (base); drop path 0.5: the AS-MLP-B segmentation setting for this size (docs/papers.md,
# "Detection and segmentation recipes")
model = dict(
    backbone=dict(
        arch='base', drop_path_rate=0.5, init_cfg=dict(checkpoint='checkpoints/swin-msmlp-base_in1k.pth')),
    decode_head=dict(in_channels=[128, 256, 512, 1024]),
    auxiliary_head=dict(in_channels=512))
