_base_ = './retinanet_stripmlp-t_fpn_1x_coco.py'
# Strip-MLP-T* (light tiny, 12 blocks); drop path 0.1: our choice (see mask-rcnn_stripmlp-lt_fpn_1x_coco.py)
model = dict(
    backbone=dict(
        arch='light_tiny', drop_path_rate=0.1,
        init_cfg=dict(checkpoint='checkpoints/stripmlp-light-tiny_in1k.pth')),
    neck=dict(in_channels=[160, 320, 640]))
