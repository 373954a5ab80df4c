#!/usr/bin/env bash
# Evaluation on a Slurm cluster.
#   GPUS=8 GPUS_PER_NODE=8 tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args]
set -euo pipefail
if [[ $# -lt 4 ]]; then echo "usage: $0 PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args...]" >&2; exit 2; fi
PARTITION=$1; JOB_NAME=$2; CONFIG=$3; CHECKPOINT=$4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
source "$(dirname "${BASH_SOURCE[0]}")/_python.sh"
CKPT_ARGS=()
[[ "$CHECKPOINT" != "none" ]] && CKPT_ARGS=("$CHECKPOINT")
srun -p "$PARTITION" --job-name="$JOB_NAME" --gres=gpu:"$GPUS_PER_NODE" \
    --ntasks="$GPUS" --ntasks-per-node="$GPUS_PER_NODE" --cpus-per-task="$CPUS_PER_TASK" \
    --kill-on-bad-exit=1 ${SRUN_ARGS:-} \
    "$PYTHON" -u "$TOOLS_DIR/test.py" "$CONFIG" "${CKPT_ARGS[@]}" --launcher slurm "${@:5}"
