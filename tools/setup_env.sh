#!/usr/bin/env bash
# Create (or reuse) the mmmixer CPU environment: a venv outside the clone with the decided stack
#   torch 2.14.1 + torchvision 0.29.1, mmengine 0.10.7, mmcv 2.1.0 (built from source with ops),
#   mmdet 3.3.0, mmsegmentation 1.2.2, mmpretrain 1.2.0, openmim 0.3.9, and mmmixer itself;
#   plus the pose + action extra (mmpose 1.3.2, mmaction2 1.2.0: requirements/pose_action.txt).
# Idempotent: a second run checks a stamp and only reinstalls mmmixer from this checkout.
#
# Environment knobs:
#   MMMIXER_HOME   cache root (default: ~/.cache/mmmixer); holds venv/ and wheels/
#   MMMIXER_VENV   the venv to use (default: $MMMIXER_HOME/venv-<stack key>)
#   MMMIXER_JOBS   parallel compile jobs for mmcv (default: nproc)
# Prints the venv path as its last line ("VENV=<path>").
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PYTHON:-python3}
TORCH_VER=2.14.1
TV_VER=0.29.1
MMCV_VER=2.1.0
STACK_KEY="py$($PY -c 'import sys;print(f"{sys.version_info[0]}{sys.version_info[1]}")')-torch${TORCH_VER}"
MMMIXER_HOME=${MMMIXER_HOME:-$HOME/.cache/mmmixer}
VENV=${MMMIXER_VENV:-$MMMIXER_HOME/venv-$STACK_KEY}
WHEELS=$MMMIXER_HOME/wheels/$STACK_KEY
REQ=$here/requirements/runtime-cpu.txt
REQ_ANALYSIS=$here/requirements/analysis.txt  # optional extra, installed --no-deps
REQ_POSE_ACTION=$here/requirements/pose_action.txt  # optional extra, installed --no-deps (workarounds: see the file)
STAMP=$VENV/.mmmixer-stack-$(cat "$REQ" "$REQ_ANALYSIS" "$REQ_POSE_ACTION" "$0" | sha1sum | cut -c1-12)  # content only

log() { printf '[setup_env] %s\n' "$*" >&2; }

# mmaction2 1.2.0 (wheel and sdist) lacks mmaction/models/localizers/drn, so `import mmaction.models` fails on
# `from .drn.drn import DRN`. Skip that import in the installed localizers/__init__.py (only the DRN localizer
# becomes unavailable). Idempotent: does nothing when the folder exists or the file is already patched.
patch_mmaction_drn() {
  "$VENV/bin/python" - <<'PY'
import importlib.util, os.path as osp, re, sys
spec = importlib.util.find_spec('mmaction')  # locates the package without importing it
if spec is None:
    sys.exit('[setup_env] mmaction is not installed')
loc = osp.join(osp.dirname(spec.origin), 'models', 'localizers')
init, mark = osp.join(loc, '__init__.py'), '# DRN skipped by mmmixer tools/setup_env.sh'
if osp.isdir(osp.join(loc, 'drn')):
    sys.exit(0)
src = open(init).read()
if mark in src:
    print(f'[setup_env] mmaction2: DRN import already skipped in {init}', file=sys.stderr)
    sys.exit(0)
line = 'from .drn.drn import DRN\n'
if line not in src:
    sys.exit(f'[setup_env] mmaction2: localizers/drn is missing and {init} has no {line.strip()!r} to skip')
src = src.replace(line, f'{mark}: this mmaction2 release lacks localizers/drn\n')
src = re.sub(r",\s*'DRN'", '', src)
open(init, 'w').write(src)
print(f'[setup_env] mmaction2: localizers/drn missing from the package; patched {init} to skip the DRN import '
      '(the DRN localizer is unavailable)', file=sys.stderr)
PY
}

if [ ! -f "$STAMP" ]; then
  t0=$(date +%s)
  [ -x "$VENV/bin/python" ] || { log "creating venv $VENV"; $PY -m venv "$VENV"; }
  pip=("$VENV/bin/python" -m pip --disable-pip-version-check)
  log "base build tools"
  "${pip[@]}" install -q 'pip>=24' 'setuptools>=77,<82' wheel ninja
  log "torch $TORCH_VER + torchvision $TV_VER"
  "${pip[@]}" install -q "torch==$TORCH_VER" "torchvision==$TV_VER"
  mkdir -p "$WHEELS"
  mmcv_whl=$(ls "$WHEELS"/mmcv-$MMCV_VER-*.whl 2>/dev/null | head -1 || true)
  if [ -z "$mmcv_whl" ]; then
    log "building mmcv $MMCV_VER with ops from the PyPI sdist (about 16 min on 2 cores; cached in $WHEELS)"
    bdir=$(mktemp -d)
    # mmcv's setup.py imports these at build time (and pip download runs it to read the metadata)
    "${pip[@]}" install -q 'numpy>=2' packaging addict yapf pyyaml opencv-python-headless
    "${pip[@]}" download -q --no-deps --no-build-isolation --no-binary :all: "mmcv==$MMCV_VER" -d "$bdir"
    tar -xzf "$bdir"/mmcv-$MMCV_VER.tar.gz -C "$bdir"
    src="$bdir/mmcv-$MMCV_VER"
    # torch >= 2.10 headers require C++20; mmcv 2.1.0's setup.py asks for c++14/c++17.
    sed -i -e 's/-std=c++14/-std=c++20/g' -e 's/-std=c++17/-std=c++20/g' "$src/setup.py"
    grep -q 'std=c++20' "$src/setup.py" || { log "could not raise the C++ standard in mmcv setup.py"; exit 1; }

    (cd "$src" && MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS=${MMMIXER_JOBS:-$(nproc)} \
       "$VENV/bin/python" -m pip wheel -q --no-build-isolation --no-deps -w "$bdir/out" .)
    cp "$bdir"/out/mmcv-*.whl "$WHEELS"/
    rm -rf "$bdir"
    mmcv_whl=$(ls "$WHEELS"/mmcv-$MMCV_VER-*.whl | head -1)
  fi
  log "installing $mmcv_whl and the OpenMMLab stack"
  "${pip[@]}" install -q "$mmcv_whl" -r "$REQ"
  log "analysis extra (grad-cam for mmpretrain's vis_cam.py; --no-deps: see requirements/analysis.txt)"
  "${pip[@]}" install -q --no-deps -r "$REQ_ANALYSIS"
  log "pose + action extra (mmpose, mmaction2; --no-deps and xtcocotools built here: see requirements/pose_action.txt)"
  cython_pin=$(grep -E '^cython==' "$REQ_POSE_ACTION" || true)
  xtc_ver=$(grep -E '^xtcocotools==' "$REQ_POSE_ACTION" | cut -d= -f3 || true)
  [ -n "$cython_pin" ] && [ -n "$xtc_ver" ] || { log "no cython== / xtcocotools== pin in $REQ_POSE_ACTION"; exit 1; }
  "${pip[@]}" install -q --no-deps "$cython_pin"  # xtcocotools' build requirement
  xtc_whl=$(ls "$WHEELS"/xtcocotools-$xtc_ver-*.whl 2>/dev/null | head -1 || true)
  if [ -z "$xtc_whl" ]; then
    log "building xtcocotools $xtc_ver from the sdist against numpy $("$VENV/bin/python" -c 'import numpy; print(numpy.__version__)') (cached in $WHEELS)"
    "${pip[@]}" wheel -q --no-deps --no-build-isolation --no-binary xtcocotools "xtcocotools==$xtc_ver" -w "$WHEELS"
    xtc_whl=$(ls "$WHEELS"/xtcocotools-$xtc_ver-*.whl | head -1)
  fi
  "${pip[@]}" install -q --no-deps "$xtc_whl" -r <(grep -v -E '^(--no-binary|xtcocotools==)' "$REQ_POSE_ACTION")
  patch_mmaction_drn
  "$VENV/bin/python" -c "import mmcv.ops, mmdet.models, mmseg.models, mmpretrain.models, mmpose.models, \
mmaction.models, xtcocotools.mask" || { log "the stack does not import"; exit 1; }
  rm -f "$VENV"/.mmmixer-stack-*
  touch "$STAMP"
  log "environment ready in $(( $(date +%s) - t0 )) s"
fi

# mmmixer from this checkout, as a regular (non-editable) install so that `mim train mmmixer` finds .mim/
log "installing mmmixer from $here"
# setuptools reuses build/lib between builds: a config deleted or moved in the checkout would survive in the wheel
rm -rf "$here/build"
"$VENV/bin/python" -m pip --disable-pip-version-check install -q --no-deps --no-build-isolation --force-reinstall "$here" >&2
echo "VENV=$VENV"
