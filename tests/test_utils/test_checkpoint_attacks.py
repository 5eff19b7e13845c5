"""Crafted checkpoint files against ``load_foreign_checkpoint`` / ``safe_torch_load``: one test per attack, each
proving that nothing happened outside the loader (no marker file, no module imported, no torch function changed,
``torch.load`` / ``torch.jit.load`` not reached) and that the file gives one ``CheckpointLoadError`` naming it.

The pickles are written opcode by opcode (checked with ``pickletools``) and put into a torch.save-style zip
(``archive/data.pkl``, ``archive/version``, ``archive/byteorder``, ``archive/data/<key>``) with ``zipfile``.
"""
import io
import json
import os
import os.path as osp
import pickle
import pickletools
import struct
import subprocess
import sys
import zipfile

import pytest
import torch

from mmmixer.checkpoint import (TRUST_ENV, CheckpointLoadError, InertObject, load_foreign_checkpoint,
                                safe_torch_load)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FORCE_WO = 'TORCH_FORCE_WEIGHTS_ONLY_LOAD'

# ----- pickle opcodes (protocol 2)
PROTO, STOP, MARK, NONE, TRUE, FALSE = b'\x80\x02', b'.', b'(', b'N', b'\x88', b'\x89'
EMPTY_DICT, EMPTY_TUPLE, TUPLE, TUPLE1, TUPLE2 = b'}', b')', b't', b'\x85', b'\x86'
SETITEM, SETITEMS, REDUCE, BUILD, BINPERSID, EMPTY_LIST, APPEND = b's', b'u', b'R', b'b', b'Q', b']', b'a'


def G(module: str, name: str) -> bytes:  # noqa: N802 - GLOBAL opcode
    return b'c' + module.encode() + b'\n' + name.encode() + b'\n'


def S(text: str) -> bytes:  # noqa: N802 - BINUNICODE
    data = text.encode()
    return b'X' + struct.pack('<I', len(data)) + data


def K(value: int) -> bytes:  # noqa: N802 - BININT
    return b'J' + struct.pack('<i', value)


def B(data: bytes) -> bytes:  # noqa: N802 - SHORT_BINBYTES (protocol 3)
    return b'C' + bytes([len(data)]) + data


def pickle_of(*items: bytes, top: bytes = EMPTY_DICT) -> bytes:
    """``PROTO 2, <top>, <items...>, STOP``; checked to be a well-formed opcode stream."""
    data = PROTO + top + b''.join(items) + STOP
    pickletools.dis(data, out=io.StringIO())  # raises on a malformed stream
    return data


def entry(key: str, value: bytes) -> bytes:
    """``top[key] = value`` (SETITEM on the top-level dict)."""
    return S(key) + value + SETITEM


def tensor_op(key: str = '0', numel: int = 4, size=(4, ), stride=(1, ), storage=G('torch', 'FloatStorage')) -> bytes:
    """``_rebuild_tensor_v2((storage persistent id), 0, size, stride, False, OrderedDict())``."""
    pid = MARK + S('storage') + storage + S(key) + S('cpu') + K(numel) + TUPLE + BINPERSID
    ints = lambda values: MARK + b''.join(K(v) for v in values) + TUPLE  # noqa: E731
    return (G('torch._utils', '_rebuild_tensor_v2') + MARK + pid + K(0) + ints(size) + ints(stride) + FALSE
            + G('collections', 'OrderedDict') + EMPTY_TUPLE + REDUCE + TUPLE + REDUCE)


def torch_zip(path, pkl: bytes, records=None, folder: str = 'archive') -> str:
    """A zip laid out like torch.save's: ``data.pkl``, ``version``, ``byteorder`` and ``records``."""
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as zf:
        zf.writestr(f'{folder}/data.pkl', pkl)
        zf.writestr(f'{folder}/byteorder', 'little')
        for name, data in (records or {}).items():
            zf.writestr(f'{folder}/{name}', data)
        zf.writestr(f'{folder}/version', '3\n')
    return str(path)


FLOATS = {'data/0': struct.pack('<4f', 1, 2, 3, 4)}


@pytest.fixture
def no_jit_load(monkeypatch):
    """Record (and fail) every call of torch.jit.load: no file may reach it without the opt-in."""
    calls = []

    def fake(*args, **kwargs):
        calls.append(args)
        raise RuntimeError('torch.jit.load was called')

    monkeypatch.setattr(torch.jit, 'load', fake)
    monkeypatch.delenv(TRUST_ENV, raising=False)
    return calls


def _refused(path, calls, *needles):
    with pytest.raises(CheckpointLoadError) as info:
        load_foreign_checkpoint(str(path))
    message = str(info.value)
    assert str(path) in message and '\n' not in message
    for needle in needles:
        assert needle in message, f'{needle!r} not in {message!r}'
    assert calls == [], 'torch.jit.load was reached'
    return message


# ----- TorchScript and other containers


class _Scripted(torch.nn.Module):

    def forward(self, x):
        return x + 1


def test_torchscript_archive_is_refused_without_jit_load(tmp_path, no_jit_load, monkeypatch):
    path = tmp_path / 'scripted.pt'
    torch.jit.save(torch.jit.script(_Scripted()), str(path))
    monkeypatch.setattr(torch, 'load', lambda *a, **k: no_jit_load.append(('torch.load', a)))
    _refused(path, no_jit_load, 'TorchScript archive', 'constants.pkl', f'{TRUST_ENV}=1', '--trust-checkpoint')


def test_hand_made_zip_with_constants_pkl_is_refused_without_jit_load(tmp_path, no_jit_load, monkeypatch):
    path = torch_zip(tmp_path / 'constants.pth', pickle_of(entry('model', EMPTY_DICT)),
                     {'constants.pkl': pickle_of(top=EMPTY_TUPLE)})
    monkeypatch.setattr(torch, 'load', lambda *a, **k: no_jit_load.append(('torch.load', a)))
    _refused(path, no_jit_load, 'TorchScript archive', '"constants.pkl"', f'{TRUST_ENV}=1')


def test_zip_with_a_second_pickle_is_refused(tmp_path, no_jit_load):
    extra = pickle_of(entry('x', G('os', 'system') + S('true') + TUPLE1 + REDUCE))
    path = torch_zip(tmp_path / 'extra.pth', pickle_of(entry('model', EMPTY_DICT)), {'extra/payload.pkl': extra})
    _refused(path, no_jit_load, 'not a torch.save checkpoint', 'extra/payload.pkl', f'{TRUST_ENV}=1')


def test_torchscript_archive_is_refused_by_safe_torch_load(tmp_path, monkeypatch):
    monkeypatch.delenv(TRUST_ENV, raising=False)
    calls = []
    monkeypatch.setattr(torch.jit, 'load', lambda *a, **k: calls.append(a))
    path = tmp_path / 'scripted.pt'
    torch.jit.save(torch.jit.script(_Scripted()), str(path))
    with pytest.raises(CheckpointLoadError, match=r'scripted\.pt.*TorchScript archive.*MMMIXER_TRUST_CHECKPOINTS=1'):
        safe_torch_load(str(path))
    assert calls == []


class _Payload:
    """Unpickling this would create a marker file (a stand-in for arbitrary code)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, 'w'))


def test_legacy_non_zip_format_is_refused(tmp_path, no_jit_load, monkeypatch):
    marker, path = tmp_path / 'pwned', tmp_path / 'legacy.pth'
    torch.save({'model': {'w': torch.ones(2)}, 'meta': _Payload(str(marker))}, path,
               _use_new_zipfile_serialization=False)
    _refused(path, no_jit_load, 'legacy (non-zip) format of torch < 1.6', 'does not read', f'{TRUST_ENV}=1')
    # the same with another pickle protocol (no recognisable magic number at the start), and a plain pickle
    torch.save({'meta': _Payload(str(marker))}, tmp_path / 'legacy4.pth', _use_new_zipfile_serialization=False,
               pickle_protocol=4)
    (tmp_path / 'plain.pkl').write_bytes(pickle.dumps({'meta': _Payload(str(marker))}))
    for name in ('legacy4.pth', 'plain.pkl'):
        _refused(tmp_path / name, no_jit_load, 'bare pickle stream', 'does not read', f'{TRUST_ENV}=1')
    assert not marker.exists()
    # the opt-in is real: with it torch.load(weights_only=False) reads the file (and runs its code)
    monkeypatch.undo()
    monkeypatch.setenv(TRUST_ENV, '1')
    assert torch.equal(load_foreign_checkpoint(str(path))['model']['w'], torch.ones(2)) and marker.exists()


# ----- globals: mutation of allowlisted objects, lazy imports, reducers


def _function_attrs(fn):
    names = ('__name__', '__qualname__', '__module__', '__doc__', '__defaults__', '__kwdefaults__')
    return {name: getattr(fn, name) for name in names}, dict(vars(fn))


def _restore(fn, snapshot):
    attrs, instance_dict = snapshot
    for name, value in attrs.items():
        setattr(fn, name, value)
    vars(fn).clear()
    vars(fn).update(instance_dict)


@pytest.mark.parametrize('name', ['_rebuild_tensor_v2', '_rebuild_parameter', '_rebuild_parameter_with_state'])
def test_build_cannot_set_attributes_of_torch_rebuild_functions(tmp_path, no_jit_load, name):
    fn = getattr(torch._utils, name)
    snapshot = _function_attrs(fn)
    # BUILD with (instance dict, slot state): dict entries go to fn.__dict__, slot entries through setattr
    state = (EMPTY_DICT + MARK + S('dump_patches') + TRUE + SETITEMS + EMPTY_DICT + MARK + S('__name__') + S('pwned')
             + S('__module__') + S('pwned') + S('__qualname__') + S('pwned') + S('__defaults__') + NONE + SETITEMS
             + TUPLE2)
    path = torch_zip(tmp_path / 'build.pth', pickle_of(entry('f', G('torch._utils', name) + state + BUILD)))
    try:
        _refused(path, no_jit_load, 'BUILD', f'torch._utils.{name}')
        assert _function_attrs(fn) == snapshot and not hasattr(fn, 'dump_patches')
    finally:
        _restore(fn, snapshot)


def test_allowlisted_globals_load_as_torch_objects_the_file_cannot_change(tmp_path, no_jit_load):
    """PyTorch's unpickler hands out its own allowlisted functions (ours handed out private copies); what matters is
    that the file cannot change them: BUILD on them is refused (above) and loading leaves them as they were."""
    globals_ = [('torch._utils', '_rebuild_tensor_v2'), ('torch._utils', '_rebuild_parameter'),
                ('torch._utils', '_rebuild_parameter_with_state')]
    snapshots = {name: _function_attrs(getattr(torch._utils, name)) for _, name in globals_}
    path = torch_zip(tmp_path / 'globals.pth', pickle_of(*[entry(n, G(m, n)) for m, n in globals_],
                                                         entry('dtype', G('torch', 'float16'))))
    ckpt = load_foreign_checkpoint(path)
    for module, name in globals_:
        assert ckpt[name] is getattr(torch._utils, name) and _function_attrs(ckpt[name]) == snapshots[name]
    assert ckpt['dtype'] is torch.float16
    assert no_jit_load == []


_SUBMODULE_PROBE = r'''
import json, sys
import torch
from mmmixer.checkpoint import InertObject, load_foreign_checkpoint
before = set(sys.modules)
ckpt = load_foreign_checkpoint(sys.argv[1])
after = set(sys.modules)
print(json.dumps({'new_modules': sorted(m for m in after - before if m.split('.')[0] == 'torch'),
                  'already': sorted(m for m in before if m in ('torch._dynamo', 'torch._inductor', 'torch.onnx',
                                                               'torch._export', 'torch.export')),
                  'inert': {k: isinstance(v, type) and issubclass(v, InertObject) and v.qualname
                            for k, v in ckpt.items()}}))
'''


def test_global_of_torch_submodule_imports_nothing(tmp_path):
    names = ['_dynamo', '_inductor', 'onnx', '_export', 'export']
    path = torch_zip(tmp_path / 'submodules.pth', pickle_of(*[entry(n, G('torch', n)) for n in names]))
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))
    env.pop(TRUST_ENV, None)
    out = subprocess.run([sys.executable, '-c', _SUBMODULE_PROBE, path], capture_output=True, text=True, env=env,
                         cwd=REPO, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(result['already']) < len(names), 'every probed submodule was imported beforehand; nothing to check'
    assert result['new_modules'] == [], f'loading the file imported {result["new_modules"][:10]}'  # (torch.*)
    assert result['inert'] == {n: f'torch.{n}' for n in names}


def _gadget_file(tmp_path, name, gadget: bytes) -> str:
    return torch_zip(tmp_path / f'{name}.pth', pickle_of(entry('model', EMPTY_DICT), entry('x', gadget)))


@pytest.mark.parametrize('attack', ['os.system', 'builtins.eval', 'builtins.getattr', 'functools.partial'])
def test_reducers_stay_inert_and_their_results_cannot_be_called(tmp_path, no_jit_load, attack):
    marker = tmp_path / 'pwned'
    first = {  # one REDUCE: builds the gadget (a call of the named global)
        'os.system': G('os', 'system') + S(f'touch {marker}') + TUPLE1,
        'builtins.eval': G('builtins', 'eval') + S(f'open({str(marker)!r}, "w")') + TUPLE1,
        'builtins.getattr': G('builtins', 'getattr') + G('builtins', 'open') + S('__call__') + TUPLE2,
        'functools.partial': G('functools', 'partial') + MARK + G('builtins', 'open') + S(str(marker)) + S('w')
        + TUPLE,
    }[attack] + REDUCE
    if attack == 'os.system':  # PyTorch's unpickler blocks every global of os, sys, posix, nt
        _refused(_gadget_file(tmp_path, 'gadget', first), no_jit_load, 'global os.system')
        assert not marker.exists()
        return
    ckpt = load_foreign_checkpoint(_gadget_file(tmp_path, 'gadget', first))
    assert isinstance(ckpt['x'], InertObject) and ckpt['x'].qualname == attack and not marker.exists()
    # a second REDUCE calls what the first returned (the usual exploit chain): refused, not a TypeError
    chained = first + (EMPTY_TUPLE if attack == 'functools.partial' else S(str(marker)) + S('w') + TUPLE2) + REDUCE
    _refused(_gadget_file(tmp_path, 'chained', chained), no_jit_load, 'REDUCE', attack)
    assert not marker.exists()


def test_nested_pickle_stays_bytes(tmp_path, no_jit_load):
    marker = tmp_path / 'pwned'
    inner = pickle.dumps(_Payload(str(marker)))
    path = tmp_path / 'nested.pth'
    torch.save({'model': {'w': torch.ones(1)}, 'blob': inner}, path)  # protocol 2: bytes as _codecs.encode(...)
    crafted = torch_zip(tmp_path / 'nested3.pth', pickle_of(entry('blob', B(inner[:200]))))  # SHORT_BINBYTES
    ckpt = load_foreign_checkpoint(str(path))
    assert type(ckpt['blob']) is bytes and ckpt['blob'] == inner and not marker.exists()
    # protocol 3 bytes opcodes are outside PyTorch's weights-only unpickler (torch.save writes protocol 2): refused
    _refused(crafted, no_jit_load, 'Unsupported operand 67')
    assert not marker.exists()


# ----- malformed files: one CheckpointLoadError each


def _central_directory_size(path, record: str, size: int) -> None:
    """Rewrite the sizes of ``record`` in the zip's central directory (its local header is left alone)."""
    data = bytearray(open(path, 'rb').read())
    name = record.encode()
    pos = data.rfind(b'PK\x01\x02', 0, data.rfind(name))
    struct.pack_into('<II', data, pos + 20, size, size)  # compressed size, uncompressed size
    open(path, 'wb').write(bytes(data))


def _good_zip(tmp_path, name='good.pth'):
    return torch_zip(tmp_path / name, pickle_of(entry('model', EMPTY_DICT + S('w') + tensor_op() + SETITEM)), FLOATS)


def test_good_crafted_zip_loads(tmp_path, no_jit_load):
    ckpt = load_foreign_checkpoint(_good_zip(tmp_path))
    assert torch.equal(ckpt['model']['w'], torch.tensor([1., 2., 3., 4.]))


@pytest.mark.parametrize('case', [
    'truncated-zip', 'absurd-record-size', 'corrupted-data-pkl', 'truncated-pickle', 'pid-not-tuple',
    'storage-type-inert', 'storage-missing', 'storage-too-small', 'huge-numel', 'tensor-out-of-bounds',
    'bad-tensor-args', 'build-on-tensor', 'setitem-on-class', 'unhashable-key', 'append-to-tuple', 'call-of-dtype'])
def test_malformed_file_gives_one_checkpoint_load_error(tmp_path, no_jit_load, case):
    good = _good_zip(tmp_path)
    path = str(tmp_path / f'{case}.pth')
    t = tensor_op
    body = {
        'truncated-pickle': lambda: pickle_of(entry('model', EMPTY_DICT))[:-6],
        'pid-not-tuple': lambda: pickle_of(entry('w', S('storage') + BINPERSID)),
        'storage-type-inert': lambda: pickle_of(entry('w', t(storage=G('builtins', 'object')))),
        'storage-missing': lambda: pickle_of(entry('w', t(key='7'))),
        'storage-too-small': lambda: pickle_of(entry('w', t(numel=8, size=(8, )))),
        'huge-numel': lambda: pickle_of(entry('w', t(numel=2**31 - 1, size=(2**31 - 1, )))),
        'tensor-out-of-bounds': lambda: pickle_of(entry('w', t(size=(40, ), stride=(1, )))),
        'bad-tensor-args': lambda: pickle_of(entry('w', G('torch._utils', '_rebuild_tensor_v2') + MARK + S('x')
                                                   + TUPLE + REDUCE)),
        'build-on-tensor': lambda: pickle_of(entry('w', t() + EMPTY_DICT + MARK + S('grad') + NONE + SETITEMS
                                                   + BUILD)),
        'setitem-on-class': lambda: pickle_of(entry('w', G('collections', 'OrderedDict') + S('k') + S('v')
                                                    + SETITEM)),
        'unhashable-key': lambda: pickle_of(EMPTY_LIST + NONE + SETITEM),
        'append-to-tuple': lambda: pickle_of(entry('w', EMPTY_TUPLE + NONE + APPEND)),
        'call-of-dtype': lambda: pickle_of(entry('w', G('torch', 'float32') + EMPTY_TUPLE + REDUCE)),
    }
    if case == 'truncated-zip':
        data = open(good, 'rb').read()
        open(path, 'wb').write(data[:len(data) * 2 // 3])
    elif case == 'absurd-record-size':
        torch_zip(path, pickle_of(entry('model', EMPTY_DICT)))
        _central_directory_size(path, 'archive/data.pkl', 2**32 - 2)
    elif case == 'corrupted-data-pkl':
        torch_zip(path, b'\x80\x02\xff' + os.urandom(64))
    else:
        torch_zip(path, body[case](), FLOATS)
    message = _refused(path, no_jit_load)
    assert message.startswith((f'Checkpoint "{path}" is not a readable torch checkpoint',
                               f'Refused to load checkpoint "{path}"'))


# ----- torch's TORCH_FORCE_WEIGHTS_ONLY_LOAD


def test_force_weights_only_env_and_the_foreign_loader(tmp_path, monkeypatch):
    monkeypatch.setenv(FORCE_WO, '1')
    monkeypatch.delenv(TRUST_ENV, raising=False)
    import argparse
    path = tmp_path / 'official.pth'
    torch.save({'model': {'w': torch.ones(2)}, 'args': argparse.Namespace(lr=1)}, path)
    ckpt = load_foreign_checkpoint(str(path))  # torch.load is not used, so the variable changes nothing
    assert torch.equal(ckpt['model']['w'], torch.ones(2)) and ckpt['args'].qualname == 'argparse.Namespace'
    script = tmp_path / 'scripted.pt'
    torch.jit.save(torch.jit.script(_Scripted()), str(script))
    with pytest.raises(CheckpointLoadError, match=rf'scripted\.pt.*TorchScript.*{TRUST_ENV}=1.*unset {FORCE_WO}'):
        load_foreign_checkpoint(str(script))


def test_force_weights_only_env_and_safe_torch_load(tmp_path, monkeypatch):
    monkeypatch.setenv(FORCE_WO, '1')
    monkeypatch.delenv(TRUST_ENV, raising=False)
    marker, path = tmp_path / 'pwned', tmp_path / 'evil.pth'
    torch.save({'state_dict': {'w': torch.ones(2)}, 'meta': _Payload(str(marker))}, path)
    with pytest.raises(CheckpointLoadError, match=rf'evil\.pth.*global io.open.*{TRUST_ENV}=1.*unset {FORCE_WO}'):
        safe_torch_load(str(path))
    # the opt-in cannot work while torch forces weights_only: say so instead of torch's raw UnpicklingError
    monkeypatch.setenv(TRUST_ENV, '1')
    with pytest.raises(CheckpointLoadError, match=rf'evil\.pth.*although {TRUST_ENV}=1.*{FORCE_WO}=1'):
        safe_torch_load(str(path))
    assert not marker.exists()
