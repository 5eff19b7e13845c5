# UperNet, 160k iterations, ADE20K 512x512, MS-MLP-T backbone: mmseg's Swin-T UperNet config (the Swin / AS-MLP
# recipe, papers.md §4.3: AdamW 6e-5, wd 0.01, linear warmup 1500 iters, poly 1.0, 2 images x 8 GPUs) with the
# backbone and the weight-decay rules swapped; drop path 0.3 (Swin-T / AS-MLP-T). The decode/auxiliary heads
# already take Swin-T's widths 96-768 / 384.
_base_ = 'mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py'
custom_imports = dict(imports=['mmmixer.models'], allow_failed_imports=False)

# ImageNet-1K weights: a checkpoint of configs/msmlp/msmlp-tiny_8xb128_in1k.py, or the official release converted
# by tools/model_converters/msmlp_to_mmmixer.py (both hold 'backbone.*' keys).
checkpoint = 'checkpoints/msmlp-tiny_in1k.pth'

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmmixer.MSMLP',
        arch='tiny',
        drop_path_rate=0.3,
        out_indices=(0, 1, 2, 3),
        gap_before_final_norm=False,
        shift_mode='zero',
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint, prefix='backbone.')),
    decode_head=dict(in_channels=[96, 192, 384, 768]),
    auxiliary_head=dict(in_channels=384))

optim_wrapper = dict(
    paramwise_cfg=dict(_delete_=True, norm_decay_mult=0., custom_keys={'.gamma': dict(decay_mult=0.)}))
