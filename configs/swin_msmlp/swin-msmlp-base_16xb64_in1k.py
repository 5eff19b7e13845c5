# Swin + MS-MLP hybrid (base) on ImageNet-1K: the Swin-B recipe (mmpretrain swin-base_16xb64_in1k.py), i.e.
# swin-msmlp-tiny_16xb64_in1k.py with the base arch and drop path 0.5. To start from mmpretrain's Swin-B weights set
# model.backbone.init_cfg=dict(type='Pretrained', prefix='backbone.', checkpoint='https://download.openmmlab.com/
# mmclassification/v0/swin-transformer/swin_base_224_b16x64_300e_imagenet_20210616_190742-93230b0d.pth').
_base_ = './swin-msmlp-tiny_16xb64_in1k.py'
model = dict(backbone=dict(arch='base', drop_path_rate=0.5), head=dict(in_channels=1024))
