"""genlab.kde against scikit-learn, scipy and a numpy GEMM + log-sum-exp baseline.

The issue's targets at n = 20000 data, m = 2000 queries, d = 64, float64: at least 20x faster than
``sklearn.neighbors.KernelDensity`` (default tree, rtol = 0), at least 5x faster than
``scipy.stats.gaussian_kde.logpdf``, and at most 1.5x the time of the numpy baseline below (BLAS
GEMM for the cross products, then an in-place max / exp / sum per query block). The peak-memory
target (n = 100000, m = 10000, d = 128) is measured in tests/test_kde_memory.py.

Run: ``bash scripts/bench.sh benches/bench_kde.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from genlab import kde

N, M, D = 20_000, 2_000, 64
BANDWIDTH = 1.0  # near the KL-optimal bandwidth of N(0, I_64) data at this n
CASE = f"n={N} m={M} d={D} float64"


@pytest.fixture(scope="module")
def data() -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    rng = np.random.default_rng(0)
    return rng.standard_normal((N, D)), rng.standard_normal((M, D))


def numpy_gemm_logsumexp(
    x: NDArray[np.float64], q: NDArray[np.float64], h: float, block: int = 256
) -> NDArray[np.float64]:
    """log mean_i N(q - x_i; 0, h^2 I) with a BLAS GEMM and in-place numpy ops per query block."""
    n, d = x.shape
    c = 0.5 / (h * h)
    x_norms = np.einsum("ij,ij->i", x, x)
    out = np.empty(len(q))
    for start in range(0, len(q), block):
        qb = q[start : start + block]
        e = qb @ x.T  # the cross products
        e *= 2 * c
        e -= c * x_norms
        top = e.max(axis=1, keepdims=True)
        e -= top
        np.exp(e, out=e)
        q_norms = np.einsum("ij,ij->i", qb, qb)
        out[start : start + block] = np.log(e.sum(axis=1)) + top[:, 0] - c * q_norms
    return out - np.log(n) - 0.5 * d * np.log(2 * np.pi * h * h)


@pytest.mark.parametrize("impl", ["genlab", "numpy GEMM+LSE"])
def test_bench_log_density(
    run_case: Callable[..., Any],
    data: tuple[NDArray[np.float64], NDArray[np.float64]],
    impl: str,
) -> None:
    x, q = data
    if impl == "genlab":
        run_case(f"log_density {CASE}", impl, lambda: kde.log_density(x, q, bandwidth=BANDWIDTH))
    else:
        # The baseline computes the same numbers.
        np.testing.assert_allclose(
            numpy_gemm_logsumexp(x, q, BANDWIDTH),
            kde.log_density(x, q, bandwidth=BANDWIDTH),
            rtol=1e-10,
        )
        run_case(f"log_density {CASE}", impl, lambda: numpy_gemm_logsumexp(x, q, BANDWIDTH))


@pytest.mark.parametrize("impl", ["genlab", "scikit-learn"])
def test_bench_kernel_density(
    run_case: Callable[..., Any],
    data: tuple[NDArray[np.float64], NDArray[np.float64]],
    impl: str,
) -> None:
    x, q = data
    if impl == "genlab":
        est: Any = kde.KernelDensity(bandwidth=BANDWIDTH).fit(x)
        rounds, warmup = 5, 1
    else:
        from sklearn.neighbors import KernelDensity

        est = KernelDensity(bandwidth=BANDWIDTH, rtol=0).fit(x)
        rounds, warmup = 2, 0
    run_case(
        f"KernelDensity.score_samples {CASE}",
        impl,
        lambda: est.score_samples(q),
        rounds=rounds,
        warmup=warmup,
    )


@pytest.mark.parametrize("impl", ["genlab", "scipy"])
def test_bench_gaussian_kde(
    run_case: Callable[..., Any],
    data: tuple[NDArray[np.float64], NDArray[np.float64]],
    impl: str,
) -> None:
    x, q = data
    if impl == "genlab":
        est: Any = kde.gaussian_kde(x.T)
        rounds, warmup = 5, 1
    else:
        import scipy.stats

        est = scipy.stats.gaussian_kde(x.T)
        rounds, warmup = 2, 0
    run_case(
        f"gaussian_kde.logpdf {CASE}", impl, lambda: est.logpdf(q.T), rounds=rounds, warmup=warmup
    )


def test_bench_loo_cv_bandwidth(
    run_case: Callable[..., Any], data: tuple[NDArray[np.float64], NDArray[np.float64]]
) -> None:
    x, _ = data
    run_case(
        f"select_bandwidth loo_cv n={N} d={D}", "genlab", lambda: kde.select_bandwidth(x), rounds=2
    )


def test_bench_information_plane(
    run_case: Callable[..., Any], data: tuple[NDArray[np.float64], NDArray[np.float64]]
) -> None:
    x, _ = data
    layers = [x[:4000, : 16 * (k + 1)] for k in range(4)]
    labels = np.arange(4000) % 10
    run_case(
        "information_plane 4 layers N=4000, 8 noise variances",
        "genlab",
        lambda: kde.information_plane(layers, labels, noise_variance=np.logspace(-3, 1, 8)),
        rounds=3,
    )
