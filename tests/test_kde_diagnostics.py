"""genlab.kde.select_bandwidth and genlab.kde.regime, against direct numpy computations."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy.optimize import brentq
from scipy.special import logsumexp, softmax

from genlab.errors import NumericalWarning
from genlab.kde import log_density, regime, select_bandwidth


def squared_distances(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    return ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)


def naive_cv(data: NDArray[np.float64], h: float) -> float:
    """(1/n) sum_i log[(1/(n-1)) sum_{j != i} N(y_i - y_j; 0, h^2 I)], every pair."""
    n, d = data.shape
    e = -squared_distances(data, data) / (2 * h * h)
    np.fill_diagonal(e, -np.inf)
    return float(np.mean(logsumexp(e, axis=1)) - np.log(n - 1) - d / 2 * np.log(2 * np.pi * h * h))


def g(r: float) -> float:
    return 0.5 * np.log1p(r) - r / (2 * (1 + r) ** 2)


# --- select_bandwidth ---------------------------------------------------------------------


def test_exact_loo_cv_maximizes_the_direct_cross_validated_likelihood() -> None:
    data = np.random.default_rng(0).normal(size=(200, 4)) * [1.0, 2.0, 0.5, 1.0]
    sel = select_bandwidth(data)
    assert sel.exact
    assert sel.n_neighbors == 199
    assert sel.truncation_error == 0.0
    assert sel.score == pytest.approx(naive_cv(data, sel.bandwidth), rel=1e-12)
    grid = np.exp(np.linspace(np.log(sel.bandwidth) - 1, np.log(sel.bandwidth) + 1, 41))
    scores = [naive_cv(data, h) for h in grid]
    assert sel.score >= max(scores) - 1e-12
    assert grid[int(np.argmax(scores))] == pytest.approx(sel.bandwidth, rel=0.06)
    assert sel.log_bandwidths is not None
    assert sel.scores is not None
    assert sel.log_bandwidths.shape == sel.scores.shape


def test_truncated_loo_cv_states_its_error_and_stays_close() -> None:
    data = np.random.default_rng(1).normal(size=(1500, 16))
    exact = select_bandwidth(data, n_neighbors=1499)
    cut = select_bandwidth(data, n_neighbors=64)
    assert exact.exact
    assert not cut.exact
    assert cut.n_neighbors == 64
    assert cut.truncation_error is not None
    assert cut.score is not None
    assert cut.truncated_score is not None
    assert 0 < cut.score - cut.truncated_score <= cut.truncation_error
    assert cut.bandwidth == pytest.approx(exact.bandwidth, rel=0.1)
    # The reported score is the exact CV at the chosen bandwidth.
    loo = log_density(data, bandwidth=cut.bandwidth, leave_one_out=True)
    assert cut.score == pytest.approx(float(loo.mean()), rel=1e-12)
    assert exact.score is not None
    assert cut.score <= exact.score + 1e-12


def test_loo_cv_lands_on_the_kl_optimal_bandwidth_in_high_dimension() -> None:
    data = np.random.default_rng(2).normal(size=(2000, 64))
    sel = select_bandwidth(data)
    report = regime(data, sel.bandwidth)
    assert sel.bandwidth == pytest.approx(report.h_KL, rel=0.1)
    assert select_bandwidth(data, "nn").bandwidth == pytest.approx(report.h_KL, rel=0.1)


def test_nearest_neighbor_rule() -> None:
    data = np.random.default_rng(3).normal(size=(300, 5))
    dist = squared_distances(data, data)
    np.fill_diagonal(dist, np.inf)
    want = np.sqrt(dist.min(axis=1).sum() / (300 * 5))
    assert select_bandwidth(data, "nn").bandwidth == pytest.approx(want, rel=1e-12)
    assert select_bandwidth(data.astype(np.float32), "nn").bandwidth == pytest.approx(
        want, rel=1e-6
    )


@pytest.mark.parametrize(("rule", "base"), [("scott", 400.0), ("silverman", 400.0 * 7 / 4)])
def test_scott_and_silverman_scale_with_the_data(rule: str, base: float) -> None:
    data = np.random.default_rng(4).normal(size=(400, 5)) * 10.0
    scale = np.sqrt(np.mean(np.var(data, axis=0, ddof=1)))
    sel = select_bandwidth(data, rule)
    assert sel.bandwidth == pytest.approx(base ** (-1 / 9) * scale, rel=1e-12)
    assert select_bandwidth(data / 10.0, rule).bandwidth == pytest.approx(sel.bandwidth / 10.0)


def test_select_bandwidth_errors_and_warnings() -> None:
    data = np.random.default_rng(5).normal(size=(50, 3))
    with pytest.raises(ValueError, match="method: expected one of"):
        select_bandwidth(data, "plugin")
    for method in ("loo_cv", "nn", "scott"):
        with pytest.raises(ValueError, match="at least 2"):
            select_bandwidth(data[:1], method)
    with pytest.raises(ValueError, match="NaN"):
        select_bandwidth(np.array([[0.0], [np.nan]]))
    with pytest.raises(ValueError, match="NaN"):
        select_bandwidth(np.array([[0.0], [np.nan]]), "silverman")
    with pytest.raises(ValueError, match="n_neighbors"):
        select_bandwidth(data, n_neighbors=0)
    with pytest.raises(TypeError, match="n_neighbors"):
        select_bandwidth(data, n_neighbors=True)
    with pytest.raises(ValueError, match="bounds"):
        select_bandwidth(data, bounds=(1.0, 0.5))
    for method in ("loo_cv", "scott", "silverman"):
        with pytest.raises(ValueError, match="all points are identical"):
            select_bandwidth(np.ones((10, 2)), method)
    duplicated = np.repeat(data, 2, axis=0)
    with pytest.raises(ValueError, match="exact duplicate"):
        select_bandwidth(duplicated, "nn")
    with pytest.warns(NumericalWarning, match="end of the search range"):
        select_bandwidth(duplicated)


# --- regime -------------------------------------------------------------------------------


def test_regime_bandwidths_of_isotropic_gaussian_data() -> None:
    sigma, n, d = 2.0, 3000, 40
    data = np.random.default_rng(6).normal(scale=sigma, size=(n, d))
    report = regime(data, 1.0)
    eigenvalues = np.linalg.eigvalsh(np.cov(data.T))
    np.testing.assert_allclose(report.eigenvalues, eigenvalues, rtol=1e-9, atol=1e-12)
    alpha = np.log(n) / d
    assert report.alpha == pytest.approx(alpha, rel=1e-14)
    # The general equation (1/d) sum_j g(lambda_j t) = alpha, solved independently.
    t = brentq(
        lambda t: np.mean([g(lam * t) for lam in eigenvalues]) - alpha, 1e-8, 1e8, xtol=1e-15
    )
    assert report.h_G == pytest.approx(1 / np.sqrt(t), rel=1e-9)
    assert report.h_CLT == pytest.approx(np.sqrt(2) * report.h_G, rel=1e-14)
    h_kl2 = np.mean(eigenvalues * (2 + t * eigenvalues) / (1 + t * eigenvalues) ** 2)
    assert report.h_KL == pytest.approx(np.sqrt(h_kl2), rel=1e-9)
    # Close to the isotropic closed form with the true sigma.
    r_g = brentq(lambda r: g(r) - alpha, 1e-9, 1e9)
    assert report.h_G == pytest.approx(sigma / np.sqrt(r_g), rel=0.05)
    assert report.h_KL < report.h_G


def test_regime_labels_and_effective_number_of_points() -> None:
    data = np.random.default_rng(7).normal(size=(800, 30))
    h_g = regime(data, 1.0).h_G
    low, mid, high = (
        regime(data, 0.5 * h_g),
        regime(data, 1.2 * h_g),
        regime(data, 2.0 * h_g),
    )
    assert (low.label, mid.label, high.label) == ("extreme_value", "heavy_tailed", "clt")
    assert low.median_inverse_y2 < mid.median_inverse_y2 < high.median_inverse_y2
    # 1/Y2 per query, directly: leave-one-out softmax weights over the other points.
    h = 1.2 * h_g
    e = -squared_distances(data, data) / (2 * h * h)
    np.fill_diagonal(e, -np.inf)
    p = softmax(e, axis=1)
    np.testing.assert_allclose(mid.inverse_y2, 1 / (p**2).sum(axis=1), rtol=1e-9)
    queries = np.random.default_rng(8).normal(size=(20, 30))
    p = softmax(-squared_distances(queries, data) / (2 * h * h), axis=1)
    np.testing.assert_allclose(
        regime(data, h, queries=queries).inverse_y2, 1 / (p**2).sum(axis=1), rtol=1e-9
    )


def test_regime_errors() -> None:
    data = np.random.default_rng(9).normal(size=(30, 3))
    with pytest.raises(ValueError, match="bandwidth"):
        regime(data, 0.0)
    with pytest.raises(ValueError, match="at least 2"):
        regime(data[:1], 1.0)
    with pytest.raises(ValueError, match="all points identical"):
        regime(np.ones((10, 3)), 1.0)
    with pytest.raises(ValueError, match="queries: expected 3 features"):
        regime(data, 1.0, queries=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="NaN"):
        regime(np.full((5, 2), np.nan), 1.0)
