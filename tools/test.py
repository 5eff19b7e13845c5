"""Evaluate a checkpoint on any mmmixer config (mmpretrain, mmdet or mmseg task).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out results.pkl] [--cfg-options k=v ...]

CHECKPOINT may be ``none``: the model is then evaluated as the config initialises it (``init_cfg``), which is how
the demo measures its untrained baselines.
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
    parser = argparse.ArgumentParser(description='Test (evaluate) a model (mmmixer)')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file, or "none" to evaluate the model as the config '
                        'initialises it (e.g. an untrained baseline)')
    parser.add_argument('--work-dir', help='the dir to save logs and metrics')
    parser.add_argument('--out', help='dump the predictions to this pickle file')
    parser.add_argument('--trust-checkpoint', action='store_true',
                        help='allow checkpoints whose pickled content could run code')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, key=value')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.trust_checkpoint:
        os.environ['MMMIXER_TRUST_CHECKPOINTS'] = '1'
    import mmmixer  # noqa: F401  (installs the safe checkpoint loader)
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    if args.launcher != 'none':
        import torch
        if not torch.cuda.is_available():
            cfg.setdefault('env_cfg', dict()).setdefault('dist_cfg', dict())['backend'] = 'gloo'
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or osp.join(
        './work_dirs', osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = None if args.checkpoint.lower() == 'none' else args.checkpoint
    if cfg.load_from is not None and '://' not in cfg.load_from and not osp.isfile(cfg.load_from):
        raise SystemExit(f'error: CHECKPOINT {cfg.load_from!r} is not an existing file; accepted: a checkpoint '
                         'written by tools/train.py or tools/model_converters/*_to_mmmixer.py, a URL, or "none" '
                         '(evaluate the model as the config initialises it).')
    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise SystemExit(f'error: --out {args.out!r} must name a .pkl or .pickle file (DumpResults pickles '
                             'the predictions).')
        cfg.test_evaluator = cfg.test_evaluator if isinstance(cfg.test_evaluator, list) else [
            cfg.test_evaluator
        ]
        cfg.test_evaluator.append(dict(type='DumpResults', out_file_path=args.out))
    from mmmixer.utils.config_check import check_backbone_type, check_data_roots
    check_backbone_type(cfg)
    check_data_roots(cfg, ('test', ))
    if args.launcher != 'none':
        import torch
        from mmmixer.utils.dist import check_launcher_env, cpu_model_wrapper_cfg, init_cpu_dist
        check_launcher_env(args.launcher)
        if not torch.cuda.is_available() and args.launcher in ('pytorch', 'slurm'):
            # mmengine's init_dist calls torch.cuda.set_device and its DDP wrapper passes device_ids: not on CPU
            cfg.model_wrapper_cfg = cpu_model_wrapper_cfg(cfg.get('model_wrapper_cfg'))
            dist_cfg = cfg.env_cfg.get('dist_cfg', {})
            init_cpu_dist(args.launcher, backend=dist_cfg.get('backend', 'gloo'), timeout=dist_cfg.get('timeout'))
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    printable = {}
    for key, value in metrics.items():
        try:
            printable[key] = round(float(value), 4)  # numpy scalars print as plain numbers
        except (TypeError, ValueError):
            printable[key] = value if isinstance(value, (str, int, float, list, tuple, dict)) else repr(value)
    print(printable)


if __name__ == '__main__':
    main()
