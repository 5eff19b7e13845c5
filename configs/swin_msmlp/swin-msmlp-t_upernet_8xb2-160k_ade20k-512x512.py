# UperNet, 160k iterations, ADE20K 512x512, Swin + MS-MLP hybrid (tiny) backbone: mmseg's Swin-T UperNet config (the
# Swin / AS-MLP recipe, docs/papers.md, "Detection and segmentation recipes": AdamW 6e-5, wd 0.01, linear warmup 1500
# iters, poly 1.0, 2 images x 8 GPUs) with the backbone and the weight-decay rules swapped (no decay on norms,
# relative position bias tables and MS layer scales `.gamma`); drop path 0.3 (Swin-T / AS-MLP-T). The decode/auxiliary
# heads already take Swin-T's widths 96-768 / 384. MS shifts without wrap-around (`shift_mode='zero'`), any map size
# (`pad_small_map=True`).
_base_ = 'mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py'
custom_imports = dict(imports=['mmmixer.models'], allow_failed_imports=False)

# ImageNet-1K weights: a checkpoint of configs/swin_msmlp/swin-msmlp-tiny_16xb64_in1k.py, or mmpretrain's
# Swin-T classifier (Swin tensors loaded, MS blocks new; see configs/swin_msmlp/README.md).

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmmixer.SwinMSMLP',
        arch='tiny',
        block_pattern='ms_shift',
        ms_cfg=dict(shift_mode='zero'),
        pad_small_map=True,
        drop_path_rate=0.3,
        out_indices=(0, 1, 2, 3),
        gap_before_final_norm=False,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/swin-msmlp-tiny_in1k.pth', prefix='backbone.')),
    decode_head=dict(in_channels=[96, 192, 384, 768]),
    auxiliary_head=dict(in_channels=384))

optim_wrapper = dict(
    paramwise_cfg=dict(
        _delete_=True, norm_decay_mult=0.,
        custom_keys={'.relative_position_bias_table': dict(decay_mult=0.), '.gamma': dict(decay_mult=0.)}))
