"""Every shipped det/seg config trains a few iterations and validates (COCO bbox/segm mAP via pycocotools,
mIoU) on miniature datasets laid out exactly as COCO 2017 and ADEChallengeData2016."""
import glob
import json
import math
import os.path as osp
import re
import subprocess
import sys

import pytest
from mmengine.config import Config

from helpers_mmmixer import REPO, config_path, miniaturize, subprocess_env

DET_PATHS = sorted(glob.glob(osp.join(REPO, 'configs', '*', '*_coco.py')))
SEG_PATHS = sorted(glob.glob(osp.join(REPO, 'configs', '*', '*_ade20k-*.py')))
DET = [osp.basename(p) for p in DET_PATHS]
SEG = [osp.basename(p) for p in SEG_PATHS]
# The representative subset (not marked slow, ~1 min each): per family, the tiny ('-t') Mask R-CNN 1x and the tiny
# UperNet. Everything else (other sizes, the 3x multi-scale and the RetinaNet configs) is marked slow: it runs with
# the whole suite or `-m slow`, not with `-m "not slow"`.
FAST = (re.compile(r'mask-rcnn_[a-z-]+-t_fpn_1x_coco\.py'), re.compile(r'[a-z-]+-t_upernet_[^/]*_ade20k-[^/]*\.py'))


def _is_fast(name):
    return any(pattern.fullmatch(name) for pattern in FAST)


def _mark(names):
    return [n if _is_fast(n) else pytest.param(n, marks=pytest.mark.slow) for n in names]


def test_fast_subset_is_one_mask_rcnn_and_one_upernet_per_family():
    """Every config folder with det/seg configs contributes exactly one fast Mask R-CNN 1x and one fast UperNet."""
    families = {}
    for path in DET_PATHS + SEG_PATHS:
        families.setdefault(osp.basename(osp.dirname(path)), []).append(osp.basename(path))
    assert {'msmlp', 'posmlp', 'stripmlp', 'swin_msmlp'} <= set(families)
    for family, names in families.items():
        fast = sorted(n for n in names if _is_fast(n))
        assert len(fast) == 2 and fast[0].startswith('mask-rcnn_') and '_fpn_1x_coco' in fast[0] \
            and '_upernet_' in fast[1], (family, fast)


@pytest.fixture(scope='module')
def mini_data(tmp_path_factory):
    from mmmixer.datasets import make_digits_ade20k, make_digits_coco
    root = tmp_path_factory.mktemp('mini')
    make_digits_coco(str(root / 'coco'), num_train=8, num_val=4)
    make_digits_ade20k(str(root / 'ade'), num_train=8, num_val=4)
    return root


def _run(cfg, tmp_path):
    path = str(tmp_path / 'cfg.py')
    cfg.dump(path)
    result = subprocess.run([sys.executable, osp.join(REPO, 'tools', 'train.py'), path],
                            capture_output=True, text=True, cwd=str(tmp_path), env=subprocess_env())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    logs = glob.glob(str(tmp_path / 'work' / '*' / 'vis_data' / 'scalars.json'))
    assert logs, result.stdout[-2000:]
    records = [json.loads(line) for line in open(logs[0])]
    return [r for r in records if 'loss' in r], [r for r in records if 'loss' not in r]


def _check_losses(train):
    """Two training iterations were logged, and every loss term of each is a finite number (no inf, no nan)."""
    assert len(train) == 2, train
    for record in train:
        losses = {k: v for k, v in record.items() if k.startswith('loss')}
        assert 'loss' in losses, record
        bad = {k: v for k, v in losses.items() if not (isinstance(v, (int, float)) and math.isfinite(v))}
        assert not bad, f'non-finite losses at iteration {record.get("iter")}: {bad}'


def _check_metrics(record, keys, low, high, no_data=None):
    """Each metric in ``keys`` is in the record, finite and in [low, high] (or equal to ``no_data``)."""
    assert keys, record
    for key in keys:
        assert key in record, (key, record)
        value = record[key]
        assert isinstance(value, (int, float)) and math.isfinite(value), (key, value)
        assert low <= value <= high or (no_data is not None and value == no_data), (key, value)


@pytest.mark.parametrize('name', _mark(DET))
def test_det_config_trains_and_validates(name, mini_data, tmp_path):
    cfg = miniaturize(Config.fromfile(config_path(name)), coco_root=str(mini_data / 'coco'),
                      work_dir=str(tmp_path / 'work'))
    train, val = _run(cfg, tmp_path)
    _check_losses(train)
    # COCO AP values are fractions in [0, 1]; pycocotools reports -1 for an area range without ground truth
    tasks = ('bbox', 'segm') if 'mask-rcnn' in name else ('bbox',)
    for task in tasks:
        assert f'coco/{task}_mAP' in val[-1], val[-1]
    keys = [k for k in val[-1] if k.startswith(tuple(f'coco/{t}_mAP' for t in tasks))]
    _check_metrics(val[-1], keys, 0.0, 1.0, no_data=-1.0)
    assert not [k for k in val[-1] if k.startswith('coco/') and k not in keys], val[-1]  # no unchecked metric


@pytest.mark.parametrize('name', _mark(SEG))
def test_seg_config_trains_and_validates(name, mini_data, tmp_path):
    cfg = miniaturize(Config.fromfile(config_path(name)), ade_root=str(mini_data / 'ade'),
                      work_dir=str(tmp_path / 'work'))
    train, val = _run(cfg, tmp_path)
    _check_losses(train)
    # mmseg's IoUMetric reports percentages
    _check_metrics(val[-1], ['aAcc', 'mIoU', 'mAcc'], 0.0, 100.0)
