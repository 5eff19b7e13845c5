"""Common pytest fixtures. ``tests/`` is deliberately not a package: mmsegmentation 1.2.2's wheel installs a
top-level ``tests`` package into site-packages (open-mmlab/mmsegmentation#3883), so ``tests.xxx`` imports would be
ambiguous; pytest runs with ``--import-mode=importlib`` instead."""
import os
import os.path as osp
import sys

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
# make tests/helpers_mmmixer.py importable from every test module (tests/ is not a package)
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

from helpers_mmmixer import GOLDEN_DEFAULT, GOLDEN_FILES, golden_dir  # noqa: E402


@pytest.fixture(scope='session')
def golden():
    """The golden data directory. Missing data is an error, never a skip: the fidelity tests must run everywhere."""
    path = golden_dir()
    missing = [f for f in GOLDEN_FILES if not osp.isfile(osp.join(path, f))]
    if missing:
        pytest.fail(f'golden data incomplete at {path}: missing {", ".join(missing)} '
                    f'(MMMIXER_GOLDEN={os.environ.get("MMMIXER_GOLDEN")!r}; the default is {GOLDEN_DEFAULT})',
                    pytrace=False)
    return path


@pytest.fixture(scope='session')
def repo_root():
    return REPO


@pytest.fixture(autouse=True)
def _deterministic_threads():
    torch.manual_seed(0)
    yield
