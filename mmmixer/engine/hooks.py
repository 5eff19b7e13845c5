"""Hooks that make mmengine's Runner switches work with our configs."""
from mmengine.hooks import Hook

from mmmixer.registry import HOOKS

__all__ = ['PlainParamGroupsHook']


@HOOKS.register_module()
class PlainParamGroupsHook(Hook):
    """Turn the optimizer's parameter groups into plain dicts before training, so that ``compile`` works.

    mmengine 0.10.7's ``DefaultOptimWrapperConstructor`` with a ``paramwise_cfg`` (all our configs) stores the groups
    in its ``ConfigDict``, so ``optimizer.param_groups`` holds ``ConfigDict`` objects. With ``compile=True`` the Runner
    compiles ``model.train_step``, which runs ``optimizer.step()``; torch 2.14's dynamo cannot trace a dict subclass
    there and fails the first iteration (``InternalTorchDynamoError: AttributeError: 'UserDefinedDictVariable' object
    has no attribute 'items'``). The groups' contents are unchanged. ``tools/train.py`` adds this hook whenever the
    config sets ``compile``; it runs in ``before_run``, after the Runner built the optimizer and before it compiles.
    """
    priority = 'VERY_HIGH'

    def before_run(self, runner) -> None:
        wrapper = runner.optim_wrapper
        wrappers = wrapper.values() if hasattr(wrapper, 'values') else [wrapper]  # OptimWrapperDict or one
        for optim_wrapper in wrappers:
            groups = optim_wrapper.optimizer.param_groups
            groups[:] = [dict(group) for group in groups]
