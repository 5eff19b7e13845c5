#!/usr/bin/env bash
# The main job: set up what is missing, then train an MS-MLP classifier on real handwritten digits with
# `mim train mmmixer`, evaluate it, and print the validation top-1, the wall time and the checkpoint path.
#   bash tools/run_demo.sh [extra train.py args, e.g. --cfg-options train_cfg.max_epochs=5]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
t0=$(date +%s)
VENV=$(bash tools/setup_env.sh | sed -n 's/^VENV=//p')
export PATH="$VENV/bin:$PATH"
t1=$(date +%s)
CONFIG=msmlp-nano_1xb64-40e_digits.py
WORK_DIR=${WORK_DIR:-work_dirs/msmlp-nano_1xb64-40e_digits}
python tools/dataset_converters/digits_to_imagenet.py data/digits --size 32
rm -rf "$WORK_DIR"
mim train mmmixer "$CONFIG" --work-dir "$WORK_DIR" "$@"
t2=$(date +%s)
python - "$WORK_DIR" "$((t1 - t0))" "$((t2 - t1))" <<'PY'
import glob, json, os, sys
work_dir, setup_s, train_s = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
logs = sorted(glob.glob(os.path.join(work_dir, '*', 'vis_data', 'scalars.json')))
vals = [json.loads(l) for l in open(logs[-1]) if 'accuracy/top1' in l]
best = sorted(glob.glob(os.path.join(work_dir, 'best_accuracy_top1_*.pth')))
last = open(os.path.join(work_dir, 'last_checkpoint')).read().strip()
print('=' * 72)
print(f'MS-MLP (1.04M params) on real handwritten digits, {len(vals)} validations')
print(f'validation top-1 (last epoch): {vals[-1]["accuracy/top1"]:.2f}%   '
      f'best: {max(v["accuracy/top1"] for v in vals):.2f}%')
print(f'wall time: setup {setup_s} s, train + eval {train_s} s')
print(f'checkpoint: {os.path.abspath(last)}')
if best:
    print(f'best checkpoint: {os.path.abspath(best[-1])}')
print('=' * 72)
PY
