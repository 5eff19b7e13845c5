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
* :func:`register_safe_checkpoint_loader` installs it as mmengine's loader for local files
  (:func:`load_from_safe_local`, logged as the ``safe_local`` backend), so ``resume``, ``load_from`` and
  ``init_cfg=dict(type='Pretrained', ...)`` all use it (done on ``import mmmixer``).
* :func:`load_foreign_checkpoint` is for the official checkpoints our converters read: they carry pickled
  yacs ``CfgNode``/argparse ``Namespace`` objects. It reads the torch.save zip itself (never ``torch.load``,
  which hands TorchScript archives to ``torch.jit.load``) with a restricted unpickler that keeps tensors and
  containers and turns every other pickled object into an inert :class:`InertObject`, so nothing from the file is
  executed or imported, and no object outside the checkpoint is modified. TorchScript archives, other zips and the
  legacy (torch < 1.6) format are refused unless the user opts in.
* :func:`check_state_dict_fits` (called by every mmmixer backbone when a state dict is loaded into it) turns
  mmengine's silent partial load (``load_from`` / ``Pretrained`` use ``strict=False``, which only logs a warning)
  of a checkpoint of another arch into one :class:`CheckpointLoadError` naming the file, the expected arch and the
  mismatching keys and shapes. It applies to tensors read through mmengine's loader for local files (tagged with
  their file by :func:`register_safe_checkpoint_loader`'s scheme); explicit ``module.load_state_dict(sd,
  strict=False)`` calls with other tensors keep torch's semantics, and :func:`allow_partial_load` opts out.
"""
import io
import os
import os.path as osp
import pickle
import re
import sys
import threading
import zipfile
from collections import OrderedDict
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional

import torch

__all__ = [
    'TRUST_ENV', 'CheckpointLoadError', 'InertObject', 'runner_safe_globals', 'safe_torch_load',
    'load_foreign_checkpoint', 'register_safe_checkpoint_loader', 'checkpoint_trusted', 'check_state_dict_fits',
    'allow_partial_load', 'checkpoint_source', 'load_from_safe_local'
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
            f'of tensors and mmengine Runner state ({what}). Loading it would let the file run code. {_opt_in()}')


def _first_sentence(err: Exception) -> str:
    """The first sentence of an exception's message (torch's zip reader appends a long generic paragraph)."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text.split('. ')[0].rstrip('.')[:300]


def _env_true(name: str) -> bool:
    return os.environ.get(name, '0').strip().lower() in ('1', 'y', 'yes', 'true')


#: torch's environment variables that override the ``weights_only`` argument of ``torch.load``
FORCE_WO_ENV = 'TORCH_FORCE_WEIGHTS_ONLY_LOAD'
FORCE_NO_WO_ENV = 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'


def _opt_in(with_converters: bool = True) -> str:
    """How to opt in to a full unpickle; notes that ``TORCH_FORCE_WEIGHTS_ONLY_LOAD`` would override it."""
    text = (f'If you trust this file, set the environment variable {TRUST_ENV}=1 (or pass --trust-checkpoint to '
            'tools/train.py / tools/test.py)')
    if _env_true(FORCE_WO_ENV):
        text += (f' and unset {FORCE_WO_ENV} (set now: it makes torch.load use weights_only=True even when '
                 f'{TRUST_ENV}=1)')
    text += '.'
    if with_converters:
        text += (' Official MS-MLP / PosMLP / Strip-MLP checkpoints need no trust: convert them with '
                 'tools/model_converters/*_to_mmmixer.py.')
    return text


def _trusted_torch_load(filename: str, map_location: Any) -> Any:
    """``torch.load(weights_only=False)`` for a file the user trusts (``MMMIXER_TRUST_CHECKPOINTS=1``).

    Raises:
        CheckpointLoadError: torch's ``TORCH_FORCE_WEIGHTS_ONLY_LOAD=1`` turns the load into a ``weights_only``
            load, which refuses the file (the message says that the variable overrides the opt-in); both of torch's
            ``TORCH_FORCE_*WEIGHTS_ONLY_LOAD`` variables are set; or torch cannot read the file. Exceptions raised
            by code in the (trusted) file itself propagate.
    """
    if _env_true(FORCE_WO_ENV) and _env_true(FORCE_NO_WO_ENV):
        raise CheckpointLoadError(
            f'Cannot load checkpoint "{filename}": both {FORCE_WO_ENV} and {FORCE_NO_WO_ENV} are set (torch refuses '
            f'that); unset one of them.')
    try:
        return torch.load(filename, map_location=map_location, weights_only=False)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as err:
        if not _env_true(FORCE_WO_ENV):
            raise CheckpointLoadError(
                f'Checkpoint "{filename}" is not a readable torch checkpoint (truncated or corrupt file?): '
                f'{_first_sentence(err)}.') from None
        found = re.search(r'Unsupported global: GLOBAL ([\w.]+)', str(err))
        what = f'global {found.group(1)}' if found else _first_sentence(err)
        raise CheckpointLoadError(
            f'Refused to load checkpoint "{filename}" although {TRUST_ENV}=1 is set: {FORCE_WO_ENV}=1 makes '
            f'torch.load use weights_only=True, which refuses this file ({what}). Unset {FORCE_WO_ENV} to load a '
            'file you trust.') from None


def safe_torch_load(filename: str, map_location: Any = 'cpu') -> Any:
    """``torch.load`` with ``weights_only=True`` and the Runner allowlist (:func:`runner_safe_globals`).

    TorchScript archives are refused before ``torch.load`` sees them (``torch.load`` would hand them to
    ``torch.jit.load``). ``weights_only=True`` is passed explicitly, so torch's ``TORCH_FORCE_*_WEIGHTS_ONLY_LOAD``
    variables do not change what is refused; they only matter with the opt-in, where ``torch.load`` is called with
    ``weights_only=False`` and ``TORCH_FORCE_WEIGHTS_ONLY_LOAD=1`` overrides it (said in the messages).

    Args:
        filename (str): path of a local checkpoint file.
        map_location: as for ``torch.load``. Defaults to ``'cpu'``.

    Returns:
        The unpickled checkpoint (usually a dict).

    Raises:
        FileNotFoundError: ``filename`` does not exist.
        CheckpointLoadError: the file holds a global outside the allowlist or is a TorchScript archive (the message
            names the opt-in ``MMMIXER_TRUST_CHECKPOINTS=1``), or it is truncated / not a torch checkpoint, or the
            opt-in is set but ``TORCH_FORCE_WEIGHTS_ONLY_LOAD=1`` overrides it.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'Checkpoint file "{filename}" does not exist.')
    if checkpoint_trusted():
        return _trusted_torch_load(filename, map_location)
    kind, detail = _container_kind(filename)
    if kind == 'torchscript':
        raise CheckpointLoadError(_container_refusal(filename, kind, detail))
    try:
        with torch.serialization.safe_globals(runner_safe_globals()):
            return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if 'weights_only' in str(err) or 'Unsupported global' in str(err):
            raise CheckpointLoadError(_refusal_message(filename, err)) from None
        raise CheckpointLoadError(
            f'Checkpoint "{filename}" is not a readable torch checkpoint: {_first_sentence(err)}.') from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, AssertionError, KeyError, TypeError,
            AttributeError, IndexError, OverflowError) as err:
        raise CheckpointLoadError(
            f'Checkpoint "{filename}" is not a readable torch checkpoint (truncated or corrupt file?): '
            f'{_first_sentence(err)}.') from None


# ---------------------------------------------------------------------------------------------------------------
# Foreign (official) checkpoints: our own reader of torch.save's zip layout and a restricted unpickler.

#: the first pickle of torch's legacy (torch < 1.6, non-zip) format: protocol 2, then this 10-byte long
_LEGACY_HEAD = b'\x80\x02\x8a\x0a' + (0x1950A86A20F9469CFC6C).to_bytes(10, 'little')
#: records torch.save writes next to ``data.pkl`` and the storages ``data/<key>``; ``.data/*`` is also accepted
_META_RECORDS = frozenset(('version', 'byteorder', '.format_version', '.storage_alignment'))


def _container_kind(filename: str):
    """What kind of container ``filename`` is, without unpickling anything.

    Returns:
        tuple: ``(kind, detail)``; kind is ``'zip'`` (torch.save layout: one folder with one ``data.pkl``, its
        storages and metadata records; detail is the folder name), ``'torchscript'`` (a zip holding
        ``constants.pkl`` or ``code/``; detail names the record), ``'other-zip'`` (another zip; detail says what
        does not fit), ``'bad-zip'`` (a zip whose directory cannot be read: truncated or corrupt), ``'legacy'``
        (torch < 1.6 format, protocol 2 as torch wrote it), ``'pickle'`` (another bare pickle stream; detail: its
        protocol) or ``'unknown'`` (detail: the first bytes).
    """
    with open(filename, 'rb') as f:
        head = f.read(len(_LEGACY_HEAD))
    if head[:4] != b'PK\x03\x04':  # torch.load's own test for its zip format
        if head == _LEGACY_HEAD:
            return 'legacy', ''
        if head[:1] == b'\x80' and head[1:2] in (b'\x02', b'\x03', b'\x04', b'\x05'):
            return 'pickle', f'protocol {head[1]}'
        return 'unknown', repr(head[:8])
    try:
        with zipfile.ZipFile(filename) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
        return 'bad-zip', _first_sentence(err)
    tails = [name.split('/', 1)[1] if '/' in name else name for name in names]
    script = [t for t in tails if t == 'constants.pkl'] or [t for t in tails if t.startswith(('code/', 'constants/'))]
    if script:
        return 'torchscript', script[0]
    folders = sorted({name.split('/', 1)[0] for name in names})
    if len(folders) != 1 or any('/' not in name for name in names):
        return 'other-zip', f'records in {len(folders)} top-level folders {folders[:3]} instead of one'
    if len(set(names)) != len(names):
        return 'other-zip', 'duplicate record names'
    if 'data.pkl' not in tails:
        return 'other-zip', f'no data.pkl record (records: {sorted(tails)[:5]})'
    odd = [t for t in tails if t != 'data.pkl' and t not in _META_RECORDS and not t.startswith(('data/', '.data/'))
           and t.rstrip('/')]  # (an entry of the folder itself is fine)
    if odd:
        return 'other-zip', f'records a torch.save checkpoint does not have: {sorted(odd)[:5]}'
    return 'zip', folders[0]


def _container_refusal(filename: str, kind: str, detail: str) -> str:
    if kind == 'torchscript':
        return (f'Refused to load checkpoint "{filename}": it is a TorchScript archive (it holds "{detail}"), not a '
                'torch.save checkpoint; torch.load would pass it to torch.jit.load, which can run code from the '
                f'file. {_opt_in(with_converters=False)}')
    if kind == 'legacy':
        return (f'Refused to load checkpoint "{filename}": it is in the legacy (non-zip) format of torch < 1.6, '
                'which this loader does not read (only torch.save zip checkpoints are read without running code). '
                'Re-save it with torch >= 1.6 (torch.save) where you trust it. ' + _opt_in(with_converters=False))
    if kind == 'pickle':
        return (f'Refused to load checkpoint "{filename}": it is a bare pickle stream ({detail}), not a torch.save zip '
                'archive: the legacy (non-zip) format of torch < 1.6 with another pickle protocol, or a plain '
                'pickle, which this loader does not read. ' + _opt_in(with_converters=False))
    if kind == 'other-zip':
        return (f'Refused to load checkpoint "{filename}": it is a zip archive but not a torch.save checkpoint '
                f'({detail}). {_opt_in(with_converters=False)}')
    if kind == 'bad-zip':
        return (f'Checkpoint "{filename}" is not a readable torch checkpoint (truncated or corrupt file?): its zip '
                f'directory cannot be read ({detail}).')
    return (f'Checkpoint "{filename}" is not a readable torch checkpoint: it is neither a torch.save zip archive '
            f'nor torch\'s legacy format (it starts with {detail}).')


class _Malformed(Exception):
    """Raised inside the foreign reader; turned into :class:`CheckpointLoadError` naming the file."""


class _Refused(Exception):
    """Something the file asks for is refused (not only malformed); turned into :class:`CheckpointLoadError`."""


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


class _Frozen:
    """Base of the objects the unpickler hands out: fixed fields (``__slots__``), no instance dict, and no attribute
    can be set afterwards, so a crafted ``BUILD`` / ``setattr`` finds nothing to change."""

    __slots__ = ()

    def __init__(self, *values):
        for name, value in zip(self.__slots__, values):
            object.__setattr__(self, name, value)

    def __setattr__(self, name, value):
        raise _Refused(f'setting attribute {name!r} of {self!r}')


class _Sealed(_Frozen):
    """A callable the unpickler hands out for an allowlisted global: a private object (never one of torch's
    functions), without instance dict, whose attributes cannot be set (``BUILD`` is refused anyway)."""

    __slots__ = ('_qualname', '_fn')

    def __call__(self, *args):
        return self._fn(*args)

    def __setstate__(self, state):
        raise _Refused(f'BUILD on {self._qualname}')

    def __repr__(self):
        return f'<sealed {self._qualname}>'


class _Storage(_Frozen):
    """One storage record of the archive (``data/<key>``) viewed with the dtype of its persistent id."""

    __slots__ = ('untyped', 'dtype', 'key')

    def __repr__(self):
        return f'<storage {self.key} {self.dtype}>'


def _check_int(value, what: str, low: int = 0) -> int:
    if type(value) is not int or value < low:
        raise _Malformed(f'{what} must be an int >= {low}, got {type(value).__name__} {value!r:.60}')
    return value


def _check_ints(values, what: str) -> tuple:
    if not isinstance(values, tuple):  # a tuple or a torch.Size
        raise _Malformed(f'{what} must be a tuple of ints, got {type(values).__name__}')
    return tuple(_check_int(v, what) for v in values)


def _rebuild_tensor(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    """``torch._utils._rebuild_tensor_v2`` for our storages. Backward hooks in the file are dropped (torch.save
    writes none); the only metadata accepted is the ``conj`` / ``neg`` bits."""
    if not isinstance(storage, _Storage):
        raise _Malformed(f'tensor built from {type(storage).__name__}, not from a storage record')
    _check_int(storage_offset, 'storage offset')
    size, stride = _check_ints(size, 'tensor size'), _check_ints(stride, 'tensor stride')
    if len(size) != len(stride) or type(requires_grad) is not bool:
        raise _Malformed(f'tensor size {size} / stride {stride} / requires_grad {requires_grad!r:.20} do not fit')
    tensor = torch.empty((0, ), dtype=storage.dtype).set_(storage.untyped, storage_offset, size, stride)
    if metadata:
        if not (isinstance(metadata, dict) and set(metadata) <= {'conj', 'neg'}
                and all(type(v) is bool for v in metadata.values())):
            raise _Malformed(f'unsupported tensor metadata {metadata!r:.80}')
        torch._utils.set_tensor_metadata(tensor, dict(metadata))
    if requires_grad:
        tensor.requires_grad_(True)
    return tensor


def _rebuild_parameter(data, requires_grad, backward_hooks, state=None):
    """``torch._utils._rebuild_parameter(_with_state)``: hooks and Python attributes (``state``) are dropped."""
    if type(data) is not torch.Tensor or type(requires_grad) is not bool:
        raise _Malformed(f'parameter of {type(data).__name__} (requires_grad {requires_grad!r:.20})')
    return torch.nn.Parameter(data, requires_grad)


def _codecs_encode(text, encoding='latin1'):
    """``_codecs.encode`` as protocol 2 uses it for ``bytes`` values; nothing else is accepted."""
    if type(text) is not str or encoding not in ('latin1', 'latin-1'):
        raise _Malformed(f'_codecs.encode({type(text).__name__}, {encoding!r:.20}) is not a pickled bytes value')
    return text.encode('latin1')


def _empty_bytes(*args):
    if args:
        raise _Malformed('bytes() with arguments')
    return b''


_SEALED = {
    ('torch._utils', '_rebuild_tensor_v2'): _Sealed('torch._utils._rebuild_tensor_v2', _rebuild_tensor),
    ('torch._utils', '_rebuild_parameter'): _Sealed('torch._utils._rebuild_parameter', _rebuild_parameter),
    ('torch._utils', '_rebuild_parameter_with_state'):
    _Sealed('torch._utils._rebuild_parameter_with_state', _rebuild_parameter),
    ('_codecs', 'encode'): _Sealed('_codecs.encode', _codecs_encode),
    ('__builtin__', 'bytes'): _Sealed('builtins.bytes', _empty_bytes),
    ('builtins', 'bytes'): _Sealed('builtins.bytes', _empty_bytes),
}
#: classes that may be called / instantiated (their instances hold no code); BUILD on them is refused
_SAFE_CLASSES = {('collections', 'OrderedDict'): OrderedDict, ('torch', 'Size'): torch.Size,
                 ('torch', 'device'): torch.device}
#: ``GLOBAL torch <name>`` of a dtype: exact names taken from torch's namespace (no ``getattr(torch, name)``, which
#: would import torch's lazy submodules such as ``torch._dynamo`` or ``torch.onnx``)
_DTYPES = {name: value for name, value in vars(torch).items() if isinstance(value, torch.dtype)}
#: ``GLOBAL torch <name>`` of a storage class in a persistent id -> the dtype of its elements
_STORAGE_DTYPES = {
    'UntypedStorage': torch.uint8, 'ByteStorage': torch.uint8, 'CharStorage': torch.int8,
    'ShortStorage': torch.int16, 'IntStorage': torch.int32, 'LongStorage': torch.int64, 'HalfStorage': torch.float16,
    'FloatStorage': torch.float32, 'DoubleStorage': torch.float64, 'BFloat16Storage': torch.bfloat16,
    'BoolStorage': torch.bool, 'ComplexFloatStorage': torch.complex64, 'ComplexDoubleStorage': torch.complex128
}


class _StorageKind(_Frozen):
    """What ``GLOBAL torch FloatStorage`` (etc.) resolves to: only its dtype, read by the persistent load."""

    __slots__ = ('name', 'dtype')

    def __repr__(self):
        return f'<storage kind torch.{self.name}>'


_STORAGE_KINDS = {name: _StorageKind(name, dtype) for name, dtype in _STORAGE_DTYPES.items()}

_OP = {name: getattr(pickle, name)[0] for name in (
    'REDUCE', 'NEWOBJ', 'NEWOBJ_EX', 'BUILD', 'SETITEM', 'SETITEMS', 'APPEND', 'APPENDS', 'ADDITEMS')}


class _InertUnpickler(pickle._Unpickler):
    """Restricted unpickler (the pure-Python one, so that every opcode that calls or mutates can be checked).

    * ``GLOBAL``: the tensor-rebuilding functions resolve to :class:`_Sealed` private callables, dtypes and storage
      classes to exact names, ``OrderedDict`` / ``torch.Size`` / ``torch.device`` to themselves; every other
      global becomes a fresh :class:`InertObject` subclass (nothing is imported).
    * ``REDUCE`` / ``NEWOBJ`` / ``OBJ`` / ``INST``: only those callables and classes.
    * ``BUILD``: only on inert objects (recorded) and on ``OrderedDict`` instances (an instance dict, e.g. a
      state dict's ``_metadata``); on anything else, e.g. an allowlisted function or class, it is refused.
    * ``SETITEM(S)`` / ``APPEND(S)`` / ``ADDITEMS``: only on dicts, lists (and inert objects), sets.
    * persistent ids: only ``('storage', <storage class>, key, location, numel)`` of a record of the archive
      whose size fits.
    """

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file, storages: Callable[[Any], Any]):
        super().__init__(file, encoding='utf-8')
        self._storages = storages
        self._placeholders: Dict[str, type] = {}

    def find_class(self, module, name):
        if type(module) is not str or type(name) is not str:
            raise _Malformed('GLOBAL with a non-string name')
        key = (module, name)
        if key in _SEALED:
            return _SEALED[key]
        if key in _SAFE_CLASSES:
            return _SAFE_CLASSES[key]
        if module == 'torch' and name in _DTYPES:
            return _DTYPES[name]
        if module == 'torch' and name in _STORAGE_KINDS:
            return _STORAGE_KINDS[name]
        qualname = f'{module}.{name}'
        if qualname not in self._placeholders:
            self._placeholders[qualname] = type(f'Inert[{qualname}]', (InertObject, ), {'qualname': qualname})
        return self._placeholders[qualname]

    def persistent_load(self, pid):
        return self._storages(pid)

    def _callable(self, func, op: str):
        if isinstance(func, _Sealed) or any(func is cls for cls in _SAFE_CLASSES.values()):
            return func
        if any(func is cls for cls in self._placeholders.values()):
            return func
        raise _Refused(f'{op} of {func!r:.80} (only tensor rebuilding, OrderedDict, torch.Size, torch.device and '
                       f'inert placeholders may be called)')

    def _instantiate(self, klass, args):  # OBJ, INST
        self.append(self._callable(klass, 'OBJ/INST')(*args))

    def load_reduce(self):
        args = self.stack.pop()
        func = self._callable(self.stack[-1], 'REDUCE')
        if type(args) is not tuple:
            raise _Malformed('REDUCE arguments are not a tuple')
        self.stack[-1] = func(*args)

    def load_newobj(self):
        args = self.stack.pop()
        cls = self._callable(self.stack.pop(), 'NEWOBJ')
        if type(args) is not tuple or not isinstance(cls, type):
            raise _Malformed('NEWOBJ of a non-class or without an argument tuple')
        self.append(cls.__new__(cls, *args))

    def load_newobj_ex(self):
        kwargs = self.stack.pop()
        args = self.stack.pop()
        cls = self._callable(self.stack.pop(), 'NEWOBJ_EX')
        if type(args) is not tuple or type(kwargs) is not dict or not isinstance(cls, type):
            raise _Malformed('NEWOBJ_EX of a non-class or without argument tuple / dict')
        self.append(cls.__new__(cls, *args, **kwargs))

    def load_build(self):
        state = self.stack.pop()
        inst = self.stack[-1]
        if isinstance(inst, InertObject):
            InertObject.__setstate__(inst, state)
            return
        if isinstance(state, tuple) and len(state) == 2 and not state[1]:
            state = state[0]  # (instance dict, no slots)
        if type(inst) is OrderedDict and (state is None or (isinstance(state, dict)
                                                            and all(type(k) is str for k in state))):
            inst.__dict__.update(state or {})
            return
        raise _Refused(f'BUILD (setting attributes from the file) on {inst!r:.80}')

    def _target(self, obj, kinds, op: str):
        if not isinstance(obj, kinds):
            raise _Refused(f'{op} on {type(obj).__name__} {obj!r:.60}')
        return obj

    def load_setitem(self):
        value = self.stack.pop()
        key = self.stack.pop()
        self._target(self.stack[-1], dict, 'SETITEM')[key] = value

    def load_setitems(self):
        items = self.pop_mark()
        target = self._target(self.stack[-1], dict, 'SETITEMS')
        for i in range(0, len(items) - 1, 2):
            target[items[i]] = items[i + 1]

    def load_append(self):
        value = self.stack.pop()
        self._target(self.stack[-1], (list, InertObject), 'APPEND').append(value)

    def load_appends(self):
        items = self.pop_mark()
        self._target(self.stack[-1], (list, InertObject), 'APPENDS').extend(items)

    def load_additems(self):
        items = self.pop_mark()
        self._target(self.stack[-1], set, 'ADDITEMS').update(items)

    for _name in _OP:
        dispatch[_OP[_name]] = locals()[f'load_{_name.lower()}']
    del _name


class _TorchZipReader:
    """Reads a torch.save zip archive with :mod:`zipfile` (never torch's zip reader, never ``torch.jit``)."""

    def __init__(self, filename: str, folder: str):
        self.filename = filename
        self.folder = folder
        self.file_size = osp.getsize(filename)
        self.zf = zipfile.ZipFile(filename)
        self.infos = {info.filename: info for info in self.zf.infolist()}
        self.buffers: Dict[str, Any] = {}
        for info in self.infos.values():
            if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
                raise _Malformed(f'record {info.filename} is compressed or encrypted (torch.save stores records '
                                 'uncompressed)')
            if info.file_size != info.compress_size or info.header_offset + info.file_size > self.file_size:
                raise _Malformed(f'record {info.filename} claims {info.file_size} bytes, more than the file '
                                 f'({self.file_size} bytes) holds')
        order = self.infos.get(f'{folder}/byteorder')
        self.swap = False
        if order is not None:
            value = self._read(order)
            if value not in (b'little', b'big'):
                raise _Malformed(f'byteorder record {value[:20]!r}')
            self.swap = value.decode() != sys.byteorder

    def _read(self, info) -> bytearray:
        buf = bytearray(info.file_size)
        with self.zf.open(info) as f:  # checks the CRC when the record's end is reached
            got = f.readinto(buf)
            if got != info.file_size or f.read(1):
                raise _Malformed(f'record {info.filename} is shorter than its header says')
        return buf

    def pickle_bytes(self) -> bytes:
        return bytes(self._read(self.infos[f'{self.folder}/data.pkl']))

    def storage(self, pid) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) == 5):
            raise _Malformed(f'persistent id {pid!r:.80} is not (storage, type, key, location, numel)')
        typename, kind, key, location, numel = pid
        typename = typename.decode('ascii') if isinstance(typename, bytes) else typename
        key = key.decode('ascii') if isinstance(key, bytes) else key
        if typename != 'storage' or not isinstance(kind, _StorageKind) or type(key) is not str:
            raise _Malformed(f'persistent id {pid!r:.80} is not a storage of an allowlisted type')
        _check_int(numel, 'storage size')
        info = self.infos.get(f'{self.folder}/data/{key}')
        if info is None:
            raise _Malformed(f'storage record data/{key:.40} is missing')
        nbytes = numel * kind.dtype.itemsize
        if info.file_size != nbytes:
            raise _Malformed(f'storage record data/{key} holds {info.file_size} bytes, its tensor data needs '
                             f'{nbytes}')
        if key not in self.buffers:
            if nbytes:
                untyped = torch.frombuffer(self._read(info), dtype=torch.uint8).untyped_storage()
            else:
                untyped = torch.empty(0, dtype=torch.uint8).untyped_storage()
            if self.swap and kind.dtype.itemsize > 1:
                untyped.byteswap(kind.dtype)
            self.buffers[key] = (untyped, kind.dtype)
        untyped, dtype = self.buffers[key]
        if dtype.itemsize != kind.dtype.itemsize and dtype.itemsize > 1:
            raise _Malformed(f'storage record data/{key} is used with element sizes of {dtype} and {kind.dtype}')
        return _Storage(untyped, kind.dtype, key)

    def close(self):
        self.zf.close()


def load_foreign_checkpoint(filename: str) -> Dict[str, Any]:
    """Load an official (non-mmmixer) checkpoint without executing or importing anything from the file.

    The file must be a torch.save zip archive (torch >= 1.6): one folder holding ``data.pkl``, the storages
    ``data/<key>`` and torch's metadata records. It is read with :mod:`zipfile` and unpickled by a restricted
    unpickler; ``torch.load`` and ``torch.jit.load`` are never called (unless the user opts in, see below).
    Tensors, dicts, lists and plain values load as usual; every other pickled object (yacs ``CfgNode``, argparse
    ``Namespace``, apex AMP state, ...) becomes an :class:`InertObject` (a ``dict`` subclass that only stores what
    the stream contained). No module named in the file is imported, no function from it is called, and no object
    outside the returned checkpoint can be modified (``BUILD`` on anything but inert objects and dicts is refused).
    Backward hooks and Python attributes pickled with tensors / parameters are dropped. torch's
    ``TORCH_FORCE_*_WEIGHTS_ONLY_LOAD`` variables do not apply (``torch.load`` is not used).

    TorchScript archives (which ``torch.load`` would pass to ``torch.jit.load``), other zip archives and files in
    the legacy (non-zip) format of torch < 1.6 are refused, not read, and so are pickles that ask for a refused
    operation. With the opt-in ``MMMIXER_TRUST_CHECKPOINTS=1`` those refused files are loaded with
    ``torch.load(weights_only=False)`` instead, which can run code from the file.

    Args:
        filename (str): path of the checkpoint.

    Returns:
        dict: the top-level checkpoint dict (e.g. ``{'model': state_dict, 'config': <inert ...>}``).

    Raises:
        FileNotFoundError: the file does not exist.
        CheckpointLoadError: the file is a TorchScript archive, another zip or in the legacy format, or its
            pickle asks for something refused (e.g. ``BUILD`` on an allowlisted function, a call of an inert
            object) -- these messages name the opt-in --; it is truncated or corrupt; it does not hold a dict; or
            the opt-in is set but torch's ``TORCH_FORCE_WEIGHTS_ONLY_LOAD=1`` makes ``torch.load`` refuse the file.
            Every failure to read the file gives this error, naming the file.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'Checkpoint file "{filename}" does not exist.')
    try:
        kind, detail = _container_kind(filename)
    except OSError as err:
        raise CheckpointLoadError(f'Checkpoint "{filename}" cannot be read: {_first_sentence(err)}.') from None
    if kind in ('bad-zip', 'unknown'):
        raise CheckpointLoadError(_container_refusal(filename, kind, detail))
    refusal = _container_refusal(filename, kind, detail) if kind != 'zip' else None
    if refusal is None:
        try:
            ckpt = _read_torch_zip(filename, detail)
        except _Refused as err:
            refusal = (f'Refused to load checkpoint "{filename}": its pickle asks for {err}; that could run code or '
                       'change objects outside the checkpoint. Official checkpoints never do that: the file is '
                       f'crafted or corrupt. {_opt_in(with_converters=False)}')
    if refusal is not None:
        if not checkpoint_trusted():
            raise CheckpointLoadError(refusal)
        ckpt = _trusted_torch_load(filename, 'cpu')
    if not isinstance(ckpt, dict):
        raise CheckpointLoadError(
            f'Checkpoint "{filename}" holds a {type(ckpt).__name__}, expected a dict of tensors.')
    return ckpt


def _read_torch_zip(filename: str, folder: str) -> Any:
    """Unpickle ``<folder>/data.pkl`` of a torch.save archive with :class:`_InertUnpickler`.

    Raises:
        _Refused: the pickle asks for something refused (the caller words the message, or honours the opt-in).
        CheckpointLoadError: a malformed / truncated file.
    """
    reader = None
    try:
        reader = _TorchZipReader(filename, folder)
        return _InertUnpickler(io.BytesIO(reader.pickle_bytes()), reader.storage).load()
    except _Refused:
        raise
    except Exception as err:  # noqa: BLE001 - every malformed file gives one error naming it
        what = str(err) if isinstance(err, _Malformed) else f'{type(err).__name__}: {_first_sentence(err)}'
        raise CheckpointLoadError(
            f'Checkpoint "{filename}" is not a readable torch checkpoint (truncated or corrupt file?): '
            f'{what.rstrip(".")[:300]}.') from None
    finally:
        if reader is not None:
            reader.close()


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
    """Make mmengine load local checkpoint files with :func:`safe_torch_load` (scheme :func:`load_from_safe_local`).

    Replaces mmengine's default local-file scheme (which calls ``torch.load`` with torch's default, so
    runner checkpoints fail on torch >= 2.6). Affects ``Runner`` resume, ``load_from``, ``load_checkpoint``
    and ``PretrainedInit``. Idempotent.
    """
    from mmengine.runner.checkpoint import CheckpointLoader
    if CheckpointLoader._schemes.get('') is load_from_safe_local:
        return
    CheckpointLoader.register_scheme(prefixes='', force=True)(load_from_safe_local)
