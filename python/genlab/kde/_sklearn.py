"""``genlab.kde.KernelDensity``: a drop-in for :class:`sklearn.neighbors.KernelDensity`.

The estimator protocol without depending on scikit-learn: ``get_params``/``set_params``, ``fit``
(with ``sample_weight``), ``score_samples``, ``score``, ``sample``, ``bandwidth_`` and
``n_features_in_`` after fit, and ``__sklearn_tags__`` (which imports scikit-learn only when
scikit-learn itself asks), so it works in ``GridSearchCV`` and ``Pipeline``. Values are
scikit-learn's exact answer (``rtol=0``): the same six kernels with the same normalization, and the
same data-independent "scott"/"silverman" rules. The tree parameters are accepted for
compatibility; evaluation is always exact (GEMM distances, streaming log-sum-exp).
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from genlab import _core
from genlab.kde._arrays import (
    KERNELS,
    check_bandwidth,
    check_random_state,
    check_weights,
    float_points,
)
from genlab.kde._rules import bandwidth_factor

__all__ = ["KernelDensity", "NotFittedError"]

_PARAMS = (
    "algorithm",
    "atol",
    "bandwidth",
    "breadth_first",
    "kernel",
    "leaf_size",
    "metric",
    "metric_params",
    "rtol",
)
_ALGORITHMS = ("auto", "kd_tree", "ball_tree")
# Metrics under which the kernel is the Euclidean one scikit-learn normalizes for.
_EUCLIDEAN = ("euclidean", "l2", "minkowski", "p")


class NotFittedError(ValueError, AttributeError):
    """The estimator is used before ``fit`` (same bases as scikit-learn's NotFittedError)."""


class KernelDensity:
    """Kernel density estimation, a drop-in for :class:`sklearn.neighbors.KernelDensity`.

    Parameters
    ----------
    bandwidth : float or {"scott", "silverman"}, default=1.0
        Kernel bandwidth h, or scikit-learn's rule: "scott" is ``n ** (-1 / (d + 4))`` and
        "silverman" ``(n (d + 2) / 4) ** (-1 / (d + 4))``, both independent of the data's scale
        (scikit-learn's semantics; :func:`genlab.kde.select_bandwidth` has rules that scale).
    algorithm : {"auto", "kd_tree", "ball_tree"}, default="auto"
        Accepted for compatibility; evaluation is exact and does not use a tree.
    kernel : {"gaussian", "tophat", "epanechnikov", "exponential", "linear", "cosine"}
        Kernel shape, normalized as scikit-learn normalizes it.
    metric : str, default="euclidean"
        "euclidean" (or its aliases "l2", and "minkowski" with p=2). Other metrics raise
        ``ValueError`` (scikit-learn's density is only normalized for the Euclidean metric).
    atol, rtol : float, default=0
        Accepted for compatibility; the result is exact, which meets any tolerance.
    breadth_first : bool, default=True
        Accepted for compatibility.
    leaf_size : int, default=40
        Accepted for compatibility.
    metric_params : dict, optional
        For "minkowski": ``{"p": 2}`` only.

    Attributes
    ----------
    bandwidth_ : float
        The bandwidth used.
    n_features_in_ : int
        Number of features seen in fit.
    feature_names_in_ : ndarray of str
        Column names, when ``X`` was a DataFrame with string column names.

    Examples
    --------
    >>> import numpy as np
    >>> from genlab.kde import KernelDensity
    >>> rng = np.random.RandomState(42)
    >>> X = rng.random_sample((100, 3))
    >>> kde = KernelDensity(kernel="gaussian", bandwidth=0.5).fit(X)
    >>> kde.score_samples(X[:3])
    array([-1.52955942, -1.51462041, -1.60244657])
    """

    def __init__(
        self,
        *,
        bandwidth: float | str = 1.0,
        algorithm: str = "auto",
        kernel: str = "gaussian",
        metric: str = "euclidean",
        atol: float = 0,
        rtol: float = 0,
        breadth_first: bool = True,
        leaf_size: int = 40,
        metric_params: dict[str, Any] | None = None,
    ) -> None:
        self.algorithm = algorithm
        self.bandwidth = bandwidth
        self.kernel = kernel
        self.metric = metric
        self.atol = atol
        self.rtol = rtol
        self.breadth_first = breadth_first
        self.leaf_size = leaf_size
        self.metric_params = metric_params

    # --- estimator protocol ----------------------------------------------------------------

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor parameters, by name (``deep`` is accepted for compatibility)."""
        return {name: getattr(self, name) for name in _PARAMS}

    def set_params(self, **params: Any) -> KernelDensity:
        """Set constructor parameters; returns the estimator."""
        for name, value in params.items():
            if name not in _PARAMS:
                raise ValueError(
                    f"Invalid parameter {name!r} for estimator {self!r}. "
                    f"Valid parameters are: {sorted(_PARAMS)!r}."
                )
            setattr(self, name, value)
        return self

    def __sklearn_tags__(self) -> Any:
        """scikit-learn's default estimator tags (imports scikit-learn: only it calls this)."""
        from sklearn.utils import Tags, TargetTags  # type: ignore[import-untyped]

        return Tags(
            estimator_type=None,
            target_tags=TargetTags(required=False),
            transformer_tags=None,
            regressor_tags=None,
            classifier_tags=None,
        )

    def __repr__(self) -> str:
        defaults = KernelDensity().get_params()
        changed = [f"{k}={v!r}" for k, v in self.get_params().items() if not _same(v, defaults[k])]
        return f"KernelDensity({', '.join(changed)})"

    def _validate_params(self) -> None:
        if isinstance(self.bandwidth, str):
            if self.bandwidth not in ("scott", "silverman"):
                raise ValueError(
                    "bandwidth: expected a positive float or one of 'scott', 'silverman', "
                    f"got {self.bandwidth!r}"
                )
        else:
            check_bandwidth(self.bandwidth)
        for name, value, choices in (
            ("algorithm", self.algorithm, _ALGORITHMS),
            ("kernel", self.kernel, KERNELS),
        ):
            if value not in choices:
                raise ValueError(
                    f"{name}: expected one of {', '.join(map(repr, choices))}, got {value!r}"
                )
        p = (self.metric_params or {}).get("p", 2)
        if self.metric not in _EUCLIDEAN or p != 2:
            raise ValueError(
                f"metric: genlab's KernelDensity evaluates the Euclidean metric only, got "
                f"{self.metric!r} with metric_params={self.metric_params!r}; use "
                "sklearn.neighbors.KernelDensity for other metrics"
            )
        # Parameters are set freely (set_params, GridSearchCV): check their runtime types.
        params: dict[str, object] = self.get_params()
        for name in ("atol", "rtol"):
            tol = params[name]
            if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not float(tol) >= 0:
                raise ValueError(f"{name}: expected a non-negative number, got {tol!r}")
        if not isinstance(params["breadth_first"], (bool, np.bool_)):
            raise TypeError(
                f"breadth_first: expected a bool, got {type(params['breadth_first']).__name__}"
            )
        leaf_size = params["leaf_size"]
        if (
            isinstance(leaf_size, bool)
            or not isinstance(leaf_size, numbers.Integral)
            or leaf_size < 1
        ):
            raise ValueError(f"leaf_size: expected an integer >= 1, got {leaf_size!r}")
        metric_params = params["metric_params"]
        if metric_params is not None and not isinstance(metric_params, dict):
            raise TypeError(
                f"metric_params: expected a dict or None, got {type(metric_params).__name__}"
            )

    # --- fit and evaluation ----------------------------------------------------------------

    def fit(
        self, X: ArrayLike, y: object = None, sample_weight: ArrayLike | float | None = None
    ) -> KernelDensity:
        """Fit the estimate to the rows of ``X`` (n_samples, n_features); ``y`` is ignored."""
        self._validate_params()
        names = getattr(X, "columns", None)
        data = np.ascontiguousarray(float_points(X, "X"), dtype=np.float64)
        n, d = data.shape
        if n == 0 or d == 0:
            raise ValueError(
                f"X: expected at least one sample and one feature, got shape {data.shape}"
            )
        if not np.isfinite(data).all():
            raise ValueError("X: contains NaN or infinity; all values must be finite")
        if isinstance(self.bandwidth, str):
            self.bandwidth_ = bandwidth_factor(self.bandwidth, n, d)
        else:
            self.bandwidth_ = self.bandwidth
        if sample_weight is not None and np.ndim(sample_weight) == 0:
            sample_weight = np.full(n, sample_weight, dtype=np.float64)
        self._sample_weight = check_weights(sample_weight, n, "sample_weight")
        self._data = data
        self.n_features_in_ = d
        if names is not None and all(isinstance(c, str) for c in names):
            self.feature_names_in_ = np.asarray(list(names), dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        return self

    def _check_fitted(self) -> NDArray[np.float64]:
        data: NDArray[np.float64] | None = getattr(self, "_data", None)
        if data is None:
            raise NotFittedError(
                "This KernelDensity instance is not fitted yet. Call 'fit' with appropriate "
                "arguments before using this estimator."
            )
        return data

    def score_samples(self, X: ArrayLike) -> NDArray[np.float64]:
        """Log-density at each row of ``X``, normalized as a probability density."""
        data = self._check_fitted()
        queries = float_points(X, "X").astype(np.float64, copy=False)
        if queries.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {queries.shape[1]} features, but KernelDensity is expecting "
                f"{self.n_features_in_} features as input."
            )
        return _core.kde.log_density(
            data,
            queries,
            bandwidth=float(self.bandwidth_),
            weights=self._sample_weight,
            kernel=self.kernel,
        )

    def score(self, X: ArrayLike, y: object = None) -> float:
        """Total log-likelihood of the rows of ``X``; ``y`` is ignored."""
        return float(np.sum(self.score_samples(X)))

    def sample(self, n_samples: int = 1, random_state: Any = None) -> NDArray[np.float64]:
        """Draw ``n_samples`` points (gaussian and tophat kernels, as scikit-learn).

        Same random stream as scikit-learn for the same ``random_state``. The tophat kernel
        imports ``scipy.special``.
        """
        data = self._check_fitted()
        if self.kernel not in ("gaussian", "tophat"):
            raise NotImplementedError(
                f"sample: implemented for the gaussian and tophat kernels, got {self.kernel!r}"
            )
        rng = check_random_state(random_state, allow_generator=False)
        u = rng.uniform(0, 1, size=n_samples)
        if self._sample_weight is None:
            i = (u * data.shape[0]).astype(np.int64)
        else:
            cumsum_weight = np.cumsum(self._sample_weight)
            i = np.searchsorted(cumsum_weight, u * cumsum_weight[-1])
        if self.kernel == "gaussian":
            return np.atleast_2d(rng.normal(data[i], self.bandwidth_))
        from scipy.special import gammainc  # type: ignore[import-untyped]

        dim = data.shape[1]
        x = rng.normal(size=(n_samples, dim))
        s_sq = np.einsum("ij,ij->i", x, x)
        correction = (
            gammainc(0.5 * dim, 0.5 * s_sq) ** (1.0 / dim) * self.bandwidth_ / np.sqrt(s_sq)
        )
        return np.asarray(data[i] + x * correction[:, np.newaxis])


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and bool(a == b)
