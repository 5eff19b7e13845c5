"""Backbone benchmark: parameters, FLOPs, inference and training-step throughput, peak memory, in one process.

Main table (docs/benchmarks.md, "Baseline: official implementations" for the protocol)::

    python tools/analysis_tools/benchmark.py [MODEL ...] [--threads 2] [--batch 16] [--train-batch 8]
        [--size 224] [--repeats 5] [--train-repeats 3] [--warmup 2] [--reference swin-t] [--compile] [--amp]
        [--no-flops] [--no-memory] [--profile N [--profile-train]] [--out FILE [--section NAME]] [--json FILE]

Scaling with the input size::

    python tools/analysis_tools/benchmark.py --scaling [MODEL ...] [--sizes 224 448 896 800x1333]
        [--scaling-batch 1] [--threads 2] [--repeats 3] [--warmup 1] [--out FILE [--section NAME]]

From an installed (non-editable) mmmixer: ``mim run mmmixer analysis_tools:benchmark ARGS`` (mim searches
``<mmmixer>/.mim/tools`` and maps ``analysis_tools:benchmark`` to ``analysis_tools/benchmark.py``).

MODEL names (default: every tiny preset and the two references)::

    msmlp-{t,s,b}               mmmixer.MSMLP
    posmlp-{t,s,b}[-gqpe|-lrpe] mmmixer.PosMLP (default GQPE)
    stripmlp-{lt,t,s,b}         mmmixer.StripMLP (img_size 224)
    swin-msmlp-{t,s,b}[:PAT]    mmmixer.SwinMSMLP, PAT a named block pattern (ms_shift, ms_early, ms_all, swin;
                                default ms_shift) or comma-separated per-stage letters, e.g. WM,WM,WMWMWM,WM
    swin-{t,s,b}                mmpretrain SwinTransformer (reference)
    convnext-{t,s,b}            mmpretrain ConvNeXt (reference)

What is measured (docs/benchmarks.md explains every column):

* Main table: each backbone in its ImageNet classification configuration (output of the last stage, as our
  ``configs/*/*_in1k.py`` and mmpretrain's configs use it), followed by global average pooling if the backbone
  returns a map, and a ``Linear(C, 1000)`` head -- the same head for every model. Stochastic depth 0.1 everywhere,
  no dropout. Inference: ``model.eval()`` under ``torch.no_grad()``. Training step: ``model.train()``,
  cross-entropy on random labels, ``backward()``, plain SGD step (no momentum, so no optimizer state). Images/s
  = batch / wall time of one call; the median over the runs after warm-up. The timed runs go round-robin over the
  models (run 1 of every model, then run 2, ...), so a load change on a shared machine hits every model alike and
  the ratios to the reference (measured in the same run) stay comparable.
* Scaling: the backbone alone in its dense-prediction configuration (all four stage outputs, per-position output
  norms, the settings of our Mask R-CNN configs), eval mode, no_grad, batch ``--scaling-batch``; milliseconds per
  call (median) and peak memory at each size, and the exponent ``k`` of ``time ~ pixels**k`` (and of memory),
  fitted by least squares on log(value) vs log(pixels).
* Peak memory: the largest amount of tensor memory held by PyTorch's CPU allocator at any moment of one call,
  above what was held when the call started (weights and the input batch excluded; activations, outputs and, in a
  training step, gradients included), from the memory events of ``torch.profiler`` (``profile_memory=True``). It
  excludes oneDNN/BLAS scratch buffers and malloc caching, so the process RSS grows by more.
* FLOPs: ``mmengine.analysis.get_model_complexity_info`` at batch 1 (mmengine counts a multiply-add as one FLOP:
  convolutions, linear layers, matmul/einsum, norms; element-wise operations are not counted).
* ``--profile N``: where one inference call spends its time, the N operators with the most self CPU time
  (``torch.profiler``), per model, appended to the report; ``--profile-train`` adds one training step.
"""
import argparse
import contextlib
import datetime
import json
import logging
import math
import os
import os.path as osp
import platform
import re
import statistics
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

# Run from a source checkout, use that checkout's mmmixer (not an older installed copy); an installed copy of this
# tool (mmmixer/.mim/tools/analysis_tools/...) finds no checkout two levels up and uses the installed package.
_REPO = osp.abspath(osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))
if osp.isfile(osp.join(_REPO, 'mmmixer', '__init__.py')) and _REPO not in sys.path:
    sys.path.insert(0, _REPO)

# kineto (torch.profiler) prints an error line per profile on machines without a GPU driver; 5 = fatal only
os.environ.setdefault('KINETO_LOG_LEVEL', '5')

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

__all__ = [
    'ModelSpec', 'resolve_model', 'run_benchmark', 'run_scaling', 'format_report', 'format_table',
    'format_scaling_table', 'fit_exponent', 'parse_size', 'peak_memory', 'op_profile', 'write_report',
    'machine_info',
    'DEFAULT_MODELS', 'TABLE_COLUMNS', 'COMPILE_COLUMNS'
]

DEFAULT_MODELS = ('msmlp-t', 'posmlp-t-gqpe', 'posmlp-t-lrpe', 'stripmlp-t', 'swin-msmlp-t', 'swin-t',
                  'convnext-t')
DEFAULT_SCALING_SIZES = ('224', '448', '896', '800x1333')

#: Columns of the main table, in order ({ref} is replaced by the reference's label).
TABLE_COLUMNS = ('model', 'spec', 'params (M)', 'FLOPs (G)', 'inference (img/s)', 'training step (img/s)',
                 'inference ÷ {ref}', 'training ÷ {ref}', 'peak mem. inference (MiB)',
                 'peak mem. training (MiB)')
#: Extra columns with ``--compile``.
COMPILE_COLUMNS = ('compiled inference (img/s)', 'compiled training (img/s)', 'compile speed-up inference',
                   'compile speed-up training', 'compile time (s)')

SGD_LR = 1e-4  # tiny, so a few steps do not drift the weights far from their init
DROP_PATH_RATE = 0.1


@dataclass
class ModelSpec:
    """A model under test.

    Args:
        name (str): the spec as typed on the command line, e.g. ``'posmlp-t-lrpe'``.
        label (str): the row label, e.g. ``'PosMLP-T (LRPE)'``.
        build (Callable[[bool, tuple], nn.Module]): ``build(dense, (H, W))`` returns the backbone for inputs of
            that size: ``dense=False`` in its classification configuration (last stage only), ``dense=True`` in its
            dense-prediction configuration (four stage maps). The backbone returns a tuple/list of tensors.
        description (str): how it is built (documentation only).
    """
    name: str
    label: str
    build: Callable[[bool, Tuple[int, int]], nn.Module]
    description: str = ''


# ---------------------------------------------------------------------------------------------------------------
# model specs
# ---------------------------------------------------------------------------------------------------------------
_ARCH_NAMES = {'t': 'tiny', 's': 'small', 'b': 'base', 'lt': 'light_tiny'}
_ALL_STAGES = (0, 1, 2, 3)


def _needs_small_map_padding(size, window=7, stride=32):
    """Swin classifiers use ``pad_small_map=False`` (ImageNet configs); below 7 x 32 = 224 px that raises, so
    smaller inputs (quick runs) switch it on."""
    return min(size) < window * stride


def _msmlp(arch, variant, dense, size):
    from mmmixer.models import MSMLP
    if dense:  # configs/msmlp/mask-rcnn_msmlp-t_fpn_1x_coco.py
        return MSMLP(arch=arch, drop_path_rate=DROP_PATH_RATE, out_indices=_ALL_STAGES, gap_before_final_norm=False,
                     shift_mode='zero')
    return MSMLP(arch=arch, drop_path_rate=DROP_PATH_RATE)  # pooled (B, C): pool -> LN, the official head order


def _posmlp(arch, variant, dense, size):
    from mmmixer.models import PosMLP
    kwargs = dict(arch=arch, pos_type=variant or 'gqpe', drop_path_rate=DROP_PATH_RATE, gap_before_final_norm=False)
    if dense:
        kwargs['out_indices'] = _ALL_STAGES
    return PosMLP(**kwargs)  # maps (official order: LN per position, then the pooling below)


def _stripmlp(arch, variant, dense, size):
    from mmmixer.models import StripMLP
    if dense:
        return StripMLP(arch=arch, img_size=224, drop_path_rate=DROP_PATH_RATE, out_indices=_ALL_STAGES,
                        gap_before_final_norm=False)
    return StripMLP(arch=arch, img_size=224, drop_path_rate=DROP_PATH_RATE)  # pooled (B, C): BN -> mean


def _swin_msmlp(arch, variant, dense, size):
    from mmmixer.models import SwinMSMLP
    pattern = variant or 'ms_shift'
    if ',' in pattern:
        pattern = pattern.split(',')
    if dense:  # configs/swin_msmlp/mask-rcnn_swin-msmlp-t_fpn_1x_coco.py
        return SwinMSMLP(arch=arch, block_pattern=pattern, drop_path_rate=DROP_PATH_RATE, out_indices=_ALL_STAGES,
                         gap_before_final_norm=False, pad_small_map=True, ms_cfg=dict(shift_mode='zero'))
    # configs/swin_msmlp/swin-msmlp-tiny_16xb64_in1k.py: maps, then the pooling below
    return SwinMSMLP(arch=arch, block_pattern=pattern, drop_path_rate=DROP_PATH_RATE,
                     pad_small_map=_needs_small_map_padding(size), gap_before_final_norm=False)


def _swin(arch, variant, dense, size):
    from mmpretrain.models.backbones import SwinTransformer
    if dense:
        return SwinTransformer(arch=arch, drop_path_rate=DROP_PATH_RATE, out_indices=_ALL_STAGES,
                               pad_small_map=True)
    return SwinTransformer(arch=arch, drop_path_rate=DROP_PATH_RATE,  # maps, then the pooling below
                           pad_small_map=_needs_small_map_padding(size))


def _convnext(arch, variant, dense, size):
    from mmpretrain.models.backbones import ConvNeXt
    if dense:
        return ConvNeXt(arch=arch, drop_path_rate=DROP_PATH_RATE, out_indices=list(_ALL_STAGES),
                        gap_before_final_norm=False)
    return ConvNeXt(arch=arch, drop_path_rate=DROP_PATH_RATE)  # pooled (B, C): pool -> LN


# family prefix -> (label, builder, accepted arch names, accepted variants or None, what it builds)
_FAMILIES = {
    'swin-msmlp': ('Swin+MS-MLP', _swin_msmlp, ('t', 's', 'b'), 'pattern', 'mmmixer.SwinMSMLP'),
    'msmlp': ('MS-MLP', _msmlp, ('t', 's', 'b'), None, 'mmmixer.MSMLP'),
    'posmlp': ('PosMLP', _posmlp, ('t', 's', 'b'), ('gqpe', 'lrpe'), 'mmmixer.PosMLP'),
    'stripmlp': ('Strip-MLP', _stripmlp, ('lt', 't', 's', 'b'), None, 'mmmixer.StripMLP'),
    'swin': ('Swin', _swin, ('t', 's', 'b'), None, 'mmpretrain SwinTransformer'),
    'convnext': ('ConvNeXt', _convnext, ('t', 's', 'b'), None, 'mmpretrain ConvNeXt'),
}


def _accepted_names() -> str:
    return ('msmlp-{t,s,b}, posmlp-{t,s,b}[-gqpe|-lrpe], stripmlp-{lt,t,s,b}, swin-msmlp-{t,s,b}[:PATTERN], '
            'swin-{t,s,b}, convnext-{t,s,b}')


def resolve_model(name: str) -> ModelSpec:
    """Turn a model name (see the module docstring) into a :class:`ModelSpec`; nothing is built yet.

    Raises:
        ValueError: an unknown family, arch or variant; the message lists the accepted names.
    """
    base, _, pattern = name.strip().partition(':')
    base = base.lower()
    for family in sorted(_FAMILIES, key=len, reverse=True):
        if not base.startswith(family + '-'):
            continue
        label, builder, archs, variants, what = _FAMILIES[family]
        parts = base[len(family) + 1:].split('-')
        variant = None
        if isinstance(variants, tuple) and len(parts) > 1 and parts[-1] in variants:
            variant = parts.pop()
        arch = '-'.join(parts)
        if arch not in archs:
            break
        if pattern:
            if variants != 'pattern':
                raise ValueError(f'benchmark: model {name!r}: only swin-msmlp takes a ":PATTERN"; accepted names: '
                                 f'{_accepted_names()}.')
            variant = pattern
        arch_name = _ARCH_NAMES[arch]
        row = f'{label}-{arch.upper() if arch != "lt" else "T*"}'
        if family == 'posmlp':
            row += f' ({(variant or "gqpe").upper()})'
        elif family == 'swin-msmlp':
            row += f' ({variant or "ms_shift"})'
        elif family in ('swin', 'convnext'):
            row += ' (mmpretrain)'
        return ModelSpec(
            name=name.strip(), label=row,
            build=lambda dense, size, a=arch_name, v=variant, b=builder: b(a, v, dense, size),
            description=f'{what}(arch={arch_name!r}' + (f', variant={variant!r}' if variant else '') + ')')
    raise ValueError(f'benchmark: unknown model {name!r}; accepted: {_accepted_names()}.')


def _as_spec(model: Union[str, ModelSpec]) -> ModelSpec:
    return model if isinstance(model, ModelSpec) else resolve_model(model)


# ---------------------------------------------------------------------------------------------------------------
# measuring
# ---------------------------------------------------------------------------------------------------------------
class _Classifier(nn.Module):
    """backbone -> last output -> global average pooling if it is a (B, C, H, W) map -> Linear(C, num_classes)."""

    def __init__(self, backbone: nn.Module, in_features: int, num_classes: int):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(in_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.backbone(x)[-1]
        if feat.dim() == 4:
            feat = feat.mean(dim=(2, 3))
        return self.head(feat)


def parse_size(size: Union[int, str, Sequence[int]]) -> Tuple[int, int]:
    """``224`` / ``'224'`` -> (224, 224); ``'800x1333'`` / ``(800, 1333)`` -> (800, 1333) (height, width).

    Raises:
        ValueError: anything else, or a non-positive size.
    """
    if isinstance(size, str):
        match = re.fullmatch(r'\s*(\d+)\s*(?:[xX*]\s*(\d+))?\s*', size)
        if match is None:
            raise ValueError(f'benchmark: size {size!r} is not N or HxW (e.g. 224 or 800x1333).')
        h = int(match.group(1))
        w = int(match.group(2)) if match.group(2) else h
    elif isinstance(size, int):
        h = w = size
    elif isinstance(size, Sequence) and len(size) == 2 and all(isinstance(s, int) for s in size):
        h, w = size
    else:
        raise ValueError(f'benchmark: size {size!r} is not N or HxW (e.g. 224 or 800x1333).')
    if h <= 0 or w <= 0:
        raise ValueError(f'benchmark: size {size!r} must be positive.')
    return h, w


def fit_exponent(pixels: Sequence[float], values: Sequence[float]) -> float:
    """Least-squares slope ``k`` of log(value) vs log(pixels), i.e. ``value ~ pixels**k``; nan if undefined."""
    pts = [(math.log(p), math.log(v)) for p, v in zip(pixels, values) if p and v and p > 0 and v > 0]
    if len(pts) < 2 or len({x for x, _ in pts}) < 2:
        return float('nan')
    xs, ys = np.array([p[0] for p in pts]), np.array([p[1] for p in pts])
    return float(np.polyfit(xs, ys, 1)[0])


def peak_memory(fn: Callable[[], object]) -> Optional[int]:
    """Peak tensor memory (bytes) held by PyTorch's CPU allocator during ``fn()``, above the level at its start.

    Replays the allocation/free events of ``torch.profiler`` (``profile_memory=True``) in time order and returns
    the maximum of their running sum. Returns None if this torch has no such events.
    """
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    try:
        events = prof.profiler.kineto_results.events()
    except AttributeError:
        return None
    deltas = sorted((e.start_ns(), e.nbytes()) for e in events
                    if e.name() == '[memory]' and e.device_type() == torch.autograd.DeviceType.CPU)
    if not deltas:
        return None
    level = peak = 0
    for _, nbytes in deltas:
        level += nbytes
        peak = max(peak, level)
    return peak


def op_profile(fn: Callable[[], object], top: int) -> List[dict]:
    """The ``top`` operators of one ``fn()`` call by self CPU time (``torch.profiler``): dicts with ``op``,
    ``self_ms``, ``percent`` (of the summed self CPU time of all operators) and ``calls``."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    stats = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in stats) or 1.
    stats.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
    return [dict(op=e.key, self_ms=e.self_cpu_time_total / 1e3, percent=100. * e.self_cpu_time_total / total,
                 calls=e.count) for e in stats[:top]]


def _median_rate(times: Sequence[float], batch: int) -> float:
    return batch / statistics.median(times)


def _round_robin(tasks: Sequence[Tuple[str, Callable[[], object]]], repeats: int) -> Dict[str, List[float]]:
    """Time every task ``repeats`` times, going round-robin over the tasks; seconds per call."""
    times = {key: [] for key, _ in tasks}
    for _ in range(repeats):
        for key, fn in tasks:
            start = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - start)
    return times


def _autocast(amp: bool):
    return torch.autocast('cpu', dtype=torch.bfloat16) if amp else contextlib.nullcontext()


@contextlib.contextmanager
def _quiet_mmengine():
    """Silence mmengine's logger (the FLOP counter warns about every uncounted op) and Python warnings."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    saved = [(h, h.level) for h in [logger, *logger.handlers]]
    for h, _ in saved:
        h.setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        try:
            yield
        finally:
            for h, level in saved:
                h.setLevel(level)


def count_flops(model: nn.Module, size: Tuple[int, int]) -> int:
    """mmengine's FLOP count of ``model`` for one (3, H, W) image (eval mode, no_grad)."""
    from mmengine.analysis import get_model_complexity_info
    was_training = model.training
    model.eval()
    with torch.no_grad(), _quiet_mmengine():
        info = get_model_complexity_info(model, input_shape=(3, *size), show_table=False, show_arch=False)
    model.train(was_training)
    return int(info['flops'])


class _Subject:
    """One model under test: the classifier, its inputs and optimizer, and the timed callables."""

    def __init__(self, spec: ModelSpec, size, batch, train_batch, num_classes, amp, compile_model, seed):
        torch.manual_seed(seed)
        self.spec = spec
        backbone = spec.build(False, size)
        if hasattr(backbone, 'init_weights'):
            with _quiet_mmengine():
                backbone.init_weights()
        backbone.eval()
        probe = torch.randn(1, 3, *size)
        with torch.no_grad():
            feat = backbone(probe)[-1]
        self.model = _Classifier(backbone, feat.shape[1], num_classes)
        self.params = sum(p.numel() for p in self.model.parameters())
        self.x = torch.randn(batch, 3, *size)
        self.x_train = torch.randn(train_batch, 3, *size)
        self.y_train = torch.randint(0, num_classes, (train_batch, ))
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=SGD_LR, momentum=0.)
        self.amp = amp
        self.compiled = torch.compile(self.model) if compile_model else None

    def infer(self, compiled: bool = False):
        model = self.compiled if compiled else self.model
        self.model.eval()
        with torch.no_grad(), _autocast(self.amp):
            return model(self.x)

    def train_step(self, compiled: bool = False):
        model = self.compiled if compiled else self.model
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        with _autocast(self.amp):
            logits = model(self.x_train)
        loss = F.cross_entropy(logits.float(), self.y_train)
        loss.backward()
        self.optimizer.step()
        return loss

    def train_step_memory(self) -> Optional[int]:
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)  # the measured step starts without gradients
        return peak_memory(self.train_step)


def run_benchmark(models: Sequence[Union[str, ModelSpec]] = DEFAULT_MODELS,
                  reference: Union[str, ModelSpec] = 'swin-t',
                  size: Union[int, str, Sequence[int]] = 224,
                  batch: int = 16,
                  train_batch: int = 8,
                  repeats: int = 5,
                  train_repeats: int = 3,
                  warmup: int = 2,
                  threads: Optional[int] = None,
                  compile_model: bool = False,
                  flops: bool = True,
                  memory: bool = True,
                  amp: bool = False,
                  num_classes: int = 1000,
                  profile_ops: int = 0,
                  profile_train: bool = False,
                  seed: int = 0,
                  log: Callable[[str], None] = print) -> dict:
    """Measure every model and the reference in this process; see the module docstring for what is measured.

    Args:
        models: model names or :class:`ModelSpec` s. The reference is appended if it is not among them.
        reference: the model the ratio columns divide by (measured in the same run).
        size: input size, int or 'HxW'.
        batch / train_batch: images per inference call / per training step.
        repeats / train_repeats: timed calls per model (the median is reported), after ``warmup`` untimed calls.
        threads: ``torch.set_num_threads`` (None: leave torch's setting).
        compile_model: also time ``torch.compile(model)`` (default mode).
        flops / memory: measure FLOPs / peak memory (off: the cells are empty).
        amp: bfloat16 autocast for the forward passes.
        profile_ops: if > 0, profile one inference call per model and keep its top operators (``row['profile']``,
            see :func:`op_profile`).
        profile_train: with ``profile_ops``, also profile one training step (``row['profile_train']``).
        log: progress messages.

    Returns:
        dict: ``settings``, ``machine`` (see :func:`machine_info`), ``reference`` (its label) and ``rows``, one dict
        per model (reference included) with ``label``, ``spec``, ``params``, ``flops``, ``infer_ips``,
        ``train_ips``, ``infer_ratio``, ``train_ratio``, ``infer_peak_bytes``, ``train_peak_bytes``, the raw
        ``infer_times``/``train_times`` (seconds per call) and with ``compile_model`` the ``compiled_*`` entries.

    Raises:
        ValueError: unknown model names, repeats < 1, warmup < 0, non-positive batches.
    """
    for name, value, low in (('repeats', repeats, 1), ('train_repeats', train_repeats, 1), ('warmup', warmup, 0),
                             ('batch', batch, 1), ('train_batch', train_batch, 1)):
        if value < low:
            raise ValueError(f'benchmark: {name} must be >= {low}, got {value}.')
    size = parse_size(size)
    specs = [_as_spec(m) for m in models]
    ref = _as_spec(reference)
    if ref.name not in [s.name for s in specs]:
        specs.append(ref)
    if threads is not None:
        torch.set_num_threads(threads)
    machine = machine_info()

    subjects = []
    for spec in specs:
        log(f'building {spec.label} ...')
        subjects.append(_Subject(spec, size, batch, train_batch, num_classes, amp, compile_model, seed))
    rows = {s.spec.name: dict(label=s.spec.label, spec=s.spec.name, description=s.spec.description,
                              params=s.params) for s in subjects}
    for s in subjects:
        row = rows[s.spec.name]
        row['flops'] = None
        if flops:
            log(f'FLOPs of {s.spec.label} ...')
            row['flops'] = count_flops(s.model, size)

    modes = [False, True] if compile_model else [False]
    # compile first (the first call of each compiled mode, timed as the compile time), then warm up
    for s in subjects:
        if compile_model:
            log(f'compiling {s.spec.label} ...')
            start = time.perf_counter()
            s.infer(compiled=True)
            s.train_step(compiled=True)
            rows[s.spec.name]['compile_s'] = time.perf_counter() - start
        log(f'warm-up {s.spec.label} ...')
        for compiled in modes:
            for _ in range(warmup):
                s.infer(compiled)
                s.train_step(compiled)
    log(f'timing inference ({repeats} rounds) ...')
    infer_times = _round_robin([((s.spec.name, c), lambda s=s, c=c: s.infer(c)) for s in subjects for c in modes],
                               repeats)
    log(f'timing training steps ({train_repeats} rounds) ...')
    train_times = _round_robin(
        [((s.spec.name, c), lambda s=s, c=c: s.train_step(c)) for s in subjects for c in modes], train_repeats)
    for s in subjects:
        row = rows[s.spec.name]
        row['infer_times'] = infer_times[(s.spec.name, False)]
        row['train_times'] = train_times[(s.spec.name, False)]
        row['infer_ips'] = _median_rate(row['infer_times'], batch)
        row['train_ips'] = _median_rate(row['train_times'], train_batch)
        if compile_model:
            row['compiled_infer_times'] = infer_times[(s.spec.name, True)]
            row['compiled_train_times'] = train_times[(s.spec.name, True)]
            row['compiled_infer_ips'] = _median_rate(row['compiled_infer_times'], batch)
            row['compiled_train_ips'] = _median_rate(row['compiled_train_times'], train_batch)
        row['infer_peak_bytes'] = row['train_peak_bytes'] = None
        if memory:
            log(f'peak memory of {s.spec.label} ...')
            row['infer_peak_bytes'] = peak_memory(s.infer)
            row['train_peak_bytes'] = s.train_step_memory()
        if profile_ops > 0:
            log(f'profiling {s.spec.label} ...')
            row['profile'] = op_profile(s.infer, profile_ops)
            if profile_train:
                row['profile_train'] = op_profile(s.train_step, profile_ops)
    ref_row = rows[ref.name]
    for row in rows.values():
        row['infer_ratio'] = row['infer_ips'] / ref_row['infer_ips']
        row['train_ratio'] = row['train_ips'] / ref_row['train_ips']
    machine['load_average_after'] = _load_average()
    settings = dict(mode='table', size=list(size), batch=batch, train_batch=train_batch, repeats=repeats,
                    train_repeats=train_repeats, warmup=warmup, threads=torch.get_num_threads(),
                    compile=compile_model, amp=amp, num_classes=num_classes, reference=ref.name, profile=profile_ops,
                    drop_path_rate=DROP_PATH_RATE, sgd_lr=SGD_LR)
    return dict(settings=settings, machine=machine, reference=ref_row['label'],
                rows=[rows[s.spec.name] for s in subjects])


def run_scaling(models: Sequence[Union[str, ModelSpec]] = DEFAULT_MODELS,
                sizes: Sequence[Union[int, str, Sequence[int]]] = DEFAULT_SCALING_SIZES,
                batch: int = 1,
                repeats: int = 3,
                warmup: int = 1,
                threads: Optional[int] = None,
                memory: bool = True,
                seed: int = 0,
                log: Callable[[str], None] = print) -> dict:
    """Backbone inference time and peak memory vs input size (dense-prediction configuration, eval, no_grad).

    Args:
        models: model names or :class:`ModelSpec` s (built with ``dense=True``).
        sizes: input sizes, int or 'HxW' each.
        batch: images per call.
        repeats: timed calls per model and size (median reported), round-robin, after ``warmup`` untimed calls.
        threads: ``torch.set_num_threads`` (None: leave torch's setting).
        memory: measure peak memory (see :func:`peak_memory`).
        log: progress messages.

    Returns:
        dict: ``settings``, ``machine`` and ``rows``: per model ``label``, ``spec``, ``sizes`` (list of [H, W]),
        ``times`` (median seconds per call at each size), ``all_times``, ``peak_bytes`` (per size, or None),
        ``time_exponent`` and ``memory_exponent`` (fitted vs pixel count, nan if undefined).

    Raises:
        ValueError: unknown model names or sizes, repeats < 1, warmup < 0, batch < 1.
    """
    for name, value, low in (('repeats', repeats, 1), ('warmup', warmup, 0), ('batch', batch, 1)):
        if value < low:
            raise ValueError(f'benchmark: {name} must be >= {low}, got {value}.')
    sizes = [parse_size(s) for s in sizes]
    specs = [_as_spec(m) for m in models]
    if threads is not None:
        torch.set_num_threads(threads)
    machine = machine_info()
    torch.manual_seed(seed)
    backbones, tasks = {}, []
    for spec in specs:
        log(f'building {spec.label} ...')
        backbone = spec.build(True, min(sizes, key=min))  # the smallest input decides small-map padding
        if hasattr(backbone, 'init_weights'):
            with _quiet_mmengine():
                backbone.init_weights()
        backbones[spec.name] = backbone.eval()
        for size in sizes:
            x = torch.randn(batch, 3, *size)

            def call(b=backbone, x=x):
                with torch.no_grad():
                    return b(x)

            tasks.append(((spec.name, size), call))
    log('warm-up ...')
    for _, fn in tasks:
        for _ in range(warmup):
            fn()
    log(f'timing ({repeats} rounds) ...')
    times = _round_robin(tasks, repeats)
    peaks = {}
    if memory:
        for key, fn in tasks:
            log(f'peak memory {key[0]} {key[1][0]}x{key[1][1]} ...')
            peaks[key] = peak_memory(fn)
    rows = []
    pixels = [h * w for h, w in sizes]
    for spec in specs:
        med = [statistics.median(times[(spec.name, s)]) for s in sizes]
        peak = [peaks.get((spec.name, s)) for s in sizes]
        rows.append(dict(label=spec.label, spec=spec.name, description=spec.description,
                         sizes=[list(s) for s in sizes], times=med, all_times=[times[(spec.name, s)] for s in sizes],
                         peak_bytes=peak, time_exponent=fit_exponent(pixels, med),
                         memory_exponent=fit_exponent(pixels, peak) if all(p for p in peak) else float('nan')))
    machine['load_average_after'] = _load_average()
    settings = dict(mode='scaling', sizes=[list(s) for s in sizes], batch=batch, repeats=repeats, warmup=warmup,
                    threads=torch.get_num_threads(), drop_path_rate=DROP_PATH_RATE)
    return dict(settings=settings, machine=machine, rows=rows)


# ---------------------------------------------------------------------------------------------------------------
# machine description and report
# ---------------------------------------------------------------------------------------------------------------
def _load_average() -> Optional[List[float]]:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _cpu_model() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.lower().startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit() -> Optional[str]:
    if not osp.isdir(osp.join(_REPO, '.git')):
        return None
    try:
        out = subprocess.run(['git', 'describe', '--always', '--dirty'], cwd=_REPO, capture_output=True, text=True,
                             timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def machine_info() -> dict:
    """CPU model (/proc/cpuinfo), logical and usable CPUs, load average, torch threads and CPU capability, software
    versions (mmengine's ``collect_env`` for Python/PyTorch/MMEngine/GCC), the checkout's git commit."""
    from mmengine.utils.dl_utils import collect_env
    with _quiet_mmengine():
        env = collect_env()
    info = dict(cpu=_cpu_model(), logical_cpus=os.cpu_count(), machine=platform.machine(),
                platform=platform.platform())
    try:
        info['usable_cpus'] = len(os.sched_getaffinity(0))
    except AttributeError:
        info['usable_cpus'] = os.cpu_count()
    info['torch_threads'] = torch.get_num_threads()
    info['torch_interop_threads'] = torch.get_num_interop_threads()
    try:
        info['cpu_capability'] = torch.backends.cpu.get_cpu_capability()
    except AttributeError:
        info['cpu_capability'] = None
    for key in ('Python', 'PyTorch', 'MMEngine', 'GCC'):
        if key in env:
            info[key] = str(env[key]).split('\n')[0]
    try:
        import mmpretrain
        info['mmpretrain'] = mmpretrain.__version__
    except ImportError:
        info['mmpretrain'] = None
    import mmmixer
    info['mmmixer'] = mmmixer.__version__  # no local path: the reports get committed
    info['git'] = _git_commit()
    info['load_average_before'] = _load_average()
    info['date'] = datetime.datetime.now().strftime('%Y-%m-%d %H:%M')
    return info


def _fmt(value, digits=2, scale=1.):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return 'n/a'
    return f'{value / scale:.{digits}f}'


def format_table(result: dict) -> str:
    """The main Markdown table of a :func:`run_benchmark` result."""
    ref = result['reference'].split(' (')[0]  # 'Swin-T (mmpretrain)' -> 'Swin-T'
    columns = [c.format(ref=ref) for c in TABLE_COLUMNS]
    compiled = result['settings'].get('compile')
    if compiled:
        columns += list(COMPILE_COLUMNS)
    lines = ['| ' + ' | '.join(columns) + ' |', '|' + '---|' * len(columns)]
    for r in result['rows']:
        cells = [r['label'], f'`{r["spec"]}`', _fmt(r['params'], 2, 1e6), _fmt(r['flops'], 2, 1e9),
                 _fmt(r['infer_ips'], 2), _fmt(r['train_ips'], 2), _fmt(r['infer_ratio'], 2),
                 _fmt(r['train_ratio'], 2), _fmt(r['infer_peak_bytes'], 1, 2**20),
                 _fmt(r['train_peak_bytes'], 1, 2**20)]
        if compiled:
            cells += [_fmt(r['compiled_infer_ips'], 2), _fmt(r['compiled_train_ips'], 2),
                      _fmt(r['compiled_infer_ips'] / r['infer_ips'], 2) + '×',
                      _fmt(r['compiled_train_ips'] / r['train_ips'], 2) + '×', _fmt(r.get('compile_s'), 0)]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def format_scaling_table(result: dict) -> str:
    """The Markdown table of a :func:`run_scaling` result: ms per call / peak MiB at each size, fitted exponents."""
    sizes = result['settings']['sizes']
    columns = ['model', 'spec'] + [f'{h}×{w} (ms / MiB)' for h, w in sizes] + ['time exponent', 'memory exponent']
    lines = ['| ' + ' | '.join(columns) + ' |', '|' + '---|' * len(columns)]
    for r in result['rows']:
        cells = [r['label'], f'`{r["spec"]}`']
        cells += [f'{_fmt(t, 1, 1e-3)} / {_fmt(m, 1, 2**20)}' for t, m in zip(r['times'], r['peak_bytes'])]
        cells += [_fmt(r['time_exponent'], 2), _fmt(r['memory_exponent'], 2)]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def _machine_lines(m: dict) -> List[str]:
    return [
        f'- CPU: {m["cpu"]} ({m["machine"]}), {m["logical_cpus"]} logical CPUs, {m["usable_cpus"]} usable by this '
        f'process; torch CPU capability {m.get("cpu_capability")}',
        f'- torch threads: {m["torch_threads"]} (inter-op {m["torch_interop_threads"]}); load average (1/5/15 min) '
        f'before {m.get("load_average_before")}, after {m.get("load_average_after")}',
        f'- software: Python {str(m.get("Python", "")).split(" ")[0]}, PyTorch {m.get("PyTorch")}, MMEngine '
        f'{m.get("MMEngine")}, mmpretrain {m.get("mmpretrain")}, mmmixer {m.get("mmmixer")}, git {m.get("git")}',
        f'- platform: {m["platform"]}; {m["date"]}',
    ]


def format_report(result: dict, command: Optional[str] = None) -> str:
    """Markdown: settings, machine description and the table of a :func:`run_benchmark` / :func:`run_scaling`
    result."""
    s, m = result['settings'], result['machine']
    lines = []
    if command:
        lines += [f'Command: `{command}`', '']
    if s['mode'] == 'table':
        h, w = s['size']
        lines.append(
            f'Settings: input 3×{h}×{w}; inference batch {s["batch"]} (eval, no_grad), training step batch '
            f'{s["train_batch"]} (cross-entropy, backward, SGD); images/s = median of {s["repeats"]} / '
            f'{s["train_repeats"]} timed calls after {s["warmup"]} warm-up calls, round-robin over the models; '
            f'ratios to {result["reference"]} from this run'
            + ('; bfloat16 autocast' if s.get('amp') else '')
            + ('; torch.compile (default mode) columns included' if s.get('compile') else '') + '.')
    else:
        lines.append(
            f'Settings: backbones in their dense-prediction configuration (four stage outputs), eval, no_grad, '
            f'batch {s["batch"]}; ms per call = median of {s["repeats"]} after {s["warmup"]} warm-up calls, '
            f'round-robin over models and sizes; exponents fitted on log(value) vs log(H×W).')
    lines += ['', 'Machine:'] + _machine_lines(m) + ['']
    lines.append(format_table(result) if s['mode'] == 'table' else format_scaling_table(result))
    for row in result['rows']:
        if row.get('profile'):
            lines += ['', f'Profile of one inference call of {row["label"]} (batch {s["batch"]}), top operators by '
                      'self CPU time:', '', '| operator | self CPU (ms) | share | calls |', '|---|---|---|---|']
            lines += [f'| `{p["op"]}` | {p["self_ms"]:.1f} | {p["percent"]:.1f}% | {p["calls"]} |'
                      for p in row['profile']]
        if row.get('profile_train'):
            lines += ['', f'Profile of one training step of {row["label"]} (batch {s["train_batch"]}), top operators '
                      'by self CPU time (forward and backward):', '', '| operator | self CPU (ms) | share | calls |',
                      '|---|---|---|---|']
            lines += [f'| `{p["op"]}` | {p["self_ms"]:.1f} | {p["percent"]:.1f}% | {p["calls"]} |'
                      for p in row['profile_train']]
    return '\n'.join(lines) + '\n'


def write_report(path: str, text: str, section: Optional[str] = None) -> None:
    """Write ``text`` to ``path``; with ``section``, replace only what lies between the lines
    ``<!-- benchmark:SECTION:begin -->`` and ``<!-- benchmark:SECTION:end -->`` of the existing file.

    Raises:
        ValueError: ``section`` given but the file or its two markers are missing.
    """
    if section is None:
        os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
        with open(path, 'w', encoding='utf-8') as f:
            f.write(text)
        return
    begin, end = f'<!-- benchmark:{section}:begin -->', f'<!-- benchmark:{section}:end -->'
    if not osp.isfile(path):
        raise ValueError(f'benchmark: --section {section!r} needs an existing file with the markers {begin} and '
                         f'{end}; {path} does not exist.')
    with open(path, encoding='utf-8') as f:
        content = f.read()
    i, j = content.find(begin), content.find(end)
    if i < 0 or j < i:
        raise ValueError(f'benchmark: {path} has no section {section!r}: expected the lines {begin} and {end} '
                         f'(in this order).')
    content = content[:i + len(begin)] + '\n' + text.rstrip('\n') + '\n' + content[j:]
    with open(path, 'w', encoding='utf-8') as f:
        f.write(content)


# ---------------------------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------------------------
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('models', nargs='*', default=list(DEFAULT_MODELS),
                        help=f'models to measure (default: {" ".join(DEFAULT_MODELS)})')
    parser.add_argument('--reference', default='swin-t', help='model of the ratio columns (default swin-t)')
    parser.add_argument('--threads', type=int, default=None, help='torch.set_num_threads (default: torch default)')
    parser.add_argument('--batch', type=int, default=16, help='inference batch (default 16)')
    parser.add_argument('--train-batch', type=int, default=8, help='training step batch (default 8)')
    parser.add_argument('--size', default='224', help='input size, N or HxW (default 224)')
    parser.add_argument('--repeats', type=int, default=None,
                        help='timed inference calls per model, median reported (default 5; --scaling: 3)')
    parser.add_argument('--train-repeats', type=int, default=3, help='timed training steps per model (default 3)')
    parser.add_argument('--warmup', type=int, default=None, help='untimed calls first (default 2; --scaling: 1)')
    parser.add_argument('--compile', action='store_true', help='add torch.compile (default mode) columns')
    parser.add_argument('--amp', action='store_true', help='bfloat16 autocast for the forward passes')
    parser.add_argument('--no-flops', action='store_true', help='skip the FLOP count')
    parser.add_argument('--no-memory', action='store_true', help='skip the peak-memory measurement')
    parser.add_argument('--num-classes', type=int, default=1000, help='classes of the linear head (default 1000)')
    parser.add_argument('--profile', type=int, default=0, metavar='N',
                        help='append the N operators with the most self CPU time of one inference call per model')
    parser.add_argument('--profile-train', action='store_true',
                        help='with --profile N: also profile one training step per model')
    parser.add_argument('--scaling', action='store_true', help='scaling mode (time and memory vs input size)')
    parser.add_argument('--sizes', nargs='+', default=list(DEFAULT_SCALING_SIZES),
                        help=f'scaling sizes, N or HxW (default {" ".join(DEFAULT_SCALING_SIZES)})')
    parser.add_argument('--scaling-batch', type=int, default=1, help='scaling batch (default 1)')
    parser.add_argument('--out', default=None,
                        help='Markdown report file (default work_dirs/benchmarks/<mode>_<date>.md)')
    parser.add_argument('--section', default=None,
                        help='replace only the section between <!-- benchmark:SECTION:begin/end --> in --out')
    parser.add_argument('--json', default=None, help='also write the raw results (all timings) as JSON')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.section and not args.out:
        raise SystemExit('benchmark: --section needs --out (e.g. --out docs/benchmarks.md --section table)')

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    try:
        if args.scaling:
            result = run_scaling(args.models, args.sizes, batch=args.scaling_batch,
                                 repeats=3 if args.repeats is None else args.repeats,
                                 warmup=1 if args.warmup is None else args.warmup, threads=args.threads,
                                 memory=not args.no_memory, seed=args.seed, log=log)
        else:
            result = run_benchmark(args.models, reference=args.reference, size=args.size, batch=args.batch,
                                   train_batch=args.train_batch, repeats=5 if args.repeats is None else args.repeats,
                                   train_repeats=args.train_repeats, warmup=2 if args.warmup is None else args.warmup,
                                   threads=args.threads, compile_model=args.compile, flops=not args.no_flops,
                                   memory=not args.no_memory, amp=args.amp, num_classes=args.num_classes,
                                   profile_ops=args.profile, profile_train=args.profile_train, seed=args.seed,
                                   log=log)
    except ValueError as err:
        raise SystemExit(str(err))
    command = 'python tools/analysis_tools/benchmark.py ' + ' '.join(sys.argv[1:] if argv is None else argv)
    report = format_report(result, command.strip())
    print(report)
    out = args.out or osp.join('work_dirs', 'benchmarks',
                               f'{result["settings"]["mode"]}_{datetime.datetime.now():%Y%m%d-%H%M%S}.md')
    write_report(out, report, args.section)
    log(f'report written to {out}' + (f' (section {args.section})' if args.section else ''))
    if args.json:
        os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=1, default=str)
        log(f'raw results written to {args.json}')


if __name__ == '__main__':
    main()
