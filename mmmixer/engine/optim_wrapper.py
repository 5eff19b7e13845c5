"""Mixed precision where mmengine's ``AmpOptimWrapper`` does not run (CPU)."""
from contextlib import contextmanager
from typing import Union

import torch
from mmengine.optim import OptimWrapper

from mmmixer.registry import OPTIM_WRAPPERS

__all__ = ['AutocastOptimWrapper']


@OPTIM_WRAPPERS.register_module()
class AutocastOptimWrapper(OptimWrapper):
    """``OptimWrapper`` that runs the training forward under ``torch.autocast``.

    mmengine 0.10.7's ``AmpOptimWrapper`` asserts that CUDA, NPU or MLU is available, so ``--amp`` could not run
    on a CPU. This wrapper gives the CPU path: bfloat16 autocast, no loss scaling (bfloat16 has float32's
    exponent range, so gradients do not underflow the way float16 ones do). ``tools/train.py --amp`` selects
    ``AmpOptimWrapper`` on CUDA machines and this wrapper otherwise.

    Args:
        dtype (str | torch.dtype): autocast dtype. Default 'bfloat16' (the dtype CPU autocast supports).
        device_type (str): autocast device type. Default 'cpu'.
        **kwargs: the arguments of ``mmengine.optim.OptimWrapper`` (``optimizer``, ``clip_grad``,
            ``accumulative_counts``).

    Raises:
        ValueError: ``dtype`` is not a floating dtype name.
    """

    def __init__(self, *args, dtype: Union[str, torch.dtype] = 'bfloat16', device_type: str = 'cpu',
                 **kwargs):
        super().__init__(*args, **kwargs)
        if isinstance(dtype, str):
            if dtype not in ('bfloat16', 'float16'):
                raise ValueError(f"AutocastOptimWrapper: dtype must be 'bfloat16' or 'float16', got {dtype!r}.")
            dtype = getattr(torch, dtype)
        self.cast_dtype = dtype
        self.device_type = device_type

    @contextmanager
    def optim_context(self, model: torch.nn.Module):
        with super().optim_context(model), torch.autocast(device_type=self.device_type,
                                                          dtype=self.cast_dtype):
            yield
