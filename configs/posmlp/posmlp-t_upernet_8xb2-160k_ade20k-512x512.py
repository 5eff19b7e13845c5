# UperNet, 160k iterations, ADE20K 512x512, PosMLP-T backbone: mmseg's Swin-T UperNet config (the Swin / AS-MLP
# recipe, docs/papers.md, "Detection and segmentation recipes": AdamW 6e-5, wd 0.01, linear warmup 1500 iters, poly
# 1.0, 2 images x 8 GPUs) with the backbone and the weight-decay rules swapped (no decay on norms and on the
# positional parameters `pos_map.*`); drop path 0.3 (Swin-T / AS-MLP-T). The decode/auxiliary heads already take
# Swin-T's widths 96-768 / 384. Windows 14/14/14/7 as on ImageNet (padding + masking handle 512x512: stage maps
# 128/64/32/16). Stem BatchNorm: SyncBN in training mode, the mmseg convention for BN backbones (its ResNet configs:
# SyncBN, norm_eval=False; 16 images per synchronised batch).
_base_ = 'mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py'
custom_imports = dict(imports=['mmmixer.models'], allow_failed_imports=False)

# ImageNet-1K weights: the official release converted by tools/model_converters/posmlp_to_mmmixer.py into
# this path (README "Official weights"; the official file itself also works: converted on load), or a
# checkpoint of configs/posmlp/posmlp-tiny_8xb128_in1k.py.

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmmixer.PosMLP',
        arch='tiny',
        pos_type='gqpe',
        window_size=(14, 14, 14, 7),
        drop_path_rate=0.3,
        out_indices=(0, 1, 2, 3),
        gap_before_final_norm=False,
        stem_norm_cfg=dict(type='SyncBN', eps=1e-6, requires_grad=True),
        norm_eval=False,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/posmlp-tiny_in1k.pth', prefix='backbone.')),
    decode_head=dict(in_channels=[96, 192, 384, 768]),
    auxiliary_head=dict(in_channels=384))

optim_wrapper = dict(
    paramwise_cfg=dict(_delete_=True, norm_decay_mult=0., custom_keys={'.pos_map.': dict(decay_mult=0.)}))
