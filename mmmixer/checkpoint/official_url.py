"""The official release URLs as an mmengine checkpoint scheme: those files are converted while they load.

``load_from``, ``load_checkpoint`` and ``mmpretrain.get_model(name, pretrained=True)`` name checkpoints by URL; for the
official MS-MLP release (listed in https://github.com/JegZheng/MS-MLP#readme) :func:`load_from_official_url` downloads
the file once into torch's hub cache, reads it without executing anything from it and converts the official layout
to our classifier's keys. ``import mmmixer`` registers it (:func:`register_official_url_loader`).
"""
from mmengine.runner.checkpoint import CheckpointLoader

from mmmixer.registry import MODELS
from .pretrained import read_checkpoint
from .safe_load import CheckpointLoadError

__all__ = ['OFFICIAL_URL_PREFIXES', 'load_from_official_url', 'register_official_url_loader']

#: URL prefixes of official checkpoints that :func:`load_from_official_url` converts on the fly -> our backbone
OFFICIAL_URL_PREFIXES = {
    'https://tsciencescu.blob.core.windows.net/projectshzheng/MSMLP/': 'MSMLP',
}


def load_from_official_url(filename: str, map_location=None) -> dict:
    """mmengine checkpoint scheme for the official release URLs: download once into torch's hub cache, read without
    executing anything from the file, convert the official layout to our classifier's keys.

    mmengine logs the scheme by the function name after its first 10 characters ("official_url").

    Args:
        filename (str): a URL starting with one of :data:`OFFICIAL_URL_PREFIXES`.
        map_location (optional): device for the tensors (default: where they were read, the CPU).

    Returns:
        dict: ``{'state_dict': {'backbone.*', 'head.fc.*'}, 'meta': {'source': URL, 'family': ...}}``.

    Raises:
        CheckpointLoadError: the downloaded file is unreadable or not an official checkpoint of the family its URL
            belongs to.
    """
    family = next(v for k, v in sorted(OFFICIAL_URL_PREFIXES.items(), key=lambda kv: -len(kv[0]))
                  if filename.startswith(k))
    backbone = MODELS.get(family)  # a registry lookup (imports mmmixer.models on first use): no import of backbones
    checkpoint, _ = read_checkpoint(filename)
    found = backbone.official.find_weights(checkpoint)
    if found is None:
        raise CheckpointLoadError(f'"{filename}" is not an official {backbone.official.family} checkpoint.')
    result = backbone.convert_official(found[1])
    state_dict = result['state_dict']
    if map_location is not None:
        state_dict = type(state_dict)((k, v.to(map_location)) for k, v in state_dict.items())
    return dict(state_dict=state_dict, meta=dict(source=filename, family=family, weights=found[0]))


def register_official_url_loader() -> None:
    """Register :func:`load_from_official_url` with mmengine's ``CheckpointLoader`` (idempotent; longer prefixes win
    over mmengine's generic ``https://`` loader)."""
    for prefix in OFFICIAL_URL_PREFIXES:
        if CheckpointLoader._schemes.get(prefix) is not load_from_official_url:
            CheckpointLoader.register_scheme(prefixes=prefix, force=True)(load_from_official_url)
