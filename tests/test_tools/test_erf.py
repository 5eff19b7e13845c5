"""tools/analysis_tools/erf.py: the ERF of models whose receptive field is known exactly, MS-MLP with and without
its shifts, the area ratio, the whole tool on a nano config (figure, table, JSON, checkpoint column) and its
errors on bad input."""
import json
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn as nn

from helpers_mmmixer import REPO, load_tool

TOOL = osp.join(REPO, 'tools', 'analysis_tools', 'erf.py')
NANO = osp.join(REPO, 'configs', 'demo', 'msmlp-nano_1xb64-40e_digits.py')


@pytest.fixture(scope='module')
def erf():
    return load_tool(TOOL, 'mmmixer_erf_tool')


class ConvStack(nn.Module):
    """``depth`` k x k convolutions (stride 1, zero 'same' padding) with all-one weights: the gradient of the centre
    output is positive exactly on the centred square of side depth * (k - 1) + 1 and zero elsewhere."""

    def __init__(self, k, depth):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(3 if i == 0 else 1, 1, k, padding=k // 2, bias=False)
                                   for i in range(depth))
        for conv in self.convs:
            nn.init.ones_(conv.weight)

    def forward(self, x):
        for conv in self.convs:
            x = conv(x)
        return (x, )


@pytest.mark.parametrize('k,depth', [(3, 4), (5, 2), (7, 1)])
def test_conv_stack_erf_is_its_theoretical_receptive_field(erf, k, depth):
    size, side = 33, depth * (k - 1) + 1
    images = [torch.rand(3, size, size) + 0.1 for _ in range(2)]
    (mean_map, ), used, _ = erf.compute_erf(ConvStack(k, depth), images, [0])
    assert used == 2 and mean_map.shape == (size, size)
    lo = size // 2 - side // 2
    expected = np.zeros((size, size), bool)
    expected[lo:lo + side, lo:lo + side] = True
    np.testing.assert_array_equal(mean_map > 0, expected)
    # all of the contribution lies in that square, and no smaller centred square holds all of it
    assert erf.area_ratio(erf.log_scaled(mean_map), 1.0) == (side, side * side / size**2)


def test_area_ratio_of_a_uniform_square(erf):
    # one 5x5 all-ones convolution: a uniform 5x5 contribution; centred squares 1, 3, 5 hold 1/25, 9/25, 25/25
    (mean_map, ), _, _ = erf.compute_erf(ConvStack(5, 1), [torch.rand(3, 21, 21) + 0.1], [0])
    score = erf.log_scaled(mean_map)
    assert score.max() == 1.0
    sides = {t: erf.area_ratio(score, t) for t in erf.THRESHOLDS}
    assert sides == {0.2: (3, 9 / 441), 0.3: (3, 9 / 441), 0.5: (5, 25 / 441), 0.99: (5, 25 / 441)}
    assert erf.area_ratio(np.zeros((4, 4)), 0.5) == (None, None)
    with pytest.raises(ValueError, match=r'threshold t must be in \(0, 1\]'):
        erf.area_ratio(score, 0)


def test_squares_centred_on_the_traced_position(erf):
    # odd maps: the input centre; even maps: the centre of the position (h // 2, w // 2), half a stride further
    assert erf.position_centre((7, 7), (224, 224)) == (112, 112)
    assert erf.position_centre((14, 14), (224, 224)) == (120, 120)
    assert erf.position_centre((2, 3), (32, 48)) == (24, 24)
    score = np.zeros((8, 8))
    score[5, 5] = 1.
    assert erf.area_ratio(score, 1.0, (5, 5)) == (1, 1 / 64)
    assert erf.area_ratio(score, 1.0) == (3, 9 / 64)  # centred on (4, 4)


def _msmlp(**kwargs):
    from mmmixer.models import MSMLP
    torch.manual_seed(0)
    model = MSMLP(arch=dict(embed_dims=20, depths=[1, 1, 1, 1]), drop_path_rate=0., layer_scale_init_value=1.,
                  **kwargs)
    model.init_weights()
    return model


def test_msmlp_without_shift_and_mixing_has_a_smaller_erf(erf):
    # 96x96 input: the last stage is a 3x3 map; its centre token covers input pixels [32, 64) in both axes
    images = [torch.randn(3, 96, 96) for _ in range(2)]
    (plain, ), _, _ = erf.compute_erf(_msmlp(shift_dist=(0, ), mix_size=[[1]] * 4), images, [0])
    (default, ), _, sizes = erf.compute_erf(_msmlp(), images, [0])
    token = np.zeros((96, 96), bool)
    token[32:64, 32:64] = True
    # without shifts and with 1x1 mixing the token mixer is per position: only the token's own patch contributes
    assert plain[token].sum() > 0 and not plain[~token].any()
    assert (default[~token] > 0).sum() > 1000  # the shifts reach the neighbouring tokens
    assert sizes == [(3, 3)]
    ratios = [erf.area_ratio(erf.log_scaled(m), 0.99)[1] for m in (plain, default)]
    assert ratios[0] < ratios[1]


def test_tool_on_a_nano_config(erf, tmp_path):
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    import mmmixer.models  # noqa: F401
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(NANO).model)
    ckpt = str(tmp_path / 'nano.pth')
    torch.save({'state_dict': model.state_dict()}, ckpt)
    prefix = str(tmp_path / 'out' / 'erf')
    result = erf.main([NANO, 'none', ckpt, '--size', '64', '--images', '3', '--stage', 'all', '--out', prefix,
                       '--threads', '1'])
    for ext in ('png', 'pdf', 'md', 'json', 'npz'):
        assert osp.getsize(f'{prefix}.{ext}') > 0
    rows = json.load(open(prefix + '.json'))['rows']
    assert [(r['column'], r['stage']) for r in rows] == [(c, s) for c in (0, 1) for s in range(4)]
    assert rows[0]['weights'] == 'random init' and rows[4]['weights'] == 'nano.pth'
    # the checkpoint of the classifier fills everything but the output norms of stages 0-2 (weight and bias each)
    assert rows[4]['load']['missing'] == 6 and rows[4]['load']['unexpected'] == 0
    for r in rows:
        assert r['images_used'] == 3
        ratios = [r['area_ratio'][str(t)] for t in erf.THRESHOLDS]
        assert all(0 < a <= 1 for a in ratios) and ratios == sorted(ratios)
    assert [r['out_size'] for r in rows[:4]] == [[16, 16], [8, 8], [4, 4], [2, 2]]
    assert [r['centre'] for r in rows[:4]] == [[34, 34], [36, 36], [40, 40], [48, 48]]
    # deeper stages reach further
    assert rows[0]['area_ratio']['0.5'] < rows[3]['area_ratio']['0.5']
    maps = np.load(prefix + '.npz')
    assert maps['col0_stage2'].shape == (64, 64)
    table = open(prefix + '.md').read()
    assert '| msmlp-nano_1xb64-40e_digits | nano.pth | 3 |' in table and 't=0.99' in table


def test_views_and_normalisation(erf, tmp_path):
    from mmengine.config import Config
    views = erf.make_views(erf.source_images(), 5, (40, 48))
    assert len(views) == 5 and all(v.shape == (40, 48, 3) and v.dtype == np.uint8 for v in views)
    np.testing.assert_array_equal(views[2], views[0][:, ::-1])  # the flipped first photograph
    mean, std, rgb = erf.normalisation(Config.fromfile(NANO))
    assert not rgb and list(mean) == [127.5] * 3  # the digits demo trains on BGR-loaded images
    x = erf.to_tensor(views[0], mean, std, rgb)
    assert x.shape == (3, 40, 48)
    np.testing.assert_allclose(x[0].numpy(), (views[0][..., 2] - 127.5) / 127.5, atol=1e-6)


def test_bad_input(erf, tmp_path):
    with pytest.raises(ValueError, match=r"unknown --stage '5'; accepted: last \(default\), all"):
        erf.parse_stage('5')
    with pytest.raises(ValueError, match='unknown --stage'):
        erf.parse_stage('first')
    assert erf.parse_stage('3,0') == (0, 3) and erf.parse_stage('all') == (0, 1, 2, 3)
    (tmp_path / 'notes.txt').write_text('no picture here')
    with pytest.raises(ValueError, match='holds no image'):
        erf.source_images(str(tmp_path))
    with pytest.raises(ValueError, match='is not a folder'):
        erf.source_images(str(tmp_path / 'missing'))
    with pytest.raises(SystemExit, match='smaller than the total stride 32'):
        erf.main([NANO, '--size', '16', '--images', '1', '--out', str(tmp_path / 'x')])
    with pytest.raises(SystemExit, match='unknown --stage'):
        erf.main([NANO, '--stage', '4', '--out', str(tmp_path / 'x')])
    with pytest.raises(SystemExit, match='holds no image'):
        erf.main([NANO, '--image-dir', str(tmp_path), '--out', str(tmp_path / 'x')])
    with pytest.raises(SystemExit, match="checkpoint 'nothing.pth' .* not found"):
        erf.main([NANO, 'nothing.pth'])
    with pytest.raises(SystemExit, match='no config precedes it'):
        erf.main(['weights.pth', NANO])
    with pytest.raises(SystemExit, match='--images must be at least 1'):
        erf.main([NANO, '--images', '0'])
    bad = tmp_path / 'other.pth'
    torch.save({'state_dict': {'head.weight': torch.zeros(3)}}, str(bad))
    with pytest.raises(SystemExit, match='no weight of .* matches the model'):
        erf.main([NANO, str(bad), '--size', '32', '--images', '1', '--out', str(tmp_path / 'x')])
