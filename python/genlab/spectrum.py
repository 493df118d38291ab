"""Power-law fits of eigenvalue spectra: the heavy-tail exponent alpha of a layer's empirical
spectral density (Martin and Mahoney; WeightWatcher's fit), in Rust, batched over many spectra.

- :func:`power_law_fit`: one spectrum; :func:`power_law_fit_many`: many (the layers of many
  models), fitted in parallel.

For the sorted positive eigenvalues of ``W^T W``, every value but the largest is a candidate
``xmin``; its tail gets the continuous maximum-likelihood exponent
``alpha = 1 + n / sum log(x / xmin)`` and the Kolmogorov-Smirnov distance to the fitted law, and
the candidate with the smallest distance is the fit (Clauset, Shalizi and Newman 2009).
Spectra of fewer than 20 values follow WeightWatcher's small-sample rule (tails of at least 8,
the bias-corrected exponent, the distance minus ``0.868 / sqrt(n)``). The formulas, conventions
and pitfalls: ``docs/formulas/spectrum.md``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from genlab import _core
from genlab._validation import as_float_array, check_n_jobs

__all__ = ["PowerLawFit", "power_law_fit", "power_law_fit_many"]


@dataclasses.dataclass(frozen=True)
class PowerLawFit:
    """A power-law fit of one spectrum.

    Attributes
    ----------
    alpha : float
        The exponent of the tail density ``x^(-alpha)``.
    xmin : float
        The smallest eigenvalue of the fitted tail.
    ks_distance : float
        Kolmogorov-Smirnov distance between the tail and the fitted law.
    sigma : float
        ``(alpha - 1) / sqrt(n_tail)``, the exponent's standard error.
    n_tail : int
        Eigenvalues in the tail.
    """

    alpha: float
    xmin: float
    ks_distance: float
    sigma: float
    n_tail: int


def power_law_fit_many(
    spectra: Sequence[ArrayLike], *, n_jobs: int | None = None
) -> list[PowerLawFit]:
    """Fit every spectrum in ``spectra`` (each a 1-D array of positive eigenvalues, at least 2).

    Raises
    ------
    ValueError
        A spectrum with fewer than 2 values, or a value that is not finite and positive (the
        message names ``spectra[k]``).

    Examples
    --------
    >>> import numpy as np
    >>> from genlab.spectrum import power_law_fit_many
    >>> rng = np.random.default_rng(0)
    >>> pareto = (1 - rng.random(5000)) ** (-1 / 1.5)  # density x^(-2.5) above 1
    >>> fits = power_law_fit_many([pareto, pareto[:50]])
    >>> round(fits[0].alpha, 1)
    2.5
    """
    given: object = spectra  # typed as a sequence, but a 1-D array is a common mistake
    if isinstance(given, np.ndarray) and given.ndim == 1:
        raise TypeError("spectra: expected a sequence of 1-D arrays; for one, use power_law_fit")
    arrays = [as_float_array(s, f"spectra[{k}]", ndim=1) for k, s in enumerate(spectra)]
    out = _core.spectrum.power_law_fit_many(arrays, n_jobs=check_n_jobs(n_jobs))
    return [
        PowerLawFit(
            alpha=float(out["alpha"][k]),
            xmin=float(out["xmin"][k]),
            ks_distance=float(out["ks_distance"][k]),
            sigma=float(out["sigma"][k]),
            n_tail=int(out["n_tail"][k]),
        )
        for k in range(len(arrays))
    ]


def power_law_fit(eigenvalues: ArrayLike) -> PowerLawFit:
    """Fit one spectrum (module docstring): the positive eigenvalues, at least 2.

    Examples
    --------
    >>> import numpy as np
    >>> from genlab.spectrum import power_law_fit
    >>> w = np.random.default_rng(0).standard_t(3, size=(400, 200))  # heavy-tailed weights
    >>> fit = power_law_fit(np.linalg.eigvalsh(w.T @ w))
    >>> fit.n_tail <= 200 and fit.alpha > 1
    True
    """
    return power_law_fit_many([eigenvalues], n_jobs=1)[0]
