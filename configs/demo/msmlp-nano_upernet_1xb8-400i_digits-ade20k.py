# Demo, step 3: the digits classifier's MS-MLP backbone transferred into UperNet and trained on an ADE20K-format
# set of real digits composited on 128x128 canvases (mmmixer.datasets.make_digits_ade20k: label maps come from the
# digit strokes; background = ADE20K label 1, digit d = label d + 2; 400 train / 80 val). mmseg's UperNet as it is,
# with the head width reduced to 64 for CPU. The folders are read with ADE20K's conventions (reduce_zero_label,
# .jpg/.png) but as an 11-class dataset (background + 10 digits): mmseg's ADE20KDataset would carry 150 classes,
# and 150-channel full-resolution logits cost more CPU time than the rest of the model.
_base_ = [
    'mmseg::_base_/models/upernet_swin.py', 'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py', 'mmseg::_base_/schedules/schedule_160k.py'
]
custom_imports = dict(imports=['mmmixer.models'], allow_failed_imports=False)

data_root = 'data/digits_ade20k'
crop_size = (128, 128)
checkpoint = 'work_dirs/msmlp-nano_1xb64-40e_digits/epoch_40.pth'  # step 1; tools/run_demo.sh passes it
classes = ('background', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9')
palette = [[0, 0, 0]] + [[int(c) for c in rgb] for rgb in (
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240),
    (240, 50, 230), (210, 245, 60), (250, 190, 212))]

model = dict(
    data_preprocessor=dict(size=crop_size, mean=[127.5] * 3, std=[127.5] * 3, bgr_to_rgb=False),
    backbone=dict(
        _delete_=True,
        type='mmmixer.MSMLP',
        arch=dict(embed_dims=32, depths=[1, 1, 2, 1]),
        drop_path_rate=0.05,
        out_indices=(0, 1, 2, 3),
        gap_before_final_norm=False,
        shift_mode='zero',
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint, prefix='backbone.')),
    # Background is 93% of the pixels: with plain cross-entropy the 400 iterations learn "stroke vs background"
    # but the ten digit classes split the stroke probability and background wins every argmax (measured: mIoU
    # 8.47 = background IoU alone, also with 10x head learning rate). Weighting background 0.1 gives mIoU 30.2.
    decode_head=dict(in_channels=[32, 64, 128, 256], channels=64, num_classes=11,
                     loss_decode=dict(class_weight=[0.1] + [1.0] * 10)),
    auxiliary_head=dict(in_channels=128, channels=32, num_classes=11,
                        loss_decode=dict(class_weight=[0.1] + [1.0] * 10)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    # scale >= 1 so that crops never need padding: mmseg 1.2.2's cross-entropy with class_weight indexes the weights
    # with every label, and the ignore label 255 of padded pixels is out of range (IndexError)
    dict(type='RandomResize', scale=(512, 128), ratio_range=(1.0, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.9),
    dict(type='PhotoMetricDistortion'),  # no flips: mirrored digits are other digits
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(512, 128), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
dataset = dict(type='BaseSegDataset', data_root=data_root, metainfo=dict(classes=classes, palette=palette),
               img_suffix='.jpg', seg_map_suffix='.png', reduce_zero_label=True)
train_dataloader = dict(batch_size=8, num_workers=2, persistent_workers=True,
                        dataset=dict(**dataset, pipeline=train_pipeline))
val_dataloader = dict(batch_size=1, num_workers=2, persistent_workers=True,
                      dataset=dict(**dataset, pipeline=test_pipeline))
test_dataloader = val_dataloader

max_iters = 400
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=6e-4, betas=(0.9, 0.999), weight_decay=0.01),
    # the heads start from scratch: 10x the backbone's learning rate
    paramwise_cfg=dict(norm_decay_mult=0., custom_keys={
        '.gamma': dict(decay_mult=0.), 'decode_head': dict(lr_mult=10.), 'auxiliary_head': dict(lr_mult=10.)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=50),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=50, end=max_iters, by_epoch=False),
]
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(by_epoch=False, interval=max_iters),
    # draw every 20th validation image (prediction and ground truth) into <work_dir>/<run>/vis_data/vis_image
    visualization=dict(type='SegVisualizationHook', draw=True, interval=20))
randomness = dict(seed=0)
