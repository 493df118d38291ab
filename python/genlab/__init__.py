"""genlab: measure why deep networks generalize.

A Rust numerical core with a numpy-facing API (this package), a PyTorch layer
(:mod:`genlab.torch`, optional extra ``genlab[torch]``) and a study harness (:mod:`genlab.study`).

Modules
-------
rank
    Kendall tau (scipy drop-in), batched taus, granulated Kendall Psi, conditional-MI score,
    robust sign-error.
rate
    Coding rates, compressed coding rates, rate reduction, sparse rate reduction and the SRR
    measure over many token groups (CRATE).
"""

from __future__ import annotations

from genlab import rank, rate
from genlab._core import __version__
from genlab.errors import DegenerateDataWarning, NumericalWarning

__all__ = ["DegenerateDataWarning", "NumericalWarning", "__version__", "rank", "rate"]
