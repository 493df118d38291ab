"""GENLAB_ISA selects the kernels' instruction set (never above the CPU's), so that the portable
code paths are tested on any machine; the results do not depend on it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from genlab import _core

SCRIPT = """
import json, numpy as np
from genlab import _core, kde, rank
rng = np.random.default_rng(0)
X = rng.normal(size=(300, 12))
x = rng.normal(size=40_000)  # above the bitset range: the radix count
print(json.dumps({
    "isa": _core.instruction_set(),
    "matrix": rank.kendalltau_matrix(X).tolist(),
    "tau": rank.kendalltau(np.round(x, 2), np.round(x + rng.normal(size=x.size), 1)).statistic,
    "density": kde.log_density(X, X[:20], bandwidth=0.7).tolist(),
}))
"""


def _run(isa: str | None) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != "GENLAB_ISA"}
    if isa is not None:
        env["GENLAB_ISA"] = isa
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True
    )
    result: dict[str, object] = json.loads(out.stdout)
    return result


def test_override_selects_the_portable_paths_with_the_same_results() -> None:
    best = _run(None)
    assert best["isa"] in ("avx512", "avx2", "baseline")
    if os.environ.get("GENLAB_ISA") is None:
        assert best["isa"] == _core.instruction_set()
    baseline = _run("baseline")
    assert baseline["isa"] == "baseline"
    # Counts (Gram, radix) are exact on every path; densities agree to rounding (FMA or not).
    assert baseline["matrix"] == best["matrix"]
    assert baseline["tau"] == best["tau"]
    for a, b in zip(baseline["density"], best["density"], strict=True):  # type: ignore[call-overload]
        assert abs(a - b) <= 1e-12 * max(1.0, abs(b))
    # An unknown value, or one above the CPU's, changes nothing.
    assert _run("avx1024")["isa"] == best["isa"]
