# PosMLP-T (GQPE) on ImageNet-1K: the official recipe (Zhicaiwww/PosMLP config/PosMLP_T.yaml, timm 0.4.5 train
# script; docs/papers.md, "PosMLP"): 300 epochs + 10 cooldown epochs at the minimum lr, AdamW (eps 1e-5), lr 2e-3 at
# total batch 512 (4 GPUs x 128), wd 0.067 (timm rule: no decay on 1-D parameters and biases), linear warmup from
# 1e-5 over 10 epochs, cosine to 1e-6, grad clip 1.0 (norm), EMA 0.99992 (timm ModelEma, buffers included),
# RandAugment rand-m6-n3-mstd1.0-inc1, no colour jitter (timm skips it with RandAugment), hflip 0.5, crop scale
# (0.08, 1) ratio (0.67, 1.5), mixup 0.5 / cutmix 1.0 (switch 0.5), label smoothing 0.1, no random erasing, drop
# 0.02333, drop_path 0.1, test crop_pct 0.9 (resize 248 -> centre crop 224, bicubic), seed 42.
# The official run used native AMP: pass --amp to tools/train.py.
_base_ = [
    '../_base_/models/posmlp/posmlp-tiny.py',
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/default_runtime.py',
]

bgr_mean = [103.53, 116.28, 123.675]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    # timm trains with a random (bilinear/bicubic) interpolation per image; bicubic here
    dict(type='RandomResizedCrop', scale=224, crop_ratio_range=(0.08, 1.0), aspect_ratio_range=(0.67, 1.5),
         backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(
        type='RandAugment',
        policies='timm_increasing',
        num_policies=3,
        total_level=10,
        magnitude_level=6,
        magnitude_std=1.0,
        hparams=dict(pad_val=[round(x) for x in bgr_mean], interpolation='bicubic')),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=248, edge='short', backend='pillow', interpolation='bicubic'),  # 224 / 0.9
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=128, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=128, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

# 8 GPUs x 128 = 1024 images per step; the official lr 2e-3 was for 512 (enable --auto-scale-lr to scale it)
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.067, eps=1e-5, betas=(0.9, 0.999)),
    # timm create_optimizer: no weight decay for 1-D parameters (norms) and biases; the positional parameters
    # (attention_centers, attention_spreads, token_proj_n_bias, relative_position_bias_table) are decayed
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0, flat_decay_mult=0.0),
    clip_grad=dict(max_norm=1.0),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-5 / 2e-3, by_epoch=True, begin=0, end=10, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-6, by_epoch=True, begin=10, end=300),
    # epochs 300-309: official cooldown_epochs=10 at the minimum lr (no scheduler changes it after epoch 300)
]
train_cfg = dict(by_epoch=True, max_epochs=310, val_interval=1)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=512)

# timm ModelEma(decay=0.99992) after every step (mmengine momentum = 1 - decay), BN statistics averaged too
custom_hooks = [dict(type='EMAHook', momentum=8e-5, update_buffers=True, priority='ABOVE_NORMAL')]
randomness = dict(seed=42, deterministic=False)
