# Stubs of genlab._core.rate: the bindings of genlab_core::rate (rust/genlab-py/src/rate.rs).

import numpy as np
from numpy.typing import NDArray

JITTER_TRIES: int

def jitter_scale(side: int, machine_epsilon: float, t: int) -> float: ...
def coding_rate(
    z: NDArray[np.float64] | NDArray[np.float32],
    *,
    eps: float,
    normalize_tokens: bool = False,
    n_jobs: int | None = None,
) -> tuple[NDArray[np.float64], int]: ...
def compressed_coding_rate(
    z: NDArray[np.float64] | NDArray[np.float32],
    u: NDArray[np.float64],
    *,
    eps: float,
    normalize_tokens: bool = False,
    n_jobs: int | None = None,
) -> tuple[NDArray[np.float64], int]: ...
def compressed_coding_rate_projected(
    zu: NDArray[np.float64] | NDArray[np.float32],
    *,
    eps: float,
    normalize_tokens: bool = False,
    n_jobs: int | None = None,
) -> tuple[NDArray[np.float64], int]: ...
def rate_reduction(
    z: NDArray[np.float64] | NDArray[np.float32],
    u: NDArray[np.float64],
    *,
    eps: float,
    normalize_tokens: bool = False,
    n_jobs: int | None = None,
) -> tuple[NDArray[np.float64], int]: ...
def sparse_rate_reduction(
    z: NDArray[np.float64] | NDArray[np.float32],
    u: NDArray[np.float64],
    *,
    eps: float,
    lam: float,
    sparsity: str = "l0",
    normalize_tokens: bool = False,
    n_jobs: int | None = None,
) -> tuple[NDArray[np.float64], int]: ...
def srr_measure(
    z: NDArray[np.float64] | NDArray[np.float32],
    u: NDArray[np.float64],
    *,
    eps: float,
    lam: float = 1.0,
    sparsity: str = "l0",
    normalize_tokens: bool = False,
    n_jobs: int | None = None,
) -> tuple[NDArray[np.float64], int]: ...
def sparsity(
    z: NDArray[np.float64] | NDArray[np.float32],
    *,
    kind: str = "l0",
    n_jobs: int | None = None,
) -> NDArray[np.float64]: ...
