"""Our backbones swapped into unmodified OpenMMLab detection / segmentation configs.

Each swap is what a user writes: a config whose ``_base_`` is the installed mmdet / mmseg config, which replaces
the ResNet backbone (``_delete_=True``: type, arch, out_indices, init_cfg) and sets the channel list of the module
that reads it (neck or decode head); nothing else of the downstream config is touched. The model is built from
that config, and one training step (data preprocessor -> ``mode='loss'`` -> backward) runs on one tiny image with
a hand-made ``DetDataSample`` / ``SegDataSample``. Checked: every loss is finite and every backbone parameter that
requires grad received a finite gradient (parameters unused by design would have to be listed in
``UNUSED_BY_DESIGN`` with the reason; the test checks that they really get no gradient).

Test-only shrinking, not part of a swap: the segmentation data preprocessors pad every batch to the config's crop
size (512 x 512, 512 x 1024), which we set to the test image size.

Frameworks: Semantic FPN (mmseg; its config sets ``model.pretrained``, which mmseg's ``EncoderDecoder`` hands to the
backbone), Faster R-CNN, Cascade Mask R-CNN, DINO-4scale (stages 1-3 into a ``ChannelMapper``), Mask2Former (mmseg;
mmcv's ``MultiScaleDeformableAttention`` in the pixel decoder runs its pure-PyTorch path on CPU), and Mask R-CNN
with the minimal swap (type, arch, out_indices only: the backbones' defaults must suit dense heads).
"""
import math

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope

from helpers_mmmixer import TINY_FAMILIES as FAMILIES


SEM_FPN = 'mmseg::sem_fpn/fpn_r50_4xb4-160k_ade20k-512x512.py'
FASTER_RCNN = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
CASCADE_MASK_RCNN = 'mmdet::cascade_rcnn/cascade-mask-rcnn_r50_fpn_1x_coco.py'
DINO = 'mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py'
MASK2FORMER = 'mmseg::mask2former/mask2former_r50_8xb2-90k_cityscapes-512x1024.py'
MASK_RCNN = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'

# (family, framework) -> {backbone parameter name: why it gets no gradient}. Empty: with the swaps below every
# backbone parameter lies on the path to a returned stage (the output norms norm{i} exist only for the stages in
# out_indices, so DINO's out_indices=(1, 2, 3) creates no unused norm0).
UNUSED_BY_DESIGN = {}

IMG = 64  # image side: every stage of a stride-32 backbone still has a 2 x 2 map
# DINO selects its 900 queries by top-k over the encoder tokens of all levels (strides 8-64): it needs at least
# 900 of them, 1360 at 256 x 256.
DINO_IMG = 256


def channels(family):
    embed = FAMILIES[family][1]['embed_dims']
    return [embed * 2**i for i in range(4)]


def swap_config(tmp_path, base, family, out_indices, channel_edit, init_cfg=True, **model_edits):
    """Write and load the user's config: ``_base_`` = the downstream config, backbone lines replaced.

    ``channel_edit(in_channels)`` -> the model dict that sets the neck / head channels; ``init_cfg=False`` leaves
    ``init_cfg`` out of the backbone (the family's default initialisation), otherwise it is set to None.
    """
    kind, arch = FAMILIES[family]
    chans = channels(family)
    backbone = dict(_delete_=True, type=kind, arch=arch, out_indices=tuple(out_indices))
    if init_cfg:
        backbone['init_cfg'] = None
    model = dict(backbone=backbone, **channel_edit([chans[i] for i in out_indices]), **model_edits)
    path = tmp_path / f'{family}_swap.py'
    path.write_text(f'_base_ = {base!r}\n'
                    "custom_imports = dict(imports=['mmmixer'], allow_failed_imports=False)\n"
                    f'model = {model!r}\n')
    return Config.fromfile(str(path))


def build(cfg):
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        return MODELS.build(cfg.model)


# ------------------------------------------------------------------------------------------------- fake batches
def _masks(h, w, boxes):
    """One binary mask per box (the box's inner rectangle)."""
    masks = np.zeros((len(boxes), h, w), dtype=np.uint8)
    for k, (x1, y1, x2, y2) in enumerate(boxes):
        masks[k, int(y1) + 1:int(y2) - 1, int(x1) + 1:int(x2) - 1] = 1
    return masks


def det_batch(with_masks, num_classes=80, size=IMG):
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    h = w = size
    boxes = [[v * size / IMG for v in box] for box in ([4., 6., 40., 50.], [22., 12., 60., 40.])]
    sample = DetDataSample(metainfo=dict(img_id=0, img_path='fake.jpg', ori_shape=(h, w), img_shape=(h, w),
                                         scale_factor=(1., 1.), flip=False, flip_direction=None))
    gt = InstanceData()
    gt.bboxes = torch.tensor(boxes)
    gt.labels = torch.tensor([1, num_classes - 1])
    if with_masks:
        gt.masks = BitmapMasks(_masks(h, w, boxes), h, w)
    sample.gt_instances = gt
    image = torch.randint(0, 256, (3, h, w), dtype=torch.uint8)
    return dict(inputs=[image], data_samples=[sample])


def seg_batch(num_classes):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    h = w = IMG
    label = torch.zeros(1, h, w, dtype=torch.long)
    label[:, 10:40, 8:30] = 1
    label[:, 30:, 35:] = num_classes - 1
    label[:, :4, :] = 255  # ignored pixels
    sample = SegDataSample(metainfo=dict(img_path='fake.jpg', ori_shape=(h, w), img_shape=(h, w),
                                         pad_shape=(h, w), scale_factor=(1., 1.), flip=False,
                                         reduce_zero_label=False))
    sample.gt_sem_seg = PixelData(data=label)
    image = torch.randint(0, 256, (3, h, w), dtype=torch.uint8)
    return dict(inputs=[image], data_samples=[sample])


# ------------------------------------------------------------------------------------------------------ checks
def train_step_and_check_grads(model, batch, family, framework):
    """One loss + backward; every loss finite; every trainable backbone parameter has a finite gradient."""
    model.train()
    data = model.data_preprocessor(batch, training=True)
    losses = model(**data, mode='loss')
    total, log_vars = model.parse_losses(losses)
    loss_names = [k for k in log_vars if 'loss' in k]
    assert len(loss_names) > 1, log_vars
    bad = {k: v for k, v in log_vars.items() if not math.isfinite(float(torch.as_tensor(v).detach()))}
    assert not bad, f'non-finite losses: {bad}'
    total.backward()

    params = dict(model.backbone.named_parameters())
    frozen = [n for n, p in params.items() if not p.requires_grad]
    assert not frozen, f'the swap freezes backbone parameters (frozen_stages default should be -1): {frozen[:5]}'
    unused = UNUSED_BY_DESIGN.get((family, framework), {})
    assert set(unused) <= set(params), sorted(set(unused) - set(params))
    for name in unused:
        assert params[name].grad is None, f'{name} is listed as unused by design but received a gradient'
    no_grad = [n for n, p in params.items() if n not in unused and p.grad is None]
    non_finite = [n for n, p in params.items() if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert not no_grad, f'{len(no_grad)} of {len(params)} backbone parameters got no gradient: {no_grad[:10]}'
    assert not non_finite, f'non-finite gradients: {non_finite[:10]}'
    assert sum(float(p.grad.abs().sum()) for p in params.values() if p.grad is not None) > 0
    return log_vars


def _neck(chans):
    return dict(neck=dict(in_channels=chans))


def _seg_input_size(cfg):
    cfg.model.data_preprocessor.size = (IMG, IMG)  # the configs pad to their crop size (512 x 512 / 512 x 1024)
    return cfg


def _params(cases):
    """(family, framework, mark or None) -> pytest params with ids 'family-framework'."""
    return [pytest.param(family, framework, marks=[mark] if mark else [], id=f'{family}-{framework}')
            for family, framework, mark in cases]


# ------------------------------------------------------------------------------------------------ Semantic FPN
def test_gradient_check_catches_a_parameter_without_gradient(tmp_path):
    """The check used by every swap below fails for a backbone parameter outside the graph."""
    cfg = swap_config(tmp_path, SEM_FPN, 'msmlp', (0, 1, 2, 3), _neck, pretrained=None)
    model = build(_seg_input_size(cfg))
    model.backbone.register_parameter('probe', torch.nn.Parameter(torch.zeros(1)))
    with pytest.raises(AssertionError, match=r"backbone parameters got no gradient: \['probe'\]"):
        train_step_and_check_grads(model, seg_batch(cfg.model.decode_head.num_classes), 'msmlp', 'semantic_fpn')


@pytest.mark.parametrize('family', list(FAMILIES))
def test_semantic_fpn_swap_trains(family, tmp_path):
    cfg = swap_config(tmp_path, SEM_FPN, family, (0, 1, 2, 3), _neck, pretrained=None)
    assert cfg.model.pretrained is None and cfg.model.decode_head.type == 'FPNHead'
    model = build(_seg_input_size(cfg))
    assert type(model.backbone).__name__ == FAMILIES[family][0].split('.')[1]
    assert not model.backbone.init_cfg  # nothing to load: model.pretrained=None and init_cfg=None
    train_step_and_check_grads(model, seg_batch(cfg.model.decode_head.num_classes), family, 'semantic_fpn')


def _our_checkpoint(family, path):
    """A checkpoint in our format ({'state_dict': {'backbone.*', 'head.*'}, 'meta'}) of the dense backbone with
    every parameter and BN statistic random; returns the backbone tensors (without prefix)."""
    kind, arch = FAMILIES[family]
    with DefaultScope.overwrite_default_scope('mmmixer'):
        backbone = MODELS.build(dict(type=kind, arch=arch, out_indices=(0, 1, 2, 3), init_cfg=None))
    generator = torch.Generator().manual_seed(1)
    state = backbone.state_dict()
    random_keys = {n for n, _ in backbone.named_parameters()} | \
        {k for k in state if k.endswith(('running_mean', 'running_var'))}
    with torch.no_grad():
        for key in random_keys:
            state[key].copy_(torch.rand(state[key].shape, generator=generator) + 0.5)
    saved = {f'backbone.{k}': v.clone() for k, v in state.items()}
    saved['head.fc.weight'] = torch.zeros(10, channels(family)[-1])  # a classifier's head: ignored by the loader
    torch.save(dict(state_dict=saved, meta=dict(mmpretrain_version='1.2.0')), path)
    return {k: v.clone() for k, v in state.items()}


@pytest.mark.parametrize('family', list(FAMILIES))
def test_semantic_fpn_model_pretrained_local_checkpoint_loads(family, tmp_path):
    """``model.pretrained=<our checkpoint>`` reaches the backbone through EncoderDecoder, becomes an init_cfg
    ``Pretrained`` entry with a DeprecationWarning, and ``init_weights`` loads every backbone tensor."""
    ckpt = tmp_path / f'{family}_in1k.pth'
    expected = _our_checkpoint(family, ckpt)
    cfg = _seg_input_size(swap_config(tmp_path, SEM_FPN, family, (0, 1, 2, 3), _neck, pretrained=str(ckpt)))
    with pytest.warns(DeprecationWarning, match='pretrained is deprecated'):
        model = build(cfg)
    backbone = model.backbone
    init_cfg = backbone.init_cfg if isinstance(backbone.init_cfg, list) else [backbone.init_cfg]
    pretrained = [c for c in init_cfg if c.get('type') == 'Pretrained']
    assert len(pretrained) == 1 and pretrained[0]['checkpoint'] == str(ckpt), backbone.init_cfg
    with torch.no_grad():
        for param in backbone.parameters():
            param.fill_(float('nan'))
    model.init_weights()
    ours = backbone.state_dict()
    assert set(ours) == set(expected)
    not_loaded = [k for k, v in expected.items() if not torch.equal(ours[k], v)]
    assert not not_loaded, f'not loaded from {ckpt.name}: {not_loaded[:10]}'


@pytest.mark.parametrize('family', list(FAMILIES))
@pytest.mark.parametrize('value', [dict(type='Pretrained', checkpoint='x.pth'), 1],
                         ids=['dict', 'int'])
def test_semantic_fpn_model_pretrained_not_str_is_type_error(family, value, tmp_path):
    cfg = swap_config(tmp_path, SEM_FPN, family, (0, 1, 2, 3), _neck)
    cfg.model.pretrained = value  # set after loading: a dict cannot be merged into the base config's str
    with pytest.raises(TypeError, match=r'pretrained must be a checkpoint path or URL \(str\) or None'):
        build(cfg)


@pytest.mark.parametrize('family', list(FAMILIES))
def test_semantic_fpn_resnet_pretrained_left_in_config_is_named(family, tmp_path):
    """The unmodified Semantic FPN config keeps ``model.pretrained='open-mmlab://resnet50_v1c'``; swapping only the
    backbone must fail at build time with what to change, not later with a download or a key mismatch."""
    cfg = swap_config(tmp_path, SEM_FPN, family, (0, 1, 2, 3), _neck)
    assert cfg.model.pretrained == 'open-mmlab://resnet50_v1c'
    with pytest.raises(ValueError, match=r"pretrained='open-mmlab://resnet50_v1c' names a checkpoint of another "
                                         r'architecture.*set model\.pretrained=None'):
        build(cfg)


# ------------------------------------------------------------------------------- detection and Mask2Former swaps
def _mask2former_head(chans):
    return dict(decode_head=dict(in_channels=chans))


FRAMEWORKS = {
    # name: (base config, out_indices, channel edit, task)
    'faster_rcnn': (FASTER_RCNN, (0, 1, 2, 3), _neck, 'det'),
    'cascade_mask_rcnn': (CASCADE_MASK_RCNN, (0, 1, 2, 3), _neck, 'det_masks'),
    'dino_4scale': (DINO, (1, 2, 3), _neck, 'det'),
    'mask2former': (MASK2FORMER, (0, 1, 2, 3), _mask2former_head, 'seg'),
}
# Not slow (CI): Faster R-CNN for every family and Mask2Former for one; the rest is marked slow (measured on 2
# shared cores: Cascade Mask R-CNN 17-30 s, Mask2Former 8-17 s, DINO at 256 x 256 25-45 s per family).
FAST = {(f, 'faster_rcnn') for f in FAMILIES} | {('stripmlp', 'mask2former')}
SWAPS = [(family, framework, None if (family, framework) in FAST else pytest.mark.slow)
         for framework in FRAMEWORKS for family in FAMILIES]


@pytest.mark.parametrize('family,framework', _params(SWAPS))
def test_downstream_swap_trains(family, framework, tmp_path):
    base, out_indices, channel_edit, task = FRAMEWORKS[framework]
    cfg = swap_config(tmp_path, base, family, out_indices, channel_edit)
    if task == 'seg':
        cfg = _seg_input_size(cfg)
    model = build(cfg)
    assert tuple(model.backbone.out_indices) == out_indices
    if framework == 'dino_4scale':
        assert cfg.model.neck.type == 'ChannelMapper' and cfg.model.neck.num_outs == 4
        assert not hasattr(model.backbone, 'norm0')  # no output norm for the stage DINO does not read
    if framework == 'mask2former':
        assert cfg.model.decode_head.pixel_decoder.type.endswith('MSDeformAttnPixelDecoder')
        # the pixel decoder's mmcv op (pure-PyTorch path on CPU) is part of the step
        assert any(type(m).__name__ == 'MultiScaleDeformableAttention' for m in model.decode_head.modules())
    if task == 'seg':
        batch = seg_batch(cfg.model.decode_head.num_classes)
    else:
        head = cfg.model.get('roi_head', {}).get('bbox_head') or cfg.model.bbox_head
        num_classes = (head[0] if isinstance(head, list) else head).num_classes
        batch = det_batch(task == 'det_masks', num_classes, DINO_IMG if framework == 'dino_4scale' else IMG)
    train_step_and_check_grads(model, batch, family, framework)


# ------------------------------------------------------------------------------------ minimal dense swap defaults
@pytest.mark.parametrize('family', list(FAMILIES))
def test_mask_rcnn_minimal_swap_uses_dense_defaults(family, tmp_path):
    """Only type / arch / out_indices=(0, 1, 2, 3) (plus the neck channels): the family's defaults, including its
    default initialisation, give a trainable Mask R-CNN."""
    cfg = swap_config(tmp_path, MASK_RCNN, family, (0, 1, 2, 3), _neck, init_cfg=False)
    assert set(cfg.model.backbone) == {'type', 'arch', 'out_indices'}
    model = build(cfg)
    assert model.backbone.gap_before_final_norm is False
    model.init_weights()
    train_step_and_check_grads(model, det_batch(True, cfg.model.roi_head.bbox_head.num_classes), family,
                               'mask_rcnn')


@pytest.mark.parametrize('family', list(FAMILIES))
def test_gap_before_final_norm_with_several_stages_is_refused(family, tmp_path):
    cfg = swap_config(tmp_path, MASK_RCNN, family, (0, 1, 2, 3), _neck, init_cfg=False)
    cfg.model.backbone.gap_before_final_norm = True
    with pytest.raises(ValueError, match='gap_before_final_norm=True') as info:
        build(cfg)
    assert 'out_indices' in str(info.value)
