"""Checks ``tools/train.py`` / ``tools/test.py`` run on a config before building the Runner, so that the two most
common config mistakes give one error naming the setting, its value and what is accepted (instead of mmengine's
registry ``KeyError`` deep in the model build, or a ``FileNotFoundError`` from inside a data worker).
"""
import difflib
import os.path as osp
from typing import Iterator, List, Optional, Sequence, Tuple

from mmengine.registry import MODELS

from mmmixer.checkpoint import missing_pretrained_message
from mmmixer.registry import MODELS as MMMIXER_MODELS

__all__ = ['check_backbone_type', 'check_data_roots', 'check_pretrained']


def _registered_names(registry) -> List[str]:
    names, node = [], registry
    while node is not None:
        names += [f'{node.scope}.{k}' for k in node.module_dict] + list(node.module_dict)
        node = node.parent
    return names


def check_backbone_type(cfg) -> None:
    """``model.backbone.type`` must name a registered model under the config's ``default_scope``.

    Raises:
        SystemExit: the type is not registered; the message names the setting and value, lists mmmixer's backbones
            and the closest registered names.
    """
    backbone = (cfg.get('model') or {}).get('backbone')
    if not isinstance(backbone, dict) or not isinstance(backbone.get('type'), str):
        return
    MMMIXER_MODELS.import_from_location()  # imports its location, mmmixer.models: registers our backbones
    name = backbone['type']
    scope = cfg.get('default_scope') or 'mmengine'
    with MODELS.switch_scope_and_registry(scope) as registry:
        if registry.get(name) is not None:
            return
        candidates = _registered_names(registry) + _registered_names(MMMIXER_MODELS)
    ours = sorted(f'mmmixer.{k}' for k in MMMIXER_MODELS.module_dict)
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
    raise SystemExit(f'error: model.backbone.type={name!r} is not a registered model (default_scope {scope!r}); '
                     f'accepted: a registered backbone, e.g. mmmixer\'s {ours}'
                     + (f'; did you mean {close}?' if close else '.'))


def _datasets(node, path: str) -> Iterator[Tuple[str, dict]]:
    """(config path, dataset dict) of a dataset config and the datasets it wraps (RepeatDataset, ConcatDataset)."""
    if not isinstance(node, dict):
        return
    yield path, node
    if isinstance(node.get('dataset'), dict):
        yield from _datasets(node['dataset'], f'{path}.dataset')
    for i, child in enumerate(node.get('datasets') or []):
        yield from _datasets(child, f'{path}.datasets.{i}')


def check_data_roots(cfg, splits: Sequence[str] = ('train', 'val', 'test')) -> None:
    """Every local ``data_root`` (and ``ann_file`` under it) of the given splits' datasets must exist.

    Skipped for remote roots (``s3://...``) and datasets read through a non-local ``backend_args``.

    Raises:
        SystemExit: the first missing directory / file; the message names the config setting, the value and what
            is accepted, with the command that writes the digits demo data when the path looks like it.
    """
    if cfg.get('backend_args') is not None:
        return
    for split in splits:
        loader = cfg.get(f'{split}_dataloader')
        if not isinstance(loader, dict):
            continue
        for path, dataset in _datasets(loader.get('dataset'), f'{split}_dataloader.dataset'):
            if dataset.get('backend_args') is not None:
                continue
            root = dataset.get('data_root')
            ann_file = dataset.get('ann_file')
            problem: Optional[str] = None
            if isinstance(root, str) and root and '://' not in root and not osp.isdir(root):
                setting = f'{path}.data_root=<dir>'
                problem = (f'{path}.data_root={root!r} is not an existing directory (absolute: {osp.abspath(root)}); '
                           'accepted: the directory that holds the dataset')
            elif isinstance(ann_file, str) and ann_file and '://' not in ann_file:
                full = ann_file if osp.isabs(ann_file) or not root else osp.join(root, ann_file)
                setting = f'{path}.ann_file=<file>'
                if not osp.isfile(full):
                    problem = (f'{path}.ann_file={ann_file!r} does not exist (looked for {osp.abspath(full)}); '
                               'accepted: an annotation file, relative to data_root')
            if problem is not None:
                hint = ''
                if 'digits' in str(root):
                    hint = (f'. The digits demo data is written by `python tools/dataset_converters/'
                            f'digits_to_imagenet.py {root}` (or `bash tools/run_demo.sh`)')
                raise SystemExit(f'error: {problem}{hint}. Set it in the config or with --cfg-options {setting}.')


def check_pretrained(cfg) -> None:
    """A local ``model.backbone.init_cfg`` ``Pretrained`` checkpoint must exist before training starts.

    Without this check the Runner would log the config and the environment, build every dataset and only then stop
    in ``init_weights``. Remote checkpoints (``https://``, ``open-mmlab://``, ...) are not checked here.

    Raises:
        SystemExit: the message names the setting, the file, the family's converter (or that the official file
            itself can be given) and ``init_cfg=None`` (:func:`mmmixer.checkpoint.missing_pretrained_message`).
    """
    backbone = (cfg.get('model') or {}).get('backbone')
    if not isinstance(backbone, dict):
        return
    kind = backbone.get('type')
    name = kind.split('.', 1)[1] if isinstance(kind, str) and kind.startswith('mmmixer.') else None
    model = MMMIXER_MODELS.get(name) if name else None
    message = missing_pretrained_message(backbone.get('init_cfg'), model if model is not None else str(kind))
    if message:
        raise SystemExit(f'error: model.backbone.init_cfg: {message}')
