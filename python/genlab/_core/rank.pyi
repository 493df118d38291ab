# Stubs of genlab._core.rank: the bindings of genlab_core::rank (rust/genlab-py/src/rank.rs).

from typing import Any

import numpy as np
from numpy.typing import NDArray

class KendallWorkspace:
    def __init__(self, max_bytes: int = ...) -> None: ...
    @property
    def nbytes(self) -> int: ...
    def release(self) -> None: ...

def kendalltau(
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    *,
    variant: str = "b",
    method: str = "auto",
    alternative: str = "two-sided",
    nan_policy: str = "propagate",
    workspace: KendallWorkspace | None = None,
) -> tuple[float, float, int]: ...
def kendalltau_many(
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    *,
    variant: str = "b",
    method: str = "auto",
    alternative: str = "two-sided",
    nan_policy: str = "propagate",
    n_jobs: int | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.uint64]]: ...
def kendalltau_matrix(
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
def kendalltau_across_groups(
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    groups: NDArray[np.int64],
    *,
    variant: str = "a",
    nan_policy: str = "omit",
    n_jobs: int | None = None,
) -> NDArray[np.float64]: ...
def kendalltau_across_resampled_groups(
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    groups: NDArray[np.int64],
    counts: NDArray[np.int64],
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
def sign_error(
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
