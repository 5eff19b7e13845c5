# Strip-MLP-T* (light tiny) on ImageNet-1K: the official recipe of stripmlp-tiny_8xb128_in1k.py with the light_tiny
# arch.
_base_ = './stripmlp-tiny_8xb128_in1k.py'
model = dict(backbone=dict(arch='light_tiny'), head=dict(in_channels=640))
