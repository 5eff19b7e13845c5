"""MS-MLP backbone (Mix-Shift-MLP).

Zheng et al., "Mixing and Shifting: Exploiting Global and Local Dependencies in Vision MLPs",
arXiv 2202.06510. Presets and defaults follow the official code JegZheng/MS-MLP @ a10d34d
(``models/ms_mlp.py``, ``configs/msmlp_*_patch4_shift5_224.yaml``); see ``../shared/reference/papers.md`` §1.
Layout and API follow mmpretrain's ``ConvNeXt``/``SwinTransformer`` backbones.
"""
import re
from typing import Optional, Sequence, Union

import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks.transformer import PatchEmbed
from mmengine.model import BaseModule, ModuleList

from mmmixer.registry import MODELS
from .base import CheckpointFitMixin, FrozenStagesMixin
from ..layers.mix_shift import SHIFT_MODES, MixShiftBlock
from ..utils import check_input, normalize_out_indices, parse_arch

__all__ = ['MSMLP']


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
            x = x.transpose(1, 2).reshape(x.shape[0], -1, h, w)
        for block in self.blocks:
            x = block(x)
        return x


@MODELS.register_module()
class MSMLP(CheckpointFitMixin, FrozenStagesMixin, BaseModule):
    """MS-MLP backbone: `Mixing and Shifting: Exploiting Global and Local Dependencies in Vision MLPs
    <https://arxiv.org/abs/2202.06510>`_.

    A 4x4/stride-4 conv stem with LayerNorm, four stages of :class:`MixShiftBlock` at strides 4/8/16/32
    (2x2/stride-2 conv + LayerNorm between stages). Modified from the official implementation
    (JegZheng/MS-MLP ``models/ms_mlp.py``): the size asserts are gone, per-stage output norms are added for
    dense prediction, and the downsampling belongs to the stage it feeds (the converter
    ``tools/model_converters/msmlp_to_mmmixer.py`` maps official keys).

    Presets (official yamls ``configs/msmlp_{tiny,small,base}_patch4_shift5_224.yaml``; params with a
    1000-class head: 28,656,232 / 50,303,752 / 88,696,792):

    ========  ===========  ==============  ==========================
    arch      embed_dims   depths          drop_path_rate (official)
    ========  ===========  ==============  ==========================
    tiny      96           [3, 3, 9, 3]    0.1
    small     96           [3, 3, 27, 3]   0.4
    base      128          [3, 3, 27, 3]   0.5
    ========  ===========  ==============  ==========================

    Input sizes: any H, W >= 32 (the total stride; a smaller input raises ``ValueError``). Sizes that are not
    multiples of 32 are padded bottom/right by the stem and each downsampling (mmcv ``PatchEmbed``
    'corner' padding), so stage maps are ceil(H/4), ceil(H/8), ceil(H/16), ceil(H/32); e.g. 97x131 gives
    25x33, 13x17, 7x9, 4x5. The official code floors instead; both agree on multiples of 32, including 224.

    Borders: with ``shift_mode='circular'`` (official, used for ImageNet and the golden test) the channel
    shifts wrap around the map, so the |shift| <= 2 border tokens see the opposite edge. Our det/seg configs
    use ``shift_mode='zero'`` (zeros shifted in), which keeps features translation-equivariant and
    independent of how much padding mmdet/mmseg add; the weights are the same, only the two-token border
    strip of each map differs.

    Args:
        arch (str | dict): 'tiny' | 'small' | 'base' (also 't', 's', 'b'), or a dict with exactly the keys
            ``embed_dims`` (int: stage i has ``embed_dims * 2**i`` channels, or a list of per-stage
            channels) and ``depths`` (list of blocks per stage). Default 'tiny'.
        in_channels (int): input channels. Default 3.
        patch_size (int): stem conv kernel and stride. Default 4 (official).
        shift_dist (Sequence[int]): per-group shifts. Default (-2, -1, 0, 1, 2) (official yaml).
        mix_size (Sequence[Sequence[int]]): per-stage, per-group depthwise kernel sizes. Default
            ``[[1,1,3,5,7], [1,3,3,5,7], [1,5,5,5,7], [1,7,7,7,7]]`` (official yaml ``MIX_SIZE``).
        mlp_ratio (float): channel-MLP expansion. Default 4 (official ``config.py``).
        layer_scale_init_value (float): layer scale init. Default 1e-6 (official).
        shift_mode (str): 'circular' (official) or 'zero'; see "Borders". Default 'circular'.
        drop_rate (float): dropout after the stem (official ``pos_drop``). Default 0.
        drop_path_rate (float): stochastic depth, linearly increasing over all blocks. Default 0.1
            (official code default and the tiny yaml).
        out_indices (int | Sequence[int]): stages to return; negative values count from the end.
            Default -1 (the last stage).
        frozen_stages (int): -1 freezes nothing, 0 the stem, k the stem and the first k stages (mmdet ResNet
            semantics); frozen parts stay in eval mode. Default -1.
        norm_eval (bool): keep BatchNorm layers (if any, e.g. from a custom ``norm_cfg``) in eval mode
            during training. MS-MLP itself only uses LayerNorm. Default False.
        with_cp (bool): gradient checkpointing per block (``use_reentrant=False``). Default False.
        gap_before_final_norm (bool): True (classification): each returned stage is average-pooled and then
            normalised, (B, C); this is the official head order pool -> LayerNorm -> Linear. False (dense
            prediction): each returned stage is normalised per position, (B, C, H, W). Default True.
        norm_cfg (dict): LayerNorm config (channels-last). Default ``dict(type='LN', eps=1e-6)`` (official).
        init_cfg (dict | list[dict], optional): initialisation; default truncated normal (std 0.02) for
            Linear and ones/zeros for LayerNorm, PyTorch default for convs (official ``_init_weights``).

    Returns (forward):
        tuple[Tensor]: one tensor per ``out_indices`` entry, (B, C_i) or (B, C_i, H_i, W_i).

    Raises:
        ValueError: unknown arch name, custom arch with wrong keys, ``out_indices``/``frozen_stages`` out of
            range, unknown ``shift_mode``, ``mix_size`` rows not matching the stages or ``shift_dist``, and
            at forward time an input that is not (B, in_channels, H >= 32, W >= 32).
    """
    arch_zoo = {
        **dict.fromkeys(['t', 'tiny'], {'embed_dims': 96, 'depths': [3, 3, 9, 3]}),
        **dict.fromkeys(['s', 'small'], {'embed_dims': 96, 'depths': [3, 3, 27, 3]}),
        **dict.fromkeys(['b', 'base'], {'embed_dims': 128, 'depths': [3, 3, 27, 3]}),
    }
    default_mix_size = [[1, 1, 3, 5, 7], [1, 3, 3, 5, 7], [1, 5, 5, 5, 7], [1, 7, 7, 7, 7]]

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
                 gap_before_final_norm: bool = True,
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 init_cfg: Optional[Union[dict, list]] = [
                     dict(type='TruncNormal', layer=['Linear'], std=.02, bias=0.),
                     dict(type='Constant', layer=['LayerNorm'], val=1., bias=0.)
                 ]):
        super().__init__(init_cfg=init_cfg)
        arch = parse_arch(arch, self.arch_zoo, {'embed_dims', 'depths'}, 'MSMLP')
        self.depths = [int(d) for d in arch['depths']]
        self.num_stages = len(self.depths)
        dims = arch['embed_dims']
        self.embed_dims = [int(dims) * 2**i for i in range(self.num_stages)] \
            if isinstance(dims, int) else [int(d) for d in dims]
        if len(self.embed_dims) != self.num_stages:
            raise ValueError(f'MSMLP: arch embed_dims {dims} must be an int or give one width per stage '
                             f'({self.num_stages} stages from depths {self.depths}).')
        mix_size = [list(m) for m in (mix_size or self.default_mix_size)]
        if len(mix_size) != self.num_stages:
            raise ValueError(f'MSMLP: mix_size needs one row per stage ({self.num_stages}), got '
                             f'{len(mix_size)} rows: {mix_size}.')
        if shift_mode not in SHIFT_MODES:
            raise ValueError(f'MSMLP: shift_mode must be one of {SHIFT_MODES}, got {shift_mode!r}.')
        self.in_channels = in_channels
        self.total_stride = patch_size * 2**(self.num_stages - 1)
        self.out_indices = normalize_out_indices(out_indices, self.num_stages, 'MSMLP')
        if not -1 <= frozen_stages <= self.num_stages:
            raise ValueError(f'MSMLP: frozen_stages must be in [-1, {self.num_stages}] (-1: none, 0: stem, '
                             f'k: stem + first k stages), got {frozen_stages}.')
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.gap_before_final_norm = gap_before_final_norm

        # stem: conv k=s=patch_size, then LayerNorm (official PatchEmbed with patch_norm=True)
        self.patch_embed = PatchEmbed(
            in_channels=in_channels, embed_dims=self.embed_dims[0], kernel_size=patch_size,
            stride=patch_size, padding='corner', norm_cfg=norm_cfg)
        self.drop_after_pos = nn.Dropout(p=drop_rate)

        dpr = torch.linspace(0, drop_path_rate, sum(self.depths), device='cpu').tolist()
        self.stages = ModuleList()
        for i, depth in enumerate(self.depths):
            start = sum(self.depths[:i])
            self.stages.append(
                MSMLPStage(
                    in_channels=self.embed_dims[max(i - 1, 0)], embed_dims=self.embed_dims[i],
                    depth=depth, downsample=i > 0,
                    block_cfg=dict(shift_dist=shift_dist, mix_size=mix_size[i], mlp_ratio=mlp_ratio,
                                   layer_scale_init_value=layer_scale_init_value,
                                   shift_mode=shift_mode),
                    drop_path_rates=dpr[start:start + depth], norm_cfg=norm_cfg, with_cp=with_cp))
        for i in self.out_indices:
            self.add_module(f'norm{i}', build_norm_layer(norm_cfg, self.embed_dims[i])[1])
        self._freeze_stages()

    def forward(self, x: torch.Tensor) -> tuple:
        """(B, in_channels, H, W) -> tuple of (B, C_i) or (B, C_i, ceil(H/s_i), ceil(W/s_i))."""
        check_input(x, self.in_channels, self.total_stride, 'MSMLP')
        x, (h, w) = self.patch_embed(x)  # (B, h*w, C0), normalised
        x = self.drop_after_pos(x)
        x = x.transpose(1, 2).reshape(x.shape[0], -1, h, w)
        outs = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in self.out_indices:
                norm = getattr(self, f'norm{i}')
                if self.gap_before_final_norm:
                    outs.append(norm(x.mean(dim=(2, 3))))  # (B, C)
                else:
                    outs.append(norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2).contiguous())
        return tuple(outs)

    def get_layer_depth(self, param_name: str, prefix: str = ''):
        """Layer id of a parameter for layer-wise learning-rate decay (mmpretrain Swin convention).

        ``num_layers = sum(depths) + 2``: the stem is layer 0, block j of stage i is
        ``sum(depths[:i]) + j + 1``, a stage's downsampling shares the id of the block before it, and
        everything else (output norms, head, parameters outside ``prefix``) is the last layer.

        Args:
            param_name (str): full parameter name, e.g. ``'backbone.stages.1.blocks.0.pwconv1.weight'``.
            prefix (str): the backbone's prefix in ``param_name``, e.g. ``'backbone.'``.

        Returns:
            tuple[int, int]: (layer id, number of layers).
        """
        num_layers = sum(self.depths) + 2
        if not param_name.startswith(prefix):
            return num_layers - 1, num_layers
        name = param_name[len(prefix):]
        if name.startswith('patch_embed'):
            return 0, num_layers
        match = re.match(r'stages\.(\d+)\.(blocks\.(\d+)|downsample)', name)
        if match is None:
            return num_layers - 1, num_layers
        stage = int(match.group(1))
        if match.group(3) is None:  # downsample
            return sum(self.depths[:stage]), num_layers
        return sum(self.depths[:stage]) + int(match.group(3)) + 1, num_layers


def convert_official_msmlp(state_dict: dict) -> dict:
    """Map an official MS-MLP ``state_dict`` (JegZheng/MS-MLP ``MS_MLP``) onto an mmmixer classifier.

    Key mapping (papers.md §1.6 lists the official keys):

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
        ValueError: a key that is not part of an official MS-MLP model (e.g. another family's
            checkpoint); the message lists up to five of them.
    """
    from collections import OrderedDict
    sd = {k[7:] if k.startswith('module.') else k: v for k, v in state_dict.items()}
    if 'patch_embed.proj.weight' not in sd or not any(k.startswith('layers.') for k in sd):
        raise ValueError('Not an official MS-MLP checkpoint: expected keys "patch_embed.proj.weight" and '
                         f'"layers.*"; found e.g. {sorted(sd)[:5]}.')
    depths = []
    for k in sd:
        m = re.match(r'layers\.(\d+)\.blocks\.(\d+)\.', k)
        if m:
            i, j = int(m.group(1)), int(m.group(2))
            depths.extend([0] * (i + 1 - len(depths)))
            depths[i] = max(depths[i], j + 1)
    last = len(depths) - 1
    rules = [
        (r'patch_embed\.proj\.(.*)', lambda m: f'backbone.patch_embed.projection.{m[1]}'),
        (r'patch_embed\.norm\.(.*)', lambda m: f'backbone.patch_embed.norm.{m[1]}'),
        (r'layers\.(\d+)\.blocks\.(.*)', lambda m: f'backbone.stages.{m[1]}.blocks.{m[2]}'),
        (r'layers\.(\d+)\.downsample\.proj\.(.*)',
         lambda m: f'backbone.stages.{int(m[1]) + 1}.downsample.projection.{m[2]}'),
        (r'layers\.(\d+)\.downsample\.norm\.(.*)',
         lambda m: f'backbone.stages.{int(m[1]) + 1}.downsample.norm.{m[2]}'),
        (r'norm\.(weight|bias)', lambda m: f'backbone.norm{last}.{m[1]}'),
        (r'head\.(weight|bias)', lambda m: f'head.fc.{m[1]}'),
    ]
    out, leftover = OrderedDict(), []
    for key, value in sd.items():
        for pattern, repl in rules:
            m = re.fullmatch(pattern, key)
            if m:
                out[repl(m)] = value
                break
        else:
            leftover.append(key)
    if leftover:
        raise ValueError(f'{len(leftover)} keys of the checkpoint are not part of an official MS-MLP model, '
                         f'e.g. {leftover[:5]}; is it another family\'s checkpoint?')
    arch = dict(embed_dims=int(sd['patch_embed.proj.weight'].shape[0]), depths=depths)
    return dict(state_dict=out, arch=arch)
