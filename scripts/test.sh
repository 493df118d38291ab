#!/usr/bin/env bash
# Installs everything genlab needs into .venv (created if missing) and runs every check:
# Rust tests, the Python test suite (with every docstring example), the linters (rustfmt, clippy,
# ruff, mypy --strict), the documentation build (Sphinx, warnings as errors), and the wheel users
# install (manylinux2014 abi3, smoke-tested in a clean virtual environment: scripts/wheel-check.sh).
# This is the README's test command and what CI runs (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

step "System packages: chromium (the report-rendering test)"
if ! command -v chromium >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "chromium is missing and cannot be installed here (needs apt-get as root)" >&2
  fi
fi
export GENLAB_REQUIRE_CHROMIUM=1

step "Python environment (.venv) and dependencies"
ensure_venv
python -m pip install --quiet --upgrade pip
python -m pip install --quiet "maturin>=1.7,<2"
step "Build the extension (dev profile: optimized, no LTO) and install genlab[dev,torch,ray,docs]"
maturin develop --quiet --extras dev,torch,ray,docs

step "Rust: tests, formatting, clippy"
cargo test --quiet -p genlab-core
# The portable (non-SIMD) code paths, whatever this CPU has.
GENLAB_ISA=baseline cargo test --quiet -p genlab-core
cargo fmt --all --check
# rustfmt leaves a line it cannot fit (a long string literal, a macro body) silently as it is. Its
# error_on_line_overflow option would fail on those but exists on nightly only: check the width
# (rustfmt's default max_width, 100) here instead.
overflow=$(git ls-files '*.rs' | xargs awk 'length > 100 {print FILENAME ":" FNR ": " length " characters"}')
if [ -n "$overflow" ]; then
    echo "Rust lines longer than rustfmt's max_width (100); wrap them by hand:" >&2
    echo "$overflow" >&2
    exit 1
fi
cargo clippy --quiet --workspace --all-targets -- -D warnings

step "Python: ruff, mypy --strict"
ruff check python tests benches
ruff format --check python tests benches
mypy

step "Documentation: Sphinx (API reference and guide pages), warnings as errors"
bash scripts/docs.sh

step "Python: pytest"
set +e
python -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests (exit 5): nothing to run is not a failure of the code" >&2
  status=0
fi
if [ "$status" -eq 0 ] && [ "$#" -eq 0 ]; then
  step "Python: the kernel tests again on the portable code paths (GENLAB_ISA=baseline)"
  set +e
  GENLAB_ISA=baseline python -m pytest -q -p no:cacheprovider tests/test_rank_kendalltau.py \
    tests/test_rank_batched.py tests/test_rank_grid.py tests/test_kde.py tests/test_attention.py \
    tests/test_rate.py
  status=$?
  set -e
fi
if [ "$status" -eq 0 ] && [ "$#" -eq 0 ]; then
  step "Python: the peers' own tests (scipy, scikit-learn, pandas) with genlab.accel"
  set +e
  python tests/peer_suites/run.py
  status=$?
  set -e
fi
if [ "$status" -eq 0 ] && [ "$#" -eq 0 ]; then
  bash scripts/wheel-check.sh
fi
exit "$status"
