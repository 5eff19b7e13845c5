"""Seeded mutations of realistic checkpoint files (bit flips, truncations, inserted and duplicated byte runs): each
mutated file either loads with tensors identical to the original or raises ``CheckpointLoadError``; no other
exception escapes, no case hangs (a per-case alarm), and a payload in the file never runs.

The containers: an official release file (state dict, ``argparse.Namespace``, numpy scalar, as the MS-MLP / PosMLP
training scripts save), the same with a pickled ``open(marker, 'w')`` or ``os.system('touch marker')``, and an
mmengine Runner checkpoint (meta, state dict, message hub with ``HistoryBuffer``, optimizer state).
"""
import argparse
import os
import random
import signal
from collections import OrderedDict

import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub

from mmmixer.checkpoint import CheckpointLoadError, load_foreign_checkpoint, safe_torch_load

SEED = 20261206
LIMIT_S = 30  # per case: far above the milliseconds a load takes; only a hang reaches it


class _Hang(BaseException):
    """Raised by the per-case alarm (a BaseException, so no loader can wrap it into its own error)."""


class _Open:
    """Unpickling this would create the marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, 'w'))


class _System(_Open):

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


def _state_dict():
    torch.manual_seed(0)
    return OrderedDict([('patch_embed.proj.weight', torch.randn(8, 3, 4, 4)), ('layers.0.norm.weight', torch.rand(8)),
                        ('head.weight', torch.randn(10, 8).half()), ('steps', torch.arange(5))])


def _official(path, payload=None):
    ckpt = {'model': _state_dict(), 'args': argparse.Namespace(lr=1e-3, model='msmlp_tiny'), 'epoch': np.int64(299)}
    if payload is not None:
        ckpt['meta'] = payload
    torch.save(ckpt, path)


def _runner(path):
    model = torch.nn.Linear(6, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(2, 6)).sum().backward()
    optimizer.step()
    hub = MessageHub(f'fuzz-{path}')
    for value in (0.5, 0.25):
        hub.update_scalar('train/loss', value)
    hub.update_info('epoch', 1)
    torch.save({'meta': {'epoch': 1, 'iter': 4, 'seed': 0, 'mmengine_version': '0.10.7'},
                'state_dict': model.state_dict(), 'message_hub': hub.state_dict(),
                'optimizer': optimizer.state_dict()}, path)


def _tensors(obj, prefix=''):
    """``{path: tensor}`` of every tensor in nested dicts / lists."""
    if isinstance(obj, torch.Tensor):
        return {prefix: obj}
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, (list, tuple)) else ()
    found = {}
    for key, value in items:
        found.update(_tensors(value, f'{prefix}/{key}'))
    return found


def _mutate(data: bytes, rng: random.Random):
    """One seeded mutation of ``data`` and its description."""
    kind = rng.choice(['flip', 'flip', 'truncate', 'insert', 'duplicate'])
    pos = rng.randrange(len(data))
    if kind == 'flip':
        out = bytearray(data)
        out[pos] ^= 1 << rng.randrange(8)
        return bytes(out), f'flip at {pos}'
    if kind == 'truncate':
        return data[:pos], f'truncate to {pos}'
    length = rng.randint(1, 64)
    run = bytes(rng.randrange(256) for _ in range(length)) if kind == 'insert' else data[pos:pos + length]
    at = rng.randrange(len(data))
    return data[:at] + run + data[at:], f'{kind} {len(run)} bytes at {at}'


def _alarm(signum, frame):
    raise _Hang()


@pytest.mark.parametrize('container,cases', [('official', 120), ('official+open', 60), ('official+system', 40),
                                             ('runner', 80), ('runner-foreign', 60)])
def test_mutated_checkpoints_load_identical_or_raise_checkpoint_load_error(tmp_path, container, cases):
    marker = tmp_path / 'pwned'
    original = tmp_path / 'original.pth'
    payload = {'official+open': _Open(str(marker)), 'official+system': _System(str(marker))}.get(container)
    _runner(original) if container.startswith('runner') else _official(original, payload)
    load = safe_torch_load if container == 'runner' else load_foreign_checkpoint
    expected = _tensors(torch.load(original, weights_only=False) if payload is None else _official_tensors())
    if payload is None:
        assert {k: v.dtype for k, v in _tensors(load(str(original))).items()} == \
            {k: v.dtype for k, v in expected.items()}
    rng = random.Random(f'{SEED}-{container}')
    data = original.read_bytes()
    outcomes = {'identical': 0, 'refused': 0}
    previous = signal.signal(signal.SIGALRM, _alarm)
    try:
        for i in range(cases):
            mutated, how = _mutate(data, rng)
            path = tmp_path / f'case{i}.pth'
            path.write_bytes(mutated)
            signal.alarm(LIMIT_S)
            try:
                loaded = load(str(path))
            except CheckpointLoadError as err:
                assert str(path) in str(err), f'{how}: the message does not name the file: {err}'
                outcomes['refused'] += 1
                continue
            except BaseException as err:  # noqa: BLE001 - report the case that escaped
                raise AssertionError(f'{container} case {i} ({how}) raised {type(err).__name__}: {err}') from err
            finally:
                signal.alarm(0)
            got = _tensors(loaded)
            assert got.keys() == expected.keys() and all(
                got[k].dtype == expected[k].dtype and torch.equal(got[k], expected[k]) for k in expected), \
                f'{container} case {i} ({how}) loaded different tensors without an error'
            outcomes['identical'] += 1
            assert not marker.exists(), f'{container} case {i} ({how}) ran the payload'
    finally:
        signal.signal(signal.SIGALRM, previous)
    assert not marker.exists()
    assert outcomes['refused'] > cases // 2, outcomes  # most mutations hit the records, whose CRC-32 refuses them


def _official_tensors():
    return {'model': _state_dict()}
