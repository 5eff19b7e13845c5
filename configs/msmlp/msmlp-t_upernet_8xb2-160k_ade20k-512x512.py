# UperNet, 160k iterations, ADE20K 512x512, MS-MLP-T backbone: mmseg's Swin-T UperNet config (the Swin / AS-MLP
# recipe, docs/papers.md, "Detection and segmentation recipes": AdamW 6e-5, wd 0.01, linear warmup 1500 iters, poly
# 1.0, 2 images x 8 GPUs) with the backbone and the weight-decay rules swapped; drop path 0.3 (Swin-T / AS-MLP-T). The
# decode/auxiliary heads already take Swin-T's widths 96-768 / 384.
_base_ = 'mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py'
custom_imports = dict(imports=['mmmixer.models'], allow_failed_imports=False)

# ImageNet-1K weights: the official MS-MLP-T release (converted in memory when loaded), or a checkpoint of
# configs/msmlp/msmlp-tiny_8xb128_in1k.py / a file written by tools/model_converters/msmlp_to_mmmixer.py.

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmmixer.MSMLP',
        arch='tiny',
        drop_path_rate=0.3,
        out_indices=(0, 1, 2, 3),
        gap_before_final_norm=False,
        shift_mode='zero',
        init_cfg=dict(
            type='Pretrained',
            prefix='backbone.',
            checkpoint='https://tsciencescu.blob.core.windows.net/projectshzheng/MSMLP/released_model/'
            'msmlp_tiny_patch4/msmlp_tiny_patch4_ckpt_epoch299.pth')),
    decode_head=dict(in_channels=[96, 192, 384, 768]),
    auxiliary_head=dict(in_channels=384))

optim_wrapper = dict(
    paramwise_cfg=dict(_delete_=True, norm_decay_mult=0., custom_keys={'.gamma': dict(decay_mult=0.)}))
