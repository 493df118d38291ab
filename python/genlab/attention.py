"""Tensor (triple-wise) attention and ordinary softmax attention.

For each query i, tensor attention is (``docs/formulas/attention.md``; Alman and Song, ICLR 2024)::

    O_i = sum_{j,k} softmax_{(j,k)}(s <q_i, k1_j, k2_k>) (v1_j * v2_k),
    <q, a, b> = sum_l q_l a_l b_l,

with the softmax joint over all n^2 key pairs.

- :func:`tensor_attention`: the exact streaming kernel (online softmax, no n x n^2 array,
  float64 accumulation, parallel over queries) or the polynomial method.
- :func:`tensor_attention_poly`: the polynomial method with its report (logit range, degree, rank,
  error bound).
- :func:`poly_plan`: the polynomial a logit range and a tolerance call for, without computing.
- :func:`logit_bound`: the O(n d) bound on the logit range that governs the polynomial's error.
- :func:`attention`: ordinary softmax attention softmax(s Q K^T) V (the reduction check and
  baseline), by the same streaming kernels.

Inputs are arrays of shape (..., n, d) (values (..., n, dv)) whose leading batch/head axes
broadcast. float32 input gives float32 output; the arithmetic is float64 throughout.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from genlab import _core
from genlab._options import tensor_attention_mask
from genlab._validation import (
    _contiguous,
    as_float_array,
    check_choice,
    check_int,
    check_n_jobs,
    physical_memory,
)
from genlab.errors import NumericalWarning

__all__ = [
    "DEFAULT_TOL",
    "PolyAttentionResult",
    "PolyPlan",
    "attention",
    "logit_bound",
    "poly_plan",
    "tensor_attention",
    "tensor_attention_poly",
]

#: Tolerance of the polynomial method when neither ``degree`` nor ``tol`` is given.
DEFAULT_TOL = 1e-4
#: Above this error bound a fixed-degree polynomial result warns (:class:`NumericalWarning`).
_WARN_BOUND = 0.1
_METHODS = ("exact", "poly")
_BASES = ("chebyshev", "taylor", "minimax")

Mask = str | tuple[int, int] | None


@dataclasses.dataclass(frozen=True)
class PolyPlan:
    """The polynomial p(t) ~ exp(t) chosen for a logit range, and what it costs.

    Attributes
    ----------
    logit_range : float
        The logit range T the plan is for (an upper bound on ``|s <q, k1, k2>|``).
    degree : int
        Degree g of p.
    rank : int
        r = C(d + g, g): the number of multi-indices, the width of the factorization.
    error_bound : float
        Every output entry is within ``error_bound * max_{j,k} |v1_j * v2_k|`` of exact tensor
        attention (from the spread of p(t) / e^t on [-T, T], rounding included).
    basis : str
        "chebyshev", "taylor" or "minimax".
    coefficients : ndarray of float64, shape (degree + 1,)
        a_0, ..., a_g with p(t) = sum_m a_m t^m.
    memory_bytes : float
        Memory the computation needs at this rank (0 when the caller gave no cost per rank).
    """

    logit_range: float
    degree: int
    rank: int
    error_bound: float
    basis: str
    coefficients: NDArray[np.float64]
    memory_bytes: float


@dataclasses.dataclass(frozen=True)
class PolyAttentionResult:
    """Result of :func:`tensor_attention_poly`.

    Attributes
    ----------
    output : ndarray, shape (..., n, dv)
        The approximate tensor attention.
    plan : PolyPlan
        The polynomial used: logit range, degree, rank, error bound, coefficients.
    """

    output: NDArray[Any]
    plan: PolyPlan

    @property
    def logit_range(self) -> float:
        """Upper bound on ``|s <q_i, k1_j, k2_k>|`` over the inputs (see :func:`logit_bound`)."""
        return self.plan.logit_range

    @property
    def degree(self) -> int:
        """Degree of the polynomial."""
        return self.plan.degree

    @property
    def rank(self) -> int:
        """r = C(d + degree, degree)."""
        return self.plan.rank

    @property
    def error_bound(self) -> float:
        """Bound on ``|output - exact| / max_{j,k} |v1_j * v2_k|`` for every entry."""
        return self.plan.error_bound


def _check_positive(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
    x = float(value)
    if not (math.isfinite(x) and x > 0):
        raise ValueError(f"{name}: expected a finite number > 0, got {value}")
    return x


def _check_scale(scale: object, d: int) -> float:
    if scale is None:
        return 1.0 / math.sqrt(d)
    if isinstance(scale, bool) or not isinstance(scale, (int, float, np.integer, np.floating)):
        raise TypeError(f"scale: expected a number or None, got {type(scale).__name__}")
    s = float(scale)
    if not math.isfinite(s):
        raise ValueError(f"scale: expected a finite number, got {scale}")
    return s


def _attention_mask(mask: object) -> tuple[str, int]:
    """``mask`` of ordinary attention as the extension's (kind, window)."""
    if mask is None:
        return "none", 0
    if isinstance(mask, str):
        if mask != "causal":
            raise ValueError(f"mask: expected None, 'causal' or a window size, got {mask!r}")
        return "causal", 0
    return "window", check_int(mask, "mask (window size)", minimum=1)


def _prepare(
    keys: dict[str, ArrayLike], values: dict[str, ArrayLike]
) -> tuple[list[NDArray[np.float64]], tuple[int, ...], int, int, int, type]:
    """Validate and flatten (..., n, d) arrays to C-contiguous float64 (batch, n, width).

    Returns the arrays (keys then values), the broadcast leading shape, n, d, dv and the output
    dtype (float32 when every input is float32).
    """
    arrays: dict[str, NDArray[Any]] = {}
    for name, x in {**keys, **values}.items():
        # NaN and infinity are found by the core's one finiteness scan (a NonFiniteError).
        a = as_float_array(x, name, allow_float32=True)
        if a.ndim < 2:
            raise ValueError(
                f"{name}: expected an array of shape (..., n, width), got shape {a.shape}"
            )
        arrays[name] = a
    names = list(arrays)
    first_key, first_value = names[0], next(iter(values), None)
    n, d = arrays[first_key].shape[-2:]
    for name in keys:
        if arrays[name].shape[-2:] != (n, d):
            raise ValueError(
                f"{name}: expected shape (..., n, d) = (..., {n}, {d}) like {first_key}, "
                f"got {arrays[name].shape}"
            )
    dv = arrays[first_value].shape[-1] if first_value is not None else 1
    for name in values:
        if arrays[name].shape[-2:] != (n, dv):
            raise ValueError(
                f"{name}: expected shape (..., n, dv) = (..., {n}, {dv}) (n of {first_key}, "
                f"width of {first_value}), got {arrays[name].shape}"
            )
    if n == 0:
        raise ValueError(f"{first_key}: expected at least one query and key (n >= 1), got n = 0")
    if d == 0:
        raise ValueError(f"{first_key}: expected queries and keys of width d >= 1, got d = 0")
    if dv == 0:
        raise ValueError(f"{first_value}: expected values of width >= 1, got width 0")
    try:
        lead = np.broadcast_shapes(*(a.shape[:-2] for a in arrays.values()))
    except ValueError:
        shapes = ", ".join(f"{k} {a.shape[:-2]}" for k, a in arrays.items())
        raise ValueError(f"the leading (batch/head) axes do not broadcast: {shapes}") from None
    flat = []
    for name, a in arrays.items():
        # Broadcasting the batch axes copies: its size is checked before the copy is made.
        full = np.broadcast_to(a, lead + a.shape[-2:])
        flat.append(_contiguous(full, np.float64, name).reshape((-1, *a.shape[-2:])))
    out_dtype = np.float32 if all(a.dtype == np.float32 for a in arrays.values()) else np.float64
    return flat, lead, n, d, dv, out_dtype


def _plan(raw: dict[str, Any], basis: str) -> PolyPlan:
    return PolyPlan(
        logit_range=raw["logit_range"],
        degree=raw["degree"],
        rank=raw["rank"],
        error_bound=raw["error_bound"],
        basis=basis,
        coefficients=raw["coefficients"],
        memory_bytes=raw["memory_bytes"],
    )


def poly_plan(
    logit_range: float,
    d: int,
    *,
    degree: int | None = None,
    tol: float | None = None,
    basis: str = "chebyshev",
    unit_roundoff: float = 2.0**-53,
    bytes_per_rank: float = 0.0,
    memory_limit: float | None = None,
) -> PolyPlan:
    """The polynomial the polynomial method uses for a logit range, without computing attention.

    Parameters
    ----------
    logit_range : float
        Upper bound T >= 0 on ``|s <q, k1, k2>|`` (see :func:`logit_bound`).
    d : int
        Width of queries and keys (the rank is C(d + g, g)).
    degree : int, optional
        The degree g (0 to 32). Without it, the smallest degree whose error bound is at most
        ``tol`` (default :data:`DEFAULT_TOL`).
    tol : float, optional
        Largest acceptable error bound; with ``degree`` too, a check.
    basis : {"chebyshev", "taylor", "minimax"}
        "chebyshev": the interpolant at Chebyshev points (spec default); "taylor": 1 / m!;
        "minimax": a near-minimax fit of the *relative* error, which stays positive at logit
        ranges where the interpolant does not (T >= 3) and needs lower degrees there.
    unit_roundoff : float
        Unit roundoff of the arithmetic that evaluates the expansion (2^-24 for float32).
    bytes_per_rank, memory_limit : float
        Memory the caller's computation needs per unit of rank, and the most it may use.

    Returns
    -------
    PolyPlan

    Raises
    ------
    ValueError
        A tolerance no degree up to 32 reaches (rounding sets a floor that grows with T), a degree
        whose polynomial is not positive on [-T, T], a degree whose bound exceeds ``tol``, or a
        rank that would need more than ``memory_limit`` (the message says how much).

    Examples
    --------
    >>> from genlab.attention import poly_plan
    >>> plan = poly_plan(1.0, 4, tol=1e-4)
    >>> plan.degree, plan.rank, plan.error_bound < 1e-4
    (6, 210, True)
    """
    basis = check_choice(basis, "basis", _BASES)
    degree = None if degree is None else check_int(degree, "degree", minimum=0)
    tol = None if tol is None else _check_positive(tol, "tol")
    if degree is None and tol is None:
        tol = DEFAULT_TOL
    limit = math.inf if memory_limit is None else _check_positive(memory_limit, "memory_limit")
    raw = _core.attention.poly_plan(
        float(logit_range),
        check_int(d, "d", minimum=1),
        degree=degree,
        tol=tol,
        basis=basis,
        unit_roundoff=float(unit_roundoff),
        bytes_per_rank=float(bytes_per_rank),
        memory_limit=limit,
    )
    return _plan(raw, basis)


def logit_bound(Q: ArrayLike, K1: ArrayLike, K2: ArrayLike, *, scale: float | None = None) -> float:
    """Upper bound on the logit range ``max |s <q_i, k1_j, k2_k>|``, in O(n d).

    The smaller of ``|s| sum_l max|q_l| max|k1_l| max|k2_l|`` and
    ``|s| max||q||_3 max||k1||_3 max||k2||_3``, maximized over the batch. The polynomial method's
    error depends on this range, not on d.

    Parameters
    ----------
    Q, K1, K2 : array_like, shape (..., n, d)
        Queries and the two key sets.
    scale : float, optional
        s; default 1 / sqrt(d).

    Examples
    --------
    >>> import numpy as np
    >>> from genlab.attention import logit_bound
    >>> x = np.full((3, 2), 0.5)
    >>> logit_bound(x, x, x, scale=1.0)  # 2 * 0.5**3
    0.25
    """
    (q, k1, k2), _, _, d, _, _ = _prepare({"Q": Q, "K1": K1, "K2": K2}, {})
    return float(_core.attention.logit_bound(q, k1, k2, scale=_check_scale(scale, d)))


def tensor_attention(
    Q: ArrayLike,
    K1: ArrayLike,
    K2: ArrayLike,
    V1: ArrayLike,
    V2: ArrayLike,
    *,
    scale: float | None = None,
    mask: Mask = None,
    method: str = "exact",
    degree: int | None = None,
    tol: float | None = None,
    basis: str = "chebyshev",
    n_jobs: int | None = None,
) -> NDArray[Any]:
    """Tensor (triple-wise) attention: O_i = sum_{j,k} softmax_{(j,k)}(s <q_i, k1_j, k2_k>) v1_j * v2_k.

    Parameters
    ----------
    Q, K1, K2 : array_like, shape (..., n, d)
        Queries and the two key sets. Leading (batch/head) axes broadcast against each other and
        against the values'.
    V1, V2 : array_like, shape (..., n, dv)
        The two value sets (dv may differ from d).
    scale : float, optional
        s; default 1 / sqrt(d) (the theory papers use 1 / d).
    mask : None, "causal" or (w1, w2)
        "causal": j <= i and k <= i. (w1, w2): sliding windows i - w1 < j <= i and
        i - w2 < k <= i (window sizes >= 1; w1 = w2 = n is the causal mask).
    method : {"exact", "poly"}
        "exact": streaming online softmax, parallel over queries, O(n d) extra memory, no
        n x n^2 array, float64 accumulation; O(n^3 (d + dv)) time. "poly": the polynomial method
        (see :func:`tensor_attention_poly`), O(n r dv) time with r = C(d + g, g).
    degree, tol, basis
        Options of the polynomial method (see :func:`tensor_attention_poly`); ``degree`` and
        ``tol`` are errors with ``method="exact"``.
    n_jobs : int, optional
        Threads (None: all cores or ``RAYON_NUM_THREADS``; -1: all cores).

    Returns
    -------
    ndarray, shape (broadcast leading axes..., n, dv)
        float32 when every input is float32, else float64.

    Raises
    ------
    TypeError
        Non-numeric input; a non-integer window or degree.
    ValueError
        Shapes that do not fit, n = 0, d = 0, NaN or infinity, an unknown option, a window < 1,
        a degree < 0, and the polynomial method's refusals (see :func:`tensor_attention_poly`).

    Examples
    --------
    >>> import numpy as np
    >>> from genlab.attention import tensor_attention
    >>> rng = np.random.default_rng(0)
    >>> Q, K1, K2, V1, V2 = (rng.standard_normal((2, 8, 4)) for _ in range(5))
    >>> out = tensor_attention(Q, K1, K2, V1, V2, mask="causal")
    >>> out.shape
    (2, 8, 4)
    >>> # The first query sees only key pair (0, 0).
    >>> bool(np.allclose(out[:, 0], V1[:, 0] * V2[:, 0]))
    True
    """
    check_choice(method, "method", _METHODS)
    if method == "poly":
        return tensor_attention_poly(
            Q,
            K1,
            K2,
            V1,
            V2,
            scale=scale,
            mask=mask,
            degree=degree,
            tol=tol,
            basis=basis,
            n_jobs=n_jobs,
        ).output
    if degree is not None or tol is not None:
        raise ValueError("degree and tol apply to method='poly' only; got method='exact'")
    kind, w1, w2 = tensor_attention_mask(mask)
    (q, k1, k2, v1, v2), lead, n, d, dv, dtype = _prepare(
        {"Q": Q, "K1": K1, "K2": K2}, {"V1": V1, "V2": V2}
    )
    out = _core.attention.tensor_attention_exact(
        q,
        k1,
        k2,
        v1,
        v2,
        scale=_check_scale(scale, d),
        mask=kind,
        w1=w1,
        w2=w2,
        n_jobs=check_n_jobs(n_jobs),
    )
    return out.reshape((*lead, n, dv)).astype(dtype, copy=False)


def tensor_attention_poly(
    Q: ArrayLike,
    K1: ArrayLike,
    K2: ArrayLike,
    V1: ArrayLike,
    V2: ArrayLike,
    *,
    scale: float | None = None,
    mask: Mask = None,
    degree: int | None = None,
    tol: float | None = None,
    basis: str = "chebyshev",
    n_jobs: int | None = None,
) -> PolyAttentionResult:
    """Tensor attention by the polynomial method, with its logit range, degree, rank and error bound.

    exp(t) on [-T, T] (T from :func:`logit_bound`) is replaced by a degree-g polynomial, whose
    multinomial expansion factorizes the n x n^2 weights through r = C(d + g, g) monomials: O(n r dv)
    time, no n^2 object. Masks keep the factorization through running sums, rebuilt at every block
    of queries from per-block totals (long prefix differences lose accuracy).

    Parameters
    ----------
    Q, K1, K2, V1, V2, scale, mask, n_jobs
        As in :func:`tensor_attention`.
    degree : int, optional
        The degree g (0 to 32). Degree 0 gives the uniform average (mean v1) * (mean v2).
    tol : float, optional
        Largest acceptable error bound (per entry, relative to ``max |v1_j * v2_k|``). Without
        ``degree``, the smallest degree that meets it is used; default :data:`DEFAULT_TOL` when
        neither is given.
    basis : {"chebyshev", "taylor", "minimax"}
        Coefficients of p (see :func:`poly_plan`). "minimax" is the most accurate at equal degree
        and the only one positive at low degree once T is about 3 or more.

    Returns
    -------
    PolyAttentionResult
        ``output`` and ``plan`` (``logit_range``, ``degree``, ``rank``, ``error_bound`` are also
        properties of the result).

    Raises
    ------
    ValueError
        As :func:`tensor_attention`; a tolerance out of reach at the inputs' logit range (the
        message gives the best bound and its degree); a degree whose polynomial is not positive
        on the range; a degree whose bound exceeds ``tol``; a rank that would not fit in memory
        (the message says how much it needs).

    Warns
    -----
    NumericalWarning
        With a fixed ``degree`` and no ``tol``, when the error bound exceeds 0.1.

    Examples
    --------
    >>> import numpy as np
    >>> from genlab.attention import tensor_attention, tensor_attention_poly
    >>> rng = np.random.default_rng(0)
    >>> Q, K1, K2 = (rng.uniform(-0.8, 0.8, (64, 4)) for _ in range(3))
    >>> V1, V2 = rng.standard_normal((2, 64, 4))
    >>> res = tensor_attention_poly(Q, K1, K2, V1, V2, tol=1e-6)
    >>> res.degree, res.rank, res.logit_range <= 1.0
    (7, 330, True)
    >>> exact = tensor_attention(Q, K1, K2, V1, V2)
    >>> bool(np.abs(res.output - exact).max() <= res.error_bound * np.abs(V1).max() * np.abs(V2).max())
    True
    """
    basis = check_choice(basis, "basis", _BASES)
    degree = None if degree is None else check_int(degree, "degree", minimum=0)
    tol = None if tol is None else _check_positive(tol, "tol")
    if degree is None and tol is None:
        tol = DEFAULT_TOL
    kind, w1, w2 = tensor_attention_mask(mask)
    (q, k1, k2, v1, v2), lead, n, d, dv, dtype = _prepare(
        {"Q": Q, "K1": K1, "K2": K2}, {"V1": V1, "V2": V2}
    )
    out, raw = _core.attention.tensor_attention_poly(
        q,
        k1,
        k2,
        v1,
        v2,
        scale=_check_scale(scale, d),
        mask=kind,
        w1=w1,
        w2=w2,
        degree=degree,
        tol=tol,
        basis=basis,
        memory_limit=physical_memory(),
        n_jobs=check_n_jobs(n_jobs),
    )
    plan = _plan(raw, basis)
    if tol is None and plan.error_bound > _WARN_BOUND:
        warnings.warn(
            f"tensor_attention_poly: degree {plan.degree} at logit range {plan.logit_range:.3g} "
            f"has error bound {plan.error_bound:.3g} (per entry, relative to max |v1 * v2|); "
            "raise the degree, pass tol, or use method='exact'",
            NumericalWarning,
            stacklevel=2,
        )
    return PolyAttentionResult(out.reshape((*lead, n, dv)).astype(dtype, copy=False), plan)


def attention(
    Q: ArrayLike,
    K: ArrayLike,
    V: ArrayLike,
    *,
    scale: float | None = None,
    mask: str | int | None = None,
    n_jobs: int | None = None,
) -> NDArray[Any]:
    """Ordinary softmax attention softmax(s Q K^T) V by streaming (online) softmax.

    Tensor attention with K2 = 1 and V2 = 1 reduces to this; it is also the baseline.

    Parameters
    ----------
    Q, K : array_like, shape (..., n, d)
        Queries and keys (leading axes broadcast).
    V : array_like, shape (..., n, dv)
        Values.
    scale : float, optional
        s; default 1 / sqrt(d).
    mask : None, "causal" or int
        "causal": keys j <= i; an integer w >= 1: the sliding window i - w < j <= i.
    n_jobs : int, optional
        Threads.

    Returns
    -------
    ndarray, shape (broadcast leading axes..., n, dv)

    Raises
    ------
    TypeError, ValueError
        As :func:`tensor_attention`.

    Examples
    --------
    >>> import numpy as np
    >>> from genlab.attention import attention
    >>> Q = K = np.eye(3)
    >>> V = np.arange(3.0)[:, None]
    >>> attention(Q, K, V, mask="causal")[:, 0].round(4)
    array([0.    , 0.6405, 1.2066])
    """
    kind, window = _attention_mask(mask)
    (q, k, v), lead, n, d, dv, dtype = _prepare({"Q": Q, "K": K}, {"V": V})
    out = _core.attention.attention_exact(
        q,
        k,
        v,
        scale=_check_scale(scale, d),
        mask=kind,
        window=window,
        n_jobs=check_n_jobs(n_jobs),
    )
    return out.reshape((*lead, n, dv)).astype(dtype, copy=False)
