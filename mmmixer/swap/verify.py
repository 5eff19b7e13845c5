"""Check a swapped config: build the model in its codebase's scope and initialise it, compare every declared width
with the backbone's real outputs, then run one training step and one predict step on a synthetic batch shaped by the
config.

The synthetic batches are the smallest valid input of each codebase's model (its data samples with ground truth
that lies inside the image); the input size is the config's test-time size (mmdet ``Resize`` scale, mmseg crop size,
mmpretrain crop, mmpose codec ``input_size``, mmaction2 crop and number of segments) unless one is given.
"""
import copy
import math
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Tuple, Union

from .delta import SwapError, _import_custom, consumer_widths

__all__ = ['VerifyReport', 'verify_swap', 'input_size_of']


@dataclass
class VerifyReport:
    """What :func:`verify_swap` ran and saw.

    Attributes:
        scope (str): the codebase ('mmdet', ...).
        input_shape (tuple): the preprocessed batch shape, e.g. (2, 3, 800, 1344).
        outputs (list[tuple]): shape of every backbone output, (B, C, H, W).
        checks (list[tuple]): (config key, output index, declared width, real width) per declared width.
        losses (dict): the training step's logged values (floats).
        num_predictions (int): data samples the predict step returned.
    """
    scope: str
    input_shape: tuple
    outputs: List[tuple] = field(default_factory=list)
    checks: List[tuple] = field(default_factory=list)
    losses: dict = field(default_factory=dict)
    num_predictions: int = 0

    def lines(self) -> List[str]:
        out = [f'input {tuple(self.input_shape)} ({self.scope})']
        for k, shape in enumerate(self.outputs):
            reads = [f'{key} = {declared}' for key, pos, declared, _ in self.checks
                     if (pos % len(self.outputs)) == k]
            out.append(f'  backbone output {k}: {tuple(shape)}  <- ' + (', '.join(reads) or 'not declared'))
        out.append('  train step: ' + ', '.join(f'{k}={v:.4g}' for k, v in self.losses.items()))
        out.append(f'  predict step: {self.num_predictions} data samples')
        return out


# -------------------------------------------------------------------------------------------- input sizes
def _pipelines(cfg, train_first: bool = False) -> List[dict]:
    steps = []
    order = ('train', 'test', 'val') if train_first else ('test', 'val', 'train')
    for key in (f'{k}_pipeline' for k in order):
        steps += list(cfg.get(key) or [])
    for key in (f'{k}_dataloader' for k in order):
        dataset = (cfg.get(key) or {}).get('dataset') or {}
        steps += list(dataset.get('pipeline') or (dataset.get('dataset') or {}).get('pipeline') or [])
    return [s for s in steps if isinstance(s, dict)]


def _hw(size) -> Optional[Tuple[int, int]]:
    """(h, w) from an OpenMMLab size: an int, or (w, h) as mmcv ``Resize`` / codecs write it."""
    if isinstance(size, int) and size > 0:
        return size, size
    if isinstance(size, (list, tuple)) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size):
        return int(size[1]), int(size[0])
    return None


def input_size_of(cfg) -> Tuple[Tuple[int, int], int]:
    """The config's test-time input size (h, w) and, for mmaction2, the segments per video of its training pipeline
    (``SampleFrames`` ``num_clips * clip_len``; else 1).

    Raises:
        SwapError: no size found (then pass ``input_size``).
    """
    scope = cfg.get('default_scope')
    steps = _pipelines(cfg)
    segs = 1
    if scope == 'mmaction':  # segments per video as in training (test pipelines often take 25 clips)
        frames = [s for s in _pipelines(cfg, train_first=True)
                  if s.get('type') in ('SampleFrames', 'DenseSampleFrames', 'UntrimmedSampleFrames')]
        if frames:
            segs = int(frames[0].get('num_clips', 1)) * int(frames[0].get('clip_len', 1))
    if scope == 'mmseg':
        size = cfg.model.get('data_preprocessor', {}).get('size') or cfg.get('crop_size')
        if size:
            return (int(size[0]), int(size[1])), segs  # mmseg writes (h, w)
    if scope == 'mmpose':
        for key in ('codec', ):
            codec = cfg.get(key)
            codec = codec[0] if isinstance(codec, list) else codec
            if codec and _hw(codec.get('input_size')):
                return _hw(codec['input_size']), segs
    for kinds in (('CenterCrop', 'ThreeCrop', 'TenCrop', 'RandomCrop'), ('Resize', 'RandomResize', 'ResizeEdge')):
        for step in steps:
            if step.get('type') in kinds:
                hw = _hw(step.get('crop_size') or step.get('scale'))
                if hw:
                    return hw, segs
    raise SwapError('no input size found in the config (test pipeline Resize / crop, codec input_size, mmseg '
                    'crop_size); pass one (--input-size H W)')


# -------------------------------------------------------------------------------------------- fake batches
def _image(h, w, gen):
    import torch
    return torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=gen)


def _boxes(h, w):
    return [[0.1 * w, 0.15 * h, 0.6 * w, 0.7 * h], [0.4 * w, 0.3 * h, 0.95 * w, 0.9 * h]]


def _det_batch(model_cfg, hw, batch_size, gen):
    import numpy as np
    import torch
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    h, w = hw
    inputs, samples = [], []
    for i in range(batch_size):
        boxes = _boxes(h, w)
        masks = np.zeros((len(boxes), h, w), dtype=np.uint8)
        for k, (x1, y1, x2, y2) in enumerate(boxes):
            masks[k, int(y1):int(y2), int(x1):int(x2)] = 1
        sample = DetDataSample(metainfo=dict(img_id=i, img_path=f'synthetic{i}.jpg', ori_shape=(h, w),
                                             img_shape=(h, w), scale_factor=(1., 1.), flip=False,
                                             flip_direction=None))
        gt = InstanceData(bboxes=torch.tensor(boxes, dtype=torch.float32), labels=torch.tensor([0, 1]))
        gt.masks = BitmapMasks(masks, h, w)
        sample.gt_instances = gt
        sample.ignored_instances = InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
        inputs.append(_image(h, w, gen))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def _seg_batch(model_cfg, hw, batch_size, gen):
    import torch
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    h, w = hw
    num_classes = int((model_cfg.get('decode_head') or {}).get('num_classes', 2)) \
        if isinstance(model_cfg.get('decode_head'), dict) else 2
    inputs, samples = [], []
    for i in range(batch_size):
        label = torch.zeros(1, h, w, dtype=torch.long)
        label[:, h // 4:h // 2, w // 5:w // 2] = min(1, num_classes - 1)
        label[:, h // 2:, w // 2:] = num_classes - 1
        label[:, :h // 16, :] = 255  # ignored pixels
        sample = SegDataSample(metainfo=dict(img_path=f'synthetic{i}.png', ori_shape=(h, w), img_shape=(h, w),
                                             pad_shape=(h, w), scale_factor=(1., 1.), flip=False,
                                             reduce_zero_label=False))
        sample.gt_sem_seg = PixelData(data=label)
        inputs.append(_image(h, w, gen))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def _cls_batch(model_cfg, hw, batch_size, gen):
    from mmpretrain.structures import DataSample
    num_classes = int((model_cfg.get('head') or {}).get('num_classes', 2))
    return dict(inputs=[_image(*hw, gen) for _ in range(batch_size)],
                data_samples=[DataSample().set_gt_label(i % num_classes) for i in range(batch_size)])


def _pose_batch(model_cfg, hw, batch_size, gen):
    from mmpose.testing import get_packed_inputs
    head = model_cfg.get('head') or {}
    codec = head.get('decoder') or {}
    input_size = tuple(codec.get('input_size', (hw[1], hw[0])))
    heatmap_size = tuple(codec.get('heatmap_size', (input_size[0] // 4, input_size[1] // 4)))
    return get_packed_inputs(batch_size=batch_size, num_keypoints=int(head.get('out_channels', 17)),
                             img_shape=hw, input_size=input_size, heatmap_size=heatmap_size)


def _action_batch(model_cfg, hw, batch_size, gen, segs=1):
    import torch
    from mmaction.structures import ActionDataSample
    num_classes = int((model_cfg.get('cls_head') or {}).get('num_classes', 2))
    inputs = [torch.stack([_image(*hw, gen) for _ in range(segs)]) for _ in range(batch_size)]
    samples = []
    for i in range(batch_size):
        sample = ActionDataSample().set_gt_label(torch.tensor([i % num_classes]))
        sample.set_metainfo(dict(num_clips=segs, clip_len=1))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


_BATCHES = {'mmdet': _det_batch, 'mmseg': _seg_batch, 'mmpretrain': _cls_batch, 'mmpose': _pose_batch,
            'mmaction': _action_batch}


# ------------------------------------------------------------------------------------------------- verify
def _init_weights(model) -> None:
    """``model.init_weights()`` as the Runner calls it before training (the heads' prior-probability biases, our
    backbone's initialisation, its ``Pretrained`` checkpoint), without mmengine's per-parameter INFO lines."""
    import logging
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        model.init_weights()
    except (OSError, RuntimeError, ValueError, KeyError) as exc:  # e.g. a checkpoint that is missing or does not fit
        raise SwapError(f'model.init_weights() failed ({type(exc).__name__}: {exc}); check the backbone\'s '
                        'init_cfg (--checkpoint)') from exc
    finally:
        logger.setLevel(level)


def _step(name: str, func, *args):
    """Run the backbone / a training / a predict step; a failure becomes one SwapError line (cause chained)."""
    try:
        return func(*args)
    except Exception as exc:  # any error of the downstream model: one message for the command line
        raise SwapError(f'the {name} step failed ({type(exc).__name__}: {exc}); verify_swap() in Python shows the '
                        'traceback') from exc


def verify_swap(cfg: Union[str, 'Config'],  # noqa: F821
                input_size: Optional[Sequence[int]] = None,
                batch_size: int = 2,
                device: str = 'cpu',
                log: Callable[[str], None] = print) -> VerifyReport:
    """Build the config's model in its scope, check the widths, run one training step and one predict step.

    Args:
        cfg (str | Config): a config path (e.g. the file written by ``swap_backbone``) or a loaded ``Config``.
        input_size (Sequence[int], optional): (H, W) of the synthetic images in pixels; None: the config's
            test-time size (:func:`input_size_of`). mmseg: also the size the data preprocessor pads training
            batches to (its ``size``), so the training step runs on this size too.
        batch_size (int): synthetic images (mmaction2: videos) per batch. Default 2.
        device (str): where to run. Default 'cpu'.
        log (callable): receives the report lines. Default ``print``.

    Returns:
        VerifyReport: the shapes, the declared widths and the losses.

    Raises:
        SwapError: a config key declares a width the backbone output it reads does not have (the message names the
            key, the declared and the real width and the stage), a codebase this check does not know, a failing
            ``init_weights`` / training / predict step, a non-finite loss, or a predict step that returns nothing.
    """
    import torch
    from mmengine.config import Config
    from mmengine.optim import OptimWrapper
    from mmengine.registry import MODELS, DefaultScope

    cfg = cfg if isinstance(cfg, Config) else Config.fromfile(str(cfg))
    scope = cfg.get('default_scope')
    if scope not in _BATCHES:
        raise SwapError(f'--verify knows the codebases {sorted(_BATCHES)}; this config has default_scope={scope!r}')
    _import_custom(cfg)
    model_cfg = copy.deepcopy(cfg.model)
    if cfg.get('data_preprocessor') is not None:  # mmpretrain keeps it at the top level; the Runner moves it
        model_cfg.setdefault('data_preprocessor', copy.deepcopy(cfg.data_preprocessor))
    hw, segs = input_size_of(cfg)
    if input_size is not None:
        hw = (int(input_size[0]), int(input_size[1]))
    preprocessor = model_cfg.get('data_preprocessor')
    if scope == 'mmseg' and isinstance(preprocessor, dict) and preprocessor.get('size'):
        preprocessor['size'] = hw  # mmseg pads training batches to this size: train on the checked input size
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(model_cfg)
        _init_weights(model)
        model = model.to(device)
        gen = torch.Generator().manual_seed(0)
        maker = _BATCHES[scope]
        batch = maker(model_cfg, hw, batch_size, gen, segs) if scope == 'mmaction' else \
            maker(model_cfg, hw, batch_size, gen)

        # widths: the backbone's real outputs against what the neck / heads declare
        model.eval()
        data = model.data_preprocessor(copy.deepcopy(batch), False)
        inputs = data['inputs']
        report = VerifyReport(scope=scope, input_shape=tuple(inputs.shape))
        if scope == 'mmaction':
            inputs = inputs.view((-1, ) + tuple(inputs.shape[2:]))
        with torch.no_grad():
            outs = _step('backbone', model.backbone, inputs)
        outs = outs if isinstance(outs, (tuple, list)) else (outs, )
        report.outputs = [tuple(o.shape) for o in outs]
        out_indices = list(getattr(model.backbone, 'out_indices', range(len(outs))))
        problems = []
        declared_widths = consumer_widths(model_cfg)
        real_widths = [int(o.shape[1]) for o in outs]
        for base in {key.rsplit('[', 1)[0] for key, _, _ in declared_widths if key.endswith(']')}:
            # a neck that reads its list in reverse order (mmdet YOLOV3Neck: deepest first) declares it reversed
            entries = [(k, p, d) for k, p, d in declared_widths if k.rsplit('[', 1)[0] == base]
            if [d for _, _, d in entries] == real_widths[::-1] != real_widths and len(entries) == len(outs):
                declared_widths = [(k, len(outs) - 1 - p, d) if (k, p, d) in entries else (k, p, d)
                                   for k, p, d in declared_widths]
        for key, pos, declared in declared_widths:
            if not -len(outs) <= pos < len(outs):
                problems.append(f'{key} reads backbone output {pos}, but the backbone returns {len(outs)} '
                                f'(out_indices={tuple(out_indices)})')
                continue
            real = int(outs[pos].shape[1])
            report.checks.append((key, pos, declared, real))
            if real != declared:
                stage = out_indices[pos] if len(out_indices) == len(outs) else pos
                problems.append(f'{key} = {declared}, but the backbone output it reads (output {pos % len(outs)}, '
                                f'stage {stage}) has {real} channels: set {key} = {real}')
        if problems:
            raise SwapError('width mismatch: ' + '; '.join(problems))

        # one training step (the model's own train_step: preprocess, loss, backward, SGD update), one predict step
        model.train()
        optim = OptimWrapper(torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-5))
        log_vars = _step('training', model.train_step, copy.deepcopy(batch), optim)
        report.losses = {k: float(torch.as_tensor(v).detach()) for k, v in log_vars.items()}
        bad = {k: v for k, v in report.losses.items() if not math.isfinite(v)}
        if bad or not report.losses:
            raise SwapError(f'the training step gave non-finite or no losses: {report.losses}')
        model.eval()
        with torch.no_grad():
            preds = _step('predict', model.test_step, copy.deepcopy(batch))
        report.num_predictions = len(preds)
        if report.num_predictions != batch_size:
            raise SwapError(f'the predict step returned {report.num_predictions} results for {batch_size} inputs')
    for line in report.lines():
        log(line)
    return report
