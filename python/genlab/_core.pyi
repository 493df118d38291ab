# Type stubs of the extension module genlab._core (rust/genlab-py). Kept in sync with the
# extension by tests/test_stubs.py: every function here exists there with the same parameters.

import numpy as np
from numpy.typing import NDArray

__version__: str

def effective_n_jobs(n_jobs: int | None = None) -> int: ...

# rank
def kendall_tau(
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    *,
    variant: str = "b",
    method: str = "auto",
    alternative: str = "two-sided",
    nan_policy: str = "propagate",
) -> tuple[float, float, int]: ...
def kendall_tau_many(
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    *,
    variant: str = "b",
    method: str = "auto",
    alternative: str = "two-sided",
    nan_policy: str = "propagate",
    n_jobs: int | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.uint64]]: ...
def kendall_tau_matrix(
    x: NDArray[np.float64],
    *,
    variant: str = "b",
    nan_policy: str = "omit",
    n_jobs: int | None = None,
) -> NDArray[np.float64]: ...
def granulated_kendall(
    measure: NDArray[np.float64],
    gap: NDArray[np.float64],
    codes: NDArray[np.int64],
    *,
    variant: str = "a",
    nan_policy: str = "propagate",
    n_jobs: int | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.uint64], NDArray[np.uint64], float, float, int]: ...
def conditional_mutual_information(
    measure: NDArray[np.float64],
    gap: NDArray[np.float64],
    codes: NDArray[np.int64],
    *,
    min_subset_size: int = 0,
    max_subset_size: int = 2,
    nan_policy: str = "propagate",
    n_jobs: int | None = None,
) -> list[tuple[list[int], float, float, float]]: ...
def sign_error_environments(
    measure: NDArray[np.float64],
    gap: NDArray[np.float64],
    codes: NDArray[np.int64],
    *,
    weighting: str = "none",
    n_samples: float | None = None,
    min_weight: float = 0.5,
    nan_policy: str = "propagate",
    n_jobs: int | None = None,
) -> tuple[
    NDArray[np.uint64],
    NDArray[np.uint64],
    NDArray[np.uint64],
    NDArray[np.float64],
    NDArray[np.float64],
    NDArray[np.uint64],
]: ...

# rate
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
