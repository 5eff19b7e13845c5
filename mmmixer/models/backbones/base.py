"""The skeleton every mmmixer backbone is built on: :class:`MixerBackbone`.

A small contract (what a family provides) and the few behaviours the four families share, in the pattern of
mmpretrain's ``ConvNeXt`` / ``SwinTransformer`` and mmdet's ``ResNet``: arch parsing, ``out_indices`` /
``frozen_stages`` / ``norm_eval`` / ``gap_before_final_norm``, the stochastic-depth schedule, the output norms
``norm{i}`` and the output loop, and ``get_layer_depth`` for layer-wise learning-rate decay. The checkpoint side
(``pretrained``, ``Pretrained`` loading, official layouts) is the mixin :class:`mmmixer.checkpoint.CheckpointHooks`.
A family file holds, in this order: block -> stage -> backbone -> official checkpoint layout (README.md, "Code layout").
"""
import copy
import re
from typing import Any, Dict, FrozenSet, List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from mmmixer.checkpoint import CheckpointHooks, check_local_pretrained, pretrained_to_init_cfg
from ..utils import check_input, normalize_out_indices, parse_arch

__all__ = ['MixerBackbone']


class MixerBackbone(CheckpointHooks, BaseModule):
    """Base class of the mmmixer backbones: a stem ``patch_embed``, stages ``stages[i]`` and output norms ``norm{i}``.

    The contract of a family (``tests/test_models/test_family_pattern.py`` holds every family to it):

    * class attributes: ``arch_zoo`` (preset name -> ``embed_dims``, ``depths`` and family keys), and where they
      differ from the defaults ``arch_keys`` / ``arch_optional_keys`` (keys a custom arch dict must / may have),
      ``default_init_cfg`` (the family's default initialisation, also the default of its ``init_cfg`` argument;
      None: PyTorch's), ``stem_name`` (what ``frozen_stages=0`` freezes, for errors), ``out_norm_layout``
      ('channels_last': LayerNorm over C, pooled first with ``gap_before_final_norm``; 'channels_first':
      BatchNorm2d on (B, C, H, W), pooled after the norm) and ``downsample_at_end`` (stage i's ``downsample`` runs
      after its blocks, as in Swin; only changes :meth:`get_layer_depth`);
    * ``__init__`` takes the shared arguments below with these defaults and passes them by keyword to
      ``super().__init__`` first, then builds ``patch_embed`` and ``stages`` and calls :meth:`_add_output_norms` and
      :meth:`_freeze_stages`;
    * :meth:`forward_stem` and :meth:`forward_stage`; optionally :meth:`forward_output`, :meth:`_frozen_modules`,
      :meth:`_extra_layer_id`, and the checkpoint hooks of :class:`mmmixer.checkpoint.CheckpointHooks` (an
      override keeps the hook's arguments, return value and error class). A family with an official checkpoint
      layout sets ``official`` after the class; ``convert_official`` is inherited.

    Args (shared by every family, documented here once):
        arch (str | dict): preset name of ``arch_zoo`` or a custom dict with the family's keys. Default: the
            family's ('tiny').
        in_channels (int): input channels. Default 3.
        out_indices (int | Sequence[int]): stages to return; negative values count from the end. Default -1.
        frozen_stages (int): -1 nothing, 0 the stem, k the stem and the first k stages with their output norms
            (mmdet ResNet semantics); frozen modules have ``requires_grad=False`` and stay in eval mode. Default -1.
        norm_eval (bool): keep every BatchNorm in eval mode during training. Default False.
        gap_before_final_norm (bool): False: each returned stage is a normalised map (B, C, H, W) for dense heads.
            True: classification output (B, C), pooled before or after the norm as ``out_norm_layout`` says; refused
            with several ``out_indices``. Default False.
        return_tuple (bool): True: :meth:`forward` returns a tuple, one tensor per ``out_indices`` entry (the
            mmpretrain / mmdet / mmseg convention). False: with exactly one ``out_indices`` entry it returns that
            tensor, as mmaction2's own backbones do and its ``Recognizer2D`` heads expect (README "Swap into your
            project"). Default True.
        pretrained (str, optional): deprecated (as in mmdet / mmseg backbones): ``init_cfg=dict(type='Pretrained',
            checkpoint=pretrained)``. mmseg's ``EncoderDecoder`` passes its ``model.pretrained`` here. Default None.
        init_cfg (dict | list[dict], optional): initialisation (deep-copied); a ``Pretrained`` entry is handled by
            :meth:`init_weights` (our checkpoints, and official ones converted in memory). Default: the family's
            ``default_init_cfg``.

    Raises:
        ValueError: unknown arch, custom arch with wrong keys, ``out_indices`` / ``frozen_stages`` out of range,
            ``gap_before_final_norm=True`` with several ``out_indices``, ``return_tuple=False`` with several
            ``out_indices``, ``pretrained`` together with an ``init_cfg`` ``Pretrained`` entry.
        TypeError: a ``pretrained`` that is not a str.

    A ``Pretrained`` checkpoint that is a local path and does not exist is reported as a warning at build time (the
    model must still build for inference tools that load a full checkpoint later) and raises ``FileNotFoundError`` in
    :meth:`init_weights`; our ``tools/train.py`` checks it before the Runner starts.

    Stage widths and strides are stated without running the model: :meth:`arch_feature_info` (class method, from an
    arch name or dict), and on an instance :attr:`feature_info` (every stage) and :attr:`out_channels` (the returned
    stages), in the spirit of timm's ``feature_info``.
    """
    arch_zoo: Dict[str, dict] = {}
    arch_keys: FrozenSet[str] = frozenset({'embed_dims', 'depths'})
    arch_optional_keys: FrozenSet[str] = frozenset()
    stem_name = 'stem'
    out_norm_layout = 'channels_last'
    downsample_at_end = False

    def __init__(self,
                 *,
                 arch: Union[str, dict],
                 in_channels: int,
                 out_indices: Union[int, Sequence[int]],
                 frozen_stages: int,
                 norm_eval: bool,
                 gap_before_final_norm: bool,
                 init_cfg: Optional[Union[dict, list]],
                 pretrained: Optional[str] = None,
                 return_tuple: bool = True):
        name = type(self).__name__
        init_cfg = pretrained_to_init_cfg(pretrained, copy.deepcopy(init_cfg), name)
        check_local_pretrained(init_cfg, self)
        super().__init__(init_cfg=init_cfg)
        self.arch_settings = parse_arch(arch, self.arch_zoo, set(self.arch_keys), name, set(self.arch_optional_keys))
        self.depths = [int(d) for d in self.arch_settings['depths']]
        self.num_stages = len(self.depths)
        self.embed_dims = self._stage_widths(self.arch_settings)
        self.in_channels = in_channels
        self.out_indices = normalize_out_indices(out_indices, self.num_stages, name)
        if not -1 <= frozen_stages <= self.num_stages:
            raise ValueError(f'{name}: frozen_stages must be in [-1, {self.num_stages}] (-1: none, 0: '
                             f'{self.stem_name}, k: {self.stem_name} + first k stages), got {frozen_stages}.')
        if gap_before_final_norm and len(self.out_indices) > 1:
            raise ValueError(
                f'{name}: gap_before_final_norm=True pools every returned stage to (B, C), but out_indices='
                f'{self.out_indices} asks for several stages, which dense heads (FPN, UperNet, ...) need as maps; '
                'accepted: gap_before_final_norm=False for dense prediction (the default), or one stage (e.g. '
                'out_indices=-1) for classification.')
        if not return_tuple and len(self.out_indices) != 1:
            raise ValueError(
                f'{name}: return_tuple=False returns one tensor, so out_indices must name exactly one stage, got '
                f'{self.out_indices}; accepted: return_tuple=True (a tuple, one tensor per stage) or one stage, '
                'e.g. out_indices=(3,).')
        self.return_tuple = bool(return_tuple)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.gap_before_final_norm = gap_before_final_norm
        self.pretrained_report = None

    # -------------------------------------------------------------------------------------------- stage widths
    @classmethod
    def _stage_widths(cls, arch_settings: dict) -> List[int]:
        """Per-stage widths from parsed arch settings (an int ``embed_dims`` doubles at every stage)."""
        dims, num_stages = arch_settings['embed_dims'], len(arch_settings['depths'])
        widths = [int(dims) * 2**i for i in range(num_stages)] if isinstance(dims, int) else [int(d) for d in dims]
        if len(widths) != num_stages:
            raise ValueError(f'{cls.__name__}: arch embed_dims {dims} must be an int or give one width per stage '
                             f'({num_stages} stages from depths {list(arch_settings["depths"])}).')
        return widths

    @classmethod
    def arch_feature_info(cls, arch: Union[str, dict] = 'tiny', patch_size: Optional[int] = None) -> List[dict]:
        """Width and stride of every stage of an arch, without building the model.

        Args:
            arch (str | dict): preset name of ``arch_zoo`` or a custom arch dict, as the ``arch`` argument.
                Default 'tiny'.
            patch_size (int, optional): the stem stride; None: the family's default ``patch_size`` argument (4 in
                every family).

        Returns:
            list[dict]: one dict per stage i, ``{'stage': i, 'num_chs': C_i, 'reduction': stride in pixels,
            'module': 'stages.i'}`` (timm's ``feature_info`` keys), e.g. MS-MLP-T: 96/192/384/768 channels at
            strides 4/8/16/32.

        Raises:
            ValueError: unknown arch name or a custom arch with wrong keys (same errors as building the model).
        """
        import inspect
        settings = parse_arch(arch, cls.arch_zoo, set(cls.arch_keys), cls.__name__, set(cls.arch_optional_keys))
        if patch_size is None:
            param = inspect.signature(cls.__init__).parameters.get('patch_size')
            patch_size = param.default if param is not None else 4
        return [dict(stage=i, num_chs=c, reduction=int(patch_size) * 2**i, module=f'stages.{i}')
                for i, c in enumerate(cls._stage_widths(settings))]

    @property
    def feature_info(self) -> List[dict]:
        """Every stage's ``{'stage', 'num_chs', 'reduction', 'module'}`` (see :meth:`arch_feature_info`)."""
        stride = self.total_stride // 2**(self.num_stages - 1) if hasattr(self, 'total_stride') else 4
        return [dict(stage=i, num_chs=c, reduction=stride * 2**i, module=f'stages.{i}')
                for i, c in enumerate(self.embed_dims)]

    @property
    def out_channels(self) -> tuple:
        """Widths of the tensors :meth:`forward` returns, one per ``out_indices`` entry, e.g. (96, 192, 384, 768)."""
        return tuple(self.embed_dims[i] for i in self.out_indices)

    # ------------------------------------------------------------------------------------------------- building
    def _drop_path_rates(self, rate: float, mode: str = 'linear') -> List[List[float]]:
        """Per-stage lists of stochastic-depth rates: 'linear' rises from 0 to ``rate`` over all blocks
        (Swin / ConvNeXt convention), 'uniform' gives every block ``rate``."""
        total = sum(self.depths)
        rates = [float(rate)] * total if mode == 'uniform' else \
            torch.linspace(0, rate, total, device='cpu').tolist()
        starts = [sum(self.depths[:i]) for i in range(self.num_stages)]
        return [rates[s:s + d] for s, d in zip(starts, self.depths)]

    def _add_output_norms(self, norm_cfg: dict) -> None:
        """One norm ``norm{i}`` per returned stage (``norm{last}`` is the official final norm)."""
        for i in self.out_indices:
            self.add_module(f'norm{i}', build_norm_layer(norm_cfg, self.embed_dims[i])[1])

    # ------------------------------------------------------------------------------------------------ forward
    @property
    def min_input_size(self) -> int:
        """Smallest accepted input side in pixels (the total stride unless a family says otherwise)."""
        return getattr(self, 'total_stride', 1)

    def forward_stem(self, x: torch.Tensor) -> Any:
        """(B, in_channels, H, W) -> the state the first stage takes (a map, or tokens and their shape)."""
        raise NotImplementedError

    def forward_stage(self, i: int, x: Any, cache: dict) -> Any:
        """Run stage ``i`` on the state ``x``; ``cache`` carries values between stages of one call."""
        raise NotImplementedError

    def forward_output(self, i: int, x: Any) -> torch.Tensor:
        """Stage ``i``'s returned tensor from the (B, C, H, W) map ``x``: normalised map, or (B, C) with
        ``gap_before_final_norm``."""
        norm = getattr(self, f'norm{i}')
        if self.out_norm_layout == 'channels_first':
            out = norm(x)
            return out.mean(dim=(2, 3)) if self.gap_before_final_norm else out.contiguous()
        if self.gap_before_final_norm:
            return norm(x.mean(dim=(2, 3)))
        return norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2).contiguous()

    def forward(self, x: torch.Tensor) -> Union[tuple, torch.Tensor]:
        """(B, in_channels, H, W) -> tuple with one tensor per ``out_indices`` entry: (B, C_i, H_i, W_i), or (B, C_i)
        with ``gap_before_final_norm``; with ``return_tuple=False`` the one tensor itself.

        Raises:
            TypeError / ValueError: the input is not a floating-point (B, in_channels, H, W) tensor with H, W >=
                :attr:`min_input_size` (:func:`mmmixer.models.utils.check_input`).
        """
        check_input(x, self.in_channels, self.min_input_size, type(self).__name__)
        x, cache, outs = self.forward_stem(x), {}, []
        for i in range(self.num_stages):
            x = self.forward_stage(i, x, cache)
            if i in self.out_indices:
                outs.append(self.forward_output(i, x))
        return tuple(outs) if self.return_tuple else outs[0]

    # ------------------------------------------------------------------------------- freezing and train mode
    def _frozen_modules(self) -> List[nn.Module]:
        """The stem, the first ``frozen_stages`` stages and their output norms (families extend this)."""
        modules = [self.patch_embed] if self.frozen_stages >= 0 else []
        for i in range(self.frozen_stages):
            modules.append(self.stages[i])
            if i in self.out_indices:
                modules.append(getattr(self, f'norm{i}'))
        return modules

    def _freeze_stages(self) -> None:
        for module in self._frozen_modules():
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True):
        """Set train/eval mode, keeping frozen parts (and every BatchNorm if ``norm_eval``) in eval mode."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self

    # ------------------------------------------------------------------------------------ layer-wise lr decay
    def _extra_layer_id(self, name: str) -> Optional[int]:
        """Layer id of a family-specific module outside ``patch_embed`` / ``stages`` (None: the last layer)."""
        return None

    def get_layer_depth(self, param_name: str, prefix: str = ''):
        """Layer id of a parameter for layer-wise learning-rate decay (mmpretrain Swin / ConvNeXt convention).

        ``num_layers = sum(depths) + 2``: the stem is layer 0, block j of stage i is ``sum(depths[:i]) + j + 1``,
        a stage's downsampling shares the id of the block that runs before it (the last block of the previous
        stage, or with ``downsample_at_end`` the stage's own last block), and everything else (output norms, head,
        parameters outside ``prefix``) is the last layer.

        Args:
            param_name (str): full parameter name, e.g. ``'backbone.stages.1.blocks.0.fc1.weight'``.
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
            extra = self._extra_layer_id(name)
            return (num_layers - 1 if extra is None else extra), num_layers
        stage = int(match.group(1))
        if match.group(3) is None:  # downsample
            return sum(self.depths[:stage + 1 if self.downsample_at_end else stage]), num_layers
        return sum(self.depths[:stage]) + int(match.group(3)) + 1, num_layers
