#!/usr/bin/env bash
# The install path users take: build the abi3 wheel for manylinux2014 (glibc 2.17, the Linux
# distributions research clusters still run; maturin links with zig to reach it), install it into
# a fresh virtual environment with only its runtime dependencies (numpy), and smoke-test it there
# (every numpy-facing module, no torch). Uses a lighter profile than the release wheels' fat LTO.
# Run by scripts/test.sh (CI); standalone it needs the .venv that script makes.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
ensure_venv
python -m pip install --quiet "maturin>=1.7,<2" "ziglang>=0.13"

out="$CARGO_TARGET_DIR/wheel-check"
rm -rf "$out"
step "Wheel: abi3, manylinux2014 (zig), profile wheel-check"
maturin build --quiet --profile wheel-check --zig --compatibility manylinux2014 --out "$out"
wheel=$(ls "$out"/genlab-*.whl)
case "$wheel" in
  *-cp310-abi3-manylinux2014_x86_64*) echo "built $(basename "$wheel")" ;;
  *) echo "unexpected wheel tag: $(basename "$wheel") (want cp310-abi3-manylinux2014_x86_64)" >&2; exit 1 ;;
esac

step "Wheel: install into a clean virtual environment and smoke-test (numpy only)"
venv=$(mktemp -d)
trap 'rm -rf "$venv"' EXIT
python3 -m venv "$venv/env"
"$venv/env/bin/python" -m pip install --quiet --upgrade pip
"$venv/env/bin/python" -m pip install --quiet "$wheel"
# From outside the checkout, so that the installed wheel (not python/genlab) is what runs.
(cd "$venv" && "$venv/env/bin/python" - <<'PY'
import importlib.metadata as md

import numpy as np

import genlab
from genlab import attention, kde, rank, rate

installed = sorted(d.metadata["Name"].lower() for d in md.distributions())
assert "torch" not in installed, installed
assert genlab.__file__.find("site-packages") > 0, genlab.__file__
rng = np.random.default_rng(0)
x = rng.normal(size=1000)
assert rank.kendalltau(x, x).statistic == 1.0
assert abs(rate.coding_rate(rng.normal(size=(4, 16, 8)), eps=0.5).sum()) > 0
assert np.isfinite(kde.log_density(x[:, None], bandwidth=0.3)).all()
q = rng.normal(size=(6, 4))
assert attention.tensor_attention(q, q, q, q, q).shape == (6, 4)
try:
    import genlab.torch  # noqa: F401
except ImportError as exc:
    assert "genlab[torch]" in str(exc), exc
else:
    raise AssertionError("genlab.torch imported without torch installed")
# genlab.accel's startup hook is installed beside the packages, and idle without GENLAB_ACCEL.
import pathlib
import subprocess
import sys
import sysconfig

assert (pathlib.Path(sysconfig.get_paths()["purelib"]) / "genlab_accel.pth").is_file()
probe = "import sys; print('genlab.accel' in sys.modules)"
for flag, want in (("1", "True"), ("0", "False")):
    env = {"GENLAB_ACCEL": flag, "PATH": ""}
    seen = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert seen.stdout.strip() == want, (flag, seen.stdout, seen.stderr)
print(f"genlab {genlab.__version__} from the wheel: {genlab._core.instruction_set()} kernels, OK")
PY
)
