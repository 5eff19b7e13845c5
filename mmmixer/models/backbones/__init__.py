from .ms_mlp import MSMLP
from .pos_mlp import PosMLP
from .strip_mlp import StripMLP
from .swin_msmlp import SwinMSMLP

__all__ = ['MSMLP', 'PosMLP', 'StripMLP', 'SwinMSMLP']
