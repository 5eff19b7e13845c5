"""Swap an mmmixer backbone into a config of another OpenMMLab codebase, and check it with one training step.

    python tools/misc/swap_backbone.py DOWNSTREAM BACKBONE --out OUT.py [--checkpoint CKPT] [--out-indices I ...]
        [--verify] [--input-size H W] [--batch-size N] [--device cpu]
    mim run mmmixer swap_backbone DOWNSTREAM BACKBONE --out OUT.py --verify

DOWNSTREAM is a config path or mmengine's package form (``mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py``,
``mmseg::``, ``mmpretrain::``, ``mmpose::``, ``mmaction::``). BACKBONE is one of our presets (``msmlp-tiny``,
``posmlp-small``, ``stripmlp-light-tiny``, ``swin-msmlp-base``, ...) or a config file holding a ``backbone`` dict
(e.g. a custom arch). OUT.py gets ``_base_`` = DOWNSTREAM and only the lines that change: our backbone with the
``out_indices`` of the levels the downstream model reads, every width of the modules that read it, ``init_cfg`` from
``--checkpoint``, and our family's recipe (:func:`mmmixer.swap.swap_backbone`). ``--verify`` builds the written config's
model, prints each backbone output next to the width that reads it, stops with one message on a mismatch, and runs
one training step and one predict step on a synthetic batch (:func:`mmmixer.swap.verify_swap`). ``--verify`` alone
with an existing config (``--verify-only CONFIG``) checks a hand-written config.

Exit status: 0 when written (and verified), 1 with the message of a :class:`mmmixer.swap.SwapError`.
"""
import argparse
import os
import os.path as osp
import sys


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Swap an mmmixer backbone into a downstream OpenMMLab config.')
    parser.add_argument('downstream', nargs='?', help="config path or 'pkg::rel/path.py'")
    parser.add_argument('backbone', nargs='?', help="preset (e.g. 'msmlp-tiny') or a config file with a backbone dict")
    parser.add_argument('--out', help='the config file to write')
    parser.add_argument('--checkpoint', help='ImageNet weights of the backbone (ours or an official file)')
    parser.add_argument('--out-indices', type=int, nargs='+',
                        help='our stages to return (default: the strides the old backbone fed)')
    parser.add_argument('--verify', action='store_true', help='build the model, check widths, train/predict once')
    parser.add_argument('--verify-only', metavar='CONFIG', help='only verify an existing (hand-written) config')
    parser.add_argument('--input-size', type=int, nargs=2, metavar=('H', 'W'),
                        help='synthetic image size in pixels (default: the config\'s test-time size)')
    parser.add_argument('--batch-size', type=int, default=2, help='synthetic batch size (default 2)')
    parser.add_argument('--device', default='cpu', help='device of --verify (default cpu)')
    args = parser.parse_args(argv)
    if args.verify_only is None and not (args.downstream and args.backbone and args.out):
        parser.error('DOWNSTREAM, BACKBONE and --out are required (or --verify-only CONFIG)')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    from mmmixer.swap import SwapError, swap_backbone, verify_swap
    try:
        target = args.verify_only
        if target is None:
            plan = swap_backbone(args.downstream, args.backbone, checkpoint=args.checkpoint,
                                 out_indices=args.out_indices)
            if not plan.base.count('::') and osp.isabs(plan.base):  # a file base: relative to the written config
                plan.base = osp.relpath(plan.base, osp.dirname(osp.abspath(args.out)))
            os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
            with open(args.out, 'w', encoding='utf-8') as f:
                f.write(plan.to_text())
            from mmengine.config import Config
            Config.fromfile(args.out)  # the written file loads
            print(f'wrote {args.out}: {plan.backbone["type"]} out_indices={plan.backbone["out_indices"]}, '
                  f'{", ".join(k for k in plan.model if k != "backbone") or "no consumer"} set')
            for note in plan.notes:
                print(f'  - {note}')
            target = args.out
        if args.verify or args.verify_only:
            print(f'verifying {target}')
            verify_swap(target, input_size=args.input_size, batch_size=args.batch_size, device=args.device)
            print('verify: OK')
    except SwapError as exc:
        print(f'swap_backbone: error: {exc}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
