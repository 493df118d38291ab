# Stubs of genlab._core.spectrum: the bindings of genlab_core::spectrum (rust/genlab-py/src/spectrum.rs).

import numpy as np
from numpy.typing import NDArray

def power_law_fit_many(
    spectra: list[NDArray[np.float64]], *, n_jobs: int | None = None
) -> dict[str, NDArray[np.float64] | NDArray[np.uint64]]: ...
