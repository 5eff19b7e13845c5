"""Test helpers (unique module name: tests/ is not a package)."""
import glob
import json
import os.path as osp

import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def config_path(name):
    """Path of a shipped config, by basename (as mim finds it)."""
    hits = glob.glob(osp.join(REPO, 'configs', '**', name), recursive=True)
    assert len(hits) == 1, f'{name}: {hits}'
    return hits[0]


def build_from_config(name, edit=None):
    """Build ``cfg.model`` of a shipped config under its default scope (what the Runner does).

    ``edit(cfg)`` may change the loaded config first.
    """
    from mmengine.config import Config
    from mmengine.registry import MODELS, DefaultScope
    cfg = Config.fromfile(config_path(name))
    if edit is not None:
        edit(cfg)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        return MODELS.build(cfg.model), cfg


def official_state_from_listing(path, device='meta'):
    """An official-format state dict with the keys and shapes of a ``*.keys.json`` listing."""
    with open(path) as f:
        listing = json.load(f)
    return {k: torch.empty(shape, device=device) for k, shape in listing['state_dict'].items()}, listing


def subprocess_env(**extra):
    """Environment for tool subprocesses: this checkout's mmmixer first on the path (not an installed copy)."""
    import os
    env = dict(os.environ, **extra)
    env['PYTHONPATH'] = REPO + (os.pathsep + env['PYTHONPATH'] if env.get('PYTHONPATH') else '')
    return env
