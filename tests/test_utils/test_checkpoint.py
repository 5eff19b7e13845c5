"""Safe checkpoint loading: Runner checkpoints load, code-carrying pickles are refused without running."""
import os.path as osp
from collections import OrderedDict

import pytest
import torch

from mmmixer.checkpoint import (TRUST_ENV, CheckpointLoadError, InertObject, load_foreign_checkpoint,
                                safe_torch_load)


class _Payload:
    """Unpickling this would create a marker file (a stand-in for arbitrary code)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, 'w'))


def _evil_checkpoint(tmp_path):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {'w': torch.ones(2)}, 'meta': _Payload(str(marker))}, path)
    return path, marker


def test_code_carrying_checkpoint_is_refused_without_running(tmp_path, monkeypatch):
    monkeypatch.delenv(TRUST_ENV, raising=False)
    path, marker = _evil_checkpoint(tmp_path)
    with pytest.raises(CheckpointLoadError) as err:
        safe_torch_load(str(path))
    assert str(path) in str(err.value) and f'{TRUST_ENV}=1' in str(err.value)
    assert 'global io.open' in str(err.value)  # names what was refused
    assert not marker.exists()
    # the same refusal through mmengine's loader (Pretrained init, load_from, resume)
    from mmengine.runner.checkpoint import CheckpointLoader
    with pytest.raises(CheckpointLoadError):
        CheckpointLoader.load_checkpoint(str(path), map_location='cpu')
    assert not marker.exists()


def test_opt_in_allows_full_unpickle(tmp_path, monkeypatch):
    path, marker = _evil_checkpoint(tmp_path)
    monkeypatch.setenv(TRUST_ENV, '1')
    safe_torch_load(str(path))
    assert marker.exists()  # proves the refusal above was real


def test_foreign_loader_keeps_tensors_and_neutralises_objects(tmp_path):
    path, marker = _evil_checkpoint(tmp_path)
    ckpt = load_foreign_checkpoint(str(path))
    assert torch.equal(ckpt['state_dict']['w'], torch.ones(2))
    assert isinstance(ckpt['meta'], InertObject) and ckpt['meta'].qualname == 'io.open'
    assert not marker.exists()


def test_foreign_loader_on_official_golden_checkpoint(golden):
    ckpt = load_foreign_checkpoint(osp.join(golden, 'msmlp_small-random.official.pth'))
    assert set(ckpt) == {'model'}
    assert all(isinstance(v, torch.Tensor) for v in ckpt['model'].values())


def test_truncated_file_gives_one_clear_error(tmp_path):
    good = tmp_path / 'good.pth'
    torch.save({'state_dict': {'w': torch.randn(1000)}}, good)
    data = good.read_bytes()
    bad = tmp_path / 'truncated.pth'
    bad.write_bytes(data[:len(data) // 2])
    for loader in (safe_torch_load, load_foreign_checkpoint):
        with pytest.raises(CheckpointLoadError, match=r'truncated\.pth.*not a readable torch checkpoint'):
            loader(str(bad))
    with pytest.raises(FileNotFoundError, match='does not exist'):
        safe_torch_load(str(tmp_path / 'missing.pth'))


def test_plain_pickle_objects_outside_allowlist_refused(tmp_path, monkeypatch):
    monkeypatch.delenv(TRUST_ENV, raising=False)
    import argparse
    path = tmp_path / 'ns.pth'
    torch.save({'args': argparse.Namespace(lr=1)}, path)
    with pytest.raises(CheckpointLoadError, match='global argparse.Namespace'):
        safe_torch_load(str(path))
    assert load_foreign_checkpoint(str(path))['args'].qualname == 'argparse.Namespace'


class _GetattrGadget:
    """Pickles as getattr(HistoryBuffer, '__init__'): the allowlisted getattr must refuse it."""

    def __reduce__(self):
        from mmengine.logging.history_buffer import HistoryBuffer
        return (getattr, (HistoryBuffer, '__init__'))


def test_getattr_allowlist_is_limited_to_history_buffer_statistics(tmp_path, monkeypatch):
    monkeypatch.delenv(TRUST_ENV, raising=False)
    from mmengine.logging.history_buffer import HistoryBuffer
    ok = tmp_path / 'ok.pth'
    buf = HistoryBuffer()
    buf.update(1.5)
    # protocol 2 pickles HistoryBuffer.min as getattr(HistoryBuffer, 'min'), as Runner checkpoints do
    torch.save({'stats': {'min': HistoryBuffer.min}, 'buf': buf}, ok, pickle_protocol=2)
    loaded = safe_torch_load(str(ok))
    assert loaded['stats']['min'] is HistoryBuffer.min and loaded['buf'].current() == 1.5
    bad = tmp_path / 'gadget.pth'
    torch.save({'x': _GetattrGadget()}, bad, pickle_protocol=2)
    with pytest.raises(CheckpointLoadError, match='getattr'):
        safe_torch_load(str(bad))


def test_mmengine_local_scheme_is_logged_as_safe_local(tmp_path, monkeypatch):
    """mmengine logs the scheme function's name without its first 10 characters ('load_from_')."""
    import mmengine.runner.checkpoint as mmengine_checkpoint

    from mmmixer.checkpoint import load_from_safe_local
    messages = []
    monkeypatch.setattr(mmengine_checkpoint, 'print_log', lambda msg, **kwargs: messages.append(msg))
    path = tmp_path / 'ok.pth'
    torch.save({'state_dict': {'w': torch.ones(1)}}, path)
    loaded = mmengine_checkpoint.CheckpointLoader.load_checkpoint(str(path), map_location='cpu')
    assert torch.equal(loaded['state_dict']['w'], torch.ones(1))
    assert mmengine_checkpoint.CheckpointLoader._schemes[''] is load_from_safe_local
    assert messages == [f'Loads checkpoint by safe_local backend from path: {path}']


class CfgNode(dict):
    """Pickles as yacs' ``CfgNode`` (a dict subclass with an instance attribute), without yacs installed."""
    __module__ = 'yacs.config'

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.__dict__['__immutable__'] = False


def test_foreign_classes_of_official_checkpoints_arrive_as_inert_stand_ins(tmp_path, monkeypatch):
    import argparse
    import sys
    import types

    import numpy as np
    from mmengine.logging.history_buffer import HistoryBuffer
    module = types.ModuleType('yacs.config')
    module.CfgNode = CfgNode
    monkeypatch.setitem(sys.modules, 'yacs', types.ModuleType('yacs'))
    monkeypatch.setitem(sys.modules, 'yacs.config', module)
    buf = HistoryBuffer()
    buf.update(2.0)
    path = tmp_path / 'official.pth'
    config = CfgNode(MODEL=CfgNode(TYPE='msmlp'), EPOCHS=300)
    torch.save({'model': {'w': torch.ones(2)}, 'args': argparse.Namespace(lr=1e-3), 'epoch': np.int64(299),
                'config': config, 'buf': buf}, path)
    ckpt = load_foreign_checkpoint(str(path))
    assert torch.equal(ckpt['model']['w'], torch.ones(2))
    assert ckpt['args'].qualname == 'argparse.Namespace' and ckpt['args'].state == {'lr': 1e-3}
    assert isinstance(ckpt['epoch'], InertObject) and ckpt['epoch'].qualname.endswith('multiarray.scalar')
    assert ckpt['buf'].qualname == 'mmengine.logging.history_buffer.HistoryBuffer'
    assert type(ckpt['config']) is OrderedDict and type(ckpt['config']['MODEL']) is OrderedDict
    assert ckpt['config'] == {'MODEL': {'TYPE': 'msmlp'}, 'EPOCHS': 300}


def test_flipped_bit_in_a_tensor_record_is_refused(tmp_path):
    """torch's zip reader does not check the records' CRC-32: this file would load with a different tensor."""
    path = tmp_path / 'flipped.pth'
    w = torch.full((64, ), 7.0)
    torch.save({'model': {'w': w}}, path)
    data = bytearray(path.read_bytes())
    data[data.find(w.numpy().tobytes()) + 100] ^= 0x40  # inside the storage record of w
    path.write_bytes(bytes(data))
    assert not torch.equal(torch.load(path, weights_only=True)['model']['w'], w)
    for loader in (load_foreign_checkpoint, safe_torch_load):
        with pytest.raises(CheckpointLoadError, match=r'flipped\.pth.*not a readable.*CRC-32'):
            loader(str(path))
