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
* :func:`check_state_dict_fits` (called by every mmmixer backbone when a state dict is loaded into it) turns
  mmengine's silent partial load (``load_from`` / ``Pretrained`` use ``strict=False``, which only logs a warning)
  of a checkpoint of another arch into one :class:`CheckpointLoadError` naming the file, the expected arch and the
  mismatching keys and shapes. It applies to tensors read through mmengine's loader for local files (tagged with
  their file by :func:`register_safe_checkpoint_loader`'s scheme); explicit ``module.load_state_dict(sd,
  strict=False)`` calls with other tensors keep torch's semantics, and :func:`allow_partial_load` opts out.
"""
import os
import os.path as osp
import pickle
import re
import threading
import types
import zipfile
from collections import OrderedDict
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional

import torch

__all__ = [
    'TRUST_ENV', 'CheckpointLoadError', 'InertObject', 'runner_safe_globals', 'safe_torch_load',
    'load_foreign_checkpoint', 'register_safe_checkpoint_loader', 'checkpoint_trusted', 'check_state_dict_fits',
    'allow_partial_load', 'checkpoint_source'
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


def _first_sentence(err: Exception) -> str:
    """The first sentence of an exception's message (torch's zip reader appends a long generic paragraph)."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text.split('. ')[0].rstrip('.')[:300]


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
            f'{_first_sentence(err)}.') from None


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
            f'{_first_sentence(err)}.') from None
    if not isinstance(ckpt, dict):
        raise CheckpointLoadError(
            f'Checkpoint "{filename}" holds a {type(ckpt).__name__}, expected a dict of tensors.')
    return ckpt


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


def _load_local_checkpoint(filename: str, map_location: Optional[Any] = None) -> Any:
    """mmengine ``CheckpointLoader`` scheme for local paths (the ``''`` prefix), using :func:`safe_torch_load`.

    The tensors are tagged with the file name (and the ``family`` / ``arch`` that our converters write into
    ``meta``), so that :func:`check_state_dict_fits` can name them when they do not fit a backbone.
    """
    checkpoint = safe_torch_load(filename, map_location=map_location)
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    meta = meta if isinstance(meta, dict) else {}
    _tag_tensors(checkpoint, (osp.abspath(osp.expanduser(filename)), meta.get('family'), meta.get('arch')))
    return checkpoint


@contextmanager
def allow_partial_load():
    """Within this context :func:`check_state_dict_fits` accepts anything (for loaders that select tensors on
    purpose, e.g. :func:`mmmixer.models.backbones.swin_msmlp.load_swin_pretrained`)."""
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
    """Make mmengine load local checkpoint files with :func:`safe_torch_load`.

    Replaces mmengine's default local-file scheme (which calls ``torch.load`` with torch's default, so
    runner checkpoints fail on torch >= 2.6). Affects ``Runner`` resume, ``load_from``, ``load_checkpoint``
    and ``PretrainedInit``. Idempotent.
    """
    from mmengine.runner.checkpoint import CheckpointLoader
    if CheckpointLoader._schemes.get('') is _load_local_checkpoint:
        return
    CheckpointLoader.register_scheme(prefixes='', force=True)(_load_local_checkpoint)
