# PosMLP-T (GQPE) ImageNet-1K classifier (official order: LayerNorm per position, then average pooling, then the
# Linear head; docs/papers.md, "PosMLP"). Small / base configs change arch and head.in_channels.
custom_imports = dict(imports=['mmmixer.models'], allow_failed_imports=False)
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='mmmixer.PosMLP',
        arch='tiny',
        pos_type='gqpe',
        window_size=(14, 14, 14, 7),
        drop_rate=0.02333,  # official yaml `drop` (after each block's output projection)
        drop_path_rate=0.1,
        gap_before_final_norm=False),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=768,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        # official _init_weights: trunc_normal(std=0.02) for Linear, zero bias
        init_cfg=dict(type='TruncNormal', layer='Linear', std=.02, bias=0.)),
    # RandomBatchAugment picks one of the two per batch: timm mixup_switch_prob 0.5, mixup_prob 1.0
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.5), dict(type='CutMix', alpha=1.0)]),
)
