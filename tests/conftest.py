"""Shared pytest fixtures. ``tests/`` is deliberately not a package (mmsegmentation's wheel installs a
top-level ``tests`` package; see ../shared/reference/openmmlab.md §8.6)."""
import os
import os.path as osp
import sys

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
# make tests/helpers_mmmixer.py importable from every test module (tests/ is not a package)
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))


def golden_dir():
    """Directory of the official-code golden data: $MMMIXER_GOLDEN or ../shared/golden beside the repo."""
    return os.environ.get('MMMIXER_GOLDEN', osp.join(osp.dirname(REPO), 'shared', 'golden'))


@pytest.fixture(scope='session')
def golden():
    path = golden_dir()
    if not osp.isdir(path):
        if os.environ.get('CI'):
            pytest.fail(f'golden data not found at {path} (set MMMIXER_GOLDEN)')
        pytest.skip(f'golden data not found at {path} (set MMMIXER_GOLDEN)')
    return path


@pytest.fixture(scope='session')
def repo_root():
    return REPO


@pytest.fixture(autouse=True)
def _deterministic_threads():
    torch.manual_seed(0)
    yield
