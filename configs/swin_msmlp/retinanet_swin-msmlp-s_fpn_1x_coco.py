_base_ = './retinanet_swin-msmlp-t_fpn_1x_coco.py'
# Swin + MS-MLP hybrid (small); drop path 0.2: the AS-MLP-S detection setting (docs/papers.md, "Detection and
# segmentation recipes")
model = dict(
    backbone=dict(
        arch='small', drop_path_rate=0.2, init_cfg=dict(checkpoint='checkpoints/swin-msmlp-small_in1k.pth')),
    neck=dict(in_channels=[192, 384, 768]))
