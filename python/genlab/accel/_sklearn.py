"""The fast path of ``sklearn.neighbors.KernelDensity``: a subclass whose ``score_samples`` runs
genlab's exact kernel sum when the estimate is one genlab computes the same way (a Euclidean
metric), and scikit-learn's tree otherwise. With ``atol``/``rtol`` > 0 scikit-learn's tree may
stop early within that tolerance of the exact sum; genlab returns the exact sum, which meets it. ``fit``, validation, parameters,
``sample`` and ``clone`` stay scikit-learn's."""

from __future__ import annotations

from typing import Any

import numpy as np

from genlab import _core
from genlab.accel._dispatch import Decline, Profile, dispatch
from genlab.accel._scipy import numeric_array, pickled_as
from genlab.kde._arrays import KERNELS


def _fitted_data(kde: Any) -> tuple[np.ndarray, np.ndarray | None]:
    tree = getattr(kde, "tree_", None)
    if tree is None:
        raise Decline("not fitted (scikit-learn raises NotFittedError)")
    data = np.asarray(tree.data)
    weights = getattr(tree, "sample_weight", None)
    return data, None if weights is None else np.asarray(weights, dtype=np.float64)


def _queries(kde: Any, X: Any) -> np.ndarray:
    if not isinstance(X, np.ndarray):
        raise Decline(f"X is a {type(X).__name__} (scikit-learn validates its features)")
    array = numeric_array(X, "X")
    if array.ndim != 2 or array.shape[1] != getattr(kde, "n_features_in_", -1):
        raise Decline(f"X of shape {array.shape}")
    if array.shape[0] == 0:
        raise Decline("X has no rows")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise Decline("X contains NaN or infinity")
    return np.ascontiguousarray(array, dtype=np.float64)


def make_kernel_density(original: type, profile: Profile) -> type:
    """A subclass of scikit-learn's ``KernelDensity`` (same parameters, same fitted attributes)
    whose ``score_samples`` takes genlab's exact path where it applies."""

    def score_samples(kde: Any, X: Any) -> np.ndarray:
        params = kde.metric_params or {}
        minkowski_2 = kde.metric == "minkowski" and set(params) <= {"p"} and params.get("p", 2) == 2
        if not (kde.metric in ("euclidean", "l2") and not params) and not minkowski_2:
            raise Decline(f"metric {kde.metric!r}")
        if kde.kernel not in KERNELS:
            raise Decline(f"kernel {kde.kernel!r}")
        data, weights = _fitted_data(kde)
        if data.dtype != np.float64:
            raise Decline(f"fitted data of dtype {data.dtype}")
        result: np.ndarray = _core.kde.log_density(
            np.ascontiguousarray(data),
            _queries(kde, X),
            bandwidth=float(kde.bandwidth_),
            weights=weights,
            kernel=kde.kernel,
        )
        return result

    class KernelDensity(original):  # type: ignore[misc]
        __doc__ = original.__doc__

        def score_samples(self, X: Any) -> Any:
            return dispatch(
                profile,
                "sklearn.neighbors.KernelDensity.score_samples",
                lambda queries: score_samples(self, queries),
                super().score_samples,
                X,
            )

    KernelDensity.__reduce_ex__ = pickled_as(original)  # type: ignore[method-assign]
    KernelDensity.__module__ = original.__module__
    KernelDensity.__qualname__ = original.__qualname__
    return KernelDensity
