"""Options and helpers shared by the numpy layer and the torch layer (internal).

One home for what both layers must agree on: how eps is described, which sparsity norms exist
and how a tensor-attention mask is read.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from genlab._validation import check_int, check_real
from genlab.errors import InvalidArgumentError

__all__ = ["EPS_HINT", "SPARSITY_KINDS", "check_eps", "tensor_attention_mask"]

#: The norms a sparsity term can use: l0 (nonzero count) and l1.
SPARSITY_KINDS: tuple[str, ...] = ("l0", "l1")
#: Appended to every message about a coding-rate eps: genlab's eps is epsilon, never its square.
EPS_HINT = " (epsilon itself, not epsilon^2)"


def check_eps(value: object, name: str = "eps") -> float:
    """A coding-rate epsilon: a finite number > 0 whose 1/eps^2 is finite (the message repeats
    the convention)."""
    eps = check_real(value, name, positive=True, hint=EPS_HINT)
    square = eps * eps
    if square == 0 or not math.isfinite(1.0 / square):
        raise InvalidArgumentError(
            f"{name}: {eps:e} is too small: 1/eps^2 overflows float64{EPS_HINT}; rescale Z"
        )
    return eps


def tensor_attention_mask(mask: object) -> tuple[str, int, int]:
    """A tensor-attention ``mask`` (None, "causal" or a pair of windows) as (kind, w1, w2)."""
    if mask is None:
        return "none", 0, 0
    if isinstance(mask, str):
        if mask != "causal":
            raise ValueError(
                f"mask: expected None, 'causal' or a pair of window sizes (w1, w2), got {mask!r}"
            )
        return "causal", 0, 0
    if isinstance(mask, Sequence) and len(mask) == 2:
        w1 = check_int(mask[0], "mask[0] (window w1)", minimum=1)
        w2 = check_int(mask[1], "mask[1] (window w2)", minimum=1)
        return "window", w1, w2
    raise TypeError(
        f"mask: expected None, 'causal' or a pair of window sizes (w1, w2), got {mask!r}"
    )
