from .checkpoint import (TRUST_ENV, CheckpointLoadError, allow_partial_load, check_state_dict_fits,
                         load_foreign_checkpoint, register_safe_checkpoint_loader, safe_torch_load)

__all__ = [
    'TRUST_ENV', 'CheckpointLoadError', 'allow_partial_load', 'check_state_dict_fits', 'load_foreign_checkpoint',
    'register_safe_checkpoint_loader', 'safe_torch_load'
]
