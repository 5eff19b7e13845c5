"""The widths and strides every backbone states (``arch_feature_info``, ``feature_info``, ``out_channels``) against
the papers' tables and the real outputs, and ``return_tuple``.

Presets are checked against the published widths without building them; small custom archs are built and run on a
64 x 64 input to compare what is stated with what comes out.
"""
import pytest
import torch

from mmmixer.registry import MODELS

#: registered name -> {arch_zoo names of one preset: stage widths}. Sources: MS-MLP arXiv 2202.06510 Table 1;
#: PosMLP arXiv 2201.12083 (T, S; B is ours, the paper publishes none: docs/families.md); Strip-MLP arXiv
#: 2307.11458 (Light-Tiny / Tiny C=80, Small 96, Base 112); Swin-MS-MLP hybrid: Swin's widths (arXiv 2103.14030).
PAPER_WIDTHS = {
    'MSMLP': {('t', 'tiny'): (96, 192, 384, 768), ('s', 'small'): (96, 192, 384, 768),
              ('b', 'base'): (128, 256, 512, 1024)},
    'PosMLP': {('t', 'tiny'): (96, 192, 384, 768), ('s', 'small'): (128, 256, 512, 1024),
               ('b', 'base'): (192, 384, 768, 1536)},
    'StripMLP': {('light_tiny', 'light-tiny', 't*', 'lt'): (80, 160, 320, 640), ('t', 'tiny'): (80, 160, 320, 640),
                 ('s', 'small'): (96, 192, 384, 768), ('b', 'base'): (112, 224, 448, 896)},
    'SwinMSMLP': {('t', 'tiny'): (96, 192, 384, 768), ('s', 'small'): (96, 192, 384, 768),
                  ('b', 'base'): (128, 256, 512, 1024)},
}
#: registered name -> keyword arguments of a small model (PosMLP: per-stage widths, the others take an int that doubles)
SMALL = {
    'MSMLP': dict(arch=dict(embed_dims=20, depths=[1, 1, 1, 1])),
    'PosMLP': dict(arch=dict(embed_dims=[16, 32, 64, 128], depths=[1, 1, 1, 1], gammas=[2, 2, 2, 2]), window_size=4),
    'StripMLP': dict(arch=dict(embed_dims=16, depths=[1, 1, 1, 1]), img_size=64),
    'SwinMSMLP': dict(arch=dict(embed_dims=20, depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 4])),
}
FAMILIES = list(PAPER_WIDTHS)
IMG = 64


def build(name, **kwargs):
    return MODELS.get(name)(**{**SMALL[name], **kwargs}).eval()


def run(model, size=IMG):
    with torch.no_grad():
        return model(torch.randn(2, 3, size, size))


@pytest.mark.parametrize('name', FAMILIES)
def test_presets_state_the_paper_widths(name):
    cls = MODELS.get(name)
    table = {alias: widths for aliases, widths in PAPER_WIDTHS[name].items() for alias in aliases}
    assert set(table) == set(cls.arch_zoo)  # every preset is in the table
    for arch, widths in table.items():
        info = cls.arch_feature_info(arch)
        assert [f['num_chs'] for f in info] == list(widths), arch
        assert [f['reduction'] for f in info] == [4, 8, 16, 32]
        assert [(f['stage'], f['module']) for f in info] == [(i, f'stages.{i}') for i in range(4)]


@pytest.mark.parametrize('name', FAMILIES)
def test_arch_feature_info_equals_the_built_model(name):
    model = build(name, out_indices=(0, 1, 2, 3))
    assert MODELS.get(name).arch_feature_info(SMALL[name]['arch']) == model.feature_info
    # and the real outputs: widths and strides (64 x 64 input -> 16, 8, 4, 2)
    outs = run(model)
    assert [o.shape[1] for o in outs] == [f['num_chs'] for f in model.feature_info]
    assert [IMG // o.shape[-1] for o in outs] == [f['reduction'] for f in model.feature_info] == [4, 8, 16, 32]
    assert [IMG // o.shape[-2] for o in outs] == [4, 8, 16, 32]


@pytest.mark.parametrize('name', [n for n in FAMILIES if n != 'PosMLP'])  # PosMLP's stem has a fixed stride 4
def test_patch_size_sets_the_reductions(name):
    cls = MODELS.get(name)
    stated = cls.arch_feature_info(SMALL[name]['arch'], patch_size=2)
    model = build(name, out_indices=(0, 1, 2, 3), patch_size=2)
    assert stated == model.feature_info and [f['reduction'] for f in stated] == [2, 4, 8, 16]
    assert [IMG // o.shape[-1] for o in run(model)] == [2, 4, 8, 16]


@pytest.mark.parametrize('name', FAMILIES)
def test_out_channels_match_the_outputs(name):
    model = build(name, out_indices=(1, 3))
    widths = [f['num_chs'] for f in model.feature_info]
    assert model.out_channels == (widths[1], widths[3])
    assert tuple(o.shape[1] for o in run(model)) == model.out_channels
    assert build(name, out_indices=-1).out_channels == (widths[3], )


@pytest.mark.parametrize('name', FAMILIES)
def test_return_tuple_false_returns_the_one_tensor(name):
    torch.manual_seed(0)
    as_tuple = build(name, out_indices=(2, ))
    single = build(name, out_indices=(2, ), return_tuple=False)
    single.load_state_dict(as_tuple.state_dict())
    x = torch.randn(2, 3, IMG, IMG)
    with torch.no_grad():
        expected, = as_tuple(x)
        out = single(x)
    assert torch.is_tensor(out) and out.shape == expected.shape
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize('name', FAMILIES)
def test_return_tuple_false_with_two_stages_is_refused(name):
    with pytest.raises(ValueError, match=r'return_tuple=False returns one tensor, so out_indices must name exactly '
                                         r'one stage, got \(1, 3\)'):
        build(name, out_indices=(1, 3), return_tuple=False)


@pytest.mark.parametrize('name', FAMILIES)
def test_unknown_arch_is_refused(name):
    cls = MODELS.get(name)
    with pytest.raises(ValueError, match='huge') as info:
        cls.arch_feature_info('huge')
    assert 'tiny' in str(info.value)  # the accepted presets are listed
    with pytest.raises(ValueError, match='huge'):
        cls(arch='huge')
