"""Token mixers and building blocks of the mmmixer backbones (plain nn.Modules, not registered)."""
from .mix_shift import MixShiftBlock, split_channels
from .positional_maps import LearnedPosMap, QuadraticPosMap, window_partition, window_reverse
from .strip_mixing import CGSMM, GRN, LSMM, window_starts

__all__ = ['MixShiftBlock', 'split_channels', 'LearnedPosMap', 'QuadraticPosMap', 'window_partition',
           'window_reverse', 'CGSMM', 'GRN', 'LSMM', 'window_starts']
