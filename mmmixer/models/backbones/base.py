"""Behaviour shared by the mmmixer backbones."""
from typing import Any, List, Sequence

import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmmixer.utils.checkpoint import check_state_dict_fits

__all__ = ['FrozenStagesMixin', 'CheckpointFitMixin']


class FrozenStagesMixin:
    """``frozen_stages`` and ``norm_eval`` for a backbone laid out as ``patch_embed``, ``stages[i]``, ``norm{i}``.

    mmdet ResNet semantics: ``frozen_stages=-1`` freezes nothing, ``0`` the stem (``patch_embed``), ``k`` the stem,
    the first ``k`` stages and their output norms. Frozen modules have ``requires_grad=False`` and stay in eval
    mode through ``train()``; with ``norm_eval=True`` every BatchNorm stays in eval mode too (its running statistics
    are not updated). The host class sets ``frozen_stages``, ``norm_eval``, ``out_indices``, ``patch_embed`` and
    ``stages``; a family with extra cross-stage modules extends :meth:`_frozen_modules`.
    """

    def _frozen_modules(self) -> List[nn.Module]:
        modules = [self.patch_embed] if self.frozen_stages >= 0 else []
        for i in range(self.frozen_stages):
            modules.append(self.stages[i])
            if i in self.out_indices:
                modules.append(getattr(self, f'norm{i}'))
        return modules

    def _freeze_stages(self) -> None:
        for module in self._frozen_modules():
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True):
        """Set train/eval mode, keeping frozen parts (and BatchNorms if ``norm_eval``) in eval mode."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self


class CheckpointFitMixin:
    """Refuse a checkpoint file of another arch with one clear error instead of a silent partial load.

    mmengine loads ``load_from`` and ``init_cfg=dict(type='Pretrained', ...)`` with ``strict=False``: tensors that
    fit are copied, the rest is reported in a warning, and training goes on with a half-initialised backbone. Before
    anything of the backbone is copied, :meth:`_load_from_state_dict` calls
    :func:`mmmixer.utils.checkpoint.check_state_dict_fits`, which raises ``CheckpointLoadError`` naming the file,
    this backbone's arch (``_arch_fields``) and the missing / unexpected / mis-shaped keys when the tensors come
    from a checkpoint file read by mmengine's loader. Output norms ``norm{i}`` may be missing or extra (classifier
    checkpoint -> dense-prediction backbone). A family whose modules adapt some tensors on load (PosMLP's window
    resizing) declares them in :meth:`_tolerate_on_load` and ``_dropped_on_load``.
    """

    #: attributes shown as "the expected arch" in the error message
    _arch_fields: Sequence[str] = ('embed_dims', 'depths', 'in_channels')
    #: checkpoint key suffixes the backbone drops on load (derived buffers of older layouts)
    _dropped_on_load: Sequence[str] = ()

    def arch_repr(self) -> str:
        """E.g. ``'MSMLP(embed_dims=[32, 64, 128, 256], depths=[1, 1, 2, 1], in_channels=3)'``."""
        fields = ', '.join(f'{name}={getattr(self, name)!r}' for name in self._arch_fields if hasattr(self, name))
        return f'{type(self).__name__}({fields})'

    def _tolerate_on_load(self, key: str, checkpoint_tensor: Any, model_tensor: Any) -> bool:
        """Whether a shape difference of ``key`` is adapted on load (none by default)."""
        return False

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        check_state_dict_fits(self, state_dict, prefix, self.arch_repr(), ignore_unexpected=self._dropped_on_load,
                              tolerate=self._tolerate_on_load)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

