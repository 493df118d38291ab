# Stubs of genlab._core.kde: the bindings of genlab_core::kde (rust/genlab-py/src/kde.rs).

from typing import Any

import numpy as np
from numpy.typing import NDArray

def log_density(
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
def loo_cv_bandwidth(
    data: NDArray[np.float64] | NDArray[np.float32],
    *,
    n_neighbors: int | None = None,
    bounds: tuple[float, float] | None = None,
    n_jobs: int | None = None,
) -> dict[str, Any]: ...
def nearest_neighbor_bandwidth(
    data: NDArray[np.float64] | NDArray[np.float32], *, n_jobs: int | None = None
) -> float: ...
def regime(
    data: NDArray[np.float64] | NDArray[np.float32],
    bandwidth: float,
    queries: NDArray[np.float64] | NDArray[np.float32] | None = None,
    *,
    n_jobs: int | None = None,
) -> dict[str, Any]: ...
def information_plane_many(
    activations: list[NDArray[np.float64]] | list[NDArray[np.float32]],
    noise_variances: NDArray[np.float64],
    labels: NDArray[np.int64] | None = None,
    *,
    n_jobs: int | None = None,
) -> dict[str, NDArray[np.float64]]: ...
