#!/usr/bin/env bash
# Multi-GPU (or multi-process CPU) retraining with torchrun:  tools/dist_retrain.sh CONFIG GPUS [retrain.py args]
# Same environment as tools/dist_train.sh (NNODES, NODE_RANK, MASTER_ADDR, PORT/MASTER_PORT, PYTHON).
set -euo pipefail
TOOL=tools/retrain.py exec "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/dist_train.sh" "$@"
