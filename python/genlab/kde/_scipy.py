"""``genlab.kde.gaussian_kde``: a drop-in for :class:`scipy.stats.gaussian_kde`.

Same constructor, attributes and methods as scipy (1.17), same values; the density is evaluated by
genlab's exact streaming kernel (GEMM distances in the whitened space, parallel log-sum-exp), so
``logpdf`` stays finite where scipy's ``pdf`` underflows. The methods that need scipy's special
functions or its multivariate normal CDF (``integrate_box_1d``, ``integrate_box``) import scipy
when called.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from genlab import _core
from genlab._validation import _numeric, physical_memory
from genlab.errors import TooLargeError
from genlab.kde._arrays import check_random_state
from genlab.kde._rules import bandwidth_factor

__all__ = ["gaussian_kde"]

_D_GREATER_THAN_N = (
    "Number of dimensions is greater than number of samples. This results in a singular data "
    "covariance matrix, which cannot be treated using the algorithms implemented in "
    "`gaussian_kde`. Note that `gaussian_kde` interprets each *column* of `dataset` to be a point; "
    "consider transposing the input to `dataset`. To proceed without a covariance, use an "
    "isotropic kernel: genlab.kde.KernelDensity or genlab.kde.log_density with a scalar bandwidth "
    "(for example select_bandwidth(data).bandwidth)."
)
_SINGULAR = (
    "The data appears to lie in a lower-dimensional subspace of the space in which it is "
    "expressed. This has resulted in a singular data covariance matrix, which cannot be treated "
    "using the algorithms implemented in `gaussian_kde`. Consider performing principal component "
    "analysis / dimensionality reduction and using `gaussian_kde` with the transformed data, or an "
    "isotropic kernel (genlab.kde.log_density with a scalar bandwidth), which needs no covariance."
)


class gaussian_kde:
    """Kernel density estimate with a Gaussian kernel of full covariance (scipy's semantics).

    Parameters
    ----------
    dataset : array_like, shape (d, n) or (n,)
        Data points, one per *column* (scipy's convention).
    bw_method : {"scott", "silverman"}, scalar or callable, optional
        Bandwidth factor rule (default Scott), a constant factor, or a function of this object.
    weights : array_like, shape (n,), optional
        Weights of the data points (normalized to sum to 1).

    Attributes
    ----------
    dataset : ndarray, shape (d, n)
    d, n : int
        Dimension and number of points.
    neff : float
        Effective number of points, 1 / sum(weights^2).
    factor : float
        Bandwidth factor.
    covariance : ndarray, shape (d, d)
        Kernel covariance, ``np.cov(dataset, aweights=weights) * factor**2``.
    inv_cov : ndarray, shape (d, d)
        Its inverse.
    cho_cov : ndarray, shape (d, d)
        Its lower Cholesky factor.
    log_det : float
        ``2 * sum(log(diag(cho_cov * sqrt(2 pi))))``.

    Raises
    ------
    ValueError
        A dataset with fewer than 2 elements, more dimensions than points (scipy raises too: see
        the message for how to proceed), weights of the wrong shape, NaN or infinity.
    numpy.linalg.LinAlgError
        A singular data covariance (points in a lower-dimensional subspace), as scipy.

    Examples
    --------
    >>> import numpy as np
    >>> from genlab.kde import gaussian_kde
    >>> rng = np.random.default_rng(0)
    >>> kde = gaussian_kde(rng.normal(size=(2, 500)))
    >>> kde.logpdf([[0.0], [0.0]]).round(3)
    array([-1.813])
    >>> kde.d, kde.n, round(kde.factor, 4)
    (2, 500, 0.355)
    """

    dataset: NDArray[Any]
    d: int
    n: int
    factor: float
    covariance: NDArray[np.float64]
    cho_cov: NDArray[np.float64]
    log_det: float

    def __init__(
        self,
        dataset: ArrayLike,
        bw_method: str | float | Callable[[gaussian_kde], float] | None = None,
        weights: ArrayLike | None = None,
    ) -> None:
        self.dataset = np.atleast_2d(_numeric(dataset, "dataset"))
        if not self.dataset.size > 1:
            raise ValueError("`dataset` input should have multiple elements.")
        if self.dataset.ndim != 2:
            raise ValueError(f"dataset: expected shape (d, n), got {self.dataset.shape}")
        if not np.isfinite(self.dataset).all():
            raise ValueError("dataset: contains NaN or infinity; all values must be finite")
        self.d, self.n = self.dataset.shape
        # The kernel covariance is d x d (and copied a few times): 2 points of 100,000 features
        # would ask for 80 GB each.
        needed = 4.0 * 8.0 * self.d * self.d
        if needed > physical_memory() / 2:
            raise TooLargeError(
                f"dataset: a kernel covariance of {self.d} x {self.d} (the dataset's {self.d} "
                f"dimensions) would need about {needed / 2**30:.1f} GiB, more than half this "
                "machine's memory; reduce the dimensions first (e.g. a projection)"
            )
        self._equal_weights = weights is None
        if weights is not None:
            self._weights = np.atleast_1d(_numeric(weights, "weights")).astype(float)
            total = np.sum(self._weights)
            if np.isinf(total) and np.isfinite(self._weights).all():
                # Finite weights whose sum overflows: to at most 1 first (scipy's division alone
                # would give zeros); other weights keep scipy's arithmetic, bit for bit.
                self._weights /= np.max(self._weights)
                total = np.sum(self._weights)
            self._weights /= total
            if self.weights.ndim != 1:
                raise ValueError("`weights` input should be one-dimensional.")
            if len(self._weights) != self.n:
                raise ValueError("`weights` input should be of length n")
            if not (np.isfinite(self._weights).all() and (self._weights >= 0).all()):
                raise ValueError(
                    "weights: expected finite non-negative weights with a positive sum"
                )
            self._neff = 1 / float(self._weights @ self._weights)
        if self.d > self.n:
            raise ValueError(_D_GREATER_THAN_N)
        try:
            self.set_bandwidth(bw_method=bw_method)
        except np.linalg.LinAlgError as e:
            raise np.linalg.LinAlgError(_SINGULAR) from e

    # --- bandwidth -------------------------------------------------------------------------

    def scotts_factor(self) -> float:
        """Scott's factor, ``neff ** (-1 / (d + 4))``."""
        return bandwidth_factor("scott", self.neff, self.d)

    def silverman_factor(self) -> float:
        """Silverman's factor, ``(neff (d + 2) / 4) ** (-1 / (d + 4))``."""
        return bandwidth_factor("silverman", self.neff, self.d)

    def covariance_factor(self) -> float:
        """The bandwidth factor `factor`; Scott's by default (replaced by ``set_bandwidth``)."""
        return self.scotts_factor()

    def set_bandwidth(
        self, bw_method: str | float | Callable[[gaussian_kde], float] | None = None
    ) -> None:
        """Set the bandwidth factor rule: "scott", "silverman", a scalar or a callable.

        None keeps the current rule. The kernel covariance is recomputed.
        """
        if bw_method is None:
            pass
        elif isinstance(bw_method, str) and bw_method == "scott":
            self.covariance_factor = self.scotts_factor  # type: ignore[method-assign]
        elif isinstance(bw_method, str) and bw_method == "silverman":
            self.covariance_factor = self.silverman_factor  # type: ignore[method-assign]
        elif np.isscalar(bw_method) and not isinstance(bw_method, str):
            self._bw_method: Any = "use constant"
            constant = bw_method
            self.covariance_factor = lambda: constant  # type: ignore[method-assign,assignment,return-value]
        elif callable(bw_method):
            self._bw_method = bw_method
            self.covariance_factor = lambda: self._bw_method(self)  # type: ignore[method-assign]
        else:
            raise ValueError("`bw_method` should be 'scott', 'silverman', a scalar or a callable.")
        self._compute_covariance()

    def _compute_covariance(self) -> None:
        self.factor = self.covariance_factor()
        factor = self.factor
        if isinstance(factor, (bool, np.bool_)) or not isinstance(factor, (int, float, np.number)):
            raise TypeError(f"bw_method: the bandwidth factor must be a number, got {factor!r}")
        if not (factor > 0 and math.isfinite(float(factor) * float(factor))):
            raise ValueError(
                f"bw_method: the bandwidth factor must be a number > 0 whose square is finite, "
                f"got {factor!r}"
            )
        if not hasattr(self, "_data_cho_cov"):
            self._data_covariance = np.atleast_2d(
                np.cov(self.dataset, rowvar=True, bias=False, aweights=self.weights)
            )
            self._data_cho_cov = np.linalg.cholesky(self._data_covariance)
        self.covariance = self._data_covariance * self.factor**2
        self.cho_cov = (self._data_cho_cov * self.factor).astype(np.float64)
        self.log_det = float(2 * np.log(np.diag(self.cho_cov * np.sqrt(2 * np.pi))).sum())

    @property
    def inv_cov(self) -> NDArray[np.float64]:
        """Inverse of the kernel covariance (recomputed from the dataset, as scipy does)."""
        self.factor = self.covariance_factor()
        self._data_covariance = np.atleast_2d(
            np.cov(self.dataset, rowvar=True, bias=False, aweights=self.weights)
        )
        return np.asarray(np.linalg.inv(self._data_covariance) / self.factor**2)

    @property
    def weights(self) -> NDArray[np.float64]:
        """Normalized weights of the data points."""
        try:
            return self._weights
        except AttributeError:
            self._weights = np.ones(self.n) / self.n
            return self._weights

    @property
    def neff(self) -> float:
        """Effective number of points, 1 / sum(weights^2)."""
        try:
            return self._neff
        except AttributeError:
            self._neff = 1 / float(self.weights @ self.weights)
            return self._neff

    # --- evaluation ------------------------------------------------------------------------

    def _points(self, x: ArrayLike) -> NDArray[np.float64]:
        points = np.atleast_2d(_numeric(x, "points"))
        d, m = points.shape
        if d != self.d:
            if d == 1 and m == self.d:
                points = np.reshape(points, (self.d, 1))
            else:
                raise ValueError(f"points have dimension {d}, dataset has dimension {self.d}")
        return points.astype(np.float64, copy=False)

    def _log_mixture(
        self, queries: NDArray[np.float64], cholesky: NDArray[np.float64], dataset: NDArray[Any]
    ) -> NDArray[np.float64]:
        """log sum_j w_j N(q - x_j; 0, L L^T) for each column q of ``queries``."""
        return _core.kde.log_density(
            np.asarray(dataset, dtype=np.float64).T,
            queries.T,
            cholesky=np.ascontiguousarray(cholesky),
            # Equal weights (none given) take the kernel's unweighted path: same value, faster.
            weights=None
            if self._equal_weights
            else np.ascontiguousarray(self.weights, dtype=np.float64),
        )

    def logpdf(self, x: ArrayLike) -> NDArray[np.float64]:
        """Log of the estimated density at the points ``x`` (shape (d, m) or (d,))."""
        return self._log_mixture(self._points(x), self.cho_cov, self.dataset)

    def evaluate(self, points: ArrayLike) -> NDArray[np.float64]:
        """The estimated density at ``points`` (shape (d, m) or (d,))."""
        return np.exp(self.logpdf(points))

    __call__ = evaluate

    def pdf(self, x: ArrayLike) -> NDArray[np.float64]:
        """Alias of :meth:`evaluate`."""
        return self.evaluate(x)

    # --- integrals -------------------------------------------------------------------------

    def integrate_gaussian(self, mean: ArrayLike, cov: ArrayLike) -> float:
        """Integral of the density times the Gaussian N(mean, cov)."""
        mean_arr = np.atleast_1d(np.squeeze(mean))
        cov_arr = np.atleast_2d(cov)
        if mean_arr.shape != (self.d,):
            raise ValueError(f"mean does not have dimension {self.d}")
        if cov_arr.shape != (self.d, self.d):
            raise ValueError(f"covariance does not have dimension {self.d}")
        # LinAlgError when the summed covariance is not positive definite, as in scipy.
        cholesky = np.linalg.cholesky(self.covariance + cov_arr).astype(np.float64)
        query = mean_arr.astype(np.float64)[:, None]
        return float(np.exp(self._log_mixture(query, cholesky, self.dataset)[0]))

    def integrate_box_1d(self, low: float, high: float) -> float:
        """Integral of a 1-D density between ``low`` and ``high`` (imports scipy.special)."""
        from scipy import special  # type: ignore[import-untyped]

        if self.d != 1:
            raise ValueError("integrate_box_1d() only handles 1D pdfs")
        stdev = np.ravel(np.sqrt(self.covariance))[0]
        normalized_low = np.ravel((low - self.dataset) / stdev)
        normalized_high = np.ravel((high - self.dataset) / stdev)
        delta = special.ndtr(normalized_high) - special.ndtr(normalized_low)
        return float(self.weights @ delta)

    def integrate_box(
        self,
        low_bounds: ArrayLike,
        high_bounds: ArrayLike,
        maxpts: int | None = None,
        *,
        rng: Any = None,
    ) -> float:
        """Integral of the density over a box (imports scipy.stats.multivariate_normal)."""
        from scipy.stats import multivariate_normal  # type: ignore[import-untyped]

        low = np.asarray(low_bounds) - self.dataset.T
        high = np.asarray(high_bounds) - self.dataset.T
        values = multivariate_normal.cdf(
            high, lower_limit=low, cov=self.covariance, maxpts=maxpts, rng=rng
        )
        return float(np.asarray(values) @ self.weights)

    def integrate_kde(self, other: gaussian_kde) -> float:
        """Integral of the product of this estimate and ``other``."""
        if other.d != self.d:
            raise ValueError("KDEs are not the same dimensionality")
        small, large = (other, self) if other.n < self.n else (self, other)
        cholesky = np.linalg.cholesky(small.covariance + large.covariance).astype(np.float64)
        per_point = large._log_mixture(
            np.asarray(small.dataset, dtype=np.float64), cholesky, large.dataset
        )
        return float(np.exp(per_point) @ small.weights)

    # --- sampling and marginals ------------------------------------------------------------

    def resample(self, size: int | None = None, seed: Any = None) -> NDArray[np.float64]:
        """Draw ``size`` points (default ``int(neff)``) from the estimate; shape (d, size).

        Same random stream as scipy for the same ``seed``.
        """
        if size is None:
            size = int(self.neff)
        random_state = check_random_state(seed, allow_generator=True)
        norm = np.transpose(
            random_state.multivariate_normal(np.zeros((self.d,), float), self.covariance, size=size)
        )
        indices = random_state.choice(self.n, size=size, p=self.weights)
        means = self.dataset[:, indices]
        return np.asarray(means + norm)

    def marginal(self, dimensions: int | ArrayLike) -> gaussian_kde:
        """The marginal estimate over the kept ``dimensions`` (same bandwidth factor)."""
        dims = np.atleast_1d(dimensions)
        if not np.issubdtype(dims.dtype, np.integer):
            raise ValueError(
                "Elements of `dimensions` must be integers - the indices of the marginal "
                "variables being retained."
            )
        n = len(self.dataset)
        original_dims = dims.copy()
        dims[dims < 0] = n + dims[dims < 0]
        if len(np.unique(dims)) != len(dims):
            raise ValueError("All elements of `dimensions` must be unique.")
        invalid = (dims < 0) | (dims >= n)
        if np.any(invalid):
            raise ValueError(
                f"Dimensions {original_dims[invalid]} are invalid for a distribution in {n} dimensions."
            )
        return gaussian_kde(
            self.dataset[dims], bw_method=self.covariance_factor(), weights=self.weights
        )

    def __repr__(self) -> str:
        return f"gaussian_kde(d={self.d}, n={self.n}, factor={self.factor:.6g})"
