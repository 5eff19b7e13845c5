"""mmengine's training switches with our configs, a few iterations each on the CPU: ``compile`` in the config,
``--amp``, ``with_cp``.

Every run is the digits demo config (``msmlp-nano_1xb64-40e_digits.py``: real 32x32 digit scans, MS-MLP with 1M
parameters, AdamW, LabelSmoothLoss) on 32 training images, batch 8, 2 epochs (8 iterations), no validation, with
drop path 0 and no random crop offsets, so that runs differ only in the switch under test. Each run is compared with
the plain run: the weights after the 8 AdamW steps are the end of the whole chain (forward, loss, backward,
gradient clipping, optimizer).
"""
import pytest
import torch
from mmengine.runner import Runner

from helpers_mmmixer import short_digits_cfg

ITERS = 8  # 32 images, batch 8, 2 epochs


@pytest.fixture(scope='module', autouse=True)
def _one_thread():
    """One intra-op thread: a 1M-parameter model on batches of 8 gains nothing from two, and on a shared 2-core
    machine two threads waiting on each other made iterations seconds long."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def digits_root(tmp_path_factory):
    from mmmixer.datasets import make_digits_folder
    root = str(tmp_path_factory.mktemp('digits'))
    make_digits_folder(root, size=32)
    return root


def _cfg(root, work_dir, name, extra_args=()):
    return short_digits_cfg(root, work_dir, name, extra_args, images=32, batch=8, epochs=2)


def _train(cfg, before_train=None):
    runner = Runner.from_cfg(cfg)
    if before_train is not None:
        before_train(runner)
    runner.train()
    assert runner.iter == ITERS
    losses = runner.message_hub.get_scalar('train/loss').data[0]
    state = {k: v.detach().clone() for k, v in runner.model.state_dict().items()}
    return runner, losses, state


def _max_diff(a, b):
    assert a.keys() == b.keys()
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


@pytest.fixture(scope='module')
def plain_run(digits_root, tmp_path_factory):
    """The reference: no switch."""
    work = tmp_path_factory.mktemp('plain')
    _, losses, state = _train(_cfg(digits_root, work, 'plain'))
    assert len(losses) == ITERS and all(torch.isfinite(torch.as_tensor(losses)))
    return losses, state


def test_with_cp_trains_to_the_same_weights(digits_root, plain_run, tmp_path):
    cfg = _cfg(digits_root, tmp_path, 'with_cp')
    cfg.model.backbone.with_cp = True

    def check(runner):
        blocks = [b for s in runner.model.backbone.stages for b in s.blocks]
        assert blocks and all(b.with_cp for b in blocks)

    _, losses, state = _train(cfg, check)
    diff = _max_diff(state, plain_run[1])
    print(f'with_cp vs plain after {ITERS} iterations: max abs weight difference {diff:.3g}')
    assert diff <= 1e-6  # recomputation repeats the same float32 operations
    assert max(abs(a - b) for a, b in zip(losses, plain_run[0])) <= 1e-6


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the CPU path of --amp (fp16 AmpOptimWrapper on CUDA)')
def test_amp_flag_trains_in_bfloat16(digits_root, plain_run, tmp_path):
    """``tools/train.py --amp`` on a CPU: mmmixer.AutocastOptimWrapper, bfloat16 forward, float32 master weights."""
    cfg = _cfg(digits_root, tmp_path, 'amp', ['--amp'])
    assert cfg.optim_wrapper.type == 'mmmixer.AutocastOptimWrapper'
    dtypes = []

    def hook(runner):
        runner.model.head.fc.register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))

    runner, losses, state = _train(cfg, hook)
    assert type(runner.optim_wrapper).__name__ == 'AutocastOptimWrapper'
    assert dtypes == [torch.bfloat16] * ITERS
    assert all(v.dtype == plain_run[1][k].dtype for k, v in state.items())  # float32 weights
    assert all(torch.isfinite(v).all() for v in state.values())
    diff = _max_diff(state, plain_run[1])
    print(f'--amp (bf16) vs fp32 after {ITERS} iterations: max abs weight difference {diff:.3g}, losses '
          f'{[round(x, 4) for x in losses]} vs {[round(x, 4) for x in plain_run[0]]}')
    assert 0 < diff < 1e-2  # bf16 rounding, not a different training
    assert max(abs(a - b) for a, b in zip(losses, plain_run[0])) < 0.05


def test_compile_in_config(digits_root, plain_run, tmp_path):
    """``compile`` in the config (``--cfg-options compile.backend=eager``): mmengine's Runner compiles
    ``model.train_step`` (data preprocessor, forward, loss, backward and optimizer step).

    The ``eager`` backend runs dynamo's capture, where a model or an mmengine part that dynamo cannot trace fails
    (mmengine's ``ConfigDict`` parameter groups did, hence ``mmmixer.PlainParamGroupsHook``, which ``tools/train.py``
    adds), and executes the captured graphs with eager kernels: inductor's code generation costs minutes on a 2-core
    CPU (``compile=True`` runs in the slow test below).
    """
    from torch._dynamo.utils import counters
    torch._dynamo.reset()
    counters.clear()
    cfg = _cfg(digits_root, tmp_path, 'compiled', ['--cfg-options', 'compile.backend=eager'])
    assert cfg.compile == dict(backend='eager')
    assert [h['type'] for h in cfg.custom_hooks] == ['mmmixer.PlainParamGroupsHook']
    runner, losses, state = _train(cfg)
    assert hasattr(runner.model.train_step, '_torchdynamo_orig_callable')  # Runner._maybe_compile wrapped it
    assert all(type(g) is dict for g in runner.optim_wrapper.optimizer.param_groups)
    graphs = counters['stats']['unique_graphs']
    print(f'compiled train_step: {graphs} graph(s) captured')
    assert graphs >= 1
    diff = _max_diff(state, plain_run[1])
    print(f'compiled vs eager after {ITERS} iterations: max abs weight difference {diff:.3g}')
    assert diff <= 1e-5
    torch._dynamo.reset()


@pytest.mark.slow
def test_compile_true_in_config(digits_root, plain_run, tmp_path):
    """``compile=True`` (inductor, what a GPU run uses): same weights as eager within 1e-4."""
    torch._dynamo.reset()
    cfg = _cfg(digits_root, tmp_path, 'compiled_inductor', ['--cfg-options', 'compile=True'])
    _, _, state = _train(cfg)
    assert _max_diff(state, plain_run[1]) <= 1e-4
    torch._dynamo.reset()
