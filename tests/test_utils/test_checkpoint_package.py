"""The checkpoint code has one home (``mmmixer.checkpoint``), the former module names still import, and the modules
of ``mmmixer`` import each other in one direction (read with ``ast``: no import cycle, checkpoint never imports the
backbones)."""
import ast
import glob
import importlib
import os.path as osp

import pytest

import mmmixer

PACKAGE = osp.dirname(osp.abspath(mmmixer.__file__))


def _modules():
    """``{module name: path}`` of every module of the mmmixer package."""
    found = {}
    for path in glob.glob(osp.join(PACKAGE, '**', '*.py'), recursive=True):
        parts = ['mmmixer'] + osp.relpath(path, PACKAGE)[:-3].split(osp.sep)
        found['.'.join(parts[:-1] if parts[-1] == '__init__' else parts)] = path
    return found


def _imports(name: str, path: str):
    """``[(imported mmmixer module, line, inside a function)]`` of one module (relative imports resolved)."""
    tree = ast.parse(open(path).read())
    package = name if path.endswith('__init__.py') else name.rpartition('.')[0]
    in_function = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                   for n in ast.walk(f)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                parts = package.split('.')
                base = '.'.join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
            targets = [base] + [f'{base}.{alias.name}' for alias in node.names]
        else:
            continue
        for target in targets:
            yield target, node.lineno, id(node) in in_function


def _graph(modules):
    return {name: {t for t, _, _ in _imports(name, path) if t in modules and t != name}
            for name, path in modules.items()}


def _cycle(graph):
    """One import cycle as a list of modules, or None."""
    state = {}

    def visit(node, stack):
        state[node] = 'open'
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 'open':
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt, stack + [nxt])
                if found:
                    return found
        state[node] = 'done'
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return None


def test_no_import_cycle_between_mmmixer_modules():
    modules = _modules()
    assert 'mmmixer.checkpoint.safe_load' in modules and 'mmmixer.models.backbones.base' in modules
    assert _cycle(_graph(modules)) is None, f'import cycle: {" -> ".join(_cycle(_graph(modules)))}'


def test_cycle_finder_finds_a_cycle():
    assert _cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': set()}) == ['a', 'b', 'c', 'a']
    assert _cycle({'a': {'b'}, 'b': set()}) is None


def test_checkpoint_package_imports_only_itself_and_the_registry():
    modules = _modules()
    for name, path in modules.items():
        if not name.startswith('mmmixer.checkpoint'):
            continue
        for target, line, in_function in _imports(name, path):
            where = f'{osp.relpath(path, PACKAGE)}:{line} imports {target}'
            assert not in_function, f'{where} inside a function'
            if target.startswith('mmmixer') and target in modules:
                assert target.startswith(('mmmixer.checkpoint', 'mmmixer.registry')), where


@pytest.mark.parametrize('old,new,names', [
    ('mmmixer.utils.checkpoint', 'mmmixer.checkpoint', [
        'TRUST_ENV', 'CheckpointLoadError', 'InertObject', 'runner_safe_globals', 'safe_torch_load',
        'load_foreign_checkpoint', 'register_safe_checkpoint_loader', 'checkpoint_trusted', 'check_state_dict_fits',
        'allow_partial_load', 'checkpoint_source', 'load_from_safe_local']),
    ('mmmixer.models.pretrained', 'mmmixer.checkpoint.pretrained', [
        'LoadReport', 'pretrained_to_init_cfg', 'check_local_pretrained', 'read_checkpoint', 'load_pretrained',
        'init_with_pretrained', 'find_pretrained_cfg', 'missing_pretrained_message', 'plan_load']),
    ('mmmixer.models.converter', 'mmmixer.checkpoint.converter', ['OfficialConverter', 'converter_main']),
    ('mmmixer.models.swin_checkpoint', 'mmmixer.checkpoint.swin',
     ['SwinLoadReport', 'load_swin_pretrained', 'resize_bias_table']),
    ('mmmixer.models.backbones.swin_msmlp', 'mmmixer.checkpoint.swin',
     ['SwinLoadReport', 'load_swin_pretrained', 'resize_bias_table']),
    ('mmmixer.utils.model_hub', 'mmmixer.checkpoint.official_url',
     ['OFFICIAL_URL_PREFIXES', 'load_from_official_url', 'register_official_url_loader']),
])
def test_former_module_names_still_import(old, new, names):
    old_module, new_module = importlib.import_module(old), importlib.import_module(new)
    for name in names:
        assert getattr(old_module, name) is getattr(new_module, name), f'{old}.{name}'


def _families():
    from mmmixer.models import MSMLP, PosMLP, StripMLP, SwinMSMLP
    return [MSMLP, PosMLP, StripMLP, SwinMSMLP]


def test_families_keep_the_checkpoint_hook_contracts():
    """Every hook a family overrides takes the base's arguments (and uses them: see the Swin test below)."""
    import inspect

    from mmmixer.checkpoint import CheckpointHooks
    from mmmixer.models.backbones.base import MixerBackbone
    assert issubclass(MixerBackbone, CheckpointHooks)
    hooks = [n for n, v in vars(CheckpointHooks).items() if callable(v) or isinstance(v, classmethod)]
    assert {'_raise_pretrained_mismatch', '_may_be_new', '_may_be_unused', 'convert_official'} <= set(hooks)
    for family in _families():
        for name in hooks:
            base, own = getattr(CheckpointHooks, name), getattr(family, name)
            if own is not base:
                assert list(inspect.signature(own).parameters) == list(inspect.signature(base).parameters), \
                    f'{family.__name__}.{name} changes the arguments of the hook'


def test_swin_mismatch_raises_the_base_error_with_the_problems():
    from mmmixer.checkpoint import CheckpointLoadError
    from mmmixer.checkpoint.pretrained import LoadReport
    from mmmixer.models import SwinMSMLP

    class Plan:
        report, required_missing, mismatched = LoadReport(prefix=''), ['patch_embed.projection.weight'], []

    model = SwinMSMLP(arch=dict(embed_dims=20, depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 8]))
    with pytest.raises(CheckpointLoadError, match=r'ckpt\.pth.*PROBLEM ONE; PROBLEM TWO.*mmpretrain-format Swin'):
        model._raise_pretrained_mismatch('ckpt.pth', Plan(), ['PROBLEM ONE', 'PROBLEM TWO'])
