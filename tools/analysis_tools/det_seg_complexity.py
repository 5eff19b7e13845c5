"""Parameters and FLOPs of the tiny Mask R-CNN and UperNet models of every backbone family next to Swin-T's, measured
with mmdet's and mmseg's own ``get_flops`` tools (one subprocess per config).

    python tools/analysis_tools/det_seg_complexity.py [--only mask-rcnn|upernet] [--keep-logs DIR]

Mask R-CNN: ``<mmdet>/.mim/tools/analysis_tools/get_flops.py CONFIG --num-images 1`` on one 1280x800 image. mmdet 3's
tool has no ``--shape``: it averages over the first images of ``val_dataloader``, so this script writes a one-image
COCO-format val set (1280x800 noise image; the test pipeline's ``Resize(1333, 800, keep_ratio)`` keeps it at
1280x800, a multiple of 32, the input size of the Swin detection README's 267G) and points ``data_root`` at it.
UperNet: ``<mmseg>/.mim/tools/analysis_tools/get_flops.py CONFIG --shape 2048 512`` (random input; the tool drops the
auxiliary head; the Swin segmentation README's 945G uses the same 2048x512). mmseg 1.2.2's tool fails for every model
with mmengine >= 0.7 (``ValueError: "input_shape" and "inputs" cannot be both set``: it passes both to
``get_model_complexity_info``; open-mmlab/mmsegmentation#3241, fixed upstream after 1.2.2 by
open-mmlab/mmsegmentation#3551, which passes ``input_shape=None``). This script therefore runs the installed tool's
own ``main()`` in a subprocess with exactly that one-argument fix applied to its ``get_model_complexity_info`` call
(see :func:`run_mmseg_tool`); nothing else of the tool changes.

Both tools call ``mmengine.analysis.get_model_complexity_info`` (fvcore-style tracing): "FLOPs" are multiply-adds of
convolutions, linear layers, matmul/mm/bmm/einsum, plus batch/layer/group norms and upsampling; element-wise ops
(add, mul, GELU, softmax, pad, roll, ...) and custom ops (NMS, RoIAlign) have no rule and count 0 for every model.
The two-stage detector's count includes the RoI heads on the proposals the untrained RPN keeps (up to 1000), so it
varies slightly with the model. Static counts, no timing. About 1-2 minutes per model on 2 CPU cores.

Cross-check of the counter on each family: the same ``FlopAnalyzer`` on each tiny dense backbone alone (the
detector's backbone config, 1x3x224x224), printed with the ops it skipped inside the backbone, so that a family
whose main compute escaped the counter would show (compare with the ImageNet FLOPs of docs/papers.md).
"""
import argparse
import json
import os
import os.path as osp
import re
import subprocess
import sys
import tempfile

REPO = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))

# (row label, config): 'mmdet::' / 'mmseg::' configs are the packages' own, the others ours (by basename)
MASK_RCNN = [
    ('Swin-T (mmdet)', 'mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py'),
    ('MS-MLP-T', 'mask-rcnn_msmlp-t_fpn_1x_coco.py'),
    ('PosMLP-T', 'mask-rcnn_posmlp-t_fpn_1x_coco.py'),
    ('Strip-MLP-T*', 'mask-rcnn_stripmlp-lt_fpn_1x_coco.py'),
    ('Strip-MLP-T', 'mask-rcnn_stripmlp-t_fpn_1x_coco.py'),
    ('Swin+MS-MLP-T', 'mask-rcnn_swin-msmlp-t_fpn_1x_coco.py'),
]
UPERNET = [
    ('Swin-T (mmseg)', 'mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py'),
    ('MS-MLP-T', 'msmlp-t_upernet_8xb2-160k_ade20k-512x512.py'),
    ('PosMLP-T', 'posmlp-t_upernet_8xb2-160k_ade20k-512x512.py'),
    ('Strip-MLP-T*', 'stripmlp-lt_upernet_8xb2-160k_ade20k-512x512.py'),
    ('Strip-MLP-T', 'stripmlp-t_upernet_8xb2-160k_ade20k-512x512.py'),
    ('Swin+MS-MLP-T', 'swin-msmlp-t_upernet_8xb2-160k_ade20k-512x512.py'),
]


def package_dir(name):
    import importlib
    return osp.dirname(importlib.import_module(name).__file__)


def resolve_config(name):
    """Path of 'mmdet::x' / 'mmseg::x' (the installed package's .mim/configs) or of one of our configs."""
    if '::' in name:
        package, rel = name.split('::')
        return osp.join(package_dir(package), '.mim', 'configs', rel)
    hits = [osp.join(d, name) for d, _, files in os.walk(osp.join(REPO, 'configs')) if name in files]
    if len(hits) != 1:
        raise SystemExit(f'config {name}: found {hits}')
    return hits[0]


def write_coco_image(root, width=1280, height=800):
    """A one-image COCO 2017-format val set (annotations/instances_val2017.json + val2017/) with the 80 classes."""
    import numpy as np
    from mmdet.datasets import CocoDataset
    from PIL import Image
    os.makedirs(osp.join(root, 'val2017'), exist_ok=True)
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(
        osp.join(root, 'val2017', '000000000001.jpg'), quality=95)
    classes = CocoDataset.METAINFO['classes']
    ann = dict(
        images=[dict(id=1, file_name='000000000001.jpg', width=width, height=height)],
        annotations=[dict(id=1, image_id=1, category_id=1, bbox=[100, 100, 200, 300], area=60000, iscrowd=0,
                          segmentation=[[100, 100, 300, 100, 300, 400, 100, 400]])],
        categories=[dict(id=i + 1, name=c) for i, c in enumerate(classes)])
    with open(osp.join(root, 'annotations', 'instances_val2017.json'), 'w') as f:
        json.dump(ann, f)


def command(kind, config, coco_root):
    if kind == 'mask-rcnn':
        tool = osp.join(package_dir('mmdet'), '.mim', 'tools', 'analysis_tools', 'get_flops.py')
        return [sys.executable, tool, config, '--num-images', '1', '--cfg-options',
                f'val_dataloader.dataset.data_root={coco_root}/', 'val_dataloader.num_workers=0',
                'val_dataloader.persistent_workers=False']
    tool = osp.join(package_dir('mmseg'), '.mim', 'tools', 'analysis_tools', 'get_flops.py')
    return [sys.executable, osp.abspath(__file__), '--run-mmseg-tool', tool, config, '--shape', '2048', '512']


def run_mmseg_tool(tool, tool_args):
    """Run mmseg's get_flops.py ``main()`` with upstream fix open-mmlab/mmsegmentation#3551 (``input_shape=None``
    when ``inputs`` is given)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location('mmseg_get_flops', tool)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    original = module.get_model_complexity_info

    def get_model_complexity_info(model, input_shape=None, inputs=None, **kwargs):
        return original(model, None if inputs is not None else input_shape, inputs=inputs, **kwargs)

    module.get_model_complexity_info = get_model_complexity_info
    sys.argv = [tool] + list(tool_args)
    module.main()


def run(kind, label, name, coco_root, log_dir):
    config = resolve_config(name)
    cmd = command(kind, config, coco_root)
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env)
    out = result.stdout + result.stderr
    if log_dir:
        with open(osp.join(log_dir, f'{kind}_{osp.basename(config)}.log'), 'w') as f:
            f.write(' '.join(cmd) + '\n' + out)
    flops = re.search(r'Flops: (\S+)', out)
    params = re.search(r'Params: (\S+)', out)
    shape = re.search(r'Input shape: (.*)', out)
    row = dict(kind=kind, label=label, config=name, returncode=result.returncode,
               flops=flops.group(1) if flops else None, params=params.group(1) if params else None,
               input=shape.group(1).strip() if shape else None,
               command=' '.join(['python'] + cmd[1:]).replace(osp.dirname(package_dir('mmdet')), '<site-packages>')
               .replace(REPO + os.sep, '').replace(coco_root, '<one-image-coco>'))
    if result.returncode != 0 or flops is None:
        row['error'] = out[-2000:]
    print(json.dumps({k: v for k, v in row.items() if k != 'error'}), flush=True)
    if 'error' in row:
        print(row['error'], flush=True)
    return row


def backbone_at_224(label, name):
    """FlopAnalyzer on the dense backbone of a Mask R-CNN config alone, 1x3x224x224 (cross-check, in process)."""
    import torch
    from mmengine.analysis import FlopAnalyzer
    from mmengine.config import Config
    from mmengine.registry import MODELS, DefaultScope
    if REPO not in sys.path:
        sys.path.insert(0, REPO)
    cfg = Config.fromfile(resolve_config(name))
    cfg.model.backbone.init_cfg = None
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmdet')):
        import mmdet.models  # noqa: F401  (registers mmdet's SwinTransformer)
        if 'custom_imports' in cfg:
            import mmmixer.models  # noqa: F401
        model = MODELS.build(cfg.model.backbone)
    model.eval()  # (not chained: mmdet's SwinTransformer.train() returns None)
    with torch.no_grad():
        analyzer = FlopAnalyzer(model, (torch.randn(1, 3, 224, 224), ))
        analyzer.unsupported_ops_warnings(False)
        analyzer.uncalled_modules_warnings(False)
        flops = analyzer.total()
        skipped = sorted(op.replace('aten::', '') for op in analyzer.unsupported_ops())
    row = dict(label=label, params=sum(p.numel() for p in model.parameters()), flops=flops, skipped=skipped)
    print(json.dumps(row), flush=True)
    return row


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ['--run-mmseg-tool']:
        return run_mmseg_tool(argv[1], argv[2:])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--only', choices=['mask-rcnn', 'upernet'])
    parser.add_argument('--keep-logs', help='directory for the full output of every tool run')
    args = parser.parse_args(argv)
    if args.keep_logs:
        os.makedirs(args.keep_logs, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        coco_root = osp.join(tmp, 'coco')
        write_coco_image(coco_root)
        for kind, table in (('mask-rcnn', MASK_RCNN), ('upernet', UPERNET)):
            if args.only and args.only != kind:
                continue
            for label, name in table:
                rows.append(run(kind, label, name, coco_root, args.keep_logs))
    backbones = [] if args.only else [backbone_at_224(label, name) for label, name in MASK_RCNN]
    print('\n| model | backbone | input (H, W) | params | FLOPs | config |')
    print('|---|---|---|---|---|---|')
    for row in rows:
        model = 'Mask R-CNN' if row['kind'] == 'mask-rcnn' else 'UperNet'
        print(f"| {model} | {row['label']} | {row['input'] or '-'} | {row['params'] or 'failed'} | "
              f"{row['flops'] or 'failed'} | `{row['config']}` |")
    if backbones:
        print('\n| backbone alone (dense, 4 outputs) | params | GFLOPs at 224x224 | ops without a FLOP rule inside |')
        print('|---|---|---|---|')
        for row in backbones:
            print(f"| {row['label']} | {row['params'] / 1e6:.2f}M | {row['flops'] / 1e9:.2f} | "
                  f"{', '.join(row['skipped']) or '-'} |")


if __name__ == '__main__':
    main()
