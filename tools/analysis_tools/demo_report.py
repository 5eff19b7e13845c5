"""Summarise the runs of tools/run_demo.sh: metrics vs untrained baselines, curves, pictures, checkpoints.

    python tools/analysis_tools/demo_report.py WORK_DIR [--times name=seconds ...]

Reads ``WORK_DIR/{cls,det,seg}/<run>/vis_data/scalars.json`` (mmengine's LocalVisBackend), the baseline metrics
``WORK_DIR/{det,seg}_untrained.txt`` (the last line printed by tools/test.py), writes ``WORK_DIR/curves.png``
(training loss and validation metrics of each run) and prints a summary.
"""
import argparse
import ast
import glob
import json
import os.path as osp


def _scalars(run_dir):
    logs = sorted(glob.glob(osp.join(run_dir, '*', 'vis_data', 'scalars.json')))
    if not logs:
        return [], []
    records = [json.loads(line) for line in open(logs[-1])]
    return [r for r in records if 'loss' in r], [r for r in records if 'loss' not in r and len(r) > 3]


def _baseline(path):
    if not osp.isfile(path):
        return {}
    try:
        return ast.literal_eval(open(path).read().strip())
    except (ValueError, SyntaxError):
        return {}


def _plot(runs, out):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, len(runs), figsize=(5 * len(runs), 7), squeeze=False)
    for col, (title, (train, val), metric_keys) in enumerate(runs):
        ax = axes[0][col]
        ax.plot([r['step'] for r in train], [r['loss'] for r in train], lw=1)
        ax.set_title(f'{title}: training loss')
        ax.set_xlabel('iteration')
        ax = axes[1][col]
        for key in metric_keys:
            points = [(r['step'], r[key]) for r in val if key in r]
            if points:
                ax.plot(*zip(*points), marker='o', label=key)
        ax.set_title(f'{title}: validation')
        ax.set_xlabel('epoch' if title == 'classification' or title == 'detection' else 'iteration')
        ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=80)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('work_dir')
    parser.add_argument('--times', nargs='*', default=[], help='name=seconds pairs to print')
    args = parser.parse_args(argv)
    wd = args.work_dir
    runs, lines = [], []
    cls_train, cls_val = _scalars(osp.join(wd, 'cls'))
    if cls_val:
        top1 = [r['accuracy/top1'] for r in cls_val]
        lines.append(f'classification  val top-1 {top1[-1]:.2f}% (best {max(top1):.2f}%, chance 10%)  '
                     f'[MS-MLP 1.05M params, 1,437 train / 360 val digits]')
        lines.append(f'                checkpoint {osp.abspath(open(osp.join(wd, "cls", "last_checkpoint")).read().strip())}')
        runs.append(('classification', (cls_train, cls_val), ['accuracy/top1']))
    det_train, det_val = _scalars(osp.join(wd, 'det'))
    if det_val:
        base = _baseline(osp.join(wd, 'det_untrained.txt'))
        last = det_val[-1]
        lines.append('detection       bbox mAP {:.3f} (untrained {:.3f}), segm mAP {:.3f} (untrained {:.3f}), '
                     'bbox mAP@0.5 {:.3f}  [Mask R-CNN, COCO-format digits]'.format(
                         last['coco/bbox_mAP'], base.get('coco/bbox_mAP', float('nan')), last['coco/segm_mAP'],
                         base.get('coco/segm_mAP', float('nan')), last['coco/bbox_mAP_50']))
        runs.append(('detection', (det_train, det_val), ['coco/bbox_mAP', 'coco/segm_mAP']))
    seg_train, seg_val = _scalars(osp.join(wd, 'seg'))
    if seg_val:
        base = _baseline(osp.join(wd, 'seg_untrained.txt'))
        last = seg_val[-1]
        lines.append('segmentation    mIoU {:.2f} (untrained {:.2f}), aAcc {:.2f}  [UperNet, ADE20K-format digits; '
                     'mIoU over the classes present]'.format(last['mIoU'], base.get('mIoU', float('nan')),
                                                            last['aAcc']))
        runs.append(('segmentation', (seg_train, seg_val), ['mIoU']))
    if runs:
        _plot(runs, osp.join(wd, 'curves.png'))
    print('=' * 100)
    print('\n'.join(lines))
    if args.times:
        print('wall time: ' + ', '.join(f'{t.split("=")[0]} {t.split("=")[1]} s' for t in args.times))
    pictures = sorted(glob.glob(osp.join(wd, '*', '*', 'vis_data', 'vis_image', '*.png')))
    if runs:
        print(f'curves:   {osp.abspath(osp.join(wd, "curves.png"))}')
    for task in ('det', 'seg'):
        pics = [p for p in pictures if f'{osp.sep}{task}{osp.sep}' in p]
        if pics:
            print(f'pictures: {osp.abspath(osp.dirname(pics[0]))} ({len(pics)} validation images, '
                  'prediction beside ground truth)')
    print('=' * 100)


if __name__ == '__main__':
    main()
