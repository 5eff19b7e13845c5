"""Every shipped config loads and builds its model under its own default scope."""
import glob
import os.path as osp

import pytest
import torch

from helpers_mmmixer import REPO, build_from_config

CONFIGS = sorted(osp.basename(p) for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
                 if '_base_' not in p)


def test_config_basenames_unique():
    paths = [p for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
             if '_base_' not in p]
    assert len(paths) == len(set(osp.basename(p) for p in paths)), 'mim finds configs by basename'
    assert len(paths) >= 4


@pytest.mark.parametrize('name', CONFIGS)
def test_config_builds(name):
    with torch.device('meta'):
        model, cfg = build_from_config(name)
    assert cfg.custom_imports['imports'] == ['mmmixer.models']
    assert cfg.custom_imports['allow_failed_imports'] is False
    assert cfg.default_scope in ('mmpretrain', 'mmdet', 'mmseg')
    assert sum(p.numel() for p in model.parameters()) > 0
    assert type(model.backbone).__module__.startswith('mmmixer.')
