# Swin + MS-MLP hybrid (tiny) ImageNet-1K classifier, laid out as mmpretrain's Swin classifier (per-token
# LayerNorm, GlobalAveragePooling neck, Linear head), so that block_pattern='swin' is exactly mmpretrain's Swin-T.
# The block pattern 'ms_shift' (MS blocks in place of the shifted-window attention blocks) is OUR choice: the
# MS-MLP paper's hybrid layout is not available (docs/papers.md, "Swin + MS-MLP hybrid").
custom_imports = dict(imports=['mmmixer.models'], allow_failed_imports=False)
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='mmmixer.SwinMSMLP',
        arch='tiny',
        block_pattern='ms_shift',  # alternatives: 'ms_early', 'ms_all', 'swin' (= Swin Transformer)
        drop_path_rate=0.2,  # Swin: tiny 0.2, small 0.3, base 0.5
        # ImageNet at 224 only: like the original Swin classifier, skip the window shift when a map equals
        # the window (stage 4); only matters for patterns with shifted-window blocks ('swin', 'ms_early').
        pad_small_map=False,
        gap_before_final_norm=False,
        # To start from mmpretrain's Swin-T ImageNet weights (patch embedding, attention blocks,
        # merging layers; the MS blocks stay newly initialised and the split is logged), uncomment:
        # init_cfg=dict(
        #     type='Pretrained', prefix='backbone.',
        #     checkpoint='https://download.openmmlab.com/mmclassification/v0/swin-transformer/'
        #                'swin_tiny_224_b16x64_300e_imagenet_20210616_090925-66df6be6.pth'),
    ),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=768,
        init_cfg=None,  # the classifier-level init_cfg below initialises the head (as mmpretrain's Swin)
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        cal_acc=False),
    init_cfg=[
        dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.),
        dict(type='Constant', layer='LayerNorm', val=1., bias=0.)
    ],
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]),
)
