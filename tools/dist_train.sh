#!/usr/bin/env bash
# Multi-GPU (or multi-process CPU) training with torchrun:  tools/dist_train.sh CONFIG GPUS [train.py args]
# Several machines: NNODES, NODE_RANK, MASTER_ADDR, MASTER_PORT as for torchrun, e.g. 2 nodes x 8 GPUs:
#   node 0:  NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 tools/dist_train.sh CONFIG 8
#   node 1:  NNODES=2 NODE_RANK=1 MASTER_ADDR=10.0.0.1 tools/dist_train.sh CONFIG 8
# MAX_RESTARTS=N: torchrun restarts the whole group up to N times after a rank fails, with the same
# arguments; pass --resume too, so that a restart continues from the last checkpoint (docs/faults.md).
# TOOL picks the script (default tools/train.py; a relative path is taken from the repository root),
# e.g. mmdet's own, which needs its --launcher flag:
#   TOOL=$(python -c 'import mmdet, os; print(os.path.dirname(mmdet.__file__))')/.mim/tools/train.py \
#     tools/dist_train.sh CONFIG 8 --launcher pytorch
set -euo pipefail
if [[ $# -lt 2 ]]; then echo "usage: $0 CONFIG GPUS [args...]" >&2; exit 2; fi
CONFIG=$1; GPUS=$2; shift 2
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python}"
[[ -x "$ROOT/.venv/bin/python" && -z "${PYTHON:-}" ]] && PY="$ROOT/.venv/bin/python"
SCRIPT="${TOOL:-tools/train.py}"
[[ "$SCRIPT" = /* ]] || SCRIPT="$ROOT/$SCRIPT"
exec "$PY" -m torch.distributed.run \
  --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
  --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${PORT:-${MASTER_PORT:-29500}}" \
  --max-restarts="${MAX_RESTARTS:-0}" --nproc_per_node="$GPUS" "$SCRIPT" "$CONFIG" "$@"
