"""Feature maps of the four stage outputs of a backbone built from a config, drawn over the input picture with
mmengine's ``Visualizer.draw_featmap`` and saved side by side in one image.

    python tools/analysis_tools/vis_featmap.py MODEL [CHECKPOINT] [--image IMG] [--size 224 | HxW]
        [--channel-reduction squeeze_mean|select_max] [--alpha 0.5] [--out PNG]

MODEL and CHECKPOINT as in ``erf.py`` (a config with optional ``::key=value`` overrides; ``none`` or no checkpoint =
random init). The backbone returns all four stages as maps (``out_indices=(0, 1, 2, 3)``, and
``gap_before_final_norm=False`` where the backbone has it) and runs in eval mode on one picture (``--image``, or the
first of scikit-learn's sample photographs), resized (shorter side), centre-cropped to ``--size`` and normalised
as the config's data preprocessor does. Each stage's (C, h, w) output is reduced over channels (``squeeze_mean``:
the channel mean; ``select_max``: the channel with the largest sum), upsampled to the input size and blended over
the picture (``draw_featmap``); the panels are written left to right, stage 0 to 3, as one RGB image.
"""
import argparse
import importlib.util
import os
import os.path as osp
import sys
from typing import List, Optional

import numpy as np
import torch


def _erf():
    """``tools/analysis_tools/erf.py`` as a module (model building, pictures and normalisation are shared)."""
    name = '_mmmixer_erf_tool'
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, osp.join(osp.dirname(osp.abspath(__file__)), 'erf.py'))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    return sys.modules[name]


def stage_featmaps(spec: str, checkpoint: Optional[str] = None, image: Optional[str] = None, size=224,
                   channel_reduction: str = 'squeeze_mean', alpha: float = 0.5, seed: int = 0) -> List[np.ndarray]:
    """One (H, W, 3) uint8 RGB panel per stage: that stage's feature map drawn over the input picture.

    Args:
        spec (str): config with optional ``::key=value`` overrides.
        checkpoint (str, optional): weights of the whole model; None: random init (seeded with ``seed``).
        image (str, optional): picture file; None: the first scikit-learn sample photograph.
        size (int | str): N or HxW input size. Default 224.
        channel_reduction (str): 'squeeze_mean' or 'select_max' (``Visualizer.draw_featmap``). Default 'squeeze_mean'.
        alpha (float): weight of the feature map over the picture. Default 0.5.
        seed (int): torch seed before building. Default 0.

    Raises:
        ValueError: unknown ``channel_reduction``, picture not readable, size below the total stride, and the
            errors of ``erf.build_backbone``.
    """
    import mmcv
    from mmengine.visualization import Visualizer
    erf = _erf()
    if channel_reduction not in ('squeeze_mean', 'select_max'):
        raise ValueError(f'vis_featmap: --channel-reduction must be squeeze_mean or select_max, got '
                         f'{channel_reduction!r}.')
    size = erf._benchmark().parse_size(size)
    if image is None:
        source = erf.source_images()[0]
    else:
        source = mmcv.imread(image, channel_order='rgb') if osp.isfile(image) else None
        if source is None:
            raise ValueError(f'vis_featmap: --image {image!r} is not a readable picture.')
    view = erf.make_views([source], 1, size)[0]
    backbone, indices, _, cfg = erf.build_backbone(spec, erf.ALL_STAGES, checkpoint, seed)
    erf.check_size(size, backbone, spec)
    x = erf.to_tensor(view, *erf.normalisation(cfg))[None]
    backbone.eval()
    with torch.no_grad():
        outs = backbone(x)
    visualizer = Visualizer()
    panels = []
    for out in outs:
        panels.append(visualizer.draw_featmap(out[0], overlaid_image=view, channel_reduction=channel_reduction,
                                              resize_shape=size, alpha=alpha))
    return panels


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('model', help='config, optionally with ::key=value overrides')
    p.add_argument('checkpoint', nargs='?', default=None, help='weights of the whole model (default: random init)')
    p.add_argument('--image', default=None, help='picture (default: a scikit-learn sample photograph)')
    p.add_argument('--size', default='224', help='input size N or HxW (default 224)')
    p.add_argument('--channel-reduction', default='squeeze_mean', help='squeeze_mean (default) or select_max')
    p.add_argument('--alpha', type=float, default=0.5, help='feature map weight over the picture (default 0.5)')
    p.add_argument('--out', default='work_dirs/featmaps.png', help='output image (default work_dirs/featmaps.png)')
    args = p.parse_args(argv)
    import mmcv
    ckpt = None if args.checkpoint in (None, 'none', 'random') else args.checkpoint
    try:
        panels = stage_featmaps(args.model, ckpt, args.image, args.size, args.channel_reduction, args.alpha)
    except ValueError as err:
        raise SystemExit(str(err)) from None
    gap = np.full((panels[0].shape[0], 4, 3), 255, np.uint8)
    strip = np.concatenate([x for panel in panels for x in (panel, gap)][:-1], axis=1)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    mmcv.imwrite(strip[..., ::-1], args.out)  # mmcv writes BGR
    print(f'wrote {args.out} ({len(panels)} stages, {strip.shape[1]}x{strip.shape[0]})')
    return strip


if __name__ == '__main__':
    main()
