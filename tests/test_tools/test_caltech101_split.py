"""tools/dataset_converters/caltech101_split.py reproduces the official Strip-MLP Caltech-101 split procedure."""
import os
import os.path as osp
import random
import subprocess
import sys

import pytest

from helpers_mmmixer import REPO, load_tool

TOOL = osp.join(REPO, 'tools', 'dataset_converters', 'caltech101_split.py')
SIZES = {'accordion': 11, 'Faces_easy': 7, 'ant': 1, 'zebra': 23, 'BACKGROUND_Google': 5}


def _load_tool():
    return load_tool(TOOL, 'caltech101_split')


@pytest.fixture
def caltech(tmp_path):
    root = tmp_path / '101_ObjectCategories'
    for cls, n in SIZES.items():
        (root / cls).mkdir(parents=True)
        for i in range(n):
            (root / cls / f'image_{i + 1:04d}.jpg').write_bytes(f'{cls}{i}'.encode())
    return root


def official_procedure(root, listing):
    """The official categories101_train_val_split.py, minus the copying (the background folder removed first)."""
    random.seed(1024)
    train, val = [], []
    for cls in [c for c in listing(root) if c != 'BACKGROUND_Google']:
        files = listing(osp.join(root, cls))
        random.shuffle(files)
        num = int(len(files) * 0.8)
        train += [(cls, f) for f in files[:num]]
        val += [(cls, f) for f in files[num:]]
    return train, val


@pytest.mark.parametrize('order,listing', [('listdir', os.listdir), ('sorted', lambda p: sorted(os.listdir(p)))])
def test_split_reproduces_official_procedure(caltech, order, listing):
    split = _load_tool().split_caltech101(str(caltech), order=order)
    train, val = official_procedure(str(caltech), listing)
    assert split['train'] == train and split['val'] == val
    assert split['classes'] == sorted(c for c in SIZES if c != 'BACKGROUND_Google')
    for cls, n in SIZES.items():
        got = [f for c, f in split['train'] if c == cls]
        assert len(got) == (int(0.8 * n) if cls != 'BACKGROUND_Google' else 0)
    # a different seed gives a different split (the seed matters)
    other = _load_tool().split_caltech101(str(caltech), order=order, seed=1)
    assert other['train'] != split['train']


def test_cli_writes_folders_and_lists(caltech, tmp_path):
    dst = tmp_path / 'caltech101'
    out = subprocess.run([sys.executable, TOOL, str(caltech), str(dst), '--order', 'sorted'], capture_output=True,
                         text=True, check=True).stdout
    total = sum(n for c, n in SIZES.items() if c != 'BACKGROUND_Google')
    n_train = sum(int(0.8 * n) for c, n in SIZES.items() if c != 'BACKGROUND_Google')
    assert f'4 classes, {n_train} train / {total - n_train} val images' in out
    train, val = official_procedure(str(caltech), lambda p: sorted(os.listdir(p)))
    labels = {c: i for i, c in enumerate(sorted(c for c in SIZES if c != 'BACKGROUND_Google'))}
    with open(dst / 'meta' / 'train.txt') as f:
        assert f.read().splitlines() == [f'{c}/{n} {labels[c]}' for c, n in train]
    for part, items in (('train', train), ('val', val)):
        files = sorted(osp.relpath(osp.join(d, n), dst / part) for d, _, ns in os.walk(dst / part) for n in ns)
        assert files == sorted(f'{c}/{n}' for c, n in items)
        c, n = items[0]
        assert (dst / part / c / n).read_bytes() == (caltech / c / n).read_bytes()
    assert not (dst / 'train' / 'BACKGROUND_Google').exists()
    again = subprocess.run([sys.executable, TOOL, str(caltech), str(dst)], capture_output=True, text=True)
    assert again.returncode != 0 and '--overwrite' in again.stderr
