"""MS-MLP backbone (Mix-Shift-MLP).

Zheng et al., "Mixing and Shifting: Exploiting Global and Local Dependencies in Vision MLPs", arXiv 2202.06510
(https://arxiv.org/abs/2202.06510). Presets and defaults follow the official code JegZheng/MS-MLP @ a10d34d
(``models/ms_mlp.py``, ``configs/msmlp_*_patch4_shift5_224.yaml``; summarised in docs/papers.md, "MS-MLP"). Layout
and API follow mmpretrain's ``ConvNeXt``/``SwinTransformer`` backbones; the block is
:class:`~mmmixer.models.layers.MixShiftBlock`, the skeleton :class:`~mmmixer.models.backbones.base.MixerBackbone`.
"""
from typing import Optional, Sequence, Union

import torch
import torch.nn as nn
from mmcv.cnn.bricks.transformer import PatchEmbed
from mmengine.model import ModuleList

from mmmixer.checkpoint import OfficialConverter
from mmmixer.registry import MODELS
from .base import MixerBackbone
from ..layers.mix_shift import SHIFT_MODES, MixShiftBlock

__all__ = ['MSMLP', 'convert_official_msmlp']


class MSMLPStage(nn.Module):
    """One MS-MLP stage: optional 2x2/stride-2 conv downsampling with LayerNorm, then MS blocks.

    The official code keeps the downsampling at the end of the previous ``BasicLayer``; here it opens
    the stage it feeds (ConvNeXt layout), so stage ``i``'s output is the map dense heads use.

    Shapes: (B, C_in, H, W) -> (B, C, ceil(H/2), ceil(W/2)) with downsampling, else (B, C, H, W).
    """

    def __init__(self, in_channels: int, embed_dims: int, depth: int, downsample: bool,
                 block_cfg: dict, drop_path_rates: Sequence[float], norm_cfg: dict, with_cp: bool):
        super().__init__()
        # 'corner' padding: odd maps are padded bottom/right to even size (official: floor, at 224 equal).
        self.downsample = PatchEmbed(
            in_channels=in_channels, embed_dims=embed_dims, kernel_size=2, stride=2, padding='corner',
            norm_cfg=norm_cfg) if downsample else None
        self.blocks = ModuleList([
            MixShiftBlock(embed_dims, drop_path_rate=drop_path_rates[j], norm_cfg=norm_cfg,
                          with_cp=with_cp, **block_cfg) for j in range(depth)
        ])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.downsample is not None:
            x, (h, w) = self.downsample(x)  # (B, h*w, C), LayerNorm applied
            x = x.view(x.shape[0], h, w, -1).permute(0, 3, 1, 2)  # channels_last view, no copy
        for block in self.blocks:
            x = block(x)
        return x


@MODELS.register_module()
class MSMLP(MixerBackbone):
    """MS-MLP backbone: `Mixing and Shifting: Exploiting Global and Local Dependencies in Vision MLPs
    <https://arxiv.org/abs/2202.06510>`_ (official code: JegZheng/MS-MLP, ``models/ms_mlp.py``).

    A 4x4/stride-4 conv stem with LayerNorm, four stages of :class:`~mmmixer.models.layers.MixShiftBlock` at
    strides 4/8/16/32, 2x2/stride-2 conv + LayerNorm between stages, per-stage output norms. Differences from the
    official model, input sizes and the ``shift_mode`` borders: docs/families.md, "MS-MLP". Official checkpoints
    are converted on load (:func:`convert_official_msmlp`).

    Presets (official yamls ``configs/msmlp_{tiny,small,base}_patch4_shift5_224.yaml``; params with a
    1000-class head: 28,656,232 / 50,303,752 / 88,696,792):

    ========  ===========  ==============  ==========================
    arch      embed_dims   depths          drop_path_rate (official)
    ========  ===========  ==============  ==========================
    tiny      96           [3, 3, 9, 3]    0.1
    small     96           [3, 3, 27, 3]   0.4
    base      128          [3, 3, 27, 3]   0.5
    ========  ===========  ==============  ==========================

    Args:
        arch (str | dict): 'tiny' | 'small' | 'base' (also 't', 's', 'b'), or a dict with exactly the keys
            ``embed_dims`` (int, or a list of per-stage widths) and ``depths``. Default 'tiny'.
        patch_size (int): stem conv kernel and stride. Default 4 (official).
        shift_dist (Sequence[int]): per-group shifts. Default (-2, -1, 0, 1, 2) (official yaml).
        mix_size (Sequence[Sequence[int]], optional): per-stage, per-group depthwise kernel sizes. Default None:
            ``[[1,1,3,5,7], [1,3,3,5,7], [1,5,5,5,7], [1,7,7,7,7]]`` (official yaml ``MIX_SIZE``).
        mlp_ratio (float): channel-MLP expansion. Default 4 (official).
        layer_scale_init_value (float): layer scale init. Default 1e-6 (official).
        shift_mode (str): 'circular' (official ``torch.roll``) or 'zero' (zeros shifted in; our det/seg configs).
            Default 'circular'.
        drop_rate (float): dropout after the stem (official ``pos_drop``). Default 0.
        drop_path_rate (float): stochastic depth, linearly increasing over all blocks. Default 0.1 (official).
        with_cp (bool): gradient checkpointing per block (``use_reentrant=False``). Default False.
        norm_cfg (dict): LayerNorm config (channels-last). Default ``dict(type='LN', eps=1e-6)`` (official).
        init_cfg (dict | list[dict], optional): default ``default_init_cfg``: truncated normal (std 0.02) for
            Linear, ones/zeros for LayerNorm, PyTorch default for convs (official ``_init_weights``).
        in_channels, out_indices, frozen_stages, norm_eval, gap_before_final_norm, pretrained, return_tuple:
            shared, see :class:`~mmmixer.models.backbones.base.MixerBackbone` (defaults 3, -1, -1, False, False, None,
            True).

    Shapes:
        input (B, in_channels, H, W) with H, W >= 32; output one tensor per ``out_indices`` entry,
        (B, C_i, ceil(H/2**(i+2)), ceil(W/2**(i+2))), or (B, C_i) with ``gap_before_final_norm``.

    Raises:
        ValueError: the shared argument errors (:class:`~mmmixer.models.backbones.base.MixerBackbone`), unknown
            ``shift_mode``, ``mix_size`` rows not matching the stages or ``shift_dist``, and at forward time an input
            that is not (B, in_channels, H >= 32, W >= 32).
    """
    arch_zoo = {
        **dict.fromkeys(['t', 'tiny'], {'embed_dims': 96, 'depths': [3, 3, 9, 3]}),
        **dict.fromkeys(['s', 'small'], {'embed_dims': 96, 'depths': [3, 3, 27, 3]}),
        **dict.fromkeys(['b', 'base'], {'embed_dims': 128, 'depths': [3, 3, 27, 3]}),
    }
    default_mix_size = [[1, 1, 3, 5, 7], [1, 3, 3, 5, 7], [1, 5, 5, 5, 7], [1, 7, 7, 7, 7]]
    #: official ``_init_weights``: truncated normal (std 0.02) Linear, ones/zeros LayerNorm, PyTorch default convs
    default_init_cfg = [
        dict(type='TruncNormal', layer=['Linear'], std=.02, bias=0.),
        dict(type='Constant', layer=['LayerNorm'], val=1., bias=0.)
    ]

    def __init__(self,
                 arch: Union[str, dict] = 'tiny',
                 in_channels: int = 3,
                 patch_size: int = 4,
                 shift_dist: Sequence[int] = (-2, -1, 0, 1, 2),
                 mix_size: Optional[Sequence[Sequence[int]]] = None,
                 mlp_ratio: float = 4.,
                 layer_scale_init_value: float = 1e-6,
                 shift_mode: str = 'circular',
                 drop_rate: float = 0.,
                 drop_path_rate: float = 0.1,
                 out_indices: Union[int, Sequence[int]] = -1,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 gap_before_final_norm: bool = False,
                 return_tuple: bool = True,
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 pretrained: Optional[str] = None,
                 init_cfg: Optional[Union[dict, list]] = default_init_cfg):
        super().__init__(arch=arch, in_channels=in_channels, out_indices=out_indices, frozen_stages=frozen_stages,
                         norm_eval=norm_eval, gap_before_final_norm=gap_before_final_norm, init_cfg=init_cfg,
                         pretrained=pretrained, return_tuple=return_tuple)
        mix_size = [list(m) for m in (mix_size or self.default_mix_size)]
        if len(mix_size) != self.num_stages:
            raise ValueError(f'MSMLP: mix_size needs one row per stage ({self.num_stages}), got '
                             f'{len(mix_size)} rows: {mix_size}.')
        if shift_mode not in SHIFT_MODES:
            raise ValueError(f'MSMLP: shift_mode must be one of {SHIFT_MODES}, got {shift_mode!r}.')
        self.total_stride = patch_size * 2**(self.num_stages - 1)

        # stem: conv k=s=patch_size, then LayerNorm (official PatchEmbed with patch_norm=True)
        self.patch_embed = PatchEmbed(
            in_channels=in_channels, embed_dims=self.embed_dims[0], kernel_size=patch_size,
            stride=patch_size, padding='corner', norm_cfg=norm_cfg)
        self.drop_after_pos = nn.Dropout(p=drop_rate)
        dpr = self._drop_path_rates(drop_path_rate)
        self.stages = ModuleList(
            MSMLPStage(in_channels=self.embed_dims[max(i - 1, 0)], embed_dims=self.embed_dims[i],
                       depth=depth, downsample=i > 0,
                       block_cfg=dict(shift_dist=shift_dist, mix_size=mix_size[i], mlp_ratio=mlp_ratio,
                                      layer_scale_init_value=layer_scale_init_value, shift_mode=shift_mode),
                       drop_path_rates=dpr[i], norm_cfg=norm_cfg, with_cp=with_cp)
            for i, depth in enumerate(self.depths))
        self._add_output_norms(norm_cfg)
        self._freeze_stages()

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, H, W) -> (B, C0, ceil(H/4), ceil(W/4)), normalised, in channels_last memory.

        channels_last from here on: the MS blocks' depthwise convs and channel MLP run fastest on it
        (:class:`MixShiftBlock`); the returned maps are made contiguous again (:meth:`forward_output`)."""
        x, (h, w) = self.patch_embed(x)  # (B, h*w, C0)
        x = self.drop_after_pos(x)
        return x.view(x.shape[0], h, w, -1).permute(0, 3, 1, 2)  # channels_last view, no copy

    def forward_stage(self, i: int, x: torch.Tensor, cache: dict) -> torch.Tensor:
        """(B, C_{i-1}, H, W) -> (B, C_i, ceil(H/2), ceil(W/2)) (stage 0 keeps the size)."""
        return self.stages[i](x)


def _downsample_key(m) -> str:
    # official layers.{i}.downsample closes stage i; ours opens stage i + 1
    return f'backbone.stages.{int(m[1]) + 1}.downsample.{dict(proj="projection", norm="norm")[m[2]]}.{m[3]}'


#: The official checkpoint layout (JegZheng/MS-MLP ``MS_MLP``; docs/papers.md, "Official checkpoints").
OFFICIAL = MSMLP.official = OfficialConverter(
    family='MS-MLP', backbone='MSMLP', tool='tools/model_converters/msmlp_to_mmmixer.py',
    signature=('patch_embed.proj.weight', 'layers.*'),
    rules=[
        (r'patch_embed\.proj\.(.*)', r'backbone.patch_embed.projection.\1'),
        (r'patch_embed\.norm\.(.*)', r'backbone.patch_embed.norm.\1'),
        (r'layers\.(\d+)\.blocks\.(.*)', r'backbone.stages.\1.blocks.\2'),
        (r'layers\.(\d+)\.downsample\.(proj|norm)\.(.*)', _downsample_key),
        (r'norm\.(weight|bias)', r'backbone.norm{last}.\1'),
        (r'head\.(weight|bias)', r'head.fc.\1'),
    ],
    block_pattern=r'layers\.(\d+)\.blocks\.(\d+)\.', container_keys=('model', 'model_ema'),
    container_help='an official MS-MLP checkpoint stores its weights under "model".')


@OFFICIAL.converts
def convert_official_msmlp(state_dict: dict) -> dict:
    """Map an official MS-MLP ``state_dict`` (JegZheng/MS-MLP ``MS_MLP``) onto an mmmixer classifier.

    Key mapping (:data:`OFFICIAL`; docs/papers.md, "Official checkpoints"):

    ==========================================  ==============================================
    official                                    mmmixer (``ImageClassifier``)
    ==========================================  ==============================================
    ``patch_embed.proj.*``                      ``backbone.patch_embed.projection.*``
    ``patch_embed.norm.*``                      ``backbone.patch_embed.norm.*``
    ``layers.{i}.blocks.{j}.*``                 ``backbone.stages.{i}.blocks.{j}.*``
    ``layers.{i}.downsample.proj.*``            ``backbone.stages.{i+1}.downsample.projection.*``
    ``layers.{i}.downsample.norm.*``            ``backbone.stages.{i+1}.downsample.norm.*``
    ``norm.*``                                  ``backbone.norm{last}.*``
    ``head.*``                                  ``head.fc.*``
    ==========================================  ==============================================

    Args:
        state_dict (dict): official weights (``checkpoint['model']``); a ``module.`` prefix is stripped.

    Returns:
        dict: ``{'state_dict': OrderedDict, 'arch': {'embed_dims': int, 'depths': list}}``; the state dict
        loads with ``strict=True`` into the classifier of our configs, and with ``prefix='backbone.'`` into
        det/seg backbones.

    Raises:
        ValueError: not an official MS-MLP checkpoint, or a key that is not part of one (e.g. another family's
            checkpoint); the message lists up to five of them.
    """
    sd = OFFICIAL.strip(state_dict)
    depths = OFFICIAL.depths(sd)
    out = OFFICIAL.convert_keys(sd)
    return dict(state_dict=out, arch=dict(embed_dims=int(sd['patch_embed.proj.weight'].shape[0]), depths=depths))
