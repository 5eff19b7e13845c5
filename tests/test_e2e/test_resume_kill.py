"""Exact resume after SIGKILL in the middle of an epoch, and run-to-run determinism, on the digits demo config.

The demo config is used as shipped (random crop with padding 3, drop path 0.05, 2 persistent data workers,
``mmmixer.ExactResumeEpochBasedTrainLoop``), shortened to 2 epochs (46 iterations), with an iteration checkpoint
every 4 iterations so that a checkpoint exists in the middle of epoch 2.
"""
import os
import os.path as osp
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from helpers_mmmixer import REPO, config_path, subprocess_env

CONFIG = 'msmlp-nano_1xb64-40e_digits.py'
ITERS_PER_EPOCH = 23  # 1,437 training images, batch 64
# One intra-op thread: the same numerics in every run, and no OpenMP spin-waiting against the data workers and
# other processes on a busy 2-core machine (4-5x faster there). Bit-exactness holds for any fixed thread count.
ENV = dict(OMP_NUM_THREADS='1')


@pytest.fixture(scope='module')
def digits_root(tmp_path_factory):
    from mmmixer.datasets import make_digits_folder
    root = str(tmp_path_factory.mktemp('digits'))
    make_digits_folder(root, size=32)
    return root


def _options(root, *extra):
    return ['--cfg-options', 'randomness.deterministic=True', 'default_hooks.logger.interval=5',
            *(f'{split}_dataloader.dataset.data_root={root}' for split in ('train', 'val', 'test')), *extra]


def _cmd(work_dir, *args):
    return [sys.executable, osp.join(REPO, 'tools', 'train.py'), config_path(CONFIG), '--work-dir', work_dir,
            *args]


def _run(cmd, cwd):
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=subprocess_env(**ENV))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def _last_checkpoint_iter(work_dir):
    try:
        with open(osp.join(work_dir, 'last_checkpoint')) as f:
            match = re.search(r'iter_(\d+)\.pth', f.read())
    except OSError:
        return 0
    return int(match.group(1)) if match else 0


def _load(path):
    from mmmixer.checkpoint import safe_torch_load
    return safe_torch_load(path)  # weights_only=True with the Runner allowlist: our meta must stay loadable


def _flatten(prefix, obj, out):
    """Every tensor / number in a nested checkpoint entry, by path."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            _flatten(f'{prefix}.{k}', v, out)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _flatten(f'{prefix}.{i}', v, out)
    elif isinstance(obj, torch.Tensor):
        out[prefix] = obj
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        out[prefix] = torch.tensor(obj, dtype=torch.float64)
    return out


def _max_abs_diffs(a, b, keys=('state_dict', 'optimizer', 'param_schedulers')):
    """{entry path: max |a - b|} over the weights, the optimizer state and the schedulers' state."""
    fa = _flatten('', {k: a[k] for k in keys}, {})
    fb = _flatten('', {k: b[k] for k in keys}, {})
    assert fa.keys() == fb.keys(), set(fa) ^ set(fb)
    diffs = {}
    for k in fa:
        assert fa[k].shape == fb[k].shape and fa[k].dtype == fb[k].dtype, k
        diffs[k] = (fa[k].double() - fb[k].double()).abs().max().item() if fa[k].numel() else 0.0
    return diffs


OPTIONS = ('train_cfg.max_epochs=2', 'train_cfg.val_interval=1', 'param_scheduler.0.end=1', 'param_scheduler.1.begin=1',
           'param_scheduler.1.end=2', 'default_hooks.checkpoint.by_epoch=False', 'default_hooks.checkpoint.interval=4',
           'default_hooks.checkpoint.max_keep_ckpts=-1')
TOTAL = 2 * ITERS_PER_EPOCH


def _run_and_kill(cmd, cwd, work_dir, after_iter):
    """Start a training, SIGKILL it (and its data workers) once a checkpoint of iteration >= after_iter exists."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=subprocess_env(**ENV), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 600
    try:
        while _last_checkpoint_iter(work_dir) < after_iter and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, 'the training ended before it could be killed'
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return _last_checkpoint_iter(work_dir)


@pytest.fixture(scope='module')
def full_run(digits_root, tmp_path_factory):
    """The uninterrupted reference run: 2 epochs, checkpoints every 4 iterations and at the end."""
    work_dir = str(tmp_path_factory.mktemp('full'))
    _run(_cmd(work_dir, *_options(digits_root, *OPTIONS)), cwd=work_dir)
    return work_dir


def test_resume_after_sigkill_mid_epoch_is_bit_exact(digits_root, full_run, tmp_path, monkeypatch):
    monkeypatch.delenv('MMMIXER_TRUST_CHECKPOINTS', raising=False)
    opts = _options(digits_root, *OPTIONS)
    killed = str(tmp_path / 'killed')
    resume_iter = _run_and_kill(_cmd(killed, *opts), str(tmp_path), killed, after_iter=ITERS_PER_EPOCH + 5)
    assert ITERS_PER_EPOCH < resume_iter < TOTAL and resume_iter % ITERS_PER_EPOCH, resume_iter  # inside epoch 2
    assert not osp.exists(osp.join(killed, f'iter_{TOTAL}.pth'))

    log = _run(_cmd(killed, *opts, '--resume'), cwd=str(tmp_path))  # latest checkpoint of the work dir
    assert f'resumed epoch: 1, iter: {resume_iter}' in log
    assert f'Advance dataloader {resume_iter - ITERS_PER_EPOCH} steps' in log

    a = _load(osp.join(full_run, f'iter_{TOTAL}.pth'))
    b = _load(osp.join(killed, f'iter_{TOTAL}.pth'))
    assert a['meta']['iter'] == b['meta']['iter'] == TOTAL
    assert a['meta']['exact_resume'] == dict(version=1, iters_per_epoch=ITERS_PER_EPOCH, seed=0)
    diffs = _max_abs_diffs(a, b)
    groups = {g: max(v for k, v in diffs.items() if k.startswith(f'.{g}')) for g in
              ('state_dict', 'optimizer', 'param_schedulers')}
    print(f'killed after iteration {resume_iter} of {TOTAL} (epoch 2), resumed; {len(diffs)} tensors/values '
          f'compared, max abs difference per group: {groups}')
    assert len([k for k in diffs if k.startswith('.optimizer.state.')]) >= 3 * len(a['state_dict']) // 2
    assert all(v == 0.0 for v in diffs.values()), {k: v for k, v in diffs.items() if v}


def test_same_seed_same_weights_whatever_the_workers(digits_root, full_run, tmp_path):
    """Same seed and config in another process: identical weights and optimizer state after 8 iterations, here
    even without data workers (the config has 2 persistent ones): augmentation is seeded per sample."""
    work_dir = str(tmp_path / 'no_workers')
    opts = _options(digits_root, *OPTIONS, 'train_dataloader.num_workers=0',
                    'train_dataloader.persistent_workers=False')
    reached = _run_and_kill(_cmd(work_dir, *opts), str(tmp_path), work_dir, after_iter=8)
    a = _load(osp.join(full_run, 'iter_8.pth'))
    b = _load(osp.join(work_dir, 'iter_8.pth'))
    diffs = _max_abs_diffs(a, b)
    print(f'8 iterations, seed 0, 2 persistent workers vs none: {len(diffs)} tensors/values, max abs diff '
          f'{max(diffs.values())} (run killed after iteration {reached})')
    assert max(diffs.values()) == 0.0
    # the weights did change in those 8 iterations (the comparison is not trivially true)
    assert any(not torch.equal(a['state_dict'][k], _load(osp.join(full_run, 'iter_4.pth'))['state_dict'][k])
               for k in a['state_dict'])
