"""A checkpoint of another arch gives one clear error (file, expected arch, mismatching keys and shapes) through
``load_from`` and ``Pretrained`` for every backbone family, never mmengine's silent partial load."""
import re

import pytest
import torch
import torch.nn as nn
from mmengine.runner.checkpoint import load_checkpoint

from mmmixer.models import MSMLP, PosMLP, StripMLP, SwinMSMLP
from mmmixer.checkpoint import CheckpointLoadError

# family -> (class, kwargs of the model, kwargs of a checkpoint of another arch, a key whose shape differs)
FAMILIES = {
    'MSMLP': (MSMLP, dict(arch=dict(embed_dims=20, depths=[1, 1, 1, 1])),
              dict(arch=dict(embed_dims=40, depths=[1, 1, 2, 1])), 'patch_embed.projection.weight'),
    'PosMLP': (PosMLP, dict(arch=dict(embed_dims=16, depths=[1, 1, 1, 1], gammas=[2, 2, 2, 2]), window_size=4),
               dict(arch=dict(embed_dims=32, depths=[1, 1, 2, 1], gammas=[2, 2, 2, 2]), window_size=4),
               'patch_embed.convs.0.weight'),
    'StripMLP': (StripMLP, dict(arch=dict(embed_dims=16, depths=[1, 1, 1, 1]), img_size=64),
                 dict(arch=dict(embed_dims=32, depths=[1, 1, 1, 1]), img_size=64), 'patch_embed.weight'),
    'SwinMSMLP': (SwinMSMLP, dict(arch=dict(embed_dims=20, depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 4])),
                  dict(arch=dict(embed_dims=40, depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 8])),
                  'patch_embed.projection.weight'),
}


def _classifier_checkpoint(path, backbone, meta=None):
    """A file laid out as the Runner / our converters write it: {'state_dict': {'backbone.*', 'head.fc.*'}}."""
    state = {f'backbone.{k}': v for k, v in backbone.state_dict().items()}
    state['head.fc.weight'] = torch.zeros(10, 8)
    torch.save({'state_dict': state, 'meta': meta or {}}, path)
    return str(path)


class _Classifier(nn.Module):

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone


def _snapshot(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def _assert_unchanged(module, before):
    after = module.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), 'the backbone was partly loaded'


@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_wrong_arch_checkpoint_gives_one_clear_error(family, tmp_path):
    cls, own_kwargs, other_kwargs, key = FAMILIES[family]
    torch.manual_seed(1)
    other = cls(**other_kwargs)
    path = _classifier_checkpoint(tmp_path / f'{family}-other.pth', other,
                                  meta=dict(family=family, arch=other_kwargs['arch']))
    own_arch = cls(**own_kwargs).arch_repr()

    # load_from: the Runner loads with mmengine's _load_checkpoint_to_model(strict=False), as load_checkpoint does
    model = _Classifier(cls(**own_kwargs))
    before = _snapshot(model.backbone)
    with pytest.raises(CheckpointLoadError) as err:
        load_checkpoint(model, path, map_location='cpu', strict=False)
    message = str(err.value)
    assert message.startswith(f'Checkpoint "{path}" does not fit {own_arch}'), message
    own_shape = tuple(model.backbone.state_dict()[key].shape)
    other_shape = tuple(other.state_dict()[key].shape)
    assert f'{key}: checkpoint {other_shape} vs model {own_shape}' in message
    assert f"family '{family}', arch {other_kwargs['arch']!r}" in message
    assert 'Nothing was loaded' in message
    _assert_unchanged(model.backbone, before)

    # init_cfg=dict(type='Pretrained', prefix='backbone.') goes through the same check
    backbone = cls(**own_kwargs, init_cfg=dict(type='Pretrained', checkpoint=path, prefix='backbone.'))
    before = _snapshot(backbone)
    with pytest.raises((CheckpointLoadError, ValueError), match=re.escape(path)) as err:
        backbone.init_weights()
    assert 'another shape' in str(err.value) and key in str(err.value)
    if family != 'SwinMSMLP':
        assert isinstance(err.value, CheckpointLoadError) and own_arch in str(err.value)
        _assert_unchanged(backbone, before)
    # SwinMSMLP's Pretrained is load_swin_pretrained: default init of the new MS blocks first, then it checks every
    # Swin tensor and raises ValueError (file, arch, keys) before copying any


@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_same_arch_loads_and_missing_output_norms_are_fine(family, tmp_path):
    """Positive controls: the same arch loads every tensor; a classifier checkpoint (last output norm only) loads
    into a dense-prediction backbone that returns all stages (its other output norms stay initialised)."""
    cls, own_kwargs, _, _ = FAMILIES[family]
    torch.manual_seed(2)
    source = cls(**own_kwargs)
    path = _classifier_checkpoint(tmp_path / 'same.pth', source)
    model = _Classifier(cls(**own_kwargs))
    load_checkpoint(model, path, map_location='cpu', strict=False)
    for k, v in source.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[k], v), k
    dense = cls(**own_kwargs, out_indices=(0, 1, 2, 3))
    load_checkpoint(dense, path, map_location='cpu', strict=False, revise_keys=[(r'^backbone\.', '')])
    assert set(dense.state_dict()) - set(source.state_dict()) >= {'norm0.weight', 'norm1.weight'}
    for k, v in source.state_dict().items():
        assert torch.equal(dense.state_dict()[k], v), k


def test_forgotten_prefix_is_detected(tmp_path):
    """No ``prefix`` in init_cfg: a classifier checkpoint's ``backbone.`` keys are found and all loaded."""
    cls, own_kwargs, _, _ = FAMILIES['MSMLP']
    source = cls(**own_kwargs)
    path = _classifier_checkpoint(tmp_path / 'cls.pth', source)
    backbone = cls(**own_kwargs, init_cfg=dict(type='Pretrained', checkpoint=path))  # no prefix='backbone.'
    backbone.init_weights()
    assert backbone.pretrained_report.prefix == 'backbone.'
    for name, tensor in source.state_dict().items():
        assert torch.equal(backbone.state_dict()[name], tensor), name


def test_wrong_prefix_is_named(tmp_path):
    cls, own_kwargs, _, _ = FAMILIES['MSMLP']
    path = _classifier_checkpoint(tmp_path / 'cls.pth', cls(**own_kwargs))
    backbone = cls(**own_kwargs, init_cfg=dict(type='Pretrained', checkpoint=path, prefix='model.backbone.'))
    with pytest.raises(CheckpointLoadError, match=r"no key starts with prefix 'model\.backbone\.'.*backbone\."):
        backbone.init_weights()


def test_other_family_checkpoint_is_refused(tmp_path):
    """A converted PosMLP checkpoint given to an MS-MLP classifier: missing and unknown keys, one error."""
    cls, kwargs, _, _ = FAMILIES['PosMLP']
    path = _classifier_checkpoint(tmp_path / 'posmlp.pth', cls(**kwargs), meta=dict(family='PosMLP'))
    model = _Classifier(MSMLP(arch=dict(embed_dims=16 * 5 // 4, depths=[1, 1, 1, 1])))
    with pytest.raises(CheckpointLoadError, match=r"missing from the checkpoint.*not in the model.*family 'PosMLP'"):
        load_checkpoint(model, path, map_location='cpu', strict=False)


def test_posmlp_window_resize_is_not_a_mismatch(tmp_path):
    """PosMLP adapts positional tables of another window on load; the check must let them through."""
    _, kwargs, _, _ = FAMILIES['PosMLP']
    for pos_type in ('gqpe', 'lrpe'):
        path = _classifier_checkpoint(tmp_path / f'{pos_type}.pth', PosMLP(**dict(kwargs, window_size=4),
                                                                           pos_type=pos_type))
        model = PosMLP(**dict(kwargs, window_size=3), pos_type=pos_type,
                       init_cfg=dict(type='Pretrained', checkpoint=path, prefix='backbone.'))
        model.init_weights()  # no error
        bias = model.stages[0].blocks[0].pos_map.token_proj_n_bias
        assert bias.shape == (1, 9, 1)


def test_plain_state_dicts_keep_torch_semantics():
    """Tensors that were not read from a file by mmengine's loader are not checked (torch's own strict=False)."""
    cls, own_kwargs, other_kwargs, _ = FAMILIES['MSMLP']
    model = cls(**own_kwargs)
    missing, unexpected = model.load_state_dict({'patch_embed.norm.weight': torch.ones(20)}, strict=False)
    assert len(missing) > 10 and not unexpected
    with pytest.raises(RuntimeError, match='size mismatch'):
        model.load_state_dict(cls(**other_kwargs).state_dict(), strict=True)
