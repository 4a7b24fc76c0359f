#!/usr/bin/env bash
# Multi-GPU (or multi-process CPU) evaluation:  tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py args]
# Same environment as tools/dist_train.sh; the port defaults to 29501 so a test can run beside training.
set -euo pipefail
if [[ $# -lt 3 ]]; then echo "usage: $0 CONFIG CHECKPOINT GPUS [args...]" >&2; exit 2; fi
CONFIG=$1; CHECKPOINT=$2; GPUS=$3; shift 3
PORT="${PORT:-${MASTER_PORT:-29501}}" TOOL=tools/test.py \
  exec "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/dist_train.sh" "$CONFIG" "$GPUS" "$CHECKPOINT" "$@"
