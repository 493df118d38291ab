#!/usr/bin/env bash
# The main job, from a fresh machine: install genlab (release build) into .venv and run it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

step "Python environment (.venv) and genlab (release build)"
ensure_venv
python -m pip install --quiet --upgrade pip
python -m pip install --quiet "maturin>=1.7,<2"
maturin develop --quiet --release --extras torch

step "genlab demo"
genlab demo "$@"
