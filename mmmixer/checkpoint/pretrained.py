"""``init_cfg=dict(type='Pretrained', ...)`` for the mmmixer backbones: our checkpoints and official ones.

mmengine's ``PretrainedInit`` reads a file with ``torch.load`` and copies what fits (``strict=False``). Our backbones
instead route a ``Pretrained`` entry through :func:`load_pretrained` (the pattern of mmdet's Swin
``init_weights(convert_weights=True)``):

* the file is read without executing anything from it (:func:`mmmixer.checkpoint.safe_load.load_foreign_checkpoint`);
  an ``http(s)://`` URL is downloaded once into torch's hub cache (``$TORCH_HOME/hub/checkpoints``) first;
* a checkpoint in the family's **official layout** (the files the papers' code released) is detected and converted
  in memory by the same rules as ``tools/model_converters/*_to_mmmixer.py`` (:mod:`mmmixer.checkpoint.converter`);
* every backbone tensor is accounted for in a :class:`LoadReport` (loaded / resized / new / derived / unused),
  logged and kept in ``backbone.pretrained_report``; a checkpoint of another arch raises one
  :class:`~mmmixer.checkpoint.safe_load.CheckpointLoadError` naming the file, the arch and the keys, and nothing is
  copied.

A missing local checkpoint is reported with what to do about it: as a warning when the backbone is built, as the
error of ``init_weights`` and, before the Runner starts, by our ``tools/train.py`` (:func:`missing_pretrained_message`).
"""
import copy
import logging
import os
import os.path as osp
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import urlparse

import torch
from mmengine.logging import print_log
from mmengine.runner.checkpoint import CheckpointLoader

from .fit import allow_partial_load
from .safe_load import CheckpointLoadError, load_foreign_checkpoint

__all__ = ['LoadReport', 'pretrained_to_init_cfg', 'check_local_pretrained', 'read_checkpoint', 'load_pretrained',
           'init_with_pretrained', 'find_pretrained_cfg',
           'missing_pretrained_message']


@dataclass
class LoadReport:
    """Which tensors of a backbone came from a checkpoint (names without prefix).

    Attributes:
        loaded (list[str]): model tensors copied from the checkpoint (includes ``resized``).
        resized (list[str]): tensors adapted to this model's shape on load (e.g. position tables of another
            window size).
        new (list[str]): model tensors absent from the checkpoint, left at their initialisation (e.g. output norms
            that a classifier does not have, the hybrid's MS blocks when loading a Swin checkpoint).
        derived (list[str]): buffers computed from the configuration, never read from a checkpoint.
        unused (list[str]): checkpoint tensors (under the prefix) the model has no place for.
        prefix (str): the checkpoint prefix that was stripped.
        source (str): 'mmmixer' (our layout) or the official layout that was converted, e.g. 'official MS-MLP'.
    """
    loaded: List[str] = field(default_factory=list)
    resized: List[str] = field(default_factory=list)
    new: List[str] = field(default_factory=list)
    derived: List[str] = field(default_factory=list)
    unused: List[str] = field(default_factory=list)
    prefix: str = ''
    source: str = 'mmmixer'

    def as_dict(self) -> Dict[str, Any]:
        return dict(loaded=list(self.loaded), resized=list(self.resized), new=list(self.new),
                    derived=list(self.derived), unused=list(self.unused), prefix=self.prefix)

    def summary(self, max_keys: int = 0) -> str:
        """One line of counts, then (if ``max_keys``) up to that many names per group."""
        text = (f'loaded {len(self.loaded)} tensors from the checkpoint (prefix {self.prefix!r}; '
                f'{len(self.resized)} resized), {len(self.new)} new (initialised here), '
                f'{len(self.derived)} derived buffers, {len(self.unused)} checkpoint tensors unused')
        if max_keys:
            for name in ('loaded', 'resized', 'new', 'unused'):
                keys = getattr(self, name)
                if keys:
                    more = f' ... (+{len(keys) - max_keys})' if len(keys) > max_keys else ''
                    text += f'\n  {name}: ' + ', '.join(keys[:max_keys]) + more
        return text

    def __str__(self) -> str:
        return self.summary(max_keys=8)


def _is_pretrained(cfg: Any) -> bool:
    kind = cfg.get('type') if isinstance(cfg, dict) else None
    return kind == 'Pretrained' or getattr(kind, '__name__', '') == 'PretrainedInit'


def find_pretrained_cfg(init_cfg: Any) -> Optional[dict]:
    """The ``Pretrained`` entry of an ``init_cfg`` (dict or list), or None.

    Raises:
        ValueError: more than one ``Pretrained`` entry.
    """
    cfgs = init_cfg if isinstance(init_cfg, (list, tuple)) else [init_cfg] if init_cfg else []
    found = [c for c in cfgs if _is_pretrained(c)]
    if len(found) > 1:
        raise ValueError(f'init_cfg holds {len(found)} Pretrained entries; give one.')
    return found[0] if found else None


#: mmengine checkpoint schemes whose model zoos hold other architectures (ResNet, ResNeXt, ...), never ours.
_OTHER_MODEL_ZOOS = ('open-mmlab://', 'openmmlab://', 'torchvision://', 'mmcls://', 'mmpretrain://')


def pretrained_to_init_cfg(pretrained: Optional[str], init_cfg: Any, owner: str) -> Any:
    """The deprecated ``pretrained`` argument of mmdet / mmseg backbones, as an ``init_cfg`` entry.

    mmseg's ``EncoderDecoder`` hands ``model.pretrained`` to the backbone; mmdet's and mmseg's own backbones turn it
    into ``init_cfg=dict(type='Pretrained', checkpoint=pretrained)`` with a deprecation warning, and so do ours. The
    other ``init_cfg`` entries stay (they initialise what the checkpoint does not hold).

    Raises:
        TypeError: ``pretrained`` is neither None nor a str.
        ValueError: ``init_cfg`` holds a ``Pretrained`` entry too; ``pretrained`` names one of mmengine's model
            zoos (``open-mmlab://``, ``torchvision://``, ...), which only hold other architectures: the usual leftover
            of a downstream config (e.g. mmseg's Semantic FPN sets ``model.pretrained='open-mmlab://resnet50_v1c'``)
            after a backbone swap.
    """
    if pretrained is None:
        return init_cfg
    if not isinstance(pretrained, str):
        raise TypeError(f'{owner}: pretrained must be a checkpoint path or URL (str) or None, got {pretrained!r}.')
    if pretrained.startswith(_OTHER_MODEL_ZOOS):
        raise ValueError(
            f'{owner}: pretrained={pretrained!r} names a checkpoint of another architecture (the mmengine model '
            f'zoos {", ".join(_OTHER_MODEL_ZOOS)} hold ResNet-style weights, none of {owner}). The config you '
            'swapped the backbone into still sets model.pretrained: set model.pretrained=None, and load our '
            "weights with model.backbone.init_cfg=dict(type='Pretrained', checkpoint=...).")
    if find_pretrained_cfg(init_cfg) is not None:
        raise ValueError(f'{owner}: pretrained={pretrained!r} and an init_cfg Pretrained entry are both given; '
                         "accepted: one of them (pretrained is deprecated: use init_cfg=dict(type='Pretrained', "
                         'checkpoint=...)).')
    warnings.warn(f'{owner}: pretrained is deprecated, use init_cfg=dict(type="Pretrained", checkpoint=...) '
                  'instead.', DeprecationWarning, stacklevel=3)
    others = init_cfg if isinstance(init_cfg, (list, tuple)) else [init_cfg] if init_cfg else []
    return [*copy.deepcopy(list(others)), dict(type='Pretrained', checkpoint=pretrained)]


def _is_local(path: str) -> bool:
    return '://' not in path


def missing_pretrained_message(init_cfg: Any, model: Any) -> Optional[str]:
    """The error for a ``Pretrained`` checkpoint that is a local path and does not exist, or None.

    The message names the file, how to get it (the family's converter for official weights, or that the official
    file itself works) and how to build without it (``model.backbone.init_cfg=None``).
    """
    cfg = find_pretrained_cfg(init_cfg)
    checkpoint = cfg.get('checkpoint') if cfg else None
    if not isinstance(checkpoint, (str, os.PathLike)) or not _is_local(os.fspath(checkpoint)):
        return None
    path = osp.expanduser(os.fspath(checkpoint))
    if osp.isfile(path):
        return None
    official = getattr(model, 'official', None)
    how = (f'convert the official {official.family} weights into it with `python {official.tool} <official file> '
           f'{checkpoint}`, or point init_cfg.checkpoint at the official file or URL (converted on load)'
           if official is not None else 'train or download it (see the config and docs/papers.md)')
    name = model if isinstance(model, str) else getattr(model, '__name__', type(model).__name__)
    return (f'{name}: the Pretrained checkpoint {checkpoint!r} in init_cfg does not exist (absolute: '
            f'{osp.abspath(path)}). Either {how}; or build without it: init_cfg=None (e.g. --cfg-options '
            'model.backbone.init_cfg=None) to train from scratch or to load a full model checkpoint afterwards.')


def check_local_pretrained(init_cfg: Any, model: Any) -> None:
    """At build time: log a warning when a local ``Pretrained`` checkpoint does not exist.

    Building must still work without it: inference entry points (mmengine's ``BaseInferencer`` behind mmdet's
    ``DetInferencer`` / mmseg's ``MMSegInferencer``, mmdet/mmseg ``get_flops``) build the model from a training
    config and then load a full checkpoint. ``init_weights`` raises (:func:`init_with_pretrained`), and our
    ``tools/train.py`` checks before the Runner starts (:func:`mmmixer.utils.config_check.check_pretrained`).
    """
    message = missing_pretrained_message(init_cfg, model)
    if message:
        print_log(message + ' init_weights() will fail.', logger='current', level=logging.WARNING)


def read_checkpoint(checkpoint: Any, map_location: str = 'cpu') -> Tuple[Any, str]:
    """A checkpoint's content and a name for messages: a dict as is, a local file or an ``http(s)`` URL read without
    executing anything from it (URLs are downloaded once into torch's hub cache), other mmengine schemes
    (``open-mmlab://``, ``torchvision://``, ...) through mmengine's ``CheckpointLoader``.

    Raises:
        FileNotFoundError: a local file that does not exist.
        CheckpointLoadError: an unreadable file.
    """
    if isinstance(checkpoint, dict):
        return checkpoint, 'the checkpoint dict'
    if not isinstance(checkpoint, (str, os.PathLike)):
        raise TypeError(f'checkpoint must be a path, a URL or a dict, got {type(checkpoint).__name__}.')
    name = os.fspath(checkpoint)
    if name.startswith(('http://', 'https://')):
        cache = osp.join(torch.hub.get_dir(), 'checkpoints')
        path = osp.join(cache, osp.basename(urlparse(name).path))
        if not osp.isfile(path):
            os.makedirs(cache, exist_ok=True)
            print_log(f'Downloading {name} to {path}', logger='current')
            torch.hub.download_url_to_file(name, path, progress=False)
        return load_foreign_checkpoint(path), name
    if not _is_local(name):
        return CheckpointLoader.load_checkpoint(name, map_location=map_location), name
    path = osp.expanduser(name)
    if not osp.isfile(path):
        raise FileNotFoundError(f'Checkpoint file "{name}" does not exist.')
    return load_foreign_checkpoint(path), name


def _state_dict(checkpoint: Any, model: Any) -> Tuple[Dict[str, Any], str]:
    """(state dict in our key layout, source) of a checkpoint's content; official layouts are converted."""
    official = getattr(model, 'official', None)
    found = official.find_weights(checkpoint) if official is not None else None
    if found is not None:
        result = type(model).convert_official(found[1])
        return result['state_dict'], f'official {official.family} ({found[0] or "bare state dict"})'
    if isinstance(checkpoint, dict):
        for key in ('state_dict', 'model'):
            if isinstance(checkpoint.get(key), dict):
                checkpoint = checkpoint[key]
                break
    if not isinstance(checkpoint, dict):
        raise CheckpointLoadError(f'The checkpoint holds a {type(checkpoint).__name__}, expected a dict of tensors.')
    return {k[7:] if k.startswith('module.') else k: v for k, v in checkpoint.items()}, 'mmmixer'


@dataclass
class _Plan:
    """What a load would do, before anything is copied."""
    report: LoadReport
    to_load: Dict[str, torch.Tensor]
    mismatched: List[str]
    required_missing: List[str]
    unexpected: List[str]


def plan_load(model: Any, state: Dict[str, Any], prefix: str) -> _Plan:
    """Match the checkpoint tensors ``state`` (prefix stripped, adapted by the family) against the model."""
    report = LoadReport(prefix=prefix)
    own = model.state_dict()
    tolerate = getattr(model, '_tolerate_on_load', lambda *a: False)
    to_load, mismatched, required_missing = {}, [], []
    for key, value in own.items():
        if model._derived_on_load(key):
            report.derived.append(key)
            continue
        if key not in state:
            report.new.append(key)
            if not model._may_be_new(key):
                required_missing.append(key)
            continue
        src = state[key]
        if tuple(getattr(src, 'shape', ())) != tuple(value.shape) and not tolerate(key, src, value):
            mismatched.append(f'{key}: checkpoint {tuple(getattr(src, "shape", ()))} vs model {tuple(value.shape)}')
            continue
        if tuple(src.shape) != tuple(value.shape):
            report.resized.append(key)
        to_load[key] = src
        report.loaded.append(key)
    dropped = tuple(getattr(model, '_dropped_on_load', ()))
    report.unused = [k for k in state if k not in own and not (dropped and k.endswith(dropped))]
    roots = {k.split('.', 1)[0] for k in own}
    unexpected = [k for k in report.unused if k.split('.', 1)[0] in roots and not model._may_be_unused(k)]
    return _Plan(report, to_load, mismatched, required_missing, unexpected)


def _problems(plan: _Plan, max_items: int = 5) -> List[str]:
    problems = []
    if plan.mismatched:
        problems.append(f'{len(plan.mismatched)} tensors have another shape, e.g. '
                        + '; '.join(plan.mismatched[:max_items]))
    if plan.required_missing:
        problems.append(f'{len(plan.required_missing)} of the model\'s tensors are missing from the checkpoint, e.g. '
                        f'{plan.required_missing[:max_items]}')
    if plan.unexpected:
        problems.append(f'{len(plan.unexpected)} checkpoint tensors are not in the model, e.g. '
                        f'{plan.unexpected[:max_items]}')
    return problems


def load_pretrained(model: Any, checkpoint: Any, prefix: Optional[str] = None, map_location: str = 'cpu',
                    strict: bool = True, name: Optional[str] = None) -> LoadReport:
    """Load a checkpoint into an mmmixer backbone and report where every tensor came from.

    Args:
        model (MixerBackbone): the backbone (its current values stay for ``new`` tensors: initialise it first).
        checkpoint (str | os.PathLike | dict): a local file, a URL, or the checkpoint's content. Accepted layouts:
            ours (a Runner checkpoint or a converted file: ``state_dict`` with ``backbone.*`` keys, or a bare state
            dict) and the family's official layout (see ``model.official``), converted in memory.
        prefix (str, optional): prefix of the backbone keys, e.g. ``'backbone.'`` (classifier checkpoints). None:
            ``'backbone.'`` if some key carries it, else ``''``. Official checkpoints always use ``'backbone.'``
            after conversion.
        map_location (str): for mmengine-scheme URLs. Default 'cpu'.
        strict (bool): raise if a required model tensor is missing, has another shape, or the checkpoint has
            tensors of this backbone's modules that the model does not have (another depth). Default True. False:
            load what fits; mis-shaped tensors are reported as new.
        name (str, optional): how messages name the checkpoint (default: its path, URL or 'the checkpoint dict').

    Returns:
        LoadReport: what was loaded, resized, left new, derived, unused.

    Raises:
        FileNotFoundError: a local file that does not exist.
        CheckpointLoadError: unreadable file; no key under ``prefix``; with ``strict``, a checkpoint that does not
            fit (the message names the file, ``model.arch_repr()`` and the keys). Nothing is copied then.
    """
    raw, where = read_checkpoint(checkpoint, map_location)
    name = name or where
    state, source = _state_dict(raw, model)
    if source != 'mmmixer' or prefix is None:
        prefix = 'backbone.' if any(k.startswith('backbone.') for k in state) else ''
    sub = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if not sub:
        raise CheckpointLoadError(f'Checkpoint "{name}": no key starts with prefix {prefix!r}; keys look like '
                                  f'{sorted(state)[:5]}. Set init_cfg prefix to the backbone\'s prefix in the file.')
    sub = model._adapt_pretrained(sub)
    plan = plan_load(model, sub, prefix)
    plan.report.source = source
    if strict and _problems(plan):
        model._raise_pretrained_mismatch(name, plan, _problems(plan))
    plan.report.new.extend(m.split(':')[0] for m in plan.mismatched)  # strict=False: they keep their init
    with allow_partial_load():  # to_load holds exactly the tensors selected above
        model.load_state_dict(plan.to_load, strict=False)
    return plan.report


def init_with_pretrained(model: Any, default_init: Callable[[], None]) -> bool:
    """Run ``model``'s initialisation with its ``Pretrained`` entry, if ``init_cfg`` has one (else return False).

    The other ``init_cfg`` entries run first through ``default_init`` (mmengine ``BaseModule.init_weights``, which
    also runs the children's ``init_weights``; if there are none and the family sets ``init_before_pretrained``, its
    ``default_init_cfg``), then :func:`load_pretrained`; the report is logged and stored in
    ``model.pretrained_report``.

    Raises:
        FileNotFoundError: a local checkpoint that does not exist (:func:`missing_pretrained_message`).
    """
    pretrained = find_pretrained_cfg(model.init_cfg)
    if pretrained is None or model.is_init:
        return False
    missing = missing_pretrained_message(model.init_cfg, model)
    if missing:
        raise FileNotFoundError(missing)
    saved = model.init_cfg
    cfgs = saved if isinstance(saved, (list, tuple)) else [saved]
    others = [c for c in cfgs if c is not pretrained]
    # as mmengine's BaseModule: the other entries and the children's init_weights run, then the checkpoint is loaded;
    # a family whose checkpoints may leave whole blocks new (the hybrid) applies its default init first
    default = copy.deepcopy(model.default_init_cfg) if getattr(model, 'init_before_pretrained', False) else None
    model.init_cfg = others or default
    try:
        default_init()
    finally:
        model.init_cfg = saved
    report = load_pretrained(model, pretrained['checkpoint'], prefix=pretrained.get('prefix'),
                             map_location=pretrained.get('map_location', 'cpu'))
    model.pretrained_report = report
    print_log(f'{type(model).__name__}: {report.source} checkpoint {pretrained["checkpoint"]}: {report.summary()}',
              logger='current')
    return True

