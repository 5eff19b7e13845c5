"""Train any mmmixer config (mmpretrain, mmdet or mmseg task) with mmengine's Runner.

The config's ``default_scope`` decides the task; this script only handles the command line. It accepts the
options of the OpenMMLab ``tools/train.py`` scripts, so ``mim train mmmixer CONFIG`` and
``tools/dist_train.sh CONFIG N`` work as with mmpretrain/mmdet/mmseg.
"""
import argparse
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction
from mmengine.runner import Runner

# Run from a source checkout, use that checkout's mmmixer (not an older installed copy); an installed copy of this
# tool (mmmixer/.mim/tools/...) finds no checkout one level up and uses the installed package.
_REPO = osp.abspath(osp.join(osp.dirname(osp.abspath(__file__)), '..'))
if osp.isfile(osp.join(_REPO, 'mmmixer', '__init__.py')) and _REPO not in sys.path:
    sys.path.insert(0, _REPO)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a model (mmmixer)')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from this checkpoint; without a value, resume from the latest checkpoint in the '
        'work dir')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision (fp16 on CUDA, bfloat16 on CPU)')
    parser.add_argument('--no-validate', action='store_true', help='skip validation during training')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the lr by the actual total batch size vs auto_scale_lr.base_batch_size')
    parser.add_argument(
        '--trust-checkpoint', action='store_true',
        help='allow loading checkpoints whose pickled content could run code (sets '
        'MMMIXER_TRUST_CHECKPOINTS=1); not needed for checkpoints written by mmmixer/mmengine')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, key=value (e.g. train_cfg.max_epochs=3)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher')
    # torch.distributed.launch passes --local-rank (torch >= 2.0) or --local_rank
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def merge_args(cfg, args):
    """Apply the command-line options to the config (same meaning as in mmpretrain/mmdet/mmseg)."""
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    cfg.launcher = args.launcher
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    if args.amp:
        import torch
        optim_wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if optim_wrapper in ('OptimWrapper', 'mmengine.OptimWrapper'):
            if torch.cuda.is_available():
                cfg.optim_wrapper.type = 'AmpOptimWrapper'  # fp16 + dynamic loss scaling
                cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
            else:
                # mmengine's AmpOptimWrapper needs CUDA/NPU/MLU; on CPU use bfloat16 autocast
                cfg.optim_wrapper.type = 'mmmixer.AutocastOptimWrapper'
                cfg.optim_wrapper.dtype = 'bfloat16'
        elif 'Amp' not in optim_wrapper and 'Autocast' not in optim_wrapper:
            raise SystemExit(f'--amp: the config uses optim_wrapper type {optim_wrapper!r}; set an AMP '
                             'wrapper in the config instead.')
    if args.auto_scale_lr:
        cfg.setdefault('auto_scale_lr', dict())
        cfg.auto_scale_lr.enable = True
    if args.launcher != 'none':
        import torch
        if not torch.cuda.is_available():
            # NCCL needs GPUs; gloo runs multi-process training on CPU
            cfg.setdefault('env_cfg', dict()).setdefault('dist_cfg', dict())['backend'] = 'gloo'
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if cfg.get('compile'):
        # mmengine compiles model.train_step, optimizer step included: plain-dict param groups (PlainParamGroupsHook)
        hooks = list(cfg.get('custom_hooks') or [])
        if not any(str(h.get('type', '')).endswith('PlainParamGroupsHook') for h in hooks):
            hooks.append(dict(type='mmmixer.PlainParamGroupsHook'))
        cfg.custom_hooks = hooks
    if args.no_validate:  # after --cfg-options, which may set val_dataloader.* (e.g. its data_root)
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    if args.launcher != 'none':
        import torch
        if not torch.cuda.is_available():
            # mmengine's DDP wrapper passes device_ids=[LOCAL_RANK], which torch refuses for a CPU model
            from mmmixer.utils.dist import check_no_sync_bn, cpu_model_wrapper_cfg
            check_no_sync_bn(cfg)
            wrapper = dict(find_unused_parameters=cfg.get('find_unused_parameters', False))
            wrapper.update(cfg.get('model_wrapper_cfg') or {})
            cfg.model_wrapper_cfg = cpu_model_wrapper_cfg(wrapper)
    return cfg


def setup_cpu_dist(cfg):
    """On a machine without CUDA, initialise torch.distributed (gloo) here: mmengine's ``init_dist`` calls
    ``torch.cuda.set_device``, which fails without an NVIDIA driver (mmmixer/utils/dist.py)."""
    import torch
    from mmmixer.utils.dist import check_launcher_env, init_cpu_dist
    if cfg.launcher == 'none':
        return
    check_launcher_env(cfg.launcher)
    if not torch.cuda.is_available() and cfg.launcher in ('pytorch', 'slurm'):
        dist_cfg = cfg.get('env_cfg', {}).get('dist_cfg', {})
        init_cpu_dist(cfg.launcher, backend=dist_cfg.get('backend', 'gloo'), timeout=dist_cfg.get('timeout'))


def main(argv=None):
    args = parse_args(argv)
    if args.trust_checkpoint:
        os.environ['MMMIXER_TRUST_CHECKPOINTS'] = '1'
    import mmmixer  # noqa: F401  (installs the safe checkpoint loader)
    cfg = merge_args(Config.fromfile(args.config), args)
    from mmmixer.utils.config_check import check_backbone_type, check_data_roots, check_pretrained
    check_backbone_type(cfg)
    check_pretrained(cfg)
    check_data_roots(cfg, ('train', 'val'))
    load_from = cfg.get('load_from')
    if isinstance(load_from, str) and '://' not in load_from and not osp.isfile(load_from):
        setting = '--resume' if args.resume not in (None, 'auto') else 'load_from'
        raise SystemExit(f'error: {setting} {load_from!r} is not an existing file; accepted: a checkpoint written by '
                         'tools/train.py or tools/model_converters/*_to_mmmixer.py, or a URL (--resume without a '
                         'value resumes from the latest checkpoint of the work dir).')
    setup_cpu_dist(cfg)
    if 'runner_type' in cfg:
        from mmengine.registry import RUNNERS
        runner = RUNNERS.build(cfg)
    else:
        runner = Runner.from_cfg(cfg)
    runner.train()


if __name__ == '__main__':
    main()
