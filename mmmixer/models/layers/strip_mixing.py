"""Token mixing modules of Strip-MLP: CGSMM (cascade group strip mixing), LSMM (local strip mixing) and GRN.

Cao et al., "Strip-MLP: Efficient Token Interaction for Vision MLP", ICCV 2023, arXiv 2307.11458
(https://arxiv.org/abs/2307.11458), Sec. 3; official code Med-Process/Strip_MLP @ 492d705 (``models/strip_mlp.py``:
``StripMLP_Block``); the any-size strategy refines the sliding-window CGSMM of MLP-DINO (Med-Process/MLP-DINO
``models/dino/strip_mlp.py``). Facts in docs/papers.md, "Strip-MLP". Written from those sources' behaviour; no code
copied.
"""
from collections import OrderedDict
from typing import List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_activation_layer, build_norm_layer

__all__ = ['window_starts', 'GRN', 'CGSMM', 'LSMM', 'pointwise_conv']


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


def pointwise_conv(inputs: Sequence[torch.Tensor], conv: nn.Conv2d, norm: Optional[nn.Module] = None) -> torch.Tensor:
    """``norm(conv(torch.cat(inputs, dim=1)))`` for a 1x1 ``conv``, as matrix products on channels-last views.

    Each input (B, C_i, H, W) is read as a (B*H*W, C_i) matrix (a view when it is in channels_last memory) and
    multiplied by its slice of the weight, the products accumulated by ``addmm``: no concatenated copy, and a
    BLAS GEMM instead of PyTorch's CPU 1x1-conv path. A BatchNorm ``norm`` in eval mode (running statistics) is
    folded into the weight and bias (``BN(W x + b) = (s W) x + s (b - mean) + beta``, ``s = gamma / sqrt(var +
    eps)``; one pass over the map fewer); in training mode it runs on the result. The same function up to float
    rounding; parameters and state_dict unchanged, gradients flow to them.

    Returns:
        Tensor: (B, C_out, H, W) in channels_last memory.
    """
    weight, bias = conv.weight.flatten(1), conv.bias
    fold = isinstance(norm, nn.modules.batchnorm._BatchNorm) and not norm.training and norm.running_var is not None
    if fold:
        scale = norm.weight * torch.rsqrt(norm.running_var + norm.eps)
        weight = weight * scale[:, None]
        bias = norm.bias - norm.running_mean * scale + (0 if bias is None else bias * scale)
    B, _, H, W = inputs[0].shape
    out, start = None, 0
    for x in inputs:
        c = x.shape[1]
        rows, w_t = x.permute(0, 2, 3, 1).reshape(-1, c), weight[:, start:start + c].t()
        if out is None:
            out = torch.mm(rows, w_t) if bias is None else torch.addmm(bias, rows, w_t)
        else:
            out = torch.addmm(out, rows, w_t)
        start += c
    out = out.view(B, H, W, -1).permute(0, 3, 1, 2)
    return out if norm is None or fold else norm(out)


def _coverage(starts: Sequence[int], length: int, size: int, like: torch.Tensor) -> torch.Tensor:
    """How many windows cover each of ``size`` positions, as a (size,) tensor on ``like``'s device/dtype."""
    count = like.new_zeros(size)
    for s in starts:
        count[s:s + length] += 1
    return count


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
        # channel) factor computed on the small tensor (4-5x faster than the official four passes). The small
        # factors take x's dtype: under autocast the norm runs in float32, and a float32 factor would promote the
        # whole map to float32 (one more pass, and a cast back before the next matmul)
        return torch.addcmul(self.beta.to(x.dtype), x, (1 + self.gamma * nx).to(x.dtype))


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
    (docs/papers.md, "Strip-MLP"). At the trained size H = W = L the module computes exactly the official function. At any
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
        # (n, B, P, G, L, T) -> conv input (n*B*P, G*L, 1, T): channel g*L + l is strip position l of group g,
        # laid out channels_last (one copy, as before): PyTorch's CPU grouped conv runs 5-15x faster on it than on
        # contiguous NCHW for the stage 2-4 strips (the official code's permuted input is channels_last too)
        n, b, p = windows.shape[:3]
        conv_in = windows.permute(0, 1, 2, 5, 3, 4).reshape(-1, 1, other, groups * length).permute(0, 3, 1, 2)
        out = conv(conv_in).permute(0, 2, 3, 1).view(n, b, p, other, groups, length).permute(0, 1, 2, 4, 5, 3)
        if len(starts) == 1:
            out = out[0, ..., :size, :]
        else:
            summed = out.new_zeros(x.shape)
            for k, s in enumerate(starts):
                summed[..., s:s + length, :] += out[k]
            out = summed.div_(_coverage(starts, length, size, summed)[:, None])
        if axis == 3:
            out = out.transpose(-1, -2)
        # (B, P, G, H, W) -> (B, C, H, W) in channels_last memory (one copy), as the 1x1 convs read it
        B, _, _, H, W = out.shape
        return out.permute(0, 3, 4, 1, 2).reshape(B, H, W, -1).permute(0, 3, 1, 2)

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
        # (the position maps take the activations' dtype: a float32 map would promote an autocast bfloat16 map to
        # float32, and the strip MLP would cast it back)
        if trained_size:  # the official computation
            rows = self._mix(self.row_mix, x + self.position_map(self.row_pos).to(x.dtype), 3, [0])
        else:
            starts_h, starts_w = window_starts(height, length), window_starts(width, length)
            rows = self._mix(self.row_mix, x, 3, starts_w) + self._windowed_position(
                self.row_mix, self.row_pos, 3, starts_h, starts_w, height, width)
        y = self.act(pointwise_conv([rows, x], self.row_fuse, self.row_norm))  # = act(BN(row_fuse(cat)))
        if trained_size:
            cols = self._mix(self.col_mix, y + self.position_map(self.col_pos).to(y.dtype), 2, [0])
        else:
            cols = self._mix(self.col_mix, y, 2, starts_h) + self._windowed_position(
                self.col_mix, self.col_pos, 2, starts_h, starts_w, height, width)
        return pointwise_conv([x, cols], self.col_fuse)  # = col_fuse(cat[x, cols])

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
        # (the small weights take the maps' dtype: under autocast softmax runs in float32, see GRN)
        weights = weights.view(x.shape[0], x.shape[1], 3, 1, 1).softmax(dim=2).to(tall.dtype)
        # tall * a0 + wide * a1 + x * a2 with fused multiply-adds: three passes instead of five
        out = torch.addcmul(tall * weights[:, :, 0], wide, weights[:, :, 1])
        return torch.addcmul(out, x, weights[:, :, 2])
