_base_ = './mask-rcnn_msmlp-t_fpn_ms-crop-3x_coco.py'
# MS-MLP-S; drop path 0.2: the AS-MLP-S detection setting (docs/papers.md, "Detection and segmentation recipes")
model = dict(
    backbone=dict(
        arch='small', drop_path_rate=0.2,
        init_cfg=dict(checkpoint='https://tsciencescu.blob.core.windows.net/projectshzheng/MSMLP/released_model/'
                      'msmlp_small_patch4/msmlp_small_patch4_ckpt_epoch299.pth')),
    neck=dict(in_channels=[96, 192, 384, 768]))
