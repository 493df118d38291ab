"""Shared fixture of the benchmark suites.

Every case is timed twice in the same run, once for genlab and once for its peer (scipy,
scikit-learn, pandas, numpy, torch), as two parametrizations of one test. ``run_case`` records the
case name and which implementation ran, so that ``benches/ratio_table.py`` can pair them up.

Run everything with ``bash scripts/bench.sh`` (release build, JSON in ``bench-results/``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture
def run_case(benchmark: Any) -> Callable[..., Any]:
    """Time ``fn`` as implementation ``impl`` of benchmark case ``case``.

    ``impl`` is "genlab" for our side and the peer's name otherwise. Each case runs ``rounds``
    times after ``warmup`` untimed calls; the ratio table uses the medians.
    """

    def run(
        case: str, impl: str, fn: Callable[[], Any], *, rounds: int = 5, warmup: int = 1
    ) -> Any:
        benchmark.group = case
        benchmark.extra_info["case"] = case
        benchmark.extra_info["impl"] = impl
        return benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=warmup)

    return run
