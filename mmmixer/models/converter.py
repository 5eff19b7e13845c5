"""Former home of the official-checkpoint converter skeleton; it lives in :mod:`mmmixer.checkpoint.converter`."""
from mmmixer.checkpoint.converter import OfficialConverter, Replacement, converter_main

__all__ = ['OfficialConverter', 'Replacement', 'converter_main']
