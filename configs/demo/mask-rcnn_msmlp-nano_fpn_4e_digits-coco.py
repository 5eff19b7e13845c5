# Demo, step 2: the digits classifier's MS-MLP backbone transferred into Mask R-CNN + FPN and trained on a
# COCO-format set of real digits composited on 128x128 canvases (mmmixer.datasets.make_digits_coco: boxes and
# masks come from the digit strokes; 400 train / 80 val canvases). Everything else is mmdet's R-50 Mask R-CNN.
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmmixer.models'], allow_failed_imports=False)

data_root = 'data/digits_coco/'
classes = ('0', '1', '2', '3', '4', '5', '6', '7', '8', '9')
# the checkpoint of step 1 (configs/demo/msmlp-nano_1xb64-40e_digits.py); tools/run_demo.sh passes it
checkpoint = 'work_dirs/msmlp-nano_1xb64-40e_digits/epoch_40.pth'

model = dict(
    data_preprocessor=dict(mean=[127.5] * 3, std=[127.5] * 3, bgr_to_rgb=False),
    backbone=dict(
        _delete_=True,
        type='mmmixer.MSMLP',
        arch=dict(embed_dims=32, depths=[1, 1, 2, 1]),
        drop_path_rate=0.05,
        out_indices=(0, 1, 2, 3),
        gap_before_final_norm=False,
        shift_mode='zero',
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint, prefix='backbone.')),
    # CPU-sized neck and heads (the only changes to mmdet's Mask R-CNN besides the class count): 128-wide FPN and
    # heads (2 mask convs of 64 channels), and with 128x128 canvases holding at most 4 digits, 200 proposals and 64
    # sampled RoIs per image.
    # RoIAlign's CPU backward dominates the step time, and it scales with RoIs x channels.
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=128),
    rpn_head=dict(in_channels=128, feat_channels=128),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=128),
        bbox_head=dict(in_channels=128, fc_out_channels=256, num_classes=10),
        mask_roi_extractor=dict(out_channels=128),
        mask_head=dict(in_channels=128, num_convs=2, conv_out_channels=64, num_classes=10)),
    train_cfg=dict(rpn_proposal=dict(nms_pre=1000, max_per_img=200), rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=200), rcnn=dict(max_per_img=20)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),  # no flips: mirrored digits are other digits
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes),
                 ann_file='annotations/instances_train2017.json', data_prefix=dict(img='train2017/'),
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes),
                 ann_file='annotations/instances_val2017.json', data_prefix=dict(img='val2017/'),
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator

max_epochs = 4
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[3], gamma=0.1),
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(_delete_=True, type='AdamW', lr=2e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0., custom_keys={'.gamma': dict(decay_mult=0.)}))
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=max_epochs),
    # draw the first image of every 5th validation batch (prediction beside ground truth) into
    # <work_dir>/<run>/vis_data/vis_image
    visualization=dict(draw=True, interval=5))
randomness = dict(seed=0)
auto_scale_lr = dict(enable=False)
