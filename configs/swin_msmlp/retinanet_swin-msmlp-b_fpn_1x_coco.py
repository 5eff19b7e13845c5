_base_ = './retinanet_swin-msmlp-t_fpn_1x_coco.py'
# Swin + MS-MLP hybrid (base); drop path 0.3: the AS-MLP-B detection setting (docs/papers.md, "Detection and
# segmentation recipes")
model = dict(
    backbone=dict(
        arch='base', drop_path_rate=0.3, init_cfg=dict(checkpoint='checkpoints/swin-msmlp-base_in1k.pth')),
    neck=dict(in_channels=[256, 512, 1024]))
