# MS-MLP-T on ImageNet-1K: the official 300-epoch recipe (JegZheng/MS-MLP config.py + yaml, README commands;
# docs/papers.md, "MS-MLP"): AdamW, peak lr 1e-3 at total batch 1024 (5e-4 x 1024/512), wd 0.05 with no decay on
# norms, biases and layer scales, 20 warmup epochs from 1e-6, cosine to 1e-5, grad clip 5.0, RandAugment
# rand-m9-mstd0.5-inc1, mixup 0.8 / cutmix 1.0, label smoothing 0.1, random erasing 0.25, bicubic, test resize
# 256 -> center crop 224. mmpretrain's Swin bases encode exactly this recipe; small / base inherit this file.
_base_ = [
    '../_base_/models/msmlp/msmlp-tiny.py',
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    'mmpretrain::_base_/default_runtime.py',
]

# 8 GPUs x 128 images = 1024 (auto_scale_lr.base_batch_size in the schedule base)
train_dataloader = dict(batch_size=128)

optim_wrapper = dict(clip_grad=dict(max_norm=5.0))
