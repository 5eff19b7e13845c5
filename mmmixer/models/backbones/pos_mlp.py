"""PosMLP backbone (positional spatial gating with LRPE / GQPE).

Wang et al., "Parameterization of Cross-Token Relations with Relative Positional Encoding for Vision MLP",
ACM MM 2022, arXiv 2207.07284 (https://arxiv.org/abs/2207.07284). Presets, defaults and the checkpoint layout follow
the official code Zhicaiwww/PosMLP @ 654f020 (``models/posmlp.py``, ``models/posmlp2D.py``,
``models/patch_downsample.py``, ``config/PosMLP_{T,S}.yaml``; docs/papers.md, "PosMLP"). Written from the paper and
the behaviour of those files; no code copied. The token mixing (GQPE / LRPE maps, windows) is in
:mod:`mmmixer.models.layers.positional_maps`; layout and API follow mmpretrain's ``ConvNeXt``/``SwinTransformer``.
"""
import math
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmcv.cnn import build_activation_layer, build_norm_layer
from mmcv.cnn.bricks import DropPath
from mmengine.model import ModuleList

from mmmixer.checkpoint import OfficialConverter
from mmmixer.registry import MODELS
from .base import MixerBackbone
from ..layers.positional_maps import (DERIVED_BUFFERS, LearnedPosMap, QuadraticPosMap, window_partition,
                                      window_reverse)

__all__ = ['PosMLP', 'convert_official_posmlp']

POS_TYPES = ('gqpe', 'lrpe')


class PosMLPBlock(nn.Module):
    """PosMLP block (official ``PosMLPLayer`` with ``PoSGU``): a gMLP block whose spatial gating unit mixes tokens
    with a relative positional map.

    ``x -> LN -> fc1 (C -> rC) -> GELU -> split into halves u, v -> u' = pos_map(u) -> u' * v -> fc2 (rC/2 -> C)
    -> Dropout -> DropPath -> + x``. There is no norm on ``u`` (the official gating unit ignores its norm
    argument). Official names: ``proj_c_e`` = ``fc1``, ``proj_c_s`` = ``fc2``, ``gate_unit.pos`` = ``pos_map``.

    Args:
        embed_dims (int): channels C.
        window_size (int): token-mixing window side w.
        gamma (int): channel groups of the positional map; must divide the gated width ``int(mlp_ratio*C) // 2``.
        mlp_ratio (float): hidden width ``int(mlp_ratio * C)``, must be even. Default 4.
        pos_type (str): 'gqpe' (:class:`QuadraticPosMap`) or 'lrpe' (:class:`LearnedPosMap`). Default 'gqpe'.
        generalized (bool): GQPE spread form (ignored by LRPE, rejected by the backbone). Default True.
        drop_rate (float): dropout after ``fc2`` (official ``drop``). Default 0.
        drop_path_rate (float): stochastic depth. Default 0.
        norm_cfg (dict): channels-last norm. Default LN, eps 1e-6 (official).
        act_cfg (dict): activation. Default GELU (official).
        with_cp (bool): gradient checkpointing (``use_reentrant=False``). Default False.

    Shapes:
        forward(x, pad): x (B, nh, nw, N, C) windows, ``pad`` (bottom, right) padding of the last window row/col
        -> (B, nh, nw, N, C).

    Raises:
        ValueError: odd hidden width, or a gated width not divisible by ``gamma``.
    """

    def __init__(self,
                 embed_dims: int,
                 window_size: int,
                 gamma: int,
                 mlp_ratio: float = 4.,
                 pos_type: str = 'gqpe',
                 generalized: bool = True,
                 drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 act_cfg: dict = dict(type='GELU'),
                 with_cp: bool = False):
        super().__init__()
        hidden = int(mlp_ratio * embed_dims)
        if hidden % 2 or (hidden // 2) % gamma:
            raise ValueError(f'PosMLP block: the hidden width int(mlp_ratio * embed_dims) = int({mlp_ratio} * '
                             f'{embed_dims}) = {hidden} must be even and its gated half ({hidden // 2}) divisible '
                             f'by gamma={gamma}; accepted: arch gammas / mlp_ratios such that each stage\'s '
                             'int(mlp_ratio * width) / 2 is a multiple of its gamma.')
        self.with_cp = with_cp
        self.norm = build_norm_layer(norm_cfg, embed_dims)[1]
        self.fc1 = nn.Linear(embed_dims, hidden)
        self.act = build_activation_layer(act_cfg)
        if pos_type == 'gqpe':
            self.pos_map = QuadraticPosMap(window_size, gamma, generalized=generalized)
        else:
            self.pos_map = LearnedPosMap(window_size, gamma)
        self.fc2 = nn.Linear(hidden // 2, embed_dims)
        self.drop = nn.Dropout(drop_rate)
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0. else nn.Identity()

        self.gamma = gamma

    def _grouped(self, t: torch.Tensor, dim: int) -> torch.Tensor:
        """Reorder the hidden channels along ``dim`` of ``t`` (fc1 rows: dim 0 over both halves; fc2 columns:
        dim 1) from the official interleaved order (channel ``c = v * gamma + s``) to group-major (``s * V + v``).

        A transpose of the weights, not of the activations; its backward is a transpose too (an index gather
        would backpropagate through a slow scatter-add). Checkpoints keep the official layout."""
        shape = t.shape
        if dim == 0:  # (2 C_u, ...) -> halves (2, V, gamma, ...)
            t = t.reshape(2, -1, self.gamma, *shape[1:]).transpose(1, 2)
        else:  # (C, C_u) -> (C, V, gamma)
            t = t.reshape(shape[0], -1, self.gamma).transpose(1, 2)
        return t.reshape(shape)

    def _forward(self, x: torch.Tensor, pad: Tuple[int, int]) -> torch.Tensor:
        # Same function as ``fc2(pos_map(u) * v)`` with ``u, v = act(fc1(norm(x))).chunk(2, -1)`` (official), laid
        # out channels-first with the hidden channels grouped, so that fc1, the token mixing and fc2 are three
        # matrix products on views, with no activation copy: fc1 computes (2 C_u, T) = W1 @ tokens^T, the mixing
        # of group s is (V * windows, N) @ P_s^T, fc2 computes (T, C) = gated^T @ W2^T.
        shape = x.shape  # (B, nh, nw, N, C)
        tokens = self.norm(x).reshape(-1, shape[-1])  # (T, C), T = B * nh * nw * N
        hidden = torch.addmm(self._grouped(self.fc1.bias, 0).unsqueeze(1), self._grouped(self.fc1.weight, 0),
                             tokens.t())  # (2 C_u, T)
        u, v = self.act(hidden).chunk(2, dim=0)  # (C_u, T) each, rows grouped
        u = self.pos_map.forward_grouped(u.view(self.gamma, -1, *shape[:-1]), pad)
        gated = u.view(v.shape) * v
        y = torch.addmm(self.fc2.bias, gated.t(), self._grouped(self.fc2.weight, 1).t())  # (T, C)
        return x + self.drop_path(self.drop(y.view(shape)))

    def forward(self, x: torch.Tensor, pad: Tuple[int, int] = (0, 0)) -> torch.Tensor:
        if self.with_cp and x.requires_grad:
            return cp.checkpoint(self._forward, x, pad, use_reentrant=False)
        return self._forward(x, pad)


class ConvStem(nn.Module):
    """Official ``ConvPatchEmbed`` (stride 4): conv3x3/s2 (C_in -> C/2) -> norm -> GELU -> conv3x3/s2 (C/2 -> C)
    -> norm -> GELU -> conv1x1 (C -> C) -> norm. All convs have a bias; norms act on (B, C, H, W) (official BN,
    eps 1e-6). Shapes: (B, C_in, H, W) -> (B, C, ceil(H/4), ceil(W/4))."""

    def __init__(self, in_channels: int, embed_dims: int, norm_cfg: dict, act_cfg: dict):
        super().__init__()
        chans = [in_channels, embed_dims // 2, embed_dims, embed_dims]
        specs = [(3, 2, 1), (3, 2, 1), (1, 1, 0)]  # kernel, stride, padding
        self.convs = nn.ModuleList(
            nn.Conv2d(chans[i], chans[i + 1], k, stride=s, padding=p) for i, (k, s, p) in enumerate(specs))
        self.norms = nn.ModuleList(build_norm_layer(norm_cfg, chans[i + 1])[1] for i in range(3))
        self.act = build_activation_layer(act_cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            x = norm(conv(x))
            if i < len(self.convs) - 1:
                x = self.act(x)
        return x


class ConvDownsample(nn.Module):
    """Official ``ConvPatchMerging``: grouped conv3x3/s2/p1 with groups = C_in (C_in -> C_out, each input channel
    feeds C_out/C_in outputs), bias, then a channels-last norm (LN, eps 1e-6).
    Shapes: (B, C_in, H, W) -> (B, C_out, ceil(H/2), ceil(W/2))."""

    def __init__(self, in_channels: int, out_channels: int, norm_cfg: dict):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1, groups=in_channels)
        self.norm = build_norm_layer(norm_cfg, out_channels)[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class PosMLPStage(nn.Module):
    """One PosMLP stage (official ``PosMLPLevel``): optional :class:`ConvDownsample`, then :class:`PosMLPBlock` s on
    non-overlapping ``w x w`` windows (no shifted windows: the official shift path is broken and unused).

    The map is zero-padded bottom/right to multiples of ``w`` once per stage, run through all blocks and cropped
    back; padded tokens are masked out of the token mixing, so real outputs do not depend on them
    (docs/families.md, "PosMLP").

    Shapes: (B, C_in, H, W) -> (B, C, ceil(H/2), ceil(W/2)) with downsampling, else (B, C, H, W).
    """

    def __init__(self, in_channels: int, embed_dims: int, depth: int, window_size: int, downsample: bool,
                 block_cfg: dict, drop_path_rates: Sequence[float], norm_cfg: dict):
        super().__init__()
        self.window_size = window_size
        self.downsample = ConvDownsample(in_channels, embed_dims, norm_cfg) if downsample else None
        self.blocks = ModuleList([
            PosMLPBlock(embed_dims, window_size, drop_path_rate=drop_path_rates[j], norm_cfg=norm_cfg,
                        **block_cfg) for j in range(depth)
        ])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.downsample is not None:
            x = self.downsample(x)
        H, W = x.shape[2:]
        w = self.window_size
        pad = (-H % w, -W % w)  # (bottom, right)
        x = x.permute(0, 2, 3, 1)
        if any(pad):
            x = F.pad(x, (0, 0, 0, pad[1], 0, pad[0]))
        x = window_partition(x, w)
        for block in self.blocks:
            x = block(x, pad)
        x = window_reverse(x, w)[:, :H, :W]
        return x.permute(0, 3, 1, 2)


@MODELS.register_module()
class PosMLP(MixerBackbone):
    """PosMLP backbone: `Parameterization of Cross-Token Relations with Relative Positional Encoding for Vision MLP
    <https://arxiv.org/abs/2207.07284>`_ (ACM MM 2022; official code: Zhicaiwww/PosMLP, ``models/posmlp.py``).

    A BN conv stem (stride 4), four stages of :class:`PosMLPBlock` at strides 4/8/16/32 with depthwise-conv +
    LayerNorm downsampling in between, per-stage output norms. Differences from the official model, the base
    preset and the padding of any input size: docs/families.md, "PosMLP". Official checkpoints are converted on
    load (:func:`convert_official_posmlp`).

    Presets (windows 14/14/14/7 by default; params with a 1000-class head, GQPE / LRPE):

    =====  =====================  ==============  ==============  ============  ===========================
    arch   embed_dims             depths          gammas          mlp_ratios    params GQPE / LRPE
    =====  =====================  ==============  ==============  ============  ===========================
    tiny   96, 192, 384, 768      2, 2, 18, 2     8, 16, 32, 64   4, 4, 4, 2    20,925,538 / 21,397,554
    small  128, 256, 512, 1024    2, 2, 18, 2     8, 16, 32, 64   4, 4, 4, 2    36,816,450 / 37,288,466
    base   192, 384, 768, 1536    2, 2, 18, 2     8, 16, 32, 64   4, 4, 4, 2    81,976,834 / 82,448,850
    =====  =====================  ==============  ==============  ============  ===========================

    tiny/small: official ``config/PosMLP_{T,S}.yaml``; base: our choice (no official configuration or weights).

    Args:
        arch (str | dict): 'tiny' | 'small' | 'base' (also 't', 's', 'b'), or a dict with the keys ``embed_dims``
            (int or list; each stage's width a multiple of the previous one) and ``depths``, and optionally
            ``gammas`` (default [8, 16, 32, 64]) and ``mlp_ratios`` (default [4, 4, 4, 2]). Default 'tiny'.
        pos_type (str): 'gqpe' (official released models) or 'lrpe'. Default 'gqpe'.
        generalized (bool): GQPE with a full 2x2 spread (True, official) or the isotropic variant; only valid
            for GQPE. Default True.
        window_size (int | Sequence[int]): token-mixing window per stage. Default (14, 14, 14, 7) (official).
        drop_rate (float): dropout after each block's ``fc2`` (official yaml: 0.02333). Default 0.
        drop_path_rate (float): stochastic depth, linearly increasing over all blocks. Default 0.1 (official).
        with_cp (bool): gradient checkpointing per block (``use_reentrant=False``). Default False.
        stem_norm_cfg (dict): norm of the stem, on (B, C, H, W). Default ``dict(type='BN', eps=1e-6)`` (official).
        norm_cfg (dict): channels-last norm of blocks, downsampling and outputs. Default
            ``dict(type='LN', eps=1e-6)`` (official).
        act_cfg (dict): activation. Default ``dict(type='GELU')`` (official).
        init_cfg (dict | list[dict], optional): default ``default_init_cfg`` (official ``_init_weights``): truncated
            normal (std 0.02) for Linear and Conv2d with zero bias, ones/zeros for LayerNorm and BatchNorm; the
            positional parameters keep their constructor init.
        in_channels, out_indices, frozen_stages, norm_eval, gap_before_final_norm, pretrained, return_tuple:
            shared, see :class:`~mmmixer.models.backbones.base.MixerBackbone` (defaults 3, -1, -1, False, False, None,
            True).
            ``gap_before_final_norm=False`` is the official order (norm, then the classifier's pooling neck).

    Shapes:
        input (B, in_channels, H, W), any H, W >= 1; output one tensor per ``out_indices`` entry,
        (B, C_i, ceil(H/2**(i+2)), ceil(W/2**(i+2))), or (B, C_i) with ``gap_before_final_norm``.

    Raises:
        ValueError: the shared argument errors (:class:`~mmmixer.models.backbones.base.MixerBackbone`), custom arch
            lists of the wrong length, widths that the grouped downsampling cannot produce, a gated width not
            divisible by gamma, bad ``pos_type``/``generalized``/``window_size``, a channels-last LayerNorm as
            ``stem_norm_cfg``, and at forward time an input that is not (B, in_channels, H, W).
    """
    _official = {'depths': [2, 2, 18, 2], 'gammas': [8, 16, 32, 64], 'mlp_ratios': [4, 4, 4, 2]}
    arch_zoo = {
        **dict.fromkeys(['t', 'tiny'], {'embed_dims': [96, 192, 384, 768], **_official}),
        **dict.fromkeys(['s', 'small'], {'embed_dims': [128, 256, 512, 1024], **_official}),
        # our choice (the paper never published PosMLP-B's configuration): 81.98M params, docs/families.md
        **dict.fromkeys(['b', 'base'], {'embed_dims': [192, 384, 768, 1536], **_official}),
    }
    arch_optional_keys = frozenset({'gammas', 'mlp_ratios'})
    #: official ``_init_weights``
    default_init_cfg = [
        dict(type='TruncNormal', layer=['Linear', 'Conv2d'], std=.02, bias=0.),
        dict(type='Constant', layer=['LayerNorm', '_BatchNorm'], val=1., bias=0.)
    ]
    # shown in the error for a checkpoint of another arch; tables and stale index buffers of another window size are
    # adapted / dropped on load (the positional maps' _load_from_state_dict)
    _arch_fields = ('embed_dims', 'depths', 'gammas', 'mlp_ratios', 'pos_type', 'generalized', 'window_size',
                    'in_channels')
    _dropped_on_load = DERIVED_BUFFERS

    def __init__(self,
                 arch: Union[str, dict] = 'tiny',
                 in_channels: int = 3,
                 pos_type: str = 'gqpe',
                 generalized: bool = True,
                 window_size: Union[int, Sequence[int]] = (14, 14, 14, 7),
                 drop_rate: float = 0.,
                 drop_path_rate: float = 0.1,
                 out_indices: Union[int, Sequence[int]] = -1,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 gap_before_final_norm: bool = False,
                 return_tuple: bool = True,
                 stem_norm_cfg: dict = dict(type='BN', eps=1e-6),
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 act_cfg: dict = dict(type='GELU'),
                 pretrained: Optional[str] = None,
                 init_cfg: Optional[Union[dict, list]] = default_init_cfg):
        super().__init__(arch=arch, in_channels=in_channels, out_indices=out_indices, frozen_stages=frozen_stages,
                         norm_eval=norm_eval, gap_before_final_norm=gap_before_final_norm, init_cfg=init_cfg,
                         pretrained=pretrained, return_tuple=return_tuple)
        self.gammas = [int(g) for g in self.arch_settings.get('gammas', self._official['gammas'])]
        self.mlp_ratios = list(self.arch_settings.get('mlp_ratios', self._official['mlp_ratios']))
        for name, values in (('gammas', self.gammas), ('mlp_ratios', self.mlp_ratios)):
            if len(values) != self.num_stages:
                raise ValueError(f'PosMLP: arch {name} {values} must give one value per stage '
                                 f'({self.num_stages} stages from depths {self.depths}).')
        for i in range(1, self.num_stages):
            if self.embed_dims[i] % self.embed_dims[i - 1]:
                raise ValueError(f'PosMLP: embed_dims {self.embed_dims}: stage {i} width must be a multiple of '
                                 f'stage {i - 1} width (grouped downsampling conv with groups = input width).')
        if pos_type not in POS_TYPES:
            raise ValueError(f'PosMLP: pos_type must be one of {POS_TYPES}, got {pos_type!r}.')
        if pos_type == 'lrpe' and not generalized:
            raise ValueError("PosMLP: generalized=False selects the isotropic GQPE variant; it has no meaning "
                             "for pos_type='lrpe' (leave generalized=True).")
        windows = [window_size] * self.num_stages if isinstance(window_size, int) else list(window_size)
        if len(windows) != self.num_stages or not all(isinstance(w, int) and w >= 1 for w in windows):
            raise ValueError(f'PosMLP: window_size must be a positive int or one positive int per stage '
                             f'({self.num_stages}), got {window_size!r}.')
        if stem_norm_cfg.get('type') in ('LN', 'LayerNorm'):
            raise ValueError(f'PosMLP: stem_norm_cfg {stem_norm_cfg} normalises the last dimension, but the stem '
                             "works on (B, C, H, W); use 'BN' (official), 'SyncBN' or 'GN'.")
        self.pos_type = pos_type
        self.generalized = generalized
        self.window_size = windows

        self.patch_embed = ConvStem(in_channels, self.embed_dims[0], stem_norm_cfg, act_cfg)
        dpr = self._drop_path_rates(drop_path_rate)
        self.stages = ModuleList(
            PosMLPStage(
                in_channels=self.embed_dims[max(i - 1, 0)], embed_dims=self.embed_dims[i], depth=depth,
                window_size=windows[i], downsample=i > 0,
                block_cfg=dict(gamma=self.gammas[i], mlp_ratio=self.mlp_ratios[i], pos_type=pos_type,
                               generalized=generalized, drop_rate=drop_rate, act_cfg=act_cfg, with_cp=with_cp),
                drop_path_rates=dpr[i], norm_cfg=norm_cfg) for i, depth in enumerate(self.depths))
        self._add_output_norms(norm_cfg)
        self._freeze_stages()

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, H, W) -> (B, C0, ceil(H/4), ceil(W/4))."""
        return self.patch_embed(x)

    def forward_stage(self, i: int, x: torch.Tensor, cache: dict) -> torch.Tensor:
        """(B, C_{i-1}, H, W) -> (B, C_i, ceil(H/2), ceil(W/2)) (stage 0 keeps the size)."""
        return self.stages[i](x)

    def _tolerate_on_load(self, key: str, checkpoint_tensor, model_tensor) -> bool:
        """Shape differences the positional maps resize on load: ``token_proj_n_bias`` of a square window and
        LRPE tables of an odd square size with this model's number of groups."""
        shape = tuple(getattr(checkpoint_tensor, 'shape', ()))
        if key.endswith('.token_proj_n_bias'):
            return len(shape) == 3 and shape[0] == shape[2] == 1 and math.isqrt(shape[1])**2 == shape[1]
        if key.endswith('.relative_position_bias_table') and len(shape) == 2:
            side = math.isqrt(shape[0])
            return side * side == shape[0] and side % 2 == 1 and shape[1] == model_tensor.shape[1]
        return False


_BLOCK = r'levels\.(\d+)\.encoder\.(\d+)\.'
_FC = dict(norm='norm', proj_c_e='fc1', proj_c_s='fc2')

#: The official checkpoint layout (Zhicaiwww/PosMLP ``PosMLP``; docs/papers.md, "Official checkpoints").
OFFICIAL = PosMLP.official = OfficialConverter(
    family='PosMLP', backbone='PosMLP', tool='tools/model_converters/posmlp_to_mmmixer.py',
    signature=('patch_embed.projs.0.weight', 'levels.*'),
    rules=[
        (r'patch_embed\.projs\.(\d)\.(weight|bias)', r'backbone.patch_embed.convs.\1.\2'),
        (r'patch_embed\.norms\.(\d)\.(.*)', r'backbone.patch_embed.norms.\1.\2'),
        (r'levels\.(\d+)\.pool\.(conv|norm)\.(weight|bias)', r'backbone.stages.\1.downsample.\2.\3'),
        (_BLOCK + r'(norm|proj_c_e|proj_c_s)\.(weight|bias)',
         lambda m: f'backbone.stages.{m[1]}.blocks.{m[2]}.{_FC[m[3]]}.{m[4]}'),
        (_BLOCK + r'gate_unit\.pos\.(attention_centers|attention_spreads|token_proj_n_bias)',
         r'backbone.stages.\1.blocks.\2.pos_map.\3'),
        (_BLOCK + r'gate_unit\.pos\.window_relative_position_bias_table',
         r'backbone.stages.\1.blocks.\2.pos_map.relative_position_bias_table'),
        (_BLOCK + r'gate_unit\.pos\.(rel_indices|window_relative_position_index)', None),  # derived: dropped
        (r'norm\.(weight|bias)', r'backbone.norm{last}.\1'),
        (r'head\.(weight|bias)', r'head.fc.\1'),
    ],
    block_pattern=_BLOCK, container_keys=('state_dict_ema', 'state_dict'),
    container_help='an official PosMLP checkpoint stores its EMA weights under "state_dict_ema" and the raw weights '
    'under "state_dict" (--use-non-ema).',
    leftover_hint="is it another family's checkpoint (or ape=True / pos_only=False, which mmmixer does not "
    'implement)?', model_noun='a supported official PosMLP model')


@OFFICIAL.converts
def convert_official_posmlp(state_dict: dict) -> dict:
    """Map an official PosMLP ``state_dict`` (Zhicaiwww/PosMLP ``PosMLP``, GQPE or LRPE) onto an mmmixer classifier.

    Key mapping (:data:`OFFICIAL`; ``{b}`` = ``levels.{i}.encoder.{j}``; docs/papers.md, "Official checkpoints"):

    ===========================================================  ===============================================
    official                                                     mmmixer (``ImageClassifier``)
    ===========================================================  ===============================================
    ``patch_embed.projs.{k}.*`` / ``patch_embed.norms.{k}.*``    ``backbone.patch_embed.convs.{k}.*`` / ``.norms``
    ``levels.{i}.pool.conv.*`` / ``levels.{i}.pool.norm.*``      ``backbone.stages.{i}.downsample.conv.*`` / ``.norm``
    ``{b}.norm.*``, ``{b}.proj_c_e.*``, ``{b}.proj_c_s.*``       ``backbone.stages.{i}.blocks.{j}.norm|fc1|fc2.*``
    ``{b}.gate_unit.pos.attention_centers|attention_spreads``    ``backbone.stages.{i}.blocks.{j}.pos_map.<same>``
    ``{b}.gate_unit.pos.token_proj_n_bias``                      ``backbone.stages.{i}.blocks.{j}.pos_map.<same>``
    ``{b}.gate_unit.pos.window_relative_position_bias_table``    ``...pos_map.relative_position_bias_table``
    ``{b}.gate_unit.pos.rel_indices``,                           dropped (recomputed from the window)
    ``{b}.gate_unit.pos.window_relative_position_index``
    ``norm.*``                                                   ``backbone.norm{last}.*``
    ``head.*``                                                   ``head.fc.*``
    ===========================================================  ===============================================

    Args:
        state_dict (dict): official weights (``checkpoint['state_dict_ema']`` or ``['state_dict']``); a
            ``module.`` prefix is stripped.

    Returns:
        dict: ``{'state_dict': OrderedDict, 'arch': {'embed_dims', 'depths', 'gammas', 'mlp_ratios'},
        'window_size': [per stage], 'pos_type': 'gqpe'|'lrpe', 'generalized': bool}``. Build ``PosMLP(arch=...,
        window_size=..., pos_type=..., generalized=...)``; the state dict then loads with ``strict=True`` into the
        classifier of our configs (``GlobalAveragePooling`` neck), and with ``prefix='backbone.'`` into det/seg
        backbones. Any other window size also loads (the positional tables are resized on load).

    Raises:
        ValueError: not an official PosMLP checkpoint, or a key that is not part of a supported one (e.g. another
            family's checkpoint, ``ape=True``'s ``absolute_pos_embed`` or ``pos_only=False``'s
            ``token_proj_n_weight``); the message lists up to five of them.
    """
    sd = OFFICIAL.strip(state_dict)
    depths = OFFICIAL.depths(sd)
    out = OFFICIAL.convert_keys(sd)

    def first_block(i, name):
        return sd[f'levels.{i}.encoder.0.{name}']

    lrpe = 'levels.0.encoder.0.gate_unit.pos.window_relative_position_bias_table' in sd
    embed_dims, gammas, mlp_ratios, windows = [], [], [], []
    for i in range(len(depths)):
        dim = first_block(i, 'norm.weight').shape[0]
        ratio = first_block(i, 'proj_c_e.weight').shape[0] / dim
        embed_dims.append(int(dim))
        mlp_ratios.append(int(ratio) if float(ratio).is_integer() else ratio)
        if lrpe:
            gammas.append(int(first_block(i, 'gate_unit.pos.window_relative_position_bias_table').shape[1]))
        else:
            gammas.append(int(first_block(i, 'gate_unit.pos.attention_centers').shape[0]))
        windows.append(math.isqrt(first_block(i, 'gate_unit.pos.token_proj_n_bias').shape[1]))
    generalized = lrpe or first_block(0, 'gate_unit.pos.attention_spreads').dim() == 3
    arch = dict(embed_dims=embed_dims, depths=depths, gammas=gammas, mlp_ratios=mlp_ratios)
    return dict(state_dict=out, arch=arch, window_size=windows, pos_type='lrpe' if lrpe else 'gqpe',
                generalized=bool(generalized))
