"""Checkpoint loading that never runs code from the file unless the user opts in.

torch >= 2.6 defaults ``torch.load`` to ``weights_only=True``; mmengine 0.10.7 calls ``torch.load`` without
that argument, so a checkpoint written by mmengine's Runner (it holds ``HistoryBuffer`` objects and numpy
arrays in ``message_hub``) can neither be resumed nor used as ``Pretrained`` (open-mmlab/mmengine#1655).
The usual fixes make every file executable (``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``, ``weights_only=False``).

Here instead:

* :func:`safe_torch_load` keeps ``weights_only=True`` and allowlists only what the Runner writes
  (:func:`runner_safe_globals`). Anything else is refused with :class:`CheckpointLoadError`, which names the
  file, the refused global and the opt-in (environment variable ``MMMIXER_TRUST_CHECKPOINTS=1`` or the
  ``--trust-checkpoint`` flag of our tools) that allows a full, code-executing unpickle.
* :func:`register_safe_checkpoint_loader` installs it as mmengine's loader for local files, so ``resume``,
  ``load_from`` and ``init_cfg=dict(type='Pretrained', ...)`` all use it (done on ``import mmmixer``).
* :func:`load_foreign_checkpoint` is for the official checkpoints our converters read: they carry pickled
  yacs ``CfgNode``/argparse ``Namespace`` objects. It keeps tensors and containers and turns every other
  pickled object into an inert :class:`InertObject`, so nothing from the file is executed or imported.
"""
import os
import os.path as osp
import pickle
import re
import types
import zipfile
from collections import OrderedDict
from typing import Any, Dict, List, Optional

import torch

__all__ = [
    'TRUST_ENV', 'CheckpointLoadError', 'InertObject', 'runner_safe_globals', 'safe_torch_load',
    'load_foreign_checkpoint', 'register_safe_checkpoint_loader', 'checkpoint_trusted'
]

#: Environment variable that allows a full (code-executing) unpickle of checkpoint files.
TRUST_ENV = 'MMMIXER_TRUST_CHECKPOINTS'


class CheckpointLoadError(RuntimeError):
    """A checkpoint file could not be loaded safely (refused global, truncated file, wrong content)."""


def checkpoint_trusted() -> bool:
    """Whether the user opted in to code-executing unpickling (``MMMIXER_TRUST_CHECKPOINTS=1``)."""
    return os.environ.get(TRUST_ENV, '').strip().lower() in ('1', 'true', 'yes', 'on')


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """The only ``getattr`` a Runner checkpoint needs: ``HistoryBuffer.{min,max,current,mean}``.

    mmengine's ``HistoryBuffer`` keeps its statistics methods in a class-level dict that gets pickled as
    ``getattr(HistoryBuffer, 'min')``; a general ``getattr`` in the allowlist would be a gadget to reach
    any attribute, so only these four names on this one class are resolved.
    """
    from mmengine.logging.history_buffer import HistoryBuffer
    if obj is HistoryBuffer and name in ('min', 'max', 'current', 'mean'):
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'Unsupported global: GLOBAL builtins.getattr applied to {obj!r}.{name} (only '
        f'HistoryBuffer statistics methods are allowed)')


def runner_safe_globals() -> List[Any]:
    """The smallest allowlist that mmengine Runner checkpoints need under ``weights_only=True``.

    Found with ``torch.serialization.get_unsafe_globals_in_checkpoint`` on a checkpoint saved by
    ``mmengine.runner.Runner`` (mmengine 0.10.7, numpy 2): the message hub's ``HistoryBuffer``, the numpy
    array/scalar reconstruction it pickles, and ``builtins.getattr`` (for ``HistoryBuffer``'s statistics
    methods), which is replaced by :func:`_history_buffer_getattr`. None of them can call an arbitrary
    function: numpy's ``_reconstruct`` only builds an ``ndarray`` subtype that is itself in the list.

    Returns:
        list: entries for ``torch.serialization.safe_globals``.
    """
    import numpy as np
    from mmengine.logging.history_buffer import HistoryBuffer
    try:
        multiarray = np._core.multiarray  # numpy >= 2
    except AttributeError:  # pragma: no cover - numpy 1.x
        multiarray = np.core.multiarray
    dtype_classes = [type(np.dtype(t)) for t in ('float64', 'float32', 'int64', 'int32', 'bool')]
    return [
        HistoryBuffer, np.ndarray, np.dtype, multiarray._reconstruct, multiarray.scalar,
        (_history_buffer_getattr, 'builtins.getattr'), *dtype_classes
    ]


def _refusal_message(filename: str, err: Exception) -> str:
    text = str(err)
    found = re.search(r'Unsupported global: GLOBAL ([\w.]+)', text) or \
        re.search(r'(?:WeightsUnpickler error|Unsupported operand)[^\n]*', text)
    what = (f'global {found.group(1)}' if found and found.groups() else
            (found.group(0) if found else text.splitlines()[0]))[:300]
    return (f'Refused to load checkpoint "{filename}": it contains a pickled object outside the allowlist '
            f'of tensors and mmengine Runner state ({what}). Loading it would let the file run code. If '
            f'you trust this file, set the environment variable {TRUST_ENV}=1 (or pass '
            f'--trust-checkpoint to tools/train.py / tools/test.py). Official MS-MLP / PosMLP / Strip-MLP '
            f'checkpoints need no trust: convert them with tools/model_converters/*_to_mmmixer.py.')


def safe_torch_load(filename: str, map_location: Any = 'cpu') -> Any:
    """``torch.load`` with ``weights_only=True`` and the Runner allowlist (:func:`runner_safe_globals`).

    Args:
        filename (str): path of a local checkpoint file.
        map_location: as for ``torch.load``. Defaults to ``'cpu'``.

    Returns:
        The unpickled checkpoint (usually a dict).

    Raises:
        FileNotFoundError: ``filename`` does not exist.
        CheckpointLoadError: the file holds a global outside the allowlist (the message names the opt-in
            ``MMMIXER_TRUST_CHECKPOINTS=1``), or it is truncated / not a torch checkpoint.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'Checkpoint file "{filename}" does not exist.')
    if checkpoint_trusted():
        return torch.load(filename, map_location=map_location, weights_only=False)
    try:
        with torch.serialization.safe_globals(runner_safe_globals()):
            return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if 'weights_only' in str(err) or 'Unsupported global' in str(err):
            raise CheckpointLoadError(_refusal_message(filename, err)) from None
        raise CheckpointLoadError(
            f'Checkpoint "{filename}" is not a readable torch checkpoint: {err}') from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as err:
        raise CheckpointLoadError(
            f'Checkpoint "{filename}" is not a readable torch checkpoint (truncated or corrupt file?): '
            f'{str(err).splitlines()[0][:300]}') from None


class InertObject(dict):
    """Stand-in for a pickled object whose class is not allowlisted; it never runs any code.

    It records what the pickle stream gave it: constructor ``args``, ``state`` (from ``BUILD``), dict
    items (``SETITEMS``) and list items (``APPENDS``), and the original ``qualname``.
    """

    qualname = '?'

    def __new__(cls, *args, **kwargs):
        obj = dict.__new__(cls)
        obj.__dict__.update(args=args, kwargs=kwargs, state=None, items=[])
        return obj

    def __init__(self, *args, **kwargs):  # noqa: D401 - never forward to dict.__init__
        pass

    def __setstate__(self, state):
        self.__dict__['state'] = state

    def append(self, item):
        self.__dict__['items'].append(item)

    def extend(self, items):
        self.__dict__['items'].extend(items)

    def __reduce__(self):  # an inert object re-pickles as a plain dict
        return (dict, (dict(self), ))

    def __repr__(self):
        return f'<inert {self.qualname}>'


_TORCH_REBUILD = {
    ('torch._utils', '_rebuild_tensor_v2'), ('torch._utils', '_rebuild_parameter'),
    ('torch._utils', '_rebuild_parameter_with_state'), ('torch', 'Size'), ('torch', 'device'),
    ('collections', 'OrderedDict')
}


class _InertUnpickler(pickle.Unpickler):
    """Unpickler that resolves only tensor-rebuilding globals; every other global becomes inert."""

    _placeholders: Dict[str, type] = {}

    def find_class(self, module, name):
        if (module, name) in _TORCH_REBUILD:
            return {
                'OrderedDict': OrderedDict,
                'Size': torch.Size,
                'device': torch.device
            }.get(name) or getattr(torch._utils, name)
        if module == 'torch' and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        key = f'{module}.{name}'
        if key not in self._placeholders:
            self._placeholders[key] = type(f'Inert[{key}]', (InertObject, ), {'qualname': key})
        return self._placeholders[key]


_inert_pickle_module = types.ModuleType('mmmixer_inert_pickle')
_inert_pickle_module.Unpickler = _InertUnpickler
_inert_pickle_module.load = lambda f, **kw: _InertUnpickler(f, **kw).load()
_inert_pickle_module.__dict__.update(
    {k: getattr(pickle, k)
     for k in ('UnpicklingError', 'PickleError', 'HIGHEST_PROTOCOL', 'dumps', 'loads')})


def load_foreign_checkpoint(filename: str) -> Dict[str, Any]:
    """Load an official (non-mmmixer) checkpoint without executing anything from the file.

    Tensors, dicts, lists and plain values load as usual; every other pickled object (yacs ``CfgNode``,
    argparse ``Namespace``, apex AMP state, ...) becomes an :class:`InertObject` (a ``dict`` subclass that
    only stores what the stream contained). No module named in the file is imported.

    Args:
        filename (str): path of the checkpoint.

    Returns:
        dict: the top-level checkpoint dict (e.g. ``{'model': state_dict, 'config': <inert ...>}``).

    Raises:
        FileNotFoundError: the file does not exist.
        CheckpointLoadError: the file is truncated or not a torch zip checkpoint, or not a dict.
    """
    if not osp.isfile(filename):
        raise FileNotFoundError(f'Checkpoint file "{filename}" does not exist.')
    try:
        ckpt = torch.load(
            filename, map_location='cpu', weights_only=False, pickle_module=_inert_pickle_module)
    except (RuntimeError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError, ValueError) as err:
        raise CheckpointLoadError(
            f'Checkpoint "{filename}" is not a readable torch checkpoint (truncated or corrupt file?): '
            f'{str(err).splitlines()[0][:300]}') from None
    if not isinstance(ckpt, dict):
        raise CheckpointLoadError(
            f'Checkpoint "{filename}" holds a {type(ckpt).__name__}, expected a dict of tensors.')
    return ckpt


def _load_local_checkpoint(filename: str, map_location: Optional[Any] = None) -> Any:
    """mmengine ``CheckpointLoader`` scheme for local paths (the ``''`` prefix), using :func:`safe_torch_load`."""
    return safe_torch_load(filename, map_location=map_location)


def register_safe_checkpoint_loader() -> None:
    """Make mmengine load local checkpoint files with :func:`safe_torch_load`.

    Replaces mmengine's default local-file scheme (which calls ``torch.load`` with torch's default, so
    runner checkpoints fail on torch >= 2.6). Affects ``Runner`` resume, ``load_from``, ``load_checkpoint``
    and ``PretrainedInit``. Idempotent.
    """
    from mmengine.runner.checkpoint import CheckpointLoader
    if CheckpointLoader._schemes.get('') is _load_local_checkpoint:
        return
    CheckpointLoader.register_scheme(prefixes='', force=True)(_load_local_checkpoint)
