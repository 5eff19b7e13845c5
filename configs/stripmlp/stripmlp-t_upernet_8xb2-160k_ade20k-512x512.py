# UperNet, 160k iterations, ADE20K 512x512, Strip-MLP-T backbone: mmseg's Swin-T UperNet config (the Swin / AS-MLP
# recipe, docs/papers.md, "Detection and segmentation recipes": AdamW 6e-5, wd 0.01, linear warmup 1500 iters, poly
# 1.0, 2 images x 8 GPUs) with the backbone, head widths and weight-decay rules swapped (no decay on norms and on the
# position tables `row_pos`/`col_pos`; GRN decayed as on ImageNet); linear drop path 0.3 (Swin-T / AS-MLP-T).
# img_size=224: the ImageNet strip weights load unchanged and run windowed on the 512 crops (StripMLP docstring).
# BatchNorm: SyncBN in training mode, the mmseg convention for BN backbones (its ResNet configs: SyncBN,
# norm_eval=False; 16 images per synchronised batch), so the fresh output norms norm0-norm2 learn statistics too.
_base_ = 'mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py'
custom_imports = dict(imports=['mmmixer.models'], allow_failed_imports=False)

# ImageNet-1K weights: the official release converted by tools/model_converters/stripmlp_to_mmmixer.py into
# this path (README "Official weights"; the official file itself also works: converted on load), or a
# checkpoint of configs/stripmlp/stripmlp-tiny_8xb128_in1k.py.

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmmixer.StripMLP',
        arch='tiny',
        img_size=224,
        drop_path_rate=0.3,
        drop_path_mode='linear',
        out_indices=(0, 1, 2, 3),
        gap_before_final_norm=False,
        norm_cfg=dict(type='SyncBN', requires_grad=True),
        norm_eval=False,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/stripmlp-tiny_in1k.pth', prefix='backbone.')),
    decode_head=dict(in_channels=[80, 160, 320, 640]),
    auxiliary_head=dict(in_channels=320))

optim_wrapper = dict(
    paramwise_cfg=dict(
        _delete_=True, norm_decay_mult=0.,
        custom_keys={'.row_pos': dict(decay_mult=0.), '.col_pos': dict(decay_mult=0.)}))
