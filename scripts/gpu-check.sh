#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: run genlab's CUDA tests and time (a) the digits CRATE zoo, one
# model at a time and stacked, (b) an SRR-regularized training step against plain cross-entropy,
# (c) tensor attention forward + backward by method; write docs/results/gpu.md (and $OUT/gpu.md
# when OUT is set). Meant to take under 8 minutes on an H200 (not yet run on one). Without a GPU it
# says so and exits 0.
#
# genlab comes from, in this order: a wheel given as the first argument, a wheel in .whl/ or
# target/wheels/, or the checkout built with maturin (needs Rust). Python packages come from the
# machine's python3 (torch, pytest, hypothesis, scipy, scikit-learn, pandas, matplotlib); nothing
# is downloaded.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "gpu-check: no NVIDIA GPU on this machine (nvidia-smi finds none); nothing to check"
  exit 0
fi
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "gpu-check: $PYTHON's torch sees no CUDA GPU (a CPU-only build?); nothing to check"
  exit 0
fi
wheel=${1:-$(ls .whl/genlab-*.whl target/wheels/genlab-*.whl 2>/dev/null | head -n 1 || true)}
site=$(mktemp -d)
if [ -n "$wheel" ]; then
  echo "gpu-check: genlab from $wheel"
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --target "$site" "$wheel"
else
  if ! "$PYTHON" -m maturin --version >/dev/null 2>&1; then
    echo "gpu-check: no genlab wheel given (argument, .whl/ or target/wheels/) and no maturin to" \
      "build one; build it where Rust is (maturin build --release) and pass it" >&2
    exit 2
  fi
  echo "gpu-check: genlab built from this checkout (maturin)"
  "$PYTHON" -m maturin build --release --out "$site/wheel" -q
  "$PYTHON" -m pip install -q --no-index --no-deps --target "$site" "$site"/wheel/genlab-*.whl
fi
export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi -L

echo "== CUDA tests"
cuda_files=(tests/test_torch_train.py tests/test_torch_rate.py tests/test_torch_attention.py
  tests/test_torch_srr.py tests/test_measures_any_model.py tests/test_torch_stack.py
  tests/test_torch_measure_stack.py)
set +e
"$PYTHON" -m pytest -q -p no:cacheprovider -m cuda -o addopts="" "${cuda_files[@]}" \
  2>&1 | tee "$site/tests.log"
status=${PIPESTATUS[0]}
set -e
summary=$(grep -E "passed|failed|error" "$site/tests.log" | tail -n 1)

echo "== GPU timings"
"$PYTHON" scripts/gpu_check.py --tests "$summary (exit $status)" --out docs/results/gpu.md
if [ -n "${OUT:-}" ]; then cp docs/results/gpu.md "$site/tests.log" "$OUT"/; fi
exit "$status"
