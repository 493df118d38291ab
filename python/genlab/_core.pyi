# Type stubs of the extension module genlab._core (rust/genlab-py). Kept in sync with the
# extension by tests/test_stubs.py: every function here exists there with the same parameters.

from typing import Any

import numpy as np
from numpy.typing import NDArray

__version__: str

class InvalidArgumentError(ValueError): ...
class ShapeError(InvalidArgumentError): ...
class NonFiniteError(InvalidArgumentError): ...
class EmptyInputError(InvalidArgumentError): ...
class TooLargeError(InvalidArgumentError): ...
class NotPositiveDefiniteError(InvalidArgumentError): ...
class DTypeError(TypeError): ...

def effective_n_jobs(n_jobs: int | None = None) -> int: ...
def instruction_set() -> str: ...

# rank
class KendallWorkspace:
    def __init__(self, max_bytes: int = ...) -> None: ...
    @property
    def nbytes(self) -> int: ...
    def release(self) -> None: ...

def kendall_tau(
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    *,
    variant: str = "b",
    method: str = "auto",
    alternative: str = "two-sided",
    nan_policy: str = "propagate",
    workspace: KendallWorkspace | None = None,
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
    memory_limit: float = ...,
    n_jobs: int | None = None,
) -> NDArray[np.float64]: ...
def granulated_kendall(
    measure: NDArray[np.float64],
    gap: NDArray[np.float64],
    codes: NDArray[np.int64],
    *,
    variant: str = "a",
    replicates: str = "pairs",
    nan_policy: str = "raise",
    n_jobs: int | None = None,
) -> dict[str, Any]: ...
def kendall_tau_across_groups(
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    groups: NDArray[np.int64],
    *,
    variant: str = "a",
    nan_policy: str = "omit",
    n_jobs: int | None = None,
) -> NDArray[np.float64]: ...
def conditional_mutual_information(
    measure: NDArray[np.float64],
    gap: NDArray[np.float64],
    codes: NDArray[np.int64],
    *,
    convention: str = "genlab",
    replicates: str = "pairs",
    min_subset_size: int = 0,
    max_subset_size: int = 2,
    nan_policy: str = "raise",
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
    min_ess: float = 12.0,
    nan_policy: str = "raise",
    n_jobs: int | None = None,
) -> dict[str, Any]: ...

# kde
def kde_log_density(
    data: NDArray[np.float64] | NDArray[np.float32],
    queries: NDArray[np.float64] | NDArray[np.float32] | None = None,
    *,
    bandwidth: float | None = None,
    cholesky: NDArray[np.float64] | None = None,
    weights: NDArray[np.float64] | None = None,
    kernel: str = "gaussian",
    leave_one_out: bool = False,
    n_jobs: int | None = None,
) -> NDArray[np.float64]: ...
def kde_loo_cv_bandwidth(
    data: NDArray[np.float64] | NDArray[np.float32],
    *,
    n_neighbors: int | None = None,
    bounds: tuple[float, float] | None = None,
    n_jobs: int | None = None,
) -> dict[str, Any]: ...
def kde_nearest_neighbor_bandwidth(
    data: NDArray[np.float64] | NDArray[np.float32], *, n_jobs: int | None = None
) -> float: ...
def kde_regime(
    data: NDArray[np.float64] | NDArray[np.float32],
    bandwidth: float,
    queries: NDArray[np.float64] | NDArray[np.float32] | None = None,
    *,
    n_jobs: int | None = None,
) -> dict[str, Any]: ...
def kde_information_plane(
    activations: list[NDArray[np.float64]] | list[NDArray[np.float32]],
    noise_variances: NDArray[np.float64],
    labels: NDArray[np.int64] | None = None,
    *,
    n_jobs: int | None = None,
) -> dict[str, NDArray[np.float64]]: ...

# attention
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

# rate
RATE_JITTER_TRIES: int

def rate_jitter_scale(side: int, machine_epsilon: float, t: int) -> float: ...
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
