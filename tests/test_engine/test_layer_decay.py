"""mmmixer.LayerDecayOptimWrapperConstructor on a detector, a segmentor and a classifier."""
import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

from helpers_mmmixer import build_from_config

NANO = dict(embed_dims=32, depths=[1, 1, 2, 1])


def _nano(cfg):
    cfg.model.backbone.arch = NANO
    cfg.model.backbone.init_cfg = None
    if 'neck' in cfg.model and cfg.model.neck is not None and 'in_channels' in cfg.model.neck:
        cfg.model.neck.in_channels = [32, 64, 128, 256][-len(cfg.model.neck.in_channels):]
    if 'decode_head' in cfg.model:
        cfg.model.decode_head.in_channels = [32, 64, 128, 256]
        cfg.model.auxiliary_head.in_channels = 128


@pytest.mark.parametrize('name', ['mask-rcnn_msmlp-t_fpn_1x_coco.py',
                                  'msmlp-t_upernet_8xb2-160k_ade20k-512x512.py',
                                  'msmlp-tiny_8xb128_in1k.py'])
def test_layer_decay_scales_lr_by_depth(name):
    model, cfg = build_from_config(name, _nano if 'in1k' not in name else
                                   (lambda c: c.model.backbone.__setitem__('arch', NANO)))
    rate, base_lr = 0.5, 1e-3
    optim_cfg = dict(constructor='mmmixer.LayerDecayOptimWrapperConstructor',
                     optimizer=dict(type='AdamW', lr=base_lr, weight_decay=0.05),
                     paramwise_cfg=dict(layer_decay_rate=rate, norm_decay_mult=0.,
                                        custom_keys={'.gamma': dict(decay_mult=0.)}))
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        wrapper = build_optim_wrapper(model, optim_cfg)
    lr = {}
    decay = {}
    name_of = {id(p): n for n, p in model.named_parameters()}
    for group in wrapper.optimizer.param_groups:
        for p in group['params']:
            lr[name_of[id(p)]] = group['lr']
            decay[name_of[id(p)]] = group['weight_decay']
    n = 1 + 1 + 2 + 1 + 2  # sum(depths) + 2
    torch.testing.assert_close(lr['backbone.patch_embed.projection.weight'], base_lr * rate**(n - 1))
    torch.testing.assert_close(lr['backbone.stages.2.blocks.1.pwconv1.weight'], base_lr * rate**(n - 1 - 4))
    torch.testing.assert_close(lr['backbone.stages.1.downsample.projection.weight'], base_lr * rate**(n - 2))
    head = next(k for k in lr if not k.startswith('backbone.'))
    assert lr[head] == base_lr
    # the ordinary paramwise rules still apply
    assert decay['backbone.stages.0.blocks.0.gamma'] == 0.
    assert decay['backbone.stages.0.blocks.0.norm.weight'] == 0.
    assert decay['backbone.stages.0.blocks.0.pwconv1.weight'] == 0.05


def test_layer_decay_errors():
    with pytest.raises(ValueError, match=r'layer_decay_rate must be a number in \(0, 1\]'):
        build_optim_wrapper(torch.nn.Linear(2, 2), dict(
            constructor='mmmixer.LayerDecayOptimWrapperConstructor',
            optimizer=dict(type='SGD', lr=0.1), paramwise_cfg=dict(layer_decay_rate=1.5)))
    with pytest.raises(TypeError, match='Linear has no get_layer_depth'):
        build_optim_wrapper(torch.nn.Linear(2, 2), dict(
            constructor='mmmixer.LayerDecayOptimWrapperConstructor',
            optimizer=dict(type='SGD', lr=0.1), paramwise_cfg=dict(layer_decay_rate=0.9)))
