"""Swin Transformer checkpoints (mmpretrain layout) into :class:`~mmmixer.models.backbones.SwinMSMLP`.

The hybrid's ``Pretrained`` rules live on the backbone as hooks of the shared loader
(:func:`mmmixer.checkpoint.pretrained.load_pretrained`: ``_upgrade_state_dict`` in ``_load_from_state_dict``,
``_tolerate_on_load``, ``_may_be_new``, ...); this module holds the explicit entry point
:func:`load_swin_pretrained` and the relative-position-table resize they use.
"""
from typing import Optional

import torch

from mmmixer.registry import MODELS
from .pretrained import LoadReport, load_pretrained, read_checkpoint

__all__ = ['SwinLoadReport', 'load_swin_pretrained', 'resize_bias_table']


#: the report of :func:`load_swin_pretrained` (the loader's :class:`~mmmixer.checkpoint.pretrained.LoadReport`)
SwinLoadReport = LoadReport


def load_swin_pretrained(model: 'SwinMSMLP', checkpoint, prefix: Optional[str] = None,
                         strict: bool = True) -> LoadReport:
    """Initialise a :class:`SwinMSMLP` from an mmpretrain Swin Transformer checkpoint and report what came from it.

    The loader of ``init_cfg=dict(type='Pretrained', ...)`` (:func:`mmmixer.checkpoint.pretrained.load_pretrained`)
    with the hybrid's rules: every model tensor whose name and shape exist in the checkpoint is copied (a hybrid
    checkpoint therefore also fills the MS blocks); relative position bias tables for another window size are
    interpolated (:func:`resize_bias_table`, bicubic as in mmdet/mmseg Swin); ``relative_position_index`` buffers
    are never read (computed from the window size); older mmpretrain/mmcls layouts are accepted (``norm.*`` ->
    ``norm{last}.*``, ``attn_mask`` dropped). Official microsoft/Swin-Transformer checkpoints (``layers.*`` keys)
    must be converted to mmpretrain's layout first (mmpretrain publishes converted ones).

    Args:
        model (SwinMSMLP): the backbone to fill (in place). Its current values are kept for ``new`` tensors,
            so initialise it first (``init_weights()``).
        checkpoint (str | os.PathLike | dict): a path or URL (read without executing anything from the file), a
            checkpoint dict (``state_dict`` or ``model`` entry), or a state dict.
        prefix (str, optional): prefix of the backbone keys in the checkpoint, e.g. ``'backbone.'`` for an
            mmpretrain classifier. None: ``'backbone.'`` if any key starts with it, else ``''``.
        strict (bool): raise if a Swin tensor of the model (patch embedding, merging layers, attention blocks)
            is missing from the checkpoint or has another shape. Default True.

    Returns:
        LoadReport: loaded / resized / new / derived / unused tensor names.

    Raises:
        TypeError: ``model`` is not a SwinMSMLP, or ``checkpoint`` has an unsupported type.
        ValueError: no checkpoint key starts with ``prefix``, or the checkpoint has no Swin patch embedding.
        CheckpointLoadError: with ``strict``, a Swin tensor is missing or has a different shape (the message lists
            up to five and hints at arch / depth / window mismatches); nothing is copied.
    """
    swin_msmlp = MODELS.get('SwinMSMLP')  # a registry lookup: this package never imports the backbones
    if swin_msmlp is None or not isinstance(model, swin_msmlp):
        raise TypeError(f'load_swin_pretrained: model must be a SwinMSMLP, got {type(model).__name__}.')
    content, name = read_checkpoint(checkpoint)
    for key in ('state_dict', 'model'):
        if isinstance(content.get(key), dict):
            content = content[key]
            break
    state = {k[7:] if k.startswith('module.') else k: v for k, v in content.items()}
    if prefix is None:
        prefix = 'backbone.' if any(k.startswith('backbone.') for k in state) else ''
    if not any(k.startswith(prefix) for k in state):
        raise ValueError(f'load_swin_pretrained: no checkpoint key starts with prefix {prefix!r}; keys look like '
                         f'{sorted(state)[:5]}.')
    if not any(k[len(prefix):] in ('patch_embed.projection.weight', ) for k in state if k.startswith(prefix)):
        raise ValueError('load_swin_pretrained: the checkpoint has no "patch_embed.projection.weight" under prefix '
                         f'{prefix!r}; is it an mmpretrain-format Swin checkpoint? Keys look like {sorted(state)[:5]}. '
                         'Official microsoft/Swin-Transformer checkpoints ("layers.*" keys) must be converted to '
                         "mmpretrain's layout first (mmpretrain publishes converted copies).")
    return load_pretrained(model, state, prefix=prefix, strict=strict, name=name)


def resize_bias_table(table: torch.Tensor, length: int) -> torch.Tensor:
    """Bicubic resize of a Swin relative position bias table to another window size.

    The table, (L, num_heads) with L = (2w - 1)^2, is viewed as a (2w - 1) x (2w - 1) map per head and resized
    with ``F.interpolate(mode='bicubic', align_corners=False)``, the resize mmdet's and mmseg's
    ``SwinTransformer.init_weights`` apply. (mmpretrain's ``resize_relative_position_bias_table`` needs
    ``scipy.interpolate.interp2d``, which SciPy 1.14 removed.)

    Args:
        table (Tensor): (L1, num_heads), L1 a square.
        length (int): target L2, a square.

    Returns:
        Tensor: (L2, num_heads), same dtype.

    Raises:
        ValueError: ``L1`` or ``length`` is not a square number.
    """
    src, dst = int(round(table.shape[0]**0.5)), int(round(length**0.5))
    if src * src != table.shape[0] or dst * dst != length:
        raise ValueError(f'resize_bias_table: table length {table.shape[0]} and target {length} must be squares '
                         '((2 * window - 1) ** 2).')
    grid = table.float().t().reshape(1, table.shape[1], src, src)
    grid = torch.nn.functional.interpolate(grid, size=(dst, dst), mode='bicubic', align_corners=False)
    return grid.reshape(table.shape[1], length).t().contiguous().to(table.dtype)
