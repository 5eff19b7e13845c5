"""Every family file follows one pattern and every backbone keeps the base contract (README.md, "Add a family").

The file check reads the source with ``ast`` (order block -> stage -> backbone -> official layout, keyword arguments
to the base, the inherited ``convert_official``, no names imported only to be re-exported); the contract check builds
nothing but small models and reads the registry, the signatures and the overridden hooks.
"""
import ast
import glob
import inspect
import os.path as osp

import pytest

import mmmixer.models.backbones as backbones
from mmmixer.checkpoint import CheckpointHooks, CheckpointLoadError
from mmmixer.models.backbones.base import MixerBackbone
from mmmixer.registry import MODELS

FAMILY_DIR = osp.dirname(backbones.__file__)
FAMILY_FILES = sorted(p for p in glob.glob(osp.join(FAMILY_DIR, '*.py'))
                      if osp.basename(p) not in ('__init__.py', 'base.py'))
#: shared arguments of ``MixerBackbone.__init__`` and the default every family gives them
SHARED_DEFAULTS = dict(arch='tiny', in_channels=3, out_indices=-1, frozen_stages=-1, norm_eval=False,
                       gap_before_final_norm=False, pretrained=None, return_tuple=True)
#: small archs to build each family cheaply
SMALL = dict(MSMLP=dict(arch=dict(embed_dims=32, depths=[1, 1, 1, 1])),
             PosMLP=dict(arch=dict(embed_dims=32, depths=[1, 1, 1, 1]), window_size=4),
             StripMLP=dict(arch=dict(embed_dims=16, depths=[1, 1, 1, 1]), img_size=64),
             SwinMSMLP=dict(arch=dict(embed_dims=32, depths=[1, 1, 1, 1], num_heads=[1, 2, 4, 8]),
                            block_pattern='ms_all'))


def _is_registered(node):
    return any(isinstance(d, ast.Call) and ast.unparse(d.func) == 'MODELS.register_module' for d in node.decorator_list)


def _kind(node, backbone):
    """'backbone', 'stage', 'block' (any other class), 'official' (after the backbone) or 'module' (the rest)."""
    if isinstance(node, ast.ClassDef):
        if _is_registered(node):
            return 'backbone'
        return 'stage' if node.name.endswith('Stage') else 'block'
    return 'official' if backbone is not None else 'module'


def pattern_problems(source: str) -> list:
    """What a family file's source breaks of the pattern (empty: it follows it)."""
    tree = ast.parse(source)
    problems, rank, backbone, seen_class = [], 0, None, False
    order = {'block': 1, 'stage': 2, 'backbone': 3, 'official': 4}
    for node in tree.body:
        kind = _kind(node, backbone)
        if kind == 'module':
            if seen_class and not isinstance(node, (ast.Import, ast.ImportFrom)):
                problems.append(f'line {node.lineno}: module-level code between the classes (before the blocks or '
                                'after the backbone only)')
            continue
        if isinstance(node, ast.ClassDef) and backbone is not None:
            problems.append(f'line {node.lineno}: class {node.name} after the backbone')
        seen_class = True
        if order[kind] < rank:
            problems.append(f'line {node.lineno}: {kind} {getattr(node, "name", "")} after a later section '
                            '(order: block -> stage -> backbone -> official layout)')
        rank = max(rank, order[kind])
        if kind == 'backbone':
            if backbone is not None:
                problems.append(f'line {node.lineno}: a second registered backbone {node.name}')
            backbone = node
    if backbone is None:
        return problems + ['no registered backbone class']
    stages = [n.name for n in tree.body if isinstance(n, ast.ClassDef) and _kind(n, None) == 'stage']
    if stages != [backbone.name + 'Stage']:
        problems.append(f'stage classes {stages}: expected exactly [{backbone.name}Stage]')
    methods = {n.name: n for n in backbone.body if isinstance(n, ast.FunctionDef)}
    if 'convert_official' in methods:
        problems.append(f'{backbone.name} defines convert_official (inherited: set {backbone.name}.official)')
    init = methods.get('__init__')
    if init is not None:
        defaults = dict(zip([a.arg for a in init.args.args][-len(init.args.defaults):], init.args.defaults))
        if 'init_cfg' not in defaults or ast.unparse(defaults['init_cfg']) != 'default_init_cfg':
            problems.append(f'{backbone.name}.__init__: the init_cfg default must be the class attribute '
                            'default_init_cfg')
    for call in ast.walk(init or backbone):
        if isinstance(call, ast.Call) and ast.unparse(call.func) == 'super().__init__' and call.args:
            problems.append(f'line {call.lineno}: positional arguments to super().__init__ (pass them by keyword)')
    # the official layout: OFFICIAL = <Backbone>.official = OfficialConverter(...) and one @OFFICIAL.converts function
    official = [n for n in tree.body if isinstance(n, ast.Assign) and 'OFFICIAL' in map(ast.unparse, n.targets)]
    if official:
        if f'{backbone.name}.official' not in map(ast.unparse, official[0].targets):
            problems.append(f'OFFICIAL is not assigned to {backbone.name}.official')
        converts = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)
                    and 'OFFICIAL.converts' in map(ast.unparse, n.decorator_list)]
        if len(converts) != 1:
            problems.append(f'{len(converts)} functions decorated with @OFFICIAL.converts, expected 1')
    # names imported but neither used nor in __all__: re-exports for tests
    exported = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and '__all__' in map(ast.unparse, node.targets):
            exported = set(ast.literal_eval(node.value))
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    used |= {ast.unparse(n).split('.')[0] for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                name = (alias.asname or alias.name).split('.')[0]
                if name not in used and name not in exported:
                    problems.append(f'line {node.lineno}: {name} imported but unused (import it from where it '
                                    'lives instead of re-exporting it)')
    return problems


@pytest.mark.parametrize('path', FAMILY_FILES, ids=osp.basename)
def test_family_file_follows_the_pattern(path):
    with open(path) as f:
        assert pattern_problems(f.read()) == []


def test_pattern_check_can_fail():
    with open(osp.join(FAMILY_DIR, 'ms_mlp.py')) as f:
        good = f.read()
    assert pattern_problems(good) == []
    stage = good[good.index('class MSMLPStage'):good.index('@MODELS.register_module()')]
    assert any('after a later section' in p for p in pattern_problems(good.replace(stage, '') + '\n\n' + stage))
    positional = good.replace('super().__init__(arch=arch, ', 'super().__init__(arch, ')
    assert any('positional arguments' in p for p in pattern_problems(positional))
    own_convert = good.replace('    def forward_stem(', '    @classmethod\n    def convert_official(cls, sd):\n'
                               '        return convert_official_msmlp(sd)\n\n    def forward_stem(')
    assert any('defines convert_official' in p for p in pattern_problems(own_convert))
    reexport = good.replace('from ..layers.mix_shift import SHIFT_MODES, MixShiftBlock',
                            'from ..layers.mix_shift import SHIFT_MODES, MixShiftBlock, split_channels')
    assert any('split_channels imported but unused' in p for p in pattern_problems(reexport))
    copied = good.replace('= default_init_cfg):', '= copy.deepcopy(default_init_cfg)):')
    assert any('init_cfg default' in p for p in pattern_problems(copied))


def _families():
    return [MODELS.get(name) for name in backbones.__all__]


def test_registry_holds_exactly_the_family_files():
    files = {osp.splitext(osp.basename(p))[0] for p in FAMILY_FILES}
    classes = _families()
    assert {inspect.getmodule(cls).__name__.rsplit('.', 1)[1] for cls in classes} == files
    registered = {cls for cls in MODELS.module_dict.values() if inspect.getmodule(cls).__name__.startswith(
        'mmmixer.models.backbones.')}
    assert registered == set(classes)


@pytest.mark.parametrize('name', backbones.__all__)
def test_family_keeps_the_base_contract(name):
    cls = MODELS.get(name)
    assert issubclass(cls, MixerBackbone) and cls.arch_zoo
    for preset in cls.arch_zoo.values():
        assert cls.arch_keys <= set(preset) <= cls.arch_keys | cls.arch_optional_keys
    for method in ('forward_stem', 'forward_stage'):
        assert getattr(cls, method) is not getattr(MixerBackbone, method), f'{name} must define {method}'
    params = inspect.signature(cls.__init__).parameters
    for arg, default in SHARED_DEFAULTS.items():
        assert params[arg].default == default, f'{name}({arg}=...) default'
    assert params['init_cfg'].default == cls.default_init_cfg
    # an overridden hook keeps the base's arguments
    for base in (MixerBackbone, CheckpointHooks):
        for hook, func in vars(base).items():
            if callable(func) and hook in vars(cls) and hook != '__init__':
                assert list(inspect.signature(vars(cls)[hook]).parameters) == \
                    list(inspect.signature(func).parameters), f'{name}.{hook} changes the arguments of the hook'
    if cls.official is not None:
        assert 'convert_official' not in vars(cls) and cls.official.backbone == name and callable(cls.official.convert)
    # the mismatch hook raises CheckpointLoadError and keeps the problems it is given
    model = cls(**SMALL[name])

    class Plan:
        required_missing, mismatched = ['x'], []

        class report:
            prefix = ''

    with pytest.raises(CheckpointLoadError, match='problem one; problem two'):
        model._raise_pretrained_mismatch('ckpt.pth', Plan, ['problem one', 'problem two'])
