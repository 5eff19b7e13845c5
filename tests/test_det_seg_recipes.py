"""The det/seg configs of every family carry the recipe of docs/papers.md, "Detection and segmentation recipes":
AdamW 1e-4 / wd 0.05 (detection), 6e-5 / wd 0.01 with 1500 warmup iterations and poly decay (segmentation), and no
weight decay on exactly the norms, the position tables / positional parameters and the layer scales of the backbone
(checked on the optimizer the config builds, parameter by parameter, on the meta device)."""
import glob
import os.path as osp
import re

import pytest
import torch
import torch.nn as nn
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from torch.nn.modules.batchnorm import _BatchNorm

from helpers_mmmixer import REPO, build_from_config

# parameters without weight decay besides norms, per family (backbone names, without 'backbone.')
NO_DECAY = {
    'msmlp': r'.*\.gamma',  # MS block layer scales
    'posmlp': r'.*\.pos_map\.(attention_centers|attention_spreads|token_proj_n_bias|relative_position_bias_table)',
    'stripmlp': r'.*\.cgsmm\.(row_pos|col_pos)',  # CGSMM relative position tables
    'swin_msmlp': r'.*(\.attn\.w_msa\.relative_position_bias_table|\.gamma)',  # Swin tables, MS layer scales
}
CONFIGS = sorted(osp.relpath(p, osp.join(REPO, 'configs'))
                 for p in glob.glob(osp.join(REPO, 'configs', '*', '*_coco.py'))
                 + glob.glob(osp.join(REPO, 'configs', '*', '*_ade20k-*.py')))
# the tiny configs hold each family's optimizer settings (the other sizes inherit them and change the backbone only)
TINY = [c for c in CONFIGS if re.search(r'-t_', osp.basename(c))]


def no_decay_names(name):
    with torch.device('meta'):
        model, cfg = build_from_config(name)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    names = {id(p): n for n, p in model.named_parameters()}
    groups = wrapper.optimizer.param_groups
    assert sum(len(g['params']) for g in groups) == len(names)
    return model, cfg, wrapper, {names[id(g['params'][0])] for g in groups if g['weight_decay'] == 0}


@pytest.mark.parametrize('path', TINY)
def test_weight_decay_rules(path):
    family, name = osp.split(path)
    model, cfg, wrapper, no_decay = no_decay_names(name)
    norm_types = (_BatchNorm, nn.LayerNorm, nn.GroupNorm)
    expected = set()
    for module_name, module in model.named_modules():
        for param_name, _ in module.named_parameters(recurse=False):
            full = f'{module_name}.{param_name}'
            if isinstance(module, norm_types) or (full.startswith('backbone.') and re.fullmatch(
                    NO_DECAY[family], full[len('backbone.'):])):
                expected.add(full)
    extra = {n for n in expected if n.startswith('backbone.') and re.fullmatch(NO_DECAY[family], n[9:])}
    assert extra, f'{NO_DECAY[family]} matches no parameter of {name}'
    assert no_decay == expected, (sorted(no_decay - expected)[:5], sorted(expected - no_decay)[:5])
    if family == 'stripmlp':  # GRN keeps its decay (as in the official ImageNet training)
        assert any('.grn.' in n for n, _ in model.named_parameters()) and not any('.grn.' in n for n in no_decay)

    optimizer = wrapper.optimizer
    assert type(optimizer).__name__ == 'AdamW' and optimizer.defaults['betas'] == (0.9, 0.999)
    if name.endswith('_coco.py'):
        assert (optimizer.defaults['lr'], optimizer.defaults['weight_decay']) == (1e-4, 0.05)
    else:
        assert (optimizer.defaults['lr'], optimizer.defaults['weight_decay']) == (6e-5, 0.01)
        warmup, poly = cfg.param_scheduler
        assert (warmup['type'], warmup['end'], poly['type'], poly['power']) == ('LinearLR', 1500, 'PolyLR', 1.0)
        assert cfg.train_cfg.max_iters == 160000 and cfg.train_dataloader.batch_size == 2


# drop path per size (docs/papers.md, "Detection and segmentation recipes": AS-MLP-T/S/B 0.2/0.2/0.3 detection,
# Swin/AS-MLP 0.3/0.3/0.5 segmentation); Strip-MLP-T* (light tiny) is our choice: 0.1 / 0.2
DROP_PATH = {'t': (0.2, 0.3), 's': (0.2, 0.3), 'b': (0.3, 0.5), 'lt': (0.1, 0.2)}


@pytest.mark.parametrize('path', CONFIGS)
def test_drop_path_and_dense_outputs(path):
    from mmengine.config import Config
    name = osp.basename(path)
    backbone = Config.fromfile(osp.join(REPO, 'configs', path)).model.backbone
    token, size = re.search(r'(?:^|_)([a-z-]+)-(t|s|b|lt)_(fpn|upernet)', name).group(1, 2)
    assert backbone.drop_path_rate == DROP_PATH[size][0 if name.endswith('_coco.py') else 1]
    assert backbone.gap_before_final_norm is False
    assert tuple(backbone.out_indices) == ((1, 2, 3) if name.startswith('retinanet_') else (0, 1, 2, 3))
    word = dict(t='tiny', s='small', b='base', lt='light-tiny')[size]
    # MS-MLP: the official release files (converted when loaded); the others: the file their converter writes
    checkpoint = (f'https://tsciencescu.blob.core.windows.net/projectshzheng/MSMLP/released_model/msmlp_{word}_patch4/'
                  f'msmlp_{word}_patch4_ckpt_epoch299.pth' if token == 'msmlp' else f'checkpoints/{token}-{word}_in1k.pth')
    assert backbone.init_cfg == dict(type='Pretrained', prefix='backbone.', checkpoint=checkpoint)
