"""Former home of the ``Pretrained`` loader; the names live in :mod:`mmmixer.checkpoint.pretrained`."""
from mmmixer.checkpoint.pretrained import (LoadReport, check_local_pretrained, find_pretrained_cfg,
                                           init_with_pretrained, load_pretrained, missing_pretrained_message,
                                           plan_load, pretrained_to_init_cfg, read_checkpoint)

__all__ = ['LoadReport', 'pretrained_to_init_cfg', 'check_local_pretrained', 'read_checkpoint', 'load_pretrained',
           'init_with_pretrained', 'find_pretrained_cfg', 'missing_pretrained_message', 'plan_load']
