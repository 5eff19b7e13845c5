"""Former home of the safe checkpoint readers; the names live in :mod:`mmmixer.checkpoint` and are re-exported here."""
from mmmixer.checkpoint.fit import (allow_partial_load, check_state_dict_fits, checkpoint_source,
                                   load_from_safe_local, register_safe_checkpoint_loader)
from mmmixer.checkpoint.safe_load import (TRUST_ENV, CheckpointLoadError, InertObject, checkpoint_trusted,
                                         load_foreign_checkpoint, runner_safe_globals, safe_torch_load)

__all__ = [
    'TRUST_ENV', 'CheckpointLoadError', 'InertObject', 'runner_safe_globals', 'safe_torch_load',
    'load_foreign_checkpoint', 'register_safe_checkpoint_loader', 'checkpoint_trusted', 'check_state_dict_fits',
    'allow_partial_load', 'checkpoint_source', 'load_from_safe_local'
]
