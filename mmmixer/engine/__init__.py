"""Training-engine extensions of mmmixer (optimizer wrappers and constructors)."""
from .optim_wrapper import AutocastOptimWrapper

__all__ = ['AutocastOptimWrapper']
