"""End to end on the real digits data: `mim train mmmixer`, resume on torch >= 2.6, Pretrained from our
own training checkpoint."""
import glob
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest
import torch

from helpers_mmmixer import REPO, config_path, subprocess_env

CONFIG = 'msmlp-nano_1xb64-40e_digits.py'


@pytest.fixture(scope='module')
def digits_root(tmp_path_factory):
    from mmmixer.datasets import make_digits_folder
    root = str(tmp_path_factory.mktemp('digits'))
    info = make_digits_folder(root, size=32)
    assert (info['num_train'], info['num_val']) == (1437, 360)
    # stratified split: every class in both splits; the files exist as the annotation says
    lines = open(osp.join(root, 'meta', 'val.txt')).read().split('\n')
    assert sorted({int(l.split()[1]) for l in lines if l}) == list(range(10))
    assert all(osp.isfile(osp.join(root, l.split()[0])) for l in lines if l)
    return root


def _data_options(root):
    return [f'train_dataloader.dataset.data_root={root}', f'val_dataloader.dataset.data_root={root}',
            f'test_dataloader.dataset.data_root={root}']


def _val_top1(work_dir):
    logs = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    return [json.loads(l)['accuracy/top1'] for l in open(logs[-1]) if 'accuracy/top1' in l]


def test_mim_train_mmmixer_learns_digits(digits_root, tmp_path):
    mim = shutil.which('mim') or osp.join(osp.dirname(sys.executable), 'mim')
    work_dir = str(tmp_path / 'run')
    result = subprocess.run(
        [mim, 'train', 'mmmixer', CONFIG, '--work-dir', work_dir, '--cfg-options',
         'train_cfg.max_epochs=8', 'train_cfg.val_interval=8', 'param_scheduler.1.end=8',
         'default_hooks.checkpoint.interval=8', *_data_options(digits_root)],
        capture_output=True, text=True, cwd=str(tmp_path), env=subprocess_env())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    top1 = _val_top1(work_dir)
    print(f'digits top-1 after 8 epochs: {top1}')
    assert len(top1) == 1 and top1[0] >= 85.0  # chance is 10%
    assert osp.isfile(osp.join(work_dir, 'epoch_8.pth'))


def _train(args, cwd):
    result = subprocess.run([sys.executable, osp.join(REPO, 'tools', 'train.py'), *args],
                            capture_output=True, text=True, cwd=cwd, env=subprocess_env())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def test_resume_and_pretrained_from_runner_checkpoint(digits_root, tmp_path, monkeypatch):
    """Runner checkpoints (HistoryBuffer, numpy in message_hub) resume on torch >= 2.6 without trusting
    pickles, and serve as ``Pretrained`` with ``prefix='backbone.'``."""
    monkeypatch.delenv('MMMIXER_TRUST_CHECKPOINTS', raising=False)
    common = [config_path(CONFIG), '--cfg-options', 'train_cfg.max_epochs=3', 'train_cfg.val_interval=3',
              'param_scheduler.1.end=3', 'default_hooks.checkpoint.interval=1',
              'default_hooks.checkpoint.save_best=None', 'default_hooks.checkpoint.max_keep_ckpts=-1', 'train_dataloader.num_workers=0',
              'train_dataloader.persistent_workers=False', 'val_dataloader.num_workers=0',
              'val_dataloader.persistent_workers=False', 'randomness.deterministic=True',
              # no random crop offsets, no drop path: the only randomness left is the sampler's
              # per-epoch seeded shuffle, so a resumed run must reproduce the uninterrupted one exactly
              'train_dataloader.dataset.pipeline.1.padding=0', 'model.backbone.drop_path_rate=0.',
              *_data_options(digits_root)]
    full = str(tmp_path / 'full')
    _train(['--work-dir', full, *common], cwd=str(tmp_path))
    # the checkpoint really needs the allowlist: plain weights_only=True refuses it
    with pytest.raises(Exception, match='HistoryBuffer|weights_only'):
        torch.load(osp.join(full, 'epoch_1.pth'), weights_only=True)
    resumed = str(tmp_path / 'resumed')
    os.makedirs(resumed)
    shutil.copy(osp.join(full, 'epoch_1.pth'), resumed)
    out = _train(['--work-dir', resumed, '--resume', osp.join(resumed, 'epoch_1.pth'), *common],
                 cwd=str(tmp_path))
    assert 'resumed epoch: 1' in (out.stdout + out.stderr)
    a = torch.load(osp.join(full, 'epoch_3.pth'), map_location='cpu', weights_only=False)
    b = torch.load(osp.join(resumed, 'epoch_3.pth'), map_location='cpu', weights_only=False)
    assert a['meta']['epoch'] == b['meta']['epoch'] == 3
    max_diff = max((a['state_dict'][k].float() - b['state_dict'][k].float()).abs().max().item()
                   for k in a['state_dict'])
    print(f'resume vs uninterrupted, max abs weight difference: {max_diff:.3g}')
    assert max_diff == 0.0

    # Pretrained from our own runner checkpoint: every backbone tensor loaded
    from mmengine.config import Config
    from mmengine.registry import MODELS, DefaultScope
    cfg = Config.fromfile(config_path(CONFIG))
    backbone_cfg = cfg.model.backbone
    backbone_cfg.init_cfg = dict(type='Pretrained', checkpoint=osp.join(full, 'epoch_3.pth'),
                                 prefix='backbone.')
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        backbone = MODELS.build(backbone_cfg)
    backbone.init_weights()
    for k, v in backbone.state_dict().items():
        assert torch.equal(v, a['state_dict'][f'backbone.{k}']), k
