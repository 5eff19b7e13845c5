#!/usr/bin/env bash
# Train on a slurm cluster with srun (mmengine's `--launcher slurm`):
#   [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS="..."] tools/slurm_train.sh PARTITION JOB_NAME CONFIG [WORK_DIR] [train.py args]
# One task per process: rank = SLURM_PROCID, world size = SLURM_NTASKS, local rank = SLURM_LOCALID; the master is the
# first node of SLURM_NODELIST and MASTER_PORT (default 29500). Without GPUs set GPUS_PER_NODE=0: the tasks then run
# on CPU with the gloo backend (tools/train.py). See docs/distributed.md.
set -x

PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=${4:-}
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
TASKS_PER_NODE=${TASKS_PER_NODE:-$(( GPUS_PER_NODE > 0 ? GPUS_PER_NODE : GPUS ))}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
if [ -n "$WORK_DIR" ] && [ "${WORK_DIR#--}" = "$WORK_DIR" ]; then
    PY_ARGS=(--work-dir "$WORK_DIR" "${@:5}")
else
    PY_ARGS=("${@:4}")
fi
GRES=()
if [ "$GPUS_PER_NODE" -gt 0 ]; then
    GRES=(--gres=gpu:"$GPUS_PER_NODE")
fi

PYTHONPATH="$(dirname "$0")/..":$PYTHONPATH \
srun -p "$PARTITION" \
    --job-name="$JOB_NAME" \
    "${GRES[@]}" \
    --ntasks="$GPUS" \
    --ntasks-per-node="$TASKS_PER_NODE" \
    --cpus-per-task="$CPUS_PER_TASK" \
    --kill-on-bad-exit=1 \
    $SRUN_ARGS \
    python -u "$(dirname "$0")/train.py" "$CONFIG" --launcher slurm "${PY_ARGS[@]}"
