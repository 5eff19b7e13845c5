"""Multi-process training without GPUs (gloo backend), for the ``pytorch`` and ``slurm`` launchers.

mmengine 0.10.7's ``init_dist`` calls ``torch.cuda.set_device(local_rank)`` for both launchers, which raises on a
machine without an NVIDIA driver, and its Runner wraps the model in DDP with ``device_ids=[LOCAL_RANK]``, which
torch refuses for a CPU model. ``tools/train.py`` / ``tools/test.py`` therefore call :func:`init_cpu_dist` and
:func:`cpu_model_wrapper_cfg` when CUDA is not available; with CUDA they leave everything to mmengine.

The environment follows mmengine's conventions:

* ``--launcher pytorch`` (``torchrun`` / ``tools/dist_train.sh``, or ``python -m torch.distributed.launch`` as
  ``mim train ... --launcher pytorch`` runs it): ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
  ``MASTER_PORT`` are set by the launcher.
* ``--launcher slurm`` (``srun``): rank ``SLURM_PROCID``, world size ``SLURM_NTASKS``, local rank
  ``SLURM_LOCALID``; the master is the first host of ``SLURM_NODELIST`` (``scontrol show hostname``) unless
  ``MASTER_ADDR`` is set; the port is ``MASTER_PORT`` or 29500 (torch's default).
"""
import datetime
import os
import subprocess
from typing import Dict, Mapping, Optional

import torch.distributed as dist

__all__ = [
    'LAUNCHER_ENV', 'slurm_env', 'check_launcher_env', 'init_cpu_dist', 'cpu_model_wrapper_cfg', 'check_no_sync_bn'
]

#: norm types whose layers synchronise batch statistics across processes (CUDA only)
SYNC_BN_TYPES = ('SyncBN', 'MMSyncBN', 'TorchSyncBN')

#: environment variables each launcher must provide
LAUNCHER_ENV = {
    'pytorch': ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT'),
    'slurm': ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST'),
}


def check_launcher_env(launcher: str, environ: Optional[Mapping[str, str]] = None) -> None:
    """Raise ``SystemExit`` with what is missing when ``launcher`` runs outside the launcher it names.

    Args:
        launcher (str): 'pytorch' or 'slurm' ('none' and 'mpi' are not checked).
        environ (Mapping, optional): defaults to ``os.environ``.

    Raises:
        SystemExit: a required variable is not set; the message names the launcher, the missing variables and
            how to start the job.
    """
    environ = os.environ if environ is None else environ
    missing = [k for k in LAUNCHER_ENV.get(launcher, ()) if k not in environ]
    if missing:
        how = ('start it with torchrun, e.g. `tools/dist_train.sh CONFIG 2` or `torchrun --nproc_per_node 2 '
               'tools/train.py CONFIG --launcher pytorch`' if launcher == 'pytorch' else
               'start it with srun, e.g. `GPUS=2 tools/slurm_train.sh PARTITION JOB CONFIG` or `srun -n 2 python -u '
               'tools/train.py CONFIG --launcher slurm`')
        raise SystemExit(f'error: --launcher {launcher} needs the environment variables '
                         f'{list(LAUNCHER_ENV[launcher])} that its launcher sets; missing {missing}. Accepted: '
                         f'--launcher none for one process, or {how}.')


def slurm_env(environ: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """The torch.distributed variables of a slurm task, as mmengine's ``_init_dist_slurm`` derives them.

    Returns:
        dict: ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``.
    """
    environ = os.environ if environ is None else environ
    rank = environ['SLURM_PROCID']
    addr = environ.get('MASTER_ADDR')
    if addr is None:
        addr = subprocess.getoutput(f"scontrol show hostname {environ['SLURM_NODELIST']} | head -n1").strip()
    return dict(RANK=rank, WORLD_SIZE=environ['SLURM_NTASKS'], LOCAL_RANK=environ.get('SLURM_LOCALID', '0'),
                MASTER_ADDR=addr, MASTER_PORT=environ.get('MASTER_PORT', '29500'))


def init_cpu_dist(launcher: str, backend: str = 'gloo', timeout: Optional[float] = None) -> None:
    """Initialise ``torch.distributed`` for CPU processes (mmengine's ``init_dist`` without the CUDA calls).

    Args:
        launcher (str): 'pytorch' or 'slurm'.
        backend (str): 'gloo' (default; NCCL needs GPUs) or 'mpi'.
        timeout (float, optional): seconds, as ``env_cfg.dist_cfg.timeout``.

    Raises:
        SystemExit: the launcher's environment variables are missing (:func:`check_launcher_env`).
        ValueError: ``launcher`` is not 'pytorch' or 'slurm'.
    """
    if launcher not in LAUNCHER_ENV:
        raise ValueError(f"init_cpu_dist: launcher must be 'pytorch' or 'slurm', got {launcher!r}.")
    check_launcher_env(launcher)
    if launcher == 'slurm':
        os.environ.update(slurm_env())
    if dist.is_initialized():
        return
    kwargs = dict(timeout=datetime.timedelta(seconds=timeout)) if timeout is not None else {}
    dist.init_process_group(backend=backend, rank=int(os.environ['RANK']),
                            world_size=int(os.environ['WORLD_SIZE']), **kwargs)


def cpu_model_wrapper_cfg(model_wrapper_cfg: Optional[dict]) -> dict:
    """``model_wrapper_cfg`` for DDP on CPU: ``device_ids=None`` (mmengine passes ``[LOCAL_RANK]``, which torch's
    DDP refuses for a CPU model), keeping mmengine's defaults and any setting of the config."""
    cfg = dict(type='MMDistributedDataParallel', broadcast_buffers=False)
    cfg.update(model_wrapper_cfg or {})
    cfg['device_ids'] = None
    return cfg


def _sync_bn_settings(node, path: str):
    if isinstance(node, dict):
        if node.get('type') in SYNC_BN_TYPES:
            yield f'{path}.type={node["type"]!r}'
        for key, value in node.items():
            yield from _sync_bn_settings(value, f'{path}.{key}')
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _sync_bn_settings(value, f'{path}.{i}')


def check_no_sync_bn(cfg) -> None:
    """Multi-process training on CPU cannot use SyncBN: torch's ``SyncBatchNorm`` raises "expected input tensor to
    be on GPU" (torch 2.14) and mmcv's ``MMSyncBN`` is a CUDA op.

    Raises:
        SystemExit: ``sync_bn`` is set or the model config has a SyncBN norm; the message names the settings and
            what is accepted.
    """
    found = ([f'sync_bn={cfg.sync_bn!r}'] if cfg.get('sync_bn') else []) + list(
        _sync_bn_settings(cfg.get('model'), 'model'))
    if found:
        raise SystemExit(f'error: {found[:3]}: SyncBN needs GPUs (torch\'s SyncBatchNorm refuses CPU tensors), '
                         'and this multi-process run is on CPU; accepted on CPU: BN / GN / LN norm configs without '
                         'sync_bn (each process then normalises with its own batch statistics; MS-MLP and SwinMSMLP '
                         'use LayerNorm only and are unaffected), or --launcher none.')

