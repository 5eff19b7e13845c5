"""--amp on a CPU machine: bfloat16 autocast through mmmixer.AutocastOptimWrapper."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

from helpers_mmmixer import REPO, config_path, load_tool


def _train_tool():
    return load_tool(osp.join(REPO, 'tools', 'train.py'), 'mmmixer_train_tool')


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the CPU path of --amp')
def test_amp_flag_selects_bf16_autocast_on_cpu():
    tool = _train_tool()
    args = tool.parse_args([config_path('msmlp-nano_1xb64-40e_digits.py'), '--amp'])
    cfg = tool.merge_args(Config.fromfile(args.config), args)
    assert cfg.optim_wrapper.type == 'mmmixer.AutocastOptimWrapper'
    model = torch.nn.Sequential(torch.nn.Linear(8, 8))
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    assert type(wrapper).__name__ == 'AutocastOptimWrapper'
    x = torch.randn(4, 8)
    with wrapper.optim_context(model):
        y = model(x)
    assert y.dtype == torch.bfloat16
    wrapper.update_params(y.float().pow(2).mean())
    assert model[0].weight.dtype == torch.float32  # master weights stay fp32
    assert model(x).dtype == torch.float32  # outside the context: no autocast


def test_autocast_wrapper_rejects_bad_dtype():
    from mmmixer.engine import AutocastOptimWrapper
    model = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match="dtype must be 'bfloat16' or 'float16'"):
        AutocastOptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1), dtype='int8')
