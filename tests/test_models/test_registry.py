"""Registry wiring: 'mmmixer.X' resolves from mmpretrain, mmdet and mmseg scopes; no downstream imports."""
import subprocess
import sys

import pytest
from mmengine.registry import DefaultScope

from helpers_mmmixer import subprocess_env

ARCH = dict(embed_dims=32, depths=[1, 1, 2, 1])


def test_registry_scope_and_parent():
    from mmengine.registry import MODELS as ROOT
    from mmmixer.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS
    assert MODELS.scope == 'mmmixer' and MODELS.parent is ROOT
    assert ROOT.children['mmmixer'] is MODELS
    assert OPTIM_WRAPPER_CONSTRUCTORS.scope == 'mmmixer'
    assert MODELS.get('MSMLP').__name__ == 'MSMLP'


@pytest.mark.parametrize('scope,registry_module', [('mmpretrain', 'mmpretrain.registry'),
                                                   ('mmdet', 'mmdet.registry'),
                                                   ('mmseg', 'mmseg.registry')])
def test_scoped_type_resolves_under_downstream_default_scope(scope, registry_module):
    import importlib
    downstream = importlib.import_module(registry_module).MODELS
    with DefaultScope.overwrite_default_scope(scope):
        model = downstream.build(dict(type='mmmixer.MSMLP', arch=ARCH))
        assert type(model).__name__ == 'MSMLP'
        # an unscoped name is looked up in the downstream registry and its parents only
        with pytest.raises(KeyError, match='MSMLP'):
            downstream.build(dict(type='MSMLP', arch=ARCH))


def test_import_does_not_pull_downstream_packages():
    code = ('import sys, mmmixer, mmmixer.models, mmmixer.registry; '
            'bad = [m for m in ("mmdet", "mmseg", "mmpretrain") if m in sys.modules]; '
            'print(bad); sys.exit(1 if bad else 0)')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            env=subprocess_env())
    assert result.returncode == 0, result.stdout + result.stderr


def test_scoped_type_imports_models_without_custom_imports():
    """The child registry's ``locations`` import mmmixer.models on first use of 'mmmixer.MSMLP'."""
    code = ('from mmengine.registry import init_default_scope; import mmdet.registry as r; '
            'init_default_scope("mmdet"); '
            f'm = r.MODELS.build(dict(type="mmmixer.MSMLP", arch={ARCH!r})); print(type(m).__name__)')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            env=subprocess_env())
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith('MSMLP')
