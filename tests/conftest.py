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


#: The golden data shipped with the repository (tests/data/golden/README.md).
GOLDEN_DEFAULT = osp.join(REPO, 'tests', 'data', 'golden')
#: Every file of the golden set the tests read (tests/test_self_contained.py checks that this list is complete).
GOLDEN_FILES = tuple(
    [f'{name}.{ext}' for name in ('msmlp_small-random', 'posmlp_small-gqpe-random', 'posmlp_small-lrpe-random',
                                  'stripmlp_small-c40-random') for ext in ('official.pth', 'io.pth', 'json')]
    + [f'{arch}.keys.json' for arch in ('msmlp_tiny', 'msmlp_small', 'msmlp_base', 'posmlp_tiny', 'posmlp_small',
                                        'stripmlp_light_tiny', 'stripmlp_tiny', 'stripmlp_small', 'stripmlp_base')])


def golden_dir():
    """Directory of the official-code golden data: ``$MMMIXER_GOLDEN`` if set, else ``tests/data/golden``."""
    return os.environ.get('MMMIXER_GOLDEN') or GOLDEN_DEFAULT


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
