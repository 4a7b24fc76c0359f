#!/usr/bin/env bash
# Idempotent environment step for cream_det.
#
# Why a script and not `pip install -e .`: mmdet needs mmcv's compiled ops, PyPI has no mmcv wheel
# for torch 2.14, and mmcv's source only compiles once its C++ standard is raised to C++20. This
# script builds that wheel once, keeps it in a user cache, and installs everything else around it.
#
#   tools/setup_env.sh            create/refresh .venv (fast when already done)
#   CREAM_DET_STACK=upstream ...  use mmcv 2.1.0 / mmdet 3.3.0 / mmengine 0.10.7 instead of OneDL
#
# Environment variables:
#   CREAM_DET_CACHE      cache root (default ~/.cache/cream_det); wheels live in $CREAM_DET_CACHE/wheels
#   CREAM_DET_VENV       virtualenv path (default <checkout>/.venv)
#   CREAM_DET_PYTHON     interpreter to create the venv with (default python3.11, else python3)
#   CREAM_DET_MMCV_CUDA  1: build mmcv CUDA ops, 0: CPU ops only, unset: CUDA ops when nvcc AND a GPU
#                        are present (nvcc alone is common on CPU build hosts and would make the build
#                        take hours for ops the machine cannot run)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CREAM_DET_VENV:-$ROOT/.venv}"
CACHE="${CREAM_DET_CACHE:-$HOME/.cache/cream_det}"
STACK="${CREAM_DET_STACK:-onedl}"

say()  { printf '[setup_env] %s\n' "$*"; }
die()  { printf '[setup_env] ERROR: %s\n' "$*" >&2; exit 1; }

# ---- pinned versions (why each pin exists is said in requirements/*.txt) -------------------------
TORCH_PIN="torch==2.14.1"
TORCHVISION_PIN="torchvision==0.29.1"
case "$STACK" in
  onedl)    MMCV_DIST="onedl-mmcv";  MMCV_VERSION="2.3.6"; STACK_REQ="$ROOT/requirements/onedl.txt" ;;
  upstream) MMCV_DIST="mmcv";        MMCV_VERSION="2.1.0"; STACK_REQ="$ROOT/requirements/upstream.txt" ;;
  *) die "CREAM_DET_STACK must be 'onedl' or 'upstream', got '$STACK'" ;;
esac
MMCV_WHEEL_PREFIX="$(echo "$MMCV_DIST" | tr '-' '_')-$MMCV_VERSION-"

# ---- prerequisites --------------------------------------------------------------------------------
PY="${CREAM_DET_PYTHON:-}"
if [[ -z "$PY" ]]; then
  if command -v python3.11 >/dev/null 2>&1; then PY=python3.11; else PY=python3; fi
fi
command -v "$PY" >/dev/null 2>&1 || die "no Python interpreter '$PY' found; install Python 3.11 (e.g. apt-get install python3.11 python3.11-venv)"
"$PY" -c 'import sys; sys.exit(0 if (3, 10) <= sys.version_info[:2] <= (3, 12) else 1)' \
  || die "$PY is $("$PY" -V 2>&1); cream_det needs Python 3.10-3.12 (3.11 is the tested one). Set CREAM_DET_PYTHON."
"$PY" -c 'import venv, ensurepip' 2>/dev/null || die "$PY lacks venv/ensurepip; install it (e.g. apt-get install python3.11-venv)"

# Requirement files hash: the stamp says which inputs the venv was made from, so a change re-runs pip.
STAMP_INPUTS="$(cat "$ROOT/requirements/"*.txt "$ROOT/setup.py" "$0"; echo "$STACK")"
STAMP_HASH="$(printf '%s' "$STAMP_INPUTS" | sha256sum | cut -c1-16)"
STAMP="$VENV/.cream_det_env_$STAMP_HASH"
if [[ -f "$STAMP" ]]; then
  say "environment up to date ($VENV)"
  exit 0
fi

# ---- virtualenv + torch ---------------------------------------------------------------------------
if [[ ! -x "$VENV/bin/python" ]]; then
  say "creating virtualenv $VENV"
  "$PY" -m venv "$VENV" || die "could not create the virtualenv at $VENV"
fi
VPY="$VENV/bin/python"
PIP=("$VPY" -m pip --disable-pip-version-check)

pip_step() {  # pip_step "what" args...   -- pip with a clear message on failure
  local what="$1"; shift
  say "$what"
  "${PIP[@]}" "$@" || die "pip failed while: $what (see the pip output above)"
}

pip_step "installing build tools" install -q "setuptools>=77,<81" wheel ninja "numpy<2.3"
pip_step "installing $TORCH_PIN $TORCHVISION_PIN (first time: several GB)" install -q "$TORCH_PIN" "$TORCHVISION_PIN"

# ---- mmcv wheel, built once per (torch, variant, python) and cached ------------------------------
want_cuda=0
case "${CREAM_DET_MMCV_CUDA:-auto}" in
  1) want_cuda=1 ;;
  0) want_cuda=0 ;;
  auto) if command -v nvcc >/dev/null 2>&1 && command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then want_cuda=1; fi ;;
  *) die "CREAM_DET_MMCV_CUDA must be 0, 1 or unset" ;;
esac
if [[ $want_cuda == 1 ]]; then
  command -v nvcc >/dev/null 2>&1 || die "CREAM_DET_MMCV_CUDA=1 but nvcc is not on PATH; install the CUDA toolkit matching torch ($("$VPY" -c 'import torch; print(torch.version.cuda)'))"
  VARIANT="cuda"
else
  VARIANT="cpu"
fi
TORCH_TAG="$("$VPY" -c 'import sys, torch; v = torch.__version__.split("+")[0]; print("torch%s-py%d%d" % (v, *sys.version_info[:2]))')"
WHEEL_DIR="$CACHE/wheels/$TORCH_TAG-$VARIANT"
mkdir -p "$WHEEL_DIR" 2>/dev/null || die "cannot create the wheel cache $WHEEL_DIR (set CREAM_DET_CACHE to a writable directory)"

wheel="$(ls "$WHEEL_DIR"/${MMCV_WHEEL_PREFIX}*.whl 2>/dev/null | head -n1 || true)"
if [[ -z "$wheel" ]]; then
  for tool in gcc g++; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found: it is needed to compile mmcv's ops. Install it (e.g. apt-get install build-essential)."
  done
  build_tmp="$(mktemp -d "${TMPDIR:-/tmp}/cream_det_mmcv.XXXXXX")"
  trap 'rm -rf "$build_tmp"' EXIT
  say "building $MMCV_DIST $MMCV_VERSION ($VARIANT ops) from source: this happens once per machine and"
  say "takes about 12 minutes on 2 cores (24 for upstream mmcv, much longer with CUDA ops)."
  "${PIP[@]}" download -q --no-deps --no-binary :all: --no-build-isolation "$MMCV_DIST==$MMCV_VERSION" -d "$build_tmp/sdist" \
    || die "could not download the $MMCV_DIST $MMCV_VERSION source distribution from the package index"
  tar xzf "$build_tmp"/sdist/*.tar.gz -C "$build_tmp" || die "could not unpack the $MMCV_DIST source"
  src="$(find "$build_tmp" -maxdepth 1 -mindepth 1 -type d ! -name sdist | head -n1)"
  # torch >= 2.10 headers refuse anything below C++20 ("C++20 or later compatible compiler is required").
  sed -i -e 's/-std=c++14/-std=c++20/g' -e 's/-std=c++17/-std=c++20/g' "$src/setup.py"
  grep -q -- '-std=c++20' "$src/setup.py" || die "the C++20 patch did not apply to $src/setup.py; its layout changed"
  log="$build_tmp/build.log"
  (
    cd "$src"
    export MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}"
    if [[ $want_cuda == 1 ]]; then export FORCE_CUDA=1; else export FORCE_CUDA=0 CUDA_VISIBLE_DEVICES=""; fi
    "${PIP[@]}" wheel --no-build-isolation --no-deps -w "$build_tmp/out" . >"$log" 2>&1
  ) &
  bpid=$!
  n_src=$(find "$src/mmcv/ops/csrc/pytorch" -maxdepth 2 -name '*.cpp' ! -path '*/cuda/*' ! -path '*/mlu/*' ! -path '*/npu/*' ! -path '*/mps/*' 2>/dev/null | wc -l)
  start=$SECONDS
  while kill -0 "$bpid" 2>/dev/null; do
    sleep 30
    if kill -0 "$bpid" 2>/dev/null; then
      n_obj=$(find "$src/build" -name '*.o' 2>/dev/null | wc -l)
      say "  still building mmcv: $(( (SECONDS - start) / 60 )) min $(( (SECONDS - start) % 60 )) s elapsed, $n_obj/$n_src sources compiled"
    fi
  done
  if ! wait "$bpid"; then
    tail -n 40 "$log" >&2
    die "building $MMCV_DIST failed (last 40 lines above). A missing compiler or Python headers is the usual cause: apt-get install build-essential python3-dev"
  fi
  built="$(ls "$build_tmp"/out/*.whl | head -n1)"
  # Same filesystem rename so the cache never holds a half-written wheel.
  cp "$built" "$WHEEL_DIR/.partial-$(basename "$built")"
  mv "$WHEEL_DIR/.partial-$(basename "$built")" "$WHEEL_DIR/$(basename "$built")"
  wheel="$WHEEL_DIR/$(basename "$built")"
  say "mmcv built in $(( (SECONDS - start) / 60 )) min; cached at $wheel"
else
  say "using cached mmcv wheel $wheel"
fi

# ---- the rest of the stack and the package --------------------------------------------------------
pip_step "installing mmcv from the cached wheel" install -q "$wheel"
pip_step "installing the detection stack ($STACK) and test tools" install -q -r "$STACK_REQ" -r "$ROOT/requirements/tests.txt"
pip_step "installing cream_det (editable)" install -q --no-deps --no-build-isolation -e "$ROOT"
"$VPY" -c 'import mmcv.ops, mmdet, mmengine, timm, pycocotools, cream_det' \
  || die "the environment installed but does not import; see the error above"

rm -f "$VENV"/.cream_det_env_*
touch "$STAMP"
say "environment ready: $VENV"
