"""Layer-wise learning-rate decay for any model whose backbone implements ``get_layer_depth``."""
from typing import List, Optional, Union

import torch.nn as nn
from mmengine.logging import MMLogger
from mmengine.optim import DefaultOptimWrapperConstructor

from mmmixer.registry import OPTIM_WRAPPER_CONSTRUCTORS

__all__ = ['LayerDecayOptimWrapperConstructor']


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class LayerDecayOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """mmengine's default constructor plus layer-wise lr decay, for classifiers, detectors and segmentors.

    mmdet's and mmseg's ``LearningRateDecayOptimizerConstructor`` only accept ConvNeXt/BEiT backbones (they sniff
    the class name and parse ConvNeXt parameter names), and mmpretrain's needs ``get_layer_depth`` on the top
    model, which detectors and segmentors lack. This constructor asks ``model.backbone.get_layer_depth(name,
    'backbone.')`` (every mmmixer backbone and mmpretrain's ViT/Swin/ConvNeXt/ResNet implement it) and treats
    everything outside the backbone (neck, heads) as the top layer.

    Each parameter's lr is ``base_lr * rate ** (num_layers - 1 - layer_id)`` times any multiplier from the
    standard ``paramwise_cfg`` rules (``custom_keys`` with ``lr_mult``/``decay_mult``, ``norm_decay_mult``,
    ``bias_decay_mult``, ``flat_decay_mult``, ...), which keep their mmengine meaning.

    Config::

        optim_wrapper = dict(
            constructor='mmmixer.LayerDecayOptimWrapperConstructor',
            optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05),
            paramwise_cfg=dict(layer_decay_rate=0.9, norm_decay_mult=0.,
                               custom_keys={'.gamma': dict(decay_mult=0.)}))

    ``paramwise_cfg.layer_decay_rate`` (float in (0, 1]) is required.

    Raises:
        ValueError: ``layer_decay_rate`` missing or outside (0, 1].
        TypeError: the model has no backbone with ``get_layer_depth``.
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: Optional[dict] = None):
        super().__init__(optim_wrapper_cfg, paramwise_cfg)
        rate = self.paramwise_cfg.get('layer_decay_rate')
        if not isinstance(rate, (int, float)) or not 0 < rate <= 1:
            raise ValueError('LayerDecayOptimWrapperConstructor: paramwise_cfg.layer_decay_rate must be a '
                             f'number in (0, 1], got {rate!r}.')
        self.layer_decay_rate = float(rate)

    def add_params(self, params: List[dict], module: nn.Module, prefix: str = '',
                   is_dcn_module: Optional[Union[int, float]] = None) -> None:
        super().add_params(params, module, prefix, is_dcn_module)
        if prefix:  # recursive calls from mmengine's add_params: the top-level call scales everything
            return
        backbone = getattr(module, 'backbone', None)
        owner, backbone_prefix = (backbone, 'backbone.') if backbone is not None else (module, '')
        get_layer_depth = getattr(owner, 'get_layer_depth', None)
        if get_layer_depth is None:
            raise TypeError(f'LayerDecayOptimWrapperConstructor: {type(owner).__name__} has no '
                            'get_layer_depth(param_name, prefix); use a backbone that defines it.')
        names = {id(p): n for n, p in module.named_parameters()}
        per_layer = {}
        for group in params:
            name = names[id(group['params'][0])]
            layer_id, num_layers = get_layer_depth(name, backbone_prefix)
            scale = self.layer_decay_rate**(num_layers - 1 - layer_id)
            group['lr'] = group.get('lr', self.base_lr) * scale
            per_layer[layer_id] = (scale, per_layer.get(layer_id, (0, 0))[1] + 1)
        MMLogger.get_current_instance().info(
            'layer-wise lr decay %.3g over %d layers: %s' % (self.layer_decay_rate, len(per_layer), ', '.join(
                f'{k}: x{v[0]:.3g} ({v[1]} tensors)' for k, v in sorted(per_layer.items()))))
