"""Bad inputs across the backbones, converters and tools: one error each, naming the argument, the value and what
is accepted. One case per row of docs/bad_inputs.md; ``test_docs_table_shows_the_actual_messages`` checks that
the table quotes the messages the code gives today.

Regenerate the table after changing a message: ``PYTHONPATH=. python tests/test_bad_inputs.py`` (prints the Markdown
rows).
"""
import math
import os
import os.path as osp
import re
import sys
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

import pytest
import torch

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from helpers_mmmixer import REPO, config_path, load_tool  # noqa: E402

from mmmixer.models import MSMLP, PosMLP, StripMLP, SwinMSMLP  # noqa: E402
import mmmixer.checkpoint as checkpoint_lib  # noqa: E402
from mmmixer.checkpoint import CheckpointLoadError  # noqa: E402
from mmmixer.swap import SwapError, swap_backbone, verify_swap  # noqa: E402

DOC = osp.join(REPO, 'docs', 'bad_inputs.md')
DEMO = 'msmlp-nano_1xb64-40e_digits.py'
MS_TINY = dict(embed_dims=20, depths=[1, 1, 1, 1])
POS_TINY = dict(embed_dims=16, depths=[1, 1, 1, 1], gammas=[2, 2, 2, 2])
STRIP_TINY = dict(embed_dims=16, depths=[1, 1, 1, 1])
SWIN_TINY = dict(embed_dims=20, depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 4])


def _tool(name, relpath):
    return load_tool(osp.join(REPO, relpath), name)


class Ctx:
    """Files the cases need, under one temporary directory."""

    def __init__(self, root: str):
        self.root = root
        self.digits = osp.join(root, 'digits')  # the layout the demo config reads (annotation files only)
        os.makedirs(osp.join(self.digits, 'meta'), exist_ok=True)
        for split in ('train', 'val'):
            open(osp.join(self.digits, 'meta', f'{split}.txt'), 'w').close()

    def path(self, name: str) -> str:
        return osp.join(self.root, name)

    def save(self, name: str, obj) -> str:
        torch.save(obj, self.path(name))
        return self.path(name)

    def data_options(self, root: Optional[str] = None) -> List[str]:
        root = root or self.digits
        return [f'train_dataloader.dataset.data_root={root}', f'val_dataloader.dataset.data_root={root}']

    def train(self, *argv):
        return _tool('mmmixer_tools_train', 'tools/train.py').main([config_path(DEMO), *argv])

    def run_test_tool(self, *argv):
        return _tool('mmmixer_tools_test', 'tools/test.py').main([config_path(DEMO), *argv])

    def convert(self, family: str, src: str):
        tool = _tool(f'mmmixer_tools_{family}', f'tools/model_converters/{family}_to_mmmixer.py')
        return tool.main([src, self.path('out.pth')])


def _t(*shape):
    return torch.zeros(*shape)


def _forward(model, x):
    model.eval()
    with torch.no_grad():
        return model(x)


def _truncated(ctx):
    path = ctx.save('full.pth', {'model': {'w': torch.randn(1000)}})
    data = open(path, 'rb').read()
    with open(ctx.path('truncated.pth'), 'wb') as f:
        f.write(data[:len(data) // 2])
    return ctx.path('truncated.pth')


def _swap_downstream(ctx):
    """A downstream config file of our own (a digits classifier), so no downstream codebase config is loaded."""
    return config_path(DEMO)


def _wrong_width_config(ctx):
    path = ctx.path('wrong_width.py')
    with open(path, 'w') as f:
        f.write("_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'\n"
                "custom_imports = dict(imports=['mmmixer.models'], allow_failed_imports=False)\n"
                f"model = dict(backbone=dict(_delete_=True, type='mmmixer.MSMLP', arch={MS_TINY!r}, "
                "out_indices=(1, 2, 3)), neck=dict(in_channels=[40, 128, 160], start_level=0))\n")
    return path


class _OpenPayload:
    """Unpickling this would call open() (stands for arbitrary code)."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, 'w'))


def _ckpt():
    return checkpoint_lib


def _scripted(ctx):
    """A TorchScript archive (torch.load would pass it to torch.jit.load)."""
    path = ctx.path('scripted.pt')
    torch.jit.save(torch.jit.script(torch.nn.ReLU()), path)
    return path


def _crafted(ctx, name, pkl: bytes, records=None):
    """A zip laid out like torch.save's (``archive/data.pkl``, ``version``, ``byteorder``) around ``pkl``."""
    import zipfile
    with zipfile.ZipFile(ctx.path(name), 'w') as zf:
        for record, data in {'data.pkl': pkl, 'byteorder': 'little', **(records or {}), 'version': '3\n'}.items():
            zf.writestr(f'archive/{record}', data)
    return ctx.path(name)


def _global(module, name):  # pickle GLOBAL opcode
    return b'c' + f'{module}\n{name}\n'.encode()


def _str(text):  # pickle BINUNICODE opcode
    return b'X' + len(text).to_bytes(4, 'little') + text.encode()


def _legacy(ctx):
    """A checkpoint in the legacy (non-zip) format of torch < 1.6."""
    torch.save({'model': {'w': _t(2)}}, ctx.path('legacy.pth'), _use_new_zipfile_serialization=False)
    return ctx.path('legacy.pth')


def _with_env(run, **env):
    """``run()`` with environment variables set (restored afterwards)."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return run()
    finally:
        for key, value in saved.items():
            os.environ.pop(key) if value is None else os.environ.__setitem__(key, value)


# The crafted pickles (protocol 2) below are {key: value} dicts: PROTO '}' <key> <value> SETITEM STOP.
# BUILD on torch._utils._rebuild_tensor_v2 with (None, {'__name__': 'x'}) as state: would rename torch's function
_BUILD_ON_TORCH_FUNCTION = (b'\x80\x02}' + _str('f') + _global('torch._utils', '_rebuild_tensor_v2') + b'N}'
                            + _str('__name__') + _str('x') + b's\x86bs.')
# functools.partial(open, 'pwned', 'w')() : a call of what a REDUCE returned
_CALL_OF_GADGET = (b'\x80\x02}' + _str('x') + _global('functools', 'partial') + b'(' + _global('builtins', 'open')
                   + _str('pwned') + _str('w') + b'tR)Rs.')
# _rebuild_tensor_v2(('storage', FloatStorage, '0', 'cpu', 8), 0, (8,), (1,), False, OrderedDict()): 8 floats
_SHORT_STORAGE = (b'\x80\x02}' + _str('w') + _global('torch._utils', '_rebuild_tensor_v2') + b'((' + _str('storage')
                  + _global('torch', 'FloatStorage') + _str('0') + _str('cpu') + b'K\x08tQK\x00K\x08\x85K\x01\x85\x89'
                  + _global('collections', 'OrderedDict') + b')RtRs.')


def _absurd_size(ctx):
    """data.pkl whose zip directory entry claims 4 GB."""
    import struct
    path = _crafted(ctx, 'absurd.pth', b'\x80\x02}.')
    data = bytearray(open(path, 'rb').read())
    pos = data.find(b'PK\x01\x02')  # central directory entry of the first record (data.pkl)
    struct.pack_into('<II', data, pos + 20, 2**32 - 2, 2**32 - 2)
    open(path, 'wb').write(bytes(data))
    return path


def _zip_version(ctx):
    """A zip whose directory entry of data.pkl says it needs zip version 19.5 to extract (zipfile reads up to 6.3)."""
    import struct
    path = _crafted(ctx, 'version.pth', b'\x80\x02}.')
    data = bytearray(open(path, 'rb').read())
    struct.pack_into('<H', data, data.find(b'PK\x01\x02') + 6, 195)  # "version needed to extract"
    open(path, 'wb').write(bytes(data))
    return path


def _wrong_arch_load_from(ctx):
    from mmengine.runner.checkpoint import load_checkpoint
    other = MSMLP(arch=dict(embed_dims=40, depths=[1, 1, 1, 1]))
    path = ctx.save('msmlp-wide.pth', {'state_dict': {f'backbone.{k}': v for k, v in other.state_dict().items()}})
    model = torch.nn.Module()
    model.backbone = MSMLP(arch=MS_TINY)
    load_checkpoint(model, path, map_location='cpu', strict=False)


@dataclass
class Case:
    """One bad input: ``run(ctx)`` must raise ``exc`` with a message containing every string of ``names``
    (the argument, the value, what is accepted)."""
    id: str
    component: str
    bad_input: str
    run: Callable[[Ctx], object]
    exc: type
    names: Tuple[str, ...]
    cpu_only: bool = False  # the check exists only on machines without CUDA


CASES = [
    # ----- backbones: arguments
    Case('arch-unknown', 'MSMLP', "`arch='huge'`", lambda c: MSMLP(arch='huge'), ValueError,
         ('arch', "'huge'", "accepted: ['b', 'base', 's', 'small', 't', 'tiny']")),
    Case('arch-missing-keys', 'PosMLP', "`arch=dict(embed_dims=32)` (no depths)",
         lambda c: PosMLP(arch=dict(embed_dims=32)), ValueError,
         ('custom arch dict', "missing ['depths']", "got arch={'embed_dims': 32}", "needs the keys ['depths', "
          "'embed_dims']")),
    Case('arch-unknown-key', 'SwinMSMLP', "`arch=dict(..., heads=[...])` (misspelled num_heads)",
         lambda c: SwinMSMLP(arch=dict(embed_dims=96, depths=[2, 2, 6, 2], heads=[3, 6, 12, 24])), ValueError,
         ("unknown ['heads']", "missing ['num_heads']", 'needs the keys')),
    Case('arch-type', 'StripMLP', '`arch=96`', lambda c: StripMLP(arch=96), TypeError,
         ('arch', '96 (int)', 'a preset name (str) or a dict')),
    Case('arch-empty-depths', 'MSMLP', '`arch=dict(embed_dims=32, depths=[])`',
         lambda c: MSMLP(arch=dict(embed_dims=32, depths=[])), ValueError,
         ('arch depths=[]', 'accepted: a non-empty list')),
    Case('arch-zero-width', 'MSMLP', '`arch=dict(embed_dims=0, depths=[1, 1, 1, 1])`',
         lambda c: MSMLP(arch=dict(embed_dims=0, depths=[1, 1, 1, 1])), ValueError,
         ('arch embed_dims=0', 'accepted: a positive int')),
    Case('out-indices-range', 'StripMLP', '`out_indices=(0, 4)` (4 stages)',
         lambda c: StripMLP(arch=STRIP_TINY, img_size=64, out_indices=(0, 4)), ValueError,
         ('out_indices entry 4', 'accepted: 0..3 or -4..-1')),
    Case('return-tuple-several', 'MSMLP', '`return_tuple=False, out_indices=(1, 3)`',
         lambda c: MSMLP(arch=MS_TINY, return_tuple=False, out_indices=(1, 3)), ValueError,
         ('return_tuple=False returns one tensor', 'got (1, 3)', 'accepted: return_tuple=True')),
    Case('out-indices-empty', 'SwinMSMLP', '`out_indices=[]`',
         lambda c: SwinMSMLP(arch=SWIN_TINY, out_indices=[]), ValueError,
         ('out_indices must not be empty', 'got []', 'accepted: stage indices 0..3')),
    Case('out-indices-duplicate', 'MSMLP', '`out_indices=(1, -3)` (the same stage twice)',
         lambda c: MSMLP(arch=MS_TINY, out_indices=(1, -3)), ValueError,
         ('out_indices [1, -3]', 'name a stage twice', 'accepted: distinct stages')),
    Case('frozen-stages-high', 'PosMLP', '`frozen_stages=5` (4 stages)',
         lambda c: PosMLP(arch=POS_TINY, frozen_stages=5), ValueError,
         ('frozen_stages', 'got 5', 'must be in [-1, 4]')),
    Case('frozen-stages-low', 'StripMLP', '`frozen_stages=-2`',
         lambda c: StripMLP(arch=STRIP_TINY, img_size=64, frozen_stages=-2), ValueError,
         ('frozen_stages', 'got -2', 'must be in [-1, 4]')),
    Case('pretrained-other-zoo', 'PosMLP', "`pretrained='open-mmlab://resnet50_v1c'` (left in a swapped config)",
         lambda c: PosMLP(arch=POS_TINY, pretrained='open-mmlab://resnet50_v1c'), ValueError,
         ("pretrained='open-mmlab://resnet50_v1c'", 'another architecture', 'set model.pretrained=None')),
    Case('groups-not-dividing', 'MSMLP', '`arch=dict(embed_dims=6, ...)`: 6 channels in 5 shift groups',
         lambda c: MSMLP(arch=dict(embed_dims=6, depths=[1, 1, 1, 1])), ValueError,
         ('embed_dims=6', 'shift_dist', 'Cannot split 6 channels into 5', 'channels >= 20 or a multiple of 5')),
    Case('mix-size-even', 'MSMLP', '`mix_size` with an even kernel (6)',
         lambda c: MSMLP(arch=MS_TINY, mix_size=[[1, 1, 3, 5, 6]] * 4), ValueError,
         ('MixShiftBlock: mix_size', '[1, 1, 3, 5, 6]', 'odd kernel sizes >= 1')),
    Case('mix-size-rows', 'MSMLP', '`mix_size` with 1 row for 4 stages',
         lambda c: MSMLP(arch=MS_TINY, mix_size=[[1, 1, 3, 5, 7]]), ValueError,
         ('mix_size', '1 rows', 'one row per stage (4)')),
    Case('shift-mode', 'MSMLP', "`shift_mode='reflect'`", lambda c: MSMLP(arch=MS_TINY, shift_mode='reflect'),
         ValueError, ('shift_mode', "'reflect'", "('circular', 'zero')")),
    Case('gamma-not-dividing', 'PosMLP', '`gammas=[48, ...]` for a 64-channel gated half',
         lambda c: PosMLP(arch=dict(embed_dims=32, depths=[1, 1, 2, 1], gammas=[48, 16, 32, 64])), ValueError,
         ('gamma=48', 'gated half (64)', 'divisible', 'accepted: arch gammas / mlp_ratios')),
    Case('window-size-zero', 'PosMLP', '`window_size=0`', lambda c: PosMLP(arch=POS_TINY, window_size=0),
         ValueError, ('window_size', 'got 0', 'a positive int or one positive int per stage')),
    Case('pos-type', 'PosMLP', "`pos_type='rope'`", lambda c: PosMLP(arch=POS_TINY, pos_type='rope'), ValueError,
         ('pos_type', "'rope'", "('gqpe', 'lrpe')")),
    Case('stem-norm-ln', 'PosMLP', "`stem_norm_cfg=dict(type='LN')`",
         lambda c: PosMLP(arch=POS_TINY, stem_norm_cfg=dict(type='LN')), ValueError,
         ('stem_norm_cfg', "'LN'", "use 'BN' (official), 'SyncBN' or 'GN'")),
    Case('channel-patches', 'StripMLP', '`channel_patches=3` (16-channel stage -> 8 CGSMM channels)',
         lambda c: StripMLP(arch=STRIP_TINY, img_size=64, channel_patches=3), ValueError,
         ('channel_patches=3', '8.0 channels', 'accepted: even stage channels whose half is divisible')),
    Case('img-size', 'StripMLP', '`img_size=100` (not a multiple of the total stride 32)',
         lambda c: StripMLP(arch=STRIP_TINY, img_size=100), ValueError,
         ('img_size 100', 'multiple of 32')),
    Case('drop-path-mode', 'StripMLP', "`drop_path_mode='cosine'`",
         lambda c: StripMLP(arch=STRIP_TINY, img_size=64, drop_path_mode='cosine'), ValueError,
         ('drop_path_mode', "'cosine'", "('uniform', 'linear')")),
    Case('heads-not-dividing', 'SwinMSMLP', '`num_heads=[3, 3, 3, 3]` for 20-channel stage 0',
         lambda c: SwinMSMLP(arch=dict(embed_dims=20, depths=[2, 2, 2, 2], num_heads=[3, 3, 3, 3])), ValueError,
         ('num_heads [3, 3, 3, 3]', '20 channels', 'accepted: a divisor of each stage width')),
    Case('swin-window-zero', 'SwinMSMLP', '`window_size=0`', lambda c: SwinMSMLP(arch=SWIN_TINY, window_size=0),
         ValueError, ('window_size', 'got 0', 'a positive int')),
    Case('pattern-name', 'SwinMSMLP', "`block_pattern='shifted'`",
         lambda c: SwinMSMLP(arch=SWIN_TINY, block_pattern='shifted'), ValueError,
         ('block_pattern', "'shifted'", "accepted: ['ms_all', 'ms_early', 'ms_shift', 'swin']")),
    Case('pattern-letter', 'SwinMSMLP', "`block_pattern=['WX', 'WM', 'WM', 'WM']`",
         lambda c: SwinMSMLP(arch=SWIN_TINY, block_pattern=['WX', 'WM', 'WM', 'WM']), ValueError,
         ('block_pattern stage 0', "'WX'", "unknown letters ['X']", "accepted: 'W'")),
    Case('ms-cfg-key', 'SwinMSMLP', '`ms_cfg=dict(kernel=3)`', lambda c: SwinMSMLP(arch=SWIN_TINY, ms_cfg=dict(kernel=3)),
         ValueError, ('ms_cfg', "['kernel']", "accepted: ['act_cfg'")),
    # ----- backbones: forward
    Case('input-channels', 'MSMLP', '1-channel input `(1, 1, 64, 64)` to an RGB backbone',
         lambda c: _forward(MSMLP(arch=MS_TINY), _t(1, 1, 64, 64)), ValueError,
         ('input has 1 channels', 'in_channels=3', 'accepted: (B, 3, H, W)')),
    Case('input-3d', 'PosMLP', '3-D input `(3, 64, 64)` (no batch dimension)',
         lambda c: _forward(PosMLP(arch=POS_TINY, window_size=4), _t(3, 64, 64)), ValueError,
         ('input must be 4-D (B, C, H, W)', 'got shape (3, 64, 64)')),
    Case('input-too-small', 'StripMLP', 'input `16x16`, below the total stride 32',
         lambda c: _forward(StripMLP(arch=STRIP_TINY, img_size=64), _t(1, 3, 16, 16)), ValueError,
         ('input size 16x16', 'total stride 32', 'accepted: H, W >= 32')),
    Case('input-too-small-swin', 'SwinMSMLP', 'input `64x64` with `pad_small_map=False` (stage-2 map 4x4 < window 7)',
         lambda c: _forward(SwinMSMLP(arch=SWIN_TINY, pad_small_map=False), _t(1, 3, 64, 64)), ValueError,
         ('stage 2 map 4x4', 'window_size 7', 'set pad_small_map=True')),
    Case('input-int-dtype', 'StripMLP', 'uint8 image tensor (not normalised)',
         lambda c: _forward(StripMLP(arch=STRIP_TINY, img_size=64), torch.zeros(1, 3, 64, 64, dtype=torch.uint8)),
         TypeError, ('input dtype torch.uint8', 'accepted: float32 / float16 / bfloat16')),
    Case('input-not-tensor', 'MSMLP', 'a list of images instead of a batch tensor',
         lambda c: _forward(MSMLP(arch=MS_TINY), [_t(3, 64, 64)]), TypeError,
         ('input must be a torch.Tensor (B, C, H, W)', 'got list')),
    # ----- checkpoints and converters
    Case('load-from-wrong-arch', 'load_from / Pretrained', 'checkpoint of a wider MS-MLP (embed_dims 40 vs 20)',
         _wrong_arch_load_from, CheckpointLoadError,
         ('msmlp-wide.pth', 'does not fit MSMLP(embed_dims=[20, 40, 80, 160]',
          'patch_embed.projection.weight: checkpoint (40, 3, 4, 4) vs model (20, 3, 4, 4)', 'Use a checkpoint of this arch')),
    Case('checkpoint-truncated', 'safe loader', 'a truncated `.pth` file',
         lambda c: _ckpt().safe_torch_load(_truncated(c)),
         CheckpointLoadError, ('truncated.pth', 'not a readable torch checkpoint', 'truncated or corrupt file')),
    Case('checkpoint-code', 'safe loader', 'a `.pth` whose pickle would call `open()`',
         lambda c: _ckpt().safe_torch_load(
             c.save('evil.pth', {'meta': _OpenPayload(c.path('pwned'))})), CheckpointLoadError,
         ('evil.pth', 'global io.open', 'MMMIXER_TRUST_CHECKPOINTS=1', '--trust-checkpoint')),
    Case('checkpoint-torchscript', 'safe loader', 'a TorchScript archive (`torch.jit.save`)',
         lambda c: _ckpt().safe_torch_load(_scripted(c)), CheckpointLoadError,
         ('scripted.pt', 'TorchScript archive', 'torch.jit.load', 'MMMIXER_TRUST_CHECKPOINTS=1')),
    Case('checkpoint-force-weights-only', 'safe loader',
         '`MMMIXER_TRUST_CHECKPOINTS=1` with torch\'s `TORCH_FORCE_WEIGHTS_ONLY_LOAD=1`',
         lambda c: _with_env(lambda: _ckpt().safe_torch_load(c.save('evil.pth', {'x': _OpenPayload(c.path('pwned'))})),
                             MMMIXER_TRUST_CHECKPOINTS='1', TORCH_FORCE_WEIGHTS_ONLY_LOAD='1'), CheckpointLoadError,
         ('evil.pth', 'although MMMIXER_TRUST_CHECKPOINTS=1', 'TORCH_FORCE_WEIGHTS_ONLY_LOAD=1', 'Unset')),
    Case('foreign-torchscript', 'load_foreign_checkpoint', 'a TorchScript archive (`torch.jit.save`)',
         lambda c: _ckpt().load_foreign_checkpoint(_scripted(c)), CheckpointLoadError,
         ('scripted.pt', 'TorchScript archive', 'constants.pkl', 'MMMIXER_TRUST_CHECKPOINTS=1')),
    Case('foreign-other-zip', 'load_foreign_checkpoint', 'a torch-style zip with a second pickle `extra/x.pkl`',
         lambda c: _ckpt().load_foreign_checkpoint(_crafted(c, 'extra.pth', b'\x80\x02}.', {'extra/x.pkl': b'.'})),
         CheckpointLoadError,
         ('extra.pth', 'not a torch.save checkpoint', 'extra/x.pkl', 'MMMIXER_TRUST_CHECKPOINTS=1')),
    Case('foreign-legacy', 'load_foreign_checkpoint', 'a file in the legacy (non-zip, torch < 1.6) format',
         lambda c: _ckpt().load_foreign_checkpoint(_legacy(c)), CheckpointLoadError,
         ('legacy.pth', 'legacy (non-zip) format', 'does not read', 'MMMIXER_TRUST_CHECKPOINTS=1')),
    Case('foreign-build-on-global', 'load_foreign_checkpoint',
         'a pickle whose `BUILD` sets `__name__` of `torch._utils._rebuild_tensor_v2`',
         lambda c: _ckpt().load_foreign_checkpoint(_crafted(c, 'build.pth', _BUILD_ON_TORCH_FUNCTION)),
         CheckpointLoadError, ('build.pth', 'BUILD', 'torch._utils._rebuild_tensor_v2', 'crafted or corrupt')),
    Case('foreign-call-gadget', 'load_foreign_checkpoint', 'a pickle that calls `functools.partial(open, ...)()`',
         lambda c: _ckpt().load_foreign_checkpoint(_crafted(c, 'gadget.pth', _CALL_OF_GADGET)),
         CheckpointLoadError, ('gadget.pth', 'REDUCE of <inert functools.partial>', 'may be called')),
    Case('foreign-short-storage', 'load_foreign_checkpoint', 'a tensor of 8 floats whose storage record holds 4',
         lambda c: _ckpt().load_foreign_checkpoint(_crafted(c, 'short.pth', _SHORT_STORAGE,
                                                            {'data/0': b'\0' * 16})),
         CheckpointLoadError, ('short.pth', 'not a readable torch checkpoint', 'record size (16 bytes)',
                               'expected size (32 bytes')),
    Case('foreign-absurd-size', 'load_foreign_checkpoint', 'a zip whose directory gives `data.pkl` 4 GB',
         lambda c: _ckpt().load_foreign_checkpoint(_absurd_size(c)), CheckpointLoadError,
         ('absurd.pth', 'not a readable torch checkpoint', 'claims 4294967294 bytes')),
    Case('foreign-zip-version', 'load_foreign_checkpoint', 'a zip whose directory says a record needs zip version 19.5',
         lambda c: _ckpt().load_foreign_checkpoint(_zip_version(c)), CheckpointLoadError,
         ('version.pth', 'not a readable torch checkpoint', 'NotImplementedError: zip file version 19.5',
          'Download or copy it again')),
    Case('convert-other-family', 'msmlp_to_mmmixer.py', 'a PosMLP checkpoint (`levels.*` keys) under `model`',
         lambda c: c.convert('msmlp', c.save('posmlp.pth', {'model': {'patch_embed.projs.0.weight': _t(2),
                                                                      'levels.0.encoder.0.norm.weight': _t(2)}})),
         SystemExit, ('posmlp.pth', 'Not an official MS-MLP checkpoint', 'expected keys "patch_embed.proj.weight" '
                      'and "layers.*"', "found e.g. ['levels.0.encoder.0.norm.weight'")),
    Case('convert-mixed-keys', 'msmlp_to_mmmixer.py', 'MS-MLP keys plus keys of another model',
         lambda c: c.convert('msmlp', c.save('mixed.pth', {'model': {
             'patch_embed.proj.weight': _t(4, 3, 4, 4), 'layers.0.blocks.0.gamma': _t(4),
             'blocks1.0.token_mixing.smlp_block.fuse.weight': _t(2)}})), SystemExit,
         ('mixed.pth', "1 keys of the checkpoint are not part of an official MS-MLP model",
          "['blocks1.0.token_mixing.smlp_block.fuse.weight']", "another family's checkpoint")),
    Case('convert-posmlp-other', 'posmlp_to_mmmixer.py', 'a Strip-MLP checkpoint under `state_dict_ema`',
         lambda c: c.convert('posmlp', c.save('strip.pth', {'state_dict_ema': {
             'patch_embed.weight': _t(2), 'blocks1.0.token_mixing.smlp_block.proj_h.weight': _t(2)}})), SystemExit,
         ('strip.pth', 'Not an official PosMLP checkpoint', 'expected keys "patch_embed.projs.0.weight" and '
          '"levels.*"')),
    Case('convert-stripmlp-other', 'stripmlp_to_mmmixer.py', 'an MS-MLP checkpoint',
         lambda c: c.convert('stripmlp', c.save('ms.pth', {'model': {'patch_embed.proj.weight': _t(2),
                                                                    'layers.0.blocks.0.gamma': _t(2)}})),
         SystemExit, ('ms.pth', 'Not an official Strip-MLP checkpoint', 'expected keys "patch_embed.weight" and '
                      '"blocks1.0.token_mixing.smlp_block.proj_h.weight"')),
    Case('convert-no-weights-key', 'posmlp_to_mmmixer.py', 'a checkpoint without `state_dict_ema`',
         lambda c: c.convert('posmlp', c.save('noema.pth', {'model': {'w': _t(1)}})), SystemExit,
         ('noema.pth', "no 'state_dict_ema' entry", "top-level keys: ['model']", '--use-non-ema')),
    Case('convert-missing-src', 'stripmlp_to_mmmixer.py', 'SRC that does not exist',
         lambda c: c.convert('stripmlp', c.path('missing.pth')), SystemExit,
         ("SRC '", "missing.pth' does not exist", 'accepted: an official Strip-MLP checkpoint file')),
    Case('convert-truncated-src', 'msmlp_to_mmmixer.py', 'a truncated SRC', lambda c: c.convert('msmlp', _truncated(c)),
         SystemExit, ('SRC', 'truncated.pth', 'not a readable torch checkpoint',
                      'Accepted: an official MS-MLP checkpoint file')),
    # ----- tools
    Case('config-misspelled-backbone', 'tools/train.py', "config with `model.backbone.type='mmmixer.MSMPL'`",
         lambda c: c.train('--cfg-options', 'model.backbone.type=mmmixer.MSMPL', *c.data_options()), SystemExit,
         ("model.backbone.type='mmmixer.MSMPL'", 'is not a registered model', "did you mean ['mmmixer.MSMLP'",
          "'mmmixer.PosMLP'")),
    Case('missing-data-root', 'tools/train.py', 'config whose `data_root` does not exist',
         lambda c: c.train('--cfg-options', *c.data_options(c.path('nowhere/digits'))), SystemExit,
         ("train_dataloader.dataset.data_root='", "nowhere/digits' is not an existing directory",
          'accepted: the directory that holds the dataset', 'digits_to_imagenet.py')),
    Case('missing-ann-file', 'tools/train.py', '`data_root` without its annotation file',
         lambda c: c.train('--cfg-options', *c.data_options(c.root)), SystemExit,
         ("train_dataloader.dataset.ann_file='meta/train.txt' does not exist", 'accepted: an annotation file')),
    Case('resume-missing', 'tools/train.py', '`--resume` of a file that does not exist',
         lambda c: c.train('--resume', c.path('epoch_9.pth'), '--cfg-options', *c.data_options()), SystemExit,
         ('--resume', "epoch_9.pth' is not an existing file", 'accepted: a checkpoint written by tools/train.py')),
    Case('launcher-without-torchrun', 'tools/train.py', '`--launcher pytorch` run as a plain process',
         lambda c: c.train('--launcher', 'pytorch', '--cfg-options', *c.data_options()), SystemExit,
         ('--launcher pytorch', "missing ['RANK', 'WORLD_SIZE'", 'Accepted: --launcher none', 'torchrun')),
    Case('sync-bn-on-cpu', 'tools/train.py', "`--launcher pytorch` with `sync_bn='torch'` on a machine without GPUs",
         lambda c: c.train('--launcher', 'pytorch', '--cfg-options', 'sync_bn=torch', *c.data_options()), SystemExit,
         ("sync_bn='torch'", 'SyncBN needs GPUs', 'accepted on CPU: BN / GN / LN norm configs without sync_bn'),
         cpu_only=True),
    Case('test-missing-checkpoint', 'tools/test.py', 'CHECKPOINT that does not exist',
         lambda c: c.run_test_tool(c.path('best.pth')), SystemExit,
         ('CHECKPOINT', "best.pth' is not an existing file", 'accepted: a checkpoint written by tools/train.py',
          '"none"')),
    Case('test-out-suffix', 'tools/test.py', '`--out results.json`',
         lambda c: c.run_test_tool('none', '--out', 'results.json'), SystemExit,
         ("--out 'results.json'", 'must name a .pkl or .pickle file')),
    Case('swap-unknown-preset', 'swap_backbone', "BACKBONE `'resnet-tiny'`",
         lambda c: swap_backbone(_swap_downstream(c), 'resnet-tiny'), SwapError,
         ("backbone 'resnet-tiny'", 'accepted: a preset <family>-<size>', 'msmlp-tiny')),
    Case('swap-unknown-size', 'swap_backbone', "BACKBONE `'msmlp-huge'`",
         lambda c: swap_backbone(_swap_downstream(c), 'msmlp-huge'), SwapError,
         ("arch 'huge' is unknown", "accepted: ['b', 'base'")),
    Case('swap-missing-downstream', 'swap_backbone', 'DOWNSTREAM file that does not exist',
         lambda c: swap_backbone(c.path('my_detector.py'), 'msmlp-tiny'), SwapError,
         ("my_detector.py' does not exist", "'pkg::rel/path.py'")),
    Case('swap-wrong-width', 'verify_swap', 'hand-written RetinaNet config with `neck.in_channels[1]=128` for an 80-channel stage',
         lambda c: verify_swap(_wrong_width_config(c), input_size=(64, 64), log=lambda line: None), SwapError,
         ('neck.in_channels[1] = 128', 'output 1, stage 2) has 80 channels', 'set neck.in_channels[1] = 80')),
    Case('digits-size', 'digits_to_imagenet.py', '`--size 4` (the scans are 8x8)',
         lambda c: _tool('mmmixer_tools_digits', 'tools/dataset_converters/digits_to_imagenet.py').main(
             [c.path('d'), '--size', '4']), ValueError, ('size must be >= 8', 'got 4')),
]


def _message(err: BaseException) -> str:
    return str(err.code if isinstance(err, SystemExit) else err)


def _normalize(text: str, ctx: Ctx) -> str:
    text = text.replace(ctx.root, '<tmp>').replace(REPO, '<repo>')
    return re.sub(r'\s+', ' ', text).strip()


def _md(text: str) -> str:
    return text.replace('|', '\\|')


@pytest.fixture
def ctx(tmp_path, monkeypatch):
    for var in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT', 'MMMIXER_TRUST_CHECKPOINTS'):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv('LOCAL_RANK', '0')  # tools set it when absent; restored after the test
    return Ctx(str(tmp_path))


def _raise(case: Case, ctx: Ctx) -> BaseException:
    if case.cpu_only and torch.cuda.is_available():
        pytest.skip(f'{case.id}: only checked without CUDA')
    with pytest.raises(case.exc) as info:
        case.run(ctx)
    return info.value


@pytest.mark.parametrize('case', CASES, ids=[c.id for c in CASES])
def test_bad_input_gives_one_clear_error(case, ctx):
    message = _message(_raise(case, ctx))
    assert '\n' not in message.strip(), 'one error, one paragraph'
    for needle in case.names:
        assert needle in message, f'{needle!r} not in {message!r}'


def test_at_least_25_cases_across_backbones_converters_and_tools():
    components = {c.component for c in CASES}
    assert len(CASES) >= 25 and len({c.id for c in CASES}) == len(CASES)
    assert {'MSMLP', 'PosMLP', 'StripMLP', 'SwinMSMLP', 'tools/train.py', 'tools/test.py'} <= components
    assert sum('to_mmmixer.py' in c for c in components) == 3


@pytest.mark.parametrize('family', ['MSMLP', 'PosMLP', 'StripMLP', 'SwinMSMLP'])
def test_nan_input_propagates_without_error(family):
    """Documented behaviour: no check of the values (that would cost a device sync per batch); a NaN pixel makes
    its own sample's features NaN; in train mode the BatchNorm families (PosMLP's stem, Strip-MLP) spread it to
    the whole batch through the batch statistics."""
    torch.manual_seed(0)
    model = dict(MSMLP=lambda: MSMLP(arch=MS_TINY), PosMLP=lambda: PosMLP(arch=POS_TINY, window_size=4),
                 StripMLP=lambda: StripMLP(arch=STRIP_TINY, img_size=64),
                 SwinMSMLP=lambda: SwinMSMLP(arch=SWIN_TINY))[family]()
    x = torch.randn(2, 3, 64, 64)
    x[0, 0, 5, 5] = math.nan
    with torch.no_grad():
        out = _forward(model, x)[-1]
        assert torch.isnan(out[0]).all() and not torch.isnan(out[1]).any()
        model.train()
        out = model(x)[-1]
    assert torch.isnan(out[0]).all()
    bn_family = family in ('PosMLP', 'StripMLP')
    assert torch.isnan(out[1]).all() == bn_family
    running = [m.running_mean for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert bool(running) == bn_family and all(torch.isnan(r).any() for r in running[:1])


def _table_rows(ctx: Ctx) -> List[str]:
    rows = []
    for i, case in enumerate(CASES, 1):
        message = _normalize(_message(_raise(case, ctx)), ctx)
        rows.append(f'| {i} | `{case.id}` | {case.component} | {_md(case.bad_input)} | `{case.exc.__name__}` | '
                    f'{_md(message)} |')
    return rows


def test_docs_table_shows_the_actual_messages(ctx):
    with open(DOC) as f:
        doc = f.read()
    for case, row in zip(CASES, _table_rows(ctx)):
        assert row in doc, f'docs/bad_inputs.md row of {case.id!r} is not the actual message; expected:\n{row}'


if __name__ == '__main__':  # print the table rows for docs/bad_inputs.md
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        context = Ctx(tmp)
        os.environ.setdefault('LOCAL_RANK', '0')
        for var in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
            os.environ.pop(var, None)
        print('\n'.join(_table_rows(context)))
