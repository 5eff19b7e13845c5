#!/usr/bin/env bash
# The main job, on real handwritten digits (scikit-learn's bundled UCI scans; nothing is downloaded):
#   1. set up what is missing (tools/setup_env.sh), write the datasets on first use;
#   2. train an MS-MLP classifier with `mim train mmmixer` and validate it (top-1);
#   3. transfer its backbone into Mask R-CNN (`mim train mmdet`) on a COCO-format digits set (bbox/segm mAP);
#   4. transfer it into UperNet (`mim train mmseg`) on an ADE20K-format digits set (mIoU);
#   5. print the metrics next to the untrained baselines, the wall times, the checkpoints, and where the
#      pictures are (validation predictions drawn by the mmdet/mmseg visualizers, loss/metric curves).
#   bash tools/run_demo.sh [--classification-only]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
only_cls=0
[ "${1:-}" = "--classification-only" ] && only_cls=1
t0=$(date +%s)
VENV=$(bash tools/setup_env.sh | sed -n 's/^VENV=//p')
export PATH="$VENV/bin:$PATH"
WD=${WORK_DIR:-work_dirs/demo}
mkdir -p "$WD"
t_setup=$(date +%s)
python - <<'PY'
from mmmixer.datasets import make_digits_ade20k, make_digits_coco, make_digits_folder
i = make_digits_folder('data/digits', size=32)
c = make_digits_coco('data/digits_coco')
a = make_digits_ade20k('data/digits_ade20k')
print(f"data: digits {i['num_train']}/{i['num_val']} images; COCO-format {c['num_train']}/{c['num_val']} canvases "
      f"({c['num_instances']['train']}/{c['num_instances']['val']} digits); ADE20K-format {a['num_train']}/{a['num_val']}")
PY

# 1) classification
CLS_DIR=$WD/cls
rm -rf "$CLS_DIR"
mim train mmmixer msmlp-nano_1xb64-40e_digits.py --work-dir "$CLS_DIR"
CLS_CKPT=$(cat "$CLS_DIR/last_checkpoint")
t_cls=$(date +%s)
t_det=$t_cls
t_seg=$t_cls
if [ $only_cls = 0 ]; then
  DET_CFG=configs/demo/mask-rcnn_msmlp-nano_fpn_4e_digits-coco.py
  SEG_CFG=configs/demo/msmlp-nano_upernet_1xb8-400i_digits-ade20k.py
  # untrained baselines: the same models with the transferred backbone and freshly initialised heads
  python tools/test.py "$DET_CFG" none --work-dir "$WD/det_untrained" \
    --cfg-options model.backbone.init_cfg.checkpoint="$CLS_CKPT" | tail -1 > "$WD/det_untrained.txt"
  python tools/test.py "$SEG_CFG" none --work-dir "$WD/seg_untrained" \
    --cfg-options model.backbone.init_cfg.checkpoint="$CLS_CKPT" | tail -1 > "$WD/seg_untrained.txt"
  # 2) detection + instance segmentation, through mmdet's own tool chain
  rm -rf "$WD/det"
  mim train mmdet "$DET_CFG" --work-dir "$WD/det" --cfg-options model.backbone.init_cfg.checkpoint="$CLS_CKPT"
  t_det=$(date +%s)
  # 3) semantic segmentation, through mmseg's own tool chain
  rm -rf "$WD/seg"
  mim train mmseg "$SEG_CFG" --work-dir "$WD/seg" --cfg-options model.backbone.init_cfg.checkpoint="$CLS_CKPT"
  t_seg=$(date +%s)
fi
python tools/analysis_tools/demo_report.py "$WD" \
  --times "setup=$((t_setup - t0))" "classification=$((t_cls - t_setup))" "detection=$((t_det - t_cls))" \
  "segmentation=$((t_seg - t_det))"
