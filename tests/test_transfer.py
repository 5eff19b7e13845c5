"""ImageNet -> detection/segmentation transfer: a classifier checkpoint in our format loads into each family's dense
backbone through ``init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.')`` with every backbone tensor
taken from the checkpoint, no unexpected key, and exactly the dense-only output norms left new.

Checkpoints: the golden official random models (every tensor perturbed away from its init, tests/data/golden/README.md)
converted with each family's ``convert_official_*`` for MS-MLP / PosMLP / Strip-MLP, and for the Swin + MS-MLP
hybrid (no official code) an mmpretrain-format checkpoint of our hybrid classifier with random values. The dense
backbone is the one of the family's shipped ``mask-rcnn_<family>-t_fpn_1x_coco.py`` (its settings kept:
``gap_before_final_norm=False``, ``out_indices=(0, 1, 2, 3)``, ``shift_mode``, BN settings, ...) with ``arch`` set to
the checkpoint's. Before ``init_weights()`` every floating-point tensor of the backbone is set to NaN, so a tensor the
loader skipped (missing key, shape mismatch) stays NaN and fails the one-by-one comparison.

Expected new tensors, and why: a classifier has one output norm (``norm3``, the final norm; MS-MLP's and Strip-MLP's
official ``norm`` map to it), while the dense backbone returns stages 0-3 and so also has ``norm0``-``norm2``
(LayerNorm weight/bias; Strip-MLP: BatchNorm weight/bias/running_mean/running_var/num_batches_tracked). Nothing else.
"""
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope

from helpers_mmmixer import config_path, official_state_from_listing

from mmmixer.checkpoint import load_foreign_checkpoint

LN_NEW = {f'norm{i}.{p}' for i in range(3) for p in ('weight', 'bias')}
BN_NEW = {f'norm{i}.{p}' for i in range(3)
          for p in ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked')}
DENSE_CONFIG = {
    'msmlp': 'mask-rcnn_msmlp-{}_fpn_1x_coco.py',
    'posmlp': 'mask-rcnn_posmlp-{}_fpn_1x_coco.py',
    'stripmlp': 'mask-rcnn_stripmlp-{}_fpn_1x_coco.py',
    'swin-msmlp': 'mask-rcnn_swin-msmlp-{}_fpn_1x_coco.py',
}


def dense_backbone_cfg(family, size='t', **overrides):
    """The backbone config of a shipped Mask R-CNN 1x config, checked to be the dense Pretrained setting."""
    cfg = Config.fromfile(config_path(DENSE_CONFIG[family].format(size)))
    backbone = cfg.model.backbone
    assert backbone.gap_before_final_norm is False
    assert tuple(backbone.out_indices) == (0, 1, 2, 3)
    assert backbone.init_cfg.type == 'Pretrained' and backbone.init_cfg.prefix == 'backbone.'
    backbone.update(overrides)
    return backbone, cfg.default_scope


def build(backbone_cfg, scope):
    with DefaultScope.overwrite_default_scope(scope):
        return MODELS.build(backbone_cfg)


def load_through_init_cfg(backbone_cfg, scope, checkpoint):
    """Build the backbone with ``init_cfg.checkpoint=checkpoint``, NaN-fill its float tensors, run init_weights."""
    backbone_cfg.init_cfg.checkpoint = str(checkpoint)
    model = build(backbone_cfg, scope)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.fill_(float('nan'))
    model.init_weights()
    return model


def check_transfer(model, checkpoint, expected_new):
    """No unexpected / exactly ``expected_new`` missing keys; every other tensor equals the checkpoint's."""
    saved = torch.load(checkpoint, map_location='cpu', weights_only=True)['state_dict']
    ckpt = {k[len('backbone.'):]: v for k, v in saved.items() if k.startswith('backbone.')}
    ours = model.state_dict()
    unexpected = set(ckpt) - set(ours)
    missing = set(ours) - set(ckpt)
    assert not unexpected, sorted(unexpected)[:10]
    assert missing == expected_new, (sorted(missing - expected_new)[:10], sorted(expected_new - missing)[:10])
    for key, value in ckpt.items():
        assert ours[key].shape == value.shape, key
        assert torch.equal(ours[key], value), f'{key} was not loaded from the checkpoint'
    return ours, ckpt


def convert_golden(golden, name, tmp_path):
    """Golden official checkpoint -> our format (what tools/model_converters/*_to_mmmixer.py writes)."""
    from mmmixer.models.backbones.ms_mlp import convert_official_msmlp
    from mmmixer.models.backbones.pos_mlp import convert_official_posmlp
    from mmmixer.models.backbones.strip_mlp import convert_official_stripmlp
    converter = {'msmlp': convert_official_msmlp, 'posmlp': convert_official_posmlp,
                 'stripmlp': convert_official_stripmlp}[name.split('_')[0]]
    with open(osp.join(golden, f'{name}.json')) as f:
        meta = json.load(f)
    official = load_foreign_checkpoint(osp.join(golden, f'{name}.official.pth'))[meta['checkpoint_key']]
    result = converter(official)
    dst = tmp_path / f'{name}_mmmixer.pth'
    torch.save(dict(state_dict=result['state_dict'], meta={k: v for k, v in result.items() if k != 'state_dict'}),
               dst)
    return dst, result, official


def dense_forward_ok(backbone_cfg, scope, checkpoint, channels):
    """The loaded dense backbone (no NaN fill) returns 4 finite maps at strides 4-32 for a non-square input."""
    backbone_cfg.init_cfg.checkpoint = str(checkpoint)
    model = build(backbone_cfg, scope)
    model.init_weights()
    model.eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 64, 96))
    assert [tuple(o.shape) for o in outs] == [(1, c, 64 // s, 96 // s) for c, s in zip(channels, (4, 8, 16, 32))]
    assert all(torch.isfinite(o).all() for o in outs)


def test_msmlp_official_checkpoint_transfers(golden, tmp_path):
    dst, result, official = convert_golden(golden, 'msmlp_small-random', tmp_path)
    backbone_cfg, scope = dense_backbone_cfg('msmlp', arch=result['arch'])
    model = load_through_init_cfg(backbone_cfg, scope, dst)
    ours, ckpt = check_transfer(model, dst, LN_NEW)
    assert len(ckpt) == len(official) - 2  # every official tensor but the classifier head (weight, bias)
    assert all(torch.isnan(ours[k]).all() for k in LN_NEW)  # untouched by the loader
    dense_forward_ok(backbone_cfg, scope, dst, [32, 64, 128, 256])


@pytest.mark.parametrize('pos_type', ['gqpe', 'lrpe'])
def test_posmlp_official_checkpoint_transfers(golden, tmp_path, pos_type):
    dst, result, official = convert_golden(golden, f'posmlp_small-{pos_type}-random', tmp_path)
    backbone_cfg, scope = dense_backbone_cfg(
        'posmlp', arch=result['arch'], window_size=result['window_size'], pos_type=result['pos_type'],
        generalized=result['generalized'])
    model = load_through_init_cfg(backbone_cfg, scope, dst)
    ours, ckpt = check_transfer(model, dst, LN_NEW)
    # official tensors not carried over: the head (2) and one derived index buffer per block (recomputed from the
    # window: GQPE rel_indices / LRPE window_relative_position_index)
    num_blocks = sum(result['arch']['depths'])
    assert len(ckpt) == len(official) - 2 - num_blocks
    assert all(torch.isnan(ours[k]).all() for k in LN_NEW)
    dense_forward_ok(backbone_cfg, scope, dst, result['arch']['embed_dims'])


def test_stripmlp_official_checkpoint_transfers(golden, tmp_path):
    dst, result, official = convert_golden(golden, 'stripmlp_small-c40-random', tmp_path)
    backbone_cfg, scope = dense_backbone_cfg(
        'stripmlp', arch=result['arch'], img_size=result['img_size'], channel_patches=result['channel_patches'])
    model = load_through_init_cfg(backbone_cfg, scope, dst)
    ours, ckpt = check_transfer(model, dst, BN_NEW)
    assert len(ckpt) == len(official) - 2
    assert all(torch.isnan(ours[k]).all() for k in BN_NEW if ours[k].is_floating_point())
    dense_forward_ok(backbone_cfg, scope, dst, [40, 80, 160, 320])


SMALL_SWIN = dict(embed_dims=32, depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 8])


def random_classifier_checkpoint(config, arch, path, edit=None):
    """An mmpretrain-format checkpoint ({'state_dict', 'meta'}, as the Runner saves) of a classifier config with a
    small arch and every float tensor random (so that equality with the loaded model proves the copy)."""
    if '::' in config:  # a config of an installed OpenMMLab package
        from mmengine.hub import get_config
        cfg = get_config(config)
    else:
        cfg = Config.fromfile(config)
    cfg.model.backbone.arch = arch
    cfg.model.head.in_channels = arch['embed_dims'] * 8
    if edit is not None:
        edit(cfg)
    model = build(cfg.model, cfg.default_scope)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(torch.randn(tensor.shape, generator=generator))
    torch.save(dict(state_dict=model.state_dict(), meta=dict(mmpretrain_version='1.2.0')), path)
    return model


def test_swin_msmlp_checkpoint_transfers(tmp_path):
    dst = tmp_path / 'swin-msmlp_classifier.pth'
    random_classifier_checkpoint(config_path('swin-msmlp-tiny_16xb64_in1k.py'), SMALL_SWIN, dst)
    backbone_cfg, scope = dense_backbone_cfg('swin-msmlp', arch=SMALL_SWIN)
    model = load_through_init_cfg(backbone_cfg, scope, dst)
    ours, ckpt = check_transfer(model, dst, LN_NEW)
    report = model.pretrained_report  # SwinMSMLP loads through load_swin_pretrained (see its docstring)
    assert set(report.new) == LN_NEW and not report.unused and not report.resized
    # the only tensors not copied are the relative_position_index buffers, recomputed from the window size
    assert set(ckpt) - set(report.loaded) == set(report.derived)
    assert all(k.endswith('relative_position_index') for k in report.derived) and report.derived
    dense_forward_ok(backbone_cfg, scope, dst, [32, 64, 128, 256])


def test_swin_msmlp_from_mmpretrain_swin_checkpoint(tmp_path):
    """An unmodified mmpretrain Swin classifier initialises the hybrid: everything but the MS blocks (which replace
    the shifted-window blocks, pattern 'ms_shift') and norm0-norm2; the shifted-window blocks go unused."""
    dst = tmp_path / 'swin_classifier.pth'
    swin = random_classifier_checkpoint(
        'mmpretrain::swin_transformer/swin-tiny_16xb64_in1k.py', SMALL_SWIN, dst)
    backbone_cfg, scope = dense_backbone_cfg('swin-msmlp', arch=SMALL_SWIN)
    model = load_through_init_cfg(backbone_cfg, scope, dst)
    ours = model.state_dict()
    ms_keys = {k for k in ours if any(k.startswith(f'stages.{i}.blocks.1.') for i in range(4))}
    shifted_keys = {k[len('backbone.'):] for k in swin.state_dict()
                    if any(k.startswith(f'backbone.stages.{i}.blocks.1.') for i in range(4))}
    report = model.pretrained_report
    assert ms_keys and set(report.new) == ms_keys | LN_NEW
    assert set(report.unused) == shifted_keys
    ckpt = {k[len('backbone.'):]: v for k, v in swin.state_dict().items() if k.startswith('backbone.')}
    for key in report.loaded:
        assert torch.equal(ours[key], ckpt[key]), key


# Full-size key sets (meta device, no values): the released official checkpoints' keys, converted, cover every
# tensor of each shipped dense backbone but the new output norms, with equal shapes.
LISTINGS = [('msmlp', s, f'msmlp_{a}') for s, a in (('t', 'tiny'), ('s', 'small'), ('b', 'base'))] + \
           [('posmlp', s, f'posmlp_{a}') for s, a in (('t', 'tiny'), ('s', 'small'))] + \
           [('stripmlp', s, f'stripmlp_{a}') for s, a in (('lt', 'light_tiny'), ('t', 'tiny'), ('s', 'small'),
                                                          ('b', 'base'))]


@pytest.mark.parametrize('family,size,listing', LISTINGS, ids=[x[2] for x in LISTINGS])
def test_full_size_official_keys_cover_dense_backbone(golden, family, size, listing):
    from mmmixer.models.backbones.ms_mlp import convert_official_msmlp
    from mmmixer.models.backbones.pos_mlp import convert_official_posmlp
    from mmmixer.models.backbones.strip_mlp import convert_official_stripmlp
    converter = dict(msmlp=convert_official_msmlp, posmlp=convert_official_posmlp,
                     stripmlp=convert_official_stripmlp)[family]
    official, _ = official_state_from_listing(osp.join(golden, f'{listing}.keys.json'))
    converted = converter(official)
    ckpt = {k[len('backbone.'):]: v for k, v in converted['state_dict'].items() if k.startswith('backbone.')}
    backbone_cfg, scope = dense_backbone_cfg(family, size, init_cfg=None)
    with torch.device('meta'):
        ours = build(backbone_cfg, scope).state_dict()
    assert set(ours) - set(ckpt) == (BN_NEW if family == 'stripmlp' else LN_NEW)
    assert not set(ckpt) - set(ours)
    for key, value in ckpt.items():
        assert value.shape == ours[key].shape, key


@pytest.mark.parametrize('size,arch', [('t', 'tiny'), ('s', 'small'), ('b', 'base')])
def test_full_size_swin_msmlp_classifier_keys_cover_dense_backbone(size, arch):
    with torch.device('meta'):
        cfg = Config.fromfile(config_path(f'swin-msmlp-{arch}_16xb64_in1k.py'))
        classifier = build(cfg.model, cfg.default_scope).state_dict()
        backbone_cfg, scope = dense_backbone_cfg('swin-msmlp', size, init_cfg=None)
        ours = build(backbone_cfg, scope).state_dict()
    ckpt = {k[len('backbone.'):]: v for k, v in classifier.items() if k.startswith('backbone.')}
    assert set(ours) - set(ckpt) == LN_NEW and not set(ckpt) - set(ours)
    for key, value in ckpt.items():
        assert value.shape == ours[key].shape, key
