"""The fuzz tests of ``tests/fuzz_api.py``: one subprocess per module, with a memory cap (a call
that tried to take the machine fails there, not here) and a timeout (a hang fails the test).

``GENLAB_FUZZ_EXAMPLES`` sets the calls per module (300 by default, what CI runs; the generator
is derandomized, so a run is reproducible and more examples explore further).
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("hypothesis")

WORKER = Path(__file__).with_name("fuzz_api.py")
EXAMPLES = int(os.environ.get("GENLAB_FUZZ_EXAMPLES", "300"))
# Enough for torch's libraries (their address space alone is ~3 GiB), far below the machine.
MEMORY_CAP = 6 * 2**30
TIMEOUT_S = 600


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


@pytest.mark.parametrize(
    "module", ["rank", "rate", "kde", "attention", "torch", "study", "spectrum"]
)
def test_no_input_crashes_hangs_or_returns_a_silent_nan(module: str) -> None:
    if module in ("torch", "study"):
        pytest.importorskip("torch")
    try:
        done = subprocess.run(
            [sys.executable, str(WORKER), module, "--examples", str(EXAMPLES)],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            preexec_fn=_cap_memory,
            env={**os.environ, "PYTHONWARNINGS": "ignore", "RUST_BACKTRACE": "1"},
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"fuzzing {module} hung (> {TIMEOUT_S} s); last output:\n{exc.stderr}")
    if done.returncode < 0:
        name = signal.Signals(-done.returncode).name
        pytest.fail(f"fuzzing {module} crashed ({name}):\n{done.stderr[-4000:]}")
    assert done.returncode == 0, f"fuzzing {module} failed:\n{done.stderr[-6000:]}"
    # Every function of the module was called, and some calls got through the checks.
    lines = [line for line in done.stdout.splitlines() if line.startswith(f"{module}.")]
    assert lines, done.stdout
    assert any(not line.endswith(" 0 returned") for line in lines), done.stdout
