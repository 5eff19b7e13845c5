"""Convert an official Strip-MLP checkpoint (Med-Process/Strip_MLP, or an MLP-DINO backbone) into an mmmixer one.

    python tools/model_converters/stripmlp_to_mmmixer.py SRC DST

SRC is the file the official training code saves (``{'model': state_dict, 'config': <yacs CfgNode>, ...}``) or a
bare state dict. It is read without executing anything from the file (pickled non-tensor objects become inert
placeholders). DST gets ``{'state_dict': {'backbone.*': ..., 'head.fc.*': ...}, 'meta': {...}}``; ``meta`` records
the arch, ``img_size`` (training resolution, read from the strip-MLP shapes) and ``channel_patches`` to build
``StripMLP`` with. DST loads with ``load_from=DST`` into the classifier of
``configs/stripmlp/stripmlp-*_8xb128_in1k.py`` and with
``init_cfg=dict(type='Pretrained', checkpoint=DST, prefix='backbone.')`` into det/seg backbones (every backbone
weight, including the 224-px strip MLPs, loads at any input size). MLP-DINO's ``proh_w`` spelling of the column
strip MLP is accepted.
"""
import argparse
import os
import os.path as osp
import sys

import torch

# Inside a source checkout, use the checkout's package (an installed mmmixer may be older); from an installed
# copy (mmmixer/.mim/tools/...), the installed package.
_CHECKOUT = osp.join(osp.dirname(osp.abspath(__file__)), '..', '..')
if osp.isfile(osp.join(_CHECKOUT, 'mmmixer', '__init__.py')):
    sys.path.insert(0, osp.abspath(_CHECKOUT))
from mmmixer.models.backbones.strip_mlp import convert_official_stripmlp  # noqa: E402
from mmmixer.utils.checkpoint import CheckpointLoadError, load_foreign_checkpoint  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='official Strip-MLP checkpoint (.pth)')
    parser.add_argument('dst', help='output mmmixer checkpoint (.pth)')
    args = parser.parse_args(argv)

    if not osp.isfile(args.src):
        raise SystemExit(f'error: SRC {args.src!r} does not exist; accepted: an official Strip-MLP checkpoint file '
                         '(.pth).')
    try:
        ckpt = load_foreign_checkpoint(args.src)
    except CheckpointLoadError as err:
        raise SystemExit(f'error: SRC: {err} Accepted: an official Strip-MLP checkpoint file (.pth).')
    if 'model' in ckpt:
        weights = ckpt['model']
    elif 'patch_embed.weight' in ckpt:  # a bare state dict
        weights = ckpt
    else:
        raise SystemExit(f'error: {args.src} has no \'model\' entry (top-level keys: {sorted(ckpt)[:10]}); an '
                         'official Strip-MLP checkpoint stores its weights under "model".')
    try:
        result = convert_official_stripmlp(weights)
    except ValueError as err:
        raise SystemExit(f'error: {args.src}: {err}')
    meta = dict(source=osp.basename(args.src), converter='stripmlp_to_mmmixer', family='StripMLP',
                arch=result['arch'], img_size=result['img_size'], channel_patches=result['channel_patches'])
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    torch.save(dict(state_dict=result['state_dict'], meta=meta), args.dst)
    print(f'converted {len(result["state_dict"])} tensors of Strip-MLP arch {result["arch"]} '
          f'(img_size {result["img_size"]}, channel_patches {result["channel_patches"]!r}) -> {args.dst}')


if __name__ == '__main__':
    main()
