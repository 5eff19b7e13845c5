# Mask R-CNN + FPN, 3x schedule with multi-scale training (short side 480-800) and the DETR-style crop branch, COCO,
# MS-MLP-T backbone: mmdet's Swin-T 3x config (the Swin / AS-MLP recipe, docs/papers.md, "Detection and segmentation
# recipes": AdamW 1e-4, wd 0.05, 36 epochs, steps at 27 and 33) with the backbone, neck widths and weight-decay rules
# swapped.
_base_ = 'mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_ms-crop-3x_coco.py'
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
    paramwise_cfg=dict(_delete_=True, norm_decay_mult=0., custom_keys={'.gamma': dict(decay_mult=0.)}))
