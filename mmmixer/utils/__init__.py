from .checkpoint import (TRUST_ENV, CheckpointLoadError, load_foreign_checkpoint,
                         register_safe_checkpoint_loader, safe_torch_load)

__all__ = [
    'TRUST_ENV', 'CheckpointLoadError', 'load_foreign_checkpoint', 'register_safe_checkpoint_loader',
    'safe_torch_load'
]
