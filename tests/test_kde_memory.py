"""Peak memory of the streaming KDE kernel: O(inputs + tiles), never O(m x n).

The Rust kernel allocates outside Python's allocator, so tracemalloc cannot see it: the peak
resident set (VmHWM) is read from /proc in a fresh subprocess.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

_SCRIPT = """
import json, numpy as np
from genlab.kde import log_density

def vm(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
before = vm("VmRSS:")
rng = np.random.default_rng(0)
data = rng.standard_normal((100_000, 128))
queries = rng.standard_normal((10_000, 128))
out = log_density(data, queries, bandwidth=1.0)
assert np.isfinite(out).all()
print(json.dumps({"before": before, "peak": vm("VmHWM:"), "inputs": data.nbytes + queries.nbytes}))
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_peak_memory_is_inputs_plus_a_constant() -> None:
    # n = 100000, m = 10000, d = 128 float64: m x n distances would be 8 GB.
    run = subprocess.run(
        [sys.executable, "-c", _SCRIPT], capture_output=True, text=True, check=True, timeout=600
    )
    stats = json.loads(run.stdout.strip().splitlines()[-1])
    limit = 2 * stats["inputs"] + 256 * 2**20
    # The whole process, interpreter and numpy included, stays under the bound.
    assert stats["peak"] < limit, stats
    # What the call itself adds beyond the inputs: one transformed copy of the data and tiles.
    assert stats["peak"] - stats["before"] - stats["inputs"] < stats["inputs"] + 64 * 2**20, stats
