# Mask R-CNN + FPN, 1x schedule, COCO, with a PosMLP-T backbone: mmdet's R-50 config with the backbone, the neck
# widths and the optimizer swapped. Recipe of the Swin / AS-MLP detection repos (docs/papers.md, "Detection and
# segmentation recipes"): AdamW lr 1e-4, wd 0.05, no decay on norms and on the positional parameters of the gating
# units (`pos_map.*`: GQPE centres and spreads, the per-position bias, the LRPE table); PosMLP has no layer scale.
# Drop path 0.2 (AS-MLP-T). Windows stay at the ImageNet 14/14/14/7, so every positional parameter loads unchanged;
# each stage pads its map to window multiples and masks the padding (mmmixer/models/backbones/pos_mlp.py), so any
# image size works. Stem BatchNorm: norm_eval=True, the mmdet convention for BN backbones at 2 images per GPU (mmdet's
# ResNet: BN with requires_grad=True + norm_eval=True): ImageNet running statistics kept, affine parameters trained.
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmmixer.models'], allow_failed_imports=False)

# ImageNet-1K weights: the official release converted by tools/model_converters/posmlp_to_mmmixer.py into
# this path (README "Official weights"; the official file itself also works: converted on load), or a
# checkpoint of configs/posmlp/posmlp-tiny_8xb128_in1k.py.

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmmixer.PosMLP',
        arch='tiny',
        pos_type='gqpe',
        window_size=(14, 14, 14, 7),
        drop_path_rate=0.2,
        out_indices=(0, 1, 2, 3),
        gap_before_final_norm=False,
        stem_norm_cfg=dict(type='BN', eps=1e-6, requires_grad=True),
        norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/posmlp-tiny_in1k.pth', prefix='backbone.')),
    neck=dict(in_channels=[96, 192, 384, 768]))

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(_delete_=True, type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0., custom_keys={'.pos_map.': dict(decay_mult=0.)}))
