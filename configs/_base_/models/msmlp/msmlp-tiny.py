# MS-MLP-T ImageNet-1K classifier (official head order: the backbone pools, then LayerNorm, then the Linear head;
# docs/papers.md, "MS-MLP"). Small / base configs change arch, drop_path_rate and head.in_channels.
custom_imports = dict(imports=['mmmixer.models'], allow_failed_imports=False)
model = dict(
    type='ImageClassifier',
    # official stochastic depth: tiny 0.1, small 0.4, base 0.5
    backbone=dict(type='mmmixer.MSMLP', arch='tiny', drop_path_rate=0.1, gap_before_final_norm=True),
    neck=None,
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=768,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        # official _init_weights: trunc_normal(std=0.02) for Linear, zero bias
        init_cfg=dict(type='TruncNormal', layer='Linear', std=.02, bias=0.)),
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]),
)
