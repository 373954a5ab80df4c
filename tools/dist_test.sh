#!/usr/bin/env bash
# Multi-process / multi-node evaluation with torchrun + MMEngine's pytorch launcher.
#   tools/dist_test.sh CONFIG CHECKPOINT NPROC [test.py args]
# Use "none" as CHECKPOINT when the config names its own weights.
set -euo pipefail
if [[ $# -lt 3 ]]; then echo "usage: $0 CONFIG CHECKPOINT NPROC [test.py args...]" >&2; exit 2; fi
CONFIG=$1
CHECKPOINT=$2
NPROC=$3
source "$(dirname "${BASH_SOURCE[0]}")/_python.sh"
CKPT_ARGS=()
[[ "$CHECKPOINT" != "none" ]] && CKPT_ARGS=("$CHECKPOINT")
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${PORT:-29500}" \
    --nproc_per_node="$NPROC" \
    "$TOOLS_DIR/test.py" "$CONFIG" "${CKPT_ARGS[@]}" --launcher pytorch "${@:4}"
