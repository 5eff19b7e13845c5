"""tools/misc/swap_backbone.py and :mod:`mmmixer.swap`: our backbones swapped into unmodified configs of mmdet,
mmseg, mmpretrain, mmpose and mmaction2 by the command line (run in-process through its ``main``), each written file
loaded back and checked with ``--verify`` (the model built, every declared width compared with the backbone's real
outputs, one training and one predict step on a synthetic batch); the delta without ``--verify`` (preset widths,
checkpoint, cleared weights of the old backbone, kept imports, our recipe); ``--verify-only`` on hand-written
configs with a wrong width; the errors; the input sizes read from the configs; ``mim run``.

Speed (CI): tiny custom archs; the levels of a downstream's own backbone (ResNet-50 run once on 256 x 256) depend on
the downstream config alone, so this module learns them once per config (``_probe_once_per_downstream``).
"""
import ast
import math
import os.path as osp
import shutil
import subprocess
import sys

import pytest
from mmengine.config import Config

from helpers_mmmixer import REPO, subprocess_env, load_tool
from helpers_mmmixer import TINY_FAMILIES as FAMILIES

TOOL = osp.join(REPO, 'tools', 'misc', 'swap_backbone.py')

MASK_RCNN = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
RETINANET = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
DEFORMABLE_DETR = 'mmdet::deformable_detr/deformable-detr_r50_16xb2-50e_coco.py'
YOLOV3 = 'mmdet::yolo/yolov3_d53_8xb8-320-273e_coco.py'
UPERNET = 'mmseg::upernet/upernet_r50_4xb2-40k_cityscapes-512x1024.py'
FCN = 'mmseg::fcn/fcn_r50-d8_4xb2-40k_cityscapes-512x1024.py'
RESNET_CLS = 'mmpretrain::resnet/resnet50_8xb32_in1k.py'
POSE = 'mmpose::body_2d_keypoint/topdown_heatmap/coco/td-hm_swin-t-p4-w7_8xb32-210e_coco-256x192.py'
TSN = 'mmaction::recognition/tsn/tsn_imagenet-pretrained-r50_8xb32-1x1x3-100e_kinetics400-rgb.py'
TSM = 'mmaction::recognition/tsm/tsm_imagenet-pretrained-r50_8xb16-1x1x8-50e_kinetics400-rgb.py'

SMALL = 64  # --input-size of the dense and video cases: every stage of a stride-32 backbone keeps a 2 x 2 map

# case -> (downstream, --input-size side or None (the config's own size), expected out_indices,
#          expected preprocessed input shape, widths w of the returned stages -> {config key: expected value})
CASES = {
    'mask_rcnn': (MASK_RCNN, SMALL, (0, 1, 2, 3), (2, 3, SMALL, SMALL), lambda w: {'neck.in_channels': w}),
    # the FPN reads levels 1-3 only (start_level=1): stage 0 is dropped and the neck starts at its first input
    'retinanet': (RETINANET, SMALL, (1, 2, 3), (2, 3, SMALL, SMALL),
                  lambda w: {'neck.in_channels': w, 'neck.start_level': 0}),
    'deformable_detr': (DEFORMABLE_DETR, SMALL, (1, 2, 3), (2, 3, SMALL, SMALL), lambda w: {'neck.in_channels': w}),
    'upernet': (UPERNET, SMALL, (0, 1, 2, 3), (2, 3, SMALL, SMALL),
                lambda w: {'decode_head.in_channels': w, 'auxiliary_head.in_channels': w[2]}),
    # dilated ResNet (strides 4/8/8/8): stage for stage; the heads read in_index 3 and 2
    'fcn': (FCN, SMALL, (0, 1, 2, 3), (2, 3, SMALL, SMALL),
            lambda w: {'decode_head.in_channels': w[3], 'auxiliary_head.in_channels': w[2]}),
    'resnet_cls': (RESNET_CLS, None, (3, ), (2, 3, 224, 224), lambda w: {'head.in_channels': w[0]}),
    'pose': (POSE, None, (3, ), (2, 3, 256, 192), lambda w: {'head.in_channels': w[0]}),
    # mmaction2 Recognizer2D: one tensor, not a tuple; 3 segments per video
    'tsn': (TSN, SMALL, (3, ), (2, 3, 3, SMALL, SMALL),
            lambda w: {'cls_head.in_channels': w[0], 'backbone.return_tuple': False}),
    # Darknet-53 levels 8/16/32; the neck lists its widths deepest first
    'yolov3': (YOLOV3, SMALL, (1, 2, 3), (2, 3, SMALL, SMALL), lambda w: {'neck.in_channels': w[::-1]}),
    'tsm': (TSM, SMALL, (3, ), (2, 8, 3, SMALL, SMALL),
            lambda w: {'cls_head.in_channels': w[0], 'backbone.return_tuple': False}),
}
MATRIX = [pytest.param(f, c, id=f'{f}-{c}') for c in CASES if c not in ('yolov3', 'tsm') for f in FAMILIES]
MATRIX += [pytest.param('msmlp', 'yolov3', id='msmlp-yolov3'), pytest.param('posmlp', 'tsm', id='posmlp-tsm')]


@pytest.fixture(scope='module')
def tool():
    return load_tool(TOOL, 'mmmixer_swap_backbone_tool')


@pytest.fixture(scope='module', autouse=True)
def _probe_once_per_downstream():
    """Learn the levels of each downstream's own backbone once (they depend on its config only)."""
    from mmmixer.swap import delta
    probe, seen = delta._probe_old_backbone, {}

    def cached(cfg, scope):
        key = (scope, repr(cfg.model.backbone))
        if key not in seen:
            seen[key] = probe(cfg, scope)
        levels, returns_tensor = seen[key]
        return list(levels), returns_tensor

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(delta, '_probe_old_backbone', cached)
        yield


@pytest.fixture(scope='module')
def backbone_files(tmp_path_factory):
    """family -> a backbone config file holding the tiny custom arch, as a user writes it."""
    root = tmp_path_factory.mktemp('backbones')
    files = {}
    for family, (kind, arch) in FAMILIES.items():
        path = root / f'{family}_tiny.py'
        path.write_text(f'backbone = dict(type={kind!r}, arch={arch!r})\n')
        files[family] = str(path)
    return files


def run_tool(tool, capsys, *argv):
    """``main(argv)`` -> (exit status, stdout, stderr)."""
    capsys.readouterr()
    rc = tool.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def as_written(path):
    """The assignments of a config file as written (before mmengine merges ``_base_`` and drops ``_delete_``)."""
    values = {}
    for node in ast.parse(open(path, encoding='utf-8').read()).body:
        if isinstance(node, ast.Assign):
            values[node.targets[0].id] = eval(compile(ast.Expression(node.value), path, 'eval'),  # noqa: S307
                                              {'__builtins__': {}, 'dict': dict})
    return values


def lookup(model, dotted):
    value = model
    for part in dotted.split('.'):
        value = value[part]
    return value


def stage_widths(kind, arch, stages):
    from mmmixer.registry import MODELS
    info = MODELS.get(kind.split('.')[-1]).arch_feature_info(arch)
    return [info[i]['num_chs'] for i in stages]


# ------------------------------------------------------------------------------------------------- the matrix
@pytest.mark.parametrize('family,case', MATRIX)
def test_swap_and_verify(tool, backbone_files, family, case, tmp_path, capsys, monkeypatch):
    import mmmixer.swap
    downstream, side, out_indices, input_shape, expected = CASES[case]
    if family == 'swin_msmlp' and downstream in (TSN, TSM):
        # our ImageNet recipe (used for mmaction2) keeps Swin's pad_small_map=False: stage 3 needs a 7 x 7 map
        side, input_shape = 224, input_shape[:-2] + (224, 224)
    reports = []

    def verify(*args, **kwargs):
        reports.append(verify_swap(*args, **kwargs))
        return reports[-1]

    verify_swap = mmmixer.swap.verify_swap
    monkeypatch.setattr(mmmixer.swap, 'verify_swap', verify)
    out = tmp_path / 'swapped.py'
    size = ['--input-size', side, side] if side else []
    rc, stdout, stderr = run_tool(tool, capsys, downstream, backbone_files[family], '--out', out, '--verify', *size)
    assert rc == 0, stderr[-3000:]
    assert stdout.rstrip().endswith('verify: OK')

    written = as_written(str(out))
    kind, arch = FAMILIES[family]
    assert written['_base_'] == downstream
    assert written['model']['backbone']['_delete_'] is True
    assert (written['model']['backbone']['type'], written['model']['backbone']['arch']) == (kind, arch)
    cfg = Config.fromfile(str(out))
    assert tuple(cfg.model.backbone.out_indices) == out_indices
    widths = stage_widths(kind, arch, out_indices)
    for key, value in expected(widths).items():
        assert lookup(cfg.model, key) == value, (key, lookup(cfg.model, key), value)
    if 'backbone.return_tuple' not in expected(widths):
        assert cfg.model.backbone.get('return_tuple', True) is True

    # what --verify saw: the backbone's real outputs have these widths and every declared width matched one
    report, = reports
    assert report.input_shape == input_shape
    assert [shape[1] for shape in report.outputs] == widths
    assert report.checks and all(declared == real for _, _, declared, real in report.checks), report.checks
    assert report.losses and all(math.isfinite(v) for v in report.losses.values())
    assert report.num_predictions == 2
    if case in ('retinanet', 'deformable_detr'):
        # focal-loss heads start from their prior-probability bias (set by init_weights, as the Runner does): a
        # loss_cls near 1, not the hundreds (RetinaNet) or thousands (Deformable DETR) of an uninitialised head
        assert report.losses['loss_cls'] < 10, report.losses


# ------------------------------------------------------------------------------------ --verify-only, wrong widths
def _hand_written(tmp_path, name, base, model):
    path = tmp_path / name
    path.write_text(f'_base_ = {base!r}\n'
                    "custom_imports = dict(imports=['mmmixer.models'], allow_failed_imports=False)\n"
                    f'model = {model!r}\n')
    return str(path)


def _msmlp(out_indices=(0, 1, 2, 3)):
    return dict(_delete_=True, type='mmmixer.MSMLP', arch=FAMILIES['msmlp'][1], out_indices=out_indices)


@pytest.mark.parametrize('wrong', [False, True], ids=['right', 'wrong'])
def test_verify_only_names_a_wrong_neck_width(tool, tmp_path, capsys, wrong):
    widths = [20, 40, 80, 160]
    if wrong:
        widths[1] = 44
    path = _hand_written(tmp_path, 'mask_rcnn_msmlp.py', MASK_RCNN,
                         dict(backbone=_msmlp(), neck=dict(in_channels=widths)))
    rc, stdout, stderr = run_tool(tool, capsys, '--verify-only', path, '--input-size', SMALL, SMALL)
    if not wrong:
        assert rc == 0 and 'verify: OK' in stdout, stderr[-3000:]
        return
    assert rc == 1
    assert stderr.startswith('swap_backbone: error: width mismatch')
    assert 'neck.in_channels[1] = 44' in stderr and 'stage 1) has 40 channels' in stderr, stderr
    assert 'neck.in_channels[0]' not in stderr and 'verify: OK' not in stdout


@pytest.mark.parametrize('wrong', [False, True], ids=['right', 'wrong'])
def test_verify_only_names_a_wrong_auxiliary_head_width(tool, tmp_path, capsys, wrong):
    path = _hand_written(tmp_path, 'upernet_msmlp.py', UPERNET,
                         dict(backbone=_msmlp(), pretrained=None, decode_head=dict(in_channels=[20, 40, 80, 160]),
                              auxiliary_head=dict(in_channels=160 if wrong else 80)))
    rc, stdout, stderr = run_tool(tool, capsys, '--verify-only', path, '--input-size', SMALL, SMALL)
    if not wrong:
        assert rc == 0 and 'verify: OK' in stdout, stderr[-3000:]
        return
    assert rc == 1
    assert 'auxiliary_head.in_channels = 160' in stderr and '(output 2, stage 2) has 80 channels' in stderr, stderr
    assert 'set auxiliary_head.in_channels = 80' in stderr
    assert 'decode_head' not in stderr


def test_a_failing_step_is_one_error_line(tool, tmp_path, capsys):
    """The hybrid with Swin's pad_small_map=False refuses a 64 px input: one 'swap_backbone: error:' line, no
    traceback; the same config at 224 px passes (so the test can fail)."""
    swin = dict(_delete_=True, type='mmmixer.SwinMSMLP', arch=FAMILIES['swin_msmlp'][1], out_indices=(3, ),
                pad_small_map=False)
    path = _hand_written(tmp_path, 'cls_swin.py', RESNET_CLS, dict(backbone=swin, head=dict(in_channels=160)))
    rc, stdout, stderr = run_tool(tool, capsys, '--verify-only', path, '--input-size', SMALL, SMALL)
    assert rc == 1 and stderr.startswith('swap_backbone: error: the backbone step failed'), stderr[-2000:]
    assert 'Traceback' not in stderr and len(stderr.strip().splitlines()) == 1
    rc, stdout, stderr = run_tool(tool, capsys, '--verify-only', path, '--input-size', '224', '224')
    assert rc == 0 and 'verify: OK' in stdout, stderr[-3000:]


# ----------------------------------------------------------------------------------------- the delta alone
def test_preset_gives_the_paper_widths_without_building_our_model(tool, tmp_path, capsys, monkeypatch):
    from mmmixer.models.backbones.ms_mlp import MSMLP

    def refuse(*args, **kwargs):
        raise AssertionError('the swap built an MSMLP')

    monkeypatch.setattr(MSMLP, '__init__', refuse)
    out = tmp_path / 'mask_rcnn_msmlp_t.py'
    rc, stdout, stderr = run_tool(tool, capsys, MASK_RCNN, 'msmlp-tiny', '--out', out)
    assert rc == 0, stderr
    assert 'verifying' not in stdout
    cfg = Config.fromfile(str(out))
    assert cfg.model.backbone.arch == 'tiny'
    assert cfg.model.neck.in_channels == [96, 192, 384, 768]  # MS-MLP-T, arXiv 2202.06510 Table 1


def test_checkpoint_becomes_the_backbone_init_cfg(tool, tmp_path, capsys):
    out = tmp_path / 'resnet_cls_msmlp.py'
    rc, _, stderr = run_tool(tool, capsys, RESNET_CLS, 'msmlp-tiny', '--out', out, '--checkpoint', 'x.pth')
    assert rc == 0, stderr
    assert as_written(str(out))['model']['backbone']['init_cfg'] == \
        dict(type='Pretrained', checkpoint='x.pth', prefix='backbone.')
    assert Config.fromfile(str(out)).model.backbone.init_cfg.checkpoint == 'x.pth'


def test_model_pretrained_of_the_old_backbone_is_cleared(tool, tmp_path, capsys):
    from mmmixer.swap import load_downstream
    assert load_downstream(FCN)[0].model.pretrained  # the ResNet-V1c weights the FCN config asks for
    out = tmp_path / 'fcn_msmlp.py'
    rc, _, stderr = run_tool(tool, capsys, FCN, 'msmlp-tiny', '--out', out)
    assert rc == 0, stderr
    assert as_written(str(out))['model']['pretrained'] is None
    assert Config.fromfile(str(out)).model.pretrained is None


def test_downstream_custom_imports_are_kept(tool, tmp_path, capsys):
    down = tmp_path / 'my_resnet.py'
    down.write_text(f'_base_ = {RESNET_CLS!r}\n'
                    "custom_imports = dict(imports=['mmpretrain.models'], allow_failed_imports=False)\n")
    out = tmp_path / 'work' / 'my_resnet_msmlp.py'
    rc, _, stderr = run_tool(tool, capsys, down, 'msmlp-tiny', '--out', out)
    assert rc == 0, stderr
    written = as_written(str(out))
    assert written['_base_'] == osp.join('..', 'my_resnet.py')  # relative to the written file
    assert written['custom_imports'] == dict(imports=['mmpretrain.models', 'mmmixer.models'],
                                             allow_failed_imports=False)
    cfg = Config.fromfile(str(out))
    assert cfg.model.head.in_channels == 768 and cfg.custom_imports.imports[0] == 'mmpretrain.models'


@pytest.mark.parametrize('downstream,shift_mode,norm_eval', [(MASK_RCNN, 'zero', True), (UPERNET, 'zero', False),
                                                             (RESNET_CLS, None, False)],
                         ids=['mmdet', 'mmseg', 'mmpretrain'])
def test_msmlp_recipe_follows_the_task(downstream, shift_mode, norm_eval):
    """MS-MLP's zero-padded shift for dense prediction, not for ImageNet; norm_eval as the old backbone had it
    (mmdet ResNet: True; mmseg / mmpretrain: False)."""
    from mmmixer.swap import swap_backbone
    plan = swap_backbone(downstream, 'msmlp-tiny')
    assert plan.backbone.get('shift_mode') == shift_mode
    assert plan.backbone['norm_eval'] is norm_eval


#: family -> the parameters our det / seg configs exempt from weight decay (besides the norms)
NO_DECAY = {
    'msmlp': {'.gamma'},
    'posmlp': {'.pos_map.'},
    'stripmlp': {'.row_pos', '.col_pos'},
    'swin_msmlp': {'.relative_position_bias_table', '.gamma'},
}


@pytest.mark.parametrize('family', list(FAMILIES))
def test_paramwise_cfg_of_each_family_matches_its_parameters(family):
    from mmengine.registry import MODELS, DefaultScope

    from mmmixer.swap import swap_backbone
    plan = swap_backbone(MASK_RCNN, family.replace('_', '-') + '-tiny')
    paramwise = plan.optim_wrapper['paramwise_cfg']
    assert paramwise['norm_decay_mult'] == 0.0
    assert set(paramwise['custom_keys']) == NO_DECAY[family]
    assert all(v == dict(decay_mult=0.0) for v in paramwise['custom_keys'].values())
    # mmengine matches custom_keys as substrings of the full parameter names: each key must name real parameters
    kind, arch = FAMILIES[family]
    with DefaultScope.overwrite_default_scope('mmmixer'):
        model = MODELS.build(dict(type=kind, arch=arch, out_indices=(0, 1, 2, 3)))
    names = ['backbone.' + n for n, _ in model.named_parameters()]
    assert all(any(key in n for n in names) for key in paramwise['custom_keys']), paramwise['custom_keys']


# ----------------------------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize('backbone,message', [
    ('foo-tiny', "backbone 'foo-tiny': accepted: a preset <family>-<size> with family one of ['msmlp', 'posmlp'"),
    ('msmlp-huge', "backbone MSMLP: arch 'huge' is unknown; accepted: ["),
], ids=['unknown-family', 'unknown-size'])
def test_unknown_preset_or_size(backbone, message):
    from mmmixer.swap import SwapError, swap_backbone
    with pytest.raises(SwapError) as info:
        swap_backbone(RESNET_CLS, backbone)
    assert message in str(info.value)
    if backbone == 'msmlp-huge':
        assert "'tiny'" in str(info.value) and "'base'" in str(info.value)


def test_downstream_that_does_not_exist(tmp_path):
    from mmmixer.swap import SwapError, swap_backbone
    missing = str(tmp_path / 'nope.py')
    with pytest.raises(SwapError, match=f"downstream config '{missing}' does not exist; accepted: a config file"):
        swap_backbone(missing, 'msmlp-tiny')


def test_backbone_file_without_a_backbone_dict(tmp_path):
    from mmmixer.swap import SwapError, swap_backbone
    path = tmp_path / 'not_a_backbone.py'
    path.write_text('model = dict(neck=dict(in_channels=[1]))\n')
    with pytest.raises(SwapError, match='has neither a `backbone` nor a `model.backbone` dict'):
        swap_backbone(RESNET_CLS, str(path))


def test_out_indices_out_of_range(tool, tmp_path, capsys):
    out = tmp_path / 'bad.py'
    rc, _, stderr = run_tool(tool, capsys, RESNET_CLS, 'msmlp-tiny', '--out', out, '--out-indices', 5)
    assert rc == 1
    assert stderr.strip() == 'swap_backbone: error: out_indices [5]: accepted stages 0..3'
    assert not out.exists()


# ---------------------------------------------------------------------------------------------- input sizes
@pytest.mark.parametrize('downstream,size', [
    (MASK_RCNN, ((800, 1333), 1)),
    (FCN, ((512, 1024), 1)),
    (RESNET_CLS, ((224, 224), 1)),
    (POSE, ((256, 192), 1)),  # (h, w); the codec writes (w, h) = (192, 256)
    (TSN, ((224, 224), 3)),
    (TSM, ((224, 224), 8)),
], ids=['mmdet', 'mmseg', 'mmpretrain', 'mmpose', 'mmaction-tsn', 'mmaction-tsm'])
def test_input_size_of_each_codebase(downstream, size):
    from mmmixer.swap import input_size_of, load_downstream
    assert input_size_of(load_downstream(downstream)[0]) == size


# -------------------------------------------------------------------------------------------------------- mim
def test_mim_run_swap_backbone(tmp_path):
    """``mim run mmmixer swap_backbone`` runs the installed copy's tool (``mmmixer/.mim/tools/misc``). Not
    ``--help``: mim (0.3) strips ``-h``/``--help`` and prints a tool's help for official OpenMMLab codebases only."""
    mim = shutil.which('mim') or osp.join(osp.dirname(sys.executable), 'mim')
    if not osp.isfile(mim):
        pytest.skip(f'mim is not installed next to {sys.executable}')
    from mim.utils import get_installed_path
    script = osp.join(get_installed_path('mmmixer'), '.mim', 'tools', 'misc', 'swap_backbone.py')
    if not osp.isfile(script):
        pytest.skip(f'the installed mmmixer has no {script} (an editable install, or installed before the tool)')
    out = tmp_path / 'resnet_cls_msmlp.py'
    result = subprocess.run([mim, 'run', 'mmmixer', 'swap_backbone', RESNET_CLS, 'msmlp-tiny', '--out', str(out)],
                            capture_output=True, text=True, cwd=str(tmp_path), env=subprocess_env(), timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert 'wrote' in result.stdout and as_written(str(out))['_base_'] == RESNET_CLS
