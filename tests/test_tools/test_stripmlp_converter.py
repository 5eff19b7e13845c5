"""Official Strip-MLP weights -> mmmixer: golden logits, full key coverage, parameter counts, and 224-px
checkpoints loading completely into backbones used at other input sizes."""
import json
import os.path as osp
import subprocess
import sys

import pytest
import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from helpers_mmmixer import REPO, build_from_config, official_state_from_listing  # noqa: E402

from mmmixer.models import StripMLP  # noqa: E402
from mmmixer.models.backbones.strip_mlp import convert_official_stripmlp  # noqa: E402

CONVERTER = osp.join(REPO, 'tools', 'model_converters', 'stripmlp_to_mmmixer.py')
ARCHS = ['light_tiny', 'tiny', 'small', 'base']
CONFIG = {'light_tiny': 'stripmlp-light-tiny_8xb128_in1k.py', 'tiny': 'stripmlp-tiny_8xb128_in1k.py',
          'small': 'stripmlp-small_8xb128_in1k.py', 'base': 'stripmlp-base_8xb128_in1k.py'}


def convert_file(src, dst):
    return subprocess.run([sys.executable, CONVERTER, str(src), str(dst)], capture_output=True, text=True,
                          check=True).stdout


def test_golden_logits(golden, tmp_path):
    """Converted official checkpoint + our classifier (tiny config with the golden arch) = official logits."""
    with open(osp.join(golden, 'stripmlp_small-c40-random.json')) as f:
        meta = json.load(f)
    kwargs = meta['official_constructor_kwargs']
    dst = tmp_path / 'converted.pth'
    out = convert_file(osp.join(golden, 'stripmlp_small-c40-random.official.pth'), dst)
    assert f'converted {len(meta["state_dict"])} tensors' in out

    def golden_arch(cfg):
        cfg.model.backbone.arch = dict(embed_dims=kwargs['embed_dim'], depths=kwargs['layers'])
        cfg.model.backbone.img_size = kwargs['img_size']
        cfg.model.head.num_classes = kwargs['num_classes']
        cfg.model.head.in_channels = kwargs['embed_dim'] * 8

    model, _ = build_from_config('stripmlp-tiny_8xb128_in1k.py', golden_arch)
    assert sum(p.numel() for p in model.parameters()) == meta['num_params']
    ckpt = torch.load(dst, weights_only=True)
    assert ckpt['meta']['arch'] == dict(embed_dims=40, depths=[1, 1, 2, 1])
    assert ckpt['meta']['img_size'] == 64 and ckpt['meta']['channel_patches'] == 'auto'
    # stage 1 (40 channels) uses 4 channel patches, stages 2-4 use 2: the official rule
    assert model.backbone.channel_patches == [4, 2, 2, 2]
    model.load_state_dict(ckpt['state_dict'], strict=True)
    io = torch.load(osp.join(golden, 'stripmlp_small-c40-random.io.pth'), weights_only=True)
    model.eval()
    with torch.no_grad():
        logits = model(io['input'], mode='tensor')
    diff = (logits - io['logits']).abs().max().item()
    print(f'stripmlp golden max-abs-diff {diff:.3g}')
    assert diff <= 1e-4


@pytest.mark.parametrize('arch', ARCHS)
def test_full_key_listing_maps_completely(golden, arch):
    official, listing = official_state_from_listing(osp.join(golden, f'stripmlp_{arch}.keys.json'))
    converted = convert_official_stripmlp(official)
    kwargs = listing['official_constructor_kwargs']
    assert converted['arch'] == dict(embed_dims=kwargs['embed_dim'], depths=kwargs['layers'])
    assert converted['img_size'] == kwargs['img_size'] == 224
    assert converted['channel_patches'] == 'auto'
    assert len(converted['state_dict']) == len(official)  # no key dropped
    with torch.device('meta'):
        model, _ = build_from_config(CONFIG[arch])
    ours = model.state_dict()
    assert set(converted['state_dict']) == set(ours), sorted(set(converted['state_dict']) ^ set(ours))[:10]
    for key, value in converted['state_dict'].items():
        assert value.shape == ours[key].shape, key
    assert sum(p.numel() for p in model.parameters()) == listing['num_params']


@pytest.mark.parametrize('arch,expected', [('light_tiny', 18_243_920), ('tiny', 24_903_920),
                                           ('small', 42_568_600), ('base', 57_216_480)])
def test_parameter_counts(arch, expected):
    with torch.device('meta'):
        model, _ = build_from_config(CONFIG[arch])
    assert sum(p.numel() for p in model.parameters()) == expected


def test_mlp_dino_spelling(golden):
    """MLP-DINO names the column strip MLP ``proh_w`` and has no head: same tensors, nothing left random."""
    official = torch.load(osp.join(golden, 'stripmlp_small-c40-random.official.pth'), weights_only=True)['model']
    reference = convert_official_stripmlp(official)['state_dict']
    dino = {k.replace('.proj_w.', '.proh_w.'): v for k, v in official.items() if not k.startswith('head.')}
    assert any('.proh_w.' in k for k in dino)
    converted = convert_official_stripmlp(dino)['state_dict']
    assert set(converted) == {k for k in reference if not k.startswith('head.')}
    for key, value in converted.items():
        assert torch.equal(value, reference[key]), key
    both = dict(official, **{'blocks1.0.token_mixing.smlp_block.proh_w.bias': torch.zeros(80)})
    with pytest.raises(ValueError, match=r'gives backbone\.stages\.0\.blocks\.0\.token_mixing\.cgsmm\.col_mix\.bias '
                       'twice'):
        convert_official_stripmlp(both)


def test_rejects_other_checkpoints(golden, tmp_path):
    result = subprocess.run([sys.executable, CONVERTER, osp.join(golden, 'posmlp_small-gqpe-random.official.pth'),
                             str(tmp_path / 'x.pth')], capture_output=True, text=True)
    assert result.returncode != 0 and "has no 'model' entry" in result.stderr
    msmlp = torch.load(osp.join(golden, 'msmlp_small-random.official.pth'), weights_only=True)['model']
    with pytest.raises(ValueError, match='Not an official Strip-MLP checkpoint'):
        convert_official_stripmlp(msmlp)
    official = torch.load(osp.join(golden, 'stripmlp_small-c40-random.official.pth'), weights_only=True)['model']
    with pytest.raises(ValueError, match=r"1 keys of the checkpoint are not part of an official Strip-MLP.*"
                       r"layers\.0\.blocks"):
        convert_official_stripmlp(dict(official, **{'layers.0.blocks.0.gamma': torch.zeros(8)}))


def _assert_loaded(model, state_dict, prefix='backbone.'):
    """Every backbone weight in ``state_dict`` is in ``model`` with the same value (no random or skipped one)."""
    ours = model.state_dict()
    backbone = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    assert set(backbone) <= set(ours), sorted(set(backbone) - set(ours))[:5]
    for key, value in backbone.items():
        assert torch.equal(ours[key], value), key
    return set(ours) - set(backbone)


def test_official_224_checkpoint_loads_fully_into_a_512px_backbone(golden):
    """The released Strip-MLP-T* key set (224 px) -> converter -> strict load into a dense backbone at 512 x 512."""
    official, _ = official_state_from_listing(osp.join(golden, 'stripmlp_light_tiny.keys.json'), device='cpu')
    gen = torch.Generator().manual_seed(0)
    for key, value in official.items():
        if key.endswith('num_batches_tracked'):
            official[key] = torch.tensor(7)
            continue
        value.copy_(torch.rand(value.shape, generator=gen) * 0.5 + 0.5 if 'running_var' in key else
                    torch.randn(value.shape, generator=gen) * (0.1 if value.dim() > 1 else 0.02))
    converted = convert_official_stripmlp(official)
    assert converted['img_size'] == 224
    state = converted['state_dict']
    backbone = StripMLP(arch='light_tiny', img_size=converted['img_size'], out_indices=(3, ),
                        gap_before_final_norm=False, norm_eval=True)
    backbone.load_state_dict({k[9:]: v for k, v in state.items() if k.startswith('backbone.')}, strict=True)
    assert _assert_loaded(backbone, state) == set()  # every weight, incl. the 224-px strip MLPs, from the file
    backbone.eval()
    with torch.no_grad():
        (out, ) = backbone(torch.rand(1, 3, 512, 512))
    assert out.shape == (1, 640, 16, 16) and torch.isfinite(out).all()


def test_224_checkpoint_loads_fully_into_an_800x1216_backbone(tmp_path):
    """A classifier trained at 224 px (tiny custom arch) initialises a 4-level dense backbone at 800 x 1216."""
    arch = dict(embed_dims=16, depths=[1, 1, 1, 1])
    trained = StripMLP(arch=arch, img_size=224)
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    state = {f'backbone.{k}': v for k, v in trained.state_dict().items()}
    state['head.fc.weight'] = torch.zeros(10, 128)
    torch.save({'state_dict': state}, tmp_path / 'cls224.pth')
    dense = StripMLP(arch=arch, img_size=224, out_indices=(0, 1, 2, 3), gap_before_final_norm=False,
                     init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'cls224.pth'), prefix='backbone.'))
    dense.init_weights()
    not_from_file = _assert_loaded(dense, state)
    # only the new output norms of stages 0-2 (identity BatchNorm) are not in a classification checkpoint
    assert {k.split('.')[0] for k in not_from_file} == {'norm0', 'norm1', 'norm2'}
    for i in range(3):
        norm = getattr(dense, f'norm{i}')
        assert torch.all(norm.weight == 1) and torch.all(norm.bias == 0) and torch.all(norm.running_var == 1)
    dense.eval()
    with torch.no_grad():
        outs = dense(torch.rand(1, 3, 800, 1216))
    assert [tuple(o.shape) for o in outs] == [(1, 16, 200, 304), (1, 32, 100, 152), (1, 64, 50, 76),
                                              (1, 128, 25, 38)]
    assert all(torch.isfinite(o).all() for o in outs)
