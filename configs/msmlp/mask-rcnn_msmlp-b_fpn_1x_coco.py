_base_ = './mask-rcnn_msmlp-t_fpn_1x_coco.py'
# MS-MLP-B; drop path 0.3: the AS-MLP-B detection setting (docs/papers.md, "Detection and segmentation recipes")
model = dict(
    backbone=dict(
        arch='base', drop_path_rate=0.3,
        init_cfg=dict(checkpoint='https://tsciencescu.blob.core.windows.net/projectshzheng/MSMLP/released_model/'
                      'msmlp_base_patch4/msmlp_base_patch4_ckpt_epoch299.pth')),
    neck=dict(in_channels=[128, 256, 512, 1024]))
