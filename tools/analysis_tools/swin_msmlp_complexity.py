"""Parameters and FLOPs of the Swin + MS-MLP hybrid classifiers next to mmpretrain's Swin, with one tool.

    python tools/analysis_tools/swin_msmlp_complexity.py [--archs tiny small base]
        [--patterns ms_shift ms_early ms_all swin] [--size 224]

Builds each ImageNet classifier (1000-class head) from ``configs/swin_msmlp/swin-msmlp-{arch}_16xb64_in1k.py``
with the requested ``block_pattern``, and mmpretrain's own ``swin_transformer/swin-{arch}_16xb64_in1k.py``, and
measures both with ``mmengine.analysis.get_model_complexity_info`` at ``3 x size x size`` (batch 1). FLOPs are
mmengine's count (multiply-adds of convs/linears/matmuls, as "FLOPs" in the Swin and MS-MLP papers' tables,
not counting element-wise ops: norms, softmax, GELU, additions). This is a static count, not a timing
benchmark. Prints a Markdown table (about 4 minutes on 2 CPU cores for the defaults).
"""
import argparse
import os.path as osp
import sys

import torch

REPO = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
if REPO not in sys.path:
    sys.path.insert(0, REPO)


def build(cfg_path, pattern=None):
    from mmengine.config import Config
    from mmengine.registry import MODELS, DefaultScope
    cfg = Config.fromfile(cfg_path)
    if pattern is not None:
        cfg.model.backbone.block_pattern = pattern
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(cfg.model)
    return model.eval()


def measure(model, size):
    from mmengine.analysis import get_model_complexity_info
    with torch.no_grad():
        info = get_model_complexity_info(model, input_shape=(3, size, size), show_table=False, show_arch=False)
    return info['params'], info['flops']


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--archs', nargs='+', default=['tiny', 'small', 'base'])
    parser.add_argument('--patterns', nargs='+', default=['ms_shift', 'ms_early', 'ms_all', 'swin'])
    parser.add_argument('--size', type=int, default=224)
    args = parser.parse_args(argv)

    import logging

    import mmpretrain
    from mmengine.logging import MMLogger

    import mmmixer.models  # noqa: F401  (registers mmmixer.SwinMSMLP)
    # mmengine's FLOP counter warns about every uncounted element-wise op; keep the output to the table
    logger = MMLogger.get_current_instance()
    for h in [logger, *logger.handlers]:
        h.setLevel(logging.ERROR)
    rows = []
    for arch in args.archs:
        # mmpretrain's own config, as shipped in its wheel (what `mmpretrain::` resolves to)
        swin_cfg = osp.join(osp.dirname(mmpretrain.__file__), '.mim', 'configs', 'swin_transformer',
                            f'swin-{arch}_16xb64_in1k.py')
        params, flops = measure(build(swin_cfg), args.size)
        rows.append((f'Swin-{arch[0].upper()} (mmpretrain)', '-', params, flops))
        for pattern in args.patterns:
            cfg = osp.join(REPO, 'configs', 'swin_msmlp', f'swin-msmlp-{arch}_16xb64_in1k.py')
            params, flops = measure(build(cfg, pattern), args.size)
            rows.append((f'SwinMSMLP-{arch[0].upper()}', pattern, params, flops))
        print(f'done {arch}', file=sys.stderr, flush=True)
    print(f'| model | block_pattern | params (M) | FLOPs (G) @{args.size} |')
    print('|---|---|---|---|')
    for name, pattern, params, flops in rows:
        print(f'| {name} | {pattern} | {params / 1e6:.2f} ({params:,}) | {flops / 1e9:.2f} |')


if __name__ == '__main__':
    main()
