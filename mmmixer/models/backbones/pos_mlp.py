"""PosMLP backbone (positional spatial gating with LRPE / GQPE).

Wang et al., "Parameterization of Cross-Token Relations with Relative Positional Encoding for Vision MLP",
ACM MM 2022, arXiv 2207.07284. Presets, defaults and the checkpoint layout follow the official code
Zhicaiwww/PosMLP @ 654f020 (``models/posmlp.py``, ``models/posmlp2D.py``, ``models/patch_downsample.py``,
``config/PosMLP_{T,S}.yaml``); see ``../shared/reference/papers.md`` §2. Written from the paper and the behaviour of
those files; no code copied. Layout and API follow mmpretrain's ``ConvNeXt``/``SwinTransformer`` backbones.
"""
import math
import re
from collections import OrderedDict
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmcv.cnn import build_activation_layer, build_norm_layer
from mmcv.cnn.bricks import DropPath
from mmengine.logging import print_log
from mmengine.model import BaseModule, ModuleList

from mmmixer.registry import MODELS
from .base import CheckpointFitMixin, FrozenStagesMixin
from ..utils import check_input, normalize_out_indices, parse_arch

__all__ = ['PosMLP', 'convert_official_posmlp']

POS_TYPES = ('gqpe', 'lrpe')

# GQPE weights below this are set to zero (see QuadraticPosMap.mixing_matrix): 2**-64 ~ 5.4e-20.
NEGLIGIBLE_WEIGHT = 2.0**-64

# Buffers that older layouts (the official code) store but that are derived from the window size here.
_DERIVED_BUFFERS = ('rel_indices', 'relative_position_index', 'window_relative_position_index')


def window_partition(x: torch.Tensor, window_size: int) -> torch.Tensor:
    """(B, H, W, C) with H, W multiples of ``window_size`` -> (B, H/w, W/w, w*w, C).

    Windows are laid out row-major on the map and tokens row-major inside a window (official order: token
    ``m = row * w + col``).
    """
    B, H, W, C = x.shape
    w = window_size
    x = x.view(B, H // w, w, W // w, w, C).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(B, H // w, W // w, w * w, C)


def window_reverse(windows: torch.Tensor, window_size: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`: (B, nh, nw, w*w, C) -> (B, nh*w, nw*w, C)."""
    B, nh, nw, _, C = windows.shape
    w = window_size
    x = windows.view(B, nh, nw, w, w, C).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(B, nh * w, nw * w, C)


class _PositionalMap(nn.Module):
    """Token mixing of PoSGU inside windows: one N x N matrix per channel group, shared by all windows.

    For channel ``c`` of the gated half ``u`` (C_u channels, ``C_u % gamma == 0``) the group is
    ``s = c mod gamma`` (the official interleaved assignment, einops ``(v s)``), and

        out[m, c] = sum_n P_s[m, n] * u[n, c] + token_proj_n_bias[m]

    with ``m, n`` the row-major token indices of a ``w x w`` window (N = w*w). Subclasses define ``P_s``
    (:class:`QuadraticPosMap` for GQPE, :class:`LearnedPosMap` for LRPE). ``token_proj_n_bias`` (1, N, 1) is the
    official per-output-position bias, shared by channels and groups.

    Padding: a stage pads its map bottom/right to window multiples (fewer than ``w`` rows/columns), so only the
    last window row and column contain padded tokens. In those windows the padded tokens (input columns ``n``)
    get zero weight in ``P_s`` (GQPE: excluded from the softmax, so each real row of ``P_s`` still sums to 1 over
    the real tokens; LRPE: zeroed), and their values are zeroed before the product. Real outputs therefore never
    depend on padded tokens, not even on non-finite values there. Padded outputs are meaningless and cropped by
    the stage. The matrices are computed once per forward per pattern (at most 4: interior, right, bottom,
    corner windows) and applied with one batched matmul per window block.

    Window resizing on load (see :meth:`_load_from_state_dict`): ``token_proj_n_bias`` from a checkpoint with
    another window is resized bicubically as a ``w x w`` grid (it is indexed by absolute position in the window);
    derived buffers stored by older layouts (``rel_indices``, ``*relative_position_index``) are dropped.
    """

    def __init__(self, window_size: int, gamma: int):
        super().__init__()
        self.window_size = window_size
        self.gamma = gamma
        self.token_proj_n_bias = nn.Parameter(torch.zeros(1, window_size**2, 1))

    def mixing_matrix(self, valid: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The token-mixing matrices (gamma, N, N) [group, output m, input n]; ``valid`` (N,) bool masks inputs."""
        raise NotImplementedError

    def _valid_tokens(self, pad_b: int, pad_r: int, device) -> Optional[torch.Tensor]:
        """(N,) bool, True for the real tokens of a window whose last ``pad_b`` rows / ``pad_r`` cols are padding."""
        if pad_b == 0 and pad_r == 0:
            return None
        w = self.window_size
        idx = torch.arange(w * w, device=device)
        return (idx // w < w - pad_b) & (idx % w < w - pad_r)

    @staticmethod
    def _blocks(num: int, pad: int) -> list:
        """Split ``num`` windows along one axis into (slice, padding) parts: only the last window is padded."""
        if pad == 0:
            return [(slice(0, num), 0)]
        if num == 1:
            return [(slice(0, 1), pad)]
        return [(slice(0, num - 1), 0), (slice(num - 1, num), pad)]

    def forward_grouped(self, u: torch.Tensor, pad: Tuple[int, int] = (0, 0)) -> torch.Tensor:
        """The token mixing in the block's fast layout: channels first, grouped, tokens last.

        Args:
            u (Tensor): (gamma, V, B, nh, nw, N): entry ``[s, v, b, i, j, n]`` is channel ``c = v * gamma + s`` of
                the gated half (official interleaved order) at token ``n`` of window ``(i, j)`` of image ``b``.
            pad (tuple[int, int]): (bottom rows, right cols) of padding in the last window row / column, each < w.

        Returns:
            Tensor: same shape. With no padding this is one batched matmul, ``(gamma, V*B*nh*nw, N) @ P^T``, on
            views of ``u`` (no copy); padded windows are mixed per pattern (interior / right / bottom / corner).
        """
        pad_b, pad_r = pad
        s, n = u.shape[0], u.shape[-1]
        if pad_b == 0 and pad_r == 0:
            out = torch.bmm(u.reshape(s, -1, n), self.mixing_matrix().transpose(1, 2)).view(u.shape)
        else:
            rows = []
            for row_slice, pb in self._blocks(u.shape[3], pad_b):
                cols = []
                for col_slice, pr in self._blocks(u.shape[4], pad_r):
                    part = u[:, :, :, row_slice, col_slice]
                    valid = self._valid_tokens(pb, pr, u.device)
                    if valid is not None:
                        part = part.masked_fill(~valid, 0.)
                    mixed = torch.bmm(part.reshape(s, -1, n), self.mixing_matrix(valid).transpose(1, 2))
                    cols.append(mixed.view(part.shape))
                rows.append(cols[0] if len(cols) == 1 else torch.cat(cols, dim=4))
            out = rows[0] if len(rows) == 1 else torch.cat(rows, dim=3)
        return out + self.token_proj_n_bias.view(n)

    def forward(self, u: torch.Tensor, pad: Tuple[int, int] = (0, 0)) -> torch.Tensor:
        """(B, nh, nw, N, C_u) windows, channels last in the official interleaved order -> same shape.

        ``pad`` = (bottom rows, right cols) of padding of the last window row / column, each < w. A reference
        entry point (tests, other layouts): :class:`PosMLPBlock` calls :meth:`forward_grouped` directly on its
        channels-first activations and never pays the two layout copies made here.
        """
        *lead, n, c = u.shape
        grouped = u.reshape(*lead, n, c // self.gamma, self.gamma).permute(5, 4, 0, 1, 2, 3)
        out = self.forward_grouped(grouped.contiguous(), pad)  # (gamma, V, B, nh, nw, N)
        return out.permute(2, 3, 4, 5, 1, 0).reshape(u.shape)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in _DERIVED_BUFFERS:
            state_dict.pop(prefix + name, None)
        key = prefix + 'token_proj_n_bias'
        if key in state_dict and state_dict[key].shape != self.token_proj_n_bias.shape:
            state_dict[key] = self._resize_bias(state_dict[key], key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _resize_bias(self, bias: torch.Tensor, key: str) -> torch.Tensor:
        old = math.isqrt(bias.numel())
        if bias.dim() != 3 or old * old != bias.numel():
            return bias  # not a square-window bias: let the shape check report it
        new = self.window_size
        grid = F.interpolate(bias.reshape(1, 1, old, old).float(), size=(new, new), mode='bicubic',
                             align_corners=False)
        print_log(f'{key}: resized the per-position bias from window {old} to {new} (bicubic).',
                  logger='current')
        return grid.reshape(1, new * new, 1).to(bias.dtype)

    def extra_repr(self) -> str:
        return f'window_size={self.window_size}, gamma={self.gamma}'


class QuadraticPosMap(_PositionalMap):
    """GQPE: generalized quadratic positional encoding (official ``QuaMap``; paper Sec. 3).

    Each group ``s`` has a learned centre ``delta_s`` (``attention_centers``, (gamma, 2)) and, with
    ``generalized=True``, a 2x2 matrix ``A_s`` (``attention_spreads``, (gamma, 2, 2)) giving the inverse covariance
    ``M_s = A_s A_s^T`` (symmetric PSD). For the relative offset ``d = (dx, dy)`` of input ``n`` seen from output
    ``m``, with the official conventions ``dx = col_n - col_m`` and ``dy = row_m - row_n``,

        logit_s[m, n] = -1/2 (d - delta_s)^T M_s (d - delta_s) + const(m)

    expanded over the features ``(dx, dy, dx^2, dy^2, dx*dy)`` (buffer ``rel_indices``), and
    ``P_s = softmax_n(logit_s)``. Six parameters per group, independent of the window (O(1)).

    ``generalized=False`` is the official isotropic variant: ``attention_spreads`` (gamma,) with ``a = spread^2``
    and features ``(dx, dy, dx^2 + dy^2)``, ``logit = a (delta . d) - (dx^2 + dy^2) / 2``. As in the official code
    the spread only scales the linear term (quirk kept for checkpoint compatibility).

    Init (official): centres N(0, 0.01^2); spreads identity (or 1) + N(0, 0.01^2) noise; bias zeros.

    Args:
        window_size (int): window side w (N = w*w tokens).
        gamma (int): number of channel groups, each with its own matrix.
        generalized (bool): full 2x2 spread (True, official released models) or isotropic. Default True.
        init_std (float): std of the init noise. Default 0.01 (official ``att_std``).
    """

    def __init__(self, window_size: int, gamma: int, generalized: bool = True, init_std: float = 0.01):
        super().__init__(window_size, gamma)
        self.generalized = generalized
        self.attention_centers = nn.Parameter(torch.zeros(gamma, 2).normal_(0., init_std))
        if generalized:
            spreads = torch.eye(2).repeat(gamma, 1, 1) + torch.zeros(gamma, 2, 2).normal_(0., init_std)
        else:
            spreads = 1. + torch.zeros(gamma).normal_(0., init_std)
        self.attention_spreads = nn.Parameter(spreads)
        self.register_buffer('rel_indices', self.relative_features(window_size, generalized), persistent=False)

    @staticmethod
    def relative_features(window_size: int, generalized: bool = True) -> torch.Tensor:
        """Features of every (output m, input n) pair: (5, N, N) = (dx, dy, dx^2, dy^2, dx*dy), or (3, N, N)
        = (dx, dy, dx^2 + dy^2) if not ``generalized``; dx = col_n - col_m, dy = row_m - row_n (official signs;
        the official buffer is the same data laid out (N, N, F))."""
        idx = torch.arange(window_size * window_size)
        row, col = idx // window_size, idx % window_size
        dx = (col[None, :] - col[:, None]).float()
        dy = (row[:, None] - row[None, :]).float()
        feats = [dx, dy, dx * dx, dy * dy, dx * dy] if generalized else [dx, dy, dx * dx + dy * dy]
        return torch.stack(feats)

    def _projection(self) -> torch.Tensor:
        """(gamma, F) coefficients of the features in the logits."""
        centers = self.attention_centers
        if self.generalized:
            inv_cov = self.attention_spreads @ self.attention_spreads.transpose(1, 2)
            linear = (inv_cov @ centers.unsqueeze(-1)).squeeze(-1)  # M delta
            quadratic = -0.5 * torch.stack(
                [inv_cov[:, 0, 0], inv_cov[:, 1, 1], inv_cov[:, 0, 1] + inv_cov[:, 1, 0]], dim=-1)
            return torch.cat([linear, quadratic], dim=-1)
        scale = self.attention_spreads**2
        return torch.stack([scale * centers[:, 0], scale * centers[:, 1], torch.full_like(scale, -0.5)], dim=-1)

    def mixing_matrix(self, valid: Optional[torch.Tensor] = None) -> torch.Tensor:
        num_feats, n, _ = self.rel_indices.shape
        logits = (self._projection() @ self.rel_indices.view(num_feats, n * n)).view(self.gamma, n, n)
        if valid is not None:
            logits = logits.masked_fill(~valid, float('-inf'))
        matrix = logits.softmax(dim=-1)
        # Far offsets get weights like exp(-100): their products with activations (forward) and with gradients
        # (backward) are subnormal floats, which make the CPU matmuls 2-8x slower (x86 microcode assists;
        # docs/benchmarks.md) for nothing: each row's largest weight is >= 1/N >= 2**-12 (windows up to 64 x 64),
        # so a weight below NEGLIGIBLE_WEIGHT = 2**-64 is more than 2**52 times smaller, below the rounding of
        # float32 (2**-24) and even float64 (2**-53) sums. They are set to exact zeros.
        return matrix.masked_fill(matrix < NEGLIGIBLE_WEIGHT, 0.)

    def extra_repr(self) -> str:
        return super().extra_repr() + f', generalized={self.generalized}'


class LearnedPosMap(_PositionalMap):
    """LRPE: learned relative positional encoding (official ``LearnedPosMap``; paper Sec. 3).

    ``P_s[m, n] = relative_position_bias_table[index(m, n), s]`` with the Swin index
    ``(row_m - row_n + w - 1) * (2w - 1) + (col_m - col_n + w - 1)`` (buffer ``relative_position_index``), used
    directly (no softmax). (2w-1)^2 entries per group (O(N)). The table starts at zero, as in the official code
    (its ``init_bias_table`` finds no sub-module to initialise).

    Window resizing on load: the table is indexed by token offsets, the unit in which GQPE's parameters carry over
    unchanged, so a checkpoint table is centre-cropped (smaller window: every offset the new window can express
    keeps its value) or zero-padded (larger window: the new, farther offsets start with zero weight).

    Args:
        window_size (int): window side w.
        gamma (int): number of channel groups.
    """

    def __init__(self, window_size: int, gamma: int):
        super().__init__(window_size, gamma)
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window_size - 1)**2, gamma))
        self.register_buffer('relative_position_index', self.relative_index(window_size), persistent=False)

    @staticmethod
    def relative_index(window_size: int) -> torch.Tensor:
        """(N, N) long: table row of each (output m, input n) pair."""
        w = window_size
        idx = torch.arange(w * w)
        row, col = idx // w, idx % w
        return (row[:, None] - row[None, :] + w - 1) * (2 * w - 1) + (col[:, None] - col[None, :] + w - 1)

    def mixing_matrix(self, valid: Optional[torch.Tensor] = None) -> torch.Tensor:
        n = self.window_size**2
        # index_select: its backward (index_add) is several times faster on CPU than that of tensor[index]
        matrix = self.relative_position_bias_table.index_select(0, self.relative_position_index.view(-1))
        matrix = matrix.view(n, n, self.gamma).permute(2, 0, 1)
        if valid is not None:
            matrix = matrix.masked_fill(~valid, 0.)
        return matrix.contiguous()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + 'relative_position_bias_table'
        table = state_dict.get(key)
        own = self.relative_position_bias_table
        if table is not None and table.dim() == 2 and table.shape[0] != own.shape[0]:
            old = math.isqrt(table.shape[0])
            if old * old == table.shape[0] and old % 2 == 1:
                side = 2 * self.window_size - 1
                grid = table.t().reshape(table.shape[1], old, old)
                grid = F.pad(grid, [(side - old) // 2] * 4)  # negative padding crops
                state_dict[key] = grid.reshape(table.shape[1], side * side).t().contiguous()
                print_log(f'{key}: resized the relative position table from window {(old + 1) // 2} to '
                          f'{self.window_size} (centre crop / zero pad, offsets kept).', logger='current')
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


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

    The map is padded bottom/right with zeros to multiples of ``w`` once per stage, partitioned into windows, run
    through all blocks and cropped back (the official code requires exact multiples). A map smaller than the
    window is padded the same way (the window does not shrink). Because padded tokens are masked out of the token
    mixing (see :class:`_PositionalMap`) and every other operation is per token, each real output depends only on
    the real tokens of its window; padding a ``h x w'`` map (h, w' <= w) in a window ``w`` is exactly the
    unpadded computation with the window restricted to the map (the GQPE/LRPE parameters are window independent,
    the per-position bias is read at the real positions).

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
class PosMLP(CheckpointFitMixin, FrozenStagesMixin, BaseModule):
    """PosMLP backbone: `Parameterization of Cross-Token Relations with Relative Positional Encoding for Vision MLP
    <https://arxiv.org/abs/2207.07284>`_ (ACM MM 2022).

    A BN conv stem (stride 4), four stages of :class:`PosMLPBlock` at strides 4/8/16/32 with depthwise-conv +
    LayerNorm downsampling in between; each block gates half of its hidden channels with a windowed token mixing
    parameterised by a relative positional encoding (GQPE or LRPE) per channel group. Modified from the official
    implementation (Zhicaiwww/PosMLP ``models/posmlp.py``): any input size (padding + masking, see
    :class:`PosMLPStage`), per-stage output norms for dense prediction, derived buffers not stored, window resizing
    on load; the converter ``tools/model_converters/posmlp_to_mmmixer.py`` maps official keys.

    Presets (windows 14/14/14/7 by default; params with a 1000-class head, GQPE / LRPE):

    =====  =====================  ==============  ==============  ============  ===========================
    arch   embed_dims             depths          gammas          mlp_ratios    params GQPE / LRPE
    =====  =====================  ==============  ==============  ============  ===========================
    tiny   96, 192, 384, 768      2, 2, 18, 2     8, 16, 32, 64   4, 4, 4, 2    20,925,538 / 21,397,554
    small  128, 256, 512, 1024    2, 2, 18, 2     8, 16, 32, 64   4, 4, 4, 2    36,816,450 / 37,288,466
    base   192, 384, 768, 1536    2, 2, 18, 2     8, 16, 32, 64   4, 4, 4, 2    81,976,834 / 82,448,850
    =====  =====================  ==============  ==============  ============  ===========================

    tiny/small: official ``config/PosMLP_{T,S}.yaml``. base: **our choice** -- the paper reports PosMLP-B (82M
    params, 83.6% top-1) but never published its configuration; the small design with widths 192-1536 gives
    81.98M, matching the reported size (papers.md §2.1 recount). It has no official weights.

    Input sizes: any H, W >= 1. The stride-2 convs give stage maps ceil(H/4), ceil(H/8), ceil(H/16), ceil(H/32)
    (97x131 -> 25x33, 13x17, 7x9, 4x5); each stage pads its map to window multiples and masks the padding, so
    real outputs never depend on the padded tokens (see :class:`PosMLPStage`). At 224 nothing is padded and the
    model computes exactly the official function.

    Args:
        arch (str | dict): 'tiny' | 'small' | 'base' (also 't', 's', 'b'), or a dict with the keys ``embed_dims``
            (int: stage i has ``embed_dims * 2**i`` channels, or a list; each stage's width must be a multiple of
            the previous one for the grouped downsampling conv) and ``depths``, and optionally ``gammas`` (channel
            groups per stage, default [8, 16, 32, 64]) and ``mlp_ratios`` (default [4, 4, 4, 2]). Default 'tiny'.
        in_channels (int): input channels. Default 3.
        pos_type (str): 'gqpe' (official released models) or 'lrpe'. Default 'gqpe'.
        generalized (bool): GQPE with a full 2x2 spread (True, official) or the isotropic variant; only valid
            for GQPE. Default True.
        window_size (int | Sequence[int]): token-mixing window per stage. Default (14, 14, 14, 7) (official).
        drop_rate (float): dropout after each block's ``fc2``. The official yaml uses 0.02333 (and also before its
            head). Default 0.
        drop_path_rate (float): stochastic depth, linearly increasing over all blocks. Default 0.1 (official).
        out_indices (int | Sequence[int]): stages to return; negatives count from the end. Default -1.
        frozen_stages (int): -1 none, 0 the stem, k the stem and the first k stages with their output norms (mmdet
            ResNet semantics); frozen parts stay in eval mode (the stem's BN included). Default -1.
        norm_eval (bool): keep every BatchNorm (the stem's) in eval mode during training. Default False.
        with_cp (bool): gradient checkpointing per block (``use_reentrant=False``). Default False.
        gap_before_final_norm (bool): False (default, official order and dense prediction): each returned stage is
            normalised per position, (B, C, H, W); the official classifier then average-pools (our configs: neck
            ``GlobalAveragePooling``). True: pool, then normalise, (B, C) (the mmpretrain ConvNeXt order; not the
            official function, for new trainings only).
        stem_norm_cfg (dict): norm of the stem, acting on (B, C, H, W). Default ``dict(type='BN', eps=1e-6)``
            (official); e.g. 'SyncBN' for detection.
        norm_cfg (dict): channels-last norm of blocks, downsampling and outputs. Default
            ``dict(type='LN', eps=1e-6)`` (official).
        act_cfg (dict): activation. Default GELU (official).
        init_cfg (dict | list[dict], optional): default = official ``_init_weights``: truncated normal (std 0.02)
            for Linear and Conv2d with zero bias, ones/zeros for LayerNorm and BatchNorm. The positional parameters
            keep their constructor init (see :class:`QuadraticPosMap`, :class:`LearnedPosMap`).

    Returns (forward):
        tuple[Tensor]: one tensor per ``out_indices`` entry, (B, C_i, H_i, W_i) or (B, C_i).

    Raises:
        ValueError: unknown arch, custom arch with wrong keys or lengths, widths that the grouped downsampling
            cannot produce, a gated width not divisible by gamma, bad ``pos_type``/``generalized``/``window_size``/
            ``out_indices``/``frozen_stages``, a channels-last LayerNorm as ``stem_norm_cfg``, and at forward time
            an input that is not (B, in_channels, H, W).
    """
    _official = {'depths': [2, 2, 18, 2], 'gammas': [8, 16, 32, 64], 'mlp_ratios': [4, 4, 4, 2]}
    # shown in the error for a checkpoint of another arch (CheckpointFitMixin); tables and stale index buffers of
    # another window size are adapted / dropped on load (_PositionalMap._load_from_state_dict)
    _arch_fields = ('embed_dims', 'depths', 'gammas', 'mlp_ratios', 'pos_type', 'generalized', 'window_size',
                    'in_channels')
    _dropped_on_load = _DERIVED_BUFFERS

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

    arch_zoo = {
        **dict.fromkeys(['t', 'tiny'], {'embed_dims': [96, 192, 384, 768], **_official}),
        **dict.fromkeys(['s', 'small'], {'embed_dims': [128, 256, 512, 1024], **_official}),
        # our choice (the paper never published PosMLP-B's configuration): 81.98M params, see the docstring
        **dict.fromkeys(['b', 'base'], {'embed_dims': [192, 384, 768, 1536], **_official}),
    }

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
                 stem_norm_cfg: dict = dict(type='BN', eps=1e-6),
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 act_cfg: dict = dict(type='GELU'),
                 init_cfg: Optional[Union[dict, list]] = [
                     dict(type='TruncNormal', layer=['Linear', 'Conv2d'], std=.02, bias=0.),
                     dict(type='Constant', layer=['LayerNorm', '_BatchNorm'], val=1., bias=0.)
                 ]):
        super().__init__(init_cfg=init_cfg)
        arch = parse_arch(arch, self.arch_zoo, {'embed_dims', 'depths'}, 'PosMLP', {'gammas', 'mlp_ratios'})
        self.depths = [int(d) for d in arch['depths']]
        self.num_stages = len(self.depths)
        dims = arch['embed_dims']
        self.embed_dims = [int(dims) * 2**i for i in range(self.num_stages)] \
            if isinstance(dims, int) else [int(d) for d in dims]
        self.gammas = [int(g) for g in arch.get('gammas', self._official['gammas'])]
        self.mlp_ratios = list(arch.get('mlp_ratios', self._official['mlp_ratios']))
        for name, values in (('embed_dims', self.embed_dims), ('gammas', self.gammas),
                             ('mlp_ratios', self.mlp_ratios)):
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
        self.in_channels = in_channels
        self.pos_type = pos_type
        self.generalized = generalized
        self.window_size = windows
        self.out_indices = normalize_out_indices(out_indices, self.num_stages, 'PosMLP')
        if not -1 <= frozen_stages <= self.num_stages:
            raise ValueError(f'PosMLP: frozen_stages must be in [-1, {self.num_stages}] (-1: none, 0: stem, '
                             f'k: stem + first k stages), got {frozen_stages}.')
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.gap_before_final_norm = gap_before_final_norm

        self.patch_embed = ConvStem(in_channels, self.embed_dims[0], stem_norm_cfg, act_cfg)
        dpr = torch.linspace(0, drop_path_rate, sum(self.depths), device='cpu').tolist()
        self.stages = ModuleList()
        for i, depth in enumerate(self.depths):
            start = sum(self.depths[:i])
            self.stages.append(
                PosMLPStage(
                    in_channels=self.embed_dims[max(i - 1, 0)], embed_dims=self.embed_dims[i], depth=depth,
                    window_size=windows[i], downsample=i > 0,
                    block_cfg=dict(gamma=self.gammas[i], mlp_ratio=self.mlp_ratios[i], pos_type=pos_type,
                                   generalized=generalized, drop_rate=drop_rate, act_cfg=act_cfg,
                                   with_cp=with_cp),
                    drop_path_rates=dpr[start:start + depth], norm_cfg=norm_cfg))
        for i in self.out_indices:
            self.add_module(f'norm{i}', build_norm_layer(norm_cfg, self.embed_dims[i])[1])
        self._freeze_stages()

    def forward(self, x: torch.Tensor) -> tuple:
        """(B, in_channels, H, W) -> tuple of (B, C_i, ceil(H/s_i), ceil(W/s_i)) or (B, C_i)."""
        check_input(x, self.in_channels, 1, 'PosMLP')
        x = self.patch_embed(x)
        outs = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in self.out_indices:
                norm = getattr(self, f'norm{i}')
                if self.gap_before_final_norm:
                    outs.append(norm(x.mean(dim=(2, 3))))
                else:
                    outs.append(norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2).contiguous())
        return tuple(outs)

    def get_layer_depth(self, param_name: str, prefix: str = ''):
        """Layer id of a parameter for layer-wise learning-rate decay (mmpretrain Swin convention).

        ``num_layers = sum(depths) + 2``: the stem is layer 0, block j of stage i is ``sum(depths[:i]) + j + 1``,
        a stage's downsampling shares the id of the block before it, and everything else (output norms, head,
        parameters outside ``prefix``) is the last layer.

        Args:
            param_name (str): e.g. ``'backbone.stages.1.blocks.0.fc1.weight'``.
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
        if match.group(3) is None:
            return sum(self.depths[:stage]), num_layers
        return sum(self.depths[:stage]) + int(match.group(3)) + 1, num_layers


def convert_official_posmlp(state_dict: dict) -> dict:
    """Map an official PosMLP ``state_dict`` (Zhicaiwww/PosMLP ``PosMLP``, GQPE or LRPE) onto an mmmixer classifier.

    Key mapping (papers.md §2.5 lists the official keys; ``{b}`` = ``levels.{i}.encoder.{j}``):

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
        ValueError: a key that is not part of a supported official PosMLP model (e.g. another family's
            checkpoint, ``ape=True``'s ``absolute_pos_embed`` or ``pos_only=False``'s ``token_proj_n_weight``);
            the message lists up to five of them.
    """
    sd = {k[7:] if k.startswith('module.') else k: v for k, v in state_dict.items()}
    if 'patch_embed.projs.0.weight' not in sd or not any(k.startswith('levels.') for k in sd):
        raise ValueError('Not an official PosMLP checkpoint: expected keys "patch_embed.projs.0.weight" and '
                         f'"levels.*"; found e.g. {sorted(sd)[:5]}.')
    depths = []
    for k in sd:
        m = re.match(r'levels\.(\d+)\.encoder\.(\d+)\.', k)
        if m:
            i, j = int(m.group(1)), int(m.group(2))
            depths.extend([0] * (i + 1 - len(depths)))
            depths[i] = max(depths[i], j + 1)
    last = len(depths) - 1
    block = r'levels\.(\d+)\.encoder\.(\d+)\.'
    rules = [
        (r'patch_embed\.projs\.(\d)\.(weight|bias)', lambda m: f'backbone.patch_embed.convs.{m[1]}.{m[2]}'),
        (r'patch_embed\.norms\.(\d)\.(.*)', lambda m: f'backbone.patch_embed.norms.{m[1]}.{m[2]}'),
        (r'levels\.(\d+)\.pool\.(conv|norm)\.(weight|bias)',
         lambda m: f'backbone.stages.{m[1]}.downsample.{m[2]}.{m[3]}'),
        (block + r'(norm|proj_c_e|proj_c_s)\.(weight|bias)',
         lambda m: f'backbone.stages.{m[1]}.blocks.{m[2]}.'
         f'{dict(norm="norm", proj_c_e="fc1", proj_c_s="fc2")[m[3]]}.{m[4]}'),
        (block + r'gate_unit\.pos\.(attention_centers|attention_spreads|token_proj_n_bias)',
         lambda m: f'backbone.stages.{m[1]}.blocks.{m[2]}.pos_map.{m[3]}'),
        (block + r'gate_unit\.pos\.window_relative_position_bias_table',
         lambda m: f'backbone.stages.{m[1]}.blocks.{m[2]}.pos_map.relative_position_bias_table'),
        (block + r'gate_unit\.pos\.(rel_indices|window_relative_position_index)', lambda m: None),
        (r'norm\.(weight|bias)', lambda m: f'backbone.norm{last}.{m[1]}'),
        (r'head\.(weight|bias)', lambda m: f'head.fc.{m[1]}'),
    ]
    out, leftover = OrderedDict(), []
    for key, value in sd.items():
        for pattern, repl in rules:
            m = re.fullmatch(pattern, key)
            if m:
                new_key = repl(m)
                if new_key is not None:
                    out[new_key] = value
                break
        else:
            leftover.append(key)
    if leftover:
        raise ValueError(f'{len(leftover)} keys of the checkpoint are not part of a supported official PosMLP '
                         f'model, e.g. {leftover[:5]}; is it another family\'s checkpoint (or ape=True / '
                         f'pos_only=False, which mmmixer does not implement)?')

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
