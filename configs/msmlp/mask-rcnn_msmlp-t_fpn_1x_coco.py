# Mask R-CNN + FPN, 1x schedule, COCO, with an MS-MLP-T backbone: mmdet's R-50 config with the backbone, the neck
# widths and the optimizer swapped. Recipe of the Swin / AS-MLP detection repos (docs/papers.md, "Detection and
# segmentation recipes"): AdamW lr 1e-4, wd 0.05, no decay on norms and layer scales; drop path 0.2 (AS-MLP-T).
# `shift_mode='zero'`: shifts do not wrap around the image border (see configs/msmlp/README.md).
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmmixer.models'], allow_failed_imports=False)

# ImageNet-1K weights: the official MS-MLP-T release (converted in memory when loaded), or a checkpoint of
# configs/msmlp/msmlp-tiny_8xb128_in1k.py / a file written by tools/model_converters/msmlp_to_mmmixer.py.

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmmixer.MSMLP',
        arch='tiny',
        drop_path_rate=0.2,
        out_indices=(0, 1, 2, 3),
        gap_before_final_norm=False,
        shift_mode='zero',
        init_cfg=dict(
            type='Pretrained',
            prefix='backbone.',
            checkpoint='https://tsciencescu.blob.core.windows.net/projectshzheng/MSMLP/released_model/'
            'msmlp_tiny_patch4/msmlp_tiny_patch4_ckpt_epoch299.pth')),
    neck=dict(in_channels=[96, 192, 384, 768]))

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(_delete_=True, type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0., custom_keys={'.gamma': dict(decay_mult=0.)}))
