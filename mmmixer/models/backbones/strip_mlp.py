"""Strip-MLP backbone.

Cao et al., "Strip-MLP: Efficient Token Interaction for Vision MLP", ICCV 2023, arXiv 2307.11458.
Presets, layer shapes and defaults follow the official code Med-Process/Strip_MLP @ 492d705
(``models/strip_mlp.py``, ``configs/smlp_*_imagenet1k.yaml``, ``config.py``); the any-size strategy is a refinement
of the sliding-window CGSMM of MLP-DINO (Med-Process/MLP-DINO ``models/dino/strip_mlp.py``). Facts and shapes:
``../shared/reference/papers.md`` §3. Written from those sources' behaviour; no code copied.
Layout and API follow mmpretrain's ``ConvNeXt``/``SwinTransformer`` backbones and :class:`~mmmixer.models.MSMLP`.

Module overview (official name in brackets):

* :class:`StripMLPBlock` [``BasicBlock``]: ``x + DropPath(token_mixing(x))``, then ``x + DropPath(channel_mixing(x))``.
* :class:`StripTokenMixing` [``TokenMixing`` = ``dwsc`` + ``smlp_block``]: BN -> GELU -> depthwise 3x3, then
  1x1 conv -> BN -> GELU, the channels split in halves for :class:`CGSMM` and :class:`LSMM`, then a 1x1 conv.
* :class:`CGSMM` [``StripMLP_Block.strip_mlp``]: the Cascade Group Strip Mixing Module (row strip MLP, fuse,
  column strip MLP, fuse); the only part whose weights depend on the training resolution.
* :class:`LSMM` [``fc_h``/``fc_w``/``reweight``]: the Local Strip Mixing Module (3x7 and 7x3 depthwise strips,
  reweighted per channel).
* :class:`StripChannelMixing` [``ChannelMixing``]: depthwise 7x7 -> LayerNorm -> Linear -> GELU -> GRN -> Linear.
"""
import re
from collections import OrderedDict
from typing import List, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmcv.cnn import build_activation_layer, build_norm_layer
from mmcv.cnn.bricks import DropPath
from mmengine.model import BaseModule, ModuleList

from mmmixer.registry import MODELS
from .base import CheckpointFitMixin, FrozenStagesMixin
from ..utils import check_input, normalize_out_indices, parse_arch

__all__ = ['StripMLP', 'CGSMM', 'LSMM', 'StripMLPBlock', 'window_starts', 'convert_official_stripmlp']

DROP_PATH_MODES = ('uniform', 'linear')


def window_starts(size: int, length: int) -> List[int]:
    """Start offsets of the strip windows that cover ``size`` tokens with windows of the trained ``length``.

    The fewest windows that cover the axis, ``n = ceil(size / length)``, spread evenly: the first starts at 0, the
    last ends exactly at ``size`` and neighbours overlap by ``length - step`` tokens (``step`` varies by at most
    one). ``size <= length`` gives a single window at 0 (zero-padded by the caller when ``size < length``).
    Examples: ``window_starts(56, 56) == [0]``, ``window_starts(304, 56) == [0, 49, 99, 148, 198, 248]``.

    Args:
        size (int): tokens along the axis of the runtime map.
        length (int): trained strip length (tokens).

    Returns:
        list[int]: window start offsets.
    """
    if size <= length:
        return [0]
    # ceil without negative operands: under tracing ``size`` is a traced shape, and the legacy ONNX exporter
    # turns floor division into truncation, so ``-(-size // length)`` came out as floor (tests/test_deploy.py)
    num = (size + length - 1) // length
    return [k * (size - length) // (num - 1) for k in range(num)]


def _coverage(starts: Sequence[int], length: int, size: int, like: torch.Tensor) -> torch.Tensor:
    """How many windows cover each of ``size`` positions, as a (size,) tensor on ``like``'s device/dtype."""
    count = like.new_zeros(size)
    for s in starts:
        count[s:s + length] += 1
    return count


def _pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Zero-pad (B, C, H, W) bottom/right to multiples of ``multiple`` (no copy when already divisible)."""
    pad_h, pad_w = -x.shape[2] % multiple, -x.shape[3] % multiple
    return F.pad(x, (0, pad_w, 0, pad_h)) if pad_h or pad_w else x


class GRN(nn.Module):
    """Global Response Normalization (ConvNeXt V2, arXiv 2301.00808) on channels-last input, official form.

    ``y = x + gamma * (x * Nx) + beta`` with ``Nx = ||x||_2 over (H, W)`` divided by its mean over channels
    (+1e-6). ``gamma``/``beta`` start at 0 (official), so a fresh GRN is the identity. The official parameter
    shape is (1, 1, 1, C); here (C,) (the converter reshapes).

    Shapes: (B, H, W, C) -> (B, H, W, C).
    """

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(channels))
        self.beta = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gx = torch.linalg.vector_norm(x, ord=2, dim=(1, 2), keepdim=True)  # (B, 1, 1, C)
        nx = gx / (gx.mean(dim=-1, keepdim=True) + self.eps)
        # x + gamma * (x * nx) + beta, as one pass over x: x * (1 + gamma * nx) + beta with the per-(image,
        # channel) factor computed on the small tensor (issue 7: 4-5x faster than the official four passes)
        return torch.addcmul(self.beta, x, 1 + self.gamma * nx)


class CGSMM(nn.Module):
    """Cascade Group Strip Mixing Module (Strip-MLP paper Sec. 3; official ``StripMLP_Block.strip_mlp``).

    Channels are split into ``patches`` "channel patches" of ``groups = channels / patches`` channels; channel
    ``c = p * groups + g`` uses weight group ``g`` (official layout, the same weights for every patch ``p``).

    1. rows: ``row_mix`` [``proj_h``] is a full strip MLP over the ``L`` tokens of each row, per weight group,
       gathering from the row and its two neighbours (a grouped Conv2d(G*L, G*L, (1, 3)) over the strip axis laid
       out as channels), applied to ``x + row position map``;
    2. ``row_fuse`` (1x1 conv on ``cat[rows, x]``) -> ``row_norm`` (BN) -> GELU;
    3. columns: ``col_mix`` [``proj_w``] does the same along each column, applied to ``y + column position map``;
    4. ``col_fuse`` (1x1 conv on ``cat[x, columns]``).

    The position maps come from tables ``row_pos``/``col_pos`` [``relate_pos_{h,w}.embeddings_table``] of shape
    (2L + 1, channels): the map at (h, w) is ``table[w - h + L]`` (official ``RelativePosition(H, W)``; rows 0 and
    2L are never used at the trained size and stay at their init).

    **Any input size.** ``row_mix``, ``col_mix`` and the tables are built for the trained strip length ``L``
    (papers.md §3.4). At the trained size H = W = L the module computes exactly the official function. At any
    other size every strip MLP runs on windows of ``L`` tokens *along its own mixing axis only*
    (:func:`window_starts`: the fewest windows that cover the axis, evenly overlapping, the last one ending at the
    border, a single zero-padded window when the axis is shorter than ``L``), and overlapping window outputs are
    averaged. The 3-strip neighbourhood, the fuses, BN and GELU run once on the whole map. Because a strip MLP is
    affine, ``proj(window + pos) = proj(window) + (proj(pos) - bias)``: the position term is the response of the
    strip MLP to the position map of one L x L window, averaged over the 2-D grid of windows (rows x columns).
    So each strip MLP output is the average, over the L x L windows covering a token, of the official strip MLP
    applied in that window (MLP-DINO's windows), except that the 3-strip neighbourhood is not cut at window borders
    along the axis the strip MLP does not mix (MLP-DINO zero-pads it at every border of its 2-D windows), and the
    average is taken right after each strip MLP, so the pointwise fuse/BN/GELU run once on the whole map (MLP-DINO
    runs the row-fuse-column chain per window and averages at the end). See :class:`StripMLP` for the cost.

    Args:
        channels (int): input/output channels (half of the block's channels).
        strip_length (int): trained strip length ``L`` in tokens (stage map size at the training resolution).
        patches (int): channel patches (official 2 if the block's channels % 80 == 0 else 4).
        norm_cfg (dict): norm after ``row_fuse``. Default BN (official).
        act_cfg (dict): activation after that norm. Default GELU (official).

    Shapes:
        (B, channels, H, W) -> (B, channels, H, W), any H, W >= 1.

    Raises:
        ValueError: ``channels`` not divisible by ``patches``.
    """

    def __init__(self, channels: int, strip_length: int, patches: int, norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='GELU')):
        super().__init__()
        if patches < 1 or channels % patches:
            raise ValueError(f'CGSMM: {channels} channels cannot be split into patches={patches} channel '
                             f'patches of equal size; accepted: a divisor of {channels}.')
        self.channels, self.patches, self.groups = channels, patches, channels // patches
        self.strip_length = length = strip_length
        width = self.groups * length
        self.row_mix = nn.Conv2d(width, width, (1, 3), padding=(0, 1), groups=self.groups)
        self.row_pos = nn.Parameter(torch.empty(2 * length + 1, channels))
        self.row_fuse = nn.Conv2d(2 * channels, channels, 1, bias=False)
        self.row_norm = build_norm_layer(norm_cfg, channels)[1]
        self.act = build_activation_layer(act_cfg)
        self.col_mix = nn.Conv2d(width, width, (1, 3), padding=(0, 1), groups=self.groups)
        self.col_pos = nn.Parameter(torch.empty(2 * length + 1, channels))
        self.col_fuse = nn.Conv2d(2 * channels, channels, 1, bias=False)
        for table in (self.row_pos, self.col_pos):  # official: xavier, then overwritten by trunc_normal(0.02)
            nn.init.trunc_normal_(table, std=.02)

    def position_map(self, table: torch.Tensor) -> torch.Tensor:
        """The (channels, L, L) position map of one window: entry (h, w) is ``table[w - h + L]``."""
        length = self.strip_length
        idx = torch.arange(length, device=table.device)
        return table.t()[:, idx[None, :] - idx[:, None] + length]

    def _mix(self, conv: nn.Conv2d, x: torch.Tensor, axis: int, starts: Sequence[int]) -> torch.Tensor:
        """Strip MLP ``conv`` along ``axis`` (3: rows, mixing W; 2: columns, mixing H) of (B, C, H, W) ``x``,
        in windows of the trained length at ``starts``; overlapping outputs are averaged."""
        length, groups = self.strip_length, self.groups
        x = x.unflatten(1, (self.patches, groups))  # (B, P, G, H, W)
        if axis == 3:
            x = x.transpose(-1, -2)  # the mixed axis goes to dim -2
        size, other = x.shape[-2:]
        if size < length:  # one window, zero-padded to the trained length
            windows = F.pad(x, (0, 0, 0, length - size)).unsqueeze(0)
        elif len(starts) == 1:
            windows = x.unsqueeze(0)
        else:
            windows = torch.stack([x[..., s:s + length, :] for s in starts])
        # (n, B, P, G, L, T) -> conv input (n*B*P, G*L, 1, T): channel g*L + l is strip position l of group g
        out = conv(windows.reshape(-1, groups * length, 1, other)).view(windows.shape)
        if len(starts) == 1:
            out = out[0, ..., :size, :]
        else:
            summed = out.new_zeros(x.shape)
            for k, s in enumerate(starts):
                summed[..., s:s + length, :] += out[k]
            out = summed.div_(_coverage(starts, length, size, summed)[:, None])
        if axis == 3:
            out = out.transpose(-1, -2)
        return out.flatten(1, 2)

    def _windowed_position(self, conv: nn.Conv2d, table: torch.Tensor, axis: int, starts_h: Sequence[int],
                           starts_w: Sequence[int], height: int, width: int) -> torch.Tensor:
        """Strip-MLP response to the window position map, averaged over the window grid: (C, height, width)."""
        length, groups = self.strip_length, self.groups
        pos = self.position_map(table)
        if axis == 3:
            pos = pos.transpose(1, 2)
        # no bias here: the data term already carries it
        resp = F.conv2d(pos.reshape(self.patches, groups * length, 1, length), conv.weight, None,
                        padding=conv.padding, groups=groups).view(self.channels, length, length)
        if axis == 3:
            resp = resp.transpose(1, 2)
        acc = resp.new_zeros(self.channels, max(height, length), max(width, length))
        for sh in starts_h:
            for sw in starts_w:
                acc[:, sh:sh + length, sw:sw + length] += resp
        count = _coverage(starts_h, length, height, acc)[:, None] * _coverage(starts_w, length, width, acc)
        return acc[:, :height, :width] / count

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        height, width = x.shape[-2:]
        length = self.strip_length
        trained_size = height == width == length
        if trained_size:  # the official computation
            rows = self._mix(self.row_mix, x + self.position_map(self.row_pos), 3, [0])
        else:
            starts_h, starts_w = window_starts(height, length), window_starts(width, length)
            rows = self._mix(self.row_mix, x, 3, starts_w) + self._windowed_position(
                self.row_mix, self.row_pos, 3, starts_h, starts_w, height, width)
        y = self.act(self.row_norm(self.row_fuse(torch.cat([rows, x], dim=1))))
        if trained_size:
            cols = self._mix(self.col_mix, y + self.position_map(self.col_pos), 2, [0])
        else:
            cols = self._mix(self.col_mix, y, 2, starts_h) + self._windowed_position(
                self.col_mix, self.col_pos, 2, starts_h, starts_w, height, width)
        return self.col_fuse(torch.cat([x, cols], dim=1))

    def extra_repr(self) -> str:
        return f'channels={self.channels}, strip_length={self.strip_length}, patches={self.patches}'


class LSMM(nn.Module):
    """Local Strip Mixing Module (official ``fc_h``, ``fc_w``, ``reweight`` of ``StripMLP_Block``).

    ``wide = conv_3x7(x)``, ``tall = conv_7x3(x)`` (depthwise, no bias); per-channel weights
    ``a = softmax over 3 of reweight(GAP(tall + wide + x))`` with reweight = 1x1 conv (C -> C/2) -> GELU -> 1x1 conv
    (C/2 -> 3C) read as (C, 3); output ``tall * a0 + wide * a1 + x * a2`` (official order). Size-independent.

    Shapes: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, channels: int, act_cfg: dict = dict(type='GELU')):
        super().__init__()
        self.conv_3x7 = nn.Conv2d(channels, channels, (3, 7), padding=(1, 3), groups=channels, bias=False)
        self.conv_7x3 = nn.Conv2d(channels, channels, (7, 3), padding=(3, 1), groups=channels, bias=False)
        self.reweight = nn.Sequential(OrderedDict(
            fc1=nn.Conv2d(channels, channels // 2, 1),
            act=build_activation_layer(act_cfg),
            fc2=nn.Conv2d(channels // 2, channels * 3, 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        wide, tall = self.conv_3x7(x), self.conv_7x3(x)
        # GAP(tall + wide + x) = GAP(tall) + GAP(wide) + GAP(x): three reductions instead of two full-size adds
        pooled = tall.mean(dim=(2, 3), keepdim=True) + wide.mean(dim=(2, 3), keepdim=True) + \
            x.mean(dim=(2, 3), keepdim=True)
        weights = self.reweight(pooled)
        weights = weights.view(x.shape[0], x.shape[1], 3, 1, 1).softmax(dim=2)
        # tall * a0 + wide * a1 + x * a2 with fused multiply-adds: three passes instead of five
        out = torch.addcmul(tall * weights[:, :, 0], wide, weights[:, :, 1])
        return torch.addcmul(out, x, weights[:, :, 2])


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
        x = self.in_act(self.in_norm(self.in_conv(x)))
        global_half, local_half = x.chunk(2, dim=1)
        return self.out_proj(torch.cat([self.cgsmm(global_half), self.lsmm(local_half)], dim=1))


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
class StripMLP(CheckpointFitMixin, FrozenStagesMixin, BaseModule):
    """Strip-MLP backbone: `Strip-MLP: Efficient Token Interaction for Vision MLP
    <https://arxiv.org/abs/2307.11458>`_ (ICCV 2023).

    A 4x4/stride-4 conv stem without norm, four stages of :class:`StripMLPBlock` at strides 4/8/16/32 joined by
    2x2/stride-2 convs without norm, and three cross-stage shortcuts (grouped 2x2/stride-2 convs, each input
    channel giving two outputs): ``shortcut_1to2`` [``conv_s1_28``] carries the stage-1 input to the stage-2
    input, ``shortcut_1to3`` [``conv_s1_14``] carries that result on to the stage-3 input, and ``shortcut_2to3``
    [``conv_s2_14``] carries the stage-2 input (before its shortcut is added) to the stage-3 input (stages
    numbered from 0). BatchNorm everywhere except the LayerNorm of the channel mixing; official head order
    BatchNorm2d -> spatial mean -> Linear. Modified from the official implementation (Med-Process/Strip_MLP
    ``models/strip_mlp.py``): any input size (below), output norms for dense prediction, drop path and GRN width
    as parameters, module names readable (``convert_official_stripmlp`` and
    ``tools/model_converters/stripmlp_to_mmmixer.py`` map official checkpoints).

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

    **Training resolution.** ``img_size`` fixes the strip length of stage i, ``L_i = img_size / patch_size / 2**i``
    (56/28/14/7 at 224), and with it the only resolution-dependent weights (papers.md §3.4): per block,
    ``cgsmm.row_mix``/``cgsmm.col_mix`` (official ``proj_h``/``proj_w``, (G*L, L, 1, 3) + (G*L,)) and the position
    tables ``cgsmm.row_pos``/``cgsmm.col_pos`` (official ``relate_pos_{h,w}``, (2L + 1, C/2)). The model keeps
    these shapes at every input size, so a checkpoint trained at ``img_size`` loads with ``strict=True`` into a
    model used for detection or segmentation at any size: no weight is resized, skipped or left random.

    **Any input size** (H, W >= 32, non-square, not multiples of 32 or 224). Input and odd maps are zero-padded
    bottom/right before the stem and every stride-2 conv, so stage maps are ceil(H/4), ceil(H/8), ceil(H/16),
    ceil(H/32) (the official code floors; both agree on multiples of 32). Only the CGSMM strip MLPs need the
    trained length. Strategy (:class:`CGSMM`): at a stage map of exactly L x L the official computation runs
    unchanged, so at ``img_size`` the classifier is the official model. Elsewhere each strip MLP runs on windows
    of L tokens along its own mixing axis (the fewest windows that cover it, evenly overlapping, averaged; one
    zero-padded window for an axis shorter than L) while the 3-strip neighbourhood runs over the whole other axis,
    and the position term is averaged over the 2-D window grid (exact by linearity). Why this strategy:

    * Faithful: every token is mixed by the trained L x L strip weights over a trained-length strip with the
      trained position map, as in MLP-DINO's detection setup (the official module on overlapping L x L windows),
      without its seams across the non-mixed axis. Resampling the strip weights to the runtime length instead
      stretches the learned token-to-token pattern (a 3-token band at L = 56 becomes 16 tokens wide at 304) and
      the position table, i.e. it changes what the pretrained layer computes.
    * Cheap (linear in pixels). Analytic MACs (conv/linear only; this count gives the official 2.52 / 3.65 /
      6.80 / 9.18 G at 224): a block costs ``9C^2 + 3CL + 79C`` per token (C = block channels), of which ``3CL``
      are the two strip MLPs (Strip-MLP-T: 17% / 5% / 1.4% / 0.4% of a block in stages 1-4). Windowing multiplies
      only the strip MLPs, by ``n*L/S < 1 + L/S`` for an axis of S tokens covered by ``n = ceil(S/L)`` windows.
      At 800 x 1216 (Strip-MLP-T maps 200x304, 100x152, 50x76, 25x38) that is 1.12 (columns) and 1.105 (rows) in
      every stage, so the backbone costs 70.69 G + 0.43% = 71.0 GMACs, against 70.77 G for its 224-px cost
      (3.65 G) scaled by pixels; at 512 x 512, +1.2%. The position term adds one window of strip MLP per block
      and batch plus an accumulation over the window grid (about ``1.24 * C/2`` additions per token): negligible.
      Extra memory: the stacked windows, ``n*L/S`` of a C/2-channel map per strip MLP (kept for backward like
      any conv input), and the position map (C/2 x H x W, no batch dimension). For comparison, resampled strip
      weights cost ``1.5 * C * (H + W)`` per token instead of ``3CL``: +61% MACs in stage 1 and +13% for the whole
      Strip-MLP-T at 800 x 1216, growing with the image side (total ~ pixels^1.5); MLP-DINO's 2-D windows repeat
      the strip MLPs *and* the CGSMM ``fuse_h``/BN/GELU by ``(n_h L/H)(n_w L/W)`` (1.24 here; +2.1% in total)
      and stitch the windows by repeated concatenation. Wall time and peak memory are not measured here.

    Args:
        arch (str | dict): preset name (table above; also 'light-tiny', 'T*') or a dict with exactly the keys
            ``embed_dims`` (int: stage i has ``embed_dims * 2**i`` channels) and ``depths`` (4 ints). Default 'tiny'.
        img_size (int): training resolution (square, as official), a multiple of ``8 * patch_size``; fixes the
            strip lengths. Default 224 (official).
        in_channels (int): input channels. Default 3.
        patch_size (int): stem conv kernel and stride. Default 4 (official).
        channel_patches (str | int | Sequence[int]): CGSMM channel "patches" per stage. ``'auto'`` is the official
            rule (2 if the stage's channels % 80 == 0 else 4; needed to load official weights); an int or four ints
            override it (MLP-DINO uses 2 everywhere). Default 'auto'.
        mlp_ratio (float): channel-mixing expansion (paper's alpha); the GRN width follows it. Default 3 (official).
        drop_path_rate (float): stochastic depth. Default 0.1 (official).
        drop_path_mode (str): ``'uniform'``: every block uses ``drop_path_rate`` (official: ``BasicBlock`` hard-codes
            0.1 whatever the config says, so ``drop_path_rate=0.1, drop_path_mode='uniform'`` is the official
            setting); ``'linear'``: increases linearly from 0 to ``drop_path_rate`` over all blocks
            (mmpretrain/Swin convention). Default 'uniform'.
        out_indices (int | Sequence[int]): stages to return; negative values count from the end. Default -1.
        frozen_stages (int): -1 freezes nothing, 0 the stem, k the stem and the first k stages (mmdet ResNet
            semantics) with the shortcuts feeding them and their output norms; frozen parts stay in eval mode.
            Default -1.
        norm_eval (bool): keep all BatchNorm layers in eval mode (frozen running statistics) during training; the
            usual choice for detection with small per-GPU batches. Default False.
        with_cp (bool): gradient checkpointing per block (``use_reentrant=False``). The recomputation updates BN
            running statistics a second time per step (as for any checkpointed BN network); combine with
            ``norm_eval=True`` if that matters. Default False.
        gap_before_final_norm (bool): True (classification): each returned stage is BN-normalised per position and
            then averaged over the map, (B, C), exactly the official head order BatchNorm2d -> mean (in eval mode
            BN and the mean commute; in training BN uses per-position batch statistics as official). False (dense
            prediction): the normalised map, (B, C, H, W). Default True.
        norm_cfg (dict): config of every BatchNorm layer (e.g. ``dict(type='SyncBN')`` for detection). Default
            ``dict(type='BN')`` (official ``nn.BatchNorm2d``).
        act_cfg (dict): activation. Default ``dict(type='GELU')`` (official).
        init_cfg (dict | list[dict], optional): initialisation. Default None: PyTorch's default init of every
            layer, trunc_normal(std=0.02) position tables and zero GRN (the official model has no
            ``_init_weights``).

    Output norms: ``norm{i}`` (BatchNorm2d) for each stage in ``out_indices``; ``norm3`` is the official final
    ``norm``. Official checkpoints have no norms for stages 0-2: a dense model returning them gets fresh
    BatchNorm layers (weight 1, bias 0, running mean 0, var 1 = identity in eval mode), the only weights that do
    not come from the checkpoint.

    Returns (forward):
        tuple[Tensor]: one tensor per ``out_indices`` entry, (B, C_i) or (B, C_i, H_i, W_i).

    Raises:
        ValueError: unknown arch, custom arch with wrong keys or not 4 stages, ``img_size`` not a multiple of
            ``8 * patch_size``, channel patches that do not divide a stage's C/2, unknown ``drop_path_mode``,
            ``out_indices``/``frozen_stages`` out of range, and at forward time an input that is not
            (B, in_channels, H >= 32, W >= 32).
    """
    _arch_fields = ('embed_dims', 'depths', 'img_size', 'channel_patches', 'in_channels')  # CheckpointFitMixin
    arch_zoo = {
        **dict.fromkeys(['light_tiny', 'light-tiny', 't*', 'lt'], {'embed_dims': 80, 'depths': [2, 2, 6, 2]}),
        **dict.fromkeys(['t', 'tiny'], {'embed_dims': 80, 'depths': [2, 2, 12, 2]}),
        **dict.fromkeys(['s', 'small'], {'embed_dims': 96, 'depths': [2, 2, 18, 2]}),
        **dict.fromkeys(['b', 'base'], {'embed_dims': 112, 'depths': [2, 2, 18, 2]}),
    }
    num_stages = 4

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
                 gap_before_final_norm: bool = True,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='GELU'),
                 init_cfg: Optional[Union[dict, list]] = None):
        super().__init__(init_cfg=init_cfg)
        arch = parse_arch(arch, self.arch_zoo, {'embed_dims', 'depths'}, 'StripMLP')
        self.depths = [int(d) for d in arch['depths']]
        if len(self.depths) != self.num_stages or not isinstance(arch['embed_dims'], int):
            raise ValueError(f'StripMLP: a custom arch needs an int embed_dims and 4 depths (the cross-stage '
                             f'shortcuts are defined for 4 stages), got {arch}.')
        self.embed_dims = [arch['embed_dims'] * 2**i for i in range(self.num_stages)]
        self.total_stride = patch_size * 2**(self.num_stages - 1)
        if img_size % self.total_stride:
            raise ValueError(f'StripMLP: img_size {img_size} must be a multiple of {self.total_stride} '
                             f'(patch_size * 8) so that every stage has an integer strip length.')
        self.img_size = img_size
        self.strip_lengths = [img_size // patch_size // 2**i for i in range(self.num_stages)]
        self.channel_patches = self._parse_patches(channel_patches)
        if drop_path_mode not in DROP_PATH_MODES:
            raise ValueError(f'StripMLP: drop_path_mode must be one of {DROP_PATH_MODES}, got {drop_path_mode!r}.')
        self.in_channels = in_channels
        self.patch_size = patch_size
        self.out_indices = normalize_out_indices(out_indices, self.num_stages, 'StripMLP')
        if not -1 <= frozen_stages <= self.num_stages:
            raise ValueError(f'StripMLP: frozen_stages must be in [-1, {self.num_stages}] (-1: none, 0: stem, '
                             f'k: stem + first k stages), got {frozen_stages}.')
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.gap_before_final_norm = gap_before_final_norm

        dims = self.embed_dims
        self.patch_embed = nn.Conv2d(in_channels, dims[0], patch_size, stride=patch_size, bias=False)
        num_blocks = sum(self.depths)
        if drop_path_mode == 'uniform':
            dpr = [float(drop_path_rate)] * num_blocks
        else:
            dpr = torch.linspace(0, drop_path_rate, num_blocks, device='cpu').tolist()
        self.stages = ModuleList()
        for i, depth in enumerate(self.depths):
            start = sum(self.depths[:i])
            block_cfg = dict(strip_length=self.strip_lengths[i], patches=self.channel_patches[i],
                             mlp_ratio=mlp_ratio, norm_cfg=norm_cfg, act_cfg=act_cfg, with_cp=with_cp)
            self.stages.append(StripMLPStage(dims[max(i - 1, 0)], dims[i], depth, i > 0, block_cfg,
                                             dpr[start:start + depth]))
        self.shortcut_1to2 = nn.Conv2d(dims[1], dims[2], 2, stride=2, groups=dims[1], bias=False)
        self.shortcut_1to3 = nn.Conv2d(dims[2], dims[3], 2, stride=2, groups=dims[2], bias=False)
        self.shortcut_2to3 = nn.Conv2d(dims[2], dims[3], 2, stride=2, groups=dims[2], bias=False)
        for i in self.out_indices:
            self.add_module(f'norm{i}', build_norm_layer(norm_cfg, dims[i])[1])
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

    def forward(self, x: torch.Tensor) -> tuple:
        """(B, in_channels, H, W) -> tuple of (B, C_i) or (B, C_i, ceil(H/s_i), ceil(W/s_i))."""
        check_input(x, self.in_channels, self.total_stride, 'StripMLP')
        x = self.patch_embed(_pad_to_multiple(x, self.patch_size))
        # channels_last memory from here on: PyTorch's CPU depthwise convs (3x3, 3x7, 7x3, 7x7 in every block) run
        # 2-4x faster forward + backward on it and the channel MLP's (B, H, W, C) views need no copy (issue 7);
        # the returned maps are made contiguous again
        x = x.contiguous(memory_format=torch.channels_last)
        shortcuts = [None] * self.num_stages  # cross-stage terms added to each stage input
        outs = []
        for i, stage in enumerate(self.stages):
            if stage.downsample is not None:
                x = stage.downsample(_pad_to_multiple(x, 2))
            if i == 1:  # the stage-1 input feeds stage 2, and through one more conv stage 3
                shortcuts[2] = self.shortcut_1to2(_pad_to_multiple(x, 2))
                shortcuts[3] = self.shortcut_1to3(_pad_to_multiple(shortcuts[2], 2))
            elif i == 2:  # the stage-2 input, before its own shortcut term, feeds stage 3
                shortcuts[3] = shortcuts[3] + self.shortcut_2to3(_pad_to_multiple(x, 2))
            if shortcuts[i] is not None:
                x = x + shortcuts[i]
            for block in stage.blocks:
                x = block(x)
            if i in self.out_indices:
                out = getattr(self, f'norm{i}')(x)
                outs.append(out.mean(dim=(2, 3)) if self.gap_before_final_norm else out.contiguous())
        return tuple(outs)

    def _frozen_modules(self):
        """The mixin's modules plus the cross-stage shortcut convs feeding frozen stages."""
        modules = super()._frozen_modules()
        if self.frozen_stages > 2:
            modules.append(self.shortcut_1to2)
        if self.frozen_stages > 3:
            modules += [self.shortcut_1to3, self.shortcut_2to3]
        return modules

    def get_layer_depth(self, param_name: str, prefix: str = ''):
        """Layer id of a parameter for layer-wise learning-rate decay (mmpretrain Swin convention).

        ``num_layers = sum(depths) + 2``: the stem is layer 0, block j of stage i is ``sum(depths[:i]) + j + 1``,
        a stage's downsampling and the cross-stage shortcuts feeding it share the id of the block before the
        stage, and everything else (output norms, head, parameters outside ``prefix``) is the last layer.

        Args:
            param_name (str): full parameter name, e.g. ``'backbone.stages.1.blocks.0.token_mixing.dw_conv.weight'``.
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
        shortcut = re.match(r'shortcut_\dto(\d)\.', name)
        if shortcut is not None:
            return sum(self.depths[:int(shortcut.group(1))]), num_layers
        match = re.match(r'stages\.(\d+)\.(blocks\.(\d+)|downsample)', name)
        if match is None:
            return num_layers - 1, num_layers
        stage = int(match.group(1))
        if match.group(3) is None:  # downsample
            return sum(self.depths[:stage]), num_layers
        return sum(self.depths[:stage]) + int(match.group(3)) + 1, num_layers


_BN = r'(weight|bias|running_mean|running_var|num_batches_tracked)'
# official key inside ``blocks{s}.{j}.`` -> ours inside ``backbone.stages.{s-1}.blocks.{j}.``
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
_TOP_RULES = [
    (r'patch_embed\.weight', r'backbone.patch_embed.weight'),
    (r'merging([123])\.weight', lambda m: f'backbone.stages.{m[1]}.downsample.weight'),
    (r'conv_s1_28\.weight', r'backbone.shortcut_1to2.weight'),
    (r'conv_s1_14\.weight', r'backbone.shortcut_1to3.weight'),
    (r'conv_s2_14\.weight', r'backbone.shortcut_2to3.weight'),
    (r'norm\.' + _BN, r'backbone.norm3.\1'),
    (r'head\.(weight|bias)', r'head.fc.\1'),
]


def _map_official_key(key: str) -> Optional[str]:
    for pattern, repl in _TOP_RULES:
        m = re.fullmatch(pattern, key)
        if m:
            return repl(m) if callable(repl) else m.expand(repl)
    m = re.fullmatch(r'blocks([1-4])\.(\d+)\.(.*)', key)
    if m:
        for pattern, repl in _BLOCK_RULES:
            inner = re.fullmatch(pattern, m[3])
            if inner:
                return f'backbone.stages.{int(m[1]) - 1}.blocks.{m[2]}.' + inner.expand(repl)
    return None


def convert_official_stripmlp(state_dict: dict) -> dict:
    """Map an official Strip-MLP ``state_dict`` (Med-Process/Strip_MLP ``StripMLPNet``, or MLP-DINO's backbone
    with its ``proh_w`` spelling) onto an mmmixer classifier.

    Key mapping (papers.md §3.7 lists the official keys; official stage S = 1..4 is our stage S - 1):

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
    sd = {k[7:] if k.startswith('module.') else k: v for k, v in state_dict.items()}
    if 'patch_embed.weight' not in sd or 'blocks1.0.token_mixing.smlp_block.proj_h.weight' not in sd:
        raise ValueError('Not an official Strip-MLP checkpoint: expected keys "patch_embed.weight" and '
                         f'"blocks1.0.token_mixing.smlp_block.proj_h.weight"; found e.g. {sorted(sd)[:5]}.')
    out, leftover = OrderedDict(), []
    for key, value in sd.items():
        new = _map_official_key(key)
        if new is None:
            leftover.append(key)
            continue
        if new in out:
            raise ValueError(f'Strip-MLP checkpoint gives {new} twice (e.g. both proj_w and proh_w); last key {key}.')
        out[new] = value.reshape(-1) if re.search(r'\.grn\.(gamma|beta)$', new) else value
    if leftover:
        raise ValueError(f'{len(leftover)} keys of the checkpoint are not part of an official Strip-MLP model, '
                         f"e.g. {leftover[:5]}; is it another family's checkpoint?")
    depths = [0] * StripMLP.num_stages
    for key in sd:
        m = re.match(r'blocks([1-4])\.(\d+)\.', key)
        if m:
            depths[int(m[1]) - 1] = max(depths[int(m[1]) - 1], int(m[2]) + 1)
    embed = int(sd['patch_embed.weight'].shape[0])
    patch_size = int(sd['patch_embed.weight'].shape[-1])
    patches = []
    for s, depth in enumerate(depths):
        if depth == 0:
            raise ValueError(f'Strip-MLP checkpoint has no blocks in official stage {s + 1} (blocks{s + 1}.*).')
        grouped, length = sd[f'blocks{s + 1}.0.token_mixing.smlp_block.proj_h.weight'].shape[:2]
        patches.append(embed * 2**s // 2 // (grouped // length))
    rule = [2 if embed * 2**s % 80 == 0 else 4 for s in range(StripMLP.num_stages)]
    length = int(sd['blocks1.0.token_mixing.smlp_block.proj_h.weight'].shape[1])
    return dict(state_dict=out, arch=dict(embed_dims=embed, depths=depths), img_size=length * patch_size,
                channel_patches='auto' if patches == rule else patches)
