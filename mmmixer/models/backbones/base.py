"""Behaviour shared by the mmmixer backbones."""
from typing import List

import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = ['FrozenStagesMixin']


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
