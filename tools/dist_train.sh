#!/usr/bin/env bash
# Multi-GPU (or multi-process CPU) training with torchrun:  tools/dist_train.sh CONFIG GPUS [train.py args]
# Several machines: NNODES, NODE_RANK, MASTER_ADDR, MASTER_PORT as for torchrun.
set -euo pipefail
if [[ $# -lt 2 ]]; then echo "usage: $0 CONFIG GPUS [args...]" >&2; exit 2; fi
CONFIG=$1; GPUS=$2; shift 2
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python}"
[[ -x "$ROOT/.venv/bin/python" && -z "${PYTHON:-}" ]] && PY="$ROOT/.venv/bin/python"
exec "$PY" -m torch.distributed.run \
  --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
  --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${PORT:-${MASTER_PORT:-29500}}" \
  --nproc_per_node="$GPUS" "$ROOT/${TOOL:-tools/train.py}" "$CONFIG" "$@"
