# Strip-MLP-T on ImageNet-1K: the official 300-epoch recipe (Med-Process/Strip_MLP config.py, main.py,
# models/build.py; docs/papers.md, "Strip-MLP"): AdamW (eps 1e-8, betas 0.9/0.999), weight decay 0.05,
# lr 5e-4, 20 warmup epochs from 5e-7, cosine to 5e-6 (per iteration, timm CosineLRScheduler), grad clip 5.0,
# RandAugment rand-m9-mstd0.5-inc1, mixup 0.8 / cutmix 1.0, label smoothing 0.1, random erasing 0.25 ('pixel' mode),
# bicubic, test resize 256 -> center crop 224. The colour jitter 0.4 of config.py has no effect there (timm ignores it
# when RandAugment is set).
# LR: main.py computes "linearly scaled" LRs (even dividing by EPOCHS, not 512) but never writes them back to the
# config, so the optimizer runs with the UNSCALED 5e-4 / 5e-7 / 5e-6 whatever the batch size; we use those values and
# leave auto_scale_lr off. The paper's total batch size is not stated (config.py: 64 per GPU; README example: 128).
_base_ = [
    '../_base_/models/stripmlp/stripmlp-tiny.py',
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    'mmpretrain::_base_/default_runtime.py',
]

# 8 GPUs x 128 images
train_dataloader = dict(batch_size=128)

optim_wrapper = dict(
    optimizer=dict(lr=5e-4),  # the effective official lr (see above), not 5e-4 x batch / 512
    # Swin code base optimizer (optimizer.py is not in the Strip-MLP repo; the Swin one it is built on): no decay for
    # 1-D parameters and biases. GRN gamma/beta are 4-D (1, 1, 1, D) there and thus decayed; ours are 1-D.
    paramwise_cfg=dict(custom_keys={'.grn.': dict(decay_mult=1.0)}),
    clip_grad=dict(max_norm=5.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, end=20, convert_to_iter_based=True),  # 5e-7 -> 5e-4
    dict(type='CosineAnnealingLR', eta_min=5e-6, by_epoch=True, begin=20, convert_to_iter_based=True),
]
auto_scale_lr = dict(base_batch_size=1024, enable=False)
