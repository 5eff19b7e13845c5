# Mask R-CNN + FPN, 3x schedule with multi-scale training (short side 480-800) and the DETR-style crop branch, COCO,
# Swin + MS-MLP hybrid (tiny) backbone: mmdet's Swin-T 3x config (the Swin / AS-MLP recipe, docs/papers.md, "Detection
# and segmentation recipes": AdamW 1e-4, wd 0.05, 36 epochs, steps at 27 and 33) with the backbone, neck widths and
# weight-decay rules swapped (no decay on norms, relative position bias tables and MS layer scales `.gamma`). Backbone
# settings as in mask-rcnn_swin-msmlp-t_fpn_1x_coco.py.
_base_ = 'mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_ms-crop-3x_coco.py'
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
    paramwise_cfg=dict(
        _delete_=True, norm_decay_mult=0.,
        custom_keys={'.relative_position_bias_table': dict(decay_mult=0.), '.gamma': dict(decay_mult=0.)}))
