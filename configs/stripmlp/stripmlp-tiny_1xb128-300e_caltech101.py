# Strip-MLP-T trained from scratch on Caltech-101 as in the paper's small-data experiment (Med-Process/Strip_MLP
# configs/smlp_tiny_alpha3_path4_224_categories101.yaml + config.py defaults; ../shared/reference/papers.md §3.1-3.2):
# the ImageNet recipe unchanged (300 epochs, AdamW lr 5e-4 unscaled, wd 0.05, 20 warmup epochs, cosine to 5e-6,
# RandAugment, mixup/cutmix, label smoothing 0.1, random erasing 0.25, 224 px), 101 classes, on the official
# 80/20 per-class split (seed 1024) written by
#     python tools/dataset_converters/caltech101_split.py path/to/101_ObjectCategories data/caltech101
# as folders data/caltech101/{train,val}/<class>/*.jpg (BACKGROUND_Google left out: the official config has 101
# classes). Labels are the sorted class names, as torchvision ImageFolder gives them to the official code.
# Batch: 128 on one process (README example command); the lr does not depend on it.
# Other variants: set model.backbone.arch ('light_tiny' / 'small' / 'base') and model.head.in_channels (640/768/896).
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmmixer.models'], allow_failed_imports=False)

data_root = 'data/caltech101'
model = dict(
    type='ImageClassifier',
    backbone=dict(type='mmmixer.StripMLP', arch='tiny', img_size=224, drop_path_rate=0.1, drop_path_mode='uniform'),
    neck=None,
    head=dict(
        type='LinearClsHead',
        num_classes=101,
        in_channels=640,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        topk=(1, 5),
        init_cfg=None),
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]),
)
data_preprocessor = dict(num_classes=101)

# ImageFolder-style folders (mmpretrain CustomDataset scans data_prefix; classes sorted by name)
train_dataloader = dict(
    batch_size=128,
    dataset=dict(type='CustomDataset', data_root=data_root, data_prefix='train', ann_file='', _delete_=True,
                 pipeline={{_base_.train_pipeline}}),
)
val_dataloader = dict(
    batch_size=128,
    dataset=dict(type='CustomDataset', data_root=data_root, data_prefix='val', ann_file='', _delete_=True,
                 pipeline={{_base_.test_pipeline}}),
)
test_dataloader = val_dataloader

optim_wrapper = dict(
    optimizer=dict(lr=5e-4),  # the effective official lr: main.py never applies its lr scaling
    paramwise_cfg=dict(custom_keys={'.grn.': dict(decay_mult=1.0)}),  # see stripmlp-tiny_8xb128_in1k.py
    clip_grad=dict(max_norm=5.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, end=20, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=5e-6, by_epoch=True, begin=20, convert_to_iter_based=True),
]
auto_scale_lr = dict(base_batch_size=128, enable=False)
