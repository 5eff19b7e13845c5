#!/usr/bin/env bash
# Download the wheels that tools/analysis_tools/gpu_check.py needs on an offline GPU machine that has Python 3.12,
# a CUDA build of torch, numpy, matplotlib, Pillow and PyYAML, but no OpenMMLab package:
#
#   bash tools/analysis_tools/build_gpu_wheelhouse.sh [DIR]      # default DIR: .whl (git-ignored)
#   # copy DIR and this checkout to the GPU machine, then there:
#   python3 tools/analysis_tools/gpu_check.py --install-from DIR [gpu_check options]
#   # or by hand:
#   python3 -m venv --system-site-packages /tmp/venv && /tmp/venv/bin/pip install --no-index --no-deps DIR/*.whl
#   /tmp/venv/bin/python tools/analysis_tools/gpu_check.py
#
# All wheels are pure Python (py3-none-any), for any CPython 3 (the GPU machine has 3.12); the list, from the
# Requires-Dist lines of each package's METADATA, less what the GPU machine already has (torch, numpy, matplotlib,
# Pillow, PyYAML, packaging) and less what the check never imports:
#   mmengine 0.10.7        addict, yapf (+ platformdirs), termcolor, rich (+ markdown-it-py, mdurl, pygments)
#   mmcv-lite 2.1.0        mmcv 2.1.0 without the compiled ops (mmcv.cnn bricks only; the backbones need no op)
#   mmpretrain 1.2.0       einops, importlib-metadata (+ zipp), modelindex / model-index (+ ordered-set, markdown,
#                          click), mat4py
#   mmmixer                this checkout, built as a wheel
# Left out on purpose: opencv-python (about 48 MiB, over the budget of the device machine's transfer together with
# the checkout; mmcv/mmengine import cv2 only for image I/O, and gpu_check.py registers a placeholder when it is
# missing) and openmim (gpu_check.py builds configs with mmengine directly; mim is not needed to run it).
# Total: about 5 MiB (5,328 KiB when written; the script prints the size and fails above 50 MiB).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DIR=${1:-$here/.whl}
PY=${PYTHON:-python3}
mkdir -p "$DIR"

PACKAGES=(
  mmengine==0.10.7 addict==2.4.0 yapf==0.43.0 platformdirs==4.14.9 termcolor==3.3.0
  rich==15.0.0 markdown-it-py==4.3.0 mdurl==0.1.2 pygments==2.21.0
  mmcv-lite==2.1.0
  mmpretrain==1.2.0 einops==0.8.2 importlib-metadata==10.2.0 zipp==4.1.2 modelindex==0.0.2 model-index==0.1.11
  ordered-set==4.1.0 markdown==3.11.3 click==8.5.1 mat4py==0.6.0
)
echo "[wheelhouse] downloading ${#PACKAGES[@]} pure-Python wheels for CPython 3.12 into $DIR" >&2
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --abi none --platform any -d "$DIR" "${PACKAGES[@]}"

echo "[wheelhouse] building the mmmixer wheel from $here" >&2
rm -f "$DIR"/mmmixer-*.whl
tmp=$(mktemp -d)
cp -r "$here" "$tmp/src"   # a copy: setuptools writes build/ and *.egg-info next to setup.py
rm -rf "$tmp/src/.whl" "$tmp/src/build" "$tmp/src/work_dirs" "$tmp/src/.git" "$tmp/src/tests"
"$PY" -m pip wheel -q --no-deps -w "$DIR" "$tmp/src"   # build isolation: setuptools from the index
rm -rf "$tmp"

not_pure=$(ls "$DIR"/*.whl | grep -v -- '-none-any\.whl$' || true)
[ -z "$not_pure" ] || { echo "[wheelhouse] not pure-Python: $not_pure" >&2; exit 1; }
size=$(du -cb "$DIR"/*.whl | tail -1 | cut -f1)
ls -l "$DIR"/*.whl >&2
echo "[wheelhouse] $(ls "$DIR"/*.whl | wc -l) wheels, $((size / 1024)) KiB" >&2
if [ "$size" -gt $((50 * 1024 * 1024)) ]; then
  echo "[wheelhouse] over 50 MiB: too large to travel with the checkout" >&2
  exit 1
fi
echo "$DIR"
