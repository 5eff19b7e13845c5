"""Convert an official PosMLP checkpoint (Zhicaiwww/PosMLP) into an mmmixer checkpoint.

    python tools/model_converters/posmlp_to_mmmixer.py SRC DST [--use-non-ema]

SRC is the file the official (timm) training code saves: ``{'state_dict': ..., 'state_dict_ema': ...,
'args': <argparse Namespace>, ...}``. The official loaders read the EMA weights (``state_dict_ema``), and so does
this tool unless ``--use-non-ema`` is given. The file is read without executing anything from it (pickled
non-tensor objects become inert placeholders). DST gets ``{'state_dict': {'backbone.*': ..., 'head.fc.*': ...},
'meta': {...}}``; ``meta`` records the architecture to build (``arch``, ``window_size``, ``pos_type``,
``generalized``). It loads with ``load_from=DST`` into the classifier of ``configs/posmlp/posmlp-*_8xb128_in1k.py``
and with ``init_cfg=dict(type='Pretrained', checkpoint=DST, prefix='backbone.')`` into det/seg backbones (other
window sizes too: the positional tables are resized on load).
"""
import argparse
import os
import os.path as osp
import sys

import torch

# Run from a source checkout, use that checkout's mmmixer (not an older installed copy); an installed copy of this
# tool (mmmixer/.mim/tools/...) has no mmmixer package two levels up and uses the installed one.
_REPO = osp.abspath(osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))
if osp.isfile(osp.join(_REPO, 'mmmixer', '__init__.py')) and _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from mmmixer.models.backbones.pos_mlp import convert_official_posmlp  # noqa: E402
from mmmixer.utils.checkpoint import CheckpointLoadError, load_foreign_checkpoint  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='official PosMLP checkpoint (.pth)')
    parser.add_argument('dst', help='output mmmixer checkpoint (.pth)')
    parser.add_argument('--use-non-ema', action='store_true',
                        help="take the raw 'state_dict' weights instead of the EMA weights 'state_dict_ema'")
    args = parser.parse_args(argv)

    if not osp.isfile(args.src):
        raise SystemExit(f'error: SRC {args.src!r} does not exist; accepted: an official PosMLP checkpoint file '
                         '(.pth).')
    try:
        ckpt = load_foreign_checkpoint(args.src)
    except CheckpointLoadError as err:
        raise SystemExit(f'error: SRC: {err} Accepted: an official PosMLP checkpoint file (.pth).')
    key = 'state_dict' if args.use_non_ema else 'state_dict_ema'
    if key not in ckpt:
        raise SystemExit(f'error: {args.src} has no {key!r} entry (top-level keys: {sorted(ckpt)}); an official '
                         'PosMLP checkpoint stores its EMA weights under "state_dict_ema" and the raw weights '
                         'under "state_dict" (--use-non-ema).')
    try:
        result = convert_official_posmlp(ckpt[key])
    except ValueError as err:
        raise SystemExit(f'error: {args.src}: {err}')
    meta = dict(source=osp.basename(args.src), converter='posmlp_to_mmmixer', family='PosMLP', weights=key,
                arch=result['arch'], window_size=result['window_size'], pos_type=result['pos_type'],
                generalized=result['generalized'])
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    torch.save(dict(state_dict=result['state_dict'], meta=meta), args.dst)
    print(f'converted {len(result["state_dict"])} tensors ({key}) of PosMLP ({result["pos_type"]}) arch '
          f'{result["arch"]}, window_size {result["window_size"]} -> {args.dst}')


if __name__ == '__main__':
    main()
