# Swin + MS-MLP hybrid (tiny) on ImageNet-1K with the Swin Transformer recipe (mmpretrain
# configs/swin_transformer/swin-tiny_16xb64_in1k.py): AdamW, lr 1e-3 at total batch 1024 (5e-4 x 1024/512), wd 0.05
# (no decay on norms, biases, 1-D params such as the MS layer scales, and relative position bias tables), 20 linear
# warmup epochs, cosine to 1e-5, 300 epochs, grad clip 5.0, RandAugment rand-m9-mstd0.5-inc1, mixup 0.8 / cutmix
# 1.0, label smoothing 0.1, random erasing 0.25, bicubic, test resize 256 -> center crop 224. Swin drop path: tiny
# 0.2, small 0.3, base 0.5. The block pattern is our choice (configs/swin_msmlp/README.md).
_base_ = [
    '../_base_/models/swin_msmlp/swin-msmlp-tiny.py',
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    'mmpretrain::_base_/default_runtime.py',
]

# 16 GPUs x 64 images = 1024 (train_dataloader.batch_size=64 in the dataset base; auto_scale_lr base 1024)
optim_wrapper = dict(clip_grad=dict(max_norm=5.0))
