"""One skeleton for the official-checkpoint converters of MS-MLP, PosMLP and Strip-MLP.

An :class:`OfficialConverter` describes one family's official layout: the keys that identify it, where the training
code stores the weights in its checkpoint file, and a rule table mapping every official key onto our classifier's
keys (``backbone.*``, ``head.fc.*``). It strips a ``module.`` prefix with mmengine's ``revise_keys`` convention
(``[(r'^module\\.', '')]``, the default of ``mmengine.runner.load_checkpoint``), infers the depths from the block
keys, maps every key and refuses leftovers, so a checkpoint of another family or an unsupported variant never
converts partially. The family files define their converter beside the model (``OFFICIAL`` and
``convert_official_*`` in ``backbones/*.py``, timm's ``checkpoint_filter_fn`` pattern); the command-line tools in
``tools/model_converters/`` and ``init_cfg=dict(type='Pretrained', checkpoint=<official file>)`` both use them.
"""
import argparse
import os
import os.path as osp
import re
from collections import OrderedDict
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch

from .safe_load import CheckpointLoadError, load_foreign_checkpoint

__all__ = ['OfficialConverter', 'converter_main']

#: a rule's replacement: a ``re`` template (``\\1``), a function of the match (returning the new key, or
#: ``NotImplemented`` when it does not handle the key after all), or None (drop the key)
Replacement = Union[str, Callable[[re.Match], Optional[str]], None]


class OfficialConverter:
    """An official checkpoint layout and its mapping onto mmmixer keys.

    Args:
        family (str): display name, e.g. ``'MS-MLP'``.
        backbone (str): our backbone class name (recorded in converted files' ``meta['family']``).
        tool (str): the command-line converter, e.g. ``'tools/model_converters/msmlp_to_mmmixer.py'``.
        signature (Sequence[str]): official keys whose presence identifies the layout (after ``module.`` stripping);
            an entry ending in ``*`` is a prefix (``'layers.*'``).
        rules (Sequence[tuple[str, Replacement]]): ``(pattern, replacement)``; the first pattern that fully matches
            a key decides (``re.fullmatch``).
        block_pattern (str): regex with groups (stage, block) matching official block keys, for the depths;
            ``stage_offset`` is subtracted from the stage group (Strip-MLP numbers stages from 1).
        container_keys (Sequence[str]): where the official training code stores the weights, in order of
            preference (e.g. ``('state_dict_ema', 'state_dict')``); a bare state dict is accepted too.
        container_help (str): one sentence saying where the weights live, for error messages.
        leftover_hint (str): appended to the error for unmapped keys.
        stage_offset (int): see ``block_pattern``. Default 0.
        model_noun (str, optional): what the error for unmapped keys calls the model (default
            ``'an official <family> model'``).

    A rule may map onto ``norm{last}``: :meth:`convert_keys` writes the last stage's index there (the official final
    norm). The family's conversion function, registered with :meth:`converts`, is what the backbone's inherited
    ``convert_official`` calls (:class:`~mmmixer.checkpoint.CheckpointHooks`).
    """
    revise_keys = [(r'^module\.', '')]

    def __init__(self, family: str, backbone: str, tool: str, signature: Sequence[str],
                 rules: Sequence[Tuple[str, Replacement]], block_pattern: str, container_keys: Sequence[str],
                 container_help: str, leftover_hint: str = "is it another family's checkpoint?",
                 stage_offset: int = 0, model_noun: Optional[str] = None):
        self.family, self.backbone, self.tool = family, backbone, tool
        self.signature = tuple(signature)
        self.rules = [(re.compile(p), r) for p, r in rules]
        self.block_pattern = re.compile(block_pattern)
        self.container_keys = tuple(container_keys)
        self.container_help = container_help
        self.leftover_hint = leftover_hint
        self.stage_offset = stage_offset
        self.model_noun = model_noun or f'an official {family} model'
        self.convert: Optional[Callable[[dict], dict]] = None

    def converts(self, fn: Callable[[dict], dict]) -> Callable[[dict], dict]:
        """Decorator: register ``fn`` (official state dict -> ``dict(state_dict=..., arch=..., ...)``) as this layout's
        conversion, called by the backbone's ``convert_official``; returns ``fn`` unchanged."""
        self.convert = fn
        return fn

    def strip(self, state_dict: Dict[str, Any]) -> Dict[str, Any]:
        """Apply :attr:`revise_keys` (a DataParallel ``module.`` prefix) to every key."""
        out = {}
        for key, value in state_dict.items():
            for pattern, repl in self.revise_keys:
                key = re.sub(pattern, repl, key)
            out[key] = value
        return out

    def matches(self, state_dict: Any) -> bool:
        """Whether ``state_dict`` (possibly ``module.``-prefixed) is in this official layout."""
        if not isinstance(state_dict, dict):
            return False
        return not self._missing_signature(self.strip(state_dict))

    def _missing_signature(self, sd: Dict[str, Any]) -> List[str]:
        """Signature entries absent from ``sd`` (an entry ending in ``*`` is a key prefix)."""
        return [k for k in self.signature
                if not (any(key.startswith(k[:-1]) for key in sd) if k.endswith('*') else k in sd)]

    def find_weights(self, checkpoint: Any, key: Optional[str] = None) -> Optional[Tuple[str, dict]]:
        """``(container key, state dict)`` of the official weights in a checkpoint file's dict, or None.

        Looks at ``key`` if given, else at :attr:`container_keys` in order, then at the dict itself (a bare state
        dict, container key ``''``)."""
        if not isinstance(checkpoint, dict):
            return None
        for name in ([key] if key else self.container_keys):
            if self.matches(checkpoint.get(name)):
                return name, checkpoint[name]
        return ('', checkpoint) if key is None and self.matches(checkpoint) else None

    def depths(self, state_dict: Dict[str, Any]) -> List[int]:
        """Blocks per stage, from the highest block index of each stage's keys."""
        depths: List[int] = []
        for key in state_dict:
            m = self.block_pattern.match(key)
            if m:
                stage, block = int(m.group(1)) - self.stage_offset, int(m.group(2))
                depths.extend([0] * (stage + 1 - len(depths)))
                depths[stage] = max(depths[stage], block + 1)
        return depths

    def map_key(self, key: str) -> Tuple[bool, Optional[str]]:
        """(matched, new key or None to drop) for one official key."""
        for pattern, repl in self.rules:
            m = pattern.fullmatch(key)
            if m:
                new = m.expand(repl) if isinstance(repl, str) else (repl(m) if repl else None)
                if new is not NotImplemented:
                    return True, new
        return False, None

    def convert_keys(self, state_dict: Dict[str, Any],
                     reshape: Optional[Callable[[str, torch.Tensor], torch.Tensor]] = None) -> 'OrderedDict':
        """Map every key (``module.`` stripped); ``reshape(new_key, tensor)`` may change a tensor's layout.

        ``norm{last}`` in a mapped key becomes ``norm{i}``, ``i`` the last stage of :meth:`depths`.

        Raises:
            ValueError: the layout's signature keys are missing (not this family's checkpoint), keys that no rule
                maps (the message lists up to five), or two official keys mapping onto the same key.
        """
        sd = self.strip(state_dict)
        if self._missing_signature(sd):
            raise ValueError(f'Not an official {self.family} checkpoint: expected keys '
                             + ' and '.join(f'"{k}"' for k in self.signature) + f'; found e.g. {sorted(sd)[:5]}.')
        out, leftover = OrderedDict(), []
        last = f'norm{len(self.depths(sd)) - 1}.'
        for key, value in sd.items():
            matched, new = self.map_key(key)
            if not matched:
                leftover.append(key)
            elif new is not None:
                new = new.replace('norm{last}.', last)
                if new in out:
                    raise ValueError(f'{self.family} checkpoint gives {new} twice; last key {key}.')
                out[new] = reshape(new, value) if reshape else value
        if leftover:
            raise ValueError(f'{len(leftover)} keys of the checkpoint are not part of {self.model_noun}, e.g. '
                             f'{leftover[:5]}; {self.leftover_hint}')
        return out


def converter_main(converter: OfficialConverter, convert: Callable[[dict], dict], description: str,
                   argv: Optional[Sequence[str]] = None, weights_arg: Optional[Tuple[str, str, str]] = None,
                   label: Optional[Callable[[dict], str]] = None) -> None:
    """The command line of the three converters: ``SRC DST``, read SRC safely, convert, save ``{state_dict, meta}``.

    SRC is read with :func:`mmmixer.checkpoint.safe_load.load_foreign_checkpoint` (nothing from the file runs or is
    imported). DST gets ``{'state_dict': {'backbone.*', 'head.fc.*'}, 'meta': {...}}``; ``meta`` records the source
    file, the converter, ``family`` (our backbone class) and everything ``convert`` returned besides the state dict
    (the arch to build).

    Args:
        converter (OfficialConverter): the family's layout.
        convert (callable): ``state_dict -> dict(state_dict=..., arch=..., ...)`` (the family's
            ``convert_official_*``).
        description (str): the tool's help text.
        argv (Sequence[str], optional): arguments (default ``sys.argv[1:]``).
        weights_arg (tuple[str, str, str], optional): ``(flag, container key, help)``: a flag selecting another
            container key than the first of :attr:`OfficialConverter.container_keys`.
        label (callable, optional): ``result -> str`` naming the converted model in the printed summary (default:
            the family name).

    Raises:
        SystemExit: missing or unreadable SRC, no weights where the official code stores them, or a conversion
            error; the message names SRC and what is accepted.
    """
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help=f'official {converter.family} checkpoint (.pth)')
    parser.add_argument('dst', help='output mmmixer checkpoint (.pth)')
    if weights_arg:
        parser.add_argument(weights_arg[0], dest='alt_weights', action='store_true', help=weights_arg[2])
    args = parser.parse_args(argv)
    accepted = f'accepted: an official {converter.family} checkpoint file (.pth).'
    if not osp.isfile(args.src):
        raise SystemExit(f'error: SRC {args.src!r} does not exist; {accepted}')
    try:
        ckpt = load_foreign_checkpoint(args.src)
    except CheckpointLoadError as err:
        raise SystemExit(f'error: SRC: {err} {accepted[0].upper()}{accepted[1:]}')
    key = weights_arg[1] if weights_arg and args.alt_weights else converter.container_keys[0]
    if key in ckpt:
        weights = ckpt[key]
    elif not weights_arg and converter.matches(ckpt):  # a bare state dict
        weights, key = ckpt, ''
    else:
        raise SystemExit(f'error: {args.src} has no {key!r} entry (top-level keys: {sorted(ckpt)[:10]}); '
                         f'{converter.container_help}')
    try:
        result = convert(weights)
    except ValueError as err:
        raise SystemExit(f'error: {args.src}: {err}')
    extra = {k: v for k, v in result.items() if k != 'state_dict'}
    meta = dict(source=osp.basename(args.src), converter=osp.splitext(osp.basename(converter.tool))[0],
                family=converter.backbone, weights=key or 'state_dict', **extra)
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    torch.save(dict(state_dict=result['state_dict'], meta=meta), args.dst)
    described = ', '.join(f'{k} {v!r}' if isinstance(v, str) else f'{k} {v}' for k, v in extra.items())
    name = label(result) if label else converter.family
    print(f'converted {len(result["state_dict"])} tensors ({key or "bare state dict"}) of {name}: {described} '
          f'-> {args.dst}')
