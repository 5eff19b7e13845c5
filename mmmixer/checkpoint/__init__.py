"""Everything about checkpoint files, in one package that imports only torch, mmengine and ``mmmixer.registry``.

* :mod:`.safe_load`: reading a file without running code from it (PyTorch's weights-only loader, CRC-32 checks).
* :mod:`.fit`: mmengine's local-file scheme, and one clear error when a file of another arch is loaded.
* :mod:`.pretrained`: ``init_cfg=dict(type='Pretrained', ...)`` of our backbones, with a report per tensor;
  :mod:`.hooks`: the hooks it calls on a backbone (:class:`CheckpointHooks`, a mixin of ``MixerBackbone``).
* :mod:`.converter`: the skeleton of the official-layout converters; :mod:`.swin`: Swin checkpoints into the hybrid;
  :mod:`.official_url`: the official release URLs, converted while they load.

Backbones ask this package (they pass themselves to its functions, which call their hooks); it never imports them.
"""
from .converter import OfficialConverter, converter_main
from .fit import (allow_partial_load, check_state_dict_fits, checkpoint_source, load_from_safe_local,
                  register_safe_checkpoint_loader)
from .hooks import CheckpointHooks
from .official_url import OFFICIAL_URL_PREFIXES, load_from_official_url, register_official_url_loader
from .pretrained import (LoadReport, check_local_pretrained, find_pretrained_cfg, init_with_pretrained,
                         load_pretrained, missing_pretrained_message, pretrained_to_init_cfg, read_checkpoint)
from .safe_load import (DICT_LIKE, TRUST_ENV, CheckpointLoadError, InertObject, checkpoint_trusted,
                        load_foreign_checkpoint, runner_safe_globals, safe_torch_load)
from .swin import SwinLoadReport, load_swin_pretrained, resize_bias_table

__all__ = [
    'CheckpointHooks', 'OfficialConverter', 'converter_main', 'allow_partial_load', 'check_state_dict_fits',
    'checkpoint_source', 'load_from_safe_local', 'register_safe_checkpoint_loader', 'OFFICIAL_URL_PREFIXES',
    'load_from_official_url', 'register_official_url_loader', 'LoadReport', 'check_local_pretrained',
    'find_pretrained_cfg', 'init_with_pretrained', 'load_pretrained', 'missing_pretrained_message',
    'pretrained_to_init_cfg', 'read_checkpoint', 'DICT_LIKE', 'TRUST_ENV', 'CheckpointLoadError', 'InertObject',
    'checkpoint_trusted', 'load_foreign_checkpoint', 'runner_safe_globals', 'safe_torch_load', 'SwinLoadReport',
    'load_swin_pretrained', 'resize_bias_table'
]
