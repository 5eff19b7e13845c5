"""MSMLP backbone behaviour, modelled on mmpretrain's backbone tests."""
import copy

import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from mmmixer.models import MSMLP
from mmmixer.models.layers import MixShiftBlock, split_channels

SMALL = dict(embed_dims=32, depths=[1, 1, 2, 1])


def test_arch_errors():
    with pytest.raises(ValueError, match=r"arch 'unknown' is not a preset; accepted: \['b', 'base'"):
        MSMLP(arch='unknown')
    with pytest.raises(ValueError, match=r"needs the keys \['depths', 'embed_dims'\].*missing \['depths'\]"):
        MSMLP(arch=dict(embed_dims=32))
    with pytest.raises(ValueError, match=r"unknown \['heads'\]"):
        MSMLP(arch=dict(embed_dims=32, depths=[1, 1, 1, 1], heads=[1]))
    with pytest.raises(ValueError, match='out_indices entry 4 is out of range'):
        MSMLP(arch=SMALL, out_indices=(0, 4))
    with pytest.raises(ValueError, match=r'frozen_stages must be in \[-1, 4\]'):
        MSMLP(arch=SMALL, frozen_stages=5)
    with pytest.raises(ValueError, match="shift_mode must be one of"):
        MSMLP(arch=SMALL, shift_mode='reflect')
    with pytest.raises(ValueError, match='mix_size needs one row per stage'):
        MSMLP(arch=SMALL, mix_size=[[1, 1, 3, 5, 7]])
    with pytest.raises(ValueError, match='odd kernel sizes'):
        MSMLP(arch=SMALL, mix_size=[[1, 1, 3, 5, 6]] * 4)
    with pytest.raises(ValueError, match='Cannot split 6 channels into 5'):
        MSMLP(arch=dict(embed_dims=6, depths=[1, 1, 1, 1]))


@pytest.mark.parametrize('arch,depths,dims', [('tiny', [3, 3, 9, 3], 96), ('s', [3, 3, 27, 3], 96),
                                              ('BASE', [3, 3, 27, 3], 128)])
def test_presets(arch, depths, dims):
    model = MSMLP(arch=arch)
    assert [len(s.blocks) for s in model.stages] == depths
    assert model.embed_dims == [dims * 2**i for i in range(4)]
    assert [blk.group_channels for blk in (model.stages[0].blocks[0], model.stages[3].blocks[0])] == [
        split_channels(dims, 5), split_channels(dims * 8, 5)
    ]
    assert model.stages[1].blocks[0].mix_size == [1, 3, 3, 5, 7]


def test_split_channels_matches_torch_chunk():
    for c in (96, 192, 384, 768, 128, 256, 512, 1024, 32, 23):
        assert split_channels(c, 5) == [t.shape[0] for t in torch.chunk(torch.zeros(c), 5)]


def test_input_errors():
    model = MSMLP(arch=SMALL)
    with pytest.raises(ValueError, match=r'must be 4-D \(B, C, H, W\), got shape \(3, 64, 64\)'):
        model(torch.rand(3, 64, 64))
    with pytest.raises(ValueError, match='input has 1 channels.*in_channels=3'):
        model(torch.rand(1, 1, 64, 64))
    with pytest.raises(ValueError, match=r'input size 31x64 is smaller than the total stride 32'):
        model(torch.rand(1, 3, 31, 64))


@pytest.mark.parametrize('size,expected', [((224, 224), [(56, 56), (28, 28), (14, 14), (7, 7)]),
                                           ((256, 320), [(64, 80), (32, 40), (16, 20), (8, 10)]),
                                           ((97, 131), [(25, 33), (13, 17), (7, 9), (4, 5)]),
                                           ((32, 32), [(8, 8), (4, 4), (2, 2), (1, 1)])])
@pytest.mark.parametrize('shift_mode', ['circular', 'zero'])
def test_dense_shapes(size, expected, shift_mode):
    model = MSMLP(arch=SMALL, out_indices=(0, 1, 2, 3), gap_before_final_norm=False, shift_mode=shift_mode)
    model.eval()
    with torch.no_grad():
        outs = model(torch.rand(2, 3, *size))
    assert isinstance(outs, tuple) and len(outs) == 4
    for i, (out, hw) in enumerate(zip(outs, expected)):
        assert out.shape == (2, 32 * 2**i, *hw)
        assert torch.isfinite(out).all()


def test_out_indices_and_pooling():
    # the default (every family) returns normalised maps, so a dense swap needs only type/arch/out_indices
    maps = MSMLP(arch=SMALL, out_indices=(1, -1)).eval()(torch.rand(2, 3, 64, 64))
    assert [o.shape for o in maps] == [(2, 64, 8, 8), (2, 256, 2, 2)]
    with pytest.raises(ValueError, match=r'gap_before_final_norm=True pools every returned stage.*out_indices='
                       r'\(1, 3\)'):
        MSMLP(arch=SMALL, out_indices=(1, -1), gap_before_final_norm=True)
    model = MSMLP(arch=SMALL, gap_before_final_norm=True).eval()
    outs = model(torch.rand(2, 3, 64, 64))
    assert [o.shape for o in outs] == [(2, 256)]
    assert hasattr(model, 'norm3') and not hasattr(model, 'norm0') and not hasattr(model, 'norm1')
    # pooled output == LayerNorm(mean over the map) of the dense path
    dense = MSMLP(arch=SMALL, out_indices=(3, ), gap_before_final_norm=False).eval()
    dense.load_state_dict(model.state_dict(), strict=False)
    x = torch.rand(1, 3, 64, 64)
    feat = dense.stages[3](dense.stages[2](dense.stages[1](dense.stages[0](
        dense.patch_embed(x)[0].transpose(1, 2).reshape(1, 32, 16, 16)))))
    torch.testing.assert_close(model(x)[0], model.norm3(feat.mean((2, 3))))


def test_zero_shift_equals_explicit_shift():
    """'zero' mode equals shifting with zero fill, then the conv; 'circular' equals torch.roll."""
    torch.manual_seed(1)
    for mode in ('zero', 'circular'):
        block = MixShiftBlock(20, shift_mode=mode).eval()
        x = torch.randn(2, 20, 6, 9)
        groups = torch.split(x, block.group_channels, 1)
        outs = []
        for xg, s, lr, td in zip(groups, block.shift_dist, block.dwconv_lr, block.dwconv_td):
            def shift(t, dim):
                if mode == 'circular':
                    return torch.roll(t, s, dim)
                r = torch.zeros_like(t)
                n = t.shape[dim]
                src = slice(max(0, -s), n - max(0, s))
                dst = slice(max(0, s), n - max(0, -s))
                idx_src = [slice(None)] * 4
                idx_dst = [slice(None)] * 4
                idx_src[dim], idx_dst[dim] = src, dst
                r[tuple(idx_dst)] = t[tuple(idx_src)]
                return r
            outs.append(lr(shift(xg, 3)) + td(shift(xg, 2)))
        torch.testing.assert_close(block.token_mix(x), torch.cat(outs, 1), rtol=0, atol=1e-6)
    # the two modes differ only within |shift| <= 2 tokens of the border
    zero = MixShiftBlock(20, shift_mode='zero').eval()
    circ = copy.deepcopy(zero)
    circ.shift_mode = 'circular'
    x = torch.randn(1, 20, 16, 16)
    dz, dc = zero.token_mix(x), circ.token_mix(x)
    assert not torch.allclose(dz, dc)
    torch.testing.assert_close(dz[..., 5:-5, 5:-5], dc[..., 5:-5, 5:-5])


def test_frozen_stages():
    model = MSMLP(arch=SMALL, frozen_stages=2, out_indices=(0, 1, 2, 3), gap_before_final_norm=False)
    model.train()
    frozen = [model.patch_embed, model.stages[0], model.stages[1], model.norm0, model.norm1]
    for module in frozen:
        assert not module.training
        assert all(not p.requires_grad for p in module.parameters())
    for module in [model.stages[2], model.stages[3], model.norm2, model.norm3]:
        assert module.training
        assert all(p.requires_grad for p in module.parameters())
    # frozen stages get no gradient
    model(torch.rand(1, 3, 64, 64))[-1].sum().backward()
    assert all(p.grad is None for p in model.stages[1].parameters())
    assert all(p.grad is not None for p in model.stages[2].parameters())
    only_stem = MSMLP(arch=SMALL, frozen_stages=0).train()
    assert not only_stem.patch_embed.training and only_stem.stages[0].training


def test_norm_eval_keeps_batchnorm_in_eval():
    model = MSMLP(arch=SMALL, norm_eval=True)
    model.stages[0].add_module('bn_probe', torch.nn.BatchNorm2d(4))
    model.train()
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert bns and all(not m.training for m in bns)
    assert model.stages[0].blocks[0].training
    model_no = MSMLP(arch=SMALL, norm_eval=False)
    model_no.stages[0].add_module('bn_probe', torch.nn.BatchNorm2d(4))
    assert model_no.train().stages[0].bn_probe.training


def test_with_cp_same_outputs_and_grads():
    torch.manual_seed(0)
    model = MSMLP(arch=SMALL, drop_path_rate=0., out_indices=(2, 3), gap_before_final_norm=False)
    model.init_weights()
    model_cp = copy.deepcopy(model)
    for blk in (b for s in model_cp.stages for b in s.blocks):
        blk.with_cp = True
    assert all(b.with_cp for s in MSMLP(arch=SMALL, with_cp=True).stages for b in s.blocks)
    x = torch.rand(2, 3, 64, 96)
    outs, outs_cp = model(x), model_cp(x)
    sum(o.pow(2).sum() for o in outs).backward()
    sum(o.pow(2).sum() for o in outs_cp).backward()
    for a, b in zip(outs, outs_cp):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    for (name, p), (_, q) in zip(model.named_parameters(), model_cp.named_parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=0, atol=1e-7, msg=name)


def test_drop_path_rates_increase_linearly():
    model = MSMLP(arch=SMALL, drop_path_rate=0.3)
    rates = [b.drop_path.drop_prob if hasattr(b.drop_path, 'drop_prob') else 0.
             for s in model.stages for b in s.blocks]
    torch.testing.assert_close(torch.tensor(rates), torch.linspace(0, 0.3, 5))


def test_init_weights():
    model = MSMLP(arch=SMALL)
    model.stages[0].blocks[0].pwconv1.bias.data.fill_(1.)
    model.init_weights()
    blk = model.stages[0].blocks[0]
    assert blk.pwconv1.bias.abs().sum() == 0
    assert 0.01 < blk.pwconv1.weight.std() < 0.03
    assert torch.all(blk.gamma == 1e-6)
    assert torch.all(blk.norm.weight == 1)


def test_get_layer_depth():
    model = MSMLP(arch='tiny')
    n = 3 + 3 + 9 + 3 + 2
    assert model.get_layer_depth('backbone.patch_embed.projection.weight', 'backbone.') == (0, n)
    assert model.get_layer_depth('backbone.stages.0.blocks.0.gamma', 'backbone.') == (1, n)
    assert model.get_layer_depth('backbone.stages.1.downsample.projection.weight', 'backbone.') == (3, n)
    assert model.get_layer_depth('backbone.stages.1.blocks.2.pwconv1.weight', 'backbone.') == (6, n)
    assert model.get_layer_depth('backbone.stages.3.blocks.2.norm.bias', 'backbone.') == (18, n)
    assert model.get_layer_depth('backbone.norm3.weight', 'backbone.') == (n - 1, n)
    assert model.get_layer_depth('head.fc.weight', 'backbone.') == (n - 1, n)
    # every parameter gets an id in range
    for name, _ in model.named_parameters():
        layer_id, num = model.get_layer_depth(name)
        assert 0 <= layer_id < num


def test_token_mix_casts_the_map_once_under_autocast():
    """Under bfloat16 autocast the whole map is cast once before the groups are split and shifted (the convs would
    otherwise cast every group twice, once per branch); the result is bit-identical to casting per conv."""
    from torch.utils._python_dispatch import TorchDispatchMode

    casts = []

    class CountCasts(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func is torch.ops.aten._to_copy.default and args[0].dim() == 4 and args[0].shape[0] == 2:
                casts.append(tuple(args[0].shape))
            return func(*args, **(kwargs or {}))

    block = MixShiftBlock(20).eval()
    x = torch.randn(2, 20, 9, 11)
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        with CountCasts():
            out = block.token_mix(x)
        per_conv = torch.cat([
            block._shift_mix(g, s, lr, 3) + block._shift_mix(g, s, td, 2) for g, s, lr, td in zip(
                torch.split(x, block.group_channels, 1), block.shift_dist, block.dwconv_lr, block.dwconv_td)], 1)
    assert casts == [(2, 20, 9, 11)]
    assert out.dtype == torch.bfloat16 and torch.equal(out, per_conv)


def test_blocks_compute_in_channels_last_and_outputs_are_contiguous():
    """The stem hands the stages a channels_last map (a view of the patch embedding's tokens), the MS blocks keep
    it (depthwise convs and the channel MLP run fastest on it), and the returned dense maps are contiguous NCHW."""
    model = MSMLP(arch=dict(embed_dims=20, depths=[1, 1, 1, 1]), out_indices=(0, 1, 2, 3)).eval()
    x = torch.randn(2, 3, 64, 96)
    stem = model.forward_stem(x)
    assert stem.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        assert model.forward_stage(0, stem, {}).is_contiguous(memory_format=torch.channels_last)
        outs = model(x)
        # the same function on contiguous NCHW input (the layout the blocks had before)
        block = model.stages[0].blocks[0]
        ref = block(stem.contiguous())
        torch.testing.assert_close(ref, block(stem), rtol=0, atol=0)
    assert all(o.is_contiguous() for o in outs)
    assert [tuple(o.shape) for o in outs] == [(2, 20, 16, 24), (2, 40, 8, 12), (2, 80, 4, 6), (2, 160, 2, 3)]
