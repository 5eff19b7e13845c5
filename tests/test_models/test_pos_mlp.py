"""PosMLP backbone behaviour, modelled on mmpretrain's backbone tests, plus PosMLP specifics: GQPE/LRPE math,
interleaved channel groups, padding invariants and window resizing on load."""
import copy

import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from mmmixer.models import PosMLP
from mmmixer.models.backbones.pos_mlp import PosMLPBlock, PosMLPStage
from mmmixer.models.layers.positional_maps import (NEGLIGIBLE_WEIGHT, LearnedPosMap, QuadraticPosMap,
                                                   window_partition, window_reverse)

SMALL = dict(embed_dims=32, depths=[1, 1, 2, 1])
GOLDEN_WINDOWS = [7, 7, 7, 4]


def randomize_positional(module, seed=0):
    """Move every positional parameter away from its (partly zero) init so masks and resizes are observable."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if any(k in name for k in ('token_proj_n_bias', 'relative_position_bias_table')):
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
            elif 'attention_centers' in name:
                p.copy_(torch.randn(p.shape, generator=g))
            elif 'attention_spreads' in name:
                p.add_(torch.randn(p.shape, generator=g) * 0.2)
    return module


def test_arch_errors():
    with pytest.raises(ValueError, match=r"arch 'huge' is not a preset; accepted: \['b', 'base'"):
        PosMLP(arch='huge')
    with pytest.raises(ValueError, match=r"needs the keys \['depths', 'embed_dims'\].*missing \['depths'\]"):
        PosMLP(arch=dict(embed_dims=32))
    with pytest.raises(ValueError, match=r"unknown \['heads'\]"):
        PosMLP(arch=dict(embed_dims=32, depths=[1, 1, 1, 1], heads=[1]))
    with pytest.raises(ValueError, match=r'arch gammas \[8, 16\] must give one value per stage \(4 stages'):
        PosMLP(arch=dict(SMALL, gammas=[8, 16]))
    with pytest.raises(ValueError, match='stage 1 width must be a multiple of stage 0 width'):
        PosMLP(arch=dict(embed_dims=[32, 48, 96, 192], depths=[1, 1, 1, 1]))
    with pytest.raises(ValueError, match=r'gated half \(64\) divisible by gamma=48'):
        PosMLP(arch=dict(SMALL, gammas=[48, 16, 32, 64]))
    with pytest.raises(ValueError, match=r'hidden width int\(mlp_ratio \* embed_dims\) = int\(1.5 \* 33\)'):
        PosMLP(arch=dict(embed_dims=33, depths=[1, 1, 1, 1], mlp_ratios=[1.5, 4, 4, 2], gammas=[1, 1, 1, 1]))
    with pytest.raises(ValueError, match=r"pos_type must be one of \('gqpe', 'lrpe'\), got 'GQPE2'"):
        PosMLP(arch=SMALL, pos_type='GQPE2')
    with pytest.raises(ValueError, match="no meaning for pos_type='lrpe'"):
        PosMLP(arch=SMALL, pos_type='lrpe', generalized=False)
    with pytest.raises(ValueError, match=r'window_size must be a positive int or one positive int per stage'):
        PosMLP(arch=SMALL, window_size=(7, 7, 7))
    with pytest.raises(ValueError, match=r'window_size must be a positive int'):
        PosMLP(arch=SMALL, window_size=0)
    with pytest.raises(ValueError, match='out_indices entry 4 is out of range'):
        PosMLP(arch=SMALL, out_indices=(0, 4))
    with pytest.raises(ValueError, match=r'frozen_stages must be in \[-1, 4\]'):
        PosMLP(arch=SMALL, frozen_stages=5)
    with pytest.raises(ValueError, match="stem works on \\(B, C, H, W\\); use 'BN'"):
        PosMLP(arch=SMALL, stem_norm_cfg=dict(type='LN'))


@pytest.mark.parametrize('arch,dims', [('tiny', 96), ('s', 128), ('BASE', 192)])
def test_presets(arch, dims):
    with torch.device('meta'):
        model = PosMLP(arch=arch)
    assert model.embed_dims == [dims * 2**i for i in range(4)]
    assert [len(s.blocks) for s in model.stages] == [2, 2, 18, 2]
    assert model.gammas == [8, 16, 32, 64] and model.mlp_ratios == [4, 4, 4, 2]
    assert model.window_size == [14, 14, 14, 7]
    pos = model.stages[3].blocks[0].pos_map
    assert isinstance(pos, QuadraticPosMap) and pos.gamma == 64 and pos.window_size == 7
    assert model.stages[0].downsample is None and model.stages[1].downsample.conv.groups == dims
    assert isinstance(model.patch_embed.norms[0], _BatchNorm)


def test_input_errors():
    model = PosMLP(arch=SMALL)
    with pytest.raises(ValueError, match=r'must be 4-D \(B, C, H, W\), got shape \(3, 64, 64\)'):
        model(torch.rand(3, 64, 64))
    with pytest.raises(ValueError, match='input has 1 channels.*in_channels=3'):
        model(torch.rand(1, 1, 64, 64))


@pytest.mark.parametrize('size,expected', [((224, 224), [(56, 56), (28, 28), (14, 14), (7, 7)]),
                                           ((256, 320), [(64, 80), (32, 40), (16, 20), (8, 10)]),
                                           ((97, 131), [(25, 33), (13, 17), (7, 9), (4, 5)]),
                                           ((7, 3), [(2, 1), (1, 1), (1, 1), (1, 1)])])
@pytest.mark.parametrize('pos_type', ['gqpe', 'lrpe'])
def test_dense_shapes(size, expected, pos_type):
    model = PosMLP(arch=SMALL, pos_type=pos_type, out_indices=(0, 1, 2, 3)).eval()
    randomize_positional(model)
    with torch.no_grad():
        outs = model(torch.rand(2, 3, *size))
    assert isinstance(outs, tuple) and len(outs) == 4
    for i, (out, hw) in enumerate(zip(outs, expected)):
        assert out.shape == (2, 32 * 2**i, *hw)
        assert torch.isfinite(out).all()


def test_out_indices_and_pooling():
    with pytest.raises(ValueError, match='gap_before_final_norm=True pools every returned stage'):
        PosMLP(arch=SMALL, out_indices=(1, -1), gap_before_final_norm=True)
    model = PosMLP(arch=SMALL, gap_before_final_norm=True).eval()
    x = torch.rand(2, 3, 64, 64)
    outs = model(x)
    assert [o.shape for o in outs] == [(2, 256)]
    assert hasattr(model, 'norm3') and not hasattr(model, 'norm0') and not hasattr(model, 'norm1')
    feat = x
    feat = model.patch_embed(feat)
    for stage in model.stages:
        feat = stage(feat)
    torch.testing.assert_close(outs[0], model.norm3(feat.mean((2, 3))))
    # default (official order): per-position norm, the classifier pools afterwards
    dense = PosMLP(arch=SMALL).eval()
    dense.load_state_dict(model.state_dict(), strict=False)
    (out, ) = dense(x)
    assert out.shape == (2, 256, 2, 2)
    torch.testing.assert_close(out, model.norm3(feat.permute(0, 2, 3, 1)).permute(0, 3, 1, 2))


def test_window_partition_roundtrip_and_order():
    x = torch.arange(2 * 6 * 9 * 1, dtype=torch.float).view(2, 6, 9, 1)
    win = window_partition(x, 3)
    assert win.shape == (2, 2, 3, 9, 1)
    # window (1, 2), token m = row * 3 + col  <->  map position (3 + row, 6 + col)
    assert win[0, 1, 2, 5, 0] == x[0, 3 + 1, 6 + 2, 0]
    torch.testing.assert_close(window_reverse(win, 3), x, rtol=0, atol=0)


def test_gqpe_matrix_is_the_gaussian_of_the_paper():
    """softmax_n(-1/2 (d - delta)^T A A^T (d - delta)) with d = (col_n - col_m, row_m - row_n)."""
    pos = randomize_positional(QuadraticPosMap(5, gamma=3))
    w = 5
    idx = torch.arange(w * w)
    row, col = idx // w, idx % w
    d = torch.stack([col[None, :] - col[:, None], row[:, None] - row[None, :]], -1).float()  # (m, n, 2)
    for s in range(3):
        inv_cov = pos.attention_spreads[s] @ pos.attention_spreads[s].T
        diff = d - pos.attention_centers[s]
        logits = -0.5 * torch.einsum('mni,ij,mnj->mn', diff, inv_cov, diff)
        torch.testing.assert_close(pos.mixing_matrix()[s], logits.softmax(-1), rtol=1e-5, atol=1e-6)
    # isotropic variant (official formula: the spread only scales the linear term)
    iso = randomize_positional(QuadraticPosMap(5, gamma=2, generalized=False))
    a = iso.attention_spreads**2
    for s in range(2):
        logits = a[s] * (d @ iso.attention_centers[s]) - 0.5 * (d**2).sum(-1)
        torch.testing.assert_close(iso.mixing_matrix()[s], logits.softmax(-1), rtol=1e-5, atol=1e-6)
    assert iso.attention_spreads.shape == (2, )


def test_lrpe_matrix_reads_the_table_by_offset():
    pos = randomize_positional(LearnedPosMap(4, gamma=2))
    matrix = pos.mixing_matrix()
    table = pos.relative_position_bias_table.view(7, 7, 2)
    for m in range(16):
        for n in range(16):
            dr, dc = m // 4 - n // 4, m % 4 - n % 4
            torch.testing.assert_close(matrix[:, m, n], table[dr + 3, dc + 3])


def test_groups_are_interleaved():
    """Channel c of the gated half uses positional map c mod gamma (official einops '(v s)')."""
    pos = LearnedPosMap(3, gamma=2)
    with torch.no_grad():
        table = pos.relative_position_bias_table.view(5, 5, 2)
        table[2, 2, 0] = 1.  # group 0: identity
        table[2, 1, 1] = 1.  # group 1: out[m] = u[m + 1 column] (col_m - col_n = -1)
    u = torch.randn(1, 1, 1, 9, 6)
    out = pos(u)
    torch.testing.assert_close(out[..., 0::2], u[..., 0::2])
    expected = torch.zeros_like(u[..., 1::2]).view(3, 3, 3)
    expected[:, :2] = u[..., 1::2].view(3, 3, 3)[:, 1:]
    torch.testing.assert_close(out[..., 1::2].reshape(3, 3, 3), expected)


def _official_block(blk, x):
    """The official PoSGU block written plainly (channels last, interleaved groups, einsum), no padding."""
    u, v = blk.act(blk.fc1(blk.norm(x))).chunk(2, dim=-1)
    matrix = blk.pos_map.mixing_matrix()
    *lead, n, c = u.shape
    s = matrix.shape[0]
    mixed = torch.einsum('smn,...nvs->...mvs', matrix, u.reshape(*lead, n, c // s, s)).reshape(u.shape)
    mixed = mixed + blk.pos_map.token_proj_n_bias.view(n, 1)
    return x + blk.fc2(mixed * v)


@pytest.mark.parametrize('pos_type', ['gqpe', 'lrpe'])
def test_block_layout_is_the_official_function(pos_type):
    """The channels-first, group-major block (the fast layout) computes the official function, forward and backward."""
    torch.manual_seed(0)
    blk = randomize_positional(PosMLPBlock(24, 4, gamma=4, pos_type=pos_type), seed=3)
    with torch.no_grad():
        blk.fc1.bias.normal_()
        blk.fc2.bias.normal_()
    x = torch.randn(2, 2, 3, 16, 24, requires_grad=True)
    ours = blk(x)
    ref = _official_block(blk, x)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    g = torch.randn_like(ours)
    grads = torch.autograd.grad(ours, [x, *blk.parameters()], g)
    ref_grads = torch.autograd.grad(ref, [x, *blk.parameters()], g)
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_gqpe_matrix_drops_negligible_weights():
    """Weights below 2**-64 are set to zero: their products with activations and gradients are subnormal floats
    that make the CPU matmuls several times slower, and they are below float32 rounding of any output."""
    pos = QuadraticPosMap(14, gamma=4)  # official init: unit spread, so far offsets get exp(-d^2/2) ~ 1e-74
    feats = pos.rel_indices.flatten(1)
    raw = (pos._projection() @ feats).view(4, 196, 196).softmax(-1).detach()
    small = raw < NEGLIGIBLE_WEIGHT
    assert (small & (raw > 0)).any()  # the plain softmax has such weights here
    matrix = pos.mixing_matrix().detach()
    assert torch.equal(matrix[~small], raw[~small]) and torch.all(matrix[small] == 0)
    # relative to each row's largest weight the dropped ones are far below float32 rounding
    assert (raw.masked_fill(~small, 0).amax(-1) / raw.amax(-1)).max() < 2.0**-50
    u = torch.nn.functional.gelu(torch.randn(4, 300, 196) * 3)
    torch.testing.assert_close(torch.bmm(u, matrix.transpose(1, 2)), torch.bmm(u, raw.transpose(1, 2)),
                               rtol=0, atol=1e-17)


@pytest.mark.parametrize('pos_type', ['gqpe', 'lrpe'])
def test_padded_values_never_reach_real_tokens(pos_type):
    """Invariant: real outputs do not depend on the padded tokens' values (even NaN/inf)."""
    torch.manual_seed(0)
    blocks = [randomize_positional(PosMLPBlock(16, 7, gamma=4, pos_type=pos_type), seed=i).eval()
              for i in range(2)]
    real = torch.randn(2, 10, 12, 16)  # 10x12 map, window 7 -> padded to 14x14
    pad = (4, 2)
    outs = []
    for fill in ('zeros', 'noise', 'nonfinite'):
        x = torch.zeros(2, 14, 14, 16) if fill == 'zeros' else torch.randn(2, 14, 14, 16) * 100
        if fill == 'nonfinite':
            x[:, 10:, :] = float('nan')
            x[:, :, 12:] = float('inf')
        x[:, :10, :12] = real
        x = window_partition(x, 7)
        with torch.no_grad():
            for blk in blocks:
                x = blk(x, pad)
        outs.append(window_reverse(x, 7)[:, :10, :12])
    assert torch.isfinite(outs[0]).all()
    for other in outs[1:]:
        torch.testing.assert_close(other, outs[0], rtol=0, atol=0)


@pytest.mark.parametrize('pos_type', ['gqpe', 'lrpe'])
def test_padding_amount_does_not_matter_small_map(pos_type):
    """A map smaller than the window is padded, not the window shrunk; the result equals the unpadded model with
    the window equal to the map (same GQPE parameters, LRPE table and bias read at the same offsets/positions),
    whatever the amount of padding (windows 5, 7, 9 on a 4x4 map)."""
    torch.manual_seed(0)
    block_cfg = dict(gamma=4, mlp_ratio=4, pos_type=pos_type, generalized=True, drop_rate=0., act_cfg=dict(
        type='GELU'), with_cp=False)
    norm_cfg = dict(type='LN', eps=1e-6)

    def stage(window):
        return PosMLPStage(16, 16, 2, window, False, block_cfg, [0., 0.], norm_cfg).eval()

    ref = randomize_positional(stage(9))
    x = torch.randn(2, 16, 4, 4)
    with torch.no_grad():
        expected = ref(x)
    for window in (4, 5, 7):
        model = stage(window)
        sd = ref.state_dict()
        for key in list(sd):
            if key.endswith('token_proj_n_bias'):
                sd[key] = sd[key].view(9, 9)[:window, :window].reshape(1, -1, 1)
            elif key.endswith('relative_position_bias_table'):
                side = 2 * window - 1
                sd[key] = sd[key].view(17, 17, -1)[8 - (window - 1):8 + window, 8 - (window - 1):8 + window]
                sd[key] = sd[key].reshape(side * side, -1)
        model.load_state_dict(sd, strict=True)
        with torch.no_grad():
            torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-5)


def test_real_tokens_see_only_their_window():
    """Exact multiples (no padding) reproduce the window partition: perturbing one window leaves the others."""
    model = randomize_positional(PosMLP(arch=SMALL, window_size=4, out_indices=(0, ))).eval()
    x = torch.randn(1, 3, 32, 32)  # stage-0 map 8x8 = 2x2 windows of 4 (the stem sees 4x4 pixels per token)
    with torch.no_grad():
        base = model.stages[0](model.patch_embed(x))
        feat = model.patch_embed(x)
        feat[:, :, 4:, 4:] += 1.  # change window (1, 1) only
        changed = model.stages[0](feat)
    torch.testing.assert_close(changed[:, :, :4], base[:, :, :4], rtol=0, atol=0)
    torch.testing.assert_close(changed[:, :, :, :4], base[:, :, :, :4], rtol=0, atol=0)
    assert not torch.allclose(changed[:, :, 4:, 4:], base[:, :, 4:, 4:])


def test_frozen_stages_with_bn_stem():
    model = PosMLP(arch=SMALL, frozen_stages=2, out_indices=(0, 1, 2, 3))
    model.train()
    frozen = [model.patch_embed, model.stages[0], model.stages[1], model.norm0, model.norm1]
    for module in frozen:
        assert not module.training
        assert all(not p.requires_grad for p in module.parameters())
    assert all(not bn.training for bn in model.patch_embed.norms)
    for module in [model.stages[2], model.stages[3], model.norm2, model.norm3]:
        assert module.training
        assert all(p.requires_grad for p in module.parameters())
    mean_before = model.patch_embed.norms[0].running_mean.clone()
    model(torch.rand(2, 3, 64, 64))[-1].sum().backward()
    torch.testing.assert_close(model.patch_embed.norms[0].running_mean, mean_before)  # frozen BN in eval
    assert all(p.grad is None for p in model.stages[1].parameters())
    assert all(p.grad is not None for p in model.stages[2].parameters())
    only_stem = PosMLP(arch=SMALL, frozen_stages=0).train()
    assert not only_stem.patch_embed.training and only_stem.stages[0].training


def test_norm_eval_keeps_stem_bn_in_eval():
    model = PosMLP(arch=SMALL, norm_eval=True).train()
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert len(bns) == 3 and all(not m.training for m in bns)
    assert model.stages[0].blocks[0].training and all(p.requires_grad for p in bns[0].parameters())
    before = bns[0].running_mean.clone()
    model(torch.rand(2, 3, 64, 64))
    torch.testing.assert_close(bns[0].running_mean, before)
    model_no = PosMLP(arch=SMALL, norm_eval=False).train()
    assert all(m.training for m in model_no.modules() if isinstance(m, _BatchNorm))
    model_no(torch.rand(2, 3, 64, 64))
    assert not torch.equal(model_no.patch_embed.norms[0].running_mean, before)


@pytest.mark.parametrize('pos_type', ['gqpe', 'lrpe'])
def test_with_cp_same_outputs_and_grads(pos_type):
    torch.manual_seed(0)
    model = PosMLP(arch=SMALL, pos_type=pos_type, drop_path_rate=0., window_size=GOLDEN_WINDOWS,
                   out_indices=(2, 3), norm_eval=True)
    model.init_weights()
    randomize_positional(model)
    model_cp = copy.deepcopy(model)
    for blk in (b for s in model_cp.stages for b in s.blocks):
        blk.with_cp = True
    assert all(b.with_cp for s in PosMLP(arch=SMALL, with_cp=True).stages for b in s.blocks)
    x = torch.rand(2, 3, 60, 90)  # stage maps 15x23, ... : padding in every stage
    outs, outs_cp = model.train()(x), model_cp.train()(x)
    sum(o.pow(2).sum() for o in outs).backward()
    sum(o.pow(2).sum() for o in outs_cp).backward()
    for a, b in zip(outs, outs_cp):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    for (name, p), (_, q) in zip(model.named_parameters(), model_cp.named_parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=0, atol=1e-7, msg=name)


def test_drop_path_rates_increase_linearly():
    model = PosMLP(arch=SMALL, drop_path_rate=0.3, drop_rate=0.1)
    blocks = [b for s in model.stages for b in s.blocks]
    rates = [b.drop_path.drop_prob if hasattr(b.drop_path, 'drop_prob') else 0. for b in blocks]
    torch.testing.assert_close(torch.tensor(rates), torch.linspace(0, 0.3, 5))
    assert all(b.drop.p == 0.1 for b in blocks)


@pytest.mark.parametrize('pos_type', ['gqpe', 'lrpe'])
def test_init_weights(pos_type):
    model = PosMLP(arch=SMALL, pos_type=pos_type)
    blk = model.stages[2].blocks[0]
    blk.fc1.bias.data.fill_(1.)
    model.patch_embed.norms[0].weight.data.fill_(3.)
    model.init_weights()
    assert blk.fc1.bias.abs().sum() == 0 and model.stages[1].downsample.conv.bias.abs().sum() == 0
    assert 0.015 < blk.fc1.weight.std() < 0.025 and blk.fc1.weight.abs().max() <= 2
    assert 0.01 < model.patch_embed.convs[1].weight.std() < 0.03
    assert torch.all(model.patch_embed.norms[0].weight == 1) and torch.all(blk.norm.weight == 1)
    pos = blk.pos_map
    assert torch.all(pos.token_proj_n_bias == 0)
    if pos_type == 'gqpe':  # official: centres N(0, 0.01), spreads identity + N(0, 0.01)
        assert pos.attention_centers.abs().max() < 0.1 and pos.attention_centers.abs().sum() > 0
        assert (pos.attention_spreads - torch.eye(2)).abs().max() < 0.1
    else:  # official quirk: the LRPE table stays zero
        assert torch.all(pos.relative_position_bias_table == 0)


def test_derived_buffers_are_not_stored():
    for pos_type, buffer in (('gqpe', 'rel_indices'), ('lrpe', 'relative_position_index')):
        model = PosMLP(arch=SMALL, pos_type=pos_type)
        assert any(name.endswith(buffer) for name, _ in model.named_buffers())
        assert not any(buffer in key for key in model.state_dict())


@pytest.mark.parametrize('pos_type', ['gqpe', 'lrpe'])
def test_window_resize_on_load(pos_type):
    """A checkpoint saved at window 7 loads with strict=True into window 14 and back (and drops stale buffers)."""
    torch.manual_seed(0)
    m7 = randomize_positional(PosMLP(arch=SMALL, pos_type=pos_type, window_size=7))
    m14 = PosMLP(arch=SMALL, pos_type=pos_type, window_size=14)
    sd7 = m7.state_dict()
    # an official-style checkpoint also stores the derived buffers: they are dropped on load
    stale = 'rel_indices' if pos_type == 'gqpe' else 'window_relative_position_index'
    sd7_stale = dict(sd7, **{f'stages.0.blocks.0.pos_map.{stale}': torch.zeros(3)})
    m14.load_state_dict(sd7_stale, strict=True)
    p7, p14 = m7.stages[0].blocks[0].pos_map, m14.stages[0].blocks[0].pos_map
    assert p14.token_proj_n_bias.shape == (1, 196, 1)
    # the bias is resized as a w x w grid: a constant grid stays constant, and the mean is roughly kept
    assert abs(p14.token_proj_n_bias.mean() - p7.token_proj_n_bias.mean()) < 0.1
    if pos_type == 'gqpe':  # window independent: carried over unchanged
        torch.testing.assert_close(p14.attention_centers, p7.attention_centers, rtol=0, atol=0)
        torch.testing.assert_close(p14.attention_spreads, p7.attention_spreads, rtol=0, atol=0)
    else:  # offsets kept: the inner 13x13 of the 27x27 table is the old table, the rest zero
        t14 = p14.relative_position_bias_table.view(27, 27, -1)
        torch.testing.assert_close(t14[7:20, 7:20], p7.relative_position_bias_table.view(13, 13, -1))
        assert t14[:7].abs().sum() == 0 and t14[:, 20:].abs().sum() == 0
        # the mixing matrices agree on every offset the small window can express
        m = p14.mixing_matrix()
        assert torch.equal(m[:, 0, 0], p7.mixing_matrix()[:, 0, 0])
    # and back: 14 -> 7 (LRPE: centre crop recovers the original table exactly)
    back = PosMLP(arch=SMALL, pos_type=pos_type, window_size=7)
    back.load_state_dict(m14.state_dict(), strict=True)
    if pos_type == 'lrpe':
        torch.testing.assert_close(back.stages[0].blocks[0].pos_map.relative_position_bias_table,
                                   p7.relative_position_bias_table, rtol=0, atol=0)
    const = PosMLP(arch=SMALL, pos_type=pos_type, window_size=7)
    sd = const.state_dict()
    sd['stages.0.blocks.0.pos_map.token_proj_n_bias'] = torch.full((1, 196, 1), 0.25)
    const.load_state_dict(sd, strict=True)
    torch.testing.assert_close(const.stages[0].blocks[0].pos_map.token_proj_n_bias, torch.full((1, 49, 1), 0.25))
    with torch.no_grad():
        assert all(torch.isfinite(o).all() for o in m14.eval()(torch.rand(1, 3, 64, 64)))


def test_get_layer_depth():
    with torch.device('meta'):
        model = PosMLP(arch='tiny')
    n = 2 + 2 + 18 + 2 + 2
    assert model.get_layer_depth('backbone.patch_embed.norms.0.weight', 'backbone.') == (0, n)
    assert model.get_layer_depth('backbone.stages.0.blocks.0.pos_map.attention_centers', 'backbone.') == (1, n)
    assert model.get_layer_depth('backbone.stages.1.downsample.conv.weight', 'backbone.') == (2, n)
    assert model.get_layer_depth('backbone.stages.1.blocks.1.fc1.weight', 'backbone.') == (4, n)
    assert model.get_layer_depth('backbone.stages.3.downsample.norm.bias', 'backbone.') == (22, n)
    assert model.get_layer_depth('backbone.stages.3.blocks.1.fc2.bias', 'backbone.') == (24, n)
    assert model.get_layer_depth('backbone.norm3.weight', 'backbone.') == (n - 1, n)
    assert model.get_layer_depth('head.fc.weight', 'backbone.') == (n - 1, n)
    for name, _ in model.named_parameters():
        layer_id, num = model.get_layer_depth(name)
        assert 0 <= layer_id < num


@pytest.mark.parametrize('arch,gqpe,lrpe', [('tiny', 20_925_538, 21_397_554), ('small', 36_816_450, 37_288_466),
                                            ('base', 81_976_834, 82_448_850)])
def test_parameter_counts_gqpe_vs_lrpe(arch, gqpe, lrpe):
    """Backbone + 1000-class head. tiny/small GQPE = official; LRPE = count on the official code (21.398M / 37.288M;
    docs/papers.md, "PosMLP")."""
    counts = {}
    for pos_type in ('gqpe', 'lrpe'):
        with torch.device('meta'):
            model = PosMLP(arch=arch, pos_type=pos_type)
        c = model.embed_dims[-1]
        counts[pos_type] = sum(p.numel() for p in model.parameters()) + c * 1000 + 1000
    assert counts == dict(gqpe=gqpe, lrpe=lrpe)
    # the difference is exactly the table entries minus GQPE's 6 numbers per group, block by block
    diff = sum(d * ((2 * w - 1)**2 - 6) * g for d, w, g in zip([2, 2, 18, 2], [14, 14, 14, 7], [8, 16, 32, 64]))
    assert lrpe - gqpe == diff == 472_016
