"""Swap an mmmixer backbone into another OpenMMLab codebase's config (README "Swap into your project").

:func:`swap_backbone` works out the config delta; :func:`verify_swap` builds the swapped model in the downstream
scope, checks every declared width against the backbone's real outputs and runs one training and one predict step
on a synthetic batch. ``tools/misc/swap_backbone.py`` is the command line. Only mmengine is imported here; the
downstream codebase is imported when a config of it is read or built.
"""
from .delta import PRESET_FAMILIES, SwapError, SwapPlan, consumer_widths, load_downstream, parse_backbone, swap_backbone
from .verify import VerifyReport, input_size_of, verify_swap

__all__ = ['swap_backbone', 'verify_swap', 'input_size_of', 'SwapPlan', 'SwapError', 'VerifyReport', 'PRESET_FAMILIES',
           'consumer_widths', 'load_downstream', 'parse_backbone']
