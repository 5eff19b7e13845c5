"""Training-engine extensions of mmmixer (optimizer wrappers and constructors, training loops, hooks)."""
from .hooks import PlainParamGroupsHook
from .layer_decay import LayerDecayOptimWrapperConstructor
from .loops import ExactResumeEpochBasedTrainLoop
from .optim_wrapper import AutocastOptimWrapper

__all__ = [
    'AutocastOptimWrapper', 'ExactResumeEpochBasedTrainLoop', 'LayerDecayOptimWrapperConstructor', 'PlainParamGroupsHook'
]
