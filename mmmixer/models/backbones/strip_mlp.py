"""Strip-MLP backbone.

Cao et al., "Strip-MLP: Efficient Token Interaction for Vision MLP", ICCV 2023, arXiv 2307.11458
(https://arxiv.org/abs/2307.11458). Presets, layer shapes and defaults follow the official code Med-Process/Strip_MLP
@ 492d705 (``models/strip_mlp.py``, ``configs/smlp_*_imagenet1k.yaml``, ``config.py``; docs/papers.md, "Strip-MLP").
Written from those sources' behaviour; no code copied. Layout and API follow mmpretrain's ``ConvNeXt`` /
``SwinTransformer`` backbones.

Module overview (official name in brackets):

* :class:`StripMLPBlock` [``BasicBlock``]: ``x + DropPath(token_mixing(x))``, then ``x + DropPath(channel_mixing(x))``.
* :class:`StripTokenMixing` [``TokenMixing`` = ``dwsc`` + ``smlp_block``]: BN -> GELU -> depthwise 3x3, then
  1x1 conv -> BN -> GELU, the channels split in halves for :class:`CGSMM` and :class:`LSMM`, then a 1x1 conv.
* :class:`~mmmixer.models.layers.strip_mixing.CGSMM` [``StripMLP_Block.strip_mlp``]: the Cascade Group Strip Mixing
  Module (row strip MLP, fuse, column strip MLP, fuse); the only part whose weights depend on the training resolution.
* :class:`~mmmixer.models.layers.strip_mixing.LSMM` [``fc_h``/``fc_w``/``reweight``]: the Local Strip Mixing Module
  (3x7 and 7x3 depthwise strips, reweighted per channel).
* :class:`StripChannelMixing` [``ChannelMixing``]: depthwise 7x7 -> LayerNorm -> Linear -> GELU -> GRN -> Linear.
"""
import re
from typing import List, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmcv.cnn import build_activation_layer, build_norm_layer
from mmcv.cnn.bricks import DropPath
from mmcv.cnn.bricks.transformer import AdaptivePadding
from mmengine.model import ModuleList

from mmmixer.checkpoint import OfficialConverter
from mmmixer.registry import MODELS
from .base import MixerBackbone
from ..layers.strip_mixing import CGSMM, GRN, LSMM, pointwise_conv

__all__ = ['StripMLP', 'StripMLPBlock', 'convert_official_stripmlp']

DROP_PATH_MODES = ('uniform', 'linear')


class StripTokenMixing(nn.Module):
    """Token mixing of a Strip-MLP block (official ``TokenMixing``: ``dwsc`` then ``smlp_block``).

    BN -> GELU -> depthwise 3x3 (``dw_*``, pre-activation order as official), 1x1 conv (bias) -> BN -> GELU
    (``in_*``, official ``mlp``), first half of the channels through :class:`CGSMM`, second half through
    :class:`LSMM`, concatenated, 1x1 conv (``out_proj``, official ``fuse``).

    Shapes: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, channels: int, strip_length: int, patches: int, norm_cfg: dict, act_cfg: dict):
        super().__init__()
        self.dw_norm = build_norm_layer(norm_cfg, channels)[1]
        self.dw_act = build_activation_layer(act_cfg)
        self.dw_conv = nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False)
        self.in_conv = nn.Conv2d(channels, channels, 1)
        self.in_norm = build_norm_layer(norm_cfg, channels)[1]
        self.in_act = build_activation_layer(act_cfg)
        self.cgsmm = CGSMM(channels // 2, strip_length, patches, norm_cfg, act_cfg)
        self.lsmm = LSMM(channels // 2, act_cfg)
        self.out_proj = nn.Conv2d(channels, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dw_conv(self.dw_act(self.dw_norm(x)))
        x = self.in_act(pointwise_conv([x], self.in_conv, self.in_norm))  # = in_act(in_norm(in_conv(x)))
        global_half, local_half = x.chunk(2, dim=1)
        return pointwise_conv([self.cgsmm(global_half), self.lsmm(local_half)], self.out_proj)  # out_proj(cat)


class StripChannelMixing(nn.Module):
    """Channel mixing (official ``ChannelMixing``): depthwise 7x7 (no bias) -> LayerNorm -> Linear(C, r*C) ->
    GELU -> GRN(r*C) -> Linear(r*C, C).

    The official GRN is hard-coded to 3C, which only works because alpha = 3; here its width follows the hidden
    width ``r*C`` (identical for the official r = 3). The official ``drop`` layer is never called and is omitted.

    Shapes: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, channels: int, mlp_ratio: float, act_cfg: dict):
        super().__init__()
        hidden = int(mlp_ratio * channels)
        self.dw_conv = nn.Conv2d(channels, channels, 7, padding=3, groups=channels, bias=False)
        self.norm = nn.LayerNorm(channels)  # official nn.LayerNorm, eps 1e-5
        self.fc1 = nn.Linear(channels, hidden)
        self.act = build_activation_layer(act_cfg)
        self.grn = GRN(hidden)
        self.fc2 = nn.Linear(hidden, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dw_conv(x).permute(0, 2, 3, 1)  # (B, H, W, C)
        x = self.fc2(self.grn(self.act(self.fc1(self.norm(x)))))
        return x.permute(0, 3, 1, 2)


class StripMLPBlock(nn.Module):
    """Strip-MLP block (official ``BasicBlock``): ``x + DropPath(token_mixing(x))``, then
    ``x + DropPath(channel_mixing(x))``; no norm before either branch (BN sits inside the token mixing).

    Args:
        channels (int): channels C (even; ``C / 2`` divisible by ``patches``).
        strip_length (int): trained strip length of this stage (see :class:`CGSMM`).
        patches (int): CGSMM channel patches.
        mlp_ratio (float): channel-mixing expansion (paper's alpha). Default 3 (official).
        drop_path_rate (float): stochastic depth of both residual branches. Default 0.
        norm_cfg (dict): the BatchNorm layers. Default BN (official).
        act_cfg (dict): activation. Default GELU (official).
        with_cp (bool): gradient checkpointing (``use_reentrant=False``). Default False.

    Shapes: (B, C, H, W) -> (B, C, H, W), any H, W >= 1.
    """

    def __init__(self, channels: int, strip_length: int, patches: int, mlp_ratio: float = 3.,
                 drop_path_rate: float = 0., norm_cfg: dict = dict(type='BN'), act_cfg: dict = dict(type='GELU'),
                 with_cp: bool = False):
        super().__init__()
        self.token_mixing = StripTokenMixing(channels, strip_length, patches, norm_cfg, act_cfg)
        self.channel_mixing = StripChannelMixing(channels, mlp_ratio, act_cfg)
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0. else nn.Identity()
        self.with_cp = with_cp

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.token_mixing(x))
        return x + self.drop_path(self.channel_mixing(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.with_cp and x.requires_grad:
            return cp.checkpoint(self._forward, x, use_reentrant=False)
        return self._forward(x)


class StripMLPStage(nn.Module):
    """One stage: optional 2x2/stride-2 conv downsampling without norm (official ``merging{i}``), then blocks.

    Shapes: (B, C_in, H, W) -> (B, C, ceil(H/2), ceil(W/2)) (the caller pads odd maps), else (B, C, H, W).
    """

    def __init__(self, in_channels: int, channels: int, depth: int, downsample: bool, block_cfg: dict,
                 drop_path_rates: Sequence[float]):
        super().__init__()
        self.downsample = nn.Conv2d(in_channels, channels, 2, stride=2, bias=False) if downsample else None
        self.blocks = ModuleList(
            [StripMLPBlock(channels, drop_path_rate=drop_path_rates[j], **block_cfg) for j in range(depth)])


@MODELS.register_module()
class StripMLP(MixerBackbone):
    """Strip-MLP backbone: `Strip-MLP: Efficient Token Interaction for Vision MLP
    <https://arxiv.org/abs/2307.11458>`_ (ICCV 2023; official code: Med-Process/Strip_MLP, ``models/strip_mlp.py``).

    A 4x4/stride-4 conv stem without norm, four stages of :class:`StripMLPBlock` at strides 4/8/16/32 joined by
    2x2/stride-2 convs without norm, three cross-stage shortcuts (grouped 2x2/stride-2 convs): ``shortcut_1to2``
    [``conv_s1_28``] carries the stage-1 input to the stage-2 input, ``shortcut_1to3`` [``conv_s1_14``] carries
    that result on to the stage-3 input, ``shortcut_2to3`` [``conv_s2_14``] carries the stage-2 input to the
    stage-3 input (stages numbered from 0), and BatchNorm2d output norms ``norm{i}`` (``norm3`` is the official final
    norm). Differences from the official model, the training resolution, any input size and its cost analysis:
    docs/families.md, "Strip-MLP". Official checkpoints are converted on load (:func:`convert_official_stripmlp`).

    Presets (official yamls ``configs/smlp_*_alpha3_patch4_224_imagenet1k.yaml``; params with a 1000-class head:
    18,243,920 / 24,903,920 / 42,568,600 / 57,216,480):

    =====================  ===========  ===============  ===============================
    arch                   embed_dims   depths           channel patches (``'auto'``)
    =====================  ===========  ===============  ===============================
    light_tiny (t*, lt)    80           [2, 2, 6, 2]     2 / 2 / 2 / 2
    tiny (t)               80           [2, 2, 12, 2]    2 / 2 / 2 / 2
    small (s)              96           [2, 2, 18, 2]    4 / 4 / 4 / 4
    base (b)               112          [2, 2, 18, 2]    4 / 4 / 4 / 4
    =====================  ===========  ===============  ===============================

    Args:
        arch (str | dict): preset name (table above; also 'light-tiny', 'T*') or a dict with exactly the keys
            ``embed_dims`` (int: stage i has ``embed_dims * 2**i`` channels) and ``depths`` (4 ints). Default 'tiny'.
        img_size (int): training resolution (square, as official), a multiple of ``8 * patch_size``; fixes the
            strip lengths ``img_size / patch_size / 2**i`` of the CGSMM weights. Default 224 (official).
        patch_size (int): stem conv kernel and stride. Default 4 (official).
        channel_patches (str | int | Sequence[int]): CGSMM channel "patches" per stage. ``'auto'`` is the official
            rule (2 if the stage's channels % 80 == 0 else 4; needed to load official weights); an int or four ints
            override it. Default 'auto'.
        mlp_ratio (float): channel-mixing expansion (paper's alpha); the GRN width follows it. Default 3 (official).
        drop_path_rate (float): stochastic depth. Default 0.1 (official).
        drop_path_mode (str): ``'uniform'``: every block uses ``drop_path_rate`` (the official setting);
            ``'linear'``: increases linearly from 0 to ``drop_path_rate`` over all blocks. Default 'uniform'.
        with_cp (bool): gradient checkpointing per block (``use_reentrant=False``); the recomputation updates BN
            running statistics a second time per step (combine with ``norm_eval=True`` if that matters). Default
            False.
        norm_cfg (dict): config of every BatchNorm layer (e.g. ``dict(type='SyncBN')``). Default ``dict(type='BN')``
            (official).
        act_cfg (dict): activation. Default ``dict(type='GELU')`` (official).
        init_cfg (dict | list[dict], optional): default ``default_init_cfg`` = None: PyTorch's default init,
            trunc_normal(std=0.02) position tables and zero GRN (the official model has no ``_init_weights``).
        in_channels, out_indices, frozen_stages, norm_eval, gap_before_final_norm, pretrained, return_tuple:
            shared, see :class:`~mmmixer.models.backbones.base.MixerBackbone` (defaults 3, -1, -1, False, False, None,
            True);
            ``frozen_stages`` also freezes the shortcuts feeding frozen stages, and ``gap_before_final_norm=True``
            is the official head order BatchNorm2d -> mean.

    Shapes:
        input (B, in_channels, H, W) with H, W >= 32; output one tensor per ``out_indices`` entry,
        (B, C_i, ceil(H/2**(i+2)), ceil(W/2**(i+2))), or (B, C_i) with ``gap_before_final_norm``.

    Raises:
        ValueError: the shared argument errors (:class:`~mmmixer.models.backbones.base.MixerBackbone`), a custom
            arch without 4 stages or an int ``embed_dims``, ``img_size`` not a multiple of ``8 * patch_size``,
            channel patches that do not divide a stage's C/2, unknown ``drop_path_mode``, and at forward time an
            input that is not (B, in_channels, H >= 32, W >= 32).
    """
    _arch_fields = ('embed_dims', 'depths', 'img_size', 'channel_patches', 'in_channels')
    arch_zoo = {
        **dict.fromkeys(['light_tiny', 'light-tiny', 't*', 'lt'], {'embed_dims': 80, 'depths': [2, 2, 6, 2]}),
        **dict.fromkeys(['t', 'tiny'], {'embed_dims': 80, 'depths': [2, 2, 12, 2]}),
        **dict.fromkeys(['s', 'small'], {'embed_dims': 96, 'depths': [2, 2, 18, 2]}),
        **dict.fromkeys(['b', 'base'], {'embed_dims': 112, 'depths': [2, 2, 18, 2]}),
    }
    out_norm_layout = 'channels_first'  # BatchNorm2d output norms, pooled after the norm (official head order)
    #: None: PyTorch's default init of every layer (the official model has no ``_init_weights``)
    default_init_cfg = None

    def __init__(self,
                 arch: Union[str, dict] = 'tiny',
                 img_size: int = 224,
                 in_channels: int = 3,
                 patch_size: int = 4,
                 channel_patches: Union[str, int, Sequence[int]] = 'auto',
                 mlp_ratio: float = 3.,
                 drop_path_rate: float = 0.1,
                 drop_path_mode: str = 'uniform',
                 out_indices: Union[int, Sequence[int]] = -1,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 gap_before_final_norm: bool = False,
                 return_tuple: bool = True,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='GELU'),
                 pretrained: Optional[str] = None,
                 init_cfg: Optional[Union[dict, list]] = default_init_cfg):
        super().__init__(arch=arch, in_channels=in_channels, out_indices=out_indices, frozen_stages=frozen_stages,
                         norm_eval=norm_eval, gap_before_final_norm=gap_before_final_norm, init_cfg=init_cfg,
                         pretrained=pretrained, return_tuple=return_tuple)
        if self.num_stages != 4 or not isinstance(self.arch_settings['embed_dims'], int):
            raise ValueError(f'StripMLP: a custom arch needs an int embed_dims and 4 depths (the cross-stage '
                             f'shortcuts are defined for 4 stages), got {self.arch_settings}.')
        self.total_stride = patch_size * 2**(self.num_stages - 1)
        if img_size % self.total_stride:
            raise ValueError(f'StripMLP: img_size {img_size} must be a multiple of {self.total_stride} '
                             f'(patch_size * 8) so that every stage has an integer strip length.')
        self.img_size = img_size
        self.strip_lengths = [img_size // patch_size // 2**i for i in range(self.num_stages)]
        self.channel_patches = self._parse_patches(channel_patches)
        if drop_path_mode not in DROP_PATH_MODES:
            raise ValueError(f'StripMLP: drop_path_mode must be one of {DROP_PATH_MODES}, got {drop_path_mode!r}.')
        self.patch_size = patch_size

        dims = self.embed_dims
        # inputs and odd maps are zero-padded bottom/right before every strided conv (mmcv 'corner' padding)
        self.stem_pad = AdaptivePadding(kernel_size=patch_size, stride=patch_size, padding='corner')
        self.pad2 = AdaptivePadding(kernel_size=2, stride=2, padding='corner')
        self.patch_embed = nn.Conv2d(in_channels, dims[0], patch_size, stride=patch_size, bias=False)
        dpr = self._drop_path_rates(drop_path_rate, drop_path_mode)
        self.stages = ModuleList(
            StripMLPStage(dims[max(i - 1, 0)], dims[i], depth, i > 0,
                          dict(strip_length=self.strip_lengths[i], patches=self.channel_patches[i],
                               mlp_ratio=mlp_ratio, norm_cfg=norm_cfg, act_cfg=act_cfg, with_cp=with_cp), dpr[i])
            for i, depth in enumerate(self.depths))
        self.shortcut_1to2 = nn.Conv2d(dims[1], dims[2], 2, stride=2, groups=dims[1], bias=False)
        self.shortcut_1to3 = nn.Conv2d(dims[2], dims[3], 2, stride=2, groups=dims[2], bias=False)
        self.shortcut_2to3 = nn.Conv2d(dims[2], dims[3], 2, stride=2, groups=dims[2], bias=False)
        self._add_output_norms(norm_cfg)
        self._freeze_stages()

    def _parse_patches(self, channel_patches) -> List[int]:
        if channel_patches == 'auto':
            patches = [2 if c % 80 == 0 else 4 for c in self.embed_dims]
        elif isinstance(channel_patches, int):
            patches = [channel_patches] * self.num_stages
        elif isinstance(channel_patches, Sequence) and not isinstance(channel_patches, str) \
                and len(channel_patches) == self.num_stages and all(isinstance(p, int) for p in channel_patches):
            patches = list(channel_patches)
        else:
            raise ValueError(f"StripMLP: channel_patches must be 'auto', an int or {self.num_stages} ints, got "
                             f'{channel_patches!r}.')
        for c, p in zip(self.embed_dims, patches):
            if c % 2 or p < 1 or (c // 2) % p:
                raise ValueError(f'StripMLP: a stage with {c} channels gives its CGSMM {c / 2} channels, which '
                                 f'cannot be split into {p} channel patches (channel_patches={channel_patches!r}); '
                                 f'accepted: even stage channels whose half is divisible by the patches.')
        return patches

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, H, W) -> (B, C0, ceil(H/4), ceil(W/4)), channels_last memory format.

        channels_last from here on: PyTorch's CPU depthwise convs (3x3, 3x7, 7x3, 7x7 in every block) run 2-4x
        faster forward + backward on it, and the channel MLP's (B, H, W, C) views need no copy; the returned maps
        are made contiguous again (:meth:`forward_output`).
        """
        return self.patch_embed(self.stem_pad(x)).contiguous(memory_format=torch.channels_last)

    def forward_stage(self, i: int, x: torch.Tensor, cache: dict) -> torch.Tensor:
        """Downsampling, the cross-stage shortcut terms, then the blocks: (B, C_{i-1}, H, W) -> (B, C_i, ceil(H/2),
        ceil(W/2)). ``cache['shortcut{i}']`` holds the shortcut term added to stage i's input."""
        stage = self.stages[i]
        if stage.downsample is not None:
            x = stage.downsample(self.pad2(x))
        if i == 1:  # the stage-1 input feeds stage 2, and through one more conv stage 3
            cache['shortcut2'] = self.shortcut_1to2(self.pad2(x))
            cache['shortcut3'] = self.shortcut_1to3(self.pad2(cache['shortcut2']))
        elif i == 2:  # the stage-2 input, before its own shortcut term, feeds stage 3
            cache['shortcut3'] = cache['shortcut3'] + self.shortcut_2to3(self.pad2(x))
        if f'shortcut{i}' in cache:
            x = x + cache.pop(f'shortcut{i}')
        for block in stage.blocks:
            x = block(x)
        return x

    def _frozen_modules(self):
        """The base class's modules plus the cross-stage shortcut convs feeding frozen stages."""
        modules = super()._frozen_modules()
        if self.frozen_stages > 2:
            modules.append(self.shortcut_1to2)
        if self.frozen_stages > 3:
            modules += [self.shortcut_1to3, self.shortcut_2to3]
        return modules

    def _extra_layer_id(self, name: str) -> Optional[int]:
        """The shortcuts feeding stage k share the id of the block before stage k (layer-wise lr decay)."""
        shortcut = re.match(r'shortcut_\dto(\d)\.', name)
        return sum(self.depths[:int(shortcut.group(1))]) if shortcut else None


_BN = r'(weight|bias|running_mean|running_var|num_batches_tracked)'
_BLOCK = r'blocks([1-4])\.(\d+)\.'
# official key inside ``blocks{S}.{j}.`` -> ours inside ``backbone.stages.{S-1}.blocks.{j}.``
_BLOCK_RULES = [
    (r'token_mixing\.dwsc\.conv_merge\.BN\.' + _BN, r'token_mixing.dw_norm.\1'),
    (r'token_mixing\.dwsc\.conv_merge\.Conv\.weight', r'token_mixing.dw_conv.weight'),
    (r'token_mixing\.smlp_block\.mlp\.0\.(weight|bias)', r'token_mixing.in_conv.\1'),
    (r'token_mixing\.smlp_block\.mlp\.1\.' + _BN, r'token_mixing.in_norm.\1'),
    (r'token_mixing\.smlp_block\.proj_h\.(weight|bias)', r'token_mixing.cgsmm.row_mix.\1'),
    (r'token_mixing\.smlp_block\.(?:proj_w|proh_w)\.(weight|bias)', r'token_mixing.cgsmm.col_mix.\1'),
    (r'token_mixing\.smlp_block\.relate_pos_h\.embeddings_table', r'token_mixing.cgsmm.row_pos'),
    (r'token_mixing\.smlp_block\.relate_pos_w\.embeddings_table', r'token_mixing.cgsmm.col_pos'),
    (r'token_mixing\.smlp_block\.fuse_h\.weight', r'token_mixing.cgsmm.row_fuse.weight'),
    (r'token_mixing\.smlp_block\.BN\.' + _BN, r'token_mixing.cgsmm.row_norm.\1'),
    (r'token_mixing\.smlp_block\.fuse_w\.weight', r'token_mixing.cgsmm.col_fuse.weight'),
    (r'token_mixing\.smlp_block\.fc_h\.weight', r'token_mixing.lsmm.conv_3x7.weight'),
    (r'token_mixing\.smlp_block\.fc_w\.weight', r'token_mixing.lsmm.conv_7x3.weight'),
    (r'token_mixing\.smlp_block\.reweight\.(fc1|fc2)\.(weight|bias)', r'token_mixing.lsmm.reweight.\1.\2'),
    (r'token_mixing\.smlp_block\.fuse\.weight', r'token_mixing.out_proj.weight'),
    (r'channel_mixing\.conv_77\.weight', r'channel_mixing.dw_conv.weight'),
    (r'channel_mixing\.layer_norm\.(weight|bias)', r'channel_mixing.norm.\1'),
    (r'channel_mixing\.(fc1|fc2)\.(weight|bias)', r'channel_mixing.\1.\2'),
    (r'channel_mixing\.grn\.(gamma|beta)', r'channel_mixing.grn.\1'),
]


def _block_key(m) -> Optional[str]:
    for pattern, repl in _BLOCK_RULES:
        inner = re.fullmatch(pattern, m[3])
        if inner:
            return f'backbone.stages.{int(m[1]) - 1}.blocks.{m[2]}.' + inner.expand(repl)
    return NotImplemented  # a block key no rule knows: a leftover


#: The official checkpoint layout (Med-Process/Strip_MLP ``StripMLPNet``, MLP-DINO's backbone with its ``proh_w``
#: spelling; docs/papers.md, "Official checkpoints").
OFFICIAL = StripMLP.official = OfficialConverter(
    family='Strip-MLP', backbone='StripMLP', tool='tools/model_converters/stripmlp_to_mmmixer.py',
    signature=('patch_embed.weight', 'blocks1.0.token_mixing.smlp_block.proj_h.weight'),
    rules=[
        (r'patch_embed\.weight', r'backbone.patch_embed.weight'),
        (r'merging([123])\.weight', r'backbone.stages.\1.downsample.weight'),
        (r'conv_s1_28\.weight', r'backbone.shortcut_1to2.weight'),
        (r'conv_s1_14\.weight', r'backbone.shortcut_1to3.weight'),
        (r'conv_s2_14\.weight', r'backbone.shortcut_2to3.weight'),
        (r'norm\.' + _BN, r'backbone.norm3.\1'),
        (r'head\.(weight|bias)', r'head.fc.\1'),
        (_BLOCK + r'(.*)', _block_key),
    ],
    block_pattern=_BLOCK, stage_offset=1, container_keys=('model', ),
    container_help='an official Strip-MLP checkpoint stores its weights under "model".')


@OFFICIAL.converts
def convert_official_stripmlp(state_dict: dict) -> dict:
    """Map an official Strip-MLP ``state_dict`` (Med-Process/Strip_MLP ``StripMLPNet``, or MLP-DINO's backbone
    with its ``proh_w`` spelling) onto an mmmixer classifier.

    Key mapping (:data:`OFFICIAL`; docs/papers.md, "Official checkpoints"; official stage S = 1..4 is our stage S - 1):

    * ``patch_embed`` -> ``backbone.patch_embed``; ``merging{k}`` -> ``backbone.stages.{k}.downsample``;
      ``conv_s1_28`` / ``conv_s1_14`` / ``conv_s2_14`` -> ``backbone.shortcut_1to2`` / ``_1to3`` / ``_2to3``;
      ``norm`` -> ``backbone.norm3``; ``head`` -> ``head.fc``.
    * ``blocks{S}.{j}.`` -> ``backbone.stages.{S-1}.blocks.{j}.``, and inside a block:
      ``token_mixing.dwsc.conv_merge.{BN,Conv}`` -> ``token_mixing.{dw_norm,dw_conv}``;
      ``token_mixing.smlp_block.`` + ``mlp.0`` / ``mlp.1`` / ``fuse`` -> ``token_mixing.`` + ``in_conv`` /
      ``in_norm`` / ``out_proj``; ``proj_h`` / ``proj_w`` (MLP-DINO: ``proh_w``) / ``relate_pos_h.embeddings_table``
      / ``relate_pos_w.embeddings_table`` / ``fuse_h`` / ``BN`` / ``fuse_w`` -> ``cgsmm.`` + ``row_mix`` /
      ``col_mix`` / ``row_pos`` / ``col_pos`` / ``row_fuse`` / ``row_norm`` / ``col_fuse``; ``fc_h`` / ``fc_w`` /
      ``reweight.fc{1,2}`` -> ``lsmm.`` + ``conv_3x7`` / ``conv_7x3`` / ``reweight.fc{1,2}``;
      ``channel_mixing.`` + ``conv_77`` / ``layer_norm`` / ``fc1`` / ``fc2`` / ``grn`` -> ``channel_mixing.`` +
      ``dw_conv`` / ``norm`` / ``fc1`` / ``fc2`` / ``grn``.

    GRN ``gamma``/``beta`` are reshaped from (1, 1, 1, D) to (D,); every other tensor keeps its shape.

    Args:
        state_dict (dict): official weights (``checkpoint['model']``); a ``module.`` prefix is stripped. A missing
            ``head`` (MLP-DINO backbone) is fine.

    Returns:
        dict: ``state_dict`` (OrderedDict), ``arch`` (``{'embed_dims': int, 'depths': list}``), ``img_size`` (the
        training resolution read from the strip-MLP shapes) and ``channel_patches`` (``'auto'`` when the official
        rule holds, else the per-stage list). Build ``StripMLP(arch=..., img_size=..., channel_patches=...)``; the
        state dict loads with ``strict=True`` into the classifier of our configs and with ``prefix='backbone.'``
        into det/seg backbones.

    Raises:
        ValueError: a key that is not part of an official Strip-MLP model (e.g. another family's checkpoint; the
            message lists up to five), a tensor given twice (``proj_w`` and ``proh_w`` of the same block), or no
            Strip-MLP keys at all.
    """
    sd = OFFICIAL.strip(state_dict)
    out = OFFICIAL.convert_keys(sd, reshape=lambda k, v: v.reshape(-1) if re.search(r'\.grn\.(gamma|beta)$', k)
                                else v)
    depths = OFFICIAL.depths(sd) + [0] * 4
    embed = int(sd['patch_embed.weight'].shape[0])
    patch_size = int(sd['patch_embed.weight'].shape[-1])
    patches = []
    for s, depth in enumerate(depths[:4]):
        if depth == 0:
            raise ValueError(f'Strip-MLP checkpoint has no blocks in official stage {s + 1} (blocks{s + 1}.*).')
        grouped, length = sd[f'blocks{s + 1}.0.token_mixing.smlp_block.proj_h.weight'].shape[:2]
        patches.append(embed * 2**s // 2 // (grouped // length))
    rule = [2 if embed * 2**s % 80 == 0 else 4 for s in range(4)]
    length = int(sd['blocks1.0.token_mixing.smlp_block.proj_h.weight'].shape[1])
    return dict(state_dict=out, arch=dict(embed_dims=embed, depths=depths[:4]), img_size=length * patch_size,
                channel_patches='auto' if patches == rule else patches)
