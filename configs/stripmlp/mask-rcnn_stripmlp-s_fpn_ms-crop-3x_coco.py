_base_ = './mask-rcnn_stripmlp-t_fpn_ms-crop-3x_coco.py'
# Strip-MLP-S; drop path 0.2: the AS-MLP-S detection setting (docs/papers.md, "Detection and segmentation recipes")
model = dict(
    backbone=dict(
        arch='small', drop_path_rate=0.2, init_cfg=dict(checkpoint='checkpoints/stripmlp-small_in1k.pth')),
    neck=dict(in_channels=[96, 192, 384, 768]))
