# Swin + MS-MLP hybrid (base) on ImageNet-1K with the Swin Transformer recipe (mmpretrain
# configs/swin_transformer/swin-base_16xb64_in1k.py; ../shared/reference/papers.md §4.1): AdamW, lr 1e-3 at total
# batch 1024 (5e-4 x 1024/512), wd 0.05 (no decay on norms, biases, 1-D params such as the MS layer scales, and
# relative position bias tables), 20 linear warmup epochs, cosine to 1e-5, 300 epochs, grad clip 5.0,
# RandAugment rand-m9-mstd0.5-inc1, mixup 0.8 / cutmix 1.0, label smoothing 0.1, random erasing 0.25, bicubic,
# test resize 256 -> center crop 224. Swin drop path: tiny 0.2, small 0.3, base 0.5.
# The block pattern 'ms_shift' (MS blocks in place of the shifted-window attention blocks) is OUR choice: the
# MS-MLP paper's hybrid layout is not available (configs/swin_msmlp/README.md).
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmmixer.models'], allow_failed_imports=False)

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='mmmixer.SwinMSMLP',
        arch='base',
        block_pattern='ms_shift',  # alternatives: 'ms_early', 'ms_all', 'swin' (= Swin Transformer)
        drop_path_rate=0.5,
        # ImageNet at 224 only: like the original Swin classifier, skip the window shift when a map equals
        # the window (stage 4); only matters for patterns with shifted-window blocks ('swin', 'ms_early').
        pad_small_map=False,
        # Swin output order: per-token LayerNorm, then the GlobalAveragePooling neck (norm -> pool), so that
        # block_pattern='swin' is exactly mmpretrain's Swin classifier.
        gap_before_final_norm=False,
        # To start from mmpretrain's Swin-B ImageNet weights (patch embedding, attention blocks,
        # merging layers; the MS blocks stay newly initialised and the split is logged), uncomment:
        # init_cfg=dict(
        #     type='Pretrained', prefix='backbone.',
        #     checkpoint='https://download.openmmlab.com/mmclassification/v0/swin-transformer/'
        #                'swin_base_224_b16x64_300e_imagenet_20210616_190742-93230b0d.pth'),
    ),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=1024,
        init_cfg=None,  # the classifier-level init_cfg below initialises the head (as mmpretrain's Swin)
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        cal_acc=False),
    init_cfg=[
        dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.),
        dict(type='Constant', layer='LayerNorm', val=1., bias=0.)
    ],
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]),
)

# 16 GPUs x 64 images = 1024 (train_dataloader.batch_size=64 in the dataset base; auto_scale_lr base 1024)
optim_wrapper = dict(clip_grad=dict(max_norm=5.0))
