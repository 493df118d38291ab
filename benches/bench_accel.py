"""genlab.accel: the peers' own functions, patched, against the same functions unpatched.

Each case calls the function by the name a user's script uses (``scipy.stats.kendalltau``,
``gaussian_kde(...)(points)``, ``KernelDensity.score_samples``, ``DataFrame.corr``), once with
genlab.accel installed and once without, in the same run: the speed-up a program gets with no
change, dispatch and checks included.

Run: ``bash scripts/bench.sh benches/bench_accel.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

import genlab.accel


@pytest.fixture(params=["genlab", "peer"])
def side(request: pytest.FixtureRequest) -> Iterator[str]:
    """'genlab': the peers' functions patched by genlab.accel; 'peer': unpatched."""
    if request.param == "genlab":
        genlab.accel.install()
    try:
        yield request.param
    finally:
        genlab.accel.uninstall()


def peer_name(side: str, peer: str) -> str:
    return "genlab" if side == "genlab" else peer


def test_bench_kendalltau(run_case: Callable[..., Any], side: str) -> None:
    import scipy.stats

    rng = np.random.default_rng(0)
    x = rng.normal(size=100_000)
    y = x + rng.normal(size=100_000)
    run_case(
        "scipy.stats.kendalltau, n = 100,000 (patched vs not)",
        peer_name(side, "scipy"),
        lambda: scipy.stats.kendalltau(x, y),
    )


def test_bench_gaussian_kde(run_case: Callable[..., Any], side: str) -> None:
    import scipy.stats

    rng = np.random.default_rng(1)
    data, points = rng.normal(size=(3, 10_000)), rng.normal(size=(3, 2_000))
    kde = scipy.stats.gaussian_kde(data)
    run_case(
        "scipy.stats.gaussian_kde(...)(points), 10,000 x 2,000 in 3-D (patched vs not)",
        peer_name(side, "scipy"),
        lambda: kde(points),
        rounds=3,
    )


def test_bench_kernel_density(run_case: Callable[..., Any], side: str) -> None:
    from sklearn.neighbors import KernelDensity

    rng = np.random.default_rng(2)
    data, queries = rng.normal(size=(10_000, 16)), rng.normal(size=(2_000, 16))
    kde = KernelDensity(bandwidth=0.5).fit(data)
    run_case(
        "KernelDensity.score_samples, 10,000 x 2,000 in 16-D (patched vs not)",
        peer_name(side, "scikit-learn"),
        lambda: kde.score_samples(queries),
        rounds=3,
    )


def test_bench_frame_corr(run_case: Callable[..., Any], side: str) -> None:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(size=(5_000, 20)))
    run_case(
        "DataFrame.corr(method='kendall'), 5,000 x 20 (patched vs not)",
        peer_name(side, "pandas"),
        lambda: frame.corr(method="kendall"),
        rounds=3,
    )
