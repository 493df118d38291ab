"""pytest plugin for running the peers' own test suites with genlab.accel (tests/peer_suites/run.py).

``--genlab-accel off|on|strict``: unpatched; patched; patched with every fallback an error
(``GENLAB_ACCEL_FAIL_ON_FALLBACK=1``), where the tests listed in ``--genlab-deselect`` (TOML
tables ``deselected`` and ``known_differences`` of node id -> reason) are deselected. ``--genlab-results FILE`` writes each test's outcome
as JSON.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("genlab-accel")
    group.addoption("--genlab-accel", choices=("off", "on", "strict"), default="off")
    group.addoption("--genlab-deselect", default=None)
    group.addoption("--genlab-results", default=None)


def pytest_configure(config: Any) -> None:
    mode = config.getoption("--genlab-accel")
    if mode == "off":
        return
    import genlab.accel

    genlab.accel.install(fail_on_fallback=mode == "strict")


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    path = config.getoption("--genlab-deselect")
    if config.getoption("--genlab-accel") != "strict" or not path:
        return
    listed = tomllib.loads(Path(path).read_text())
    reasons = {**listed.get("deselected", {}), **listed.get("known_differences", {})}
    kept = [item for item in items if item.nodeid not in reasons]
    deselected = [item for item in items if item.nodeid in reasons]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


_OUTCOMES: dict[str, str] = {}
_FAST_CALLS = [0]


def _fast_calls_so_far() -> int:
    if "genlab.accel" not in sys.modules:
        return 0
    from genlab.accel import _PROFILE

    return sum(stats.fast_calls for stats in _PROFILE.functions.values())


@pytest.hookimpl(trylast=True)
def pytest_runtest_logreport(report: Any) -> None:
    """Each test's outcome; a passed test that made no call on genlab's fast path is
    "passed-without-genlab" (it says nothing about the fast path)."""
    if report.when == "setup":
        _FAST_CALLS[0] = _fast_calls_so_far()
    if report.when == "call" or (report.when == "setup" and not report.passed):
        outcome = report.outcome
        if outcome == "passed" and _fast_calls_so_far() == _FAST_CALLS[0]:
            outcome = "passed-without-genlab"
        _OUTCOMES[report.nodeid] = outcome
    elif report.when == "teardown" and report.failed:
        _OUTCOMES[report.nodeid] = "failed"


def pytest_unconfigure(config: Any) -> None:
    path = config.getoption("--genlab-results")
    if path:
        Path(path).write_text(json.dumps(_OUTCOMES, indent=0, sort_keys=True))
    os.environ.pop("GENLAB_ACCEL_FAIL_ON_FALLBACK", None)
