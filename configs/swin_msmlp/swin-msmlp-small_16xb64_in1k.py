# Swin + MS-MLP hybrid (small) on ImageNet-1K: the Swin-S recipe (mmpretrain swin-small_16xb64_in1k.py), i.e.
# swin-msmlp-tiny_16xb64_in1k.py with the small arch and drop path 0.3. To start from mmpretrain's Swin-S weights set
# model.backbone.init_cfg=dict(type='Pretrained', prefix='backbone.', checkpoint='https://download.openmmlab.com/
# mmclassification/v0/swin-transformer/swin_small_224_b16x64_300e_imagenet_20210615_110219-7f9d988b.pth').
_base_ = './swin-msmlp-tiny_16xb64_in1k.py'
model = dict(backbone=dict(arch='small', drop_path_rate=0.3), head=dict(in_channels=768))
