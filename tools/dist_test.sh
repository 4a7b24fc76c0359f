#!/usr/bin/env bash
# Multi-GPU (or multi-process CPU) evaluation:  tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py args]
set -euo pipefail
if [[ $# -lt 3 ]]; then echo "usage: $0 CONFIG CHECKPOINT GPUS [args...]" >&2; exit 2; fi
CONFIG=$1; CHECKPOINT=$2; GPUS=$3; shift 3
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python}"
[[ -x "$ROOT/.venv/bin/python" && -z "${PYTHON:-}" ]] && PY="$ROOT/.venv/bin/python"
exec "$PY" -m torch.distributed.run \
  --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
  --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${PORT:-${MASTER_PORT:-29501}}" \
  --nproc_per_node="$GPUS" "$ROOT/tools/test.py" "$CONFIG" "$CHECKPOINT" "$@"
