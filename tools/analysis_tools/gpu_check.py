"""A prepared GPU check of the mmmixer backbones: precision, throughput, memory and one dense pass, in one run.

    python tools/analysis_tools/gpu_check.py [--device cuda|cpu] [--quick] [--out-dir DIR]
        [--models NAME ...] [--time-budget S] [--compile-backend inductor] [--update-docs FILE]
    python tools/analysis_tools/gpu_check.py --install-from DIR [--venv PATH] [options above]

For each family's tiny preset (MS-MLP-T, PosMLP-T with GQPE and with LRPE, Strip-MLP-T, Swin-MS-MLP-T; the
classifiers of our ImageNet configs) and, as references in the same process, mmpretrain's Swin-T and ConvNeXt-T:

1. **precision**: one forward and backward in fp32, in fp16 autocast with a ``torch.amp.GradScaler`` step, and in
   bf16 autocast, on the same input and weights (eval mode, so no drop path; every weight perturbed from its
   initial value, so layer scales of 1e-6 do not hide the blocks; the optimizer step has learning rate 0, so all
   three see the same weights). Reported: whether logits, loss and gradients are finite, and the relative
   (Frobenius) error of the logits and of all gradients (one vector) to fp32.
2. **throughput** (``benchmark.py``'s ``run_benchmark``, one call per model): images/s of inference (batch 64,
   ``no_grad``) and of a training step (batch 32: forward, cross-entropy, backward, SGD step) at 224 px, eager fp32,
   eager with ``--amp`` autocast (default bf16) and the ``torch.compile``-d twins of both side by side; compile time
   (the first calls) reported apart. Compiled rows are skipped once ``--time-budget`` is spent.
3. **memory**: one training step (batch 32, 224 px) with and without ``with_cp`` (gradient checkpointing per
   block): the bytes of tensors saved for backward (``torch.autograd.graph.saved_tensors_hooks``, every device)
   and on CUDA the peak allocated memory above the model's own (``torch.cuda.max_memory_allocated``).
4. **dense**: one backbone pass at 800x1333 (the COCO training size) in the dense layout (four stage maps), in
   inference and as a training step (forward and backward), with time and peak memory.

The script writes ``gpu_check.md`` (markdown report) and ``gpu_check.json`` (every figure) into ``--out-dir`` and
exits with 1 if a check failed (a non-finite value, an error, a relative error above the bound). With
``--update-docs docs/benchmarks.md`` the report replaces the text between ``<!-- benchmark:gpu:begin -->`` and
``<!-- benchmark:gpu:end -->``.

``--device cpu --quick`` runs the same code paths on tiny archs (stage widths 32-256, one block per stage), tiny
inputs (64 px, batch 2; dense 100x133) and fewer repetitions, with ``torch.compile(backend='eager')`` unless
``--compile-backend`` says otherwise (dynamo's capture without code generation: inductor needs minutes per model on
a small CPU); CI runs it.

**Offline machine.** The OpenMMLab packages may be missing where the GPU is (a machine with only torch, numpy and
matplotlib). ``tools/analysis_tools/build_gpu_wheelhouse.sh DIR`` downloads their pure-Python wheels on a machine
with network access; on the GPU machine ``--install-from DIR`` creates a venv that reuses the machine's torch
(``python -m venv --system-site-packages``), installs the wheels with ``pip install --no-index --no-deps`` and runs
this script again in that venv with the remaining options. The wheelhouse has no OpenCV (48 MiB): mmcv and mmengine
import ``cv2`` at import time for their image I/O, which this check never calls; when ``cv2`` cannot be imported,
the script registers a placeholder module whose functions raise ``ImportError`` (:func:`ensure_cv2`).
"""
import argparse
import contextlib
import copy
import datetime
import json
import os
import os.path as osp
import platform
import statistics
import subprocess
import sys
import time
import traceback
import types
from typing import Callable, Dict, List, Optional

_HERE = osp.dirname(osp.abspath(__file__))
_REPO = osp.abspath(osp.join(_HERE, '..', '..'))
# From a source checkout use that checkout's mmmixer, not an installed copy.
if osp.isfile(osp.join(_REPO, 'mmmixer', '__init__.py')) and _REPO not in sys.path:
    sys.path.insert(0, _REPO)

#: our models: name -> config (a benchmark.py MODEL spec: config path relative to the repository, ``::`` overrides)
FAMILIES = {
    'MS-MLP-T': 'configs/msmlp/msmlp-tiny_8xb128_in1k.py',
    'PosMLP-T (GQPE)': 'configs/posmlp/posmlp-tiny_8xb128_in1k.py',
    'PosMLP-T (LRPE)': "configs/posmlp/posmlp-tiny_8xb128_in1k.py::model.backbone.pos_type='lrpe'",
    'Strip-MLP-T': 'configs/stripmlp/stripmlp-tiny_8xb128_in1k.py',
    'Swin-MS-MLP-T': 'configs/swin_msmlp/swin-msmlp-tiny_16xb64_in1k.py',
}
#: references, built by mmpretrain from its own configs
REFERENCES = {
    'Swin-T': 'mmpretrain::swin_transformer/swin-tiny_16xb64_in1k.py',
    'ConvNeXt-T': 'mmpretrain::convnext/convnext-tiny_32xb128_in1k.py',
}
#: --quick: one block per stage, stage widths 32/64/128/256 (the head follows: 256 input channels); Strip-MLP
#: 16/32/64/128 (its width must split into strip groups of the 16 px training size)
_TINY = "::model.head.in_channels=%d::model.backbone.arch={'embed_dims': %d, 'depths': [1, 1, 1, 1]%s}"
QUICK_OVERRIDES = {
    'MS-MLP-T': _TINY % (256, 32, ''),
    'PosMLP-T (GQPE)': _TINY % (256, 32, ''),
    'PosMLP-T (LRPE)': _TINY % (256, 32, ''),
    'Strip-MLP-T': _TINY % (128, 16, '') + '::model.backbone.img_size=64',
    # 64 px: stage maps 16, 8, 4, 2 are padded to the 7x7 window (the ImageNet configs skip that at 224)
    'Swin-MS-MLP-T': _TINY % (256, 32, ", 'num_heads': [1, 2, 4, 8]") + '::model.backbone.pad_small_map=True',
    'Swin-T': "::model.head.in_channels=256::model.backbone.pad_small_map=True::model.backbone.arch="
              "{'embed_dims': 32, 'depths': [1, 1, 1, 1], 'num_heads': [1, 2, 4, 8]}",
    'ConvNeXt-T': "::model.head.in_channels=256::model.backbone.arch="
                  "{'depths': [1, 1, 1, 1], 'channels': [32, 64, 128, 256]}",
}
#: relative-error bounds of the logits to fp32 (a failure above them): bf16 keeps 8 significant bits, fp16 11
REL_BOUND = {'fp16': 0.02, 'bf16': 0.06}
#: fp16: GradScaler steps that may be skipped for overflow before the check fails (2**16 -> 2**6)
MAX_SKIPPED_STEPS = 10

FULL = dict(size=224, infer_batch=64, train_batch=32, warmup=3, repeats=10, dense_size=(800, 1333), dense_batch=1)
QUICK = dict(size=64, infer_batch=2, train_batch=2, warmup=1, repeats=2, dense_size=(100, 133), dense_batch=1)


# ---------------------------------------------------------------------------------------------------------------
# offline installation
# ---------------------------------------------------------------------------------------------------------------
def install_and_rerun(wheel_dir: str, venv: str, argv: List[str]) -> int:
    """Create ``venv`` (reusing the system's torch), install every wheel of ``wheel_dir`` without an index and
    without dependency resolution, and run this script in it with ``argv``.

    Raises:
        SystemExit: ``wheel_dir`` holds no wheel, or venv creation / installation failed.
    """
    import glob
    wheels = sorted(glob.glob(osp.join(wheel_dir, '*.whl')))
    if not wheels:
        raise SystemExit(f'gpu_check: --install-from {wheel_dir!r} holds no *.whl; build it with '
                         'tools/analysis_tools/build_gpu_wheelhouse.sh on a machine with network access.')
    import site
    python = osp.join(venv, 'bin', 'python')
    if not osp.isfile(python):
        result = subprocess.run([sys.executable, '-m', 'venv', '--system-site-packages', venv])
        if result.returncode:
            raise SystemExit(f'gpu_check: `{sys.executable} -m venv --system-site-packages {venv}` failed; on Debian '
                             'install python3-venv, or install the wheels by hand (README, "GPU check").')
        # run from inside a venv, --system-site-packages reaches the base interpreter's packages only: add this
        # interpreter's site-packages (where torch is) after the new venv's own
        parents = [p for p in site.getsitepackages() if osp.isdir(p)]
        target = subprocess.run([python, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
                                capture_output=True, text=True, check=True).stdout.strip()
        with open(osp.join(target, 'mmmixer_gpu_check_parent.pth'), 'w') as f:  # addsitedir: their .pth files too
            f.writelines(f'import site; site.addsitedir({p!r})\n' for p in parents)
    result = subprocess.run([python, '-m', 'pip', 'install', '--no-index', '--no-deps', *wheels])
    if result.returncode:
        raise SystemExit(f'gpu_check: pip install from {wheel_dir} into {venv} failed ({result.returncode}).')
    return subprocess.run([python, osp.abspath(__file__), *argv]).returncode


def ensure_cv2() -> bool:
    """Make ``import cv2`` work for mmcv / mmengine on a machine without OpenCV.

    mmcv 2.1.0 (``mmcv.image``, ``mmcv.video``) and mmengine import ``cv2`` and read constants such as
    ``cv2.INTER_LINEAR`` when they are imported; this check never decodes or resizes an image. If ``cv2`` cannot be
    imported, a placeholder module is registered in ``sys.modules``: upper-case constants are distinct integers and
    every other attribute is a function that raises ``ImportError`` naming opencv-python-headless.

    Returns:
        bool: True if the placeholder was registered (OpenCV is missing).
    """
    try:
        import cv2  # noqa: F401
        return False
    except ImportError:
        pass
    module = types.ModuleType('cv2', 'placeholder registered by gpu_check.py: OpenCV is not installed')
    module.__version__ = '0.0.0'
    constants: Dict[str, int] = {}

    def missing(name):
        def call(*args, **kwargs):
            raise ImportError(f'cv2.{name}: OpenCV is not installed (pip install opencv-python-headless); '
                              'gpu_check.py registered a placeholder that only serves imports.')
        return call

    def getattr_(name):
        if name.startswith('__'):
            raise AttributeError(name)
        if name.isupper():
            return constants.setdefault(name, 1000 + len(constants))
        return missing(name)

    module.__getattr__ = getattr_
    sys.modules['cv2'] = module
    return True


# ---------------------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------------------
def _benchmark():
    """tools/analysis_tools/benchmark.py as a module (config loading, model building, report sections)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location('mmmixer_benchmark_tool', osp.join(_HERE, 'benchmark.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Check:
    """Run context: device, settings, results, failures and the time budget."""

    def __init__(self, device: str, quick: bool, compile_backend: str, amp: Optional[str], time_budget: float,
                 log: Callable[[str], None]):
        import torch
        self.torch = torch
        self.device = torch.device(device)
        self.quick = quick
        self.settings = dict(QUICK if quick else FULL)
        self.compile_backend = compile_backend
        self.amp = amp
        self.deadline = time.monotonic() + time_budget
        self.log = log
        self.failures: List[str] = []
        self.bench = _benchmark()
        # CPU: one intra-op thread (tiny models; threads waiting on each other on a shared machine cost more)
        self.threads = 1 if self.device.type == 'cpu' else None
        if self.threads:
            torch.set_num_threads(self.threads)

    # timing ------------------------------------------------------------------------------------------------
    def sync(self):
        if self.device.type == 'cuda':
            self.torch.cuda.synchronize(self.device)

    def seconds(self, fn) -> float:
        self.sync()
        start = time.perf_counter()
        fn()
        self.sync()
        return time.perf_counter() - start

    def time_left(self) -> float:
        return self.deadline - time.monotonic()

    def autocast(self, dtype: Optional[str]):
        if dtype is None:
            return contextlib.nullcontext()
        return self.torch.autocast(self.device.type, dtype=getattr(self.torch, dict(fp16='float16',
                                                                                   bf16='bfloat16')[dtype]))

    # models ------------------------------------------------------------------------------------------------
    def spec(self, name: str, extra: str = '') -> str:
        spec = {**FAMILIES, **REFERENCES}[name]
        if not spec.startswith('mmpretrain::'):
            path, sep, rest = spec.partition('::')
            spec = osp.join(_REPO, path) + sep + rest
        return spec + (QUICK_OVERRIDES[name] if self.quick else '') + extra

    def build(self, name: str, extra: str = ''):
        """The classifier of a model's config on the device, weights initialised and perturbed (seeded)."""
        torch = self.torch
        torch.manual_seed(0)
        model, _ = self.bench.build_model(self.spec(name, extra))
        with torch.no_grad():
            for param in model.parameters():
                param.add_(0.02 * torch.randn_like(param))
        return model.to(self.device)

    def images(self, batch: int, size, seed: int = 1):
        size = (size, size) if isinstance(size, int) else tuple(size)
        gen = self.torch.Generator().manual_seed(seed)
        return self.torch.randn(batch, 3, *size, generator=gen).to(self.device)

    def logits(self, model, x):
        return model(x, mode='tensor')

    def fail(self, what: str):
        self.failures.append(what)
        self.log(f'FAILED: {what}')


def _rel(a, b) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm().clamp_min(1e-30)).item()


def _grad_vector(model):
    import torch
    grads = [p.grad.flatten().float() for p in model.parameters() if p.grad is not None]
    return torch.cat(grads) if grads else torch.zeros(0)


# ---------------------------------------------------------------------------------------------------------------
# 1. precision
# ---------------------------------------------------------------------------------------------------------------
def check_precision(ctx: Check, names: List[str]) -> List[dict]:
    """fp32, fp16 autocast + GradScaler and bf16 autocast: finite values and relative errors to fp32."""
    torch = ctx.torch
    F = torch.nn.functional
    rows = []
    for name in names:
        row = dict(model=name)
        try:
            model = ctx.build(name).eval()
            x = ctx.images(ctx.settings['train_batch'], ctx.settings['size'])
            optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
            results = {}
            for dtype in (None, 'fp16', 'bf16'):
                scaler = torch.amp.GradScaler(ctx.device.type) if dtype == 'fp16' else None
                # fp16: GradScaler starts at 2**16 and skips the steps whose scaled gradients overflow, halving the
                # scale each time (what a training run does in its first iterations); try until a step is taken
                for attempt in range(MAX_SKIPPED_STEPS + 1 if scaler else 1):
                    optimizer.zero_grad(set_to_none=True)
                    with ctx.autocast(dtype):
                        logits = ctx.logits(model, x)
                    labels = torch.arange(len(logits), device=ctx.device) % logits.shape[1]
                    loss = F.cross_entropy(logits.float(), labels)
                    if scaler is None:
                        loss.backward()
                        optimizer.step()
                        break
                    scaler.scale(loss).backward()
                    scaler.unscale_(optimizer)  # gradients divided by the scale, as a clip_grad would see them
                    grads_finite = all(bool(torch.isfinite(p.grad).all()) for p in model.parameters()
                                       if p.grad is not None)
                    scaler.step(optimizer)  # skipped when the unscaled gradients are not finite
                    scaler.update()
                    if grads_finite:
                        break
                if scaler is not None:
                    row['fp16_scale'] = scaler.get_scale()
                    row['fp16_skipped_steps'] = attempt if grads_finite else attempt + 1
                grads = _grad_vector(model)
                results[dtype] = (logits.detach().float(), loss.detach().float(), grads)
                key = dtype or 'fp32'
                row[f'{key}_logits_dtype'] = str(logits.dtype).replace('torch.', '')
                row[f'{key}_finite'] = bool(torch.isfinite(logits).all() and torch.isfinite(loss)
                                            and torch.isfinite(grads).all() and grads.numel() > 0)
                if not row[f'{key}_finite']:
                    ctx.fail(f'precision {name} {key}: non-finite logits, loss or gradients')
            ref_logits, _, ref_grads = results[None]
            for dtype in ('fp16', 'bf16'):
                logits, _, grads = results[dtype]
                row[f'{dtype}_rel_logits'] = _rel(logits, ref_logits)
                row[f'{dtype}_rel_grads'] = _rel(grads, ref_grads)
                if not row[f'{dtype}_rel_logits'] < REL_BOUND[dtype]:
                    ctx.fail(f'precision {name} {dtype}: relative logit error {row[f"{dtype}_rel_logits"]:.3g} '
                             f'>= {REL_BOUND[dtype]}')
            ctx.log(f'precision {name}: fp16 rel {row["fp16_rel_logits"]:.2e}, bf16 rel {row["bf16_rel_logits"]:.2e}')
        except Exception as err:  # noqa: BLE001 -- a report row, not a crash
            row['error'] = f'{type(err).__name__}: {err}'
            ctx.fail(f'precision {name}: {row["error"]}')
            traceback.print_exc()
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------------------------
# 2. throughput
# ---------------------------------------------------------------------------------------------------------------
#: the keys of benchmark.py's rows that the report keeps
BENCH_KEYS = ('mode', 'compiled', 'amp', 'params', 'flops', 'infer_ips', 'train_ips', 'infer_gflops', 'train_gflops',
              'compile_s', 'max_abs_diff', 'peak_mem_mb_infer', 'peak_mem_mb_train', 'infer_times', 'train_times')


def check_throughput(ctx: Check, names: List[str], compile_models: bool = True) -> List[dict]:
    """Eager and compiled images/s of inference and of a training step, measured by ``benchmark.py``'s
    ``run_benchmark`` (one call per model: eager fp32, eager autocast and, while the time budget lasts, the
    compiled rows of both)."""
    settings = ctx.settings
    rows = []
    for name in names:
        compiled = compile_models and ctx.time_left() > 0
        try:
            result = ctx.bench.run_benchmark(
                [ctx.spec(name)], sizes=(str(settings['size']), ), batch=settings['infer_batch'],
                train_batch=settings['train_batch'], repeats=settings['repeats'], train_repeats=settings['repeats'],
                warmup=settings['warmup'], threads=ctx.threads, device=str(ctx.device), compile=compiled,
                amp=ctx.amp, compile_backend=ctx.compile_backend)
            for row in result['rows']:
                rows.append(dict(model=name, **{k: row.get(k) for k in BENCH_KEYS}))
            if compile_models and not compiled:
                rows.append(dict(model=name, mode='compiled', compiled=True, error='skipped: time budget spent'))
            ctx.log('throughput ' + name + ': ' + ', '.join(f'{r["mode"]} {r["infer_ips"]:.1f} / {r["train_ips"]:.1f} '
                                                           'img/s' for r in result['rows']))
        except Exception as err:  # noqa: BLE001 -- a report row, not a crash
            rows.append(dict(model=name, mode='-', error=f'{type(err).__name__}: {str(err).splitlines()[0][:300]}'))
            ctx.fail(f'throughput {name}: {rows[-1]["error"]}')
            traceback.print_exc()
    return rows


# ---------------------------------------------------------------------------------------------------------------
# 3. memory with and without with_cp
# ---------------------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def saved_tensor_bytes(counter: dict):
    """Count the bytes of the tensors autograd saves for backward (unique storages) into ``counter['bytes']``."""
    import torch
    seen = set()
    counter['bytes'] = 0

    def pack(tensor):
        try:
            storage = tensor.untyped_storage()
            key = (storage.data_ptr(), tensor.device.type)
            if key not in seen and storage.nbytes() > 0:
                seen.add(key)
                counter['bytes'] += storage.nbytes()
        except (RuntimeError, NotImplementedError):  # e.g. a tensor without storage
            pass
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        yield counter


def check_memory(ctx: Check, names: List[str]) -> List[dict]:
    """One training step without and with ``with_cp``: saved-for-backward bytes, CUDA peak memory."""
    torch = ctx.torch
    F = torch.nn.functional
    rows = []
    for name in names:
        row = dict(model=name)
        rows.append(row)
        try:
            for with_cp in (False, True):
                key = 'cp' if with_cp else 'plain'
                model = ctx.build(name, f'::model.backbone.with_cp={with_cp}').train()
                x = ctx.images(ctx.settings['train_batch'], ctx.settings['size'])
                labels = torch.arange(len(x), device=ctx.device) % 1000
                if ctx.device.type == 'cuda':
                    torch.cuda.empty_cache()
                    torch.cuda.reset_peak_memory_stats(ctx.device)
                    base = torch.cuda.memory_allocated(ctx.device)
                counter = {}
                torch.manual_seed(3)
                with saved_tensor_bytes(counter), ctx.autocast(ctx.amp):
                    logits = ctx.logits(model, x)
                loss = F.cross_entropy(logits.float(), labels % logits.shape[1])
                loss.backward()
                ctx.sync()
                row[f'{key}_saved_mb'] = counter['bytes'] / 2**20
                if ctx.device.type == 'cuda':
                    row[f'{key}_peak_mb'] = (torch.cuda.max_memory_allocated(ctx.device) - base) / 2**20
                row[f'{key}_grad_norm'] = _grad_vector(model).norm().item()
                del model, logits, loss
            row['grad_norm_rel_diff'] = abs(row['cp_grad_norm'] - row['plain_grad_norm']) / row['plain_grad_norm']
            if not row['cp_saved_mb'] < row['plain_saved_mb']:
                ctx.fail(f'memory {name}: with_cp saved no activation memory '
                         f'({row["cp_saved_mb"]:.1f} vs {row["plain_saved_mb"]:.1f} MiB)')
            ctx.log(f'memory {name}: saved {row["plain_saved_mb"]:.1f} -> {row["cp_saved_mb"]:.1f} MiB with with_cp')
        except Exception as err:  # noqa: BLE001
            row['error'] = f'{type(err).__name__}: {str(err).splitlines()[0][:300]}'
            ctx.fail(f'memory {name}: {row["error"]}')
            traceback.print_exc()
    return rows


# ---------------------------------------------------------------------------------------------------------------
# 4. one dense pass
# ---------------------------------------------------------------------------------------------------------------
def check_dense(ctx: Check, names: List[str]) -> List[dict]:
    """The backbone in the dense layout (four stage maps) at 800x1333: inference and a training step."""
    torch = ctx.torch
    rows = []
    dense = "::model.backbone.out_indices=(0, 1, 2, 3)::model.backbone.gap_before_final_norm=False"
    for name in names:
        row = dict(model=name, size='x'.join(map(str, ctx.settings['dense_size'])))
        rows.append(row)
        try:
            extra = dense + ("::model.backbone.shift_mode='zero'" if 'MS-MLP' in name and 'Swin' not in name else '')
            backbone = ctx.build(name, extra).backbone
            x = ctx.images(ctx.settings['dense_batch'], ctx.settings['dense_size'])
            if ctx.device.type == 'cuda':
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(ctx.device)
                base = torch.cuda.memory_allocated(ctx.device)
            backbone.eval()
            outs = []

            def infer():
                with torch.no_grad(), ctx.autocast(ctx.amp):
                    outs[:] = backbone(x)

            row['infer_s'] = min(ctx.seconds(infer) for _ in range(2))
            row['shapes'] = [list(o.shape[1:]) for o in outs]
            row['finite'] = all(bool(torch.isfinite(o).all()) for o in outs)
            if ctx.device.type == 'cuda':
                row['infer_peak_mb'] = (torch.cuda.max_memory_allocated(ctx.device) - base) / 2**20
                torch.cuda.reset_peak_memory_stats(ctx.device)
            backbone.train()

            def train():
                with ctx.autocast(ctx.amp):
                    loss = sum(o.float().mean() for o in backbone(x))
                loss.backward()

            row['train_s'] = min(ctx.seconds(train) for _ in range(2))
            if ctx.device.type == 'cuda':
                row['train_peak_mb'] = (torch.cuda.max_memory_allocated(ctx.device) - base) / 2**20
            if not row['finite']:
                ctx.fail(f'dense {name}: non-finite outputs')
            ctx.log(f'dense {name}: {row["infer_s"]:.3f} s inference, {row["train_s"]:.3f} s training step')
        except Exception as err:  # noqa: BLE001
            row['error'] = f'{type(err).__name__}: {str(err).splitlines()[0][:300]}'
            ctx.fail(f'dense {name}: {row["error"]}')
            traceback.print_exc()
    return rows


# ---------------------------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------------------------
def environment(ctx: Check, cv2_placeholder: bool) -> dict:
    torch = ctx.torch
    info = dict(python=platform.python_version(), torch=torch.__version__, device=str(ctx.device),
                cpu=platform.processor() or platform.machine(), threads=torch.get_num_threads(),
                cv2_placeholder=cv2_placeholder)
    if ctx.device.type == 'cuda':
        info.update(gpu=torch.cuda.get_device_name(ctx.device), cuda=torch.version.cuda,
                    cudnn=torch.backends.cudnn.version(), tf32_matmul=torch.backends.cuda.matmul.allow_tf32)
    for package in ('mmengine', 'mmcv', 'mmpretrain', 'mmmixer'):
        try:
            info[package] = __import__(package).__version__
        except Exception:  # noqa: BLE001
            info[package] = 'missing'
    return info


def _f(value, fmt='{:.1f}'):
    return '-' if value is None else fmt.format(value)


def format_report(result: dict) -> str:
    env, s = result['environment'], result['settings']
    lines = [f'GPU check of {result["date"]}: `{result["command"]}` '
             f'({"quick: tiny archs and inputs" if result["quick"] else "tiny presets"}), '
             f'{env.get("gpu", env["cpu"])}, torch {env["torch"]}'
             + (f', CUDA {env["cuda"]}' if 'cuda' in env else '')
             + f'; mmengine {env["mmengine"]}, mmcv {env["mmcv"]}, mmpretrain {env["mmpretrain"]}; '
             f'{result["elapsed_s"]:.0f} s in all. '
             + ('**All checks passed.**' if not result['failures'] else
                f'**{len(result["failures"])} check(s) failed**: ' + '; '.join(result['failures'])),
             '']
    lines += [f'Precision (batch {s["train_batch"]}, {s["size"]} px, eval mode, one forward + backward; relative '
              'Frobenius error to fp32; fp16 with `GradScaler`):', '',
              '| model | fp32 finite | fp16 finite | fp16 rel. logits | fp16 rel. grads | fp16 scale (skipped steps) | '
              'bf16 finite | bf16 rel. logits | bf16 rel. grads |', '|---|---|---|---|---|---|---|---|---|']
    for r in result['precision']:
        if 'error' in r:
            lines.append(f'| {r["model"]} | {r["error"]} |' + ' |' * 7)
            continue
        lines.append(f'| {r["model"]} | {r["fp32_finite"]} | {r["fp16_finite"]} | {r["fp16_rel_logits"]:.2e} | '
                     f'{r["fp16_rel_grads"]:.2e} | {r.get("fp16_scale", 0):.0f} ({r.get("fp16_skipped_steps")}) | '
                     f'{r["bf16_finite"]} | '
                     f'{r["bf16_rel_logits"]:.2e} | {r["bf16_rel_grads"]:.2e} |')
    amp = result['amp']
    cuda = env['device'].startswith('cuda')
    lines += ['', f'Throughput by `benchmark.py` ({s["size"]} px; inference batch {s["infer_batch"]}, training step '
              f'batch {s["train_batch"]} with SGD; autocast {amp}; compiled: `torch.compile(backend='
              f'{result["compile_backend"]!r})`, compile time = first inference + first training call, not counted; '
              f'median of {s["repeats"]} round-robin calls; max. diff = largest logit difference to eager fp32):', '',
              '| model | mode | params (M) | GFLOPs | inference img/s | training img/s | compile s | max. diff |'
              + (' peak MiB inference | peak MiB training |' if cuda else ''),
              '|---|---|---|---|---|---|---|---|' + ('---|---|' if cuda else '')]
    for r in result['throughput']:
        if 'error' in r:
            lines.append(f'| {r["model"]} | {r["mode"]} | {r["error"]} | | | | | |' + (' | |' if cuda else ''))
            continue
        peaks = f' {_f(r.get("peak_mem_mb_infer"), "{:.0f}")} | {_f(r.get("peak_mem_mb_train"), "{:.0f}")} |' \
            if cuda else ''
        lines.append(f'| {r["model"]} | {r["mode"]} | {r["params"] / 1e6:.2f} | {_f((r.get("flops") or 0) / 1e9, "{:.2f}")} | '
                     f'{r["infer_ips"]:.1f} | {r["train_ips"]:.1f} | {_f(r.get("compile_s"))} | '
                     f'{_f(r.get("max_abs_diff"), "{:.1e}")} |{peaks}')
    lines += ['', f'Memory of one training step (batch {s["train_batch"]}, {s["size"]} px) without / with `with_cp`: '
              'MiB of tensors saved for backward' + (', and peak CUDA memory above the model' if cuda else '') + ':',
              '', '| model | saved | saved, with_cp |' + (' peak | peak, with_cp |' if cuda else '')
              + ' grad-norm rel. diff |', '|---|---|---|' + ('---|---|' if cuda else '') + '---|']
    for r in result['memory']:
        if 'error' in r:
            lines.append(f'| {r["model"]} | {r["error"]} | |' + (' | |' if cuda else '') + ' |')
            continue
        peaks = f' {_f(r.get("plain_peak_mb"))} | {_f(r.get("cp_peak_mb"))} |' if cuda else ''
        lines.append(f'| {r["model"]} | {r["plain_saved_mb"]:.1f} | {r["cp_saved_mb"]:.1f} |{peaks} '
                     f'{r["grad_norm_rel_diff"]:.1e} |')
    lines += ['', f'Dense backbone pass (four stage maps, batch {s["dense_batch"]}, autocast {amp}; best of 2):', '',
              '| model | size | inference s | training step s |' + (' peak MiB inference | peak MiB training |'
                                                                   if cuda else '') + ' finite | stage maps (C, H, W) |',
              '|---|---|---|---|' + ('---|---|' if cuda else '') + '---|---|']
    for r in result['dense']:
        if 'error' in r:
            lines.append(f'| {r["model"]} | {r["size"]} | {r["error"]} |' + (' | |' if cuda else '') + ' | | |')
            continue
        peaks = f' {_f(r.get("infer_peak_mb"), "{:.0f}")} | {_f(r.get("train_peak_mb"), "{:.0f}")} |' if cuda else ''
        lines.append(f'| {r["model"]} | {r["size"]} | {r["infer_s"]:.3f} | {r["train_s"]:.3f} |{peaks} '
                     f'{r["finite"]} | {" ".join("x".join(map(str, sh)) for sh in r["shapes"])} |')
    return '\n'.join(lines) + '\n'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Prepared GPU check of the mmmixer backbones (module docstring).')
    parser.add_argument('--device', default=None, help="'cuda' (default when available) or 'cpu'")
    parser.add_argument('--quick', action='store_true', help='tiny archs and inputs (the CI run)')
    parser.add_argument('--out-dir', default='work_dirs/gpu_check', help='where gpu_check.md / .json are written')
    parser.add_argument('--models', nargs='+', default=None,
                        help=f'subset of {list(FAMILIES) + list(REFERENCES)} (default: all)')
    parser.add_argument('--amp', choices=['none', 'fp16', 'bf16'], default='bf16',
                        help='autocast dtype of the throughput (rows beside fp32), memory and dense checks '
                        '(default bf16)')
    parser.add_argument('--compile-backend', default=None,
                        help="torch.compile backend (default 'inductor'; 'eager' with --quick on CPU)")
    parser.add_argument('--no-compile', action='store_true', help='eager throughput only')
    parser.add_argument('--time-budget', type=float, default=420.,
                        help='seconds after which compiled throughput rows not yet started are skipped (default 420)')
    parser.add_argument('--update-docs', default=None,
                        help='also write the report between the benchmark:gpu markers of this file')
    parser.add_argument('--install-from', default=None,
                        help='wheel folder (build_gpu_wheelhouse.sh): install into --venv and rerun there')
    parser.add_argument('--venv', default='/tmp/mmmixer-gpu-venv', help='venv for --install-from')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.install_from:
        rest, skip = [], False
        for i, arg in enumerate(argv):  # the same options without --install-from / --venv
            if skip:
                skip = False
                continue
            if arg in ('--install-from', '--venv'):
                skip = True
                continue
            if arg.startswith(('--install-from=', '--venv=')):
                continue
            rest.append(arg)
        return install_and_rerun(args.install_from, args.venv, rest)

    import torch
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    if device not in ('cuda', 'cpu') and not device.startswith('cuda:'):
        raise SystemExit(f"gpu_check: --device must be 'cuda', 'cuda:N' or 'cpu', got {device!r}.")
    if device.startswith('cuda') and not torch.cuda.is_available():
        raise SystemExit('gpu_check: --device cuda, but torch.cuda.is_available() is False; accepted: a CUDA build '
                         'of torch on a machine with a GPU, or --device cpu.')
    names = args.models or list(FAMILIES) + list(REFERENCES)
    unknown = [n for n in names if n not in FAMILIES and n not in REFERENCES]
    if unknown:
        raise SystemExit(f'gpu_check: --models {unknown} unknown; accepted: {list(FAMILIES) + list(REFERENCES)}.')
    amp = args.amp
    backend = args.compile_backend or ('eager' if args.quick and device == 'cpu' else 'inductor')
    cv2_placeholder = ensure_cv2()
    start = time.monotonic()

    def log(msg):
        print(f'[gpu_check {time.monotonic() - start:6.1f} s] {msg}', flush=True)

    ctx = Check(device, args.quick, backend, None if amp == 'none' else amp, args.time_budget, log)
    if device.startswith('cuda'):
        torch.backends.cuda.matmul.allow_tf32 = True  # what training recipes on Ampere+ GPUs use
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    ours = [n for n in names if n in FAMILIES]
    result = dict(date=datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
                  command='python tools/analysis_tools/gpu_check.py ' + ' '.join(argv),
                  quick=args.quick, settings=ctx.settings, compile_backend=backend, amp=amp,
                  environment=environment(ctx, cv2_placeholder))
    log(f'device {device}, models {names}, amp {amp}, compile backend {backend}')
    result['precision'] = check_precision(ctx, names)
    result['throughput'] = check_throughput(ctx, names, compile_models=not args.no_compile)
    result['memory'] = check_memory(ctx, ours)
    result['dense'] = check_dense(ctx, ours)
    result['failures'] = ctx.failures
    result['elapsed_s'] = time.monotonic() - start
    text = format_report(result)
    os.makedirs(args.out_dir, exist_ok=True)
    with open(osp.join(args.out_dir, 'gpu_check.md'), 'w', encoding='utf-8') as f:
        f.write(text)
    with open(osp.join(args.out_dir, 'gpu_check.json'), 'w', encoding='utf-8') as f:
        json.dump(result, f, indent=1, default=str)
    if args.update_docs:
        ctx.bench.write_report(args.update_docs, text, section='gpu')
    print(text)
    log(f'wrote {osp.join(args.out_dir, "gpu_check.md")} and gpu_check.json; {len(ctx.failures)} failure(s)')
    return 1 if ctx.failures else 0


if __name__ == '__main__':
    sys.exit(main())
