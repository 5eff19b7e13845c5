_base_ = './mask-rcnn_posmlp-t_fpn_1x_coco.py'
# PosMLP-B (our arch, see configs/posmlp/README.md); drop path 0.3: the AS-MLP-B detection setting (docs/papers.md,
# "Detection and segmentation recipes")
model = dict(
    backbone=dict(
        arch='base', drop_path_rate=0.3, init_cfg=dict(checkpoint='checkpoints/posmlp-base_in1k.pth')),
    neck=dict(in_channels=[192, 384, 768, 1536]))
