"""SwinMSMLP (Swin + MS-MLP hybrid): API, shapes, parity with mmpretrain's SwinTransformer, Swin-checkpoint loader."""
import copy
import sys

import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from mmmixer.checkpoint import CheckpointLoadError
from mmmixer.models import MSMLP, SwinMSMLP
from mmmixer.checkpoint.swin import load_swin_pretrained
from mmmixer.models.backbones.swin_msmlp import NAMED_PATTERNS, TokenMixShiftBlock

pytest.importorskip('mmpretrain.models', reason='SwinMSMLP needs mmpretrain')
from mmpretrain.models import SwinTransformer  # noqa: E402
from mmpretrain.models.backbones.swin_transformer import SwinBlock  # noqa: E402

SMALL = dict(embed_dims=32, depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 8])
SWIN_ARCHS = {
    'tiny': (96, [2, 2, 6, 2], [3, 6, 12, 24]),
    'small': (96, [2, 2, 18, 2], [3, 6, 12, 24]),
    'base': (128, [2, 2, 18, 2], [4, 8, 16, 32]),
}


def _swin_on_meta(monkeypatch, **kwargs):
    """mmpretrain SwinTransformer on the meta device (its drop-path list calls .item(); keep linspace on CPU)."""
    linspace = torch.linspace
    monkeypatch.setattr(torch, 'linspace', lambda *a, **k: linspace(*a, **{**k, 'device': 'cpu'}))
    with torch.device('meta'):
        model = SwinTransformer(**kwargs)
    monkeypatch.setattr(torch, 'linspace', linspace)
    return model


def _random_swin(seed=0, **kwargs):
    """An mmpretrain SwinTransformer with random (non-default) values in every parameter."""
    torch.manual_seed(seed)
    swin = SwinTransformer(**kwargs)
    with torch.no_grad():
        for p in swin.parameters():
            p.normal_(0, 0.05)
    return swin


def _mmpretrain_checkpoint(swin):
    """mmpretrain classifier format: backbone.* keys, a head and meta."""
    state = {f'backbone.{k}': v.clone() for k, v in swin.state_dict().items()}
    state['head.fc.weight'] = torch.randn(10, swin.num_features[-1])
    state['head.fc.bias'] = torch.zeros(10)
    return {'meta': {'mmpretrain_version': '1.2.0'}, 'state_dict': state}


def _ms_keys(model):
    return {f'stages.{i}.blocks.{j}.{k}' for i, s in enumerate(model.stages) for j, b in enumerate(s.blocks)
            if isinstance(b, TokenMixShiftBlock) for k in b.state_dict()}


def test_arch_and_pattern_errors():
    with pytest.raises(ValueError, match=r"arch 'huge' is not a preset; accepted: \['b', 'base'"):
        SwinMSMLP(arch='huge')
    with pytest.raises(ValueError, match=r"needs the keys \['depths', 'embed_dims', 'num_heads'\].*"
                       r"missing \['num_heads'\]"):
        SwinMSMLP(arch=dict(embed_dims=32, depths=[2, 2, 2, 2]))
    with pytest.raises(ValueError, match=r'num_heads \[1, 2\] must give one entry per stage'):
        SwinMSMLP(arch=dict(embed_dims=32, depths=[2, 2, 2, 2], num_heads=[1, 2]))
    with pytest.raises(ValueError, match=r"block_pattern 'ms_late' is not a named pattern; accepted: "
                       r"\['ms_all', 'ms_early', 'ms_shift', 'swin'\]"):
        SwinMSMLP(arch=SMALL, block_pattern='ms_late')
    with pytest.raises(ValueError, match=r'has 3 stages, the arch has 4'):
        SwinMSMLP(arch=SMALL, block_pattern=['WM', 'WM', 'WM'])
    with pytest.raises(ValueError, match=r"stage 2 'WMW' has 3 blocks, the arch depth is 2"):
        SwinMSMLP(arch=SMALL, block_pattern=['WM', 'WM', 'WMW', 'WM'])
    with pytest.raises(ValueError, match=r"stage 1 'WX' has unknown letters \['X'\]"):
        SwinMSMLP(arch=SMALL, block_pattern=['WM', 'WX', 'WM', 'WM'])
    with pytest.raises(TypeError, match='block_pattern must be a pattern name or a sequence'):
        SwinMSMLP(arch=SMALL, block_pattern=3)
    with pytest.raises(ValueError, match=r"unknown ms_cfg keys \['mix'\]"):
        SwinMSMLP(arch=SMALL, ms_cfg=dict(mix=[1]))
    with pytest.raises(ValueError, match='mix_size needs one row per stage'):
        SwinMSMLP(arch=SMALL, ms_cfg=dict(mix_size=[[1, 1, 3, 5, 7]]))
    with pytest.raises(ValueError, match='shift_mode must be one of'):
        SwinMSMLP(arch=SMALL, ms_cfg=dict(shift_mode='reflect'))
    with pytest.raises(ValueError, match='out_indices entry 4 is out of range'):
        SwinMSMLP(arch=SMALL, out_indices=(0, 4))
    with pytest.raises(ValueError, match=r'frozen_stages must be in \[-1, 4\]'):
        SwinMSMLP(arch=SMALL, frozen_stages=5)
    model = SwinMSMLP(arch=SMALL)
    with pytest.raises(ValueError, match=r'input size 31x64 is smaller than the total stride 32'):
        model(torch.rand(1, 3, 31, 64))


def test_missing_mmpretrain_gives_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, 'mmpretrain.models.backbones.swin_transformer', None)
    with pytest.raises(ImportError, match='pip install mmpretrain'):
        SwinMSMLP(arch=SMALL)


@pytest.mark.parametrize('name,expected', [
    ('ms_shift', ['WM', 'WM', 'WMWMWM', 'WM']),
    ('swin', ['WS', 'WS', 'WSWSWS', 'WS']),
    ('ms_early', ['MM', 'MM', 'WSWSWS', 'WS']),
    ('ms_all', ['MM', 'MM', 'MMMMMM', 'MM']),
])
def test_named_patterns_build_the_right_blocks(name, expected):
    with torch.device('meta'):
        model = SwinMSMLP(arch='tiny', block_pattern=name)
    assert model.block_pattern == expected
    for i, (stage, pattern) in enumerate(zip(model.stages, expected)):
        for block, kind in zip(stage.blocks, pattern):
            if kind == 'M':
                assert type(block) is TokenMixShiftBlock
                assert block.mix_size == MSMLP.default_mix_size[i]
                assert block.embed_dims == 96 * 2**i
            else:
                assert type(block) is SwinBlock
                assert block.attn.shift_size == (3 if kind == 'S' else 0)
                assert block.attn.w_msa.num_heads == [3, 6, 12, 24][i]
        assert (stage.downsample is None) == (i == 3)
    assert SwinMSMLP.default_pattern == 'ms_shift' and set(NAMED_PATTERNS) >= {'swin', 'ms_shift', 'ms_early'}
    custom = SwinMSMLP(arch=SMALL, block_pattern=['ms', 'wm', 'MW', 'SW'])
    assert custom.block_pattern == ['MS', 'WM', 'MW', 'SW']


@pytest.mark.parametrize('arch', ['tiny', 'small', 'base'])
def test_all_attention_has_exactly_mmpretrain_swin_parameters(arch, monkeypatch):
    swin = _swin_on_meta(monkeypatch, arch=arch)
    with torch.device('meta'):
        hybrid = SwinMSMLP(arch=arch, block_pattern='swin')
    n_swin = sum(p.numel() for p in swin.parameters())
    assert sum(p.numel() for p in hybrid.parameters()) == n_swin
    # stronger: identical state-dict layout (names and shapes), so checkpoints load both ways
    assert {k: v.shape for k, v in hybrid.state_dict().items()} == {k: v.shape for k, v in swin.state_dict().items()}
    # measured backbone parameter counts (no head), quoted in configs/swin_msmlp/README.md
    expected = {'tiny': 27_519_354, 'small': 48_837_258, 'base': 86_743_224}[arch]
    assert n_swin == expected
    dims, depths, heads = SWIN_ARCHS[arch]
    assert (hybrid.embed_dims[0], hybrid.depths, hybrid.num_heads) == (dims, depths, heads)


def test_hybrid_parameter_counts():
    """Backbone parameters (no head) of the named patterns, as listed in the README."""
    expected = {
        ('tiny', 'ms_shift'): 23_315_885, ('tiny', 'ms_early'): 27_165_880, ('tiny', 'ms_all'): 19_112_416,
        ('small', 'ms_shift'): 41_190_677, ('base', 'ms_shift'): 73_057_516,
    }
    for (arch, pattern), n in expected.items():
        with torch.device('meta'):
            model = SwinMSMLP(arch=arch, block_pattern=pattern)
        assert sum(p.numel() for p in model.parameters()) == n, (arch, pattern)


@pytest.mark.parametrize('pattern', ['ms_shift', 'swin', 'ms_early'])
@pytest.mark.parametrize('size,expected', [((224, 224), [(56, 56), (28, 28), (14, 14), (7, 7)]),
                                           ((256, 320), [(64, 80), (32, 40), (16, 20), (8, 10)]),
                                           ((97, 131), [(25, 33), (13, 17), (7, 9), (4, 5)])])
def test_dense_shapes(pattern, size, expected):
    model = SwinMSMLP(arch=SMALL, block_pattern=pattern, out_indices=(0, 1, 2, 3)).eval()
    with torch.no_grad():
        outs = model(torch.rand(2, 3, *size))
    assert isinstance(outs, tuple) and len(outs) == 4
    for i, (out, hw) in enumerate(zip(outs, expected)):
        assert out.shape == (2, 32 * 2**i, *hw)
        assert torch.isfinite(out).all()


def test_pooled_output_and_out_indices():
    with pytest.raises(ValueError, match='gap_before_final_norm=True pools every returned stage'):
        SwinMSMLP(arch=SMALL, out_indices=(1, -1), gap_before_final_norm=True)
    model = SwinMSMLP(arch=SMALL, gap_before_final_norm=True).eval()
    x = torch.rand(2, 3, 97, 131)
    outs = model(x)
    assert [o.shape for o in outs] == [(2, 256)]
    assert hasattr(model, 'norm3') and not hasattr(model, 'norm0') and not hasattr(model, 'norm1')
    # pooled output == LayerNorm(mean over tokens) of the last stage
    tokens, hw = model.patch_embed(x)
    for stage in model.stages:
        tokens = stage(tokens, hw)
        if stage.downsample is not None:
            tokens, hw = stage.downsample(tokens, hw)
    torch.testing.assert_close(outs[0], model.norm3(tokens.mean(1)))


def test_pad_small_map_false():
    model = SwinMSMLP(arch=SMALL, block_pattern='swin', pad_small_map=False).eval()
    assert model(torch.rand(1, 3, 224, 224))[0].shape == (1, 256, 7, 7)
    with pytest.raises(ValueError, match=r'stage 3 map 4x5 is smaller than window_size 7; set pad_small_map=True'):
        model(torch.rand(1, 3, 97, 131))
    # a stage made only of MS blocks has no window constraint
    only_ms_last = SwinMSMLP(arch=SMALL, block_pattern=['WS', 'WS', 'WS', 'MM'], pad_small_map=False).eval()
    assert only_ms_last(torch.rand(1, 3, 97, 131))[0].shape == (1, 256, 4, 5)


def test_frozen_stages():
    model = SwinMSMLP(arch=SMALL, frozen_stages=2, out_indices=(0, 1, 2, 3))
    model.train()
    for module in [model.patch_embed, model.stages[0], model.stages[1], model.norm0, model.norm1]:
        assert not module.training
        assert all(not p.requires_grad for p in module.parameters())
    for module in [model.stages[2], model.stages[3], model.norm2, model.norm3]:
        assert module.training
        assert all(p.requires_grad for p in module.parameters())
    # frozen stages (including their merging layer) get no gradient
    model(torch.rand(1, 3, 64, 64))[-1].sum().backward()
    assert all(p.grad is None for p in model.stages[1].parameters())
    assert model.stages[1].downsample.reduction.weight.grad is None
    assert all(p.grad is not None for p in model.stages[2].parameters())
    only_stem = SwinMSMLP(arch=SMALL, frozen_stages=0).train()
    assert not only_stem.patch_embed.training and only_stem.stages[0].training


def test_norm_eval_keeps_batchnorm_in_eval():
    model = SwinMSMLP(arch=SMALL, norm_eval=True)
    model.stages[0].add_module('bn_probe', torch.nn.BatchNorm2d(4))
    model.train()
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert bns and all(not m.training for m in bns)
    assert model.stages[0].blocks[0].training
    model_no = SwinMSMLP(arch=SMALL, norm_eval=False)
    model_no.stages[0].add_module('bn_probe', torch.nn.BatchNorm2d(4))
    assert model_no.train().stages[0].bn_probe.training


def test_with_cp_same_outputs_and_grads():
    torch.manual_seed(0)
    model = SwinMSMLP(arch=SMALL, block_pattern=['WM', 'SM', 'WS', 'MW'], drop_path_rate=0.,
                      out_indices=(2, 3))
    model.init_weights()
    model_cp = copy.deepcopy(model)
    for stage in model_cp.stages:
        stage.with_cp = True
    assert all(s.with_cp for s in SwinMSMLP(arch=SMALL, with_cp=True).stages)
    x = torch.rand(2, 3, 64, 96)
    outs, outs_cp = model(x), model_cp(x)
    sum(o.pow(2).sum() for o in outs).backward()
    sum(o.pow(2).sum() for o in outs_cp).backward()
    for a, b in zip(outs, outs_cp):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    for (name, p), (_, q) in zip(model.named_parameters(), model_cp.named_parameters()):
        assert p.grad is not None, name
        torch.testing.assert_close(p.grad, q.grad, rtol=0, atol=1e-7, msg=name)


def test_drop_path_rates_increase_linearly():
    model = SwinMSMLP(arch=SMALL, drop_path_rate=0.3)
    rates = []
    for stage in model.stages:
        for block in stage.blocks:
            if isinstance(block, TokenMixShiftBlock):
                rates.append(getattr(block.drop_path, 'drop_prob', 0.))
            else:
                rates.append(block.attn.drop.drop_prob)
    torch.testing.assert_close(torch.tensor(rates), torch.linspace(0, 0.3, 8))


def test_init_weights_defaults():
    model = SwinMSMLP(arch=SMALL)
    model.init_weights()
    ms, attn = model.stages[1].blocks[1], model.stages[1].blocks[0]
    assert ms.pwconv1.bias.abs().sum() == 0 and 0.01 < ms.pwconv1.weight.std() < 0.03
    assert torch.all(ms.gamma == 1e-6)
    assert 0.01 < attn.attn.w_msa.qkv.weight.std() < 0.03
    assert 0.005 < attn.attn.w_msa.relative_position_bias_table.std() < 0.03  # WindowMSA.init_weights


def test_get_layer_depth_matches_mmpretrain_swin():
    model = SwinMSMLP(arch='tiny')
    n = 2 + 2 + 6 + 2 + 2
    assert model.get_layer_depth('backbone.patch_embed.projection.weight', 'backbone.') == (0, n)
    assert model.get_layer_depth('backbone.stages.0.blocks.1.gamma', 'backbone.') == (2, n)
    assert model.get_layer_depth('backbone.stages.1.downsample.reduction.weight', 'backbone.') == (4, n)
    assert model.get_layer_depth('backbone.stages.2.blocks.5.pwconv1.weight', 'backbone.') == (10, n)
    assert model.get_layer_depth('backbone.norm3.weight', 'backbone.') == (n - 1, n)
    assert model.get_layer_depth('head.fc.weight', 'backbone.') == (n - 1, n)
    swin = SwinTransformer(arch='tiny')
    names = [name for name, _ in swin.named_parameters()]
    assert names == [name for name, _ in SwinMSMLP(arch='tiny', block_pattern='swin').named_parameters()]
    for name in names + ['head.fc.bias']:
        assert model.get_layer_depth('backbone.' + name, 'backbone.') == \
            swin.get_layer_depth('backbone.' + name, 'backbone.'), name


@pytest.mark.parametrize('pad_small_map,sizes', [(False, [(224, 224), (256, 320)]),
                                                 (True, [(224, 224), (97, 131)])])
def test_all_attention_hybrid_reproduces_mmpretrain_swin(pad_small_map, sizes):
    """Strong parity: pattern 'swin' + an mmpretrain Swin state dict gives mmpretrain Swin's outputs."""
    swin = _random_swin(arch=SMALL, drop_path_rate=0.2, out_indices=(0, 1, 2, 3), pad_small_map=pad_small_map)
    swin.eval()  # mmpretrain's SwinTransformer.train() returns None
    hybrid = SwinMSMLP(arch=SMALL, block_pattern='swin', drop_path_rate=0.2, out_indices=(0, 1, 2, 3),
                       pad_small_map=pad_small_map).eval()
    hybrid.init_weights()
    report = load_swin_pretrained(hybrid, _mmpretrain_checkpoint(swin))
    assert report.new == [] and report.unused == [] and report.resized == []
    for size in sizes:
        x = torch.randn(2, 3, *size)
        with torch.no_grad():
            ref, out = swin(x), hybrid(x)
        for r, o in zip(ref, out):
            torch.testing.assert_close(o, r, rtol=0, atol=0)


def test_all_attention_swin_tiny_preset_parity():
    swin = _random_swin(arch='tiny', out_indices=(3, ))
    swin.eval()
    # mmpretrain's classification default: no shift when the map equals the window (stage 4 at 224)
    hybrid = SwinMSMLP(arch='tiny', block_pattern='swin', pad_small_map=False, init_cfg=None).eval()
    hybrid.load_state_dict(swin.state_dict(), strict=True)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(hybrid(x)[0], swin(x)[0], rtol=0, atol=0)


def test_swin_checkpoint_loader_report(tmp_path):
    swin = _random_swin(arch=SMALL)
    path = tmp_path / 'swin_small_arch.pth'
    torch.save(_mmpretrain_checkpoint(swin), path)
    source = swin.state_dict()

    model = SwinMSMLP(arch=SMALL)  # default pattern 'ms_shift'
    model.init_weights()
    report = load_swin_pretrained(model, str(path))
    assert report.prefix == 'backbone.'  # auto-detected
    state = model.state_dict()
    ms_keys = _ms_keys(model)
    assert ms_keys and sorted(report.new) == sorted(ms_keys)  # exactly the MS blocks are new
    # every other tensor (patch embed, attention blocks, merging layers, norm3) came from the checkpoint
    swin_part = [k for k in state if k not in ms_keys and not k.endswith('relative_position_index')]
    assert sorted(report.loaded) == sorted(swin_part)
    assert any('.attn.w_msa.qkv.' in k for k in report.loaded)
    for key in swin_part:
        torch.testing.assert_close(state[key], source[key], rtol=0, atol=0, msg=key)
    assert sorted(report.derived) == sorted(k for k in state if k.endswith('relative_position_index'))
    # the replaced shifted-window blocks are reported as unused, nothing else
    assert report.unused and all(k.startswith(tuple(f'stages.{i}.blocks.1.' for i in range(4)))
                                 for k in report.unused)
    assert 'new' in str(report) and str(len(report.loaded)) in report.summary()

    # the same through init_cfg=Pretrained: MS blocks get the default init, the report is kept
    torch.manual_seed(3)
    via_cfg = SwinMSMLP(arch=SMALL, init_cfg=dict(type='Pretrained', checkpoint=str(path), prefix='backbone.'))
    via_cfg.init_weights()
    assert via_cfg.pretrained_report.as_dict() == report.as_dict()
    for key in swin_part:
        torch.testing.assert_close(via_cfg.state_dict()[key], source[key], rtol=0, atol=0, msg=key)
    ms = via_cfg.stages[0].blocks[1]
    assert torch.all(ms.gamma == 1e-6) and ms.pwconv1.bias.abs().sum() == 0
    assert 0.01 < ms.pwconv1.weight.std() < 0.03


def test_loader_ms_early_and_hybrid_checkpoints():
    swin = _random_swin(arch=SMALL)
    model = SwinMSMLP(arch=SMALL, block_pattern='ms_early', out_indices=(2, 3))
    model.init_weights()
    report = load_swin_pretrained(model, swin.state_dict(), prefix='')
    assert sorted(report.new) == sorted(_ms_keys(model) | {'norm2.weight', 'norm2.bias'})
    assert all(k.startswith(('stages.0.blocks.', 'stages.1.blocks.')) for k in report.unused)
    assert not any(k.startswith(('stages.2.blocks', 'stages.3.blocks')) for k in report.new)
    # a hybrid checkpoint round-trips completely (MS blocks included)
    again = SwinMSMLP(arch=SMALL, block_pattern='ms_early', out_indices=(2, 3))
    report2 = load_swin_pretrained(again, {'state_dict': {'backbone.' + k: v for k, v in model.state_dict().items()}})
    assert report2.new == [] and report2.unused == []


def test_loader_legacy_keys_and_window_resize():
    swin = _random_swin(arch=SMALL)
    state = {'backbone.' + k.replace('norm3.', 'norm.'): v for k, v in swin.state_dict().items()}
    state['backbone.stages.0.blocks.1.attn_mask'] = torch.zeros(4, 49, 49)  # mmcls v0 layout
    model = SwinMSMLP(arch=SMALL, block_pattern='swin', window_size=8)
    model.init_weights()
    report = load_swin_pretrained(model, state)
    torch.testing.assert_close(model.norm3.weight, swin.norm3.weight)
    tables = [k for k in model.state_dict() if k.endswith('relative_position_bias_table')]
    assert sorted(report.resized) == sorted(tables) and set(tables) <= set(report.loaded)
    resized = model.stages[2].blocks[1].attn.w_msa.relative_position_bias_table
    assert resized.shape == (15 * 15, 4)
    # bicubic resize of the 13x13 table per head (mmdet/mmseg Swin init_weights)
    src = swin.stages[2].blocks[1].attn.w_msa.relative_position_bias_table
    expected = torch.nn.functional.interpolate(src.t().reshape(1, 4, 13, 13), size=(15, 15), mode='bicubic')
    torch.testing.assert_close(resized, expected.reshape(4, 225).t())
    assert report.new == [] and report.unused == []


def test_loader_errors():
    swin = _random_swin(arch=SMALL)
    model = SwinMSMLP(arch=dict(embed_dims=32, depths=[2, 2, 4, 2], num_heads=[1, 2, 4, 8]))
    with pytest.raises(CheckpointLoadError, match=r"of the model's tensors are missing from the checkpoint, "
                       r"e.g. \['stages.2.blocks.2.norm1.weight'.*same arch \(embed_dims 32"):
        load_swin_pretrained(model, swin.state_dict())
    report = load_swin_pretrained(model, swin.state_dict(), strict=False)
    assert 'stages.2.blocks.2.attn.w_msa.qkv.weight' in report.new
    wider = SwinMSMLP(arch=dict(embed_dims=64, depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 8]))
    with pytest.raises(CheckpointLoadError, match=r'tensors have another shape, e.g. patch_embed.projection.weight'):
        load_swin_pretrained(wider, swin.state_dict())
    with pytest.raises(ValueError, match="no checkpoint key starts with prefix 'backbone.'"):
        load_swin_pretrained(model, swin.state_dict(), prefix='backbone.')
    with pytest.raises(ValueError, match='is it an mmpretrain-format Swin checkpoint'):
        load_swin_pretrained(model, {'layers.0.blocks.0.norm1.weight': torch.zeros(32)})
    with pytest.raises(TypeError, match='model must be a SwinMSMLP'):
        load_swin_pretrained(swin, swin.state_dict())


def test_loader_refuses_blocks_the_arch_lacks():
    # unused checkpoint tensors are tolerated only where the pattern has MS blocks (a Swin checkpoint has attention
    # there) and for other output norms: a deeper checkpoint into a shallower model is a mismatch
    deeper = _random_swin(arch=dict(embed_dims=32, depths=[2, 2, 4, 2], num_heads=[1, 2, 4, 8]))
    for pattern in ('swin', 'ms_shift'):
        model = SwinMSMLP(arch=SMALL, block_pattern=pattern)
        with pytest.raises(CheckpointLoadError, match=r"checkpoint tensors are not in the model, e.g. "
                           r"\['stages.2.blocks.2."):
            load_swin_pretrained(model, deeper.state_dict())
    model = SwinMSMLP(arch=SMALL, block_pattern='ms_shift')
    assert model._may_be_unused('stages.0.blocks.1.attn.w_msa.qkv.weight')  # an 'M' position
    assert model._may_be_unused('norm1.weight')
    assert not model._may_be_unused('stages.0.blocks.0.attn.w_msa.qkv.weight')  # a 'W' block the model has
    assert not model._may_be_unused('stages.2.blocks.2.norm1.weight')


def _small_arch(cfg):
    cfg.model.backbone.arch = SMALL
    cfg.model.head.in_channels = 256


def test_config_classifier_with_swin_pattern_is_mmpretrain_swin_classifier(tmp_path):
    """Our ImageNet config with block_pattern='swin' == mmpretrain's Swin classifier config (keys and logits);
    init_cfg=Pretrained on the mmpretrain checkpoint fills the backbone through load_swin_pretrained."""
    import os.path as osp

    import mmpretrain
    from helpers_mmmixer import build_from_config
    from mmengine.config import Config
    from mmengine.registry import MODELS, DefaultScope

    swin_cfg = Config.fromfile(osp.join(osp.dirname(mmpretrain.__file__), '.mim', 'configs', 'swin_transformer',
                                        'swin-tiny_16xb64_in1k.py'))
    swin_cfg.model.backbone.arch = SMALL
    swin_cfg.model.head.in_channels = 256
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        reference = MODELS.build(swin_cfg.model)
    reference.init_weights()
    with torch.no_grad():
        for p in reference.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    reference.eval()
    path = tmp_path / 'swin_cls.pth'
    torch.save({'state_dict': reference.state_dict(), 'meta': {}}, path)

    def edit(cfg):
        _small_arch(cfg)
        cfg.model.backbone.block_pattern = 'swin'
        cfg.model.backbone.init_cfg = dict(type='Pretrained', checkpoint=str(path), prefix='backbone.')

    model, cfg = build_from_config('swin-msmlp-tiny_16xb64_in1k.py', edit)
    assert cfg.model.backbone.pad_small_map is False and cfg.model.neck.type == 'GlobalAveragePooling'
    model.init_weights()
    report = model.backbone.pretrained_report
    assert report.new == [] and report.unused == [] and len(report.loaded) > 0
    missing = model.load_state_dict(reference.state_dict(), strict=True)  # identical classifier layout
    assert not missing.missing_keys and not missing.unexpected_keys
    model.eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(model(x, mode='tensor'), reference(x, mode='tensor'), rtol=0, atol=0)

    # the default pattern from the same checkpoint: attention parts loaded, MS blocks new
    def edit_default(cfg):
        _small_arch(cfg)
        cfg.model.backbone.init_cfg = dict(type='Pretrained', checkpoint=str(path), prefix='backbone.')

    hybrid, _ = build_from_config('swin-msmlp-tiny_16xb64_in1k.py', edit_default)
    hybrid.init_weights()
    report = hybrid.backbone.pretrained_report
    assert sorted(report.new) == sorted(_ms_keys(hybrid.backbone))
    torch.testing.assert_close(hybrid.backbone.stages[2].blocks[0].attn.w_msa.qkv.weight,
                               reference.backbone.stages[2].blocks[0].attn.w_msa.qkv.weight, rtol=0, atol=0)
