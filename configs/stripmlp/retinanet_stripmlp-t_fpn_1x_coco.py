# RetinaNet + FPN, 1x schedule, COCO, Strip-MLP-T backbone: mmdet's R-50 RetinaNet config with the backbone (stages
# 2-4 only, as mmdet's Swin RetinaNet: unused outputs would be unused parameters under DDP), the neck and the
# optimizer swapped (AdamW 1e-4, wd 0.05, no decay on norms and on the position tables `row_pos`/`col_pos`,
# docs/papers.md, "Detection and segmentation recipes"). Backbone settings as in mask-rcnn_stripmlp-t_fpn_1x_coco.py.
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmmixer.models'], allow_failed_imports=False)

# ImageNet-1K weights: the official release converted by tools/model_converters/stripmlp_to_mmmixer.py into
# this path (README "Official weights"; the official file itself also works: converted on load), or a
# checkpoint of configs/stripmlp/stripmlp-tiny_8xb128_in1k.py.

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmmixer.StripMLP',
        arch='tiny',
        img_size=224,
        drop_path_rate=0.2,
        drop_path_mode='linear',
        out_indices=(1, 2, 3),
        gap_before_final_norm=False,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/stripmlp-tiny_in1k.pth', prefix='backbone.')),
    neck=dict(in_channels=[160, 320, 640], start_level=0, num_outs=5))

optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(
        norm_decay_mult=0., custom_keys={'.row_pos': dict(decay_mult=0.), '.col_pos': dict(decay_mult=0.)}))
