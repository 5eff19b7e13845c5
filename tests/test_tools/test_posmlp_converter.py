"""Official PosMLP weights -> mmmixer: golden logits (GQPE and LRPE), full key coverage, EMA selection, counts."""
import importlib.util
import json
import os.path as osp
import subprocess
import sys

import pytest
import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from helpers_mmmixer import REPO, build_from_config, official_state_from_listing  # noqa: E402

from mmmixer.models.backbones.pos_mlp import convert_official_posmlp  # noqa: E402
from mmmixer.models.layers.positional_maps import LearnedPosMap, QuadraticPosMap  # noqa: E402

CONVERTER = osp.join(REPO, 'tools', 'model_converters', 'posmlp_to_mmmixer.py')


def run_converter_subprocess(*args, check=True):
    """The real command line (a fresh interpreter, as users run it)."""
    return subprocess.run([sys.executable, CONVERTER, *map(str, args)], capture_output=True, text=True,
                          check=check)


def run_converter(capsys, *args):
    """The same CLI's ``main()`` in this process (saves the ~5 s interpreter start per call); returns stdout."""
    spec = importlib.util.spec_from_file_location('posmlp_to_mmmixer', CONVERTER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    capsys.readouterr()
    module.main([str(a) for a in args])
    return capsys.readouterr().out


def build_golden_classifier(meta, converted_meta):
    """Our small config's ImageClassifier with the golden arch (what a user does after converting)."""
    kwargs = meta['official_constructor_kwargs']

    def golden_arch(cfg):
        cfg.model.backbone.update(
            arch=converted_meta['arch'], window_size=converted_meta['window_size'],
            pos_type=converted_meta['pos_type'], generalized=converted_meta['generalized'])
        cfg.model.head.num_classes = kwargs['num_classes']
        cfg.model.head.in_channels = kwargs['embed_dims'][-1]

    model, _ = build_from_config('posmlp-small_8xb128_in1k.py', golden_arch)
    return model


@pytest.mark.parametrize('pos_type,num_tensors', [('gqpe', 82), ('lrpe', 77)])
def test_golden_logits(golden, tmp_path, capsys, pos_type, num_tensors):
    """Converted official checkpoint + our classifier = official logits (input (2,3,112,112), windows 7,7,7,4).
    GQPE goes through the command line in a subprocess, LRPE through ``main()``."""
    name = f'posmlp_small-{pos_type}-random'
    with open(osp.join(golden, f'{name}.json')) as f:
        meta = json.load(f)
    kwargs = meta['official_constructor_kwargs']
    dst = tmp_path / 'converted.pth'
    src = osp.join(golden, f'{name}.official.pth')
    out = run_converter_subprocess(src, dst).stdout if pos_type == 'gqpe' else run_converter(capsys, src, dst)
    assert f'converted {num_tensors} tensors (state_dict_ema) of PosMLP ({pos_type})' in out
    ckpt = torch.load(dst, weights_only=True)
    assert ckpt['meta']['arch'] == dict(embed_dims=kwargs['embed_dims'], depths=kwargs['depths'],
                                        gammas=kwargs['gamma'], mlp_ratios=kwargs['mlp_ratio'])
    assert ckpt['meta']['window_size'] == kwargs['win_size'] == [7, 7, 7, 4]
    assert ckpt['meta']['pos_type'] == pos_type and ckpt['meta']['weights'] == 'state_dict_ema'
    model = build_golden_classifier(meta, ckpt['meta'])
    assert sum(p.numel() for p in model.parameters()) == meta['num_params']
    model.load_state_dict(ckpt['state_dict'], strict=True)
    io = torch.load(osp.join(golden, f'{name}.io.pth'), weights_only=True)
    model.eval()
    with torch.no_grad():
        logits = model(io['input'], mode='tensor')
    diff = (logits - io['logits']).abs().max().item()
    print(f'posmlp {pos_type} golden max-abs-diff {diff:.3g}')
    assert diff <= 1e-4


def test_stored_buffers_equal_recomputed(golden):
    """The buffers the converter drops are exactly what we recompute from the window (official sign conventions)."""
    gqpe = torch.load(osp.join(golden, 'posmlp_small-gqpe-random.official.pth'), weights_only=True)['state_dict_ema']
    lrpe = torch.load(osp.join(golden, 'posmlp_small-lrpe-random.official.pth'), weights_only=True)['state_dict_ema']
    for level, window in ((0, 7), (3, 4)):
        prefix = f'levels.{level}.encoder.0.gate_unit.pos.'
        assert torch.equal(QuadraticPosMap.relative_features(window).permute(1, 2, 0), gqpe[prefix + 'rel_indices'])
        assert torch.equal(LearnedPosMap.relative_index(window), lrpe[prefix + 'window_relative_position_index'])


@pytest.mark.parametrize('arch', ['tiny', 'small'])
def test_full_key_listing_maps_completely(golden, arch):
    official, listing = official_state_from_listing(osp.join(golden, f'posmlp_{arch}.keys.json'))
    kwargs = listing['official_constructor_kwargs']
    converted = convert_official_posmlp(official)
    assert converted['arch']['depths'] == list(kwargs['depths'])
    assert converted['window_size'] == [14, 14, 14, 7] and converted['pos_type'] == 'gqpe'
    assert converted['generalized'] is True
    with torch.device('meta'):
        model, _ = build_from_config(f'posmlp-{arch}_8xb128_in1k.py')
    ours = model.state_dict()
    assert set(converted['state_dict']) == set(ours), sorted(set(converted['state_dict']) ^ set(ours))[:10]
    for key, value in converted['state_dict'].items():
        assert value.shape == ours[key].shape, key
    # only the derived buffers are dropped: one rel_indices per block
    dropped = len(official) - len(converted['state_dict'])
    assert dropped == sum(k.endswith('.rel_indices') for k in official) == sum(kwargs['depths'])
    assert sum(p.numel() for p in model.parameters()) == listing['num_params']


@pytest.mark.parametrize('arch,expected', [('tiny', 20_925_538), ('small', 36_816_450), ('base', 81_976_834)])
def test_parameter_counts(arch, expected):
    """tiny/small: the official counts (GQPE, 1000 classes); base: our choice (~82M as the paper reports)."""
    with torch.device('meta'):
        model, _ = build_from_config(f'posmlp-{arch}_8xb128_in1k.py')
    assert sum(p.numel() for p in model.parameters()) == expected


def test_ema_is_default_and_use_non_ema(golden, tmp_path, capsys):
    sd = torch.load(osp.join(golden, 'posmlp_small-gqpe-random.official.pth'), weights_only=True)['state_dict_ema']
    raw = {k: v + 1 if v.is_floating_point() else v for k, v in sd.items()}
    src = tmp_path / 'timm_checkpoint.pth'
    torch.save({'state_dict': raw, 'state_dict_ema': sd, 'epoch': 299, 'version': 2}, src)
    run_converter(capsys, src, tmp_path / 'ema.pth')
    out = run_converter(capsys, src, tmp_path / 'raw.pth', '--use-non-ema')
    assert '(state_dict)' in out
    ema = torch.load(tmp_path / 'ema.pth', weights_only=True)
    non_ema = torch.load(tmp_path / 'raw.pth', weights_only=True)
    key = 'backbone.stages.0.blocks.0.pos_map.attention_centers'
    src_key = 'levels.0.encoder.0.gate_unit.pos.attention_centers'
    assert torch.equal(ema['state_dict'][key], sd[src_key])
    assert torch.equal(non_ema['state_dict'][key], raw[src_key])
    assert (ema['meta']['weights'], non_ema['meta']['weights']) == ('state_dict_ema', 'state_dict')


def test_rejects_other_checkpoints(golden, tmp_path, capsys):
    # an MS-MLP checkpoint (weights under 'model') is not a PosMLP one
    with pytest.raises(SystemExit, match="has no 'state_dict_ema' entry"):
        run_converter(capsys, osp.join(golden, 'msmlp_small-random.official.pth'), tmp_path / 'x.pth')
    assert not (tmp_path / 'x.pth').exists()
    sd = torch.load(osp.join(golden, 'posmlp_small-gqpe-random.official.pth'), weights_only=True)['state_dict_ema']
    with pytest.raises(ValueError, match=r"1 keys of the checkpoint are not part of a supported official PosMLP.*"
                       r"absolute_pos_embed"):
        convert_official_posmlp(dict(sd, absolute_pos_embed=torch.zeros(1, 3136, 96)))
    with pytest.raises(ValueError, match='Not an official PosMLP checkpoint'):
        convert_official_posmlp({'patch_embed.proj.weight': torch.zeros(1), 'layers.0.blocks.0.gamma': 1})
    # 'module.' prefixes (DataParallel) are stripped
    wrapped = convert_official_posmlp({f'module.{k}': v for k, v in sd.items()})
    assert set(wrapped['state_dict']) == set(convert_official_posmlp(sd)['state_dict'])


def test_converted_weights_load_at_another_window(golden, tmp_path, capsys):
    """Official window-7 weights load strictly into a window-14 classifier (tables resized on load)."""
    dst = tmp_path / 'converted.pth'
    run_converter(capsys, osp.join(golden, 'posmlp_small-lrpe-random.official.pth'), dst)
    ckpt = torch.load(dst, weights_only=True)
    with open(osp.join(golden, 'posmlp_small-lrpe-random.json')) as f:
        meta = json.load(f)
    model = build_golden_classifier(meta, dict(ckpt['meta'], window_size=[14, 14, 14, 7]))
    model.load_state_dict(ckpt['state_dict'], strict=True)
    pos = model.backbone.stages[0].blocks[0].pos_map
    assert pos.relative_position_bias_table.shape == (27 * 27, 8)
    with torch.no_grad():
        assert torch.isfinite(model.eval()(torch.rand(1, 3, 112, 112), mode='tensor')).all()
