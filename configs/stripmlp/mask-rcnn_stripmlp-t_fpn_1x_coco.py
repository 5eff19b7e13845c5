# Mask R-CNN + FPN, 1x schedule, COCO, with a Strip-MLP-T backbone: mmdet's R-50 config with the backbone, the neck
# widths and the optimizer swapped. Recipe of the Swin / AS-MLP detection repos (docs/papers.md, "Detection and
# segmentation recipes"): AdamW lr 1e-4, wd 0.05, no decay on norms (every BN and LN) and on the CGSMM position tables
# (`row_pos`, `col_pos`); Strip-MLP has no layer scale, and GRN gamma/beta keep their decay as in the official
# ImageNet training (there they are 4-D and thus decayed). Drop path 0.2 increasing linearly (the Swin / AS-MLP-T
# setting; its mean, 0.1, is the official uniform 0.1 of the ImageNet training). img_size=224: the strip MLPs and
# position tables keep their ImageNet shapes and load with no resize; at other sizes each strip MLP runs on
# overlapping 224-px-trained windows along its axis (StripMLP docstring, "Any input size"). BatchNorm: norm_eval=True,
# the mmdet convention for BN backbones at 2 images per GPU (mmdet's ResNet: BN with requires_grad=True +
# norm_eval=True) and what MLP-DINO, Strip-MLP's own detector, does (all BN layers in eval mode; docs/papers.md,
# "Strip-MLP"). The fresh output norms norm0-norm2 then keep running statistics 0/1 (identity normalisation, trained
# affine): like MLP-DINO, which feeds stages 2-3 to its neck un-normalised.
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
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
        out_indices=(0, 1, 2, 3),
        gap_before_final_norm=False,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/stripmlp-tiny_in1k.pth', prefix='backbone.')),
    neck=dict(in_channels=[80, 160, 320, 640]))

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(_delete_=True, type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(
        norm_decay_mult=0., custom_keys={'.row_pos': dict(decay_mult=0.), '.col_pos': dict(decay_mult=0.)}))
