#!/usr/bin/env bash
# Before/after benchmark: genlab at REV against the working tree, in one run on one machine.
#
# Usage: bash scripts/bench-compare.sh REV [bench files, default benches/bench_*.py]
#
# Both versions are release builds (fat LTO) and run this tree's benches/ (the public API they
# time is the same in both), one file at a time, alternating base and current so that a drift of
# the machine's speed hits both. REV's wheel goes into bench-results/compare/base-site, put
# first on PYTHONPATH for its runs. Output: bench-results/compare/{base,current}-*.json and the
# table bench-results/compare/compare.md (genlab's median per case for both, their ratio, and
# the ratio against the peer timed in the same run).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
[ $# -ge 1 ] || { echo "usage: bash scripts/bench-compare.sh REV [bench files]" >&2; exit 2; }
base=$1
shift
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(benches/bench_*.py)
out=bench-results/compare
rm -rf "$out"
mkdir -p "$out"
tree=$(mktemp -d)
trap 'git worktree remove --force "$tree/src" >/dev/null 2>&1 || true; rm -rf "$tree"' EXIT

step "Release build of $base (its own Cargo target directory)"
ensure_venv
python -m pip install --quiet "maturin>=1.7,<2"
git worktree add --quiet --detach "$tree/src" "$base"
(cd "$tree/src" && CARGO_TARGET_DIR="$CARGO_TARGET_DIR-base" maturin build --quiet --release \
  --out "$tree/wheel")
python -m pip install --quiet --no-deps --target "$out/base-site" "$tree"/wheel/*.whl

step "Release build of the working tree"
maturin develop --quiet --release --extras dev,torch

step "Benchmarks, alternating $base and the working tree"
for file in "${targets[@]}"; do
  name=$(basename "$file" .py)
  for side in base current; do
    if [ "$side" = base ]; then pythonpath="$PWD/$out/base-site"; else pythonpath=""; fi
    echo "-- $name ($side)"
    PYTHONPATH="$pythonpath" python -m pytest "$file" -p no:randomly -p no:cacheprovider \
      --benchmark-only --benchmark-json "$out/$side-$name.json" -q
  done
done
python benches/compare_runs.py "$out" --base-label "$base" --markdown "$out/compare.md"
