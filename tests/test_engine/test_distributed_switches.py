"""SyncBN and mmengine's FSDP strategy with our backbones and configs, as far as a CPU can run them.

* SyncBN: the det/seg configs that ask for it (``SyncBN`` norm configs of the PosMLP stem and Strip-MLP) build
  ``torch.nn.SyncBatchNorm`` layers; mmengine's ``convert_sync_batchnorm`` (what ``sync_bn='torch'`` makes the
  Runner do) converts every BatchNorm of our BN backbones; in one process the converted model computes what the
  BatchNorm model computes (outputs and gradients), and mmengine's ``revert_sync_batchnorm`` converts back. In a
  gloo process group torch's ``SyncBatchNorm`` refuses CPU inputs in training mode, even for one process (the
  reason ``tools/train.py`` refuses SyncBN in multi-process CPU runs); evaluation mode does not synchronise.
* FSDP: mmengine's ``FlexibleRunner`` with ``FSDPStrategy`` trains the digits demo on the CPU in a gloo process group
  of one process (the wrapper's ``device_id`` set to the CPU: mmengine passes ``LOCAL_RANK``, a CUDA index, by
  default) and ends with the weights of the plain Runner.
"""
import copy
import os

import pytest
import torch
import torch.distributed as dist
import torch.nn as nn
from mmengine.config import Config
from mmengine.model import convert_sync_batchnorm, revert_sync_batchnorm
from torch.nn.modules.batchnorm import _BatchNorm

from helpers_mmmixer import config_path, short_digits_cfg
from mmmixer.models import PosMLP, StripMLP
from mmmixer.registry import MODELS

ONE_BLOCK = dict(embed_dims=16, depths=[1, 1, 1, 1])
SYNC_BN_CONFIGS = ['posmlp-t_upernet_8xb2-160k_ade20k-512x512.py', 'stripmlp-t_upernet_8xb2-160k_ade20k-512x512.py']
BN_FAMILIES = {
    'posmlp': lambda: PosMLP(arch=ONE_BLOCK, out_indices=(0, 1, 2, 3)),
    'stripmlp': lambda: StripMLP(arch=ONE_BLOCK, img_size=64, out_indices=(0, 1, 2, 3)),
}


def _grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _train_pass(model, x):
    model.train()
    model.zero_grad(set_to_none=True)
    torch.manual_seed(0)  # the same drop-path draws for both models
    outs = model(x)
    sum((o * torch.linspace(-1, 1, o.numel()).view_as(o)).sum() for o in outs).backward()
    return [o.detach() for o in outs], _grads(model)


def _same_pass(a, b, x):
    outs_a, grads_a = _train_pass(a, x)
    outs_b, grads_b = _train_pass(b, x)
    assert all(torch.allclose(p, q, atol=1e-6) for p, q in zip(outs_a, outs_b))
    assert grads_a.keys() == grads_b.keys() and grads_a
    assert all(torch.allclose(grads_a[k], grads_b[k], atol=1e-6) for k in grads_a)


@pytest.mark.parametrize('name', SYNC_BN_CONFIGS)
def test_sync_bn_configs_build_sync_batchnorm(name):
    backbone_cfg = Config.fromfile(config_path(name)).model.backbone
    backbone_cfg.update(arch=ONE_BLOCK, init_cfg=None)
    backbone = MODELS.build(backbone_cfg)
    sync = [m for m in backbone.modules() if isinstance(m, nn.SyncBatchNorm)]
    assert sync, f'{name}: no SyncBatchNorm built'
    plain = revert_sync_batchnorm(copy.deepcopy(backbone))
    assert not [m for m in plain.modules() if isinstance(m, nn.SyncBatchNorm)]
    assert len([m for m in plain.modules() if isinstance(m, _BatchNorm)]) == len(sync)
    # one process, no process group: SyncBatchNorm is BatchNorm
    _same_pass(backbone, plain, torch.randn(2, 3, 64, 96))


@pytest.mark.parametrize('family', list(BN_FAMILIES))
def test_convert_sync_batchnorm_as_the_runner_does(family):
    torch.manual_seed(0)
    model = BN_FAMILIES[family]()
    num_bn = len([m for m in model.modules() if isinstance(m, _BatchNorm)])
    assert num_bn > 0
    converted = convert_sync_batchnorm(copy.deepcopy(model), implementation='torch')
    sync = [m for m in converted.modules() if isinstance(m, nn.SyncBatchNorm)]
    assert len(sync) == num_bn
    _same_pass(model, converted, torch.randn(2, 3, 64, 96))
    reverted = revert_sync_batchnorm(converted)
    assert not [m for m in reverted.modules() if isinstance(m, nn.SyncBatchNorm)]


@pytest.fixture(scope='module', autouse=True)
def _one_thread():
    """One intra-op thread (small models; two threads waiting on each other on a shared machine are slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def gloo_world_of_one(tmp_path_factory):
    """A gloo process group with this process as its only rank, for this module's tests."""
    if dist.is_initialized():
        pytest.skip('a process group is already initialised in this process')
    store = tmp_path_factory.mktemp('gloo') / 'store'
    dist.init_process_group('gloo', init_method=f'file://{store}', rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_sync_bn_in_a_gloo_group_on_cpu(gloo_world_of_one):
    torch.manual_seed(0)
    model = BN_FAMILIES['posmlp']()
    converted = convert_sync_batchnorm(copy.deepcopy(model), implementation='torch')
    x = torch.randn(2, 3, 64, 64)
    with pytest.raises(ValueError, match='SyncBatchNorm expected input tensor to be on GPU'):
        converted.train()(x)
    model.eval(), converted.eval()
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(model(x), converted(x)))


@pytest.fixture(scope='module')
def digits_root(tmp_path_factory):
    from mmmixer.datasets import make_digits_folder
    root = str(tmp_path_factory.mktemp('digits'))
    make_digits_folder(root, size=32)
    return root


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_flexible_runner_fsdp_on_cpu(gloo_world_of_one, digits_root, tmp_path, monkeypatch):
    from mmengine.runner import FlexibleRunner, Runner
    from torch.distributed.fsdp import FullyShardedDataParallel
    monkeypatch.setitem(os.environ, 'LOCAL_RANK', '0')
    plain = Runner.from_cfg(short_digits_cfg(digits_root, tmp_path / 'plain', 'fsdp_plain'))
    plain.train()
    reference = _state(plain.model)

    cfg = short_digits_cfg(digits_root, tmp_path / 'fsdp', 'fsdp')
    cfg.launcher = 'pytorch'  # the process group exists already: the strategy skips mmengine's init_dist
    cfg.env_cfg = dict(dist_cfg=dict(backend='gloo'))
    cfg.strategy = dict(type='FSDPStrategy', state_dict_cfg='full',
                        model_wrapper=dict(type='MMFullyShardedDataParallel', device_id=torch.device('cpu')))
    runner = FlexibleRunner.from_cfg(cfg)
    runner.train()
    assert isinstance(runner.model, FullyShardedDataParallel)
    assert runner.iter == plain.iter == 8
    state = runner.strategy.model_state_dict()
    assert state.keys() == reference.keys()
    diff = max((state[k].float() - reference[k].float()).abs().max().item() for k in state)
    print(f'FSDP (1 process, gloo, CPU) vs plain Runner after 8 iterations: max abs weight difference {diff:.3g}')
    assert diff <= 1e-5
