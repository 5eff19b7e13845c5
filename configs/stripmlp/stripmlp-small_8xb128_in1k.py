# Strip-MLP-S on ImageNet-1K: the official recipe of stripmlp-tiny_8xb128_in1k.py with the small arch.
_base_ = './stripmlp-tiny_8xb128_in1k.py'
model = dict(backbone=dict(arch='small'), head=dict(in_channels=768))
