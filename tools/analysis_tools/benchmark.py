"""Benchmark models built from configs: inference throughput, training-step time, params/FLOPs, profiles.

    python tools/analysis_tools/benchmark.py MODEL [MODEL ...] [--reference MODEL] [--threads 2]
        [--size 224 [800x1333 ...]] [--batch 16] [--train-batch 8] [--repeats 5] [--train-repeats 3] [--warmup 2]
        [--backbone-only] [--no-train] [--complexity-only] [--profile N] [--official FAMILY=DIR]
        [--device cpu|cuda] [--compile] [--amp bf16|fp16] [--channels-last] [--per-flop-reference MODEL]
        [--clock wall|cpu]
        [--out FILE [--section NAME]] [--json FILE]

MODEL is a config, optionally followed by ``::key=value`` overrides of the config (as ``--cfg-options``)::

    configs/stripmlp/stripmlp-tiny_8xb128_in1k.py
    configs/posmlp/posmlp-tiny_8xb128_in1k.py::model.backbone.pos_type=lrpe
    mmpretrain::swin_transformer/swin-tiny_16xb64_in1k.py::model.backbone.arch=tiny

``cfg.model`` is built under the config's default scope (mmpretrain's ``ImageClassifier`` for classification
configs) and called as ``model(x, mode='tensor')`` (logits): backbone, neck and head as in the config, no data
preprocessor. With ``--backbone-only`` only ``model.backbone`` is timed (use overrides such as
``model.backbone.out_indices=(0,1,2,3)`` for the dense-prediction layout).

* inference: ``eval()`` under ``torch.no_grad()``; training step: ``train()``, cross-entropy on random labels,
  ``backward()`` and a plain SGD step (a sum of the outputs as loss with ``--backbone-only``). Time per call is the
  median of the timed calls after warm-up; the timed calls go round-robin over all models (run 1 of every model,
  then run 2, ...), so a load change on a shared machine hits every model alike. Ratios (to ``--reference`` or to
  the official code) are the median over the rounds of the per-round time ratio (:func:`paired_ratio`).
* ``--complexity-only``: parameters and FLOPs from mmengine's counter (``mmengine.analysis``, as
  ``get_model_complexity_info``: a multiply-add counts as one FLOP; element-wise operations are not counted), no
  timing.
* ``--profile N``: the N operators with the most self CPU time of one inference call and one training step
  (``torch.profiler``) per model, and the share of :data:`SHARED_OPS` (kernels any implementation runs); with
  ``--official``, the upper bound of ours / official if ours spent no time outside those kernels.
* ``--official FAMILY=DIR``: also time the official implementation found in the checkout DIR (families:
  see ``OFFICIAL``) next to every model of that family, with the same weights (the official model's weights
  converted by our converter and loaded into ours); the report gives ours / official and the largest output
  difference.
* ``--device cuda``: models and inputs on the GPU; each timed call ends with ``torch.cuda.synchronize`` and its
  peak memory is ``torch.cuda.max_memory_allocated`` (reset before the call).
* ``--compile`` adds a ``torch.compile`` row beside each eager one (same weights and inputs); the first inference
  call and the first training step, which compile, are timed apart (``compile (s)``) and never counted.
  ``--amp bf16|fp16`` adds a ``torch.autocast`` row beside each fp32 one (fp16 training steps with a
  ``GradScaler``); with both, four rows per model. Ratio columns compare rows of the same variant;
  ``÷ eager fp32`` is the speed-up of a variant over the same model's eager fp32 row.
* ``--clock cpu`` times each call by the CPU time of this process (``time.process_time``, all threads) instead
  of wall time: on a shared machine, time-slicing by other processes then does not count (their cache and memory
  traffic still does). On an idle machine at one thread both clocks agree.
* ``--per-flop-reference MODEL``: achieved FLOP/s (forward FLOPs x images/s, the ``GFLOP/s`` columns) relative to
  MODEL's in the same variant: 1.0 means the model turns its FLOPs into time as well as MODEL does.
* ``--out FILE --section NAME`` replaces the text between ``<!-- benchmark:NAME:begin -->`` and
  ``<!-- benchmark:NAME:end -->`` of FILE; ``--json FILE`` keeps every timing.
"""
import argparse
import ast
import contextlib
import datetime
import importlib.util
import json
import logging
import os
import os.path as osp
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time
import types
from typing import Callable, List, Optional, Sequence, Tuple

# From a source checkout use that checkout's mmmixer, not an installed copy.
_REPO = osp.abspath(osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))
if osp.isfile(osp.join(_REPO, 'mmmixer', '__init__.py')) and _REPO not in sys.path:
    sys.path.insert(0, _REPO)
os.environ.setdefault('KINETO_LOG_LEVEL', '5')  # kineto prints an error per profile without a GPU driver

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

SGD_LR = 1e-4  # small, so a few steps keep the weights near their init
#: operators that any implementation of these networks runs (convolutions, linear layers, GELU, norms, softmax)
SHARED_OPS = ('conv', 'linear', 'addmm', 'mm', 'bmm', 'gelu', 'batch_norm', 'layer_norm', 'softmax', 'mkldnn')


# ---------------------------------------------------------------------------------------------------------------
# models from configs
# ---------------------------------------------------------------------------------------------------------------
def parse_size(size) -> Tuple[int, int]:
    """``224`` / ``'224'`` -> (224, 224); ``'800x1333'`` -> (800, 1333) (height, width)."""
    match = re.fullmatch(r'(\d+)(?:x(\d+))?', str(size).strip().lower())
    h, w = (int(match[1]), int(match[2] or match[1])) if match else (0, 0)
    if h <= 0 or w <= 0:
        raise ValueError(f'benchmark: size {size!r} is not N or HxW with positive N, H, W (e.g. 224 or 800x1333).')
    return h, w


def split_spec(spec: str) -> Tuple[str, List[Tuple[str, object]]]:
    """``'CONFIG::a.b=1::c=[1,2]'`` -> ``('CONFIG', [('a.b', 1), ('c', [1, 2])])``; ``mmpretrain::`` prefixes kept."""
    from mmengine.config import DictAction
    parts = spec.split('::')
    overrides = []
    while len(parts) > 1 and '=' in parts[-1]:
        key, _, value = parts.pop().partition('=')
        try:  # Python literals (numbers, tuples, lists, dicts), else mmengine's --cfg-options parsing
            value = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            value = DictAction._parse_iterable(value.strip())
        overrides.insert(0, (key.strip(), value))
    return '::'.join(parts), overrides


def load_config(spec: str):
    """The config of a MODEL spec with its overrides applied.

    Raises:
        ValueError: the config does not exist (the message says where it was looked for) or has no ``model``.
    """
    from mmengine.config import Config
    path, overrides = split_spec(spec)
    try:
        if '::' in path:  # a config of an installed package, e.g. mmpretrain::swin_transformer/...
            from mmengine.hub import get_config
            cfg = get_config(path)
        elif osp.isfile(path):
            cfg = Config.fromfile(path)
        else:
            raise FileNotFoundError(path)
    except (FileNotFoundError, ModuleNotFoundError, ValueError) as err:
        raise ValueError(f'benchmark: config {path!r} not found ({err}); give a file such as '
                         'configs/stripmlp/stripmlp-tiny_8xb128_in1k.py or a package config such as '
                         'mmpretrain::swin_transformer/swin-tiny_16xb64_in1k.py') from None
    if 'model' not in cfg:
        raise ValueError(f'benchmark: config {path!r} has no `model`.')
    # an override replaces the value (a dict does not merge into what the config had)
    cfg.merge_from_dict({k: dict(v, _delete_=True) if isinstance(v, dict) else v for k, v in overrides})
    return cfg


@contextlib.contextmanager
def _quiet():
    """mmengine's logger at ERROR level (init_weights and the FLOP counter log a line per tensor / operator)."""
    from mmengine.logging import MMLogger
    handlers = [MMLogger.get_current_instance(), *MMLogger.get_current_instance().handlers]
    levels = [h.level for h in handlers]
    for h in handlers:
        h.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for h, level in zip(handlers, levels):
            h.setLevel(level)


def build_model(spec: str) -> Tuple[nn.Module, str]:
    """Build ``cfg.model`` of a MODEL spec under the config's default scope; returns (model, backbone type)."""
    from mmengine.registry import MODELS, DefaultScope, init_default_scope
    import mmmixer.models  # noqa: F401  (registers our backbones)
    cfg = load_config(spec)
    scope = cfg.get('default_scope', 'mmpretrain')
    init_default_scope(scope)
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(cfg.model)
    if hasattr(model, 'init_weights'):
        with _quiet():
            model.init_weights()
    return model, str(cfg.model.get('backbone', cfg.model).get('type', '')).split('.')[-1]


def label_of(spec: str) -> str:
    path, overrides = split_spec(spec)
    name = osp.splitext(osp.basename(path.split('::')[-1]))[0]
    return name + ''.join(f' {k.split(".")[-1]}={v}' for k, v in overrides)


# ---------------------------------------------------------------------------------------------------------------
# official implementations (never part of this repository: loaded from a local checkout)
# ---------------------------------------------------------------------------------------------------------------
def _standins():
    """Small stand-ins for the third-party helpers the official model files import but do not need for the forward
    pass (timm layers and registry, matplotlib), installed into ``sys.modules`` only when those are missing."""
    try:
        import timm.models.layers  # noqa: F401
    except ImportError:
        from mmcv.cnn.bricks import DropPath
        layers = types.ModuleType('timm.models.layers')
        layers.DropPath, layers.trunc_normal_ = DropPath, nn.init.trunc_normal_
        layers.to_2tuple = lambda x: tuple(x) if isinstance(x, (tuple, list)) else (x, x)
        # timm's create_classifier(num_features, num_classes, pool_type='avg'): (global pool + flatten, Linear)
        layers.create_classifier = lambda features, classes, pool_type='avg': (
            nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1)), nn.Linear(features, classes))
        registry = types.ModuleType('timm.models.registry')
        registry.register_model = lambda fn: fn
        for mod in ('timm', 'timm.models'):
            sys.modules.setdefault(mod, types.ModuleType(mod))
        sys.modules['timm.models.layers'] = sys.modules['timm.models'].layers = layers
        sys.modules['timm.models.registry'] = sys.modules['timm.models'].registry = registry
    try:
        import matplotlib.pyplot  # noqa: F401
    except ImportError:
        pyplot = types.ModuleType('matplotlib.pyplot')
        pyplot.axis = None
        sys.modules.setdefault('matplotlib', types.ModuleType('matplotlib'))
        sys.modules['matplotlib.pyplot'] = pyplot


def _import_file(path: str, name: str):
    """Import one official model file (with :func:`_standins`).

    Raises:
        ValueError: the file does not exist.
    """
    _standins()
    if not osp.isfile(path):
        raise ValueError(f'benchmark: official model file {path} not found.')
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def _official_stripmlp(root: str, model: nn.Module) -> nn.Module:
    """Med-Process/Strip_MLP ``models/strip_mlp.py`` ``StripMLPNet`` with the arch of our classifier."""
    from mmmixer.models.backbones.strip_mlp import convert_official_stripmlp
    module = _import_file(osp.join(root, 'models', 'strip_mlp.py'), 'official_strip_mlp')
    b = model.backbone
    net = module.StripMLPNet(img_size=b.img_size, embed_dim=b.embed_dims[0], layers=list(b.depths),
                             num_classes=model.head.fc.out_features, alpha=3)
    model.load_state_dict(convert_official_stripmlp(net.state_dict())['state_dict'], strict=True)
    return net


def _official_msmlp(root: str, model: nn.Module) -> nn.Module:
    """JegZheng/MS-MLP ``models/ms_mlp.py`` ``MS_MLP`` with the arch of our classifier."""
    from mmmixer.models.backbones.ms_mlp import convert_official_msmlp
    module = _import_file(osp.join(root, 'models', 'ms_mlp.py'), 'official_ms_mlp')
    b = model.backbone
    net = module.MS_MLP(embed_dim=b.embed_dims[0], depths=list(b.depths), num_classes=model.head.fc.out_features,
                        mix_size=type(b).default_mix_size, drop_path_rate=0.1)  # official yaml values
    model.load_state_dict(convert_official_msmlp(net.state_dict())['state_dict'], strict=True)
    return net


def _official_posmlp(root: str, model: nn.Module) -> nn.Module:
    """Zhicaiwww/PosMLP ``models/posmlp.py`` ``PosMLP`` with the arch of our classifier (it imports its sibling
    files as the package ``models`` and needs ``einops``)."""
    from mmmixer.models.backbones.pos_mlp import convert_official_posmlp
    if not osp.isfile(osp.join(root, 'models', 'posmlp.py')):
        raise ValueError(f'benchmark: official model file {osp.join(root, "models", "posmlp.py")} not found.')
    _standins()
    if importlib.util.find_spec('einops') is None:
        raise ValueError('benchmark: --official posmlp needs the einops package (pip install einops).')
    sys.path.insert(0, root)
    try:
        module = importlib.import_module('models.posmlp')
    finally:
        sys.path.remove(root)
    b = model.backbone
    net = module.PosMLP(embed_dims=tuple(b.embed_dims), depths=tuple(b.depths),
                        win_size=tuple(b.window_size), gamma=tuple(b.gammas), mlp_ratio=tuple(b.mlp_ratios),
                        num_levels=b.num_stages, num_classes=model.head.fc.out_features, chunks=2,
                        quadratic=b.pos_type == 'gqpe', generalized=b.generalized, pos_only=True, shift=False)
    model.load_state_dict(convert_official_posmlp(net.state_dict())['state_dict'], strict=True)
    return net


#: family -> (our backbone type, builder(checkout dir, our classifier) -> official model with our weights)
OFFICIAL = {'stripmlp': ('StripMLP', _official_stripmlp), 'msmlp': ('MSMLP', _official_msmlp),
            'posmlp': ('PosMLP', _official_posmlp)}


# ---------------------------------------------------------------------------------------------------------------
# measuring
# ---------------------------------------------------------------------------------------------------------------
#: ``--clock`` value -> timer: wall time, or the CPU time of this process (all its threads)
CLOCKS = {'wall': time.perf_counter, 'cpu': time.process_time}
#: ``--amp`` value -> autocast dtype
AMP_DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16}


def mode_name(compiled: bool, amp: Optional[str]) -> str:
    """'eager fp32', 'compiled bf16', ... (the variant of a row)."""
    return f'{"compiled" if compiled else "eager"} {amp or "fp32"}'


class Subject:
    """One model under test in one variant (eager or ``torch.compile``, fp32 or autocast) with its inputs and
    optimizer; :meth:`timed` is one timed call.

    Args:
        model (nn.Module): the model, already on ``device`` (variants of one model share it, hence its weights).
        size (tuple[int, int]): input (H, W) in pixels.
        batch / train_batch (int): images per inference call / training step.
        backbone_only (bool): time ``model.backbone`` only (sum of its outputs as loss).
        tensor_mode (bool): call ``model(x, mode='tensor')`` (mmpretrain classifiers); False for plain modules.
        device (str): 'cpu' or 'cuda'. compiled (bool): ``torch.compile`` the timed module with
            ``compile_backend`` (default 'inductor').
        amp (str, optional): 'bf16' or 'fp16' autocast on ``device``; fp16 training steps use a ``GradScaler``.
        channels_last (bool): inputs in channels_last memory (the model is converted by the caller).
    """

    def __init__(self, name: str, label: str, model: nn.Module, size, batch, train_batch, backbone_only=False,
                 tensor_mode=True, device='cpu', compiled=False, amp=None, channels_last=False,
                 compile_backend='inductor'):
        self.name, self.label, self.size = name, label, size
        self.device, self.compiled, self.amp = torch.device(device), compiled, amp
        self.model = model.backbone if backbone_only else model
        self.fn = torch.compile(self.model, backend=compile_backend) if compiled else self.model
        self.tensor_mode = tensor_mode and not backbone_only
        self.classes = None if backbone_only else getattr(getattr(model, 'head', None), 'num_classes', 1000)
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.x = torch.randn(batch, 3, *size).to(self.device, memory_format=fmt)
        self.x_train = torch.randn(train_batch, 3, *size).to(self.device, memory_format=fmt)
        self.params = sum(p.numel() for p in self.model.parameters())
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=SGD_LR)
        self.scaler = torch.amp.GradScaler(self.device.type) if amp == 'fp16' else None
        self.base = None  #: the eager fp32 Subject of the same model, whose outputs a variant is compared with

    def forward(self, x):
        with torch.autocast(self.device.type, dtype=AMP_DTYPES.get(self.amp), enabled=self.amp is not None):
            out = self.fn(x, mode='tensor') if self.tensor_mode else self.fn(x)
        return out if torch.is_tensor(out) else torch.cat([o.flatten(1) for o in out], 1)

    def call(self, train: bool):
        if not train:
            self.model.eval()
            with torch.no_grad():
                return self.forward(self.x)
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        out = self.forward(self.x_train).float()
        loss = out.sum() if self.classes is None else F.cross_entropy(
            out, torch.arange(len(out), device=out.device) % out.shape[1])
        if self.scaler is None:
            loss.backward()
            self.optimizer.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()

    def timed(self, train: bool, clock: Callable[[], float] = time.perf_counter) -> Tuple[float, Optional[float]]:
        """One call: (seconds by ``clock``, peak memory in MiB or None). On CUDA the clock stops after
        ``torch.cuda.synchronize`` and the peak is ``torch.cuda.max_memory_allocated`` during the call."""
        cuda = self.device.type == 'cuda'
        if cuda:
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        start = clock()
        self.call(train)
        if cuda:
            torch.cuda.synchronize(self.device)
        seconds = clock() - start
        return seconds, torch.cuda.max_memory_allocated(self.device) / 2**20 if cuda else None


def _baddbmm_flops(inputs, outputs) -> int:
    """FLOPs of ``baddbmm(bias, a, b)`` as mmengine counts ``bmm`` (the bias add, element-wise, not counted)."""
    from mmengine.analysis.jit_handles import get_shape
    (batch, n, k), m = get_shape(inputs[1]), get_shape(inputs[2])[-1]
    return batch * n * k * m


def count_complexity(model: nn.Module, size) -> Tuple[int, int]:
    """(params, FLOPs) of one (3, H, W) image with mmengine's counter (``get_model_complexity_info`` uses the same
    ``FlopAnalyzer``; here ``aten::baddbmm``, which mmengine leaves out, is counted as the ``bmm`` it contains)."""
    from mmengine.analysis import FlopAnalyzer, parameter_count
    model.eval()
    with torch.no_grad(), _quiet():  # the counter warns about every uncounted operator
        # ImageClassifier.forward(inputs) runs mode='tensor' (its default)
        flops = FlopAnalyzer(model, (torch.zeros(1, 3, *size), )).set_op_handle('aten::baddbmm', _baddbmm_flops)
        return int(parameter_count(model)['']), int(flops.total())


def op_profile(fn: Callable[[], object], top: int) -> dict:
    """The ``top`` operators of one ``fn()`` by self CPU time, and the share of :data:`SHARED_OPS`."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    stats = sorted((e for e in prof.key_averages() if e.self_cpu_time_total > 0),
                   key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in stats) or 1.
    shared = sum(e.self_cpu_time_total for e in stats
                 if any(k in e.key.split('::')[-1] for k in SHARED_OPS))
    return dict(total_ms=total / 1e3, shared_percent=100. * shared / total,
                ops=[dict(op=e.key, self_ms=e.self_cpu_time_total / 1e3, percent=100. * e.self_cpu_time_total / total,
                          calls=e.count) for e in stats[:top]])


def paired_ratio(times: Optional[Sequence[float]], ref_times: Optional[Sequence[float]]) -> Optional[float]:
    """Throughput of a model relative to a reference timed in the same rounds: the median over the rounds of
    ``ref_time / time`` (round k of both ran back to back, so a load change shared by both cancels out)."""
    if not times or not ref_times:
        return None
    return _median([ref / t for t, ref in zip(times, ref_times)])


def _median(values):
    return statistics.median(values) if values else None


def run_benchmark(models: Sequence[str], reference: Optional[str] = None, sizes=('224', ), batch=16, train_batch=8,
                  repeats=5, train_repeats=3, warmup=2, threads=None, train=True, backbone_only=False,
                  complexity_only=False, profile=0, official: Optional[dict] = None, seed=0, device='cpu',
                  compile=False, amp: Optional[str] = None, channels_last=False,
                  per_flop_reference: Optional[str] = None, compile_backend='inductor', clock='wall',
                  log=lambda msg: None) -> dict:
    """Measure every model (and the references, appended if missing) at every size in this process.

    Each model runs as ``eager fp32``; ``amp`` adds an ``eager <amp>`` row, ``compile`` a ``compiled`` row of each
    (``torch.compile``, default inductor backend; the first call of each kind, which compiles, is timed apart as
    ``compile_s`` and never counted). Variants of one model share its weights and inputs.

    Returns:
        dict: ``settings``, ``machine`` and ``rows``: one dict per (model, size, variant) with ``label``, ``spec``,
        ``size``, ``mode`` ('eager fp32', 'compiled bf16', ...), ``compiled``, ``amp``, ``params``, ``flops`` (one
        image, multiply-adds), ``infer_times`` / ``train_times`` (seconds per call), ``infer_ips`` / ``train_ips``
        (images/s), ``infer_gflops`` / ``train_gflops`` (achieved GFLOP/s: forward FLOPs x images/s),
        ``ms_per_mpx`` (inference ms per megapixel of one image), ``per_pixel_ratio`` (ms/Mpx relative to the same
        model and variant at the first size, paired per round), ``infer_ratio`` / ``train_ratio`` (throughput ÷ the
        reference's, same size and variant), ``infer_per_flop`` / ``train_per_flop`` (achieved FLOP/s ÷ the
        per-FLOP reference's, same size and variant), ``infer_vs_base`` / ``train_vs_base`` (÷ the same model's
        eager fp32 row), ``max_abs_diff`` (largest output difference to the eager fp32 row, or for official rows
        to ours), ``compile_s``, ``peak_mem_mb_infer`` / ``peak_mem_mb_train`` (CUDA), and for official rows
        ``official_of``.

    Raises:
        ValueError: a bad config, size, family, count, device or amp value.
    """
    for key, value, low in (('repeats', repeats, 1), ('train_repeats', train_repeats, 1), ('warmup', warmup, 0),
                            ('batch', batch, 1), ('train_batch', train_batch, 1)):
        if value < low:
            raise ValueError(f'benchmark: {key} must be >= {low}, got {value}.')
    if amp not in (None, *AMP_DTYPES):
        raise ValueError(f'benchmark: --amp {amp!r}: accepted values are {", ".join(AMP_DTYPES)}.')
    if device not in ('cpu', 'cuda') and not str(device).startswith('cuda:'):
        raise ValueError(f'benchmark: --device {device!r}: accepted values are cpu, cuda, cuda:N.')
    if clock not in CLOCKS:
        raise ValueError(f'benchmark: --clock {clock!r}: accepted values are {", ".join(CLOCKS)}.')
    if clock == 'cpu' and str(device).startswith('cuda'):
        raise ValueError('benchmark: --clock cpu measures CPU time, not GPU work; use --clock wall with --device '
                         'cuda.')
    if str(device).startswith('cuda') and not torch.cuda.is_available():
        raise ValueError(f'benchmark: --device {device} but torch.cuda.is_available() is False (torch '
                         f'{torch.__version__}); use --device cpu or a CUDA build of torch on a GPU machine.')
    official = dict(official or {})
    for family in official:
        if family not in OFFICIAL:
            raise ValueError(f'benchmark: --official {family!r}: known families are {", ".join(OFFICIAL)}.')
    sizes = [parse_size(s) for s in sizes]
    models = list(models)
    for ref in (reference, per_flop_reference):
        if ref and ref not in models:
            models.append(ref)
    for spec in models:
        load_config(spec)  # fail on a bad name before anything is built
    if threads:
        torch.set_num_threads(threads)
    variants = [(False, None)] + ([(False, amp)] if amp else [])
    variants += [(True, a) for _, a in variants] if compile else []
    machine = machine_info(device)
    subjects = []
    for spec in models:
        for size in sizes:
            log(f'building {spec} at {size} ...')
            torch.manual_seed(seed)
            model, backbone_type = build_model(spec)
            label = label_of(spec)
            params, flops = count_complexity(model.backbone if backbone_only else model, size)
            pairs = []
            for family, root in official.items():
                if OFFICIAL[family][0] == backbone_type and not complexity_only:
                    torch.manual_seed(seed)
                    pairs.append((family, OFFICIAL[family][1](root, model)))  # loads its weights into ours
            model.to(device, memory_format=torch.channels_last if channels_last else torch.preserve_format)
            base = None
            for compiled, amp_ in variants[:1] if complexity_only else variants:
                torch.manual_seed(seed)
                s = Subject(spec, label, model, size, batch, train_batch, backbone_only, device=device,
                            compiled=compiled, amp=amp_, channels_last=channels_last,
                            compile_backend=compile_backend)
                s.row = dict(label=label, spec=spec, size=list(size), mode=mode_name(compiled, amp_),
                             compiled=compiled, amp=amp_, params=params, flops=flops)
                if base is None:
                    base = s
                else:  # the same inputs as the eager fp32 row
                    s.x, s.x_train, s.base = base.x, base.x_train, base
                subjects.append(s)
            for family, net in pairs:
                net.to(device, memory_format=torch.channels_last if channels_last else torch.preserve_format)
                s = Subject(f'official {family}', f'{label} (official code)', net, size, batch, train_batch,
                            backbone_only, tensor_mode=False, device=device, channels_last=channels_last)
                s.row = dict(label=s.label, spec=s.name, size=list(size), mode=mode_name(False, None),
                             compiled=False, amp=None, params=s.params, flops=None, official_of=spec)
                s.x, s.x_train = base.x, base.x_train  # the same inputs and weights as ours
                with torch.no_grad():  # before any training step changes either copy of the weights
                    s.row['max_abs_diff'] = (s.call(False).float() - base.call(False).float()).abs().max().item()
                subjects.append(s)
    if not complexity_only:
        for s in subjects:
            log(f'warm-up {s.label} [{s.row["mode"]}] ...')
            if s.compiled:  # the first call of each kind compiles: timed apart
                s.row['compile_s'] = sum(s.timed(train_)[0] for train_ in ((False, True) if train else (False, )))
                log(f'  compiled in {s.row["compile_s"]:.1f} s')
            for _ in range(warmup):
                s.call(False)
                if train:
                    s.call(True)
            if s.base is not None:  # how far the outputs of this variant are (variants share the weights)
                with torch.no_grad():
                    s.row['max_abs_diff'] = (s.call(False).float() - s.base.call(False).float()).abs().max().item()
        for mode, count in (('infer', repeats), ('train', train_repeats if train else 0)):
            log(f'timing {mode} ({count} rounds) ...')
            for s in subjects:
                s.row[f'{mode}_times'], peaks = [], []
                s.row[f'peak_mem_mb_{mode}'] = None
            for _ in range(count):
                for s in subjects:
                    seconds, peak = s.timed(mode == 'train', CLOCKS[clock])
                    s.row[f'{mode}_times'].append(seconds)
                    if peak is not None:
                        s.row[f'peak_mem_mb_{mode}'] = max(peak, s.row[f'peak_mem_mb_{mode}'] or 0.)
        for s in subjects:
            r = s.row
            r['infer_ips'] = batch / _median(r['infer_times'])
            r['train_ips'] = train_batch / _median(r['train_times']) if train else None
            for mode in ('infer', 'train'):
                flops_ = r['flops'] or next((x['flops'] for x in (t.row for t in subjects)
                                             if x['spec'] == r.get('official_of')), None)
                r[f'{mode}_gflops'] = flops_ * r[f'{mode}_ips'] / 1e9 if flops_ and r[f'{mode}_ips'] else None
            r['ms_per_mpx'] = 1e3 * _median(r['infer_times']) / batch / (s.size[0] * s.size[1] / 1e6)
            if profile:
                log(f'profiling {s.label} [{r["mode"]}] ...')
                r['profile'] = op_profile(lambda: s.call(False), profile)
                if train:
                    r['profile_train'] = op_profile(lambda: s.call(True), profile)
        rows = [s.row for s in subjects]

        def same(r, spec, **kw):  # the row of ``spec`` at r's size and variant
            return next((x for x in rows if x['spec'] == spec and x['size'] == r['size'] and
                         all(x[k] == kw.get(k, r[k]) for k in ('compiled', 'amp'))), None)

        for r in rows:
            ref, flop_ref = same(r, reference), same(r, per_flop_reference)
            base = same(r, r['spec'], compiled=False, amp=None)
            for mode in ('infer', 'train'):
                times = r.get(f'{mode}_times')
                r[f'{mode}_ratio'] = paired_ratio(times, ref.get(f'{mode}_times')) if ref else None
                r[f'{mode}_per_flop'] = paired_ratio(times, flop_ref.get(f'{mode}_times')) * r['flops'] / \
                    flop_ref['flops'] if flop_ref and times and r['flops'] else None
                r[f'{mode}_vs_base'] = paired_ratio(times, base.get(f'{mode}_times')) if base is not r else None
            first = next(x for x in rows if x['spec'] == r['spec'] and x['mode'] == r['mode'])  # first size
            r['per_pixel_ratio'] = paired_ratio(first['infer_times'], r['infer_times']) * (
                first['size'][0] * first['size'][1]) / (r['size'][0] * r['size'][1])  # ms/Mpx ÷ first size
            mine = same(r, r.get('official_of'), compiled=False, amp=None)
            if mine:
                for mode in ('infer', 'train'):
                    mine[f'{mode}_vs_official'] = paired_ratio(mine.get(f'{mode}_times'), r.get(f'{mode}_times'))
    machine['load_average_after'] = _load_average()
    settings = dict(sizes=[list(s) for s in sizes], batch=batch, train_batch=train_batch, repeats=repeats,
                    train_repeats=train_repeats, warmup=warmup, threads=torch.get_num_threads(), train=train,
                    backbone_only=backbone_only, complexity_only=complexity_only, reference=reference,
                    official=official, device=str(device), compile=compile, compile_backend=compile_backend,
                    amp=amp, channels_last=channels_last, clock=clock,
                    per_flop_reference=per_flop_reference)
    return dict(settings=settings, machine=machine, rows=[s.row for s in subjects])


# ---------------------------------------------------------------------------------------------------------------
# machine and report
# ---------------------------------------------------------------------------------------------------------------
def _load_average():
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


#: CPU instruction sets that decide fp32 / bf16 matrix speed, as /proc/cpuinfo names them
CPU_FLAGS = ('avx2', 'fma', 'avx512f', 'avx512_vnni', 'avx512_bf16', 'avx512_fp16', 'amx_tile', 'amx_bf16',
             'amx_fp16', 'asimd', 'sve', 'bf16')


def machine_info(device: str = 'cpu') -> dict:
    """CPU model and its matrix instruction sets (:data:`CPU_FLAGS` found in /proc/cpuinfo), GPU name with
    ``device='cuda'``, torch, threads, git revision, date and load average."""
    cpu, flags = platform.processor() or platform.machine(), []
    try:
        with open('/proc/cpuinfo') as f:
            info = f.read()
        cpu = next((line.split(':', 1)[1].strip() for line in info.splitlines() if line.startswith('model name')),
                   cpu)
        present = set(next((line.split(':', 1)[1].split() for line in info.splitlines()
                            if line.startswith(('flags', 'Features'))), []))
        flags = [f for f in CPU_FLAGS if f in present]
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(torch.device(device)) if str(device).startswith('cuda') else None
    try:
        git = subprocess.run(['git', 'describe', '--always', '--dirty'], cwd=_REPO, capture_output=True, text=True,
                             timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        git = None
    return dict(cpu=cpu, cpu_flags=flags, gpu=gpu, cuda=torch.version.cuda if gpu else None,
                logical_cpus=os.cpu_count(), usable_cpus=len(os.sched_getaffinity(0)),
                torch=torch.__version__, threads=torch.get_num_threads(), python=platform.python_version(),
                git=git, load_average_before=_load_average(), date=datetime.datetime.now().strftime('%Y-%m-%d %H:%M'))


def _fmt(value, digits=2, scale=1.):
    return 'n/a' if value is None else f'{value / scale:.{digits}f}'


def format_report(result: dict, command: Optional[str] = None) -> str:
    """Markdown: command, settings, machine, the table and the profiles."""
    s, m, rows = result['settings'], result['machine'], result['rows']
    lines = [f'Command: `{command}`', ''] if command else []
    what = 'backbone only' if s['backbone_only'] else 'model(x, mode="tensor")'
    if s['complexity_only']:
        lines.append(f'Settings: {what}; params and FLOPs (mmengine.analysis counter, one image).')
    else:
        lines.append(f'Settings: {what}; inference batch {s["batch"]} (eval, no_grad)'
                     + (f', training step batch {s["train_batch"]} (backward, SGD)' if s['train'] else '')
                     + f'; median of {s["repeats"]} / {s["train_repeats"]} timed calls after {s["warmup"]} warm-up '
                     'calls, round-robin over the models'
                     + ('; timed by the CPU time of the process (--clock cpu).' if s.get('clock') == 'cpu' else '.'))
        gpu = f'; GPU {m["gpu"]} (CUDA {m["cuda"]})' if m.get('gpu') else ''
        flags = f' ({" ".join(m["cpu_flags"])})' if m.get('cpu_flags') else ''
        lines.append(f'Machine: {m["cpu"]}{flags}, {m["usable_cpus"]} of {m["logical_cpus"]} CPUs usable{gpu}; '
                     f'device {s.get("device", "cpu")}; torch {m["torch"]}, {m["threads"]} threads; Python '
                     f'{m["python"]}; git {m["git"]}; {m["date"]}; load average (1/5/15 min) before '
                     f'{m["load_average_before"]}, after {m["load_average_after"]}.')
        if s.get('compile') or s.get('amp') or s.get('channels_last'):
            lines.append('Variants: eager fp32' + (f', eager {s["amp"]} (torch.autocast)' if s.get('amp') else '')
                         + (f', compiled (torch.compile, {s.get("compile_backend")}; first calls timed apart)'
                            if s.get('compile')
                            else '') + ('; channels_last inputs and weights' if s.get('channels_last') else '')
                         + '. Ratios compare rows of the same variant.')
    train, multi = s['train'], len({tuple(r['size']) for r in rows}) > 1
    variants = bool(s.get('compile') or s.get('amp'))
    ratio = lambda key, d=2: (lambda r: _fmt(r.get(key), d))  # noqa: E731
    cols = [('model', lambda r: r['label']), ('size', lambda r: '×'.join(map(str, r['size'])))]
    cols += [('mode', lambda r: r['mode'])] if variants else []
    cols += [('params (M)', lambda r: _fmt(r['params'], 2, 1e6)), ('FLOPs (G)', lambda r: _fmt(r['flops'], 2, 1e9))]
    if not s['complexity_only']:
        cols += [('inference (img/s)', ratio('infer_ips')), ('inference (ms/Mpx)', ratio('ms_per_mpx', 1))]
        cols += [('ms/Mpx ÷ first size', ratio('per_pixel_ratio'))] if multi else []
        cols += [('inference GFLOP/s', ratio('infer_gflops', 1))]
        cols += [('training step (img/s)', ratio('train_ips')), ('training GFLOP/s', ratio('train_gflops', 1))] \
            if train else []
        for key, head, suffix in (('reference', '÷ ref', 'ratio'), ('per_flop_reference', '÷ ref per FLOP', 'per_flop')):
            if s.get(key):
                cols += [(f'inference {head}', ratio(f'infer_{suffix}'))]
                cols += [(f'training {head}', ratio(f'train_{suffix}'))] if train else []
        if variants:
            cols += [('inference ÷ eager fp32', ratio('infer_vs_base'))]
            cols += [('training ÷ eager fp32', ratio('train_vs_base'))] if train else []
            cols += [('compile (s)', ratio('compile_s', 0))] if s.get('compile') else []
        if s['official']:
            cols += [('inference ÷ official', ratio('infer_vs_official'))]
            cols += [('training ÷ official', ratio('train_vs_official'))] if train else []
        if s['official'] or variants:
            cols += [('max |Δ output|', lambda r: '' if r.get('max_abs_diff') is None else
                      f'{r["max_abs_diff"]:.1e}')]
        if str(s.get('device', 'cpu')).startswith('cuda'):
            cols += [('peak memory inference (MiB)', ratio('peak_mem_mb_infer', 0))]
            cols += [('peak memory training (MiB)', ratio('peak_mem_mb_train', 0))] if train else []
    lines += ['', '| ' + ' | '.join(c for c, _ in cols) + ' |', '|' + '---|' * len(cols)]
    lines += ['| ' + ' | '.join(fn(r) for _, fn in cols) + ' |' for r in rows]
    if s['official'] or variants:
        lines += ['', '`max |Δ output|`: largest output difference, in eval mode on the same inputs, to the eager '
                  'fp32 row of the same model (official rows: to ours, the same weights).']
    for key, what in (('reference', 'Reference'), ('per_flop_reference', 'Per-FLOP reference (achieved FLOP/s ÷ '
                                                                       'its achieved FLOP/s, same variant)')):
        if s.get(key):
            lines += ['', f'{what}: {label_of(s[key])}.']
    for r in rows:
        for key, what in (('profile', f'one inference call (batch {s["batch"]})'),
                          ('profile_train', f'one training step (batch {s["train_batch"]}, forward and backward)')):
            if r.get(key):
                p = r[key]
                mode = f' [{r["mode"]}]' if variants else ''
                lines += ['', f'Profile of {what} of {r["label"]}{mode} at {"×".join(map(str, r["size"]))}: '
                          f'{p["total_ms"]:.0f} ms self CPU time, {p["shared_percent"]:.0f}% in convolutions, '
                          'linear layers/matmuls, GELU, norms and softmax; top operators:', '',
                          '| operator | self CPU (ms) | share | calls |', '|---|---|---|---|']
                lines += [f'| `{o["op"]}` | {o["self_ms"]:.1f} | {o["percent"]:.1f}% | {o["calls"]} |'
                          for o in p['ops']]
    for r in rows:  # ours vs official: how much faster could ours be, given the kernels both must run
        mine = next((x for x in rows if x['spec'] == r.get('official_of') and x['size'] == r['size']
                     and x['mode'] == 'eager fp32'), None)
        for key, what in (('profile', 'inference call'), ('profile_train', 'training step')):
            if mine and mine.get(key) and r.get(key):
                o, m = r[key], mine[key]
                o_shared, m_shared = (p['total_ms'] * p['shared_percent'] / 100 for p in (o, m))
                lines += ['', f'Shared kernels ({what}, from the profiles above): ours {m_shared:.0f} of '
                          f'{m["total_ms"]:.0f} ms, official {o_shared:.0f} of {o["total_ms"]:.0f} ms; the official '
                          f'code spends {o["total_ms"] - o_shared:.0f} ms ({100 - o["shared_percent"]:.0f}%) outside '
                          f'them. Upper bound of ours ÷ official if ours ran nothing but its shared kernels: '
                          f'{o["total_ms"] / m_shared:.2f}x.']
    return '\n'.join(lines) + '\n'


def write_report(path: str, text: str, section: Optional[str] = None) -> None:
    """Write ``text`` to ``path``, or with ``section`` replace the text between that section's markers.

    Raises:
        ValueError: ``section`` given but the file or its markers are missing.
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
        raise ValueError(f'benchmark: {path} has no section {section!r}: expected the lines {begin} and {end}.')
    with open(path, 'w', encoding='utf-8') as f:
        f.write(content[:i + len(begin)] + '\n' + text.rstrip('\n') + '\n' + content[j:])


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('models', nargs='+', help='configs, each optionally with ::key=value overrides')
    p.add_argument('--reference', default=None, help='MODEL the ratio columns divide by (measured in the same run)')
    p.add_argument('--per-flop-reference', default=None, metavar='MODEL',
                   help='MODEL whose achieved FLOP/s the "per FLOP" columns divide by (e.g. ConvNeXt-T)')
    p.add_argument('--device', default='cpu', help='cpu (default), cuda or cuda:N')
    p.add_argument('--compile', action='store_true',
                   help='add a torch.compile (inductor) row beside each eager row; compile time reported apart')
    p.add_argument('--compile-backend', default='inductor', help='torch.compile backend (default inductor)')
    p.add_argument('--amp', default=None, choices=sorted(AMP_DTYPES),
                   help='add an autocast row (bf16 or fp16) beside each fp32 row')
    p.add_argument('--channels-last', action='store_true', help='channels_last inputs and weights')
    p.add_argument('--clock', default='wall', choices=sorted(CLOCKS),
                   help='wall (default) or cpu: CPU time of the process, which time-slicing by other processes on a '
                        'shared machine does not inflate (CPU only; equal to wall time on an idle machine at 1 '
                        'thread)')
    p.add_argument('--threads', type=int, default=None, help='torch.set_num_threads')
    p.add_argument('--size', nargs='+', default=['224'], help='input sizes, N or HxW (default 224)')
    p.add_argument('--batch', type=int, default=16, help='inference batch (default 16)')
    p.add_argument('--train-batch', type=int, default=8, help='training step batch (default 8)')
    p.add_argument('--repeats', type=int, default=5, help='timed inference calls per model (default 5)')
    p.add_argument('--train-repeats', type=int, default=3, help='timed training steps per model (default 3)')
    p.add_argument('--warmup', type=int, default=2, help='untimed calls of each kind first (default 2)')
    p.add_argument('--no-train', action='store_true', help='time inference only')
    p.add_argument('--backbone-only', action='store_true', help='time model.backbone alone')
    p.add_argument('--complexity-only', action='store_true', help='params and FLOPs only, no timing')
    p.add_argument('--profile', type=int, default=0, metavar='N', help='append the top N operators per model')
    p.add_argument('--official', action='append', default=[], metavar='FAMILY=DIR',
                   help=f'time the official code in checkout DIR next to ours ({", ".join(OFFICIAL)})')
    p.add_argument('--out', default=None, help='Markdown report (default work_dirs/benchmarks/<date>.md)')
    p.add_argument('--section', default=None, help='replace only this <!-- benchmark:NAME:begin/end --> section')
    p.add_argument('--json', default=None, help='also write the raw results as JSON')
    p.add_argument('--seed', type=int, default=0)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.section and not args.out:
        raise SystemExit('benchmark: --section needs --out (e.g. --out docs/benchmarks.md --section NAME)')
    try:
        official = dict(o.split('=', 1) for o in args.official)
    except ValueError:
        raise SystemExit(f'benchmark: --official takes FAMILY=DIR, got {args.official}') from None
    try:
        result = run_benchmark(args.models, args.reference, args.size, args.batch, args.train_batch, args.repeats,
                               args.train_repeats, args.warmup, args.threads, not args.no_train, args.backbone_only,
                               args.complexity_only, args.profile, official, args.seed, device=args.device,
                               compile=args.compile, amp=args.amp, channels_last=args.channels_last,
                               per_flop_reference=args.per_flop_reference, compile_backend=args.compile_backend,
                               clock=args.clock,
                               log=lambda msg: print(msg, file=sys.stderr, flush=True))
    except ValueError as err:
        raise SystemExit(str(err)) from None
    command = 'python tools/analysis_tools/benchmark.py ' + shlex.join(sys.argv[1:] if argv is None else argv)
    report = format_report(result, command.strip())
    print(report)
    out = args.out or osp.join('work_dirs', 'benchmarks', f'{datetime.datetime.now():%Y%m%d-%H%M%S}.md')
    write_report(out, report, args.section)
    if args.json:
        os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=1, default=str)


if __name__ == '__main__':
    main()
