"""The swap tool's output trains: a written Mask R-CNN config with our backbone, ``tools/train.py`` for 2 iterations.

The data paths are given with ``--cfg-options`` only, as README "Swap into your project" shows, on a COCO-format
digits set (``make_digits_coco``; the class names come from its ``classes.txt``). Test-only shrinking: a tiny custom
MS-MLP arch (a backbone config file) and 128 x 128 training images instead of mmdet's 1333 x 800.
"""
import glob
import json
import math
import os.path as osp
import subprocess
import sys

from mmengine.config import Config

from helpers_mmmixer import REPO, subprocess_env

SWAP = osp.join(REPO, 'tools', 'misc', 'swap_backbone.py')
DOWNSTREAM = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'


def _run(args, cwd):
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd, env=subprocess_env())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def test_swapped_mask_rcnn_trains_two_iterations(tmp_path):
    from mmmixer.datasets import make_digits_coco
    data = tmp_path / 'data' / 'digits_coco'
    make_digits_coco(str(data), num_train=4, num_val=2)
    backbone = tmp_path / 'tiny_msmlp.py'
    backbone.write_text("backbone = dict(type='mmmixer.MSMLP', arch=dict(embed_dims=20, depths=[1, 1, 1, 1]))\n")
    _run([SWAP, DOWNSTREAM, str(backbone), '--out', 'my_mask-rcnn.py'], str(tmp_path))
    written = Config.fromfile(str(tmp_path / 'my_mask-rcnn.py'))
    assert written.model.neck.in_channels == [20, 40, 80, 160]

    d, classes = 'data/digits_coco', 'data/digits_coco/annotations/classes.txt'
    options = ['train_cfg.max_epochs=1', 'train_cfg.val_begin=2', 'train_dataloader.dataset.indices=4',
               'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
               'train_dataloader.dataset.pipeline.2.scale=(128,128)',  # test-only: small images
               'default_hooks.logger.interval=1', f'work_dir={tmp_path / "work"}']
    for split, folder in (('train', 'train2017'), ('val', 'val2017'), ('test', 'val2017')):
        options += [f'{split}_dataloader.dataset.data_root={d}/',
                    f'{split}_dataloader.dataset.ann_file=annotations/instances_{folder}.json',
                    f'{split}_dataloader.dataset.data_prefix.img={folder}/',
                    f'{split}_dataloader.dataset.metainfo.classes={classes}']
    options += [f'{k}_evaluator.ann_file={d}/annotations/instances_val2017.json' for k in ('val', 'test')]
    _run([osp.join(REPO, 'tools', 'train.py'), 'my_mask-rcnn.py', '--cfg-options', *options], str(tmp_path))

    logs = glob.glob(str(tmp_path / 'work' / '*' / 'vis_data' / 'scalars.json'))
    records = [json.loads(line) for line in open(logs[0])]
    train = [r for r in records if 'loss' in r]
    assert [r['iter'] for r in train] == [1, 2]
    for record in train:
        assert {'loss_rpn_cls', 'loss_cls', 'loss_bbox', 'loss_mask'} <= set(record), record
        assert all(math.isfinite(v) for k, v in record.items() if k.startswith('loss')), record
    assert osp.isfile(tmp_path / 'work' / 'epoch_1.pth')
