_base_ = './mask-rcnn_stripmlp-t_fpn_1x_coco.py'
# Strip-MLP-T* (light tiny, 12 blocks); drop path 0.1: our choice for the shallower model, the Swin-T 1x setting of
# the official Swin detection repo (docs/papers.md, "Detection and segmentation recipes"); no peer has a detection
# setting for an 18M backbone
model = dict(
    backbone=dict(
        arch='light_tiny', drop_path_rate=0.1,
        init_cfg=dict(checkpoint='checkpoints/stripmlp-light-tiny_in1k.pth')),
    neck=dict(in_channels=[80, 160, 320, 640]))
