# Mask R-CNN + FPN, 3x schedule with multi-scale training (short side 480-800) and the DETR-style crop branch, COCO,
# PosMLP-T backbone: mmdet's Swin-T 3x config (the Swin / AS-MLP recipe, docs/papers.md, "Detection and segmentation
# recipes": AdamW 1e-4, wd 0.05, 36 epochs, steps at 27 and 33) with the backbone, neck widths and weight-decay rules
# swapped (no decay on norms and on the positional parameters `pos_map.*`). Backbone settings as in
# mask-rcnn_posmlp-t_fpn_1x_coco.py (windows 14/14/14/7 with padding, stem BN with norm_eval=True, drop path 0.2).
_base_ = 'mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_ms-crop-3x_coco.py'
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
    paramwise_cfg=dict(_delete_=True, norm_decay_mult=0., custom_keys={'.pos_map.': dict(decay_mult=0.)}))
