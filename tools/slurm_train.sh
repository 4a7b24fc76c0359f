#!/usr/bin/env bash
# SLURM: one task per GPU, torchrun-style environment derived from SLURM's.
#   GPUS=16 GPUS_PER_NODE=8 tools/slurm_train.sh PARTITION JOB_NAME CONFIG [train.py/search.py args]
# TOOL=tools/search.py (or tools/retrain.py) runs a search or a retraining the same way.
set -euo pipefail
if [[ $# -lt 3 ]]; then echo "usage: $0 PARTITION JOB_NAME CONFIG [args...]" >&2; exit 2; fi
PARTITION=$1; JOB_NAME=$2; CONFIG=$3; shift 3
GPUS=${GPUS:-8}; GPUS_PER_NODE=${GPUS_PER_NODE:-8}; CPUS_PER_TASK=${CPUS_PER_TASK:-5}
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python}"
[[ -x "$ROOT/.venv/bin/python" && -z "${PYTHON:-}" ]] && PY="$ROOT/.venv/bin/python"
srun -p "$PARTITION" --job-name="$JOB_NAME" --gres=gpu:"$GPUS_PER_NODE" --ntasks="$GPUS" \
  --ntasks-per-node="$GPUS_PER_NODE" --cpus-per-task="$CPUS_PER_TASK" --kill-on-bad-exit=1 \
  bash -c 'export MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1) \
           MASTER_PORT=${MASTER_PORT:-29500} WORLD_SIZE=$SLURM_NTASKS RANK=$SLURM_PROCID \
           LOCAL_RANK=$SLURM_LOCALID; exec "$0" "$@"' \
  "$PY" "$ROOT/${TOOL:-tools/train.py}" "$CONFIG" "$@"
