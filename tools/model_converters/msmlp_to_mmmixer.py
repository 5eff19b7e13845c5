"""Convert an official MS-MLP checkpoint (JegZheng/MS-MLP) into an mmmixer checkpoint.

    python tools/model_converters/msmlp_to_mmmixer.py SRC DST [--use-ema]

SRC is the file the official training code saves (``{'model': state_dict, 'config': <yacs CfgNode>, ...}``).
It is read without executing anything from the file (pickled non-tensor objects become inert placeholders).
DST gets ``{'state_dict': {'backbone.*': ..., 'head.fc.*': ...}, 'meta': {...}}``: it loads with
``load_from=DST`` into the classifier of ``configs/msmlp/msmlp-*_8xb128_in1k.py`` and with
``init_cfg=dict(type='Pretrained', checkpoint=DST, prefix='backbone.')`` into det/seg backbones.
"""
import argparse
import os
import os.path as osp
import sys

import torch

# Run from a source checkout, use that checkout's mmmixer (not an older installed copy); an installed copy of this
# tool (mmmixer/.mim/tools/...) finds no checkout two levels up and uses the installed package.
_REPO = osp.abspath(osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))
if osp.isfile(osp.join(_REPO, 'mmmixer', '__init__.py')) and _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from mmmixer.models.backbones.ms_mlp import convert_official_msmlp  # noqa: E402
from mmmixer.utils.checkpoint import CheckpointLoadError, load_foreign_checkpoint  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='official MS-MLP checkpoint (.pth)')
    parser.add_argument('dst', help='output mmmixer checkpoint (.pth)')
    parser.add_argument('--use-ema', action='store_true',
                        help="take the 'model_ema' weights (present only if trained with --model_ema)")
    args = parser.parse_args(argv)

    if not osp.isfile(args.src):
        raise SystemExit(f'error: SRC {args.src!r} does not exist; accepted: an official MS-MLP checkpoint file '
                         '(.pth).')
    try:
        ckpt = load_foreign_checkpoint(args.src)
    except CheckpointLoadError as err:
        raise SystemExit(f'error: SRC: {err} Accepted: an official MS-MLP checkpoint file (.pth).')
    key = 'model_ema' if args.use_ema else 'model'
    if key not in ckpt:
        raise SystemExit(f'error: {args.src} has no {key!r} entry (top-level keys: {sorted(ckpt)}); '
                         'an official MS-MLP checkpoint stores its weights under "model".')
    try:
        result = convert_official_msmlp(ckpt[key])
    except ValueError as err:
        raise SystemExit(f'error: {args.src}: {err}')
    meta = dict(source=osp.basename(args.src), converter='msmlp_to_mmmixer', family='MSMLP',
                arch=result['arch'])
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    torch.save(dict(state_dict=result['state_dict'], meta=meta), args.dst)
    print(f'converted {len(result["state_dict"])} tensors ({key}) of MS-MLP arch {result["arch"]} '
          f'-> {args.dst}')


if __name__ == '__main__':
    main()
