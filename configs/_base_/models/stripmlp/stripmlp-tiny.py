# Strip-MLP-T ImageNet-1K classifier (official head order: BatchNorm2d on the map, spatial mean, Linear head;
# docs/papers.md, "Strip-MLP"). Other sizes change arch and head.in_channels (T* 640, T 640, S 768, B 896).
custom_imports = dict(imports=['mmmixer.models'], allow_failed_imports=False)
model = dict(
    type='ImageClassifier',
    # official: drop path 0.1 in every block (hard-coded in BasicBlock; DROP_PATH_RATE and DROP_RATE are ignored)
    backbone=dict(
        type='mmmixer.StripMLP',
        arch='tiny',
        img_size=224,
        drop_path_rate=0.1,
        drop_path_mode='uniform',
        gap_before_final_norm=True),
    neck=None,
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=640,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        topk=(1, 5),
        init_cfg=None),  # official: PyTorch's default nn.Linear init
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]),
)
