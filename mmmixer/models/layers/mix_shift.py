"""The Mix-Shift (MS) block of MS-MLP, shared by :class:`~mmmixer.models.MSMLP` and the Swin hybrid.

Reference: Zheng et al., "Mixing and Shifting: Exploiting Global and Local Dependencies in Vision MLPs",
arXiv 2202.06510, Fig. 2 and Sec. 3; official code ``models/ms_mlp.py`` (``MixShiftBlock``) of
JegZheng/MS-MLP @ a10d34d. Written from the paper and that file's behaviour; no code copied.
"""
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmcv.cnn import build_activation_layer, build_norm_layer
from mmcv.cnn.bricks import DropPath

__all__ = ['MixShiftBlock', 'split_channels']

SHIFT_MODES = ('circular', 'zero')


def split_channels(channels: int, groups: int) -> list:
    """Channel group sizes exactly as ``torch.chunk`` makes them (official MS-MLP grouping).

    Each group gets ``ceil(channels / groups)`` channels and the last one the remainder, e.g.
    ``split_channels(96, 5) == [20, 20, 20, 20, 16]`` (docs/papers.md, "MS-MLP").

    Raises:
        ValueError: if ``torch.chunk`` would give fewer than ``groups`` non-empty groups
            (e.g. 6 channels in 5 groups), which the official layer cannot represent either.
    """
    size = -(-channels // groups)
    sizes = [size] * (channels // size)
    if channels % size:
        sizes.append(channels % size)
    if len(sizes) != groups:
        raise ValueError(
            f'Cannot split {channels} channels into {groups} mix-shift groups the way the official code '
            f'(torch.chunk) does: it gives {len(sizes)} groups {sizes}. Use a channel count whose '
            f'torch.chunk into {groups} parts has {groups} parts (e.g. channels >= {groups * (groups - 1)} '
            f'or a multiple of {groups}).')
    return sizes


class MixShiftBlock(nn.Module):
    """Mix-Shift block: grouped shift + depthwise mixing along W and H, then a channel MLP.

    For channel group ``g`` (``torch.chunk`` grouping) with shift ``s = shift_dist[g]`` and kernel
    ``k = mix_size[g]``, the horizontal branch shifts the group by ``s`` tokens along W and applies a k x k
    depthwise conv (``dwconv_lr[g]``); the vertical branch does the same along H (``dwconv_td[g]``). The two
    branches are summed, then LayerNorm -> Linear(C, r*C) -> GELU -> Linear(r*C, C) -> layer scale
    (``gamma``) -> DropPath -> residual add. There is no norm before the token mixing (official block).

    Args:
        embed_dims (int): channels C.
        shift_dist (Sequence[int]): shift (tokens) of each channel group; its length is the number of
            groups. Default (-2, -1, 0, 1, 2) (official yaml ``SHIFT_DIST``).
        mix_size (Sequence[int]): odd depthwise kernel size per group. Default (1, 1, 3, 5, 7) (official
            stage-1 ``MIX_SIZE``).
        mlp_ratio (float): hidden width of the channel MLP relative to C. Default 4 (official).
        layer_scale_init_value (float): initial layer scale; 0 disables it. Default 1e-6 (official).
        drop_path_rate (float): stochastic depth probability of this block. Default 0.
        shift_mode (str): how a shift treats the map border. ``'circular'`` (default) is the official
            ``torch.roll``: tokens shifted out on one side re-enter on the other. ``'zero'`` shifts in zeros
            instead (no wrap-around; translation-equivariant, independent of the padding added by
            dense-prediction pipelines). The two agree away from the |s|-token border strip.
        norm_cfg (dict): norm before the channel MLP (channels-last). Default LN, eps 1e-6 (official).
        act_cfg (dict): activation of the channel MLP. Default GELU.
        with_cp (bool): gradient checkpointing of this block (``use_reentrant=False``). Default False.

    Shapes:
        input and output: (B, C, H, W), any H, W >= 1. The output is in channels_last memory (the layout the
        depthwise convs and the channel MLP run fastest in); a channels_last input needs no layout copy.

    Raises:
        ValueError: unequal lengths of ``shift_dist``/``mix_size``, an even kernel size, an unknown
            ``shift_mode``, or a channel count that cannot be grouped (see :func:`split_channels`).
    """

    def __init__(self,
                 embed_dims: int,
                 shift_dist: Sequence[int] = (-2, -1, 0, 1, 2),
                 mix_size: Sequence[int] = (1, 1, 3, 5, 7),
                 mlp_ratio: float = 4.,
                 layer_scale_init_value: float = 1e-6,
                 drop_path_rate: float = 0.,
                 shift_mode: str = 'circular',
                 norm_cfg: dict = dict(type='LN', eps=1e-6),
                 act_cfg: dict = dict(type='GELU'),
                 with_cp: bool = False):
        super().__init__()
        if len(shift_dist) != len(mix_size):
            raise ValueError(f'shift_dist {list(shift_dist)} and mix_size {list(mix_size)} must have one '
                             f'entry per channel group (same length).')
        if any(k < 1 or k % 2 == 0 for k in mix_size):
            raise ValueError(f'MixShiftBlock: mix_size must hold odd kernel sizes >= 1 (one per shift group), got '
                             f'{list(mix_size)}.')
        if shift_mode not in SHIFT_MODES:
            raise ValueError(f'shift_mode must be one of {SHIFT_MODES}, got {shift_mode!r}.')
        self.embed_dims = embed_dims
        self.shift_dist = [int(s) for s in shift_dist]
        self.mix_size = [int(k) for k in mix_size]
        self.shift_mode = shift_mode
        self.with_cp = with_cp
        try:
            self.group_channels = split_channels(embed_dims, len(self.shift_dist))
        except ValueError as err:  # name the settings: embed_dims (a stage width) and shift_dist (the groups)
            raise ValueError(f'{err} (MixShiftBlock embed_dims={embed_dims}, one group per shift_dist entry '
                             f'{self.shift_dist}; in MSMLP / SwinMSMLP the stage widths are arch embed_dims * '
                             '2**i).') from None

        def dwconvs():
            return nn.ModuleList(
                nn.Conv2d(c, c, kernel_size=k, padding=k // 2, groups=c)
                for c, k in zip(self.group_channels, self.mix_size))

        self.dwconv_lr = dwconvs()  # horizontal: shift along W
        self.dwconv_td = dwconvs()  # vertical: shift along H
        hidden = int(mlp_ratio * embed_dims)
        self.norm = build_norm_layer(norm_cfg, embed_dims)[1]
        self.pwconv1 = nn.Linear(embed_dims, hidden)
        self.act = build_activation_layer(act_cfg)
        self.pwconv2 = nn.Linear(hidden, embed_dims)
        self.gamma = nn.Parameter(layer_scale_init_value * torch.ones(embed_dims)) \
            if layer_scale_init_value > 0 else None
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0. else nn.Identity()

    def _shift_mix(self, x: torch.Tensor, shift: int, conv: nn.Conv2d, dim: int) -> torch.Tensor:
        """Shift one group by ``shift`` tokens along ``dim`` (2 = H, 3 = W), then its depthwise conv."""
        if shift == 0:
            return conv(x)
        if self.shift_mode == 'circular':
            return conv(torch.roll(x, shift, dim))
        # zero-filled shift: crop |s| tokens on one side, then pad |s| zeros on the other (crop + non-negative pad
        # rather than one F.pad with a negative amount: the latter exports to an ONNX Pad with negative pads,
        # which not every runtime accepts, e.g. onnx.reference; tests/test_deploy.py)
        size, s = x.shape[dim], abs(shift)
        if s >= size:
            return conv(torch.zeros_like(x))
        pad = [0, 0, 0, 0]  # F.pad order: W left, W right, H top, H bottom
        side = 0 if dim == 3 else 2
        if shift > 0:  # content moves towards higher indices: drop the last s tokens, zeros enter at the start
            pad[side] = s
            x = x.narrow(dim, 0, size - s)
        else:
            pad[side + 1] = s
            x = x.narrow(dim, s, size - s)
        return conv(F.pad(x, pad))

    def token_mix(self, x: torch.Tensor) -> torch.Tensor:
        """Mix-and-shift token mixing: (B, C, H, W) -> (B, C, H, W) in channels_last memory."""
        if torch.is_autocast_enabled(x.device.type):
            # the convs would cast each group twice (once per branch); one cast of the whole map halves that, and the
            # shifts then move half the bytes
            x = x.to(torch.get_autocast_dtype(x.device.type))
        out = []
        for xg, s, lr, td in zip(torch.split(x, self.group_channels, dim=1), self.shift_dist, self.dwconv_lr,
                                 self.dwconv_td):
            # depthwise convs run several times faster on channels_last memory (CPU oneDNN), and the group outputs,
            # read as (B, H, W, C_g), concatenate into the (B, H, W, C) map the channel MLP reads without a copy
            xg = xg.contiguous(memory_format=torch.channels_last)
            out.append((self._shift_mix(xg, s, lr, 3) + self._shift_mix(xg, s, td, 2)).permute(0, 2, 3, 1))
        return torch.cat(out, dim=-1).permute(0, 3, 1, 2)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.token_mix(x).permute(0, 2, 3, 1)  # (B, H, W, C), contiguous
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        if self.gamma is not None:
            y = y * self.gamma
        return x + self.drop_path(y.permute(0, 3, 1, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        if self.with_cp and x.requires_grad:
            return cp.checkpoint(self._forward, x, use_reentrant=False)
        return self._forward(x)

    def extra_repr(self) -> str:
        return (f'embed_dims={self.embed_dims}, shift_dist={self.shift_dist}, mix_size={self.mix_size}, '
                f'shift_mode={self.shift_mode!r}')
