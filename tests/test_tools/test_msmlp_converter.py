"""Official MS-MLP weights -> mmmixer: golden logits, full key coverage, parameter counts."""
import json
import os.path as osp
import subprocess
import sys

import pytest
import torch

from helpers_mmmixer import (REPO, build_from_config, official_state_from_listing,
                             subprocess_env)

from mmmixer.models.backbones.ms_mlp import convert_official_msmlp

CONVERTER = osp.join(REPO, 'tools', 'model_converters', 'msmlp_to_mmmixer.py')


def test_golden_logits(golden, tmp_path):
    """Converted official checkpoint + our classifier (tiny config with the golden arch) = official logits."""
    with open(osp.join(golden, 'msmlp_small-random.json')) as f:
        meta = json.load(f)
    kwargs = meta['official_constructor_kwargs']
    dst = tmp_path / 'converted.pth'
    out = subprocess.run(
        [sys.executable, CONVERTER, osp.join(golden, 'msmlp_small-random.official.pth'), str(dst)],
        capture_output=True, text=True, check=True, env=subprocess_env()).stdout
    assert 'converted 155 tensors' in out
    def golden_arch(cfg):
        cfg.model.backbone.arch = dict(embed_dims=kwargs['embed_dim'], depths=kwargs['depths'])
        cfg.model.head.num_classes = kwargs['num_classes']
        cfg.model.head.in_channels = kwargs['embed_dim'] * 8

    model, _ = build_from_config('msmlp-tiny_8xb128_in1k.py', golden_arch)
    assert sum(p.numel() for p in model.parameters()) == meta['num_params']
    ckpt = torch.load(dst, weights_only=True)
    assert ckpt['meta']['arch'] == dict(embed_dims=32, depths=[1, 1, 2, 1])
    model.load_state_dict(ckpt['state_dict'], strict=True)
    io = torch.load(osp.join(golden, 'msmlp_small-random.io.pth'), weights_only=True)
    model.eval()
    with torch.no_grad():
        logits = model(io['input'], mode='tensor')
    diff = (logits - io['logits']).abs().max().item()
    print(f'msmlp golden max-abs-diff {diff:.3g}')
    assert diff <= 1e-4


@pytest.mark.parametrize('arch', ['tiny', 'small', 'base'])
def test_full_key_listing_maps_completely(golden, arch):
    official, listing = official_state_from_listing(osp.join(golden, f'msmlp_{arch}.keys.json'))
    converted = convert_official_msmlp(official)
    assert converted['arch']['depths'] == listing['official_constructor_kwargs']['depths']
    with torch.device('meta'):
        model, _ = build_from_config(f'msmlp-{arch}_8xb128_in1k.py')
    ours = model.state_dict()
    assert set(converted['state_dict']) == set(ours), (
        sorted(set(converted['state_dict']) ^ set(ours))[:10])
    for key, value in converted['state_dict'].items():
        assert value.shape == ours[key].shape, key
    # parameter count of our classifier == the official model's
    assert sum(p.numel() for p in model.parameters()) == listing['num_params']


@pytest.mark.parametrize('arch,expected', [('tiny', 28_656_232), ('small', 50_303_752),
                                           ('base', 88_696_792)])
def test_parameter_counts(arch, expected):
    with torch.device('meta'):
        model, _ = build_from_config(f'msmlp-{arch}_8xb128_in1k.py')
    assert sum(p.numel() for p in model.parameters()) == expected


def test_rejects_other_checkpoints(golden, tmp_path):
    # a PosMLP checkpoint (weights under 'state_dict_ema') is not an MS-MLP one
    result = subprocess.run(
        [sys.executable, CONVERTER, osp.join(golden, 'posmlp_small-gqpe-random.official.pth'),
         str(tmp_path / 'x.pth')], capture_output=True, text=True, env=subprocess_env())
    assert result.returncode != 0
    assert "has no 'model' entry" in result.stderr
    sd = {'patch_embed.proj.weight': torch.zeros(8, 3, 4, 4), 'layers.0.blocks.0.gamma': torch.zeros(8),
          'levels.0.encoder.0.norm.weight': torch.zeros(8)}
    with pytest.raises(ValueError, match=r"1 keys of the checkpoint are not part of an official MS-MLP.*"
                       r"levels\.0\.encoder"):
        convert_official_msmlp(sd)
    with pytest.raises(ValueError, match='Not an official MS-MLP checkpoint'):
        convert_official_msmlp({'stem.weight': torch.zeros(1)})
