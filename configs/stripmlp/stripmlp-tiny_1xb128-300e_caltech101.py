# Strip-MLP-T trained from scratch on Caltech-101 as in the paper's small-data experiment (Med-Process/Strip_MLP
# configs/smlp_tiny_alpha3_path4_224_categories101.yaml + config.py defaults; docs/papers.md, "Strip-MLP"): the
# ImageNet recipe of stripmlp-tiny_8xb128_in1k.py unchanged (300 epochs, AdamW lr 5e-4 unscaled, wd 0.05, 20 warmup
# epochs, cosine to 5e-6, RandAugment, mixup/cutmix, label smoothing 0.1, random erasing 0.25, 224 px), 101 classes,
# on the official 80/20 per-class split (seed 1024) written by     python tools/dataset_converters/caltech101_split.py
# path/to/101_ObjectCategories data/caltech101 as folders data/caltech101/{train,val}/<class>/*.jpg (BACKGROUND_Google
# left out: the official config has 101 classes). Labels are the sorted class names, as torchvision ImageFolder gives
# them to the official code. Batch: 128 on one process (README example command); the lr does not depend on it. Other
# variants: set model.backbone.arch ('light_tiny' / 'small' / 'base') and model.head.in_channels (640/768/896).
_base_ = './stripmlp-tiny_8xb128_in1k.py'

data_root = 'data/caltech101'
model = dict(head=dict(num_classes=101))
data_preprocessor = dict(num_classes=101)

# ImageFolder-style folders (mmpretrain CustomDataset scans data_prefix; classes sorted by name)
train_dataloader = dict(
    dataset=dict(type='CustomDataset', data_root=data_root, data_prefix='train', ann_file='', _delete_=True,
                 pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(
    batch_size=128,
    dataset=dict(type='CustomDataset', data_root=data_root, data_prefix='val', ann_file='', _delete_=True,
                 pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader
auto_scale_lr = dict(base_batch_size=128)
