"""Argument and input checks shared by every mmmixer backbone (clear errors instead of bare asserts)."""
import copy
from typing import Sequence, Set, Union

import torch

__all__ = ['parse_arch', 'normalize_out_indices', 'check_input']


def parse_arch(arch: Union[str, dict], arch_zoo: dict, keys: Set[str], owner: str,
               optional_keys: Set[str] = frozenset()) -> dict:
    """Resolve ``arch`` (preset name or custom dict) into a settings dict.

    Args:
        arch (str | dict): preset name (case-insensitive) or a dict of settings.
        arch_zoo (dict): presets, name -> settings.
        keys (set[str]): keys a custom dict must have.
        owner (str): class name used in error messages.
        optional_keys (set[str]): keys a custom dict may have in addition.

    Returns:
        dict: a copy of the settings.

    Raises:
        ValueError: unknown preset name (the message lists the valid ones), a dict with missing or unknown keys,
            ``depths`` that is not a non-empty list of ints >= 0, or ``embed_dims`` that is not a positive int
            (or a list of them).
        TypeError: ``arch`` is neither str nor dict.
    """
    if isinstance(arch, str):
        name = arch.lower()
        if name not in arch_zoo:
            raise ValueError(f'{owner}: arch {arch!r} is not a preset; accepted: '
                             f'{sorted(arch_zoo)} or a dict with keys {sorted(keys)}.')
        return copy.deepcopy(arch_zoo[name])
    if isinstance(arch, dict):
        missing = keys - set(arch)
        unknown = set(arch) - keys - set(optional_keys)
        if missing or unknown:
            raise ValueError(
                f'{owner}: a custom arch dict needs the keys {sorted(keys)}'
                + (f' (optional: {sorted(optional_keys)})' if optional_keys else '')
                + f'; missing {sorted(missing)}, unknown {sorted(unknown)} (got arch={dict(arch)!r}).')
        depths = arch.get('depths')
        if 'depths' in keys and not (isinstance(depths, Sequence) and len(depths) > 0
                                     and all(isinstance(d, int) and d >= 0 for d in depths)):
            raise ValueError(f'{owner}: arch depths={depths!r}; accepted: a non-empty list of block counts (ints '
                             '>= 0), one per stage.')
        dims = arch.get('embed_dims')
        if 'embed_dims' in keys and not (isinstance(dims, int) and dims > 0 or isinstance(dims, Sequence) and all(
                isinstance(d, int) and d > 0 for d in dims)):
            raise ValueError(f'{owner}: arch embed_dims={dims!r}; accepted: a positive int (stage 0 width) or a '
                             'list of positive ints.')
        return copy.deepcopy(dict(arch))
    raise TypeError(f'{owner}: arch must be a preset name (str) or a dict, got {arch!r} '
                    f'({type(arch).__name__}).')


def normalize_out_indices(out_indices: Union[int, Sequence[int]], num_stages: int, owner: str) -> tuple:
    """Turn ``out_indices`` (int or sequence, negatives allowed) into a sorted tuple of stage indices.

    Raises:
        ValueError: an index outside ``[-num_stages, num_stages - 1]``, a duplicate, or an empty sequence.
        TypeError: not an int or a sequence of ints.
    """
    if isinstance(out_indices, int):
        out_indices = [out_indices]
    if not isinstance(out_indices, Sequence) or not all(isinstance(i, int) for i in out_indices):
        raise TypeError(f'{owner}: out_indices must be an int or a sequence of ints, got {out_indices!r}.')
    if len(out_indices) == 0:
        raise ValueError(f'{owner}: out_indices must not be empty, got {out_indices!r}; accepted: stage indices '
                         f'0..{num_stages - 1} or -{num_stages}..-1.')
    result = []
    for i in out_indices:
        if not -num_stages <= i < num_stages:
            raise ValueError(f'{owner}: out_indices entry {i} is out of range; accepted: 0..{num_stages - 1} '
                             f'or -{num_stages}..-1 ({num_stages} stages).')
        result.append(i % num_stages)
    if len(set(result)) != len(result):
        raise ValueError(f'{owner}: out_indices {list(out_indices)} name a stage twice; accepted: distinct stages '
                         f'({num_stages} stages: 0..{num_stages - 1}, or -{num_stages}..-1 from the end).')
    return tuple(sorted(result))


def check_input(x: torch.Tensor, in_channels: int, min_size: int, owner: str) -> None:
    """Validate a backbone input: a floating-point tensor, 4-D (B, C, H, W), C == ``in_channels``, H, W >=
    ``min_size``. Values are not checked (NaN / inf propagate, see docs/bad_inputs.md).

    Raises:
        TypeError: not a tensor, or an integer / bool tensor (images not yet normalised).
        ValueError: with the offending shape and what is accepted.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f'{owner}: input must be a torch.Tensor (B, C, H, W), got {type(x).__name__}.')
    if not (x.is_floating_point() or x.is_complex()):
        raise TypeError(f'{owner}: input dtype {x.dtype} is not floating point; accepted: float32 / float16 / '
                        'bfloat16 images (normalise them first, e.g. with the data preprocessor).')
    if x.dim() != 4:
        raise ValueError(f'{owner}: input must be 4-D (B, C, H, W), got shape {tuple(x.shape)}.')
    if x.shape[1] != in_channels:
        raise ValueError(f'{owner}: input has {x.shape[1]} channels (shape {tuple(x.shape)}), the backbone was '
                         f'built with in_channels={in_channels}; accepted: (B, {in_channels}, H, W).')
    if x.shape[2] < min_size or x.shape[3] < min_size:
        raise ValueError(f'{owner}: input size {x.shape[2]}x{x.shape[3]} is smaller than the total stride '
                         f'{min_size}; accepted: H, W >= {min_size}.')
