"""mmmixer: vision-MLP backbones (MS-MLP, PosMLP, Strip-MLP, Swin+MS-MLP) for OpenMMLab 2.0.

Importing ``mmmixer`` does not import mmdet, mmseg or mmpretrain. Configs pull the models in with
``custom_imports=dict(imports=['mmmixer.models'], allow_failed_imports=False)`` and refer to them as
``type='mmmixer.MSMLP'``.

It does register one thing globally: mmengine's loader for local checkpoint files is replaced by
:func:`mmmixer.checkpoint.safe_load.safe_torch_load` (``weights_only=True`` plus a small allowlist of the
objects mmengine's Runner writes), so that resuming and ``Pretrained`` from our own training checkpoints
work on torch >= 2.6 without making every checkpoint file executable. See README "Checkpoint safety". And it makes
our model index known to mmpretrain's ``ModelHub`` once mmpretrain's API is imported (without importing it), and
registers a loader for the official MS-MLP release URLs that converts those checkpoints while loading them.

``mmmixer.swap_backbone(cfg, backbone)`` writes the config delta that puts one of our backbones into another
codebase's config, and ``mmmixer.verify_swap(path)`` checks it (README "Swap into your project").
"""
from .checkpoint import register_official_url_loader, register_safe_checkpoint_loader
from .swap import swap_backbone, verify_swap
from .utils.model_hub import install_registration_hook
from .version import __version__

register_safe_checkpoint_loader()
register_official_url_loader()  # official MS-MLP release URLs load converted (mmmixer.checkpoint.official_url)
install_registration_hook()  # mmpretrain.get_model('msmlp-tiny_8xb128_in1k') etc. (mmmixer.utils.model_hub)

__all__ = ['__version__', 'swap_backbone', 'verify_swap']
