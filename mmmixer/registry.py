"""MMEngine registries of mmmixer (the mmyolo pattern: one child of each mmengine root registry).

Every registry has ``scope='mmmixer'`` and is a direct child of the mmengine root, so ``'mmmixer.X'``
resolves from configs whose ``default_scope`` is mmpretrain, mmdet or mmseg, and ``locations`` imports
our modules on first use. Only public classes are registered; internal blocks are built in Python (an unscoped
``MODELS.build`` under another default scope looks in the wrong registry).
"""
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import \
    OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import Registry

__all__ = ['MODELS', 'OPTIM_WRAPPER_CONSTRUCTORS', 'OPTIM_WRAPPERS', 'LOOPS', 'HOOKS']

MODELS = Registry(
    'model', parent=MMENGINE_MODELS, scope='mmmixer', locations=['mmmixer.models'])

OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer wrapper constructor',
    parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
    scope='mmmixer',
    locations=['mmmixer.engine'])

OPTIM_WRAPPERS = Registry(
    'optim_wrapper', parent=MMENGINE_OPTIM_WRAPPERS, scope='mmmixer', locations=['mmmixer.engine'])

LOOPS = Registry('loop', parent=MMENGINE_LOOPS, scope='mmmixer', locations=['mmmixer.engine'])

HOOKS = Registry('hook', parent=MMENGINE_HOOKS, scope='mmmixer', locations=['mmmixer.engine'])
