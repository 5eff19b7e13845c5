# Strip-MLP-B on ImageNet-1K: the official recipe of stripmlp-tiny_8xb128_in1k.py with the base arch.
_base_ = './stripmlp-tiny_8xb128_in1k.py'
model = dict(backbone=dict(arch='base'), head=dict(in_channels=896))
