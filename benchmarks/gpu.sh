#!/usr/bin/env bash
# Every GPU check and GPU figure of the project in one run (<= 10 minutes on one GPU: the steps'
# limits add up to 525 s, plus at most 20 s for the GPU check):
#   1. the `cuda` tests (tests/test_cuda.py: search, retraining, RetinaNet in fp32 / AMP /
#      AMP + channels_last, one-GPU tools/dist_train.sh on NCCL);
#   2. every benchmark with --device cuda, in fp32 and under AMP, printing `name: value unit` lines.
#
#   benchmarks/gpu.sh                 # uses .venv/bin/python when present, else $PYTHON or python
#   CUDA_VISIBLE_DEVICES=1 benchmarks/gpu.sh
#
# Without a GPU it stops at once with exit status 2 and says so. Each step has its own time limit
# (`timeout`), so a hung step is killed, reported and the next one runs; the exit status is 1 when
# any step failed. Paste the `name: value unit` lines into benchmarks/README.md.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python}"
[[ -x "$ROOT/.venv/bin/python" && -z "${PYTHON:-}" ]] && PY="$ROOT/.venv/bin/python"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
START=$SECONDS
FAILED=()

if ! timeout 20 "$PY" - <<'EOF'
import sys
import torch
if not torch.cuda.is_available():
    sys.exit(f'gpu.sh: no CUDA GPU is visible to torch {torch.__version__} (CUDA build: {torch.version.cuda}); '
             'nothing was run. Run this on a machine with an NVIDIA GPU and a CUDA build of torch.')
p = torch.cuda.get_device_properties(0)
print(f'gpu: {p.name}, {p.total_memory / 2 ** 30:.0f} GiB, torch {torch.__version__}, CUDA {torch.version.cuda}, '
      f'cuDNN {torch.backends.cudnn.version()}')
EOF
then
    exit 2
fi

step() {        # step NAME SECONDS COMMAND...: run with a time limit, keep going on failure
    local name=$1 limit=$2 t0=$SECONDS rc=0
    shift 2
    echo "== $name (limit ${limit} s): $*"
    timeout --kill-after=10 "$limit" "$@" || rc=$?
    if [[ $rc -ne 0 ]]; then
        [[ $rc -eq 124 || $rc -eq 137 ]] && echo "gpu.sh: $name exceeded its ${limit} s limit and was killed"
        echo "gpu.sh: $name FAILED (exit $rc)"
        FAILED+=("$name")
    fi
    echo "${name}_seconds: $((SECONDS - t0)) s"
}

step cuda_tests 225 "$PY" -m pytest tests/test_cuda.py -m cuda -q --durations=5
for amp in "" "--amp"; do
    tag=${amp:+_amp}
    step "search_step${tag}" 40 "$PY" benchmarks/search_step.py --config configs/search/cream_imagenet_0-600.py \
        --device cuda --res 224 --batch 64 128 --iters 5 $amp
    step "retrain_throughput${tag}" 20 "$PY" benchmarks/retrain_throughput.py --device cuda --batch 128 --size 224 \
        --iters 10 --rounds 3 --threads 0 $amp
    step "retinanet_iter${tag}" 35 "$PY" benchmarks/retinanet_iter.py --device cuda --size 1333 800 --batch 2 \
        --iters 10 $amp
done
# channels_last, fp32 and under AMP, for search and retraining: the search and retrain configs say
# channels_last='auto', which is on only where it was measured faster (the CPU so far); these lines decide CUDA
for amp in "" "--amp"; do
    tag=${amp:+_amp}
    step "search_step${tag}_channels_last" 30 "$PY" benchmarks/search_step.py --config configs/search/cream_imagenet_0-600.py \
        --device cuda --res 224 --batch 128 --iters 5 $amp --channels-last
    step "retrain_throughput${tag}_channels_last" 20 "$PY" benchmarks/retrain_throughput.py --device cuda --batch 128 \
        --size 224 --iters 10 --rounds 3 --threads 0 $amp --channels-last
done
step flops_rate 10 "$PY" benchmarks/flops_rate.py      # analytic MACs on the CPU: no device involved

echo "gpu_sh_total: $((SECONDS - START)) s"
if [[ ${#FAILED[@]} -gt 0 ]]; then
    echo "gpu.sh: failed steps: ${FAILED[*]}"
    exit 1
fi
echo "gpu.sh: all steps passed"
