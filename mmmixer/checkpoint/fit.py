"""Checkpoints read by mmengine's loader, and whether they fit the backbone they are loaded into.

* :func:`register_safe_checkpoint_loader` installs :func:`load_from_safe_local` as mmengine's loader for local files
  (logged as the ``safe_local`` backend), so ``resume``, ``load_from``, ``load_checkpoint`` and mmengine's
  ``PretrainedInit`` read files with :func:`~mmmixer.checkpoint.safe_load.safe_torch_load` (done on
  ``import mmmixer``). It tags the tensors with their file.
* :func:`check_state_dict_fits` (called by every mmmixer backbone when a state dict is loaded into it) turns
  mmengine's silent partial load (``load_from`` / ``Pretrained`` use ``strict=False``, which only logs a warning)
  of a checkpoint of another arch into one :class:`CheckpointLoadError` naming the file, the expected arch and the
  mismatching keys and shapes. It applies to tensors tagged by the loader above; explicit
  ``module.load_state_dict(sd, strict=False)`` calls with other tensors keep torch's semantics, and
  :func:`allow_partial_load` opts out.
"""
import os.path as osp
import re
import threading
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional

import torch
from mmengine.runner.checkpoint import CheckpointLoader

from .safe_load import CheckpointLoadError, safe_torch_load

__all__ = ['register_safe_checkpoint_loader', 'load_from_safe_local', 'checkpoint_source', 'allow_partial_load',
           'check_state_dict_fits']

#: attribute set on the tensors read by mmengine's local loader: ``(file name, meta['family'], meta['arch'])``
_SOURCE_ATTR = '_mmmixer_checkpoint_source'
_partial = threading.local()


def _tag_tensors(obj: Any, source: tuple, depth: int = 0) -> None:
    """Set :data:`_SOURCE_ATTR` on every tensor in the (nested) dicts of a checkpoint."""
    if isinstance(obj, torch.Tensor):
        setattr(obj, _SOURCE_ATTR, source)
    elif isinstance(obj, Mapping) and depth < 4:
        for value in obj.values():
            _tag_tensors(value, source, depth + 1)


def checkpoint_source(tensors: Iterable[Any]) -> Optional[tuple]:
    """``(file, family, arch)`` of the first tensor read by mmengine's local loader, or None if there is none."""
    for value in tensors:
        source = getattr(value, _SOURCE_ATTR, None)
        if source is not None:
            return source
    return None


def load_from_safe_local(filename: str, map_location: Optional[Any] = None) -> Any:
    """mmengine ``CheckpointLoader`` scheme for local paths (the ``''`` prefix), using :func:`safe_torch_load`.

    mmengine logs ``Loads checkpoint by <name[10:]> backend``, i.e. the name without ``load_from_``:
    ``safe_local``.

    The tensors are tagged with the file name (and the ``family`` / ``arch`` that our converters write into
    ``meta``), so that :func:`check_state_dict_fits` can name them when they do not fit a backbone.
    """
    checkpoint = safe_torch_load(filename, map_location=map_location)  # raises FileNotFoundError/CheckpointLoadError
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    meta = meta if isinstance(meta, dict) else {}
    _tag_tensors(checkpoint, (osp.abspath(osp.expanduser(filename)), meta.get('family'), meta.get('arch')))
    return checkpoint


@contextmanager
def allow_partial_load():
    """Within this context :func:`check_state_dict_fits` accepts anything (for loaders that select tensors on
    purpose, e.g. :func:`mmmixer.checkpoint.pretrained.load_pretrained`)."""
    _partial.depth = getattr(_partial, 'depth', 0) + 1
    try:
        yield
    finally:
        _partial.depth -= 1


def _shape(t: Any) -> tuple:
    return tuple(t.shape) if hasattr(t, 'shape') else ()


def _prefix_hint(unexpected: List[str], own_keys: List[str]) -> str:
    """If the checkpoint's keys are the model's keys behind a common prefix, say which prefix to use."""
    counts: Dict[str, int] = {}
    own = set(own_keys)
    for key in unexpected:
        head, _, rest = key.partition('.')
        if rest in own:
            counts[head] = counts.get(head, 0) + 1
    if counts:
        head, count = max(counts.items(), key=lambda kv: kv[1])
        if count >= len(own) // 2:
            return (f" The checkpoint's keys carry the prefix '{head}.' (e.g. a classifier's '{head}.' "
                    f"weights): load it with prefix='{head}.' (init_cfg=dict(type='Pretrained', checkpoint=..., "
                    f"prefix='{head}.')).")
    return ''


def check_state_dict_fits(module: torch.nn.Module,
                          state_dict: Mapping[str, Any],
                          prefix: str,
                          arch: str,
                          optional: str = r'norm\d+\.',
                          ignore_unexpected: Iterable[str] = (),
                          tolerate: Optional[Callable[[str, Any, Any], bool]] = None,
                          max_items: int = 5) -> None:
    """Raise one clear error if a state dict read from a checkpoint file does not fit ``module``.

    Called from the ``_load_from_state_dict`` of every mmmixer backbone, before anything is copied. It only acts
    when the tensors under ``prefix`` were read from a local file by mmengine's loader (``load_from``, ``resume``,
    ``Pretrained``, ``load_checkpoint``), whose own ``strict=False`` load would otherwise copy what fits and only
    warn about the rest; it does nothing inside :func:`allow_partial_load`.

    Args:
        module (nn.Module): the backbone being loaded.
        state_dict (Mapping): the full state dict passed to ``load_state_dict``.
        prefix (str): the backbone's prefix in it (e.g. ``'backbone.'`` for a classifier checkpoint).
        arch (str): the backbone's arch, for the message, e.g. ``'MSMLP(embed_dims=[32, 64, 128, 256], ...)'``.
        optional (str): regex of keys that may be missing from or extra in the checkpoint. Default: the output
            norms ``norm{i}`` (a classifier checkpoint has only the last one, a dense-prediction backbone returns
            several stages).
        ignore_unexpected (Iterable[str]): key suffixes the backbone drops on load (derived buffers of older
            layouts).
        tolerate (callable, optional): ``tolerate(key, checkpoint_tensor, model_tensor)`` -> True for shape
            differences the backbone adapts on load (e.g. PosMLP's positional tables of another window size).
        max_items (int): how many keys of each kind the message lists. Default 5.

    Raises:
        CheckpointLoadError: tensors of another shape, model tensors missing from the checkpoint or checkpoint
            tensors the model does not have inside its own namespaces (``patch_embed.*``, ``stages.*``, ...;
            output norms excepted); the message names the file, the expected arch, the arch the file's ``meta``
            declares (converted checkpoints), and the keys with their shapes.
    """
    if getattr(_partial, 'depth', 0):
        return
    ckpt = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    source = checkpoint_source(ckpt.values())
    if source is None:
        return
    own = module.state_dict()
    skip = re.compile(optional) if optional else None
    suffixes = tuple(ignore_unexpected)
    mismatched = [f'{k}: checkpoint {_shape(v)} vs model {_shape(own[k])}' for k, v in ckpt.items()
                  if k in own and _shape(v) != _shape(own[k]) and not (tolerate and tolerate(k, v, own[k]))]
    missing = [k for k in own if k not in ckpt and not (skip and skip.match(k))]
    # extra keys count only inside the backbone's own namespaces ('stages.3.blocks.5.*' of a deeper model), not
    # those of other modules a state dict may hold next to it ('head.*' when loading with prefix '')
    roots = {k.split('.', 1)[0] for k in own}
    unexpected = [k for k in ckpt if k not in own and k.split('.', 1)[0] in roots
                  and not (skip and skip.match(k)) and not (suffixes and k.endswith(suffixes))]
    if not (mismatched or missing or unexpected):
        return
    filename, family, file_arch = source
    problems = []
    if mismatched:
        problems.append(f'{len(mismatched)} tensors have another shape, e.g. ' + '; '.join(mismatched[:max_items]))
    if missing:
        problems.append(f'{len(missing)} of the model\'s {len(own)} tensors are missing from the checkpoint, e.g. '
                        f'{missing[:max_items]}')
    if unexpected:
        problems.append(f'{len(unexpected)} checkpoint tensors are not in the model, e.g. '
                        + ', '.join(f'{k} {_shape(ckpt[k])}' for k in unexpected[:max_items]))
    declared = ''
    if family is not None or file_arch is not None:
        declared = f" The file's meta declares family {family!r}, arch {file_arch!r}."
    hint = _prefix_hint([k for k in ckpt if k not in own], list(own))
    raise CheckpointLoadError(
        f'Checkpoint "{filename}" does not fit {arch} (keys under prefix {prefix!r}): ' + '; '.join(problems)
        + f'.{declared}{hint} Nothing was loaded into the backbone. Use a checkpoint of this arch (convert '
        'official ones with tools/model_converters/*_to_mmmixer.py), or set the backbone\'s arch to the '
        'checkpoint\'s.')


def register_safe_checkpoint_loader() -> None:
    """Make mmengine load local checkpoint files with :func:`safe_torch_load` (scheme :func:`load_from_safe_local`).

    Replaces mmengine's default local-file scheme (which calls ``torch.load`` with torch's default, so
    runner checkpoints fail on torch >= 2.6). Affects ``Runner`` resume, ``load_from``, ``load_checkpoint``
    and ``PretrainedInit``. Idempotent.
    """
    if CheckpointLoader._schemes.get('') is load_from_safe_local:
        return
    CheckpointLoader.register_scheme(prefixes='', force=True)(load_from_safe_local)
