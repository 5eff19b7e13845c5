"""Token mixing of PosMLP's positional spatial gating unit (PoSGU): windows and relative positional maps.

Wang et al., "Parameterization of Cross-Token Relations with Relative Positional Encoding for Vision MLP", ACM MM
2022, arXiv 2207.07284 (https://arxiv.org/abs/2207.07284), Sec. 3; official code Zhicaiwww/PosMLP @ 654f020
(``models/posmlp2D.py``: ``QuaMap``, ``LearnedPosMap``); facts in docs/papers.md, "PosMLP". Written from the paper
and the behaviour of those files; no code copied.

* :func:`window_partition` / :func:`window_reverse`: (B, H, W, C) maps <-> (B, nh, nw, w*w, C) windows.
* :class:`QuadraticPosMap` (GQPE) and :class:`LearnedPosMap` (LRPE): one N x N mixing matrix per channel group,
  shared by every window, with masked padding (any input size) and window resizing on load.
"""
import math
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import print_log

__all__ = ['window_partition', 'window_reverse', 'QuadraticPosMap', 'LearnedPosMap', 'NEGLIGIBLE_WEIGHT',
           'DERIVED_BUFFERS']

# GQPE weights below this are set to zero (see QuadraticPosMap.mixing_matrix): 2**-64 ~ 5.4e-20.
NEGLIGIBLE_WEIGHT = 2.0**-64

#: Buffers that older layouts (the official code) store but that are derived from the window size here.
DERIVED_BUFFERS = ('rel_indices', 'relative_position_index', 'window_relative_position_index')


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
            Tensor: same shape. One batched matmul, ``(gamma, V*B*nh*nw, N) @ P^T``, on views of ``u`` (no copy);
            with padding, the windows of the last row / column are then recomputed per pattern (right / bottom /
            corner) with masked matrices and written over their first result.
        """
        pad_b, pad_r = pad
        s, n = u.shape[0], u.shape[-1]
        bias = self.token_proj_n_bias.view(1, 1, n)  # added by the matmuls (no extra pass)
        # every window with the unmasked matrices: one batched matmul on a view of u (no copy) ...
        out = torch.baddbmm(bias, u.reshape(s, -1, n), self.mixing_matrix().transpose(1, 2)).view(u.shape)
        if pad_b or pad_r:
            # ... then only the padded windows (last window row / column) again with their masked matrices,
            # written over their first result: no copy or concatenation of the interior windows
            for row_slice, pb in self._blocks(u.shape[3], pad_b):
                for col_slice, pr in self._blocks(u.shape[4], pad_r):
                    valid = self._valid_tokens(pb, pr, u.device)
                    if valid is None:
                        continue
                    part = u[:, :, :, row_slice, col_slice].masked_fill(~valid, 0.)
                    mixed = torch.baddbmm(bias, part.reshape(s, -1, n), self.mixing_matrix(valid).transpose(1, 2))
                    out[:, :, :, row_slice, col_slice] = mixed.view(part.shape)
        return out

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
        for name in DERIVED_BUFFERS:
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

