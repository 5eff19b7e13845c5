from .ms_mlp import MSMLP

__all__ = ['MSMLP']
