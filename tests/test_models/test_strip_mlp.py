"""StripMLP backbone behaviour (modelled on test_ms_mlp.py) plus the any-input-size strategy of the CGSMM."""
import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch.nn.modules.batchnorm import _BatchNorm

from mmmixer.models import StripMLP
from mmmixer.models.layers.strip_mixing import CGSMM, window_starts

# widths 16/32/64/128 (channel patches 4 -> weight groups 2/4/8/16), strip lengths 16/8/4/2 at img_size 64
SMALL = dict(embed_dims=16, depths=[1, 1, 1, 1])


def randomize(module, seed=0):
    """Move every parameter and BN statistic away from its init so that misplaced weights show."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
        for m in module.modules():
            if isinstance(m, _BatchNorm):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
    return module


def test_arch_errors():
    with pytest.raises(ValueError, match=r"arch 'unknown' is not a preset; accepted: \['b', 'base'"):
        StripMLP(arch='unknown')
    with pytest.raises(ValueError, match=r"needs the keys \['depths', 'embed_dims'\].*missing \['depths'\]"):
        StripMLP(arch=dict(embed_dims=16))
    with pytest.raises(ValueError, match='int embed_dims and 4 depths'):
        StripMLP(arch=dict(embed_dims=16, depths=[1, 1, 1]))
    with pytest.raises(ValueError, match='img_size 100 must be a multiple of 32'):
        StripMLP(arch=SMALL, img_size=100)
    with pytest.raises(ValueError, match=r'20 channels gives its CGSMM 10.0 channels.*4 channel patches'):
        StripMLP(arch=dict(embed_dims=20, depths=[1, 1, 1, 1]))
    with pytest.raises(ValueError, match="channel_patches must be 'auto', an int or 4 ints"):
        StripMLP(arch=SMALL, channel_patches=[2, 2])
    with pytest.raises(ValueError, match="drop_path_mode must be one of"):
        StripMLP(arch=SMALL, drop_path_mode='cosine')
    with pytest.raises(ValueError, match='out_indices entry 4 is out of range'):
        StripMLP(arch=SMALL, out_indices=(0, 4))
    with pytest.raises(ValueError, match=r'frozen_stages must be in \[-1, 4\]'):
        StripMLP(arch=SMALL, frozen_stages=5)
    with pytest.raises(ValueError, match='cannot be split into patches=3'):
        CGSMM(16, 8, 3)


@pytest.mark.parametrize('arch,dims,depths,patches', [
    ('light_tiny', 80, [2, 2, 6, 2], 2), ('T*', 80, [2, 2, 6, 2], 2), ('tiny', 80, [2, 2, 12, 2], 2),
    ('s', 96, [2, 2, 18, 2], 4), ('BASE', 112, [2, 2, 18, 2], 4)])
def test_presets(arch, dims, depths, patches):
    with torch.device('meta'):
        model = StripMLP(arch=arch)
    assert [len(s.blocks) for s in model.stages] == depths
    assert model.embed_dims == [dims * 2**i for i in range(4)]
    assert model.strip_lengths == [56, 28, 14, 7]
    assert model.channel_patches == [patches] * 4
    for i, stage in enumerate(model.stages):
        cgsmm = stage.blocks[0].token_mixing.cgsmm
        groups = dims * 2**i // 2 // patches
        length = model.strip_lengths[i]
        # official shapes (docs/papers.md, "Strip-MLP"): proj_* (G*L, L, 1, 3), tables (2L+1, C/2)
        assert cgsmm.row_mix.weight.shape == cgsmm.col_mix.weight.shape == (groups * length, length, 1, 3)
        assert cgsmm.row_pos.shape == cgsmm.col_pos.shape == (2 * length + 1, dims * 2**i // 2)
        assert all(abs(b.drop_path.drop_prob - 0.1) < 1e-12 for b in stage.blocks)  # official constant
    # MLP-DINO's rule (always 2 patches) is available too
    with torch.device('meta'):
        dino = StripMLP(arch='small', channel_patches=2, img_size=448)
    assert dino.stages[0].blocks[0].token_mixing.cgsmm.row_mix.weight.shape == (24 * 112, 112, 1, 3)


def test_window_starts():
    assert window_starts(56, 56) == [0]
    assert window_starts(20, 56) == [0]
    assert window_starts(57, 56) == [0, 1]
    assert window_starts(112, 56) == [0, 56]
    assert window_starts(304, 56) == [0, 49, 99, 148, 198, 248]
    for size in range(1, 400):
        for length in (7, 14, 28, 56):
            starts = window_starts(size, length)
            assert starts[0] == 0 and len(starts) == max(1, math.ceil(size / length))
            if size >= length:  # cover the axis, the last window ends at the border, no gap
                assert starts[-1] + length == size
                assert all(0 < b - a <= length for a, b in zip(starts, starts[1:]))


def test_input_errors():
    model = StripMLP(arch=SMALL, img_size=64)
    with pytest.raises(ValueError, match=r'must be 4-D \(B, C, H, W\), got shape \(3, 64, 64\)'):
        model(torch.rand(3, 64, 64))
    with pytest.raises(ValueError, match='input has 1 channels.*in_channels=3'):
        model(torch.rand(1, 1, 64, 64))
    with pytest.raises(ValueError, match=r'input size 31x64 is smaller than the total stride 32'):
        model(torch.rand(1, 3, 31, 64))


def _official_row_mix(cgsmm, t):
    """Official ``proj_h`` call (Strip_MLP models/strip_mlp.py layout) on (N, C, h, L): any height h."""
    n, c, h, w = t.shape
    p, g = cgsmm.patches, cgsmm.groups
    th = t.reshape(n, p, g, h, w).permute(0, 1, 3, 2, 4).reshape(n, p, h, g * w)
    y = cgsmm.row_mix(th.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
    return y.reshape(n, p, h, g, w).permute(0, 1, 3, 2, 4).reshape(n, c, h, w)


def _official_col_mix(cgsmm, t):
    """Official ``proj_w`` call on (N, C, L, w): any width w."""
    n, c, h, w = t.shape
    y = cgsmm.col_mix(t.reshape(n, cgsmm.patches, cgsmm.groups * h, w).permute(0, 2, 1, 3)).permute(0, 2, 1, 3)
    return y.reshape(n, c, h, w)


def _official_pos(table, length):
    """Official ``RelativePosition(L, L)`` map, (C, L, L), by explicit loops."""
    pos = torch.empty(table.shape[1], length, length)
    for h in range(length):
        for w in range(length):
            pos[:, h, w] = table[w - h + length]
    return pos


def _reference_cgsmm(m, x):
    """The documented any-size CGSMM, written with the official layer calls and explicit window loops."""
    length = m.strip_length
    n, c, height, width = x.shape

    def windowed(fn, t, axis):  # strip MLP on trained-length windows along axis (3: W, 2: H), averaged
        size = t.shape[axis]
        pad = [0, max(length - size, 0), 0, 0] if axis == 3 else [0, 0, 0, max(length - size, 0)]
        t = F.pad(t, pad)
        acc, count = torch.zeros_like(t), torch.zeros(t.shape[axis])
        for s in window_starts(size, length):
            sl = (Ellipsis, slice(s, s + length)) if axis == 3 else (Ellipsis, slice(s, s + length), slice(None))
            acc[sl] += fn(t[sl])
            count[s:s + length] += 1
        acc = acc / (count if axis == 3 else count[:, None])
        return acc[..., :size] if axis == 3 else acc[..., :size, :]

    def position(fn, table):  # response to the window position map (bias removed), averaged on the 2-D grid
        pos = _official_pos(table, length)[None]
        resp = (fn(pos) - fn(torch.zeros_like(pos)))[0]
        acc = torch.zeros(c, max(height, length), max(width, length))
        count = torch.zeros_like(acc)
        for sh in window_starts(height, length):
            for sw in window_starts(width, length):
                acc[:, sh:sh + length, sw:sw + length] += resp
                count[:, sh:sh + length, sw:sw + length] += 1
        return (acc / count)[:, :height, :width]

    row_fn, col_fn = (lambda t: _official_row_mix(m, t)), (lambda t: _official_col_mix(m, t))
    rows = windowed(row_fn, x, 3) + position(row_fn, m.row_pos)
    y = m.act(m.row_norm(m.row_fuse(torch.cat([rows, x], 1))))
    cols = windowed(col_fn, y, 2) + position(col_fn, m.col_pos)
    return m.col_fuse(torch.cat([x, cols], 1))


@pytest.mark.parametrize('size', [(8, 8), (5, 7), (8, 13), (17, 9), (23, 30)])
def test_windowed_cgsmm_matches_reference(size):
    """Every size: the CGSMM equals the documented windowed definition built from the official layer calls."""
    cgsmm = randomize(CGSMM(16, 8, 2)).eval()
    x = torch.randn(2, 16, *size)
    with torch.no_grad():
        torch.testing.assert_close(cgsmm(x), _reference_cgsmm(cgsmm, x), rtol=1e-4, atol=1e-5)


def test_trained_size_is_the_official_computation():
    """At L x L the official op order runs: strip MLP of (x + position map), one window."""
    cgsmm = randomize(CGSMM(16, 8, 4)).eval()
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        rows = _official_row_mix(cgsmm, x + _official_pos(cgsmm.row_pos, 8))
        y = cgsmm.act(cgsmm.row_norm(cgsmm.row_fuse(torch.cat([rows, x], 1))))
        cols = _official_col_mix(cgsmm, y + _official_pos(cgsmm.col_pos, 8))
        official = cgsmm.col_fuse(torch.cat([x, cols], 1))
        torch.testing.assert_close(cgsmm(x), official, rtol=0, atol=1e-5)
    # every CGSMM of a model sees its trained size at img_size (here 224 with a small arch)
    model = StripMLP(arch=SMALL, img_size=224).eval()
    seen = []
    for m in model.modules():
        if isinstance(m, CGSMM):
            m.register_forward_pre_hook(lambda mod, args: seen.append((tuple(args[0].shape[-2:]), mod.strip_length)))
    with torch.no_grad():
        model(torch.rand(1, 3, 224, 224))
    assert [s for s, _ in seen] == [(56, 56), (28, 28), (14, 14), (7, 7)]
    assert all(hw == (length, length) for hw, length in seen)


@pytest.mark.parametrize('size,expected', [((97, 131), [(25, 33), (13, 17), (7, 9), (4, 5)]),
                                           ((32, 200), [(8, 50), (4, 25), (2, 13), (1, 7)]),
                                           ((160, 96), [(40, 24), (20, 12), (10, 6), (5, 3)])])
def test_dense_any_size(size, expected):
    """Odd, non-square, smaller and larger than the training size (64 px); batch 1 and 2 agree per image."""
    model = randomize(StripMLP(arch=SMALL, img_size=64, out_indices=(0, 1, 2, 3),
                               gap_before_final_norm=False)).eval()
    x = torch.rand(2, 3, *size)
    with torch.no_grad():
        outs = model(x)
        single = model(x[1:])
    assert isinstance(outs, tuple) and len(outs) == 4
    for i, (out, one, hw) in enumerate(zip(outs, single, expected)):
        assert out.shape == (2, 16 * 2**i, *hw) and one.shape == (1, 16 * 2**i, *hw)
        assert torch.isfinite(out).all()
        torch.testing.assert_close(out[1:], one, rtol=1e-4, atol=1e-5)  # no interaction between batch items


def test_any_size_trains():
    """Training-mode forward/backward at an odd size reaches every parameter (windows and position terms)."""
    model = StripMLP(arch=SMALL, img_size=64, out_indices=(0, 1, 2, 3), gap_before_final_norm=False,
                     drop_path_rate=0.)
    model.train()
    sum(o.square().mean() for o in model(torch.rand(2, 3, 97, 131))).backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    # GRN gamma/beta start at 0 and still get gradients; nothing is disconnected
    assert no_grad == []


def test_out_indices_and_pooling():
    with pytest.raises(ValueError, match='gap_before_final_norm=True pools every returned stage'):
        StripMLP(arch=SMALL, img_size=64, out_indices=(1, -1), gap_before_final_norm=True)
    model = randomize(StripMLP(arch=SMALL, img_size=64, gap_before_final_norm=True)).eval()
    x = torch.rand(2, 3, 64, 64)
    outs = model(x)
    assert [o.shape for o in outs] == [(2, 128)]
    assert hasattr(model, 'norm3') and not hasattr(model, 'norm0') and not hasattr(model, 'norm1')
    dense = StripMLP(arch=SMALL, img_size=64).eval()  # default: normalised maps
    dense.load_state_dict(model.state_dict(), strict=True)
    dense_outs = dense(x)
    for pooled, fmap in zip(outs, dense_outs):
        # official head order: BatchNorm2d on the map, then the spatial mean
        torch.testing.assert_close(pooled, fmap.mean((2, 3)))
    # in training mode the BN statistics are taken over all positions (BN on the map, not on the pooled vector)
    model.train()
    bn_map = torch.nn.functional.batch_norm
    feats = {}
    model.norm3.register_forward_pre_hook(lambda m, a: feats.setdefault('x', a[0]))
    out = model(x)[0]
    ref = bn_map(feats['x'], None, None, model.norm3.weight, model.norm3.bias, training=True).mean((2, 3))
    torch.testing.assert_close(out, ref)


def test_frozen_stages():
    model = StripMLP(arch=SMALL, img_size=64, frozen_stages=3, out_indices=(0, 1, 2, 3),
                     gap_before_final_norm=False)
    model.train()
    frozen = [model.patch_embed, model.stages[0], model.stages[1], model.stages[2], model.norm0, model.norm1,
              model.norm2, model.shortcut_1to2]
    for module in frozen:
        assert not module.training
        assert all(not p.requires_grad for p in module.parameters())
    for module in [model.stages[3], model.norm3, model.shortcut_1to3, model.shortcut_2to3]:
        assert module.training
        assert all(p.requires_grad for p in module.parameters())
    model(torch.rand(1, 3, 64, 64))[-1].sum().backward()
    assert all(p.grad is None for p in model.stages[2].parameters())
    assert all(p.grad is not None for p in model.stages[3].parameters())
    assert model.shortcut_2to3.weight.grad is not None
    only_stem = StripMLP(arch=SMALL, img_size=64, frozen_stages=0).train()
    assert not only_stem.patch_embed.training and only_stem.stages[0].training
    assert only_stem.shortcut_1to2.weight.requires_grad


def test_norm_eval_freezes_batchnorm_statistics():
    model = StripMLP(arch=SMALL, img_size=64, norm_eval=True, gap_before_final_norm=False)
    model.train()
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert len(bns) == 3 * 4 + 1  # dw_norm, in_norm, cgsmm.row_norm per block, and norm3
    assert all(not m.training for m in bns)
    assert model.stages[0].blocks[0].training
    before = copy.deepcopy(model.state_dict())
    model(torch.rand(2, 3, 80, 48))
    for key, value in model.state_dict().items():
        if 'running' in key or 'num_batches' in key:
            assert torch.equal(value, before[key]), key
    # without norm_eval the statistics move
    model_no = StripMLP(arch=SMALL, img_size=64, norm_eval=False).train()
    mean0 = model_no.stages[0].blocks[0].token_mixing.dw_norm.running_mean.clone()
    assert model_no.stages[0].blocks[0].token_mixing.dw_norm.training
    model_no(torch.rand(2, 3, 64, 64))
    assert not torch.equal(mean0, model_no.stages[0].blocks[0].token_mixing.dw_norm.running_mean)


def test_with_cp_same_outputs_and_grads():
    torch.manual_seed(0)
    model = StripMLP(arch=SMALL, img_size=64, drop_path_rate=0., out_indices=(2, 3), gap_before_final_norm=False)
    model_cp = copy.deepcopy(model)
    for blk in (b for s in model_cp.stages for b in s.blocks):
        blk.with_cp = True
    assert all(b.with_cp for s in StripMLP(arch=SMALL, img_size=64, with_cp=True).stages for b in s.blocks)
    x = torch.rand(2, 3, 64, 96)
    outs, outs_cp = model(x), model_cp(x)
    sum(o.pow(2).sum() for o in outs).backward()
    sum(o.pow(2).sum() for o in outs_cp).backward()
    for a, b in zip(outs, outs_cp):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    for (name, p), (_, q) in zip(model.named_parameters(), model_cp.named_parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-5, atol=1e-6, msg=name)


def test_drop_path_modes():
    uniform = StripMLP(arch=SMALL, img_size=64)  # official default: 0.1 in every block
    assert [b.drop_path.drop_prob for s in uniform.stages for b in s.blocks] == [0.1] * 4
    linear = StripMLP(arch=SMALL, img_size=64, drop_path_rate=0.3, drop_path_mode='linear')
    rates = [b.drop_path.drop_prob if hasattr(b.drop_path, 'drop_prob') else 0.
             for s in linear.stages for b in s.blocks]
    torch.testing.assert_close(torch.tensor(rates), torch.linspace(0, 0.3, 4))
    none = StripMLP(arch=SMALL, img_size=64, drop_path_rate=0.)
    assert all(isinstance(b.drop_path, torch.nn.Identity) for s in none.stages for b in s.blocks)


def test_mlp_ratio_sets_grn_width():
    model = StripMLP(arch=SMALL, img_size=64, mlp_ratio=2)
    mixing = model.stages[1].blocks[0].channel_mixing
    assert mixing.fc1.out_features == mixing.grn.gamma.numel() == 64
    model(torch.rand(1, 3, 64, 64))  # the official code would fail here (GRN fixed at 3C)


def test_init_weights():
    torch.manual_seed(0)
    model = StripMLP(arch='tiny')
    model.init_weights()  # init_cfg None: the construction-time (official PyTorch default) init stays
    cgsmm = model.stages[0].blocks[0].token_mixing.cgsmm
    assert 0.015 < cgsmm.row_pos.std() < 0.025 and cgsmm.row_pos.abs().max() < 0.2
    grn = model.stages[0].blocks[0].channel_mixing.grn
    assert torch.all(grn.gamma == 0) and torch.all(grn.beta == 0)
    # PyTorch default conv init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = L * 3 for the strip MLPs
    bound = 1 / math.sqrt(56 * 3)
    assert cgsmm.row_mix.weight.abs().max() <= bound and cgsmm.row_mix.weight.abs().max() > 0.9 * bound
    custom = StripMLP(arch=SMALL, img_size=64, init_cfg=dict(type='Constant', layer='Conv2d', val=0.5, bias=0.))
    custom.init_weights()
    assert torch.all(custom.patch_embed.weight == 0.5)


def test_get_layer_depth():
    with torch.device('meta'):
        model = StripMLP(arch='tiny')
    n = 2 + 2 + 12 + 2 + 2
    assert model.get_layer_depth('backbone.patch_embed.weight', 'backbone.') == (0, n)
    assert model.get_layer_depth('backbone.stages.0.blocks.0.token_mixing.dw_conv.weight', 'backbone.') == (1, n)
    assert model.get_layer_depth('backbone.stages.1.downsample.weight', 'backbone.') == (2, n)
    assert model.get_layer_depth('backbone.stages.1.blocks.1.channel_mixing.fc1.weight', 'backbone.') == (4, n)
    assert model.get_layer_depth('backbone.shortcut_1to2.weight', 'backbone.') == (4, n)
    assert model.get_layer_depth('backbone.stages.2.downsample.weight', 'backbone.') == (4, n)
    assert model.get_layer_depth('backbone.shortcut_1to3.weight', 'backbone.') == (16, n)
    assert model.get_layer_depth('backbone.shortcut_2to3.weight', 'backbone.') == (16, n)
    assert model.get_layer_depth('backbone.stages.3.blocks.1.token_mixing.cgsmm.row_pos', 'backbone.') == (18, n)
    assert model.get_layer_depth('backbone.norm3.weight', 'backbone.') == (n - 1, n)
    assert model.get_layer_depth('head.fc.weight', 'backbone.') == (n - 1, n)
    for name, _ in model.named_parameters():
        layer_id, num = model.get_layer_depth(name)
        assert 0 <= layer_id < num


def test_pointwise_conv_is_conv_of_concatenation():
    """The 1x1 convs run as matrix products on channels-last views, with an eval-mode BatchNorm folded in: the same
    function as ``norm(conv(cat(inputs)))`` (forward within 1e-5, and gradients in training mode), for channels_last
    and contiguous inputs."""
    from mmmixer.models.layers.strip_mixing import pointwise_conv
    conv = torch.nn.Conv2d(24, 16, 1)
    norm = randomize(torch.nn.BatchNorm2d(16))
    randomize(conv, seed=1)
    a = torch.randn(2, 8, 5, 7).contiguous(memory_format=torch.channels_last)
    b = torch.randn(2, 16, 5, 7)
    for module in (norm.eval(), None):
        ref = conv(torch.cat([a, b], 1)) if module is None else module(conv(torch.cat([a, b], 1)))
        out = pointwise_conv([a, b], conv, module)
        assert out.is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(out, ref, rtol=0, atol=1e-5)
    no_bias = torch.nn.Conv2d(8, 16, 1, bias=False)
    torch.testing.assert_close(pointwise_conv([a], no_bias), no_bias(a), rtol=0, atol=1e-5)
    norm.train()  # training: batch statistics, nothing folded; gradients as the plain layers
    a.requires_grad_(True)
    out = pointwise_conv([a, b], conv, norm)
    grad = torch.autograd.grad(out.square().sum(), [a, conv.weight])
    a2 = a.detach().clone().requires_grad_(True)
    ref = norm(conv(torch.cat([a2, b], 1)))
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-5)
    ref_grad = torch.autograd.grad(ref.square().sum(), [a2, conv.weight])
    for g, r in zip(grad, ref_grad):
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-4)


def test_mixers_keep_the_autocast_dtype():
    """Under bfloat16 autocast the small float32 factors (GRN scale, LSMM weights, CGSMM position maps) take the
    maps' dtype: a float32 factor would promote the whole map to float32 (an extra pass and a cast back before the
    next matmul). In float32 the results are unchanged."""
    from mmmixer.models.layers.strip_mixing import GRN, LSMM
    torch.manual_seed(0)
    grn, lsmm, cgsmm = GRN(8), LSMM(8), CGSMM(8, strip_length=6, patches=2)
    with torch.no_grad():
        grn.gamma.normal_(), grn.beta.normal_()
    cgsmm.eval()
    x = torch.randn(2, 8, 6, 6)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        assert grn(x.permute(0, 2, 3, 1).bfloat16()).dtype == torch.bfloat16
        assert lsmm(x.bfloat16()).dtype == torch.bfloat16
        out = cgsmm(x.bfloat16())
    assert out.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()
    torch.testing.assert_close(out.float(), cgsmm(x), rtol=0.1, atol=0.1)
    assert grn(x.permute(0, 2, 3, 1)).dtype == lsmm(x).dtype == torch.float32
