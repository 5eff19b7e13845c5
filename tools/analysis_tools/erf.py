"""Effective receptive fields (ERF) of backbones built from configs, with or without checkpoints.

    python tools/analysis_tools/erf.py MODEL [CHECKPOINT ...] [MODEL [CHECKPOINT ...] ...]
        [--stage last|all|I[,J...]] [--images N] [--image-dir DIR] [--size 1024 | HxW] [--threads T]
        [--seed S] [--out PREFIX]

MODEL is a config (``path/to/config.py``, or a package config such as ``mmpretrain::convnext/...``), optionally
followed by ``::key=value`` overrides as in ``benchmark.py``. The CHECKPOINT arguments after a MODEL give one column
each (``none`` = random init, the default when a MODEL has no checkpoint)::

    python tools/analysis_tools/erf.py configs/demo/msmlp-nano_1xb64-40e_digits.py none work_dirs/cls/epoch_40.pth \\
        mmpretrain::swin_transformer/swin-tiny_16xb64_in1k.py --size 224 --images 8 --out work_dirs/erf/demo

Method (RepLKNet, Ding et al., "Scaling Up Your Kernels to 31x31", CVPR 2022, arXiv 2203.06717, and its official
repository DingXiaoH/RepLKNet-pytorch, ``erf/``): for each image, the backbone runs in eval mode on one
(1, 3, H, W) input; the positive part of the chosen stage's output at the centre position (h // 2, w // 2), summed
over channels, is differentiated with respect to the input; the positive part of that gradient, summed over the
three input channels, is the image's contribution map; the maps are averaged over the images. For display and for
the area ratios the mean map ``m`` is log-scaled and rescaled to [0, 1]: ``s = log10(m + 1) / max(log10(m + 1))``.
The *high-contribution area ratio* for a threshold t is the area of the smallest square centred on the traced
position whose scores hold at least a fraction t of the total score, divided by the input area (t = 0.2, 0.3, 0.5,
0.99). RepLKNet centres the squares on the input centre; here they are centred on the input pixel at the centre of the
traced output position (:func:`position_centre`), which is the same for odd map sizes and avoids a bias of half a
stride for even ones (e.g. a 2x2 map, whose centre position covers the bottom-right quarter).

Images: scikit-learn's two sample photographs (``sklearn.datasets.load_sample_images``), or the images found under
``--image-dir`` (recursively; ``--images`` of them, evenly spaced over the sorted paths); flips and seeded random
crops reach ``--images`` pictures when there are fewer. Each picture is resized (shorter side)
and centre-cropped to ``--size``, then normalised with the mean/std (and channel order) of the config's data
preprocessor (ImageNet mean/std in RGB when the config has none).

The backbone is ``cfg.model.backbone`` (or ``cfg.model``), built as ``benchmark.py`` builds models (the config's
default scope, ``init_weights()``, a fixed seed per model) with ``out_indices`` set to the chosen stages and, where
the backbone has it, ``gap_before_final_norm=False`` (maps, not pooled vectors). A checkpoint is loaded into the
whole model (``strict=False``; keys missing from the checkpoint, such as the output norm of a stage the trained
model did not return, keep their initial values and are counted in the JSON).

Outputs: ``PREFIX.png`` and ``PREFIX.pdf`` (heatmaps: one column per model, one row per stage), ``PREFIX.md`` (the
command and the area-ratio table), ``PREFIX.json`` (the table with settings) and ``PREFIX.npz`` (the mean maps).
"""
import argparse
import datetime
import importlib.util
import inspect
import json
import os
import os.path as osp
import shlex
import sys
import warnings
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

THRESHOLDS = (0.2, 0.3, 0.5, 0.99)
#: the stage indices ``--stage all`` asks for (every family here, Swin, ConvNeXt and ResNet have four stages)
ALL_STAGES = (0, 1, 2, 3)
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
#: ImageNet mean / std (RGB, 0-255), used when a config has no data preprocessor
IMAGENET_MEAN, IMAGENET_STD = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)
#: the total stride assumed for backbones without a ``total_stride`` attribute (4-stage backbones downsample 32x)
DEFAULT_TOTAL_STRIDE = 32


def _benchmark():
    """``tools/analysis_tools/benchmark.py`` as a module (its ``load_config``, ``build_model``, ``split_spec``,
    ``label_of`` and ``parse_size`` build models here exactly as there)."""
    name = '_mmmixer_benchmark_tool'
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, osp.join(osp.dirname(osp.abspath(__file__)),
                                                                     'benchmark.py'))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    return sys.modules[name]


# ---------------------------------------------------------------------------------------------------------------
# the measure
# ---------------------------------------------------------------------------------------------------------------
def contribution_maps(backbone: nn.Module, image: torch.Tensor,
                      positions: Sequence[int]) -> Tuple[List[np.ndarray], List[Tuple[int, int]]]:
    """One image's contribution map for each returned stage in ``positions``, and the stages' map sizes.

    Args:
        backbone (nn.Module): returns a tensor or a tuple of (1, C_i, H_i, W_i) maps for a (1, 3, H, W) input.
        image (Tensor): (3, H, W) or (1, 3, H, W) normalised input.
        positions (Sequence[int]): indices into the backbone's returned tuple.

    Returns:
        tuple: (per position the (H, W) float64 map ``relu(d relu(y_c).sum() / d x).sum(channels)`` with ``y_c``
        the output at the centre position (h // 2, w // 2) (RepLKNet, arXiv 2203.06717); per position the output
        map size (h, w)).

    Raises:
        ValueError: a returned stage is not a (1, C, h, w) map (e.g. a pooled (1, C) vector).
    """
    x = (image if image.dim() == 4 else image[None]).detach().clone().requires_grad_(True)
    outs = backbone(x)
    outs = (outs, ) if torch.is_tensor(outs) else tuple(outs)
    maps, sizes = [], []
    for k, pos in enumerate(positions):
        out = outs[pos]
        if out.dim() != 4:
            raise ValueError(f'erf: the backbone returned a {tuple(out.shape)} tensor for output {pos}; the ERF needs '
                             '(B, C, H, W) maps (a pooled output cannot be traced to a position).')
        h, w = out.shape[-2:]
        sizes.append((int(h), int(w)))
        centre = F.relu(out[:, :, h // 2, w // 2]).sum()
        grad, = torch.autograd.grad(centre, x, retain_graph=k < len(positions) - 1, allow_unused=True)
        grad = torch.zeros_like(x) if grad is None else grad
        maps.append(F.relu(grad).sum(dim=(0, 1)).double().numpy())
    return maps, sizes


def compute_erf(backbone: nn.Module, images: Iterable[torch.Tensor], positions: Sequence[int],
                progress=None) -> Tuple[List[np.ndarray], int, List[Tuple[int, int]]]:
    """Mean contribution maps over ``images`` (see :func:`contribution_maps`); images whose map is not finite
    are skipped (as RepLKNet's script does).

    Args:
        backbone (nn.Module): put in eval mode here.
        images (Iterable[Tensor]): (3, H, W) normalised inputs, all of one size.
        positions (Sequence[int]): indices into the backbone's returned tuple.
        progress: an object with ``update()`` (e.g. mmengine's ``ProgressBar``) called once per image, or None.

    Returns:
        tuple: (list of (H, W) mean maps, one per position; the number of images used; the output map size
        (h, w) per position).

    Raises:
        ValueError: no image gave a finite map.
    """
    backbone.eval()
    sums, used, sizes = None, 0, []
    for image in images:
        maps, sizes = contribution_maps(backbone, image, positions)
        if all(np.isfinite(m).all() for m in maps):
            sums = maps if sums is None else [s + m for s, m in zip(sums, maps)]
            used += 1
        if progress is not None:
            progress.update()
    if not used:
        raise ValueError('erf: no image gave a finite gradient map (NaN/inf everywhere).')
    return [s / used for s in sums], used, sizes


def log_scaled(mean_map: np.ndarray) -> np.ndarray:
    """``log10(m + 1)`` rescaled to [0, 1] (all zeros stays all zeros); the scores of the figures and area ratios."""
    score = np.log10(np.asarray(mean_map, dtype=np.float64) + 1.)
    top = score.max()
    return score / top if top > 0 else score


def position_centre(out_size: Tuple[int, int], in_size: Tuple[int, int]) -> Tuple[int, int]:
    """The input pixel at the centre of the output position (h // 2, w // 2) of an (h, w) map computed from an
    (H, W) input: ``floor((h // 2 + 0.5) * H / h)`` per axis. It is the input centre (H // 2, W // 2) when h and w are
    odd; for even maps the centre position lies half a stride down and right of it."""
    return tuple(int((o // 2 + 0.5) * i / o) for o, i in zip(out_size, in_size))


def area_ratio(score: np.ndarray, t: float,
               centre: Optional[Tuple[int, int]] = None) -> Tuple[Optional[int], Optional[float]]:
    """The high-contribution area ratio of a score map for the threshold ``t``.

    Args:
        score (np.ndarray): (H, W) non-negative scores (e.g. :func:`log_scaled`).
        t (float): fraction of the total score, in (0, 1].
        centre (tuple[int, int], optional): (y, x) centre of the squares. Default None: (H // 2, W // 2), as
            RepLKNet; :func:`run` passes :func:`position_centre` of the traced output position.

    Returns:
        tuple: (side, ratio): the side of the smallest square centred on ``centre`` whose scores sum to at
        least ``t`` times the total (clipped to the map, so a side may exceed the map near its border), and that
        square's clipped area divided by H * W. (None, None) for an all-zero map.

    Raises:
        ValueError: ``t`` is not in (0, 1].
    """
    if not 0 < t <= 1:
        raise ValueError(f'erf: threshold t must be in (0, 1], got {t}.')
    score = np.asarray(score, dtype=np.float64)
    h, w = score.shape
    total = score.sum()
    if total <= 0:
        return None, None
    # sums over centred squares of half-side r from a 2-D prefix sum
    cum = np.pad(score.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    cy, cx = (h // 2, w // 2) if centre is None else centre
    for r in range(max(h, w)):
        y0, y1, x0, x1 = max(cy - r, 0), min(cy + r + 1, h), max(cx - r, 0), min(cx + r + 1, w)
        inside = cum[y1, x1] - cum[y0, x1] - cum[y1, x0] + cum[y0, x0]
        if inside >= t * total * (1 - 1e-12):
            return 2 * r + 1, (y1 - y0) * (x1 - x0) / (h * w)
    return None, None  # unreachable: the last square covers the map


# ---------------------------------------------------------------------------------------------------------------
# images
# ---------------------------------------------------------------------------------------------------------------
def source_images(image_dir: Optional[str] = None, limit: Optional[int] = None) -> List[np.ndarray]:
    """The pictures to derive inputs from, (H, W, 3) uint8 RGB.

    Args:
        image_dir (str, optional): a folder of images (``IMAGE_EXTENSIONS``, searched recursively, e.g. a class
            folder tree); None: scikit-learn's two sample photographs (``sklearn.datasets.load_sample_images``: a
            temple in China, a flower).
        limit (int, optional): read at most this many files, evenly spaced over the sorted paths (so a class
            folder tree gives pictures of every class). Default None: all.

    Raises:
        ValueError: the folder does not exist or holds no readable image.
    """
    if image_dir is None:
        from sklearn.datasets import load_sample_images
        return [np.ascontiguousarray(img) for img in load_sample_images().images]
    if not osp.isdir(image_dir):
        raise ValueError(f'erf: --image-dir {image_dir!r} is not a folder.')
    import mmcv
    files = sorted(osp.join(root, f) for root, _, names in os.walk(image_dir) for f in names
                   if f.lower().endswith(IMAGE_EXTENSIONS))
    if limit is not None and len(files) > limit:
        files = [files[int(i)] for i in np.linspace(0, len(files) - 1, limit).round()]
    images = [mmcv.imread(f, channel_order='rgb') for f in files]
    images = [img for img in images if img is not None]
    if not images:
        raise ValueError(f'erf: --image-dir {image_dir!r} holds no image (looked for {", ".join(IMAGE_EXTENSIONS)} '
                         'files); give a folder with pictures or leave --image-dir out for the sample photographs.')
    return [img if img.ndim == 3 else np.repeat(img[..., None], 3, axis=2) for img in images]


def make_views(sources: Sequence[np.ndarray], n: int, size: Tuple[int, int], seed: int = 0) -> List[np.ndarray]:
    """``n`` (size[0], size[1], 3) uint8 RGB views of ``sources``: each source as is, then flipped, then seeded random
    crops (40-100% of the side, flipped at random); each view is resized (shorter side) and centre-cropped."""
    import mmcv
    rng = np.random.default_rng(seed)
    views = []
    for i in range(n):
        img, variant = sources[i % len(sources)], i // len(sources)
        if variant >= 2:
            h, w = img.shape[:2]
            ch, cw = (int(round(s * rng.uniform(0.4, 1.0))) for s in (h, w))
            y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
            img = img[y:y + ch, x:x + cw]
        if variant == 1 or (variant >= 2 and rng.random() < 0.5):
            img = img[:, ::-1]
        th, tw = size
        h, w = img.shape[:2]
        scale = max(th / h, tw / w)
        img = mmcv.imresize(np.ascontiguousarray(img), (max(tw, round(w * scale)), max(th, round(h * scale))),
                            interpolation='bilinear')
        y, x = (img.shape[0] - th) // 2, (img.shape[1] - tw) // 2
        views.append(np.ascontiguousarray(img[y:y + th, x:x + tw]))
    return views


def normalisation(cfg) -> Tuple[np.ndarray, np.ndarray, bool]:
    """(mean, std, rgb) of the config's data preprocessor (``cfg.model.data_preprocessor`` or the top-level
    ``data_preprocessor``): ``rgb`` is True when the model sees RGB (``to_rgb``/``bgr_to_rgb``), False when it sees
    the BGR order OpenMMLab pipelines load. ImageNet values in RGB when the config has none."""
    pre = cfg.model.get('data_preprocessor', None) or cfg.get('data_preprocessor', None) or {}
    mean, std = pre.get('mean', None), pre.get('std', None)
    if mean is None or std is None:
        return np.array(IMAGENET_MEAN), np.array(IMAGENET_STD), True
    rgb = bool(pre.get('to_rgb', False) or pre.get('bgr_to_rgb', False))
    return np.array(mean, dtype=np.float64), np.array(std, dtype=np.float64), rgb


def to_tensor(view: np.ndarray, mean, std, rgb: bool) -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> (3, H, W) float32 normalised, in the channel order the model expects."""
    img = view.astype(np.float64) if rgb else view[..., ::-1].astype(np.float64)
    return torch.from_numpy(((img - mean) / std).transpose(2, 0, 1).copy()).float()


# ---------------------------------------------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------------------------------------------
def parse_stage(stage: str) -> Optional[Tuple[int, ...]]:
    """``'last'`` -> None; ``'all'`` -> (0, 1, 2, 3); ``'0,2'`` -> (0, 2).

    Raises:
        ValueError: anything else (the message lists the accepted values).
    """
    text = str(stage).strip().lower()
    if text == 'last':
        return None
    if text == 'all':
        return ALL_STAGES
    try:
        stages = tuple(sorted({int(s) for s in text.split(',')}))
    except ValueError:
        stages = ()
    if not stages or any(s not in ALL_STAGES for s in stages):
        raise ValueError(f'erf: unknown --stage {stage!r}; accepted: last (default), all, or stage indices '
                         f'{ALL_STAGES[0]}-{ALL_STAGES[-1]} separated by commas (e.g. 0,3).')
    return stages


def is_config(arg: str) -> bool:
    """A MODEL argument (a ``.py`` config, possibly ``pkg::``-prefixed and with ``::key=value`` overrides)."""
    return _benchmark().split_spec(arg)[0].endswith('.py')


def parse_models(args: Sequence[str]) -> List[Tuple[str, Optional[str]]]:
    """``[CONFIG, CKPT, CKPT, CONFIG, ...]`` -> ``[(CONFIG, CKPT), (CONFIG, CKPT), (CONFIG, None), ...]``
    (``none``/``random`` -> None).

    Raises:
        ValueError: a checkpoint before any config, a checkpoint file that does not exist, no config at all.
    """
    pairs, current, has_ckpt = [], None, False
    for arg in args:
        if is_config(arg):
            if current is not None and not has_ckpt:
                pairs.append((current, None))
            current, has_ckpt = arg, False
            continue
        if current is None:
            raise ValueError(f'erf: {arg!r} is not a config (*.py) and no config precedes it; give MODEL '
                             '[CHECKPOINT ...] groups, e.g. configs/demo/msmlp-nano_1xb64-40e_digits.py none ckpt.pth')
        ckpt = None if arg.lower() in ('none', 'random') else arg
        if ckpt is not None and '://' not in ckpt and not osp.isfile(ckpt):
            raise ValueError(f'erf: checkpoint {ckpt!r} (after {current}) not found; give a file, a URL, or none '
                             'for random init.')
        pairs.append((current, ckpt))
        has_ckpt = True
    if current is None:
        raise ValueError('erf: give at least one MODEL config.')
    if not has_ckpt:
        pairs.append((current, None))
    return pairs


def _accepts(cfg, key: str) -> bool:
    """Whether the backbone class of ``cfg`` (looked up as the config's registry would) takes the argument ``key``."""
    from mmengine.registry import MODELS, init_default_scope
    import mmmixer.models  # noqa: F401
    scope = cfg.get('default_scope', 'mmpretrain')
    init_default_scope(scope)
    node = cfg.model.get('backbone', cfg.model)
    if not isinstance(node['type'], str):
        cls = node['type']
    else:
        with MODELS.switch_scope_and_registry(scope) as registry:
            cls = registry.get(node['type'])
    return cls is not None and key in inspect.signature(cls.__init__).parameters


def load_weights(model: nn.Module, checkpoint: str) -> dict:
    """Load a checkpoint into ``model`` with ``strict=False``; returns the counts of loaded / missing / unexpected
    keys.

    Raises:
        ValueError: no key of the checkpoint matches the model (a checkpoint of another model or format).
    """
    from mmengine.runner import CheckpointLoader
    ckpt = CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu')
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else ckpt
    state = {k[7:] if k.startswith('module.') else k: v for k, v in state.items()}
    own = model.state_dict()
    matched = [k for k, v in state.items() if k in own and tuple(own[k].shape) == tuple(v.shape)]
    if not matched:
        raise ValueError(f'erf: no weight of {checkpoint} matches the model (expected keys such as '
                         f'{next(iter(own))!r}); convert official checkpoints first (tools/model_converters/).')
    missing = [k for k in own if k not in matched]
    model.load_state_dict({k: state[k] for k in matched}, strict=False)
    return dict(loaded=len(matched), missing=len(missing), unexpected=len(state) - len(matched),
                missing_keys=missing[:20])


def build_backbone(spec: str, stages: Optional[Tuple[int, ...]], checkpoint: Optional[str] = None,
                   seed: int = 0) -> Tuple[nn.Module, List[int], dict, object]:
    """The backbone of a MODEL spec returning the chosen stages as maps.

    Args:
        spec (str): config with optional ``::key=value`` overrides (``benchmark.py`` syntax).
        stages (tuple[int] | None): stage indices; None: the last stage.
        checkpoint (str, optional): weights of the whole model (None: random init, seeded with ``seed``).
        seed (int): ``torch.manual_seed`` before building. Default 0.

    Returns:
        tuple: (backbone, the stage index of each returned tensor, load report (empty without a checkpoint), cfg).

    Raises:
        ValueError: config not found / without ``model``, a stage the backbone does not have, a checkpoint that
            does not match, an ``init_cfg`` checkpoint that cannot be read (e.g. a URL without network).
    """
    bench = _benchmark()
    cfg = bench.load_config(spec)
    prefix = 'model.backbone' if 'backbone' in cfg.model else 'model'
    if stages:
        # a list, not a tuple: some backbones rewrite negative entries of out_indices in place
        extra = f'::{prefix}.out_indices={list(stages)}'
    else:  # the last stage: the config's own last non-negative index (not every backbone accepts -1), else -1
        node = cfg.model.get('backbone', cfg.model)
        own = node.get('out_indices', -1)
        own = [own] if isinstance(own, int) else list(own)
        extra = f'::{prefix}.out_indices={[max(own)] if own and min(own) >= 0 else -1}'
    if _accepts(cfg, 'gap_before_final_norm'):
        extra += f'::{prefix}.gap_before_final_norm=False'
    torch.manual_seed(seed)
    try:
        model, _ = bench.build_model(spec + extra)
    except OSError as err:  # e.g. urllib's URLError: init_cfg=Pretrained with a URL and no network
        raise ValueError(f'erf: building {spec} loads weights named by its init_cfg and failed ({err}); for random '
                         f'init add ::{prefix}.init_cfg=None to the MODEL (and, for those weights, give the downloaded '
                         'file as CHECKPOINT after it).') from None
    except (AssertionError, IndexError, ValueError) as err:
        if isinstance(err, (AssertionError, IndexError)) or 'out_indices' in str(err):
            raise ValueError(f'erf: {spec} could not return stages {stages} ({type(err).__name__}: {err}); '
                             'use --stage last or stages the backbone has.') from None
        raise
    report = load_weights(model, checkpoint) if checkpoint else {}
    backbone = getattr(model, 'backbone', model)
    num = getattr(backbone, 'num_stages', None) or len(getattr(backbone, 'stages', getattr(backbone, 'layers', [])))
    indices = [int(i) % num if num else int(i) for i in getattr(backbone, 'out_indices', stages or [-1])]
    if stages and num and any(s >= num for s in stages):
        raise ValueError(f'erf: unknown stage {max(stages)} for {spec}: the backbone has {num} stages (0-{num - 1}).')
    for p in backbone.parameters():
        p.requires_grad_(False)  # only the input needs a gradient
    return backbone, indices, report, cfg


def total_stride(backbone: nn.Module) -> int:
    """The backbone's ``total_stride`` attribute (mmmixer backbones), else :data:`DEFAULT_TOTAL_STRIDE`."""
    return int(getattr(backbone, 'total_stride', DEFAULT_TOTAL_STRIDE))


def check_size(size: Tuple[int, int], backbone: nn.Module, spec: str) -> None:
    """Raises ValueError when the input is smaller than the backbone's total stride (no last-stage position)."""
    stride = total_stride(backbone)
    if min(size) < stride:
        raise ValueError(f'erf: --size {size[0]}x{size[1]} is smaller than the total stride {stride} of {spec}: the '
                         f'last stage would have no position; give --size {stride} or more (1024 as RepLKNet, '
                         '224-256 for quick runs).')


# ---------------------------------------------------------------------------------------------------------------
# figure and table
# ---------------------------------------------------------------------------------------------------------------
def plot(rows: List[dict], maps: Dict[Tuple[int, int], np.ndarray], columns: List[str], stages: List[int],
         prefix: str) -> List[str]:
    """Heatmaps of the log-scaled maps: one column per model, one row per stage; writes PNG and PDF."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    ncol, nrow = len(columns), len(stages)
    fig, axes = plt.subplots(nrow, ncol, figsize=(2.3 * ncol + 0.6, 2.35 * nrow + 0.2), squeeze=False)
    image = None
    for c, label in enumerate(columns):
        for r, stage in enumerate(stages):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if (c, stage) not in maps:
                ax.axis('off')
                continue
            image = ax.imshow(log_scaled(maps[(c, stage)]), cmap='viridis', vmin=0, vmax=1, interpolation='nearest')
            row = next(x for x in rows if x['column'] == c and x['stage'] == stage)
            ratio = row['area_ratio']['0.99']
            title = f'{label}\nstage {stage}' if r == 0 else f'stage {stage}'
            ax.set_title(title, fontsize=6)
            if ratio is not None:
                ax.set_xlabel(f'area ratio t=0.99: {100 * ratio:.1f}%', fontsize=6)
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label='log10(contribution + 1), rescaled')
    paths = [prefix + '.png', prefix + '.pdf']
    for path in paths:
        fig.savefig(path, dpi=90, bbox_inches='tight')
    plt.close(fig)
    return paths


def format_table(result: dict, command: Optional[str] = None) -> str:
    """Markdown: the command, the settings and the area-ratio table (percent of the input area)."""
    s = result['settings']
    lines = [f'Command: `{command}`', ''] if command else []
    lines.append(f'Input {s["size"][0]}x{s["size"][1]}, {s["images"]} images ({s["image_source"]}), torch seed '
                 f'{s["seed"]}; high-contribution area ratio = smallest square centred on the traced position holding a '
                 'fraction t of the log-scaled contribution, in % of the input area.')
    cols = ['model', 'weights', 'stage'] + [f't={t}' for t in THRESHOLDS]
    lines += ['', '| ' + ' | '.join(cols) + ' |', '|' + '---|' * len(cols)]
    for r in result['rows']:
        cells = [r['label'], r['weights'], str(r['stage'])]
        cells += ['n/a' if r['area_ratio'][str(t)] is None else f'{100 * r["area_ratio"][str(t)]:.2f}'
                  for t in THRESHOLDS]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


# ---------------------------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------------------------
def run(models: Sequence[str], stage: str = 'last', images: int = 8, image_dir: Optional[str] = None,
        size=1024, seed: int = 0, prefix: Optional[str] = None, command: Optional[str] = None,
        progress: bool = True) -> dict:
    """Measure every (MODEL, CHECKPOINT) column and write the figure, table, JSON and maps.

    Args:
        models (Sequence[str]): MODEL [CHECKPOINT ...] groups (see the module docstring).
        stage (str): 'last', 'all' or comma-separated stage indices. Default 'last'.
        images (int): pictures per model. Default 8.
        image_dir (str, optional): folder of pictures; None: scikit-learn's sample photographs.
        size (int | str): N or HxW input size. Default 1024 (RepLKNet).
        seed (int): torch seed before each build, and the seed of the crops. Default 0.
        prefix (str, optional): output path prefix; None writes nothing.
        command (str, optional): the command line, quoted in the Markdown.
        progress (bool): show mmengine's ``ProgressBar``. Default True.

    Returns:
        dict: ``settings``, ``rows`` (one per column and stage: label, spec, checkpoint, weights, stage,
        images_used, area_ratio and side per threshold, load report) and ``files``.

    Raises:
        ValueError: bad ``stage``, ``images`` < 1, bad ``size`` or one smaller than a backbone's total stride,
            missing/empty image folder, unknown config, checkpoint not found or not matching.
    """
    bench = _benchmark()
    stages = parse_stage(stage)
    if int(images) < 1:
        raise ValueError(f'erf: --images must be at least 1, got {images}.')
    size = bench.parse_size(size)
    pairs = parse_models(models)
    for spec, _ in pairs:
        bench.load_config(spec)  # fail on a bad name before anything is built
    sources = source_images(image_dir, int(images))
    views = make_views(sources, int(images), size, seed)
    rows, maps, columns, all_stages = [], {}, [], []
    bar = None
    if progress:
        from mmengine.utils import ProgressBar
        bar = ProgressBar(len(pairs) * len(views))
    for c, (spec, ckpt) in enumerate(pairs):
        backbone, indices, report, cfg = build_backbone(spec, stages, ckpt, seed)
        check_size(size, backbone, spec)
        mean, std, rgb = normalisation(cfg)
        tensors = (to_tensor(v, mean, std, rgb) for v in views)
        weights = 'random init' if ckpt is None else osp.basename(ckpt)
        label = bench.label_of(spec)
        columns.append(label if len(pairs) == len({p[0] for p in pairs}) else f'{label}\n({weights})')
        mean_maps, used, out_sizes = compute_erf(backbone, tensors, list(range(len(indices))), bar)
        for stage_index, m, out_size in zip(indices, mean_maps, out_sizes):
            score = log_scaled(m)
            centre = position_centre(out_size, size)
            sides = {str(t): area_ratio(score, t, centre) for t in THRESHOLDS}
            rows.append(dict(column=c, label=label, spec=spec, checkpoint=ckpt, weights=weights, stage=stage_index,
                             images_used=used, out_size=list(out_size), centre=list(centre),
                             area_ratio={t: v[1] for t, v in sides.items()},
                             side={t: v[0] for t, v in sides.items()}, load=report))
            maps[(c, stage_index)] = m
            if stage_index not in all_stages:
                all_stages.append(stage_index)
    if bar is not None:
        sys.stdout.write('\n')
    settings = dict(size=list(size), images=len(views), stage=stage, seed=seed, thresholds=list(THRESHOLDS),
                    image_source=image_dir or 'scikit-learn sample images, flips and crops',
                    torch=torch.__version__, date=datetime.datetime.now().strftime('%Y-%m-%d %H:%M'))
    result = dict(settings=settings, rows=rows, files=[])
    if prefix:
        os.makedirs(osp.dirname(osp.abspath(prefix)), exist_ok=True)
        result['files'] = plot(rows, maps, columns, sorted(all_stages), prefix)
        with open(prefix + '.md', 'w', encoding='utf-8') as f:
            f.write(format_table(result, command))
        np.savez_compressed(prefix + '.npz', **{f'col{c}_stage{s}': m for (c, s), m in maps.items()})
        result['files'] += [prefix + '.md', prefix + '.json', prefix + '.npz']
        with open(prefix + '.json', 'w', encoding='utf-8') as f:
            json.dump(result, f, indent=1)
    return result


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('models', nargs='+', metavar='MODEL [CHECKPOINT ...]',
                   help='configs (with optional ::key=value overrides), each followed by checkpoints or none')
    p.add_argument('--stage', default='last', help='last (default), all, or stage indices such as 0,3')
    p.add_argument('--images', type=int, default=8, help='pictures per model (default 8)')
    p.add_argument('--image-dir', default=None, help='folder of pictures (default: scikit-learn sample photographs)')
    p.add_argument('--size', default='1024', help='input size N or HxW (default 1024, as RepLKNet)')
    p.add_argument('--threads', type=int, default=None, help='torch.set_num_threads')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out', default=None, help='output prefix (default work_dirs/erf/<date>/erf)')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    warnings.filterwarnings('ignore', message='pkg_resources is deprecated')  # printed by imports of the stack
    if args.threads:
        torch.set_num_threads(args.threads)
    prefix = args.out or osp.join('work_dirs', 'erf', f'{datetime.datetime.now():%Y%m%d-%H%M%S}', 'erf')
    command = 'python tools/analysis_tools/erf.py ' + shlex.join(sys.argv[1:] if argv is None else argv)
    try:
        result = run(args.models, args.stage, args.images, args.image_dir, args.size, args.seed, prefix,
                     command.strip())
    except ValueError as err:
        raise SystemExit(str(err)) from None
    print(format_table(result, command.strip()))
    print('wrote ' + ', '.join(result['files']))
    return result


if __name__ == '__main__':
    main()
