"""Fast paths for ``scipy.stats.kendalltau`` and ``scipy.stats.gaussian_kde``.

Each covers the common case exactly (finite numeric data, the default options or the ones genlab
implements) and declines the rest, so that scipy decides every edge case itself: NaN (its
``nan_policy`` and its warnings), fewer than two observations, constant input, ``axis``,
long double, object arrays, shapes it rejects.
"""

from __future__ import annotations

import copyreg
from collections.abc import Callable
from typing import Any

import numpy as np

from genlab import _core, rank
from genlab.accel._dispatch import Decline, Profile, dispatch

#: dtypes a fast path reads exactly as float64 (integers up to 2^53, bools, float16/32/64).
_EXACT_KINDS = "biuf"


def numeric_array(value: Any, name: str) -> np.ndarray:
    """``value`` as a numpy array of a kind genlab reads exactly, or :class:`Decline`."""
    if hasattr(value, "__array_namespace__") and not isinstance(value, np.ndarray):
        raise Decline(f"{name} is an array-API array ({type(value).__name__}), not numpy")
    if isinstance(value, np.ma.MaskedArray):
        raise Decline(f"{name} is a masked array")
    try:
        array = np.asarray(value)
    except Exception as exc:
        raise Decline(f"{name} is not an array ({type(exc).__name__})") from None
    if array.dtype.kind not in _EXACT_KINDS or array.dtype.itemsize > 8:
        raise Decline(f"{name} has dtype {array.dtype}")
    if array.dtype.kind in "iu" and array.size and np.abs(array).max() > 2**53:
        raise Decline(f"{name} holds integers beyond 2^53 (not exact in float64)")
    return array


def _finite(array: np.ndarray, name: str) -> None:
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise Decline(f"{name} contains NaN or infinity")


def _check_tau_options(
    args: tuple[Any, ...], nan_policy: str, method: str, variant: str, alternative: str
) -> None:
    """Decline the options genlab's kendalltau does not take as scipy does."""
    if args:
        raise Decline("positional arguments beyond x and y")
    if variant not in ("b", "c") or method not in ("auto", "exact", "asymptotic"):
        raise Decline(f"variant={variant!r} or method={method!r}")
    if alternative not in ("two-sided", "less", "greater"):
        raise Decline(f"alternative={alternative!r}")
    if nan_policy not in ("propagate", "omit", "raise"):
        raise Decline(f"nan_policy={nan_policy!r}")


def _tau_pairs(x: Any, y: Any, nan_policy: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The observations kendalltau ranks (NaN pairs dropped under "omit"); None when scipy's
    answer is NaN ("propagate" with a NaN); :class:`Decline` where scipy decides itself."""
    xa, ya = numeric_array(x, "x").ravel(), numeric_array(y, "y").ravel()
    if xa.size != ya.size:
        raise Decline("x and y have different sizes")
    if np.isinf(xa).any() or np.isinf(ya).any():
        raise Decline("infinite values")
    missing = np.isnan(xa) | np.isnan(ya)
    if missing.any():
        if nan_policy == "propagate":
            return None
        if nan_policy == "raise":
            raise Decline("NaN with nan_policy='raise' (scipy's error)")
        xa, ya = xa[~missing], ya[~missing]  # "omit": the pairs without NaN
    if xa.size < 2:
        raise Decline("fewer than 2 observations")
    if xa.min() == xa.max() or ya.min() == ya.max():
        raise Decline("a constant input (tau undefined)")
    return xa, ya


def make_kendalltau(original: Callable[..., Any], profile: Profile) -> Callable[..., Any]:
    """``scipy.stats.kendalltau`` with genlab's O(n log n) kernel behind it."""

    def fast(
        x: Any,
        y: Any,
        *args: Any,
        nan_policy: str = "propagate",
        method: str = "auto",
        variant: str = "b",
        alternative: str = "two-sided",
        axis: Any = None,
        keepdims: bool = False,
    ) -> Any:
        if axis is not None or keepdims:
            raise Decline("axis or keepdims given")
        _check_tau_options(args, nan_policy, method, variant, alternative)
        pairs = _tau_pairs(x, y, nan_policy)
        if pairs is None:
            return _significance_result(np.float64(np.nan), np.float64(np.nan))
        xa, ya = pairs
        if method == "exact" and (len(np.unique(xa)) < xa.size or len(np.unique(ya)) < ya.size):
            raise Decline("method='exact' with ties")
        res = rank.kendalltau(xa, ya, method=method, variant=variant, alternative=alternative)
        return _significance_result(np.float64(res.statistic), np.float64(res.pvalue))

    def kendalltau(x: Any, y: Any, *args: Any, **kwargs: Any) -> Any:
        return dispatch(profile, "scipy.stats.kendalltau", fast, original, x, y, *args, **kwargs)

    _wrap(kendalltau, original)
    return kendalltau


def _significance_result(statistic: np.float64, pvalue: np.float64) -> Any:
    """scipy's own result type (a tuple: ``res == (tau, p)``, indexing, ``len`` as scipy's),
    with the ``correlation`` alias scipy's correlation functions attach to it."""
    from scipy.stats._stats_py import SignificanceResult  # type: ignore[import-untyped]

    result = SignificanceResult(statistic, pvalue)
    result.correlation = statistic
    return result


def make_gaussian_kde(original: type, profile: Profile) -> type:
    """A subclass of scipy's ``gaussian_kde`` whose ``evaluate``/``logpdf`` run genlab's exact
    streaming kernel. Construction, bandwidths, weights, integrals and sampling stay scipy's."""

    def points_of(kde: Any, points: Any) -> np.ndarray:
        dataset = getattr(kde, "dataset", None)
        cho_cov = getattr(kde, "cho_cov", None)
        if not isinstance(dataset, np.ndarray) or not isinstance(cho_cov, np.ndarray):
            raise Decline("no dataset or Cholesky factor of the covariance (an older scipy?)")
        numeric_array(dataset, "dataset")
        array = np.atleast_2d(numeric_array(points, "points"))
        # scipy computes in np.common_type(covariance, points): float64 unless long double.
        if np.common_type(kde.covariance, array) is not np.float64:
            raise Decline(f"scipy computes in {np.common_type(kde.covariance, array).__name__}")
        if array.ndim != 2:
            raise Decline(f"points of shape {array.shape}")
        d = dataset.shape[0]
        if array.shape[0] != d:
            if array.shape[0] == 1 and array.shape[1] == d:
                array = array.reshape(d, 1)
            else:
                raise Decline("points of another dimension than the dataset")
        _finite(array, "points")
        return array.astype(np.float64)

    def log_density(kde: Any, points: Any) -> np.ndarray:
        queries = points_of(kde, points)
        weights = np.asarray(kde.weights, dtype=np.float64)
        equal = bool(np.all(weights == weights[0]))
        result: np.ndarray = _core.kde.log_density(
            np.ascontiguousarray(kde.dataset.T, dtype=np.float64),
            np.ascontiguousarray(queries.T),
            cholesky=np.ascontiguousarray(kde.cho_cov),
            weights=None if equal else np.ascontiguousarray(weights),
        )
        return result

    class gaussian_kde(original):  # type: ignore[misc]
        __doc__ = original.__doc__

        def evaluate(self, points: Any) -> Any:
            return dispatch(
                profile,
                "scipy.stats.gaussian_kde.evaluate",
                lambda p: np.exp(log_density(self, p)),
                super().evaluate,
                points,
            )

        __call__ = evaluate

        def logpdf(self, x: Any) -> Any:
            return dispatch(
                profile,
                "scipy.stats.gaussian_kde.logpdf",
                lambda p: log_density(self, p),
                super().logpdf,
                x,
            )

    gaussian_kde.__reduce_ex__ = pickled_as(original)  # type: ignore[method-assign]
    gaussian_kde.__module__ = original.__module__
    gaussian_kde.__qualname__ = original.__qualname__
    return gaussian_kde


def pickled_as(original: type) -> Callable[[Any, Any], Any]:
    """A ``__reduce_ex__`` that pickles an instance of a replacement class as an instance of
    ``original`` (same state), so that a pickle written by a patched program loads without
    genlab (and as the replacement again where genlab.accel is installed)."""

    def reduce_ex(self: Any, protocol: Any) -> Any:
        # copyreg._reconstructor makes a bare instance of `original` (pickle's protocol 0/1
        # route; __newobj__ would insist on the instance's own class), then the state goes in.
        rebuild = copyreg._reconstructor  # type: ignore[attr-defined]
        return (rebuild, (original, object, None), self.__getstate__())

    return reduce_ex


def _wrap(function: Callable[..., Any], original: Callable[..., Any]) -> None:
    """Give the replacement the original's name, docstring and module (``help()`` unchanged),
    and a pointer back to it."""
    for attribute in ("__name__", "__qualname__", "__doc__", "__module__"):
        setattr(function, attribute, getattr(original, attribute, None))
    function.__wrapped__ = original  # type: ignore[attr-defined]
