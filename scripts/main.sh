#!/usr/bin/env bash
# The main job, from a fresh machine: install genlab (release build) into .venv, train and measure
# the digits zoo, rank the complexity measures against the generalization gap, write the report.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

step "Python environment (.venv) and genlab (release build)"
ensure_venv
python -m pip install --quiet --upgrade pip
python -m pip install --quiet "maturin>=1.7,<2"
maturin develop --quiet --release --extras torch

step "The digits study: 4 CRATE variants x 2 depths x 2 learning rates x 2 training-set sizes x 8 seeds"
# Resumable: rerunning skips the models already in runs/digits-crate. Ends with the report's path.
genlab study run examples/digits-crate.toml --out runs/digits-crate "$@"
