"""Kernel density estimation in high dimensions.

Exact, streaming and parallel (``docs/formulas/kde.md``): squared distances by blocked GEMM, log-sum-exp
over data blocks, float64 accumulation, memory independent of m x n, log densities that stay
finite where a linear-space sum underflows (any d).

- :class:`gaussian_kde`: drop-in for ``scipy.stats.gaussian_kde``;
- :class:`KernelDensity`: drop-in for ``sklearn.neighbors.KernelDensity`` (estimator protocol,
  ``GridSearchCV``), six kernels;
- :func:`log_density`: the functional form (weights, leave-one-out, full covariance);
- :func:`select_bandwidth`: leave-one-out likelihood cross-validation, nearest-neighbour rule,
  Scott and Silverman rules that scale with the data;
- :func:`regime`: which statistics the estimate obeys (Biroli and Mezard 2024): h_G, h_CLT, h_KL and
  the per-query effective number of contributing points;
- :func:`information_plane`: Kolchinsky-Tracey bounds on I(X;T) and the estimate of I(T;Y)
  (Saxe et al. 2018) for many layers, epochs and noise levels in one call.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from genlab import _core
from genlab._validation import (
    _check_not_torch,
    _numeric,
    check_choice,
    check_int,
    check_n_jobs,
    check_real,
)
from genlab.errors import NumericalWarning
from genlab.kde._arrays import (
    KERNELS,
    check_bandwidth,
    check_weights,
    float_points,
    kernel_cholesky,
    one_dtype,
)
from genlab.kde._rules import bandwidth_factor
from genlab.kde._scipy import gaussian_kde
from genlab.kde._sklearn import KernelDensity, NotFittedError

__all__ = [
    "BandwidthSelection",
    "InformationPlaneResult",
    "KernelDensity",
    "NotFittedError",
    "RegimeReport",
    "gaussian_kde",
    "information_plane",
    "log_density",
    "regime",
    "select_bandwidth",
]

_METHODS = ("loo_cv", "nn", "scott", "silverman")


@dataclasses.dataclass(frozen=True)
class BandwidthSelection:
    """Result of :func:`select_bandwidth`.

    Attributes
    ----------
    bandwidth : float
        The selected isotropic bandwidth h.
    method : str
        The rule that chose it.
    score : float or None
        ("loo_cv") the exact mean leave-one-out log-likelihood at ``bandwidth``.
    truncated_score : float or None
        ("loo_cv") the k-nearest-neighbour score that the search maximized, at ``bandwidth``
        (equal to ``score`` when exact).
    n_neighbors : int or None
        ("loo_cv") neighbours kept per point in the search; ``exact`` when it is n - 1.
    exact : bool or None
        ("loo_cv") whether the search used every pair.
    truncation_error : float or None
        ("loo_cv") upper bound, in nats per point, on ``score - truncated_score``: how much the
        k-nearest-neighbour truncation lowered the cross-validated score at ``bandwidth`` (0 when
        exact).
    log_bandwidths, scores : ndarray or None
        ("loo_cv") the search grid of log h and the (truncated) score on it, for plots.
    """

    bandwidth: float
    method: str
    score: float | None = None
    truncated_score: float | None = None
    n_neighbors: int | None = None
    exact: bool | None = None
    truncation_error: float | None = None
    log_bandwidths: NDArray[np.float64] | None = None
    scores: NDArray[np.float64] | None = None


@dataclasses.dataclass(frozen=True)
class RegimeReport:
    """Result of :func:`regime`.

    Attributes
    ----------
    alpha : float
        log n / d.
    h_G : float
        Below h_G a few points dominate the estimate (extreme-value statistics).
    h_CLT : float
        Above h_CLT = sqrt(2) h_G every point contributes (central limit theorem).
    h_KL : float
        KL-optimal bandwidth for Gaussian data of this covariance (below h_G).
    bandwidth : float
        The bandwidth examined.
    inverse_y2 : ndarray
        Per query, the effective number of contributing points 1/Y2, Y2 = sum_i p_i^2 with p_i the
        normalized kernel weights; near 1 a single point decides the estimate.
    eigenvalues : ndarray
        Eigenvalues of the data covariance (ascending).
    label : str
        "clt" (h >= h_CLT), "heavy_tailed" (h_G <= h < h_CLT) or "extreme_value" (h < h_G).
    """

    alpha: float
    h_G: float
    h_CLT: float
    h_KL: float
    bandwidth: float
    inverse_y2: NDArray[np.float64]
    eigenvalues: NDArray[np.float64]
    label: str

    @property
    def median_inverse_y2(self) -> float:
        """Median over queries of 1/Y2."""
        return float(np.median(self.inverse_y2))


@dataclasses.dataclass(frozen=True)
class InformationPlaneResult:
    """Result of :func:`information_plane`.

    Every array has the shape of the activations' nesting (for example (n_epochs, n_layers)),
    followed by one axis over ``noise_variance`` when a sequence of variances was given.

    Attributes
    ----------
    i_xt_upper, i_xt_lower : ndarray
        Upper (pairwise KL, 2 s^2) and lower (pairwise Bhattacharyya, 8 s^2) bounds on I(X;T).
    i_ty_upper, i_ty_lower : ndarray or None
        I(T;Y) with each estimator (None without labels).
    noise_variance : ndarray
        The noise variances s^2.
    units : str
        "nats" or "bits".
    """

    i_xt_upper: NDArray[np.float64]
    i_xt_lower: NDArray[np.float64]
    i_ty_upper: NDArray[np.float64] | None
    i_ty_lower: NDArray[np.float64] | None
    noise_variance: NDArray[np.float64]
    units: str = "nats"

    def to_bits(self) -> InformationPlaneResult:
        """The same result in bits."""
        if self.units == "bits":
            return self
        scale = 1 / math.log(2)

        def convert(a: NDArray[np.float64] | None) -> NDArray[np.float64] | None:
            return None if a is None else a * scale

        return dataclasses.replace(
            self,
            i_xt_upper=self.i_xt_upper * scale,
            i_xt_lower=self.i_xt_lower * scale,
            i_ty_upper=convert(self.i_ty_upper),
            i_ty_lower=convert(self.i_ty_lower),
            units="bits",
        )


def _data_scale(data: NDArray[Any]) -> float:
    """sqrt of the mean per-feature sample variance: the isotropic scale of the data.

    Computed on the data divided by a power of two near its largest magnitude (exact), so that
    the squares cannot overflow for data near 1e154 and beyond."""
    largest = float(np.max(np.abs(data)))
    if largest == 0:
        return 0.0
    _, exponent = np.frexp(largest)
    unit = np.ldexp(np.asarray(data, dtype=np.float64), -int(exponent))
    return float(np.ldexp(np.sqrt(np.mean(np.var(unit, axis=0, ddof=1))), int(exponent)))


def select_bandwidth(
    data: ArrayLike,
    method: str = "loo_cv",
    *,
    n_neighbors: int | None = None,
    bounds: tuple[float, float] | None = None,
    n_jobs: int | None = None,
) -> BandwidthSelection:
    """Choose an isotropic Gaussian bandwidth for ``data`` (n_points, n_features).

    Parameters
    ----------
    data : array_like, shape (n, d)
        Data points (float64, or float32 read in float64).
    method : {"loo_cv", "nn", "scott", "silverman"}
        - "loo_cv": maximize the leave-one-out log-likelihood
          CV(h) = (1/n) sum_i log[(1/(n-1)) sum_{j != i} N(y_i - y_j; 0, h^2 I)], which targets the
          KL-optimal bandwidth. One distance pass keeps each point's k nearest neighbours; CV(h) is
          then maximized over log h (grid, then golden section). With k < n - 1 the omitted terms are
          bounded by the k-th neighbour's, and that bound is reported as ``truncation_error``; the
          reported ``score`` is the exact CV at the chosen h (one more streaming pass).
        - "nn": h^2 = (1/(n d)) sum_i min_{j != i} ||y_i - y_j||^2, cheap and close to the KL
          optimum in high dimension.
        - "scott", "silverman": scipy's factors n^(-1/(d+4)) and (n (d+2)/4)^(-1/(d+4)) times the
          data scale sqrt(mean per-feature variance), unlike scikit-learn's rules which ignore the
          scale.
    n_neighbors : int, optional
        ("loo_cv") neighbours kept per point; default min(n - 1, 256). n - 1 makes CV exact.
    bounds : (float, float), optional
        ("loo_cv") search range of h; default from a tenth of the nearest-neighbour scale to four
        times the data scale.
    n_jobs : int, optional
        Threads (None: all cores or ``RAYON_NUM_THREADS``).

    Returns
    -------
    BandwidthSelection

    Raises
    ------
    TypeError
        Non-numeric data.
    ValueError
        Fewer than 2 points, NaN or infinity, identical points ("loo_cv", "scott",
        "silverman"), an unknown method, bad ``n_neighbors`` or ``bounds``.

    Warns
    -----
    NumericalWarning
        ("loo_cv") when the maximum lies at an end of the search range.

    Examples
    --------
    >>> import numpy as np
    >>> from genlab.kde import select_bandwidth
    >>> data = np.random.default_rng(0).normal(size=(400, 3))
    >>> sel = select_bandwidth(data)
    >>> sel.exact, sel.n_neighbors
    (False, 256)
    >>> 0.2 < sel.bandwidth < 0.8
    True
    >>> round(select_bandwidth(data, "scott").bandwidth, 3)
    0.415
    """
    check_choice(method, "method", _METHODS)
    points = float_points(data, "data")
    n, d = points.shape
    jobs = check_n_jobs(n_jobs)
    if method in ("scott", "silverman"):
        if n < 2:
            raise ValueError(f"data: expected at least 2 points, got {n}")
        if not np.isfinite(points).all():
            raise ValueError("data: contains NaN or infinity; all values must be finite")
        scale = _data_scale(points)
        if scale == 0:
            raise ValueError("data: all points are identical, so the data scale is 0")
        return BandwidthSelection(bandwidth_factor(method, n, d) * scale, method)
    if method == "nn":
        return BandwidthSelection(_core.kde.nearest_neighbor_bandwidth(points, n_jobs=jobs), method)
    if n_neighbors is not None:
        n_neighbors = check_int(n_neighbors, "n_neighbors", minimum=1)
    if bounds is not None:
        if not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
            raise TypeError(f"bounds: expected a pair (low, high) of bandwidths, got {bounds!r}")
        bounds = (
            check_real(bounds[0], "bounds[0]", positive=True),
            check_real(bounds[1], "bounds[1]", positive=True),
        )
    cv = _core.kde.loo_cv_bandwidth(points, n_neighbors=n_neighbors, bounds=bounds, n_jobs=jobs)
    h, log_h = cv["bandwidth"], cv["log_bandwidths"]
    if cv["at_boundary"]:
        warnings.warn(
            f"select_bandwidth: the cross-validated likelihood is largest at the end of the search "
            f"range (h = {h:.4g}, range [{math.exp(log_h[0]):.4g}, {math.exp(log_h[-1]):.4g}]); "
            "pass wider bounds (duplicated points push the optimum to h -> 0)",
            NumericalWarning,
            stacklevel=2,
        )
    return BandwidthSelection(
        bandwidth=h,
        method=method,
        score=cv["score"],
        truncated_score=cv["truncated_score"],
        n_neighbors=cv["n_neighbors"],
        exact=cv["exact"],
        truncation_error=cv["truncation_error_bound"],
        log_bandwidths=log_h,
        scores=cv["scores"],
    )


def _scale_arguments(
    bandwidth: object, data: NDArray[Any], kernel: str
) -> dict[str, float | NDArray[np.float64]]:
    """``bandwidth=`` or ``cholesky=`` for the kernel call."""
    if isinstance(bandwidth, str):
        h = select_bandwidth(data, check_choice(bandwidth, "bandwidth", _METHODS)).bandwidth
        return {"bandwidth": h}
    if isinstance(bandwidth, (np.ndarray, list, tuple)) and np.ndim(bandwidth) == 2:
        if kernel != "gaussian":
            raise ValueError(
                f"bandwidth: a kernel covariance matrix needs kernel='gaussian', got {kernel!r}"
            )
        return {"cholesky": kernel_cholesky(bandwidth, data.shape[1])}
    return {"bandwidth": check_bandwidth(bandwidth)}


def log_density(
    data: ArrayLike,
    queries: ArrayLike | None = None,
    *,
    bandwidth: float | str | ArrayLike,
    weights: ArrayLike | None = None,
    kernel: str = "gaussian",
    leave_one_out: bool = False,
    n_jobs: int | None = None,
) -> NDArray[np.float64]:
    """Exact log-density of a kernel density estimate at each query.

    log rho(x) = log[sum_i w_i K_h(x - y_i) / sum_i w_i], computed as a streaming log-sum-exp, so
    it is finite even where every kernel value underflows (d in the hundreds).

    Parameters
    ----------
    data : array_like, shape (n, d)
        Data points y_i. float64, or float32 (read in float64) when queries are float32 too.
    queries : array_like, shape (m, d), optional
        Evaluation points; None evaluates at the data points (required with ``leave_one_out``).
    bandwidth : float, (d, d) array or str
        Isotropic bandwidth h > 0; a kernel covariance matrix (Gaussian kernel, scipy's
        ``gaussian_kde`` semantics, by whitening with its Cholesky factor); or a method of
        :func:`select_bandwidth`.
    weights : array_like, shape (n,), optional
        Non-negative weights w_i (default equal).
    kernel : {"gaussian", "tophat", "epanechnikov", "exponential", "linear", "cosine"}
        Kernel shape, normalized as scikit-learn normalizes it.
    leave_one_out : bool
        Evaluate at each data point without its own kernel, normalized by the remaining weight.
    n_jobs : int, optional
        Threads (None: all cores or ``RAYON_NUM_THREADS``).

    Returns
    -------
    ndarray of float64, shape (m,)
        Log-density (-inf where a compact kernel reaches no data point).

    Raises
    ------
    TypeError
        Non-numeric input.
    ValueError
        Different numbers of features in data and queries, a bandwidth <= 0 or not finite, a
        covariance that is not positive definite, empty data, NaN or infinity, bad weights, an
        unknown kernel, queries given with ``leave_one_out``.

    Examples
    --------
    >>> import numpy as np
    >>> from genlab.kde import log_density
    >>> data = np.zeros((1, 2))
    >>> float(log_density(data, [[0.0, 0.0]], bandwidth=1.0)[0])  # log N(0; 0, I_2)
    -1.8378770664093453
    >>> y = np.random.default_rng(0).normal(size=(1000, 512))
    >>> bool(np.isfinite(log_density(y, y[:5] + 1, bandwidth=0.1)).all())
    True
    """
    check_choice(kernel, "kernel", KERNELS)
    points = float_points(data, "data")
    q = None if queries is None else float_points(queries, "queries")
    points, q = one_dtype(points, q)
    if not isinstance(leave_one_out, (bool, np.bool_)):
        raise TypeError(f"leave_one_out: expected a bool, got {type(leave_one_out).__name__}")
    if leave_one_out and q is not None:
        raise ValueError("queries: leave_one_out evaluates at the data points; pass queries=None")
    return _core.kde.log_density(
        points,
        q,
        weights=check_weights(weights, points.shape[0]),
        kernel=kernel,
        leave_one_out=bool(leave_one_out),
        n_jobs=check_n_jobs(n_jobs),
        **_scale_arguments(bandwidth, points, kernel),  # type: ignore[arg-type]
    )


def regime(
    data: ArrayLike,
    bandwidth: float,
    *,
    queries: ArrayLike | None = None,
    n_jobs: int | None = None,
) -> RegimeReport:
    """Which statistics a Gaussian KDE with bandwidth h obeys on ``data`` (Biroli and Mezard 2024).

    With alpha = log n / d and the covariance eigenvalues lambda_j, (1/d) sum_j g(lambda_j / h_G^2)
    = alpha, g(r) = 1/2 log(1 + r) - r / (2 (1 + r)^2), defines h_G; h_CLT = sqrt(2) h_G; h_KL^2 =
    (1/d) sum_j lambda_j (2 + r_j) / (1 + r_j)^2 at r_j = lambda_j / h_G^2. The formulas are exact
    for Gaussian data; for other data they are the Gaussian prediction at the same covariance, and
    1/Y2 is the direct measurement.

    Parameters
    ----------
    data : array_like, shape (n, d)
        Data points (n >= 2).
    bandwidth : float
        The bandwidth h to diagnose.
    queries : array_like, shape (m, d), optional
        Where to measure 1/Y2; default every data point, leaving itself out.
    n_jobs : int, optional
        Threads.

    Returns
    -------
    RegimeReport

    Raises
    ------
    ValueError
        Fewer than 2 points, identical points (zero covariance), NaN or infinity, a bad bandwidth,
        a dimension mismatch.

    Examples
    --------
    >>> import numpy as np
    >>> from genlab.kde import regime
    >>> data = np.random.default_rng(0).normal(size=(2000, 50))
    >>> report = regime(data, 0.3)
    >>> report.label, round(report.alpha, 3)
    ('extreme_value', 0.152)
    >>> report.h_KL < report.h_G < report.h_CLT
    True
    """
    h = check_bandwidth(bandwidth)
    points = float_points(data, "data")
    q = None if queries is None else float_points(queries, "queries")
    points, q = one_dtype(points, q)
    r = _core.kde.regime(points, h, q, n_jobs=check_n_jobs(n_jobs))
    return RegimeReport(
        alpha=r["alpha"],
        h_G=r["h_g"],
        h_CLT=r["h_clt"],
        h_KL=r["h_kl"],
        bandwidth=h,
        inverse_y2=r["inverse_y2"],
        eigenvalues=r["eigenvalues"],
        label=r["label"],
    )


def _flatten_activations(activations: Any) -> tuple[list[NDArray[Any]], tuple[int, ...]]:
    """The 2-D activation arrays of a (nested) structure, and the shape of the nesting."""
    if not isinstance(activations, (list, tuple)):
        arr = _numeric(activations, "activations")
        if arr.ndim < 2:
            raise ValueError(
                f"activations: expected arrays of shape (n_samples, n_units), got shape {arr.shape}"
            )
        flat = arr.reshape((math.prod(arr.shape[:-2]), *arr.shape[-2:]))
        return [float_points(a, "activations") for a in flat], arr.shape[:-2]
    if len(activations) == 0:
        raise ValueError("activations: expected at least one array, got an empty sequence")
    try:
        stacked = np.asarray(activations)
    except (ValueError, RuntimeError):  # ragged, or holding tensors numpy cannot take
        stacked = None
    if stacked is not None and stacked.dtype.kind in "biuf" and stacked.ndim >= 2:
        return _flatten_activations(stacked)
    parts = [_flatten_activations(a) for a in activations]
    inner = parts[0][1]
    if any(shape != inner for _, shape in parts):
        raise ValueError("activations: nested sequences must have the same length at each level")
    return [a for arrays, _ in parts for a in arrays], (len(parts), *inner)


def information_plane(
    activations: ArrayLike | Sequence[Any],
    labels: ArrayLike | None = None,
    *,
    noise_variance: float | ArrayLike,
    n_jobs: int | None = None,
) -> InformationPlaneResult:
    """Information-plane coordinates of layer activations, for several noise levels at once.

    The layer output is T = h(X) + N(0, s^2 I). With D_ij = ||t_i - t_j||^2 over the N samples:
    I_upper(X;T) = -(1/N) sum_i log[(1/N) sum_j exp(-D_ij / (2 s^2))] (Kolchinsky and Tracey's
    pairwise-KL bound), I_lower the same with 8 s^2 (pairwise Bhattacharyya), and
    I(T;Y) = H(T) - sum_c p_c H(T | Y = c) with each entropy estimated the same way on the class
    subset (Saxe et al. 2018). 0 <= I_lower <= I_upper <= log N. The estimate saturates at log N
    when s is small next to the nearest-neighbour distances, so look at a range of s.

    Parameters
    ----------
    activations : array_like or (nested) sequence of array_like
        One (N, d) array; a stacked array (..., N, d); or nested sequences of (N, d_k) arrays (for
        example epochs x layers, each layer with its own width).
    labels : array_like, shape (N,), optional
        Class of each sample (any hashable values); adds I(T;Y).
    noise_variance : float or sequence of float
        Noise variance(s) s^2 > 0.
    n_jobs : int, optional
        Threads.

    Returns
    -------
    InformationPlaneResult
        In nats; ``.to_bits()`` converts.

    Raises
    ------
    TypeError
        Non-numeric activations.
    ValueError
        A variance <= 0 or not finite, labels of the wrong length, empty or non-finite activations,
        ragged nesting.

    Examples
    --------
    >>> import numpy as np
    >>> from genlab.kde import information_plane
    >>> t = np.repeat([[0.0, 0.0], [100.0, 0.0]], 50, axis=0)  # two far clusters
    >>> y = np.repeat([0, 1], 50)
    >>> res = information_plane(t, y, noise_variance=1.0)
    >>> round(float(res.i_xt_upper), 6), round(float(res.to_bits().i_ty_upper), 6)
    (0.693147, 1.0)
    """
    arrays, outer = _flatten_activations(activations)
    if all(a.dtype == np.float32 for a in arrays):
        arrays = [np.ascontiguousarray(a) for a in arrays]
    else:
        arrays = [np.ascontiguousarray(a, dtype=np.float64) for a in arrays]
    variances = np.asarray(noise_variance, dtype=np.float64)
    scalar_noise = variances.ndim == 0
    variances = np.atleast_1d(variances)
    if variances.ndim != 1:
        raise ValueError(
            f"noise_variance: expected a number or a 1-D sequence, got shape {variances.shape}"
        )
    codes = None
    if labels is not None:
        _check_not_torch(labels, "labels")
        label_array = np.asarray(labels)
        if label_array.ndim != 1:
            raise ValueError(f"labels: expected a 1-D array, got shape {label_array.shape}")
        _, inverse = np.unique(label_array, return_inverse=True)
        codes = np.ascontiguousarray(inverse.ravel(), dtype=np.int64)
    planes = _core.kde.information_plane_many(
        arrays, np.ascontiguousarray(variances), codes, n_jobs=check_n_jobs(n_jobs)
    )
    shape = (*outer, variances.size)

    def shaped(a: NDArray[np.float64]) -> NDArray[np.float64]:
        out = a.reshape(shape)
        return out[..., 0] if scalar_noise else out

    return InformationPlaneResult(
        shaped(planes["i_xt_upper"]),
        shaped(planes["i_xt_lower"]),
        None if codes is None else shaped(planes["i_ty_upper"]),
        None if codes is None else shaped(planes["i_ty_lower"]),
        variances,
    )
