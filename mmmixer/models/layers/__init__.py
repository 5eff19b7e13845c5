"""Building blocks shared by the mmmixer backbones (plain nn.Modules, not registered)."""
from .mix_shift import MixShiftBlock, split_channels

__all__ = ['MixShiftBlock', 'split_channels']
