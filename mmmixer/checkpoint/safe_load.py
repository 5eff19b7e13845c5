"""Reading checkpoint files without running code from them: PyTorch's weights-only loader plus the checks it lacks.

Both readers call ``torch.load(weights_only=True)`` inside a scoped ``torch.serialization.safe_globals`` context, so
PyTorch's restricted unpickler decides which pickle opcodes run. :func:`safe_torch_load` (Runner checkpoints) adds
only what mmengine's Runner pickles (:func:`runner_safe_globals`) and refuses other globals, naming the opt-in
``MMMIXER_TRUST_CHECKPOINTS=1``; :func:`load_foreign_checkpoint` (official checkpoints) maps every foreign global of
the file onto an inert stand-in. Before ``torch.load`` sees a file, :func:`_inspect` verifies every zip record's
CRC-32 (torch's zip reader does not) and refuses TorchScript archives; the foreign reader also refuses the legacy
format, bare pickles and zips not laid out as ``torch.save`` writes them. Every failure becomes one
:class:`CheckpointLoadError` naming the file and what to do. Why each check exists: ``docs/design.md``.
"""
import os
import os.path as osp
import pickle
import pickletools
import re
import zipfile
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.utils.serialization.config  # noqa: F401 (torch.load imports it on first use; a load imports nothing)
from mmengine.logging.history_buffer import HistoryBuffer

from .trust import (TRUST_ENV, CheckpointLoadError, checkpoint_trusted, first_sentence, opt_in, trusted_torch_load,
                    unreadable)

__all__ = ['TRUST_ENV', 'CheckpointLoadError', 'InertObject', 'DICT_LIKE', 'checkpoint_trusted',
           'runner_safe_globals', 'safe_torch_load', 'load_foreign_checkpoint']

#: the first pickle of torch's legacy (torch < 1.6, non-zip) format: protocol 2, then this 10-byte long
_LEGACY_HEAD = b'\x80\x02\x8a\x0a' + (0x1950A86A20F9469CFC6C).to_bytes(10, 'little')
#: records torch.save writes next to ``data.pkl`` and the storages ``data/<key>``; ``.data/*`` is also accepted
_META_RECORDS = frozenset(('version', 'byteorder', '.format_version', '.storage_alignment'))
#: foreign dict subclasses: their items come as SETITEMS, which torch's unpickler applies only to exact dict /
#: OrderedDict / Counter objects, so they load as an OrderedDict of their items (attributes in its ``__dict__``)
DICT_LIKE = ('yacs.config.CfgNode', 'mmengine.config.config.ConfigDict', 'addict.addict.Dict', 'easydict.EasyDict',
             'collections.defaultdict')


class InertObject(dict):
    """Stand-in for a pickled object of a foreign class (``qualname``: its ``module.name``); runs none of its code,
    only records constructor ``args`` / ``kwargs`` and ``state`` (from ``BUILD``). It re-pickles as a plain dict."""

    qualname = '?'

    def __new__(cls, *args, **kwargs):
        obj = dict.__new__(cls)
        obj.__dict__.update(args=args, kwargs=kwargs, state=None)
        return obj

    def __init__(self, *args, **kwargs):  # never forward to dict.__init__
        pass

    def __setstate__(self, state):
        self.__dict__['state'] = state

    def __reduce__(self):
        return (dict, (dict(self), ))

    def __repr__(self):
        return f'<inert {self.qualname}>'


class _DictLike:
    """Stand-in for the classes in :data:`DICT_LIKE`: constructing it gives a plain ``OrderedDict``."""

    def __new__(cls, *args, **kwargs):
        return OrderedDict()


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """The only ``getattr`` a Runner checkpoint needs: ``HistoryBuffer.{min,max,current,mean}`` (its statistics
    methods are pickled as ``getattr(HistoryBuffer, 'min')``; a general ``getattr`` could reach any attribute)."""
    if obj is HistoryBuffer and name in ('min', 'max', 'current', 'mean'):
        return getattr(obj, name)
    raise pickle.UnpicklingError(f'Unsupported global: GLOBAL builtins.getattr applied to {obj!r}.{name} (only '
                                 'HistoryBuffer statistics methods are allowed)')


def runner_safe_globals() -> List[Any]:
    """The smallest allowlist that mmengine Runner checkpoints need under ``weights_only=True``: found with
    ``torch.serialization.get_unsafe_globals_in_checkpoint`` on a checkpoint of mmengine 0.10.7's Runner (numpy 2):
    ``HistoryBuffer``, numpy's array / scalar reconstruction (it builds only the listed ``ndarray``) and a
    ``builtins.getattr`` that resolves only ``HistoryBuffer``'s statistics methods.

    Returns:
        list: entries for ``torch.serialization.safe_globals``.
    """
    multiarray = np._core.multiarray if hasattr(np, '_core') else np.core.multiarray  # numpy 2 / 1
    dtype_classes = [type(np.dtype(t)) for t in ('float64', 'float32', 'int64', 'int32', 'bool')]
    return [HistoryBuffer, np.ndarray, np.dtype, multiarray._reconstruct, multiarray.scalar,
            (_history_buffer_getattr, 'builtins.getattr'), *dtype_classes]


def _inspect(filename: str) -> Tuple[str, str, bytes]:
    """What kind of container ``filename`` is, with every zip record's CRC-32 verified; nothing is unpickled.

    Returns:
        tuple: ``(kind, detail, data.pkl bytes)``, kind one of ``'zip'`` (torch.save layout; detail: the folder),
        ``'torchscript'``, ``'other-zip'``, ``'bad-zip'`` (unreadable directory, bad CRC, compressed or oversized
        record), ``'legacy'`` (torch < 1.6), ``'pickle'`` (another bare pickle) or ``'unknown'``; detail says why.
    """
    with open(filename, 'rb') as f:
        head = f.read(len(_LEGACY_HEAD))
    if head[:4] != b'PK\x03\x04':  # torch.load's own test for its zip format
        if head == _LEGACY_HEAD:
            return 'legacy', '', b''
        if head[:1] == b'\x80' and head[1:2] in (b'\x02', b'\x03', b'\x04', b'\x05'):
            return 'pickle', f'protocol {head[1]}', b''
        return 'unknown', repr(head[:8]), b''
    try:
        with zipfile.ZipFile(filename) as zf:
            names = zf.namelist()
            tails = [name.split('/', 1)[1] if '/' in name else name for name in names]
            script = [t for t in tails if t == 'constants.pkl'] or [t for t in tails if t.startswith('code/')]
            if script:
                return 'torchscript', script[0], b''
            pkl, size = b'', osp.getsize(filename)
            for info in zf.infolist():  # the CRC check: zipfile compares it when a record has been read to its end
                if info.header_offset + info.file_size > size:  # refused before reading (zipfile would read to EOF)
                    return 'bad-zip', f'record {info.filename} claims {info.file_size} bytes, more than the file ' \
                                      f'({size} bytes) holds', b''
                if info.compress_type != zipfile.ZIP_STORED:  # torch's reader reads stored records only
                    return 'bad-zip', f'record {info.filename} is compressed (torch.save never compresses)', b''
                with zf.open(info) as record:
                    data = record.read() if info.filename.endswith('/data.pkl') else None
                    while data is None and record.read(1 << 20):
                        pass
                pkl = data or pkl
    except Exception as err:  # noqa: BLE001 - zipfile raises BadZipFile, EOFError, NotImplementedError, ...
        return 'bad-zip', f'{type(err).__name__}: {first_sentence(err)}', b''
    folders = sorted({name.split('/', 1)[0] for name in names})
    odd = [t for t in tails if t != 'data.pkl' and t not in _META_RECORDS and not t.startswith(('data/', '.data/'))
           and t.rstrip('/')]  # (an entry of the folder itself is fine)
    if len(folders) != 1 or any('/' not in name for name in names):
        return 'other-zip', f'records in {len(folders)} top-level folders {folders[:3]} instead of one', b''
    if len(set(names)) != len(names) or 'data.pkl' not in tails or odd:
        return 'other-zip', (f'records a torch.save checkpoint does not have: {sorted(odd)[:5]}' if odd else
                             f'duplicate or missing data.pkl records (records: {sorted(tails)[:5]})'), b''
    return 'zip', folders[0], pkl


def _container_refusal(filename: str, kind: str, detail: str) -> CheckpointLoadError:
    hint = opt_in(with_converters=False)
    text = {
        'torchscript': f'it is a TorchScript archive (it holds "{detail}"), not a torch.save checkpoint; torch.load '
        'would pass it to torch.jit.load, which can run code from the file.',
        'legacy': 'it is in the legacy (non-zip) format of torch < 1.6, which this loader does not read (only '
        'torch.save zip checkpoints, whose records carry checksums, are read without running code). Re-save it '
        'with torch >= 1.6 (torch.save) where you trust it.',
        'pickle': f'it is a bare pickle stream ({detail}), not a torch.save zip archive: the legacy (non-zip) format '
        'of torch < 1.6 with another pickle protocol, or a plain pickle, which this loader does not read.',
        'other-zip': f'it is a zip archive but not a torch.save checkpoint ({detail}).',
    }.get(kind)
    if text is None:  # 'bad-zip', 'unknown'
        return unreadable(filename, detail if kind == 'bad-zip' else 'it is neither a torch.save zip archive nor '
                           f'torch\'s legacy format (it starts with {detail})')
    return CheckpointLoadError(f'Refused to load checkpoint "{filename}": {text} {hint}')


#: torch's weights-only refusals of an opcode -> the opcode named in our message
_REFUSED_OPS = (('call reduce for unrecognized function', 'REDUCE of'), ('create new object', 'NEWOBJ of'),
                ('Can only build', 'BUILD (setting attributes from the file) on'), ('is blocked', 'global'),
                ('Can only SETITEM', 'SETITEM(S) on'), ('append to lists', 'APPEND(S) to'))


def _globals_named(pkl: bytes) -> set:
    """``module.name`` of the GLOBAL opcodes of a pickle, read with :mod:`pickletools` (nothing is unpickled)."""
    names = set()
    try:
        for op, arg, _ in pickletools.genops(pkl):
            names.update([arg.replace(' ', '.')] if op.name == 'GLOBAL' else [])
    except Exception:  # noqa: BLE001 - a stream that breaks after the refused opcode: the names read before it
        pass
    return names


def _refusal(filename: str, err: Exception, pkl: bytes) -> Optional[CheckpointLoadError]:
    """Our error for an opcode torch's unpickler refused (e.g. ``REDUCE of <inert functools.partial>``), or None."""
    text = first_sentence(err) if isinstance(err, pickle.UnpicklingError) else ''
    for needle, op in _REFUSED_OPS:
        if needle in text:
            what = re.search(r'(?:function|got|GLOBAL) (.+?)(?: which belongs.*| whose module.*)?$', text)
            what = what.group(1) if what else text
            if op.startswith('BUILD') and pkl:  # torch names only the type: name the functions the pickle refers to
                what += f' (the pickle names {", ".join(sorted(_globals_named(pkl))[:5])})'
            return CheckpointLoadError(
                f'Refused to load checkpoint "{filename}": its pickle asks for {op} {what} (only tensor rebuilding, '
                'torch\'s allowlisted classes and inert stand-ins may be called); that could run code or change '
                'objects outside the checkpoint. Official checkpoints never do that: the file is crafted or corrupt. '
                + opt_in(False))
    return None


def _existing(filename: str) -> str:
    filename = osp.expanduser(os.fspath(filename))
    if not osp.isfile(filename):
        raise FileNotFoundError(f'Checkpoint file "{filename}" does not exist.')
    return filename


def _weights_only_load(filename: str, allowed: List[Any], map_location: Any, pkl: bytes) -> Any:
    """``torch.load(weights_only=True)`` with ``allowed`` for this call; every failure as CheckpointLoadError."""
    try:
        with torch.serialization.safe_globals(allowed):
            return torch.load(filename, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - one error class, naming the file, for whatever a corrupt file raises
        global_ = re.search(r'Unsupported global: GLOBAL ([\w.]+)', str(err))
        if global_:
            raise CheckpointLoadError(
                f'Refused to load checkpoint "{filename}": it contains a pickled object outside the allowlist of '
                f'tensors and mmengine Runner state (global {global_.group(1)}). Loading it would let the file run '
                f'code. {opt_in()}') from None
        raise (_refusal(filename, err, pkl) or unreadable(filename, f'{type(err).__name__}: {first_sentence(err)}')) \
            from None


def safe_torch_load(filename: str, map_location: Any = 'cpu') -> Any:
    """Read a Runner checkpoint: ``torch.load(weights_only=True)`` with :func:`runner_safe_globals`, CRCs verified
    (``weights_only=True`` is explicit: torch's ``TORCH_FORCE_*`` variables only act on the opt-in's full load).

    Args:
        filename (str): path of a local checkpoint file.
        map_location: as for ``torch.load``. Defaults to ``'cpu'``.

    Returns:
        The unpickled checkpoint (usually a dict).

    Raises:
        FileNotFoundError: ``filename`` does not exist.
        CheckpointLoadError: a global outside the allowlist or a TorchScript archive (the message names the opt-in
            ``MMMIXER_TRUST_CHECKPOINTS=1``); a truncated or corrupt file (e.g. a record's CRC-32 does not match);
            or the opt-in overridden by ``TORCH_FORCE_WEIGHTS_ONLY_LOAD=1``.
    """
    filename = _existing(filename)
    if checkpoint_trusted():
        return trusted_torch_load(filename, map_location)
    kind, detail, pkl = _inspect(filename)
    if kind in ('torchscript', 'bad-zip'):  # other kinds: torch's own errors (the legacy format still loads)
        raise _container_refusal(filename, kind, detail)
    return _weights_only_load(filename, runner_safe_globals(), map_location, pkl)


def load_foreign_checkpoint(filename: str) -> Dict[str, Any]:
    """Load an official (non-mmmixer) checkpoint without executing anything from the file.

    The file must be a torch.save zip archive (torch >= 1.6) whose records' CRC-32 match; ``torch.load(weights_only=
    True)`` reads it. Tensors, dicts, lists and plain values load as usual; every other pickled object (argparse
    ``Namespace``, numpy scalars, apex AMP state, ...) becomes an :class:`InertObject`, the dict subclasses of
    :data:`DICT_LIKE` (yacs ``CfgNode``, ...) an ``OrderedDict`` of their items. Nothing named in the file is imported
    or called. TorchScript archives, other zips, the legacy format of torch < 1.6 and pickles that ask for a refused
    operation are refused; with the opt-in ``MMMIXER_TRUST_CHECKPOINTS=1`` those files are loaded with
    ``torch.load(weights_only=False)`` instead, which can run code from the file.

    Args:
        filename (str): path of the checkpoint.

    Returns:
        dict: the checkpoint, e.g. ``{'model': state_dict, 'args': <inert argparse.Namespace>}``.

    Raises:
        FileNotFoundError: the file does not exist.
        CheckpointLoadError: every failure, naming the file: a refused container or pickle operation (naming the
            opt-in), a truncated or corrupt file (e.g. a bad CRC-32), no dict inside, or the opt-in overridden by
            ``TORCH_FORCE_WEIGHTS_ONLY_LOAD=1``.
    """
    filename = _existing(filename)
    try:
        kind, detail, pkl = _inspect(filename)
    except OSError as err:
        raise CheckpointLoadError(f'Checkpoint "{filename}" cannot be read: {first_sentence(err)}.') from None
    refusal = _container_refusal(filename, kind, detail) if kind != 'zip' else None
    if refusal is None:
        try:
            foreign = torch.serialization.get_unsafe_globals_in_checkpoint(filename)
            stand_ins = [(_DictLike if name in DICT_LIKE else type(f'Inert[{name}]', (InertObject, ),
                                                                    {'qualname': name}), name) for name in foreign]
            ckpt = _weights_only_load(filename, stand_ins, 'cpu', pkl)
        except CheckpointLoadError as err:
            if not str(err).startswith('Refused'):
                raise
            refusal = err
        except Exception as err:  # noqa: BLE001 - the pickle scan of a corrupt file
            raise unreadable(filename, f'{type(err).__name__}: {first_sentence(err)}') from None
    if refusal is not None:
        if kind in ('bad-zip', 'unknown') or not checkpoint_trusted():
            raise refusal
        ckpt = trusted_torch_load(filename, 'cpu')
    if not isinstance(ckpt, dict):
        raise CheckpointLoadError(f'Checkpoint "{filename}" holds a {type(ckpt).__name__}, expected a dict of tensors.')
    return ckpt
