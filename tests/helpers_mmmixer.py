"""Test helpers (unique module name: tests/ is not a package)."""
import glob
import json
import os
import os.path as osp

import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

#: The golden data shipped with the repository (tests/data/golden/README.md). Tests get it only through the
#: ``golden`` fixture of tests/conftest.py, which reads ``$MMMIXER_GOLDEN`` first.
GOLDEN_DEFAULT = osp.join(REPO, 'tests', 'data', 'golden')
#: Every file of the golden set the tests read (tests/test_self_contained.py checks this list against the tests).
GOLDEN_FILES = tuple(
    [f'{name}.{ext}' for name in ('msmlp_small-random', 'posmlp_small-gqpe-random', 'posmlp_small-lrpe-random',
                                  'stripmlp_small-c40-random') for ext in ('official.pth', 'io.pth', 'json')]
    + [f'{arch}.keys.json' for arch in ('msmlp_tiny', 'msmlp_small', 'msmlp_base', 'posmlp_tiny', 'posmlp_small',
                                        'stripmlp_light_tiny', 'stripmlp_tiny', 'stripmlp_small', 'stripmlp_base')])


def load_tool(path: str, name: str):
    """Import a script (tools/..., not a package module) from its file path, as module ``name``."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def golden_dir():
    """Directory of the official-code golden data: ``$MMMIXER_GOLDEN`` if set, else ``tests/data/golden``."""
    return os.environ.get('MMMIXER_GOLDEN') or GOLDEN_DEFAULT


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


DIGIT_CLASSES = tuple(str(i) for i in range(10))

# Tiny custom archs, one per family, for downstream swaps (4 stages; PosMLP needs gammas dividing its small gated
# widths, SwinMSMLP two blocks per stage for its window-attention + MS-block pattern): family -> (type, arch).
TINY_FAMILIES = {
    'msmlp': ('mmmixer.MSMLP', dict(embed_dims=20, depths=[1, 1, 1, 1])),
    'posmlp': ('mmmixer.PosMLP', dict(embed_dims=16, depths=[1, 1, 1, 1], gammas=[2, 2, 2, 2])),
    'stripmlp': ('mmmixer.StripMLP', dict(embed_dims=16, depths=[1, 1, 1, 1])),
    'swin_msmlp': ('mmmixer.SwinMSMLP', dict(embed_dims=20, depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 4])),
}


def _scale_sizes(node, factor):
    """Divide every image size in a pipeline (scale, scales, crop_size) by ``factor``, recursively."""
    if isinstance(node, (list, tuple)):
        return type(node)(_scale_sizes(n, factor) for n in node)
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key in ('scale', 'crop_size') and isinstance(value, (list, tuple)):
            out[key] = tuple(max(16, int(v / factor)) for v in value)
        elif key == 'scales' and isinstance(value, (list, tuple)):
            out[key] = [tuple(max(16, int(v / factor)) for v in s) for s in value]
        else:
            out[key] = _scale_sizes(value, factor)
    return type(node)(out) if not hasattr(node, '_cfg_dict') else out


def miniaturize(cfg, coco_root=None, ade_root=None, work_dir=None, num_images=4):
    """Point a shipped det/seg config at a miniature real-format dataset and a tiny schedule.

    Overrides only the data root (plus the digit class names COCO needs), image sizes (/6 for COCO, /4 for
    ADE20K), dataset length, schedule, batch size and worker count; the model, optimizer and pipelines' structure
    stay as shipped. The backbone's ``Pretrained`` init is dropped (no ImageNet checkpoint in tests).
    """
    cfg.model.backbone.init_cfg = None
    cfg.work_dir = work_dir
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=100000)
    cfg.default_hooks.visualization = dict(type=cfg.default_hooks.visualization.type, draw=False)
    for split in ('train', 'val', 'test'):
        loader = cfg.get(f'{split}_dataloader')
        loader.batch_size = 2 if split == 'train' else 1
        loader.num_workers = 0
        loader.persistent_workers = False
        dataset = loader.dataset
        dataset.indices = num_images if split == 'train' else max(1, num_images // 2)
        if coco_root is not None:
            name = 'train2017' if split == 'train' else 'val2017'
            dataset.data_root = coco_root
            dataset.ann_file = f'annotations/instances_{name}.json'
            dataset.data_prefix = dict(img=f'{name}/')
            dataset.metainfo = dict(classes=DIGIT_CLASSES)
            dataset.pipeline = _scale_sizes(dataset.pipeline, 6)
        else:
            dataset.data_root = ade_root
            dataset.pipeline = _scale_sizes(dataset.pipeline, 4)
    if coco_root is not None:
        for split in ('val', 'test'):
            cfg.get(f'{split}_evaluator').ann_file = f'{coco_root}/annotations/instances_val2017.json'
        cfg.train_cfg.max_epochs = 1
        cfg.train_cfg.val_interval = 1
        if 'roi_head' in cfg.model:
            cfg.model.roi_head.bbox_head.num_classes = 10
            cfg.model.roi_head.mask_head.num_classes = 10
        else:
            cfg.model.bbox_head.num_classes = 10
            # an untrained one-stage head scores below the 0.05 threshold, leaving COCO eval nothing to rate
            cfg.model.test_cfg.score_thr = 0.
    else:
        crop = (128, 128)
        cfg.model.data_preprocessor.size = crop
        cfg.train_cfg.max_iters = 2
        cfg.train_cfg.val_interval = 2
    return cfg


def short_digits_cfg(root, work_dir, name, extra_args=(), images=32, batch=8, epochs=2):
    """The digits demo config as ``tools/train.py`` prepares it (its ``merge_args``, e.g. for ``--amp``), made short
    and deterministic: ``images`` training images, ``batch`` per iteration, ``epochs`` epochs, no validation, drop
    path 0, no random crop offsets, seed 0; ``name`` is the experiment name (unique per Runner in a process)."""
    import importlib.util
    from mmengine.config import Config
    tool = load_tool(osp.join(REPO, 'tools', 'train.py'), 'mmmixer_train_tool')
    args = tool.parse_args([config_path('msmlp-nano_1xb64-40e_digits.py'), '--work-dir', str(work_dir),
                            *extra_args])
    cfg = tool.merge_args(Config.fromfile(args.config), args)
    cfg.merge_from_dict({
        'train_dataloader.dataset.data_root': root, 'train_dataloader.dataset.indices': images,
        'train_dataloader.batch_size': batch, 'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        'train_dataloader.dataset.pipeline.1.padding': 0, 'model.backbone.drop_path_rate': 0.,
        'train_cfg.max_epochs': epochs, 'param_scheduler.0.end': 1, 'param_scheduler.1.begin': 1,
        'param_scheduler.1.end': epochs, 'default_hooks.logger.interval': 1,
        'default_hooks.checkpoint.interval': 100, 'default_hooks.checkpoint.save_best': None,
        'randomness.seed': 0, 'randomness.deterministic': True, 'experiment_name': name,
    })
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    return cfg
