# Stubs of genlab._core.attention: the bindings of genlab_core::attention (rust/genlab-py/src/attention.rs).

from typing import Any

import numpy as np
from numpy.typing import NDArray

def tensor_attention_exact(
    q: NDArray[np.float64],
    k1: NDArray[np.float64],
    k2: NDArray[np.float64],
    v1: NDArray[np.float64],
    v2: NDArray[np.float64],
    *,
    scale: float,
    mask: str = "none",
    w1: int = 0,
    w2: int = 0,
    n_jobs: int | None = None,
) -> NDArray[np.float64]: ...
def tensor_attention_poly(
    q: NDArray[np.float64],
    k1: NDArray[np.float64],
    k2: NDArray[np.float64],
    v1: NDArray[np.float64],
    v2: NDArray[np.float64],
    *,
    scale: float,
    memory_limit: float,
    mask: str = "none",
    w1: int = 0,
    w2: int = 0,
    degree: int | None = None,
    tol: float | None = None,
    basis: str = "chebyshev",
    n_jobs: int | None = None,
) -> tuple[NDArray[np.float64], dict[str, Any]]: ...
def attention_exact(
    q: NDArray[np.float64],
    k: NDArray[np.float64],
    v: NDArray[np.float64],
    *,
    scale: float,
    mask: str = "none",
    window: int = 0,
    n_jobs: int | None = None,
) -> NDArray[np.float64]: ...
def logit_bound(
    q: NDArray[np.float64],
    k1: NDArray[np.float64],
    k2: NDArray[np.float64],
    *,
    scale: float,
) -> float: ...
def poly_plan(
    logit_range: float,
    d: int,
    *,
    degree: int | None = None,
    tol: float | None = None,
    basis: str = "chebyshev",
    unit_roundoff: float = ...,
    bytes_per_rank: float = 0.0,
    memory_limit: float = ...,
) -> dict[str, Any]: ...
def monomial_table(d: int, degree: int) -> dict[str, NDArray[Any]]: ...
