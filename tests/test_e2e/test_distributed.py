"""Multi-process training on CPU (gloo): tools/dist_train.sh with 2 processes x batch 16 follows the same loss
curve as 1 process x batch 32; `mim train mmmixer CFG --launcher pytorch --gpus 2` runs; slurm environment."""
import filecmp
import json
import os
import os.path as osp
import random
import shutil
import subprocess
import sys

import pytest
import torch

from helpers_mmmixer import REPO, config_path, subprocess_env

CONFIG = 'msmlp-nano_1xb64-40e_digits.py'
ITERS = 12
LOSS_TOL = 1e-5  # absolute, on a loss of about 2.3; measured 1.2e-7 (fp32 summation order), weights 1.6e-7
# No randomness that depends on the split of the batch: the random crop has no padding (a 32x32 crop of a 32x32
# image), drop path 0. MS-MLP normalises with LayerNorm only (per sample), so no SyncBN is needed: a sample's
# output does not depend on the other samples of its process's batch.
DETERMINISTIC = ('train_dataloader.dataset.pipeline.1.padding=0', 'model.backbone.drop_path_rate=0.')


@pytest.fixture(scope='module')
def digits_root(tmp_path_factory):
    from mmmixer.datasets import make_digits_folder
    root = str(tmp_path_factory.mktemp('digits'))
    make_digits_folder(root, size=32)
    return root


def _probe_config(tmp_path):
    """The demo config plus a hook that records every rank's loss (tests/dist_loss_probe.py)."""
    path = tmp_path / 'probe_cfg.py'
    path.write_text(f"_base_ = [{config_path(CONFIG)!r}]\n"
                    "custom_imports = dict(imports=['mmmixer.models', 'dist_loss_probe'], allow_failed_imports=False)\n"
                    "custom_hooks = [dict(type='MmmixerTestLossProbeHook')]\n")
    return str(path)


def _options(root, batch_size):
    return ['--no-validate', '--cfg-options', f'train_dataloader.dataset.data_root={root}',
            f'train_dataloader.dataset.indices={ITERS * 32}', f'train_dataloader.batch_size={batch_size}',
            'train_cfg.max_epochs=1', 'default_hooks.checkpoint.interval=1', 'default_hooks.checkpoint.save_best=None',
            'default_hooks.logger.interval=1', 'train_dataloader.num_workers=0',
            'train_dataloader.persistent_workers=False', 'randomness.deterministic=True', *DETERMINISTIC]


def _env():
    env = subprocess_env(OMP_NUM_THREADS='1', PORT=str(random.randint(29700, 29999)))
    env['PYTHONPATH'] = osp.join(REPO, 'tests') + os.pathsep + env['PYTHONPATH']
    return env


def _check(result):
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def _losses(work_dir, rank):
    with open(osp.join(work_dir, f'losses_rank{rank}.json')) as f:
        return json.load(f)


def test_two_processes_match_one_process_with_double_batch(digits_root, tmp_path):
    cfg = _probe_config(tmp_path)
    one, two = str(tmp_path / 'one'), str(tmp_path / 'two')
    _check(subprocess.run([sys.executable, osp.join(REPO, 'tools', 'train.py'), cfg, '--work-dir', one,
                           *_options(digits_root, 32)], capture_output=True, text=True, cwd=str(tmp_path), env=_env()))
    log = _check(subprocess.run(['bash', osp.join(REPO, 'tools', 'dist_train.sh'), cfg, '2', '--work-dir', two,
                                 *_options(digits_root, 16)], capture_output=True, text=True, cwd=str(tmp_path),
                                env=_env()))
    assert 'Distributed training is not used' not in log

    single = _losses(one, 0)
    ranks = [_losses(two, r) for r in (0, 1)]
    assert len(single) == len(ranks[0]) == len(ranks[1]) == ITERS
    assert all(r['batch'] == 32 for r in single) and all(r['batch'] == 16 for rank in ranks for r in rank)
    # the global batch loss of 2 x 16 is the mean of the two ranks' means
    curve_1 = torch.tensor([r['loss'] for r in single], dtype=torch.float64)
    curve_2 = torch.tensor([(a['loss'] + b['loss']) / 2 for a, b in zip(*ranks)], dtype=torch.float64)
    diff = (curve_1 - curve_2).abs()
    a = torch.load(osp.join(one, 'epoch_1.pth'), map_location='cpu', weights_only=False)['state_dict']
    b = torch.load(osp.join(two, 'epoch_1.pth'), map_location='cpu', weights_only=False)['state_dict']
    weight_diff = max((a[k].double() - b[k].double()).abs().max().item() for k in a)
    print(f'loss 1x32: {[round(v, 5) for v in curve_1.tolist()]}\nloss 2x16: {[round(v, 5) for v in curve_2.tolist()]}'
          f'\nmax |loss diff| over {ITERS} iterations: {diff.max().item():.3g} (first {diff[0].item():.3g}); '
          f'final weights max |diff|: {weight_diff:.3g}')
    assert diff.max().item() <= LOSS_TOL and weight_diff <= LOSS_TOL
    assert (curve_1[0] - curve_1[-1]).item() > 0.05  # it trains: the loss goes down
    # the two ranks saw different halves of the batch (otherwise the comparison above would be trivial)
    assert any(abs(x['loss'] - y['loss']) > 1e-3 for x, y in zip(*ranks))


def test_mim_train_launcher_pytorch_gpus_2_on_cpu(digits_root, tmp_path):
    """`mim train mmmixer CFG --launcher pytorch --gpus 2` runs `python -m torch.distributed.launch
    --nproc_per_node=2 --master_port=P <installed .mim/tools/train.py> CFG --launcher pytorch ...`, which passes
    --local-rank; it must train with 2 gloo processes on CPU."""
    import mmmixer
    installed = osp.join(osp.dirname(mmmixer.__file__), '.mim', 'tools', 'train.py')
    work_dir = str(tmp_path / 'mim')
    args = ['--work-dir', work_dir, *_options(digits_root, 16)]
    args[args.index(f'train_dataloader.dataset.indices={ITERS * 32}')] = 'train_dataloader.dataset.indices=64'
    if osp.isfile(installed) and filecmp.cmp(installed, osp.join(REPO, 'tools', 'train.py'), shallow=False):
        mim = shutil.which('mim') or osp.join(osp.dirname(sys.executable), 'mim')
        cmd = [mim, 'train', 'mmmixer', config_path(CONFIG), '--launcher', 'pytorch', '--gpus', '2', *args]
    else:  # the installed copy is older than this checkout (tools/setup_env.sh reinstalls it): run mim's command
        cmd = [sys.executable, '-m', 'torch.distributed.launch', '--nproc_per_node=2',
               f'--master_port={random.randint(29700, 29999)}', osp.join(REPO, 'tools', 'train.py'),
               config_path(CONFIG), '--launcher', 'pytorch', *args]
    print(' '.join(cmd[:8]))
    log = _check(subprocess.run(cmd, capture_output=True, text=True, cwd=str(tmp_path), env=_env()))
    assert osp.isfile(osp.join(work_dir, 'epoch_1.pth'))
    assert 'Epoch(train) [1][2/2]' in log  # 64 images / (2 processes x 16)


def test_launcher_environment(monkeypatch):
    from mmmixer.utils.dist import check_launcher_env, cpu_model_wrapper_cfg, slurm_env
    env = dict(SLURM_PROCID='3', SLURM_NTASKS='4', SLURM_NODELIST='node[1-2]', SLURM_LOCALID='1',
               MASTER_ADDR='10.0.0.1')
    assert slurm_env(env) == dict(RANK='3', WORLD_SIZE='4', LOCAL_RANK='1', MASTER_ADDR='10.0.0.1',
                                  MASTER_PORT='29500')
    check_launcher_env('slurm', env)
    with pytest.raises(SystemExit, match=r"--launcher slurm needs .*missing \['SLURM_NODELIST'\].*srun"):
        check_launcher_env('slurm', dict(SLURM_PROCID='0', SLURM_NTASKS='1'))
    with pytest.raises(SystemExit, match=r"--launcher pytorch needs .*missing \['RANK'.*torchrun"):
        check_launcher_env('pytorch', {})
    assert cpu_model_wrapper_cfg(dict(find_unused_parameters=True)) == dict(
        type='MMDistributedDataParallel', broadcast_buffers=False, find_unused_parameters=True, device_ids=None)
