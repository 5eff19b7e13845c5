"""Our model index in mmpretrain's ``ModelHub``: ``mmpretrain.get_model('msmlp-tiny_8xb128_in1k')`` and the
mmpretrain inferencers find our classifiers by name.

mmpretrain looks model names up in ``mmpretrain.apis.ModelHub``, which knows only mmpretrain's own
``model-index.yml`` unless another index is registered (``ModelHub.register_model_index``). ``import mmmixer``
registers ours as soon as ``mmpretrain.apis`` is imported, without importing mmpretrain itself (it stays an
optional dependency and ``import mmmixer`` stays light): if mmpretrain's model hub is already loaded the index is
registered at once, otherwise a finder on ``sys.meta_path`` registers it right after ``mmpretrain.apis.model`` has
been executed, whatever the import order. :func:`register_model_index` does the same explicitly. Why a finder and
not an import of mmpretrain at ``import mmmixer`` (measured): ``docs/design.md``, "Model index".

The index is ``<mmmixer>/.mim/model-index.yml`` in an installed package (written by ``pip install .``) or
``model-index.yml`` at the root of a source checkout; config paths in it are relative to that directory.
"""
import importlib.abc
import importlib.util
import os.path as osp
import sys
import warnings
from typing import Optional, Tuple

from mmmixer.checkpoint.official_url import (OFFICIAL_URL_PREFIXES, load_from_official_url,  # noqa: F401 (API)
                                             register_official_url_loader)

__all__ = ['register_model_index', 'model_index_path', 'install_registration_hook', 'load_from_official_url',
           'register_official_url_loader', 'OFFICIAL_URL_PREFIXES']

_TARGET = 'mmpretrain.apis.model'
_registered = False


def model_index_path() -> Optional[Tuple[str, str]]:
    """(model-index.yml, config prefix) of this mmmixer, or None if neither location has one."""
    package = osp.dirname(osp.dirname(osp.abspath(__file__)))
    for root in (osp.join(package, '.mim'), osp.dirname(package)):
        index = osp.join(root, 'model-index.yml')
        if osp.isfile(index) and osp.isdir(osp.join(root, 'configs')):
            return index, root
    return None


def register_model_index(model_hub=None) -> bool:
    """Register mmmixer's model index with mmpretrain's ``ModelHub`` (idempotent).

    Args:
        model_hub (type, optional): the ``ModelHub`` class (default: imported from ``mmpretrain.apis``).

    Returns:
        bool: True if the index is registered (now or before), False if no index file was found.

    Raises:
        ImportError: mmpretrain is not installed (only when ``model_hub`` is not given).
    """
    global _registered
    if _registered:
        return True
    found = model_index_path()
    if found is None:
        return False
    if model_hub is None:
        from mmpretrain.apis import ModelHub as model_hub  # optional and heavy: only when asked to register
    index, prefix = found
    before = set(model_hub._models_dict)
    model_hub.register_model_index(index, config_prefix=prefix)
    # mmpretrain builds every hub entry with its own registry: keep only our classifiers (the detection and
    # segmentation entries of the index are for `mim search`; mmdet/mmseg build them).
    for name in set(model_hub._models_dict) - before:
        tasks = {result.task for result in (model_hub._models_dict[name].results or [])}
        if tasks and 'Image Classification' not in tasks:
            del model_hub._models_dict[name]
    _registered = True
    return True


def _register_quietly(module) -> None:
    """Register from an import hook: a broken index must not break ``import mmpretrain.apis``."""
    try:
        register_model_index(module.ModelHub)
    except Exception as err:  # noqa: BLE001 - reported, never raised into another package's import
        warnings.warn(f'mmmixer: could not register its model index with mmpretrain ModelHub: {err!r}')


class _RegisterAfterImport(importlib.abc.MetaPathFinder):
    """Finds ``mmpretrain.apis.model`` through the other finders and registers our index once it has executed.

    The module keeps its own loader; only that loader instance's ``exec_module`` is wrapped.
    """

    def find_spec(self, fullname, path, target=None):
        if fullname != _TARGET:
            return None
        sys.meta_path.remove(self)  # one shot; also keeps the lookup below from recursing
        spec = importlib.util.find_spec(fullname)
        loader = getattr(spec, 'loader', None)
        if loader is not None and hasattr(loader, 'exec_module'):
            original = loader.exec_module

            def exec_module(module):
                original(module)
                _register_quietly(module)

            loader.exec_module = exec_module
        return spec


def install_registration_hook() -> None:
    """Register now if mmpretrain's model hub is loaded, else when it gets imported (called by ``import mmmixer``)."""
    module = sys.modules.get(_TARGET)
    if module is not None and hasattr(module, 'ModelHub'):
        _register_quietly(module)
    elif not any(isinstance(f, _RegisterAfterImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _RegisterAfterImport())

