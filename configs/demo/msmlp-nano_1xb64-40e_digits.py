# Demo: a ~1M-parameter MS-MLP trained from scratch on real handwritten digits (scikit-learn's bundled UCI
# digits, 1,437 train / 360 val scans upsampled to 32x32; written by tools/dataset_converters/digits_to_imagenet.py)
# on CPU in a few minutes. `bash tools/run_demo.sh` generates the data and runs
# `mim train mmmixer msmlp-nano_1xb64-40e_digits.py`.
_base_ = ['mmpretrain::_base_/default_runtime.py']
custom_imports = dict(imports=['mmmixer.models'], allow_failed_imports=False)

data_root = 'data/digits'
num_classes = 10

model = dict(
    type='ImageClassifier',
    # stage widths 32/64/128/256, one MS block per stage except two in stage 3; 32x32 input -> 8/4/2/1 maps
    backbone=dict(
        type='mmmixer.MSMLP',
        arch=dict(embed_dims=32, depths=[1, 1, 2, 1]),
        drop_path_rate=0.05,
        gap_before_final_norm=True),  # official head order: pool -> LayerNorm -> Linear
    neck=None,
    head=dict(
        type='LinearClsHead',
        num_classes=num_classes,
        in_channels=256,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        topk=(1, ),
        init_cfg=dict(type='TruncNormal', layer='Linear', std=.02, bias=0.)),
)

data_preprocessor = dict(num_classes=num_classes, mean=[127.5] * 3, std=[127.5] * 3, to_rgb=False)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomCrop', crop_size=32, padding=3),  # small translations; no flips for digits
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]

train_dataloader = dict(
    batch_size=64,
    num_workers=2,
    persistent_workers=True,
    dataset=dict(type='CustomDataset', data_root=data_root, ann_file='meta/train.txt', data_prefix='',
                 pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True),
)
val_dataloader = dict(
    batch_size=128,
    num_workers=2,
    persistent_workers=True,
    dataset=dict(type='CustomDataset', data_root=data_root, ann_file='meta/val.txt', data_prefix='',
                 pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_dataloader = val_dataloader
test_evaluator = val_evaluator

max_epochs = 40
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0., flat_decay_mult=0.),
    clip_grad=dict(max_norm=5.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=True, end=2, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=2, end=max_epochs),
]
# mmengine's epoch loop with position-seeded randomness: `--resume` from any checkpoint, even one written mid-epoch
# (default_hooks.checkpoint.by_epoch=False), reproduces the uninterrupted run bit for bit (docs/reproducibility.md)
train_cfg = dict(type='mmmixer.ExactResumeEpochBasedTrainLoop', max_epochs=max_epochs, val_interval=10)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=2, save_best='accuracy/top1',
                    rule='greater'))
randomness = dict(seed=0, deterministic=False)
