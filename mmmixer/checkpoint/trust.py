"""The one error of every checkpoint file that is refused or unreadable, and the user's opt-in to code-executing loads
(``MMMIXER_TRUST_CHECKPOINTS=1`` or ``--trust-checkpoint``), with torch's variables that override it."""
import os
import pickle
import re
import zipfile
from typing import Any

import torch

__all__ = ['TRUST_ENV', 'CheckpointLoadError', 'checkpoint_trusted', 'trusted_torch_load']

#: Environment variable that allows a full (code-executing) unpickle of checkpoint files.
TRUST_ENV = 'MMMIXER_TRUST_CHECKPOINTS'
#: torch's environment variables that override the ``weights_only`` argument of ``torch.load``
FORCE_WO_ENV = 'TORCH_FORCE_WEIGHTS_ONLY_LOAD'
FORCE_NO_WO_ENV = 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'

class CheckpointLoadError(RuntimeError):
    """A checkpoint file could not be loaded safely (refused global, truncated file, wrong content)."""


def checkpoint_trusted() -> bool:
    """Whether the user opted in to code-executing unpickling (``MMMIXER_TRUST_CHECKPOINTS=1``)."""
    return os.environ.get(TRUST_ENV, '').strip().lower() in ('1', 'true', 'yes', 'on')


def _env_true(name: str) -> bool:
    return os.environ.get(name, '0').strip().lower() in ('1', 'y', 'yes', 'true')


def first_sentence(err: Exception) -> str:
    """The first sentence of an exception's message (torch appends long generic paragraphs)."""
    text = str(err).strip()
    if text.startswith('Weights only load failed'):  # torch's paragraphs around the unpickler's own message
        text = [p.strip() for p in text.split('\n\n') if p.strip() and not p.startswith('Check the docum')][-1]
        text = text.split('WeightsUnpickler error: ', 1)[-1].replace('Weights only load failed. ', '', 1)
    text = text.splitlines()[0] if text else type(err).__name__
    return text.split('. ')[0].rstrip('.')[:300]


def opt_in(with_converters: bool = True) -> str:
    """How to opt in to a full unpickle; notes that ``TORCH_FORCE_WEIGHTS_ONLY_LOAD`` would override it."""
    text = (f'If you trust this file, set the environment variable {TRUST_ENV}=1 (or pass --trust-checkpoint to '
            'tools/train.py / tools/test.py)')
    if _env_true(FORCE_WO_ENV):
        text += (f' and unset {FORCE_WO_ENV} (set now: it makes torch.load use weights_only=True even when '
                 f'{TRUST_ENV}=1)')
    text += '.'
    if with_converters:
        text += (' Official MS-MLP / PosMLP / Strip-MLP checkpoints need no trust: convert them with '
                 'tools/model_converters/*_to_mmmixer.py.')
    return text


def unreadable(filename: str, what: str) -> CheckpointLoadError:
    return CheckpointLoadError(f'Checkpoint "{filename}" is not a readable torch checkpoint (truncated or corrupt '
                               f'file?): {what.rstrip(".")[:300]}. Download or copy it again.')


def trusted_torch_load(filename: str, map_location: Any) -> Any:
    """``torch.load(weights_only=False)`` for a file the user trusts (``MMMIXER_TRUST_CHECKPOINTS=1``).

    Raises:
        CheckpointLoadError: torch's ``TORCH_FORCE_WEIGHTS_ONLY_LOAD=1`` turns the load into a ``weights_only``
            load, which refuses the file (the message says that the variable overrides the opt-in); both of torch's
            ``TORCH_FORCE_*WEIGHTS_ONLY_LOAD`` variables are set; or torch cannot read the file. Exceptions raised
            by code in the (trusted) file itself propagate.
    """
    if _env_true(FORCE_WO_ENV) and _env_true(FORCE_NO_WO_ENV):
        raise CheckpointLoadError(
            f'Cannot load checkpoint "{filename}": both {FORCE_WO_ENV} and {FORCE_NO_WO_ENV} are set (torch refuses '
            f'that); unset one of them.')
    try:
        return torch.load(filename, map_location=map_location, weights_only=False)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as err:
        if not _env_true(FORCE_WO_ENV):
            raise unreadable(filename, first_sentence(err)) from None
        found = re.search(r'GLOBAL ([\w.]+)', str(err))
        raise CheckpointLoadError(
            f'Refused to load checkpoint "{filename}" although {TRUST_ENV}=1 is set: {FORCE_WO_ENV}=1 makes '
            f'torch.load use weights_only=True, which refuses this file '
            f'({"global " + found.group(1) if found else first_sentence(err)}). Unset {FORCE_WO_ENV} to load a '
            'file you trust.') from None
