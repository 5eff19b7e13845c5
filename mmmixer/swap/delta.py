"""Work out the config delta that puts an mmmixer backbone into another OpenMMLab codebase's model.

:func:`swap_backbone` reads the downstream config, learns which levels its backbone feeds (the old backbone is
built in the downstream scope and run once on a small input to read each output's stride and width), picks our
stages with the same strides, sets every width of the modules that read the backbone, and adds our family's recipe
(read from our own detection / segmentation / ImageNet configs). Design notes: docs/swap.md.
"""
import ast
import copy
import glob
import os.path as osp
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

__all__ = ['SwapError', 'SwapPlan', 'swap_backbone', 'load_downstream', 'parse_backbone', 'PRESET_FAMILIES',
           'consumer_widths']


class SwapError(ValueError):
    """A swap that cannot be worked out or a consumer width that does not fit; the message says what to change."""


#: preset prefix -> (registered class name, config folder, config file stem); longest prefixes first
PRESET_FAMILIES = {
    'swin-msmlp': ('SwinMSMLP', 'swin_msmlp', 'swin-msmlp'),
    'msmlp': ('MSMLP', 'msmlp', 'msmlp'),
    'posmlp': ('PosMLP', 'posmlp', 'posmlp'),
    'stripmlp': ('StripMLP', 'stripmlp', 'stripmlp'),
}
#: size name -> the short form of our det / seg config names
_SHORT = {'tiny': 't', 'small': 's', 'base': 'b', 'light-tiny': 'lt'}
#: downstream scope -> task of our recipe configs
_TASKS = {'mmdet': 'det', 'mmseg': 'seg', 'mmpretrain': 'cls', 'mmpose': 'pose', 'mmaction': 'action'}
#: backbone keys that never come from our recipe configs: the swap sets them from the downstream model
_NOT_FROM_RECIPE = {'_delete_', 'type', 'arch', 'out_indices', 'init_cfg', 'norm_eval', 'frozen_stages',
                    'gap_before_final_norm', 'pretrained', 'return_tuple', 'in_channels'}
_IN_KEY = re.compile(r'(^|_)in_channels$')
_STRIDES = (4, 8, 16, 32)


@dataclass
class SwapPlan:
    """What :func:`swap_backbone` worked out.

    Attributes:
        base (str): the downstream config as ``_base_`` of the written file.
        scope (str): the downstream ``default_scope`` ('mmdet', 'mmseg', 'mmpretrain', 'mmpose', 'mmaction').
        backbone (dict): our backbone dict (with ``_delete_=True``).
        model (dict): the ``model`` delta (backbone, consumer widths, cleared model-level weights).
        optim_wrapper (dict): the ``optim_wrapper`` delta (our family's no-decay rules).
        custom_imports (dict): ``custom_imports`` of the written file (the downstream's imports kept).
        levels (list[tuple]): per returned level k: (old stride, old width, our stage, our width).
        notes (list[str]): one line per decision, written as comments into the file.
    """
    base: str
    scope: str
    backbone: dict
    model: dict
    optim_wrapper: dict
    custom_imports: dict
    levels: List[tuple]
    notes: List[str] = field(default_factory=list)

    def to_text(self) -> str:
        """The config file a careful user would write (short, commented; ``Config.fromfile`` loads it)."""
        lines = [f'# {self.backbone["type"]} swapped into {self.base} by tools/misc/swap_backbone.py',
                 '# (mmmixer.swap_backbone). Only the lines below differ from the downstream config.']
        lines += [f'# - {n}' for n in self.notes]
        lines += [f'_base_ = {self.base!r}',
                  f'custom_imports = {_fmt(self.custom_imports)}', '']
        levels = ', '.join(f'stride {s}: {c_old} -> stage {i} ({c_new} ch)' for s, c_old, i, c_new in self.levels)
        lines.append(f'# levels the downstream model reads: {levels}')
        lines.append(f'model = {_fmt(self.model)}')
        if self.optim_wrapper:
            lines += ['', '# no weight decay on norms and on our family\'s positional / layer-scale parameters '
                      '(as our det/seg configs)', f'optim_wrapper = {_fmt(self.optim_wrapper)}']
        return '\n'.join(lines) + '\n'


def _fmt(value: Any, indent: int = 0) -> str:
    """Python source of a config value, dicts as ``dict(...)`` one key per line when long."""
    pad = ' ' * (indent + 4)
    if isinstance(value, dict):
        if all(isinstance(k, str) and k.isidentifier() for k in value):
            items = [f'{k}={_fmt(v, indent + 4)}' for k, v in value.items()]
            flat = f'dict({", ".join(items)})'
            if len(flat) + indent <= 100:
                return flat
            return 'dict(\n' + ',\n'.join(pad + i for i in items) + ')'
        items = [f'{k!r}: {_fmt(v, indent + 4)}' for k, v in value.items()]
        flat = '{' + ', '.join(items) + '}'
        return flat if len(flat) + indent <= 100 else '{\n' + ',\n'.join(pad + i for i in items) + '}'
    if isinstance(value, (list, tuple)):
        items = [_fmt(v, indent + 4) for v in value]
        open_, close = ('[', ']') if isinstance(value, list) else ('(', ',)' if len(value) == 1 else ')')
        flat = open_ + ', '.join(items) + close
        return flat if len(flat) + indent <= 100 else open_ + '\n' + ',\n'.join(pad + i for i in items) + close
    return repr(value)


# ------------------------------------------------------------------------------------------------ the inputs
def load_downstream(cfg: Union[str, 'Config']):  # noqa: F821
    """Load a downstream config: a file path, mmengine's ``pkg::rel/path.py`` form, or a ``Config``.

    Returns:
        tuple[Config, str]: the config and the string for ``_base_`` (the ``pkg::`` form or the absolute path).

    Raises:
        SwapError: a file that does not exist, a ``pkg::`` config of a package that is not installed, or a config
            without ``model.backbone``.
    """
    from mmengine.config import Config
    if isinstance(cfg, Config):
        loaded, base = cfg, cfg.filename
    elif '::' in str(cfg):
        from mmengine.hub import get_config
        try:
            loaded = get_config(str(cfg))
        except (FileNotFoundError, ModuleNotFoundError, ImportError, ValueError) as exc:
            raise SwapError(f'downstream config {cfg!r} cannot be loaded ({exc}); accepted: a config file path or '
                            "'pkg::rel/path.py' of an installed codebase (mmdet, mmseg, mmpretrain, mmpose, "
                            'mmaction)') from exc
        base = str(cfg)
    else:
        if not osp.isfile(str(cfg)):
            raise SwapError(f'downstream config {cfg!r} does not exist; accepted: a config file path or '
                            "'pkg::rel/path.py' (e.g. 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py')")
        loaded, base = Config.fromfile(str(cfg)), osp.abspath(str(cfg))
    model = loaded.get('model')
    if not isinstance(model, dict) or not isinstance(model.get('backbone'), dict):
        raise SwapError(f'downstream config {cfg!r} has no model.backbone dict to replace')
    return loaded, base


def parse_backbone(backbone: Union[str, dict]) -> Tuple[dict, Optional[str]]:
    """Our backbone from a preset name or a backbone dict / config file.

    Args:
        backbone (str | dict): a preset ``'<family>-<size>'`` (families: msmlp, posmlp, stripmlp, swin-msmlp;
            sizes: the family's ``arch_zoo`` names, e.g. 'msmlp-tiny', 'posmlp-s', 'stripmlp-light-tiny',
            'swin-msmlp-base'), a dict with ``type`` (``'mmmixer.MSMLP'`` or ``'MSMLP'``), or a config file whose
            ``backbone`` (or ``model.backbone``) is such a dict.

    Returns:
        tuple[dict, str | None]: the backbone dict (``type`` with the ``mmmixer.`` scope) and the canonical size
        name of the preset ('tiny', 'small', 'base', 'light-tiny'), None for a custom arch dict.

    Raises:
        SwapError: unknown preset, family or size, or a file without a backbone dict.
    """
    from mmmixer.registry import MODELS
    if isinstance(backbone, str) and osp.isfile(backbone):
        from mmengine.config import Config
        cfg = Config.fromfile(backbone)
        found = cfg.get('backbone') or (cfg.get('model') or {}).get('backbone')
        if not isinstance(found, dict):
            raise SwapError(f'backbone file {backbone!r} has neither a `backbone` nor a `model.backbone` dict')
        backbone = found.to_dict() if hasattr(found, 'to_dict') else dict(found)
    if isinstance(backbone, str):
        for prefix, (cls_name, _, _) in PRESET_FAMILIES.items():
            if backbone.startswith(prefix + '-'):
                backbone = dict(type=f'mmmixer.{cls_name}', arch=backbone[len(prefix) + 1:])
                break
        else:
            raise SwapError(f'backbone {backbone!r}: accepted: a preset <family>-<size> with family one of '
                            f'{sorted(PRESET_FAMILIES)} (e.g. msmlp-tiny, stripmlp-light-tiny, swin-msmlp-base), '
                            'or a config file holding a backbone dict')
    backbone = copy.deepcopy(dict(backbone))
    type_name = str(backbone.get('type', '')).split('.')[-1]
    names = {v[0] for v in PRESET_FAMILIES.values()}
    if type_name not in names:
        raise SwapError(f'backbone type {backbone.get("type")!r}: accepted: one of '
                        f'{sorted("mmmixer." + n for n in names)}')
    backbone['type'] = f'mmmixer.{type_name}'
    cls = MODELS.get(type_name)
    arch = backbone.setdefault('arch', 'tiny')
    size = None
    if isinstance(arch, str):
        if arch not in cls.arch_zoo:
            raise SwapError(f'backbone {type_name}: arch {arch!r} is unknown; accepted: {sorted(cls.arch_zoo)}')
        same = [k.replace('_', '-') for k, v in cls.arch_zoo.items() if v is cls.arch_zoo[arch]]
        size = next((k for k in same if k in _SHORT), None)
    return backbone, size


# ------------------------------------------------------------------------------------- our recipe configs
def _config_root() -> str:
    """Our configs: the checkout's ``configs`` when mmmixer runs from a source tree (the copy in ``.mim`` may be
    stale there), else ``mmmixer/.mim/configs`` of the installed package."""
    pkg = osp.dirname(osp.dirname(osp.abspath(__file__)))  # the mmmixer package folder
    checkout = osp.dirname(pkg)
    if osp.isfile(osp.join(checkout, 'setup.py')) and osp.isdir(osp.join(checkout, 'configs', 'msmlp')):
        return osp.join(checkout, 'configs')
    root = osp.join(pkg, '.mim', 'configs')
    if osp.isdir(root):
        return root
    raise SwapError(f'mmmixer configs not found next to {pkg} (.mim/configs or ../configs): reinstall mmmixer')


def _read_local_config(path: str) -> dict:
    """``model`` and ``optim_wrapper`` of one of our config files, with its local (relative) ``_base_`` files merged.

    Read with ``ast`` (the files assign ``dict(...)`` literals), so that no downstream codebase is imported;
    ``pkg::`` bases are skipped: our recipe keys are all in our own files.
    """
    from mmengine.config import Config
    tree = ast.parse(open(path, encoding='utf-8').read(), path)
    values = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                and node.targets[0].id in ('_base_', 'model', 'optim_wrapper'):
            values[node.targets[0].id] = eval(compile(ast.Expression(node.value), path, 'eval'),  # noqa: S307
                                              {'__builtins__': {}, 'dict': dict})
    merged: dict = {}
    bases = values.get('_base_', [])
    for base in [bases] if isinstance(bases, str) else bases:
        if '::' not in base:
            merged = Config._merge_a_into_b(_read_local_config(osp.join(osp.dirname(path), base)), merged)
    mine = {k: v for k, v in values.items() if k != '_base_'}
    return Config._merge_a_into_b(mine, merged)


def _recipe(folder: str, stem: str, size: str, task: str) -> Tuple[dict, dict, str]:
    """(backbone keys, paramwise_cfg, recipe file) of our config for this family / size / task."""
    root = _config_root()
    short = _SHORT[size]
    dense = osp.join(root, folder, f'mask-rcnn_{stem}-{short}_fpn_1x_coco.py')
    if task == 'seg':
        path = osp.join(root, folder, f'{stem}-{short}_upernet_8xb2-160k_ade20k-512x512.py')
    elif task in ('cls', 'action'):
        found = sorted(glob.glob(osp.join(root, folder, f'{stem}-{size}_*_in1k.py')))
        path = found[0] if found else ''
    else:  # det, pose: the detection recipe (dense prediction on natural images)
        path = dense
    if not osp.isfile(path) or not osp.isfile(dense):
        raise SwapError(f'no recipe config for {stem}-{size} ({task}) under {root}')
    backbone = _read_local_config(path)['model']['backbone']
    paramwise = _read_local_config(dense).get('optim_wrapper', {}).get('paramwise_cfg', {})
    keys = {k: v for k, v in backbone.items() if k not in _NOT_FROM_RECIPE}
    paramwise = {k: v for k, v in paramwise.items() if k != '_delete_'}
    return keys, paramwise, osp.relpath(path, root)


# --------------------------------------------------------------------------------------- the old backbone
def _probe_old_backbone(cfg, scope: str) -> List[Tuple[int, int]]:
    """(stride, width) of every output of the downstream's own backbone (built in its scope, run on 256 x 256), and
    whether it returns a bare tensor instead of a tuple."""
    import torch
    from mmengine.registry import MODELS, DefaultScope
    old = copy.deepcopy(cfg.model.backbone)
    old = old.to_dict() if hasattr(old, 'to_dict') else dict(old)
    old.pop('init_cfg', None)
    old.pop('pretrained', None)
    _import_custom(cfg)
    try:
        with DefaultScope.overwrite_default_scope(scope):
            module = MODELS.build(old)
        module.eval()
        side = 256
        batch = int(getattr(module, 'num_segments', 1))  # temporal-shift backbones (ResNetTSM): segments in batch
        with torch.no_grad():
            outs = module(torch.zeros(batch, int(old.get('in_channels', 3)), side, side))
    except Exception as exc:  # any failure: tell the user what to give instead
        raise SwapError(f'could not build and run the downstream backbone {old.get("type")!r} to learn the '
                        f'levels it feeds ({type(exc).__name__}: {exc}); pass out_indices explicitly '
                        '(--out-indices)') from exc
    returns_tensor = not isinstance(outs, (tuple, list))
    outs = (outs, ) if returns_tensor else outs
    levels = []
    for out in outs:
        if not torch.is_tensor(out) or out.dim() != 4:
            raise SwapError(f'the downstream backbone {old.get("type")!r} returns {type(out).__name__} of shape '
                            f'{getattr(out, "shape", None)}, not (B, C, H, W) maps; pass --out-indices')
        levels.append((side // out.shape[-1], int(out.shape[1])))
    return levels, returns_tensor


def _import_custom(cfg) -> None:
    imports = cfg.get('custom_imports')
    if imports:
        from mmengine.utils import import_modules_from_strings
        import_modules_from_strings(**imports)


def _choose_stages(levels: List[Tuple[int, int]], old_out_indices) -> Tuple[List[int], str]:
    """Our stage for each old level: the same stride; a dilated old backbone (repeated strides): stage for stage."""
    strides = [s for s, _ in levels]
    if len(set(strides)) == len(strides) and all(s in _STRIDES for s in strides):
        return [_STRIDES.index(s) for s in strides], 'same strides'
    if isinstance(old_out_indices, int):
        old_out_indices = (old_out_indices, )
    if old_out_indices is not None and len(old_out_indices) == len(levels) \
            and all(isinstance(i, int) and 0 <= i < 4 for i in old_out_indices):
        return list(old_out_indices), (f'stage for stage (the old backbone is dilated: strides {strides}; ours '
                                       f'gives {[_STRIDES[i] for i in old_out_indices]} and the heads resize)')
    raise SwapError(f'the downstream backbone feeds strides {strides} (out_indices {old_out_indices}), which our '
                    'stages (strides 4/8/16/32) cannot match; pass out_indices explicitly (--out-indices)')


# ----------------------------------------------------------------------------------------- the consumers
def _consumers(model: dict) -> List[str]:
    """Keys of the modules that read the backbone: the neck if it declares input widths, else the heads."""
    neck = model.get('neck')
    if isinstance(neck, dict) and any(_IN_KEY.search(k) for k in neck):
        return ['neck']
    return [k for k, v in model.items() if k.endswith('head') and isinstance(v, (dict, list)) and v]


def _head_dicts(model: dict, key: str) -> List[Tuple[str, dict]]:
    value = model[key]
    if isinstance(value, dict):
        return [(key, value)]
    return [(f'{key}[{j}]', v) for j, v in enumerate(value) if isinstance(v, dict)]


def consumer_widths(model: dict) -> List[Tuple[str, int, int]]:
    """What the modules reading the backbone declare: (config key, output index, width) per declared width.

    Rules (the convention of mmdet / mmseg / mmpretrain / mmpose / mmaction2 heads and necks): a list
    ``in_channels`` reads the outputs at ``in_index`` if given, else in order; an int ``in_channels`` reads
    output ``in_index`` if given, else the last one; ``c1_in_channels`` (mmseg DeepLabV3+) reads output 0.
    """
    found = []
    for key in _consumers(model):
        for name, module in _head_dicts(model, key):
            index = module.get('in_index')
            for k, v in module.items():
                if k == 'in_channels' and isinstance(v, (list, tuple)):
                    idx = list(index) if isinstance(index, (list, tuple)) else list(range(len(v)))
                    found += [(f'{name}.in_channels[{j}]', idx[j] if j < len(idx) else j, int(c))
                              for j, c in enumerate(v)]
                elif k == 'in_channels' and isinstance(v, int):
                    found.append((f'{name}.in_channels', index if isinstance(index, int) else -1, v))
                elif k == 'c1_in_channels' and isinstance(v, int):
                    found.append((f'{name}.c1_in_channels', 0, v))
    return found


def _new_width(value: int, pos: Optional[int], old: List[int], new: List[int]) -> Optional[int]:
    if pos is not None and -len(new) <= pos < len(new) and old[pos] == value:
        return new[pos]
    matches = [k for k, c in enumerate(old) if c == value]
    return new[matches[0]] if len(matches) == 1 else None


def _edit_consumer(module: dict, name: str, old: List[int], new: List[int], notes: List[str]) -> dict:
    """The consumer's keys that carry a backbone width, set to our widths (unmatched ones reported in notes)."""
    edit = {}
    index = module.get('in_index')
    for k, v in module.items():
        if not _IN_KEY.search(k):
            continue
        if isinstance(v, (list, tuple)):
            if isinstance(index, (list, tuple)) and len(index) == len(v):
                positions = list(index)
            elif list(v) == old[::-1] and len(v) > 1:
                positions = list(range(len(v)))[::-1]  # reversed order (e.g. mmdet YOLOV3Neck)
            else:
                positions = list(range(len(v)))
            widths = [_new_width(int(c), p, old, new) for c, p in zip(v, positions)]
            if any(w is None for w in widths):
                notes.append(f'{name}.{k}={list(v)} does not match the old widths {old}: left unchanged')
                continue
            edit[k] = widths if isinstance(v, list) else tuple(widths)
        elif isinstance(v, int):
            pos = index if isinstance(index, int) else (0 if k == 'c1_in_channels' else -1)
            width = _new_width(v, pos, old, new)
            if width is None:
                notes.append(f'{name}.{k}={v} does not match the old widths {old}: left unchanged')
                continue
            edit[k] = width
    return edit


# -------------------------------------------------------------------------------------------------- the swap
def swap_backbone(cfg: Union[str, 'Config'],  # noqa: F821
                  backbone: Union[str, dict],
                  checkpoint: Optional[str] = None,
                  out_indices: Optional[Sequence[int]] = None) -> SwapPlan:
    """The config delta that swaps our backbone into a downstream OpenMMLab config.

    Args:
        cfg (str | Config): the downstream config: a path, ``'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'``
            (also ``mmseg::``, ``mmpretrain::``, ``mmpose::``, ``mmaction::``) or a loaded ``Config``.
        backbone (str | dict): our backbone, see :func:`parse_backbone` ('msmlp-tiny', a dict, a config file).
        checkpoint (str, optional): ImageNet weights for the backbone (one of our checkpoints or an official file,
            converted when loaded): ``init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.')``.
            Default None: the family's random initialisation.
        out_indices (Sequence[int], optional): our stages to return; None: the stages whose strides the old
            backbone fed (stage for stage for a dilated backbone).

    Returns:
        SwapPlan: the delta; ``plan.to_text()`` is the config file.

    Raises:
        SwapError: unknown backbone, downstream config without a backbone, levels that our strides cannot give,
            or a backbone whose old levels cannot be learned (then pass ``out_indices``).
    """
    from mmmixer.registry import MODELS
    down, base = load_downstream(cfg)
    scope = down.get('default_scope') or 'mmengine'
    ours, size = parse_backbone(backbone)
    cls = MODELS.get(ours['type'].split('.')[-1])
    model = down.model
    notes: List[str] = []

    # levels: the strides and widths the old backbone fed, and our stages with the same strides
    old_bb = model.backbone
    levels, old_returns_tensor = _probe_old_backbone(down, scope) if out_indices is None else (None, False)
    if out_indices is None:
        stages, how = _choose_stages(levels, old_bb.get('out_indices'))
    else:
        stages, how = [int(i) for i in out_indices], 'given out_indices'
        levels = [(None, None)] * len(stages)
    info = cls.arch_feature_info(ours['arch'], ours.get('patch_size'))
    if any(not 0 <= s < len(info) for s in stages):
        raise SwapError(f'out_indices {stages}: accepted stages 0..{len(info) - 1}')
    notes.append(f'out_indices={tuple(stages)}: {how}')
    neck_edit = {}
    neck = model.get('neck')
    start = neck.get('start_level', 0) if isinstance(neck, dict) else 0
    if out_indices is None and isinstance(start, int) and 0 < start < len(stages) \
            and isinstance(neck.get('in_channels'), (list, tuple)) and len(neck['in_channels']) == len(stages):
        # an FPN that skips its first inputs (RetinaNet: start_level=1): do not compute and normalise a stage the
        # neck never reads (its output norm would get no gradient, which DDP refuses); our RetinaNet configs do this
        notes.append(f'the neck skips its first {start} input(s) (start_level={start}): out_indices '
                     f'{tuple(stages[start:])} and start_level=0 give the same levels')
        stages, levels = stages[start:], levels[start:]
        neck_edit['start_level'] = 0
        model = copy.deepcopy(model)
        model.neck.in_channels = list(model.neck.in_channels)[start:]
    new = [info[s]['num_chs'] for s in stages]
    old = [c for _, c in levels]

    # recipe: our det / seg / ImageNet config of this family and size (custom arch dicts: the tiny one)
    task = _TASKS.get(scope, 'det')
    folder, stem = next((v[1], v[2]) for v in PRESET_FAMILIES.values() if v[0] == cls.__name__)
    recipe, paramwise, recipe_file = _recipe(folder, stem, size or 'tiny', task)
    bb = dict(_delete_=True, type=ours['type'], arch=ours['arch'])
    bb.update({k: v for k, v in recipe.items() if k not in ours})
    bb.update({k: v for k, v in ours.items() if k not in ('type', 'arch')})
    bb['out_indices'] = tuple(stages)
    notes.append(f'recipe keys {sorted(recipe)} from our config {recipe_file}' + ('' if size else
                                                                                  ' (custom arch: the tiny one)'))
    if 'norm_eval' not in ours:
        bb['norm_eval'] = bool(old_bb.get('norm_eval', False))
        notes.append(f'norm_eval={bb["norm_eval"]}: as the downstream backbone had it (the codebase convention)')
    if (scope == 'mmaction' and len(stages) == 1) or old_returns_tensor:
        bb['return_tuple'] = False
        notes.append('return_tuple=False: the downstream model expects one tensor, not a tuple (mmaction2 '
                     'Recognizer2D convention)')
    if checkpoint is not None:
        bb['init_cfg'] = dict(type='Pretrained', checkpoint=checkpoint, prefix='backbone.')
    elif 'init_cfg' not in ours:
        notes.append('no --checkpoint: the backbone starts from random weights; pass ImageNet weights to transfer')

    delta: Dict[str, Any] = dict(backbone=bb)
    if old is not None and all(c is not None for c in old):
        for key in _consumers(model):
            if isinstance(model[key], dict):
                edit = _edit_consumer(model[key], key, old, new, notes)
                if key == 'neck':
                    edit.update(neck_edit)
                if edit:
                    delta[key] = edit
            else:  # a list of heads is replaced as a whole
                heads = [copy.deepcopy(h.to_dict() if hasattr(h, 'to_dict') else h) for h in model[key]]
                for j, head in enumerate(heads):
                    if isinstance(head, dict):
                        head.update(_edit_consumer(head, f'{key}[{j}]', old, new, notes))
                delta[key] = heads
    else:  # given out_indices: the declared widths, read structurally
        for name, pos, _ in consumer_widths(model):
            notes.append(f'{name}: set it to {new[pos]} (stage {stages[pos]})')
        delta.update(_structural_edit(model, new))
    if model.get('pretrained'):
        delta['pretrained'] = None
        notes.append(f'model.pretrained={model.pretrained!r} (weights of the old backbone) cleared')
    init = model.get('init_cfg')
    if isinstance(init, dict) and init.get('type') == 'Pretrained':
        delta['init_cfg'] = None
        notes.append(f'model.init_cfg (Pretrained {init.get("checkpoint")!r}, the old backbone\'s) cleared')

    imports = ['mmmixer.models']
    old_imports = down.get('custom_imports')
    if old_imports:
        imports = list(old_imports.get('imports', [])) + [i for i in imports if i not in old_imports.get('imports')]
    optim = dict(paramwise_cfg=paramwise) if paramwise else {}
    return SwapPlan(base=base, scope=scope, backbone=bb, model=delta, optim_wrapper=optim,
                    custom_imports=dict(imports=imports, allow_failed_imports=False),
                    levels=[(s, c, st, w) for (s, c), st, w in zip(levels, stages, new)], notes=notes)


def _structural_edit(model: dict, new: List[int]) -> dict:
    """Consumer edits from the reading rules alone (used with explicit out_indices: no old widths known)."""
    delta = {}
    for key in _consumers(model):
        for name, module in _head_dicts(model, key):
            if name != key:
                continue
            edit, index = {}, module.get('in_index')
            v = module.get('in_channels')
            if isinstance(v, (list, tuple)):
                idx = list(index) if isinstance(index, (list, tuple)) else list(range(len(v)))
                edit['in_channels'] = [new[i] for i in idx]
            elif isinstance(v, int):
                edit['in_channels'] = new[index if isinstance(index, int) else -1]
            if isinstance(module.get('c1_in_channels'), int):
                edit['c1_in_channels'] = new[0]
            if edit:
                delta[key] = edit
    return delta
