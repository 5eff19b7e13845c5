_base_ = './mask-rcnn_stripmlp-t_fpn_1x_coco.py'
# Strip-MLP-B; drop path 0.3: the AS-MLP-B detection setting (docs/papers.md, "Detection and segmentation recipes")
model = dict(
    backbone=dict(
        arch='base', drop_path_rate=0.3, init_cfg=dict(checkpoint='checkpoints/stripmlp-base_in1k.pth')),
    neck=dict(in_channels=[112, 224, 448, 896]))
