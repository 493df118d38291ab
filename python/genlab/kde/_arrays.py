"""Input handling shared by the KDE front ends (:mod:`genlab.kde` and its drop-ins).

Arrays are converted to float64 (float32 is kept when every array of the call is float32) without
forcing a copy here: the Rust kernel reads any strides (and gathers a strided array into one block
itself, so the size of that copy is checked here first). Finiteness, emptiness and dimension mismatches
are checked by the kernel itself, which names the argument.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from genlab._validation import _check_copy_size, _contiguous, _numeric
from genlab.errors import EmptyInputError, ShapeError

__all__ = [
    "KERNELS",
    "check_bandwidth",
    "check_random_state",
    "check_weights",
    "float_points",
    "kernel_cholesky",
    "one_dtype",
]

KERNELS = ("gaussian", "tophat", "epanechnikov", "exponential", "linear", "cosine")


def float_points(x: ArrayLike, name: str) -> NDArray[Any]:
    """``x`` as a 2-D float64 array (float32 kept as float32), without copying when possible."""
    arr = _numeric(x, name)
    if arr.ndim != 2:
        raise ShapeError(
            f"{name}: expected a 2-D array of shape (n_points, n_features), got shape {arr.shape}"
        )
    if arr.shape[1] == 0:
        raise EmptyInputError(
            f"{name}: expected at least one feature (column), got shape {arr.shape}"
        )
    dtype = np.float32 if arr.dtype == np.float32 else np.float64
    # The kernel reads any strides but gathers a strided or broadcast array into one block.
    _check_copy_size(arr, dtype, name)
    return arr.astype(dtype, copy=False)


def one_dtype(
    data: NDArray[Any], queries: NDArray[Any] | None
) -> tuple[NDArray[Any], NDArray[Any] | None]:
    """Data and queries cast to one dtype: float32 when both are float32, else float64."""
    if data.dtype == np.float32 and (queries is None or queries.dtype == np.float32):
        return data, queries
    return (
        data.astype(np.float64, copy=False),
        None if queries is None else queries.astype(np.float64, copy=False),
    )


def check_bandwidth(value: object, name: str = "bandwidth") -> float:
    """A positive finite real bandwidth."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
        raise TypeError(f"{name}: expected a positive number, got {type(value).__name__}")
    h = float(value)
    if not (math.isfinite(h) and h > 0):
        raise ValueError(f"{name}: expected a positive finite number, got {h}")
    return h


def check_weights(
    weights: ArrayLike | None, n: int, name: str = "weights"
) -> NDArray[np.float64] | None:
    """Non-negative finite weights, one per data point, with a positive sum (float64, 1-D)."""
    if weights is None:
        return None
    w = _contiguous(_numeric(weights, name), np.float64, name)
    if w.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {w.shape}")
    if w.shape[0] != n:
        raise ValueError(f"{name}: expected one weight per data point ({n}), got {w.shape[0]}")
    if not np.isfinite(w).all():
        raise ValueError(f"{name}: contains NaN or infinity; weights must be finite")
    if (w < 0).any():
        raise ValueError(f"{name}: expected non-negative weights, got {w.min()}")
    if not w.max() > 0:
        raise ValueError(f"{name}: expected at least one positive weight, got all zeros")
    # Only the weights' proportions matter: scaled by a power of two (exactly) so that the
    # largest is below 1, their sum cannot overflow (finite weights of 1e308 would sum to inf).
    scaled: NDArray[np.float64] = np.ldexp(w, -int(np.frexp(w.max())[1]))
    return scaled


def kernel_cholesky(covariance: ArrayLike, d: int, name: str = "bandwidth") -> NDArray[np.float64]:
    """Lower Cholesky factor of a (d, d) kernel covariance; ``ValueError`` unless it is SPD."""
    cov = np.asarray(covariance, dtype=np.float64)
    if cov.shape != (d, d):
        raise ValueError(
            f"{name}: expected a ({d}, {d}) kernel covariance matrix, got shape {cov.shape}"
        )
    if not np.isfinite(cov).all():
        raise ValueError(f"{name}: the kernel covariance contains NaN or infinity")
    if not np.allclose(cov, cov.T, rtol=1e-12, atol=0.0):
        raise ValueError(f"{name}: the kernel covariance must be symmetric")
    try:
        return np.ascontiguousarray(np.linalg.cholesky(cov))
    except np.linalg.LinAlgError as exc:
        raise ValueError(
            f"{name}: the kernel covariance is not positive definite ({exc}); a full-covariance "
            "kernel needs an invertible matrix (use a scalar bandwidth for an isotropic kernel)"
        ) from exc


def check_random_state(seed: Any, *, allow_generator: bool) -> Any:
    """scipy's and scikit-learn's ``check_random_state``: None (or ``np.random``) is the global
    RandomState, an int seeds a new RandomState, a RandomState (or, for scipy, a Generator) is
    used as is."""
    if seed is None or seed is np.random:
        return np.random.mtrand._rand
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return np.random.RandomState(int(seed))
    if isinstance(seed, np.random.RandomState) or (
        allow_generator and isinstance(seed, np.random.Generator)
    ):
        return seed
    raise ValueError(f"{seed!r} cannot be used to seed a numpy.random.RandomState instance")
