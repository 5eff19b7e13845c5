# MS-MLP-B on ImageNet-1K: the official recipe of msmlp-tiny_8xb128_in1k.py with the base arch (official drop path
# 0.5). The official base run used 8 GPUs x 64 with 2-step gradient accumulation; with 64 per GPU set
# train_dataloader.batch_size=64 and optim_wrapper.accumulative_counts=2 to keep the 1024 total batch.
_base_ = './msmlp-tiny_8xb128_in1k.py'
model = dict(backbone=dict(arch='base', drop_path_rate=0.5), head=dict(in_channels=1024))
