# RetinaNet + FPN, 1x schedule, COCO, Swin + MS-MLP hybrid (tiny) backbone: mmdet's R-50 RetinaNet config with the
# backbone (stages 2-4 only, as mmdet's Swin RetinaNet: unused outputs would be unused parameters under DDP), the neck
# and the optimizer swapped (AdamW 1e-4, wd 0.05, no decay on norms, relative position bias tables and MS layer scales
# `.gamma`, docs/papers.md, "Detection and segmentation recipes"). Backbone settings as in
# mask-rcnn_swin-msmlp-t_fpn_1x_coco.py.
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
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
        out_indices=(1, 2, 3),
        gap_before_final_norm=False,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/swin-msmlp-tiny_in1k.pth', prefix='backbone.')),
    neck=dict(in_channels=[192, 384, 768], start_level=0, num_outs=5))

optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(
        norm_decay_mult=0.,
        custom_keys={'.relative_position_bias_table': dict(decay_mult=0.), '.gamma': dict(decay_mult=0.)}))
