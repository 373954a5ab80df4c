#!/usr/bin/env bash
# Multi-process / multi-node training with torchrun + MMEngine's pytorch launcher.
#   tools/dist_train.sh CONFIG NPROC [train.py args]
# Multi-node: NNODES=2 NODE_RANK=0|1 MASTER_ADDR=host PORT=29500 on every node.
# Without CUDA the processes run on CPU with the gloo backend.
set -euo pipefail
if [[ $# -lt 2 ]]; then echo "usage: $0 CONFIG NPROC [train.py args...]" >&2; exit 2; fi
CONFIG=$1
NPROC=$2
source "$(dirname "${BASH_SOURCE[0]}")/_python.sh"
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${PORT:-29500}" \
    --nproc_per_node="$NPROC" \
    "$TOOLS_DIR/train.py" "$CONFIG" --launcher pytorch "${@:3}"
