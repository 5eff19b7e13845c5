"""Swin + MS-MLP hybrid backbone: Swin Transformer stages whose blocks are window attention or Mix-Shift blocks.

The MS-MLP paper (Zheng et al., "Mixing and Shifting: Exploiting Global and Local Dependencies in Vision MLPs",
arXiv 2202.06510) states in its abstract that combining MS-MLP with Swin Transformer improves Swin-T/S/B; how the
hybrid is built is not available (no code in JegZheng/MS-MLP @ a10d34d), so the block layout is a per-stage
*pattern* and the named layouts are our design (docs/families.md, "Swin + MS-MLP hybrid").

Everything Swin comes from mmpretrain 1.2.0 (``mmpretrain.models.backbones.swin_transformer.SwinBlock``, which
holds ``ShiftWindowMSA``) and mmcv (``PatchEmbed``, ``PatchMerging``), laid out with exactly the module names of
mmpretrain's ``SwinTransformer`` (``patch_embed``, ``stages.{i}.blocks.{j}``, ``stages.{i}.downsample``,
``norm{i}``), so an mmpretrain Swin checkpoint initialises the patch embedding, the attention blocks and the
merging layers (:func:`~mmmixer.checkpoint.swin.load_swin_pretrained`). The MS block is
:class:`~mmmixer.models.layers.MixShiftBlock`. mmpretrain is imported lazily, inside :class:`SwinMSMLP`
(``import mmmixer.models`` stays free of mmpretrain, mmdet and mmseg).
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmcv.cnn.bricks.transformer import PatchEmbed, PatchMerging
from mmengine.model import BaseModule, ModuleList

from mmmixer.checkpoint import CheckpointLoadError
from mmmixer.checkpoint import SwinLoadReport, load_swin_pretrained, resize_bias_table  # noqa: F401 (API)
from mmmixer.registry import MODELS
from .base import MixerBackbone
from .ms_mlp import MSMLP
from ..layers.mix_shift import MixShiftBlock

__all__ = [
    'SwinMSMLP', 'SwinLoadReport', 'load_swin_pretrained', 'resize_bias_table', 'BLOCK_TYPES', 'NAMED_PATTERNS'
]

#: Block type letters of a pattern: window attention (W-MSA), shifted-window attention (SW-MSA), MS block.
BLOCK_TYPES = {'W': 'window attention (W-MSA)', 'S': 'shifted-window attention (SW-MSA)', 'M': 'Mix-Shift block'}


def _alternate(even: str, odd: str):
    return lambda depth, stage: ''.join(even if j % 2 == 0 else odd for j in range(depth))


#: Named block patterns: name -> function(depth, stage index) -> the stage's pattern string.
NAMED_PATTERNS = {
    # Swin Transformer itself: W-MSA and SW-MSA alternate in every stage (parity / baseline).
    'swin': _alternate('W', 'S'),
    # MS blocks replace the shifted-window attention blocks: mix-and-shift provides the cross-window
    # connection that the cyclic shift provided. Default.
    'ms_shift': _alternate('W', 'M'),
    # MS blocks in the high-resolution stages 1-2, unchanged Swin attention in stages 3-4.
    'ms_early': lambda depth, stage: 'M' * depth if stage < 2 else _alternate('W', 'S')(depth, stage),
    # Only MS blocks in the Swin macro layout (ablation end point; no attention, nothing from a Swin checkpoint
    # but the patch embedding and the merging layers).
    'ms_all': lambda depth, stage: 'M' * depth,
}

_MS_CFG_KEYS = {'shift_dist', 'mix_size', 'layer_scale_init_value', 'shift_mode', 'norm_cfg', 'act_cfg'}


def _import_swin_block():
    """mmpretrain's ``SwinBlock``, imported on first use (mmmixer must not import mmpretrain at import time)."""
    try:
        from mmpretrain.models.backbones.swin_transformer import SwinBlock
    except ImportError as err:
        raise ImportError(
            'SwinMSMLP builds its attention blocks from mmpretrain (SwinBlock / ShiftWindowMSA), which could not '
            f'be imported ({err}). Install it with `pip install mmpretrain` (tested with 1.2.0; it also needs '
            'torchvision).') from err
    return SwinBlock


class TokenMixShiftBlock(MixShiftBlock):
    """:class:`MixShiftBlock` on Swin's token layout: (B, H*W, C) plus ``hw_shape`` in and out.

    Same parameters and maths as :class:`MixShiftBlock` (NCHW); only the layout changes, so the parameter names
    (``dwconv_lr``, ``dwconv_td``, ``norm``, ``pwconv1``, ``pwconv2``, ``gamma``) match MS-MLP's blocks.
    """

    def forward(self, x: torch.Tensor, hw_shape: Sequence[int]) -> torch.Tensor:
        """(B, H*W, C), (H, W) -> (B, H*W, C)."""
        b, n, c = x.shape
        h, w = hw_shape
        # (B, H*W, C) read as a channels_last (B, C, H, W) map and back: views, no copy (the block computes in
        # channels_last memory)
        x = x.view(b, h, w, c).permute(0, 3, 1, 2)
        return super().forward(x).permute(0, 2, 3, 1).reshape(b, n, c)


class SwinMSMLPStage(BaseModule):
    """One stage: a sequence of Swin blocks and MS blocks, then (except in the last stage) patch merging.

    Module names follow mmpretrain's ``SwinBlockSequence``: ``blocks.{j}`` and ``downsample`` (mmcv
    ``PatchMerging``: 2x2 neighbourhood concat -> LayerNorm -> Linear(4C, 2C, bias=False), odd maps padded
    bottom/right). The stage's own forward runs only the blocks; the backbone applies ``downsample`` after
    taking the stage output.

    Shapes: blocks (B, H*W, C) -> (B, H*W, C); ``downsample`` -> (B, ceil(H/2)*ceil(W/2), 2C).
    """

    def __init__(self, embed_dims: int, pattern: str, num_heads: int, window_size: int, mlp_ratio: float,
                 drop_paths: Sequence[float], pad_small_map: bool, ms_block_cfg: dict, norm_cfg: dict,
                 downsample: bool, with_cp: bool, swin_block_cls: type):
        super().__init__()
        self.pattern = pattern
        self.with_cp = with_cp
        self.blocks = ModuleList()
        for j, kind in enumerate(pattern):
            if kind == 'M':
                block = TokenMixShiftBlock(
                    embed_dims, mlp_ratio=mlp_ratio, drop_path_rate=drop_paths[j], with_cp=False, **ms_block_cfg)
            else:
                block = swin_block_cls(
                    embed_dims=embed_dims, num_heads=num_heads, window_size=window_size, shift=kind == 'S',
                    ffn_ratio=mlp_ratio, drop_path=drop_paths[j], pad_small_map=pad_small_map,
                    norm_cfg=norm_cfg, with_cp=False)
            self.blocks.append(block)
        self.downsample = PatchMerging(
            in_channels=embed_dims, out_channels=2 * embed_dims, norm_cfg=norm_cfg) if downsample else None

    def forward(self, x: torch.Tensor, hw_shape: Sequence[int]) -> torch.Tensor:
        """Run the blocks: (B, H*W, C) -> (B, H*W, C). Gradient checkpointing per block if ``with_cp``."""
        for block in self.blocks:
            if self.with_cp and x.requires_grad:
                x = cp.checkpoint(block, x, hw_shape, use_reentrant=False)
            else:
                x = block(x, hw_shape)
        return x


@MODELS.register_module()
class SwinMSMLP(MixerBackbone):
    """Swin Transformer with Mix-Shift blocks: a Swin + MS-MLP hybrid backbone.

    Combines `Swin Transformer <https://arxiv.org/abs/2103.14030>`_ (mmpretrain's implementation) with the
    Mix-Shift block of `MS-MLP <https://arxiv.org/abs/2202.06510>`_ (official code: JegZheng/MS-MLP, which has no
    hybrid code). Swin's macro layout: 4x4/stride-4 patch embedding with LayerNorm, four stages at strides
    4/8/16/32 joined by patch merging, LayerNorm output norms ``norm{i}``. Each block of a stage is one of
    ``'W'`` (mmpretrain ``SwinBlock``, window attention), ``'S'`` (shifted-window attention) or ``'M'``
    (:class:`~mmmixer.models.layers.MixShiftBlock`, MS-MLP's stage-``i`` kernel sizes and shifts unless ``ms_cfg``
    says otherwise). The paper's hybrid layout is not available; the named patterns are our design, and why
    'ms_shift' is the default is in docs/families.md, "Swin + MS-MLP hybrid".

    ============  =======================================================================================
    pattern       blocks of each stage
    ============  =======================================================================================
    'ms_shift'    **default.** ``W M W M ...``: the MS block takes the place of every shifted-window
                  attention block.
    'ms_early'    stages 1-2 ``M M ...``, stages 3-4 Swin ``W S W S ...``.
    'ms_all'      ``M M ...`` everywhere (no attention; ablation end point).
    'swin'        ``W S W S ...``: plain Swin Transformer (same parameters and outputs as mmpretrain's
                  ``SwinTransformer``).
    ============  =======================================================================================

    Presets (mmpretrain ``SwinTransformer.arch_zoo``):

    ========  ===========  ===============  ==================
    arch      embed_dims   depths           num_heads
    ========  ===========  ===============  ==================
    tiny      96           [2, 2, 6, 2]     [3, 6, 12, 24]
    small     96           [2, 2, 18, 2]    [3, 6, 12, 24]
    base      128          [2, 2, 18, 2]    [4, 8, 16, 32]
    ========  ===========  ===============  ==================

    Args:
        arch (str | dict): 'tiny' | 'small' | 'base' (also 't', 's', 'b'), or a dict with exactly the keys
            ``embed_dims`` (int, stage i has ``embed_dims * 2**i`` channels), ``depths`` and ``num_heads``
            (one entry per stage). Default 'tiny'.
        block_pattern (str | Sequence[str]): a name from the table above, or one string per stage of the letters
            'W', 'S', 'M', one letter per block, e.g. ``['WM', 'WM', 'WSWMWM', 'WS']``. Default 'ms_shift'.
        patch_size (int): patch embedding kernel and stride. Default 4 (Swin).
        window_size (int): attention window. Default 7 (Swin-T/S/B at 224).
        mlp_ratio (float): hidden width of the FFN / channel MLP of both block types. Default 4 (Swin, MS-MLP).
        ms_cfg (dict, optional): settings of the MS blocks, keys among ``shift_dist`` (default (-2, -1, 0, 1,
            2)), ``mix_size`` (one list of kernel sizes per stage; default ``MSMLP.default_mix_size``),
            ``layer_scale_init_value`` (1e-6), ``shift_mode`` ('circular'; 'zero' for dense prediction),
            ``norm_cfg`` (LN eps 1e-6) and ``act_cfg`` (GELU). Default None (all defaults).
        pad_small_map (bool): mmpretrain ``ShiftWindowMSA`` semantics: True pads maps smaller than the window and
            always shifts; False skips the shift when a map equals the window and refuses smaller maps. Default
            True.
        drop_rate (float): dropout after the patch embedding. Default 0.
        drop_path_rate (float): stochastic depth, linearly increasing over all blocks (both types). Default 0.1
            (mmpretrain ``SwinTransformer``).
        with_cp (bool): gradient checkpointing per block (``use_reentrant=False``). Default False.
        norm_cfg (dict): norm of the patch embedding, the Swin blocks, the merging layers and the output norms.
            Default ``dict(type='LN')`` (mmpretrain Swin).
        init_cfg (dict | list[dict], optional): default ``default_init_cfg``: truncated normal (std 0.02, bias 0)
            for Linear, ones/zeros for LayerNorm (official Swin and MS-MLP ``_init_weights``), truncated normal
            (std 0.02) for the relative position bias tables (mmpretrain ``WindowMSA.init_weights``), PyTorch
            default for convs. A ``Pretrained`` mmpretrain Swin checkpoint loads through :func:`load_swin_pretrained`
            (MS blocks stay new; docs/families.md, "Swin + MS-MLP hybrid").
        in_channels, out_indices, frozen_stages, norm_eval, gap_before_final_norm, pretrained, return_tuple:
            shared, see :class:`~mmmixer.models.backbones.base.MixerBackbone` (defaults 3, -1, -1, False, False, None,
            True);
            ``gap_before_final_norm=False`` with a ``GlobalAveragePooling`` neck is mmpretrain's Swin classifier.

    Shapes:
        input (B, in_channels, H, W) with H, W >= 32; output one tensor per ``out_indices`` entry,
        (B, C_i, ceil(H/2**(i+2)), ceil(W/2**(i+2))), or (B, C_i) with ``gap_before_final_norm``.

    Raises:
        ImportError: mmpretrain is not installed (a pattern with attention blocks).
        ValueError: the shared argument errors (:class:`~mmmixer.models.backbones.base.MixerBackbone`), unknown
            pattern name, ``num_heads`` that do not divide the stage widths, ``window_size`` < 1, a pattern with the
            wrong number of stages / blocks or an unknown letter, unknown ``ms_cfg`` keys, and at forward time an
            input that is not (B, in_channels, H >= 32, W >= 32) or (with ``pad_small_map=False``) makes an
            attention stage's map smaller than the window.
        TypeError: ``block_pattern`` is neither a str nor a sequence of str.
        CheckpointLoadError: a ``Pretrained`` checkpoint that does not fit (:func:`load_swin_pretrained`).
    """
    _arch_fields = ('embed_dims', 'depths', 'num_heads', 'block_pattern', 'window_size', 'in_channels')
    arch_zoo = {
        **dict.fromkeys(['t', 'tiny'], {'embed_dims': 96, 'depths': [2, 2, 6, 2], 'num_heads': [3, 6, 12, 24]}),
        **dict.fromkeys(['s', 'small'], {'embed_dims': 96, 'depths': [2, 2, 18, 2], 'num_heads': [3, 6, 12, 24]}),
        **dict.fromkeys(['b', 'base'], {'embed_dims': 128, 'depths': [2, 2, 18, 2], 'num_heads': [4, 8, 16, 32]}),
    }
    arch_keys = frozenset({'embed_dims', 'depths', 'num_heads'})
    stem_name = 'patch embedding'
    downsample_at_end = True  # Swin: stage i's merging layer runs after its blocks
    #: official Swin and MS-MLP ``_init_weights``; the attention blocks add their bias-table init
    default_init_cfg = [
        dict(type='TruncNormal', layer=['Linear'], std=.02, bias=0.),
        dict(type='Constant', layer=['LayerNorm'], val=1., bias=0.)
    ]
    init_before_pretrained = True  # MS blocks left new by a Swin checkpoint get the MS-MLP init
    default_pattern = 'ms_shift'

    def __init__(self,
                 arch: Union[str, dict] = 'tiny',
                 block_pattern: Union[str, Sequence[str]] = 'ms_shift',
                 in_channels: int = 3,
                 patch_size: int = 4,
                 window_size: int = 7,
                 mlp_ratio: float = 4.,
                 ms_cfg: Optional[dict] = None,
                 pad_small_map: bool = True,
                 drop_rate: float = 0.,
                 drop_path_rate: float = 0.1,
                 out_indices: Union[int, Sequence[int]] = -1,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 gap_before_final_norm: bool = False,
                 return_tuple: bool = True,
                 norm_cfg: dict = dict(type='LN'),
                 pretrained: Optional[str] = None,
                 init_cfg: Optional[Union[dict, list]] = default_init_cfg):
        super().__init__(arch=arch, in_channels=in_channels, out_indices=out_indices, frozen_stages=frozen_stages,
                         norm_eval=norm_eval, gap_before_final_norm=gap_before_final_norm, init_cfg=init_cfg,
                         pretrained=pretrained, return_tuple=return_tuple)
        if isinstance(self.arch_settings['embed_dims'], (list, tuple)):
            raise ValueError(f'SwinMSMLP: arch embed_dims must be an int (stage i has embed_dims * 2**i channels), '
                             f'got {self.arch_settings["embed_dims"]}.')
        self.num_heads = [int(h) for h in self.arch_settings['num_heads']]
        if len(self.num_heads) != self.num_stages:
            raise ValueError(f'SwinMSMLP: arch num_heads {self.num_heads} must give one entry per stage '
                             f'({self.num_stages} stages from depths {self.depths}).')
        for i, (dims, heads) in enumerate(zip(self.embed_dims, self.num_heads)):
            if heads < 1 or dims % heads:
                raise ValueError(f'SwinMSMLP: arch num_heads {self.num_heads}: stage {i} has {dims} channels, which '
                                 f'{heads} attention heads cannot share; accepted: a divisor of each stage width '
                                 f'{self.embed_dims}.')
        if not isinstance(window_size, int) or window_size < 1:
            raise ValueError(f'SwinMSMLP: window_size must be a positive int (tokens per window side), got '
                             f'{window_size!r}.')
        self.block_pattern = self.parse_pattern(block_pattern, self.depths)
        ms_cfg = dict(ms_cfg or {})
        unknown = set(ms_cfg) - _MS_CFG_KEYS
        if unknown:
            raise ValueError(f'SwinMSMLP: unknown ms_cfg keys {sorted(unknown)}; accepted: {sorted(_MS_CFG_KEYS)}.')
        mix_size = [list(m) for m in (ms_cfg.pop('mix_size', None) or MSMLP.default_mix_size)]
        if len(mix_size) != self.num_stages:
            raise ValueError(f'SwinMSMLP: ms_cfg mix_size needs one row per stage ({self.num_stages}), got '
                             f'{len(mix_size)} rows: {mix_size}.')
        self.window_size = window_size
        self.pad_small_map = pad_small_map
        self.total_stride = patch_size * 2**(self.num_stages - 1)
        self.patch_size = patch_size

        swin_block_cls = _import_swin_block() if any('M' != k for p in self.block_pattern for k in p) else None
        # stem: conv k=s=patch_size then LayerNorm, 'corner' padding (mmpretrain SwinTransformer patch_embed)
        self.patch_embed = PatchEmbed(
            in_channels=in_channels, embed_dims=self.embed_dims[0], conv_type='Conv2d', kernel_size=patch_size,
            stride=patch_size, padding='corner', norm_cfg=norm_cfg)
        self.drop_after_pos = nn.Dropout(p=drop_rate)
        dpr = self._drop_path_rates(drop_path_rate)
        self.stages = ModuleList(
            SwinMSMLPStage(
                embed_dims=self.embed_dims[i], pattern=self.block_pattern[i], num_heads=self.num_heads[i],
                window_size=window_size, mlp_ratio=mlp_ratio, drop_paths=dpr[i], pad_small_map=pad_small_map,
                ms_block_cfg=dict(ms_cfg, mix_size=mix_size[i]), norm_cfg=norm_cfg,
                downsample=i < self.num_stages - 1, with_cp=with_cp, swin_block_cls=swin_block_cls)
            for i in range(self.num_stages))
        self._add_output_norms(norm_cfg)
        self._freeze_stages()

    @classmethod
    def parse_pattern(cls, block_pattern: Union[str, Sequence[str]], depths: Sequence[int]) -> List[str]:
        """Resolve ``block_pattern`` into one string of block letters ('W', 'S', 'M') per stage.

        Args:
            block_pattern (str | Sequence[str]): a name of :data:`NAMED_PATTERNS` or per-stage strings.
            depths (Sequence[int]): blocks per stage.

        Returns:
            list[str]: e.g. ``['WM', 'WM', 'WMWMWM', 'WM']`` for 'ms_shift' at depths [2, 2, 6, 2].

        Raises:
            ValueError: unknown name, wrong number of stages, a stage string whose length differs from its depth,
                or a letter outside 'W', 'S', 'M'.
            TypeError: neither a str nor a sequence of str.
        """
        if isinstance(block_pattern, str):
            if block_pattern not in NAMED_PATTERNS:
                raise ValueError(f'SwinMSMLP: block_pattern {block_pattern!r} is not a named pattern; accepted: '
                                 f'{sorted(NAMED_PATTERNS)} or one string of letters {sorted(BLOCK_TYPES)} per '
                                 f'stage.')
            return [NAMED_PATTERNS[block_pattern](d, i) for i, d in enumerate(depths)]
        if not isinstance(block_pattern, Sequence) or not all(isinstance(p, str) for p in block_pattern):
            raise TypeError(f'SwinMSMLP: block_pattern must be a pattern name or a sequence of per-stage strings, '
                            f'got {block_pattern!r}.')
        pattern = [p.upper() for p in block_pattern]
        if len(pattern) != len(depths):
            raise ValueError(f'SwinMSMLP: block_pattern {list(block_pattern)} has {len(pattern)} stages, the arch '
                             f'has {len(depths)} (depths {list(depths)}).')
        for i, (p, d) in enumerate(zip(pattern, depths)):
            if len(p) != d:
                raise ValueError(f'SwinMSMLP: block_pattern stage {i} {p!r} has {len(p)} blocks, the arch depth '
                                 f'is {d} (depths {list(depths)}).')
            bad = sorted(set(p) - set(BLOCK_TYPES))
            if bad:
                raise ValueError(f'SwinMSMLP: block_pattern stage {i} {p!r} has unknown letters {bad}; accepted: '
                                 + ', '.join(f"'{k}' = {v}" for k, v in BLOCK_TYPES.items()) + '.')
        return pattern

    def _check_map_sizes(self, h: int, w: int) -> None:
        """With ``pad_small_map=False``, an attention stage's map must not be smaller than the window."""
        for i, pattern in enumerate(self.block_pattern):
            if i > 0:
                h, w = -(-h // 2), -(-w // 2)
            if set(pattern) - {'M'} and min(h, w) < self.window_size:
                raise ValueError(f'SwinMSMLP: stage {i} map {h}x{w} is smaller than window_size '
                                 f'{self.window_size}; set pad_small_map=True (default) or use a larger input.')

    def forward_stem(self, x: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        """(B, in_channels, H, W) -> tokens (B, h*w, C0) and their map shape (h, w) = (ceil(H/4), ceil(W/4))."""
        x, hw_shape = self.patch_embed(x)
        if not self.pad_small_map:
            self._check_map_sizes(*hw_shape)
        return self.drop_after_pos(x), hw_shape

    def forward_stage(self, i: int, x: Tuple[torch.Tensor, Tuple[int, int]], cache: dict):
        """The previous stage's merging layer (if any), then stage i's blocks; tokens (B, h*w, C) in and out."""
        x, hw_shape = x
        if i > 0:
            x, hw_shape = self.stages[i - 1].downsample(x, hw_shape)
        return self.stages[i](x, hw_shape), hw_shape

    def forward_output(self, i: int, x: Tuple[torch.Tensor, Tuple[int, int]]) -> torch.Tensor:
        """Tokens -> (B, C) (pool, then norm) or the normalised map (B, C, h, w) (mmpretrain Swin's output)."""
        x, hw_shape = x
        norm = getattr(self, f'norm{i}')
        if self.gap_before_final_norm:
            return norm(x.mean(dim=1))
        return norm(x).view(-1, *hw_shape, self.embed_dims[i]).permute(0, 3, 1, 2).contiguous()

    # ------------------------------------------------------------------ Swin checkpoints (mmpretrain layout)
    def _upgrade_state_dict(self, state_dict: dict, prefix: str, resize: bool = True) -> None:
        """Older mmpretrain / mmcls Swin layouts, in place (mmpretrain ``SwinTransformer._load_from_state_dict``,
        versions < 3): ``norm.*`` -> ``norm{last}.*``, ``attn_mask`` buffers dropped, relative position bias tables
        of another window size resized (:func:`resize_bias_table`)."""
        last = f'{prefix}norm{self.num_stages - 1}.'
        own = self.state_dict()
        for key in list(state_dict):
            if not key.startswith(prefix):
                continue
            if key.endswith('attn_mask'):
                del state_dict[key]
            elif key.startswith(f'{prefix}norm.') and last + key[len(prefix) + 5:] not in state_dict:
                state_dict[last + key[len(prefix) + 5:]] = state_dict.pop(key)
            elif resize and key.endswith('relative_position_bias_table'):
                target = own.get(key[len(prefix):])
                table = state_dict[key]
                if target is not None and table.shape != target.shape and table.dim() == 2 \
                        and table.shape[1] == target.shape[1]:
                    state_dict[key] = resize_bias_table(table, target.shape[0])

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        self._upgrade_state_dict(state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _tolerate_on_load(self, key: str, checkpoint_tensor, model_tensor) -> bool:
        """Relative position bias tables of another window size (resized on load)."""
        shape = tuple(getattr(checkpoint_tensor, 'shape', ()))
        return key.endswith('relative_position_bias_table') and len(shape) == 2 and \
            shape[1] == model_tensor.shape[1] and round(shape[0]**0.5)**2 == shape[0]

    def _adapt_pretrained(self, state: dict) -> dict:
        state = dict(state)
        self._upgrade_state_dict(state, '', resize=False)  # tables: resized while loading, reported as resized
        return state

    def _derived_on_load(self, key: str) -> bool:
        return key.endswith('relative_position_index')  # computed from the window size

    def _may_be_new(self, key: str) -> bool:
        """MS blocks (a Swin checkpoint has attention there) and output norms."""
        return key.startswith(self._ms_block_prefixes()) or super()._may_be_new(key)

    def _may_be_unused(self, key: str) -> bool:
        """A checkpoint's blocks where this pattern has MS blocks (a Swin checkpoint has attention there) and other
        output norms; any other unused tensor (e.g. blocks or stages this arch lacks) is a mismatch."""
        return key.startswith(self._ms_block_prefixes()) or super()._may_be_unused(key)

    def _ms_block_prefixes(self) -> Tuple[str, ...]:
        """``'stages.{i}.blocks.{j}.'`` of every MS block of the pattern."""
        return tuple(f'stages.{i}.blocks.{j}.' for i, p in enumerate(self.block_pattern)
                     for j, kind in enumerate(p) if kind == 'M')

    def _raise_pretrained_mismatch(self, name: str, plan, problems: List[str]) -> None:
        """The base error (:class:`~mmmixer.checkpoint.CheckpointLoadError` listing ``problems``) with the Swin hints:
        the arch to match, and the checkpoint format when the patch embedding is missing."""
        hint = ''
        if 'patch_embed.projection.weight' in plan.required_missing:
            hint = (' Is it an mmpretrain-format Swin checkpoint? Official microsoft/Swin-Transformer checkpoints '
                    '("layers.*" keys) must be converted to mmpretrain\'s layout first (mmpretrain publishes '
                    'converted copies).')
        where = 'the checkpoint dict' if name == 'the checkpoint dict' else f'checkpoint "{name}"'
        raise CheckpointLoadError(f'load_swin_pretrained: {where}: ' + '; '.join(problems) + '. Does the checkpoint '
                                  f'have the same arch (embed_dims {self.embed_dims[0]}, depths {self.depths}, '
                                  f'num_heads {self.num_heads}) and patch size? Pass strict=False to load what '
                                  f'fits.{hint}')
