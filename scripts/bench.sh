#!/usr/bin/env bash
# Benchmarks genlab against its peers in the same run (release build) and prints the ratio table.
# Usage: bash scripts/bench.sh [pytest args, e.g. benches/bench_rank.py -k matrix]
# Results: bench-results/results.json and bench-results/ratios.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

step "Release build into .venv"
ensure_venv
python -m pip install --quiet "maturin>=1.7,<2"
maturin develop --quiet --release --extras dev,torch

step "Benchmarks"
mkdir -p bench-results
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(benches/bench_*.py)
python -m pytest "${targets[@]}" -p no:randomly --benchmark-only \
  --benchmark-json bench-results/results.json -q
python benches/ratio_table.py bench-results/results.json --markdown bench-results/ratios.md
