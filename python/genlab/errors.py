"""Warnings genlab emits. Errors are the standard ``ValueError`` and ``TypeError``."""

from __future__ import annotations

__all__ = ["DegenerateDataWarning", "NumericalWarning"]


class DegenerateDataWarning(RuntimeWarning):
    """The data leave a result undefined (too few observations, a constant variable), so it is NaN."""


class NumericalWarning(RuntimeWarning):
    """A computation needed a numerical safeguard (for example a diagonal jitter) to finish."""
