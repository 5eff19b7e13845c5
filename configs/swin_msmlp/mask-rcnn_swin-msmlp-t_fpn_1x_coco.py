# Mask R-CNN + FPN, 1x schedule, COCO, with a Swin + MS-MLP hybrid (tiny) backbone: mmdet's R-50 config with the
# backbone, the neck widths and the optimizer swapped. Recipe of the Swin / AS-MLP detection repos (docs/papers.md,
# "Detection and segmentation recipes"): AdamW lr 1e-4, wd 0.05, no decay on norms, on the attention blocks'
# relative position bias tables and on the MS blocks' layer scales (`.gamma`); drop path 0.2 (AS-MLP-T, mmdet's
# Swin-T). The parameter names are Swin's (mmpretrain SwinBlock), so the rules name them explicitly instead of
# relying on mmdet's Swin 'norm' key.
# `ms_cfg=dict(shift_mode='zero')`: the MS blocks' shifts do not wrap around the image border (as MS-MLP's dense
# configs); `pad_small_map=True`: any map size works for the attention blocks (mmpretrain ShiftWindowMSA).
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmmixer.models'], allow_failed_imports=False)

# ImageNet-1K weights: a checkpoint of configs/swin_msmlp/swin-msmlp-tiny_16xb64_in1k.py, or mmpretrain's
# Swin-T classifier (Swin tensors loaded, MS blocks new; see configs/swin_msmlp/README.md).

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmmixer.SwinMSMLP',
        arch='tiny',
        block_pattern='ms_shift',
        ms_cfg=dict(shift_mode='zero'),
        pad_small_map=True,
        drop_path_rate=0.2,
        out_indices=(0, 1, 2, 3),
        gap_before_final_norm=False,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/swin-msmlp-tiny_in1k.pth', prefix='backbone.')),
    neck=dict(in_channels=[96, 192, 384, 768]))

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(_delete_=True, type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(
        norm_decay_mult=0.,
        custom_keys={'.relative_position_bias_table': dict(decay_mult=0.), '.gamma': dict(decay_mult=0.)}))
