"""The rules of thumb for a Gaussian kernel's bandwidth factor (internal): one home for the
formulas the scipy drop-in, the scikit-learn drop-in and :func:`genlab.kde.select_bandwidth`
share. Each caller decides what ``n`` is (scipy: the effective sample size) and what the factor
multiplies (scipy: the data covariance; scikit-learn: nothing; select_bandwidth: the data's
scale)."""

from __future__ import annotations

__all__ = ["RULES", "bandwidth_factor"]

#: The rules' names.
RULES: tuple[str, ...] = ("scott", "silverman")


def bandwidth_factor(rule: str, n: float, d: int) -> float:
    """Scott's ``n ** (-1 / (d + 4))`` or Silverman's ``(n (d + 2) / 4) ** (-1 / (d + 4))``."""
    if rule == "scott":
        return float(n ** (-1.0 / (d + 4)))
    if rule == "silverman":
        return float((n * (d + 2.0) / 4.0) ** (-1.0 / (d + 4)))
    raise ValueError(f"rule: expected one of {', '.join(map(repr, RULES))}, got {rule!r}")
