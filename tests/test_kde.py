"""genlab.kde: the log-density kernel and the scipy / scikit-learn drop-ins.

References: scipy.stats.gaussian_kde, sklearn.neighbors.KernelDensity, and a direct float64
log-sum-exp over all pairs written here.
"""

from __future__ import annotations

import doctest
import subprocess
import sys

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from scipy.special import logsumexp
from sklearn.neighbors import KernelDensity as SkKernelDensity
from sklearn.neighbors._kd_tree import kernel_norm

import genlab
from genlab import kde
from genlab.kde import KernelDensity, NotFittedError, gaussian_kde, log_density
from genlab.kde import _scipy as _kde_scipy
from genlab.kde import _sklearn as _kde_sklearn

KERNELS = ["gaussian", "tophat", "epanechnikov", "exponential", "linear", "cosine"]


def naive_log_density(
    data: NDArray[np.float64],
    queries: NDArray[np.float64],
    h: float,
    kernel: str = "gaussian",
    weights: NDArray[np.float64] | None = None,
    leave_one_out: bool = False,
) -> NDArray[np.float64]:
    """Every pair, directly: log sum_i w_i K(|q - y_i|) / sum w + scikit-learn's normalization."""
    n, d = data.shape
    w = np.ones(n) if weights is None else weights
    dist = np.sqrt(((queries[:, None, :] - data[None, :, :]) ** 2).sum(-1))
    u = dist / h
    with np.errstate(divide="ignore"):
        log_k = {
            "gaussian": -0.5 * u**2,
            "tophat": np.where(u < 1, 0.0, -np.inf),
            "epanechnikov": np.where(u < 1, np.log(np.clip(1 - u**2, 0, None)), -np.inf),
            "exponential": -u,
            "linear": np.where(u < 1, np.log(np.clip(1 - u, 0, None)), -np.inf),
            "cosine": np.where(u < 1, np.log(np.clip(np.cos(0.5 * np.pi * u), 0, None)), -np.inf),
        }[kernel] + np.log(w)[None, :]
    total = np.full(len(queries), w.sum())
    if leave_one_out:
        log_k[np.arange(n), np.arange(n)] = -np.inf
        total = total - w
    return logsumexp(log_k, axis=1) - np.log(total) + kernel_norm(h, d, kernel, return_log=True)


def assert_close_log(got: NDArray[np.float64], want: NDArray[np.float64], rtol: float) -> None:
    """Equal -inf where want is -inf, relative error below rtol elsewhere."""
    finite = np.isfinite(want)
    np.testing.assert_array_equal(np.isfinite(got), finite)
    np.testing.assert_array_equal(got[~finite], want[~finite])
    np.testing.assert_allclose(got[finite], want[finite], rtol=rtol, atol=0)


def correlated(rng: np.random.Generator, d: int, n: int, shift: float = 3.0) -> NDArray[np.float64]:
    """n points (d, n) of a correlated Gaussian with a non-zero mean (scipy's layout)."""
    a = rng.normal(size=(d, d)) / np.sqrt(d) + np.eye(d)
    return a @ rng.normal(size=(d, n)) + shift


# --- scipy.stats.gaussian_kde ------------------------------------------------------------


@pytest.mark.parametrize("d", [1, 2, 8, 64, 256])
@pytest.mark.parametrize("weighted", [False, True])
def test_gaussian_kde_matches_scipy(d: int, weighted: bool) -> None:
    rng = np.random.default_rng(d)
    n = max(3 * d, 300)
    data = correlated(rng, d, n)
    weights = rng.uniform(0.1, 2.0, n) if weighted else None
    points = correlated(rng, d, 40)
    ours, theirs = (
        gaussian_kde(data, weights=weights),
        scipy.stats.gaussian_kde(data, weights=weights),
    )
    np.testing.assert_allclose(ours.logpdf(points), theirs.logpdf(points), rtol=1e-10, atol=0)
    np.testing.assert_allclose(ours.pdf(points), theirs.pdf(points), rtol=1e-9, atol=0)
    np.testing.assert_allclose(ours(points), theirs.evaluate(points), rtol=1e-9, atol=0)
    for name in ("d", "n", "neff", "factor", "log_det"):
        assert getattr(ours, name) == pytest.approx(getattr(theirs, name), rel=1e-13)
    for name in ("covariance", "cho_cov", "inv_cov", "weights", "dataset"):
        want = getattr(theirs, name)
        # Different LAPACK drivers (numpy's inv, scipy's): agree to rounding of the largest entry.
        np.testing.assert_allclose(
            getattr(ours, name), want, rtol=0, atol=1e-10 * np.abs(want).max()
        )
    assert ours.scotts_factor() == pytest.approx(theirs.scotts_factor(), rel=1e-14)
    assert ours.silverman_factor() == pytest.approx(theirs.silverman_factor(), rel=1e-14)


@pytest.mark.parametrize(
    "bw_method", ["scott", "silverman", 0.3, lambda k: 0.5 * k.scotts_factor()]
)
def test_gaussian_kde_bandwidth_rules(bw_method: object) -> None:
    rng = np.random.default_rng(1)
    data, points = correlated(rng, 3, 200), correlated(rng, 3, 30)
    ours = gaussian_kde(data, bw_method=bw_method)  # type: ignore[arg-type]
    theirs = scipy.stats.gaussian_kde(data, bw_method=bw_method)
    assert ours.factor == pytest.approx(theirs.factor, rel=1e-14)
    np.testing.assert_allclose(ours.logpdf(points), theirs.logpdf(points), rtol=1e-10)
    ours.set_bandwidth("silverman")
    theirs.set_bandwidth("silverman")
    np.testing.assert_allclose(ours.logpdf(points), theirs.logpdf(points), rtol=1e-10)
    ours.set_bandwidth(0.2)
    theirs.set_bandwidth(0.2)
    assert ours.covariance_factor() == theirs.covariance_factor() == 0.2
    np.testing.assert_allclose(ours.logpdf(points), theirs.logpdf(points), rtol=1e-10)


def test_gaussian_kde_point_shapes_as_scipy() -> None:
    rng = np.random.default_rng(2)
    data = correlated(rng, 3, 100)
    ours, theirs = gaussian_kde(data), scipy.stats.gaussian_kde(data)
    row = [0.5, 1.0, 2.0]  # a (d,) vector is one point
    np.testing.assert_allclose(ours.logpdf(row), theirs.logpdf(row), rtol=1e-10)
    one_d = rng.normal(size=50)
    np.testing.assert_allclose(
        gaussian_kde(one_d).logpdf(np.linspace(-2, 2, 7)),
        scipy.stats.gaussian_kde(one_d).logpdf(np.linspace(-2, 2, 7)),
        rtol=1e-10,
    )


def test_gaussian_kde_integrals_resample_and_marginal_match_scipy() -> None:
    rng = np.random.default_rng(3)
    data = correlated(rng, 3, 150)
    weights = rng.uniform(0.5, 1.5, 150)
    ours = gaussian_kde(data, weights=weights)
    theirs = scipy.stats.gaussian_kde(data, weights=weights)
    mean, cov = np.array([3.0, 2.5, 3.5]), np.diag([0.5, 1.0, 2.0])
    assert ours.integrate_gaussian(mean, cov) == pytest.approx(
        theirs.integrate_gaussian(mean, cov), rel=1e-10
    )
    other_data = correlated(rng, 3, 80)
    assert ours.integrate_kde(gaussian_kde(other_data)) == pytest.approx(
        theirs.integrate_kde(scipy.stats.gaussian_kde(other_data)), rel=1e-10
    )
    low, high = np.array([2.0, 2.0, 2.0]), np.array([4.0, 4.0, 5.0])
    assert ours.integrate_box(low, high, rng=np.random.default_rng(7)) == pytest.approx(
        theirs.integrate_box(low, high, rng=np.random.default_rng(7)), rel=1e-6
    )
    line = rng.normal(size=60)
    assert gaussian_kde(line).integrate_box_1d(-1.0, 0.5) == pytest.approx(
        scipy.stats.gaussian_kde(line).integrate_box_1d(-1.0, 0.5), rel=1e-13
    )
    np.testing.assert_array_equal(ours.resample(25, seed=11), theirs.resample(25, seed=11))
    np.testing.assert_array_equal(
        ours.resample(5, seed=np.random.default_rng(4)),
        theirs.resample(5, seed=np.random.default_rng(4)),
    )
    assert ours.resample(seed=1).shape == (3, int(theirs.neff))
    points = correlated(rng, 2, 10)
    np.testing.assert_allclose(
        ours.marginal([0, -1]).logpdf(points),
        theirs.marginal([0, -1]).logpdf(points),
        rtol=1e-10,
    )


def test_gaussian_kde_logpdf_is_finite_where_scipy_pdf_underflows() -> None:
    rng = np.random.default_rng(4)
    data = correlated(rng, 256, 600, shift=0.0)
    far = correlated(rng, 256, 5, shift=0.0) + 3.0
    theirs = scipy.stats.gaussian_kde(data)
    assert (theirs.pdf(far) == 0).all()
    got = gaussian_kde(data).logpdf(far)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, theirs.logpdf(far), rtol=1e-10)


def test_gaussian_kde_errors() -> None:
    rng = np.random.default_rng(5)
    with pytest.raises(ValueError, match=r"greater than number of samples.*isotropic kernel"):
        gaussian_kde(rng.normal(size=(10, 5)))
    flat = np.vstack([rng.normal(size=50), np.zeros(50)])
    with pytest.raises(np.linalg.LinAlgError, match="lower-dimensional subspace"):
        gaussian_kde(flat)
    with pytest.raises(ValueError, match="multiple elements"):
        gaussian_kde([1.0])
    with pytest.raises(ValueError, match="length n"):
        gaussian_kde(rng.normal(size=(2, 30)), weights=np.ones(29))
    with pytest.raises(ValueError, match="one-dimensional"):
        gaussian_kde(rng.normal(size=(2, 30)), weights=np.ones((30, 1)))
    with pytest.raises(ValueError, match="NaN"):
        gaussian_kde(np.array([[1.0, np.nan, 2.0, 3.0]]))
    with pytest.raises(TypeError, match="numeric"):
        gaussian_kde(np.array([["a", "b", "c"]]))
    kde2 = gaussian_kde(rng.normal(size=(2, 30)))
    with pytest.raises(ValueError, match="points have dimension 3, dataset has dimension 2"):
        kde2.logpdf(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="bw_method"):
        kde2.set_bandwidth("nope")
    with pytest.raises(ValueError, match="only handles 1D"):
        kde2.integrate_box_1d(0, 1)
    with pytest.raises(ValueError, match="mean does not have dimension"):
        kde2.integrate_gaussian(np.zeros(3), np.eye(2))
    with pytest.raises(ValueError, match="same dimensionality"):
        kde2.integrate_kde(gaussian_kde(rng.normal(size=(3, 30))))
    with pytest.raises(ValueError, match="unique"):
        kde2.marginal([0, 0])


# --- sklearn.neighbors.KernelDensity -----------------------------------------------------


def _bandwidth_for(kernel: str, d: int) -> float:
    """Bandwidths at which scikit-learn's tree is exact (it is not at small ones, see below) and
    compact kernels reach some, not all, of the data."""
    return (0.5 * np.sqrt(d) + 0.3) if kernel in ("gaussian", "exponential") else 1.45 * np.sqrt(d)


# scikit-learn's cosine normalization is NaN or wrong for d >= 4 (tested separately below).
@pytest.mark.parametrize(
    ("kernel", "d"),
    [(k, d) for k in KERNELS for d in (1, 2, 8, 64, 256) if k != "cosine" or d <= 3],
)
def test_kernel_density_matches_scikit_learn(kernel: str, d: int) -> None:
    rng = np.random.default_rng(d)
    x, q = rng.normal(size=(400, d)), rng.normal(size=(30, d))
    w = rng.uniform(0.1, 3.0, 400)
    h = _bandwidth_for(kernel, d)
    for weights in (None, w):
        want = SkKernelDensity(kernel=kernel, bandwidth=h).fit(x, sample_weight=weights)
        got = KernelDensity(kernel=kernel, bandwidth=h).fit(x, sample_weight=weights)
        assert_close_log(got.score_samples(q), want.score_samples(q), rtol=1e-10)
        assert_close_log(got.score_samples(q), naive_log_density(x, q, h, kernel, weights), 1e-12)
        if np.isfinite(want.score(q)):
            assert got.score(q) == pytest.approx(want.score(q), rel=1e-10)


def test_where_scikit_learns_tree_loses_precision_genlab_matches_the_direct_sum() -> None:
    # scikit-learn issues #25799 and #27186: at small bandwidths in high dimension the tree's
    # log-space bound bookkeeping returns values tens of nats off, even with rtol = 0.
    rng = np.random.default_rng(0)
    x, q = rng.normal(size=(600, 64)), rng.normal(size=(5, 64))
    want = naive_log_density(x, q, 0.7)
    got = KernelDensity(bandwidth=0.7).fit(x).score_samples(q)
    np.testing.assert_allclose(got, want, rtol=1e-13)
    sklearn_values = SkKernelDensity(bandwidth=0.7).fit(x).score_samples(q)
    assert np.max(np.abs(sklearn_values - want)) > 1.0


def test_cosine_kernel_normalization_follows_scikit_learn_and_refuses_nan() -> None:
    for d in (1, 2, 3, 5, 6, 7, 10):
        x = np.random.default_rng(d).normal(size=(50, d))
        got = KernelDensity(kernel="cosine", bandwidth=3.0).fit(x).score_samples(x[:3])
        want = naive_log_density(x, x[:3], 3.0, "cosine")
        np.testing.assert_allclose(got, want, rtol=1e-12)
    for d in (4, 8):
        assert np.isnan(kernel_norm(1.0, d, "cosine"))
        with pytest.raises(ValueError, match="cosine kernel is not defined in"):
            KernelDensity(kernel="cosine").fit(np.zeros((3, d))).score_samples(np.zeros((1, d)))


@pytest.mark.parametrize("rule", ["scott", "silverman"])
def test_string_bandwidths_follow_scikit_learn(rule: str) -> None:
    x = np.random.default_rng(6).normal(scale=5.0, size=(300, 4))
    ours, theirs = KernelDensity(bandwidth=rule).fit(x), SkKernelDensity(bandwidth=rule).fit(x)
    assert ours.bandwidth_ == theirs.bandwidth_
    np.testing.assert_allclose(ours.score_samples(x[:20]), theirs.score_samples(x[:20]), rtol=1e-10)


def test_estimator_protocol_and_grid_search() -> None:
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV, KFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    assert set(KernelDensity().get_params()) == set(SkKernelDensity().get_params())
    assert KernelDensity().get_params() == SkKernelDensity().get_params()
    est = KernelDensity(bandwidth=0.3, kernel="tophat")
    assert repr(est) == repr(SkKernelDensity(bandwidth=0.3, kernel="tophat"))
    copy = clone(est)
    assert copy is not est
    assert copy.get_params() == est.get_params()
    assert est.set_params(bandwidth=0.4) is est
    assert est.bandwidth == 0.4
    with pytest.raises(ValueError, match="Invalid parameter 'bandwidht'"):
        est.set_params(bandwidht=1.0)

    x = np.random.default_rng(7).normal(size=(240, 3))
    grid = {"bandwidth": np.linspace(0.4, 1.4, 6), "kernel": ["gaussian", "exponential"]}
    folds = KFold(4, shuffle=True, random_state=0)
    ours = GridSearchCV(KernelDensity(), grid, cv=folds).fit(x)
    theirs = GridSearchCV(SkKernelDensity(), grid, cv=folds).fit(x)
    assert ours.best_params_ == theirs.best_params_
    np.testing.assert_allclose(
        ours.cv_results_["mean_test_score"], theirs.cv_results_["mean_test_score"], rtol=1e-10
    )
    pipe = make_pipeline(StandardScaler(), KernelDensity(bandwidth=0.5)).fit(x)
    assert np.isfinite(pipe.score(x))


def test_sample_matches_scikit_learn_stream() -> None:
    x = np.random.default_rng(8).normal(size=(100, 3))
    w = np.random.default_rng(9).uniform(0.0, 2.0, 100)
    for kernel in ("gaussian", "tophat"):
        for weights in (None, w):
            ours = KernelDensity(kernel=kernel, bandwidth=0.4).fit(x, sample_weight=weights)
            theirs = SkKernelDensity(kernel=kernel, bandwidth=0.4).fit(x, sample_weight=weights)
            np.testing.assert_allclose(
                ours.sample(20, random_state=3), theirs.sample(20, random_state=3), rtol=1e-14
            )
    with pytest.raises(NotImplementedError):
        KernelDensity(kernel="linear").fit(x).sample()


def test_feature_names_are_recorded_like_scikit_learn() -> None:
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame(np.random.default_rng(10).normal(size=(20, 2)), columns=["a", "b"])
    est = KernelDensity().fit(frame)
    np.testing.assert_array_equal(est.feature_names_in_, ["a", "b"])
    assert est.n_features_in_ == 2


def test_kernel_density_errors() -> None:
    x = np.random.default_rng(11).normal(size=(20, 2))
    with pytest.raises(NotFittedError, match="not fitted"):
        KernelDensity().score_samples(x)
    fitted = KernelDensity().fit(x)
    with pytest.raises(ValueError, match="X has 3 features, but KernelDensity is expecting 2"):
        fitted.score_samples(np.zeros((2, 3)))
    bad_params: list[dict[str, object]] = [
        {"bandwidth": -1.0},
        {"bandwidth": float("nan")},
        {"bandwidth": "wide"},
        {"kernel": "box"},
        {"algorithm": "brute"},
        {"metric": "manhattan"},
        {"metric": "minkowski", "metric_params": {"p": 1}},
        {"atol": -1},
        {"leaf_size": 0},
    ]
    for params in bad_params:
        with pytest.raises(ValueError, match=next(iter(params))):
            KernelDensity(**params).fit(x)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="bandwidth"):
        KernelDensity(bandwidth=True).fit(x)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="NaN"):
        KernelDensity().fit(np.array([[0.0, np.nan]]))
    with pytest.raises(ValueError, match="sample_weight"):
        KernelDensity().fit(x, sample_weight=-np.ones(20))
    with pytest.raises(ValueError, match="sample_weight"):
        KernelDensity().fit(x, sample_weight=np.ones(19))
    with pytest.raises(ValueError, match="2-D"):
        KernelDensity().fit(np.zeros(5))
    with pytest.raises(ValueError, match="at least one sample"):
        KernelDensity().fit(np.zeros((0, 2)))
    KernelDensity(metric="minkowski", metric_params={"p": 2}).fit(x)  # Euclidean: accepted


# --- log_density --------------------------------------------------------------------------


@pytest.mark.parametrize("kernel", KERNELS)
def test_log_density_weights_and_leave_one_out_match_a_naive_loop(kernel: str) -> None:
    rng = np.random.default_rng(12)
    # 2100 points: several data blocks of the kernel, and split data ranges.
    x = rng.normal(size=(2100, 3))
    w = rng.uniform(0.0, 2.0, 2100)
    q = rng.normal(size=(40, 3))
    h = 0.9
    assert_close_log(
        log_density(x, q, bandwidth=h, kernel=kernel), naive_log_density(x, q, h, kernel), 1e-11
    )
    assert_close_log(
        log_density(x, q, bandwidth=h, kernel=kernel, weights=w),
        naive_log_density(x, q, h, kernel, w),
        1e-11,
    )
    sub = x[:300]
    # Leave-one-out, against a loop that deletes each point in turn.
    loop = np.array(
        [
            naive_log_density(
                np.delete(sub, i, axis=0), sub[i : i + 1], h, kernel, np.delete(w[:300], i)
            )[0]
            for i in range(300)
        ]
    )
    assert_close_log(
        log_density(sub, bandwidth=h, kernel=kernel, weights=w[:300], leave_one_out=True),
        loop,
        1e-11,
    )


def test_few_queries_against_many_points_and_thread_counts() -> None:
    # One query block against several data blocks: the data range is split across threads.
    rng = np.random.default_rng(19)
    x, q = rng.normal(size=(5000, 100)), rng.normal(size=(10, 100))
    want = naive_log_density(x, q, 3.0)
    for n_jobs in (None, 1, 2, -1):
        np.testing.assert_allclose(
            log_density(x, q, bandwidth=3.0, n_jobs=n_jobs), want, rtol=1e-12
        )


def test_full_covariance_bandwidth_equals_scipy() -> None:
    rng = np.random.default_rng(13)
    data = correlated(rng, 4, 300)
    scipy_kde = scipy.stats.gaussian_kde(data)
    q = correlated(rng, 4, 20)
    np.testing.assert_allclose(
        log_density(data.T, q.T, bandwidth=scipy_kde.covariance), scipy_kde.logpdf(q), rtol=1e-10
    )


def test_float32_is_read_in_float64() -> None:
    rng = np.random.default_rng(14)
    x32, q32 = (
        rng.normal(size=(500, 16)).astype(np.float32),
        rng.normal(size=(10, 16)).astype(np.float32),
    )
    got = log_density(x32, q32, bandwidth=0.8)
    assert got.dtype == np.float64
    want = naive_log_density(x32.astype(np.float64), q32.astype(np.float64), 0.8)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # Mixed dtypes are read in float64 too.
    np.testing.assert_allclose(
        log_density(x32, q32.astype(np.float64), bandwidth=0.8), want, rtol=1e-12
    )


def test_bandwidth_by_rule_name() -> None:
    x = np.random.default_rng(15).normal(size=(300, 5))
    h = kde.select_bandwidth(x, "silverman").bandwidth
    np.testing.assert_array_equal(
        log_density(x, x[:5], bandwidth="silverman"), log_density(x, x[:5], bandwidth=h)
    )


def test_mean_estimate_over_gaussian_datasets_is_the_smoothed_density() -> None:
    # E[rho_hat(x)] over datasets of N(0, sigma^2 I) equals N(x; 0, (sigma^2 + h^2) I).
    rng = np.random.default_rng(16)
    d, sigma, h = 4, 1.3, 0.6
    x = np.array([[0.0] * d, [0.5, -0.5, 1.0, 0.0], [1.5] * d])
    estimates = np.exp(
        [log_density(rng.normal(scale=sigma, size=(2000, d)), x, bandwidth=h) for _ in range(60)]
    )
    truth = scipy.stats.multivariate_normal(np.zeros(d), (sigma**2 + h**2) * np.eye(d)).pdf(x)
    standard_error = estimates.std(axis=0, ddof=1) / np.sqrt(len(estimates))
    assert (np.abs(estimates.mean(axis=0) - truth) < 4 * standard_error).all()


@settings(max_examples=25)
@given(
    seed=st.integers(0, 2**32 - 1),
    d=st.integers(1, 12),
    shift=st.floats(-1e3, 1e3),
    kernel=st.sampled_from(KERNELS[:5]),
)
def test_invariant_under_translation_rotation_and_permutation(
    seed: int, d: int, shift: float, kernel: str
) -> None:
    rng = np.random.default_rng(seed)
    x, q = rng.normal(size=(60, d)), rng.normal(size=(7, d))
    w = rng.uniform(0.1, 1.0, 60)
    h = 1.2 * np.sqrt(d)
    base = log_density(x, q, bandwidth=h, kernel=kernel, weights=w)
    rotation, _ = np.linalg.qr(rng.normal(size=(d, d)))
    perm = rng.permutation(60)
    moved = log_density(
        x[perm] @ rotation.T + shift,
        q @ rotation.T + shift,
        bandwidth=h,
        kernel=kernel,
        weights=w[perm],
    )
    finite = np.isfinite(base)
    # Boundary points of compact kernels may flip; the densities that stay finite agree.
    both = finite & np.isfinite(moved)
    assert both.sum() >= finite.sum() - 1
    np.testing.assert_allclose(moved[both], base[both], rtol=1e-8, atol=1e-8)


def test_log_space_is_safe_at_d_512() -> None:
    rng = np.random.default_rng(17)
    x, q = rng.normal(size=(800, 512)), rng.normal(size=(10, 512))
    # Every kernel value is below exp(-700): a linear-space sum would give log(0) = -inf.
    dist2 = ((q[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    assert (dist2 / (2 * 0.5**2)).min() > 745
    got = log_density(x, q, bandwidth=0.5)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, naive_log_density(x, q, 0.5), rtol=1e-12)
    loo = log_density(x, bandwidth=0.5, leave_one_out=True)
    assert np.isfinite(loo).all()


def test_log_density_errors() -> None:
    x = np.random.default_rng(18).normal(size=(20, 3))
    with pytest.raises(ValueError, match="queries: expected 3 features"):
        log_density(x, np.zeros((2, 4)), bandwidth=1.0)
    for h in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="bandwidth: expected a positive finite number"):
            log_density(x, bandwidth=h)
    with pytest.raises(ValueError, match="too small: 1/h\\^2 overflows"):
        log_density(x, bandwidth=1e-200)
    with pytest.raises(ValueError, match="squared norm of point 0 overflows"):
        log_density(x * 1e160, bandwidth=1.0)
    with pytest.raises(TypeError, match="bandwidth"):
        log_density(x, bandwidth=True)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="data points is empty"):
        log_density(np.zeros((0, 3)), np.zeros((1, 3)), bandwidth=1.0)
    with pytest.raises(ValueError, match="data contains NaN or infinity"):
        log_density(np.array([[0.0, np.inf]]), bandwidth=1.0)
    with pytest.raises(ValueError, match="queries contains NaN or infinity"):
        log_density(x, np.full((1, 3), np.nan), bandwidth=1.0)
    with pytest.raises(ValueError, match="kernel: expected one of"):
        log_density(x, bandwidth=1.0, kernel="box")
    with pytest.raises(ValueError, match="leave_one_out"):
        log_density(x, x, bandwidth=1.0, leave_one_out=True)
    with pytest.raises(ValueError, match="data points is empty or too small: got 1"):
        log_density(x[:1], bandwidth=1.0, leave_one_out=True)
    with pytest.raises(ValueError, match="weights: expected one weight per data point"):
        log_density(x, bandwidth=1.0, weights=np.ones(3))
    with pytest.raises(ValueError, match="weights: expected non-negative"):
        log_density(x, bandwidth=1.0, weights=-np.ones(20))
    with pytest.raises(ValueError, match="weights: expected at least one positive"):
        log_density(x, bandwidth=1.0, weights=np.zeros(20))
    with pytest.raises(ValueError, match="carries all the weight"):
        log_density(x, bandwidth=1.0, weights=np.eye(20)[0], leave_one_out=True)
    with pytest.raises(ValueError, match="not positive definite"):
        log_density(x, bandwidth=np.diag([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match=r"\(3, 3\) kernel covariance"):
        log_density(x, bandwidth=np.eye(2))
    with pytest.raises(ValueError, match="needs kernel='gaussian'"):
        log_density(x, bandwidth=np.eye(3), kernel="tophat")
    with pytest.raises(TypeError, match="numeric"):
        log_density(np.array([["a"]]), bandwidth=1.0)
    with pytest.raises(ValueError, match="2-D"):
        log_density(np.zeros(3), bandwidth=1.0)
    with pytest.raises(ValueError, match="n_jobs"):
        log_density(x, bandwidth=1.0, n_jobs=0)


def test_works_without_scipy_and_scikit_learn() -> None:
    # Blocking the imports makes "import sklearn" raise ImportError, as if not installed.
    script = (
        "import sys\n"
        "sys.modules['sklearn'] = None\n"
        "sys.modules['scipy'] = None\n"
        "import numpy as np\n"
        "from genlab import kde\n"
        "x = np.random.default_rng(0).normal(size=(50, 3))\n"
        "est = kde.KernelDensity(bandwidth=0.5).fit(x)\n"
        "assert np.isfinite(est.score_samples(x)).all() and est.sample(2).shape == (2, 3)\n"
        "assert np.isfinite(kde.gaussian_kde(x.T).logpdf(x.T)).all()\n"
        "kde.select_bandwidth(x); kde.regime(x, 0.5)\n"
        "kde.information_plane(x, noise_variance=0.1)\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)


def test_docstring_examples() -> None:
    for module in (kde, _kde_scipy, _kde_sklearn):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0, module.__name__
    assert "kde" in genlab.__all__
