# Mask R-CNN + FPN, 3x schedule with multi-scale training (short side 480-800) and the DETR-style crop branch, COCO,
# Strip-MLP-T backbone: mmdet's Swin-T 3x config (the Swin / AS-MLP recipe, docs/papers.md, "Detection and
# segmentation recipes": AdamW 1e-4, wd 0.05, 36 epochs, steps at 27 and 33) with the backbone, neck widths and
# weight-decay rules swapped (no decay on norms and on the position tables `row_pos`/`col_pos`). Backbone settings as
# in mask-rcnn_stripmlp-t_fpn_1x_coco.py (img_size 224 strip weights run windowed at any size, BN with norm_eval=True,
# linear drop path 0.2).
_base_ = 'mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_ms-crop-3x_coco.py'
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
    paramwise_cfg=dict(
        _delete_=True, norm_decay_mult=0.,
        custom_keys={'.row_pos': dict(decay_mult=0.), '.col_pos': dict(decay_mult=0.)}))
