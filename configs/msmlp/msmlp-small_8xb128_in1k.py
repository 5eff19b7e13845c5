# MS-MLP-S on ImageNet-1K: the official recipe of msmlp-tiny_8xb128_in1k.py with the small arch (official drop path
# 0.4).
_base_ = './msmlp-tiny_8xb128_in1k.py'
model = dict(backbone=dict(arch='small', drop_path_rate=0.4), head=dict(in_channels=768))
