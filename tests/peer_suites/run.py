"""Run the peers' own tests (shipped in their wheels) with and without genlab.accel.

Three runs per suite: unpatched; patched; patched with every fallback an error ("strict", the
tests in ``deselected.toml`` left out, each with its reason). The checks: every test that passes
unpatched passes patched, and in the strict run at least ``FAST_PATH_GOAL`` of the tests that ran
pass (they ran on genlab's fast path, or they would have raised ``FallbackError``).

Run: ``python tests/peer_suites/run.py`` (exit 1 when a check fails; ``--write`` also writes
``docs/results/accel-peer-suites.md``). ``scripts/test.sh`` runs it. Tests that pass unpatched
and fail patched for a reason that cannot be helped are listed, with it, under
``known_differences`` in ``deselected.toml``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

import numpy as np
import pandas as pd
import scipy
import sklearn

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
FAST_PATH_GOAL = 0.95

SUITES = {
    "scipy.stats.kendalltau": ["scipy.stats.tests.test_stats", "-k", "kendall"],
    "scipy.stats.gaussian_kde": ["scipy.stats.tests.test_kdeoth"],
    "sklearn.neighbors.KernelDensity": ["sklearn.neighbors.tests.test_kde"],
    "pandas DataFrame.corr/corrwith (kendall)": [
        "pandas.tests.frame.methods.test_cov_corr",
        "-k",
        "kendall",
    ],
    "pandas Series.corr (TestSeriesCorr)": [
        "pandas.tests.series.methods.test_cov_corr",
        "-k",
        "TestSeriesCorr",
    ],
}


@dataclasses.dataclass
class SuiteResult:
    name: str
    off: dict[str, str]
    on: dict[str, str]
    strict: dict[str, str]
    deselected: int
    known: frozenset[str]

    def passed(self, run: dict[str, str], *, on_genlab: bool = False) -> set[str]:
        """The tests that passed (with ``on_genlab``, only those that called genlab)."""
        accepted = ("passed",) if on_genlab else ("passed", "passed-without-genlab")
        return {test for test, outcome in run.items() if outcome in accepted}

    @property
    def lost(self) -> list[str]:
        """Tests that pass unpatched and fail patched (the known differences among them)."""
        return sorted(self.passed(self.off) - self.passed(self.on))

    @property
    def regressions(self) -> list[str]:
        return [test for test in self.lost if test not in self.known]

    @property
    def strict_ran(self) -> int:
        """Tests of the strict run that called genlab or failed."""
        return sum(outcome in ("passed", "failed") for outcome in self.strict.values())

    @property
    def fast_path_rate(self) -> float:
        passed = len(self.passed(self.strict, on_genlab=True))
        return passed / self.strict_ran if self.strict_ran else 1.0


def run_suite(args: list[str], mode: str, deselect: Path) -> dict[str, str]:
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "results.json"
        env = {k: v for k, v in os.environ.items() if not k.startswith("GENLAB_ACCEL")}
        env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "genlab_accel_pytest",
            "-c",
            str(HERE / "pytest.ini"),
            "--rootdir",
            sysconfig.get_paths()["purelib"],
            f"--genlab-accel={mode}",
            f"--genlab-deselect={deselect}",
            f"--genlab-results={results}",
            "--pyargs",
            *args,
        ]
        subprocess.run(command, cwd=tmp, env=env, capture_output=True, text=True, check=False)
        if not results.exists():
            raise RuntimeError(f"pytest wrote no results for {args} ({mode})")
        outcomes: dict[str, str] = json.loads(results.read_text())
        return outcomes


def markdown(results: list[SuiteResult], seconds: float) -> str:
    lines = [
        "# The peers' own tests with genlab.accel",
        "",
        "Command: `python tests/peer_suites/run.py --write` (run by `scripts/test.sh` without "
        "`--write`). The test files are the ones shipped in the installed wheels: "
        f"scipy {scipy.__version__}, scikit-learn {sklearn.__version__}, pandas "
        f"{pd.__version__} (numpy {np.__version__}). Three runs per suite: unpatched, patched, "
        "and patched with every fallback an error (strict: a test passes only if each patched "
        "call in it ran on genlab's fast path; the tests in `tests/peer_suites/deselected.toml` "
        "are left out, each with its reason). The strict column counts the tests that called "
        "genlab at least once, or failed; a test that passed without calling a patched function "
        "(a Pearson case, say) says nothing about the fast path and is not counted.",
        "",
        "| suite | pass unpatched | pass patched | lost | strict: deselected | "
        "strict: pass on the fast path |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {len(r.passed(r.off))} of {len(r.off)} | "
            f"{len(r.passed(r.on))} of {len(r.on)} | {len(r.lost)} | {r.deselected} | "
            f"{len(r.passed(r.strict, on_genlab=True))} of {r.strict_ran} "
            f"({100 * r.fast_path_rate:.1f}%) |"
        )
    known = tomllib.loads((HERE / "deselected.toml").read_text())["known_differences"]
    lines += ["", "Lost (pass unpatched, fail patched), each a known difference:", ""]
    lines += [f"- `{test}`: {reason}." for test, reason in known.items()]
    lines += [
        "",
        f"Goal: nothing lost but the known differences, and at least {100 * FAST_PATH_GOAL:.0f}% "
        "on the fast path. "
        "Skipped tests (the peers' own skips) are counted in neither. "
        f"All three runs of the five suites took {seconds:.0f} s.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="write the results page")
    options = parser.parse_args()
    deselect = HERE / "deselected.toml"
    listed = tomllib.loads(deselect.read_text())
    known = frozenset(listed["known_differences"])
    started = time.perf_counter()
    results = []
    for name, args in SUITES.items():
        off = run_suite(args, "off", deselect)
        on = run_suite(args, "on", deselect)
        strict = run_suite(args, "strict", deselect)
        results.append(
            SuiteResult(name, off, on, strict, len(set(off) - set(strict)), known & set(off))
        )
    seconds = time.perf_counter() - started
    page = markdown(results, seconds)
    print(page)
    failures = []
    collected = {test for r in results for test in r.off}
    stale = sorted((set(listed["deselected"]) | known) - collected)
    if stale:
        failures.append(f"deselected.toml lists tests that were not collected: {stale}")
    for r in results:
        if r.regressions:
            failures.append(f"{r.name}: pass unpatched, fail patched: {r.regressions}")
        if r.fast_path_rate < FAST_PATH_GOAL:
            failed = sorted(t for t, outcome in r.strict.items() if outcome == "failed")
            failures.append(f"{r.name}: {100 * r.fast_path_rate:.1f}% on the fast path: {failed}")
    if options.write:
        (ROOT / "docs" / "results" / "accel-peer-suites.md").write_text(page)
    for failure in failures:
        print(f"FAIL {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
