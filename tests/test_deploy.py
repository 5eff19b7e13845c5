"""Deployment paths of every backbone family: ONNX export, torch.compile, bfloat16 / float16 autocast on CPU.

Each case is a tiny custom arch at a small input, in the dense-prediction configuration (all four stage outputs,
per-position output norms: what detection/segmentation deploy; the classification output is a mean over one of
them), with every parameter and BN statistic perturbed away from its init (layer scales start at 1e-6 and LRPE
tables at 0, which would hide most of the model). The inputs cover the size-dependent paths: PosMLP stages padded to
the window and masked, Strip-MLP at its trained size (official computation) and at another size (strip windows),
MS-MLP both shift modes, the Swin hybrid with W-MSA, SW-MSA and MS blocks on maps smaller than the window.

* ONNX: ``torch.onnx.export`` (opset 17, the TorchScript-based exporter ``dynamo=False``: the dynamo exporter needs
  onnxscript, which is not installed) of the model traced on one input passes ``onnx.checker.check_model(full_check=
  True)``, and run on a *different* input of the same shape matches PyTorch within 1e-4 (so no data was folded into
  the graph). Runtime: onnxruntime if installed, else onnx's own reference evaluator (``onnx.reference``). The
  exported graph is specialised to the export size (window layouts and padding are computed from the shape while
  tracing); export once per deployment size.
* torch.compile: dynamo captures the whole forward as one graph (``fullgraph=True``, eager backend: fast, catches
  graph breaks); the full default-mode (inductor) compile matching eager within 1e-4 is marked ``slow``
  (45-340 s per model on the 2 shared cores of the dev machine).
* float16: the same under ``torch.autocast('cpu', dtype=torch.float16)`` (what fp16 AMP on CUDA runs), finite
  outputs within 1% (float16 keeps 11 significant bits: measured 0.04-0.11% here), finite gradients.
* bfloat16: a forward under ``torch.autocast('cpu', dtype=torch.bfloat16)`` gives finite outputs within 5% relative
  (Frobenius) error of float32 -- loose on purpose: bfloat16 keeps 8 significant bits (0.4% per rounding) and the
  error grows through the layers (measured 0.6-0.8% here); it catches NaN/inf (e.g. masks filled in low precision)
  and wrong-dtype paths -- and a backward pass through it gives finite gradients (the ``--amp`` training path).
"""
import io
import warnings

import pytest
import torch

from mmmixer.models import MSMLP, PosMLP, StripMLP, SwinMSMLP

DENSE = dict(out_indices=(0, 1, 2, 3), gap_before_final_norm=False)
SWIN_ARCH = dict(embed_dims=32, depths=[1, 1, 1, 1], num_heads=[1, 2, 4, 8])
ONE_BLOCK = dict(embed_dims=32, depths=[1, 1, 1, 1])

# name -> (builder, input shape (B, C, H, W))
CASES = {
    'msmlp-circular': (lambda: MSMLP(arch=ONE_BLOCK, **DENSE), (2, 3, 64, 64)),
    'msmlp-zero': (lambda: MSMLP(arch=ONE_BLOCK, shift_mode='zero', **DENSE),
                   (2, 3, 64, 96)),
    # windows 14/14/14/7 at 112 px: maps 28, 14, 7, 4 -> the last two stages pad to the window and mask
    'posmlp-gqpe': (lambda: PosMLP(arch=ONE_BLOCK, **DENSE), (2, 3, 112, 112)),
    'posmlp-lrpe': (lambda: PosMLP(arch=ONE_BLOCK, pos_type='lrpe', **DENSE),
                    (2, 3, 112, 112)),
    # trained at 64 px: 64x64 is the official computation, 96x64 runs the strip windows
    'stripmlp-trained-size': (lambda: StripMLP(arch=dict(embed_dims=16, depths=[1, 1, 1, 1]), img_size=64, **DENSE),
                              (2, 3, 64, 64)),
    'stripmlp-windowed': (lambda: StripMLP(arch=dict(embed_dims=16, depths=[1, 1, 1, 1]), img_size=64, **DENSE),
                          (2, 3, 96, 64)),
    # W-MSA, SW-MSA and MS blocks; maps 16, 8, 4, 2 < window 7 in the last stages (pad_small_map)
    'swin-msmlp': (lambda: SwinMSMLP(arch=SWIN_ARCH, block_pattern=['S', 'M', 'W', 'M'], **DENSE),
                   (2, 3, 64, 64)),
}


@pytest.fixture(scope='module', autouse=True)
def _one_thread():
    """One intra-op thread: these models are tiny, and on a shared 2-core machine two threads contending with other
    processes made single calls 10x slower (OpenMP waiting), not faster."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def build(name):
    """The case's model in eval mode with every parameter and BN statistic perturbed (seeded)."""
    builder, shape = CASES[name]
    torch.manual_seed(0)
    model = builder()
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.05 * torch.randn_like(param))
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.running_mean.normal_(0., 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return model.eval(), shape


def inputs(shape, count=2):
    gen = torch.Generator().manual_seed(1)
    return [torch.randn(shape, generator=gen) for _ in range(count)]


def max_abs_diff(outs, refs):
    assert len(outs) == len(refs) == 4
    for out, ref in zip(outs, refs):
        out = torch.as_tensor(out)
        assert out.shape == ref.shape
    return max((torch.as_tensor(o).float() - r.float()).abs().max().item() for o, r in zip(outs, refs))


def run_onnx(model_bytes, x):
    """Run an ONNX model on CPU: onnxruntime if installed, else ``onnx.reference.ReferenceEvaluator``."""
    try:
        import onnxruntime as ort
    except ImportError:
        from onnx.reference import ReferenceEvaluator
        return ReferenceEvaluator(model_bytes).run(None, {'input': x.numpy()})
    session = ort.InferenceSession(model_bytes, providers=['CPUExecutionProvider'])
    return session.run(None, {'input': x.numpy()})


@pytest.mark.parametrize('name', list(CASES))
def test_onnx_export(name):
    onnx = pytest.importorskip('onnx')
    model, shape = build(name)
    x_export, x_run = inputs(shape)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter('ignore')  # TracerWarnings: shapes become constants of the exported graph
        torch.onnx.export(model, (x_export, ), buffer, opset_version=17, dynamo=False, input_names=['input'],
                          output_names=[f'stage{i}' for i in range(4)])
    proto = onnx.load_from_string(buffer.getvalue())
    onnx.checker.check_model(proto, full_check=True)
    assert max(op.version for op in proto.opset_import if op.domain in ('', 'ai.onnx')) == 17
    with torch.no_grad():
        ref = model(x_run)
    outs = run_onnx(buffer.getvalue(), x_run)
    assert max_abs_diff(outs, ref) <= 1e-4


@pytest.mark.parametrize('name', list(CASES))
def test_compile_captures_one_graph(name):
    """Dynamo traces the whole forward without a graph break (eager backend; inductor in the slow test below)."""
    model, shape = build(name)
    x, = inputs(shape, 1)
    torch._dynamo.reset()
    compiled = torch.compile(model, backend='eager', fullgraph=True)
    with torch.no_grad():
        assert max_abs_diff(compiled(x), model(x)) <= 1e-6


@pytest.mark.slow
@pytest.mark.parametrize('name', list(CASES))
def test_compile_default_mode(name):
    """``torch.compile`` (default mode, inductor) runs and matches eager within 1e-4 on a second input."""
    model, shape = build(name)
    x_first, x_second = inputs(shape)
    torch._dynamo.reset()
    compiled = torch.compile(model)
    with torch.no_grad():
        compiled(x_first)
        assert max_abs_diff(compiled(x_second), model(x_second)) <= 1e-4


@pytest.mark.parametrize('dtype, bound', [(torch.bfloat16, 0.05), (torch.float16, 0.01)], ids=['bf16', 'fp16'])
@pytest.mark.parametrize('name', list(CASES))
def test_autocast(name, dtype, bound):
    """CPU autocast in bfloat16 and float16: finite outputs within ``bound`` relative error of float32, and finite
    gradients of every trainable parameter."""
    model, shape = build(name)
    x, = inputs(shape, 1)
    with torch.no_grad():
        ref = model(x)
        with torch.autocast('cpu', dtype=dtype):
            outs = model(x)
    rel = []
    for out, r in zip(outs, ref):
        assert torch.isfinite(out).all()
        rel.append(((out.float() - r).norm() / r.norm()).item())
    assert max(rel) < bound, f'relative errors {rel} of the {dtype} outputs'
    assert min(rel) > 0, 'autocast had no effect'
    with torch.autocast('cpu', dtype=dtype):
        loss = sum(out.float().square().mean() for out in model(x))
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    with torch.autocast('cpu', dtype=torch.float16):
        loss = sum(out.float().square().mean() for out in model(x))
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
