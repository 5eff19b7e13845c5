"""Training-engine extensions of mmmixer (optimizer wrappers and constructors)."""
from .layer_decay import LayerDecayOptimWrapperConstructor
from .optim_wrapper import AutocastOptimWrapper

__all__ = ['AutocastOptimWrapper', 'LayerDecayOptimWrapperConstructor']
