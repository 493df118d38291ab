"""Coding rates and sparse rate reduction over many token groups (CRATE and the SRR measure).

The quantities of the sparse-rate-reduction line of work (Yu et al., "White-Box Transformers via
Sparse Rate Reduction", NeurIPS 2023; Hu et al., "An In-depth Investigation of Sparse Rate
Reduction in Transformer-like Models", NeurIPS 2024), evaluated on many token groups in one call:

- :func:`coding_rate`: R(Z) = 1/2 logdet(I + d/(N eps^2) Z^T Z);
- :func:`compressed_coding_rate`: R^c(Z; U) = sum_k R(Z U_k) with the constant p/(N eps^2), U of
  shape (K, d, p) (K subspaces, or attention heads, of dimension p);
- :func:`compressed_coding_rate_projected`: the same from the projections Z U_k themselves,
  shape (..., K, N, p) (the output of CRATE's qkv projection);
- :func:`rate_reduction`: R - R^c;
- :func:`sparse_rate_reduction`: R - R^c - lam * sparsity, the objective CRATE maximizes;
- :func:`srr_measure`: lam * sparsity + R^c - R, the per-layer measure of Hu et al. (lower is
  better), the negative of :func:`sparse_rate_reduction`;
- :func:`sparsity`: the sparsity term itself.

Conventions, the same in every function here and in :mod:`genlab.torch.rate`:

- **Tokens are rows.** Z has shape (..., N, d): N tokens of d features; the leading axes are batch
  axes (images, layers...), each one an independent group, and are kept in the result.
- **eps is epsilon, not epsilon^2.** The constant is d/(N eps^2). Some peer code (CRATE's
  measurement script, the mcr2 code) passes epsilon^2 under the name ``eps``: their ``eps=0.01`` is
  ``eps=0.1`` here.
- **Sparsity is per token.** ``"l0"``: ||Z||_0 / N, the mean number of nonzero entries of a token
  (between 0 and d); ``"l1"``: ||Z||_1 / N, the mean l1 norm of a token (the differentiable
  relaxation). It is taken on Z as given; ``normalize_tokens`` does not apply to it.
- ``normalize_tokens=True`` scales every token to unit l2 norm before coding it: the rows of Z for
  R, and the rows of every Z U_k (per token, per head) for R^c, CRATE's measurement convention.
  Zero tokens stay zero.

Every log-determinant is the Cholesky factor's (never LU) of the smaller Gram matrix (N x N or
d x d), computed in float64 whatever the input dtype (float32 input is accepted without a float64
copy). If rounding breaks positive definiteness (a huge p/(N eps^2) with nearly low-rank tokens), a
tiny diagonal jitter is added and :class:`genlab.errors.NumericalWarning` is emitted; the result is
never a silent NaN. Groups run in parallel, each factorization sequentially, with the GIL released.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from genlab import _core
from genlab._options import SPARSITY_KINDS, check_eps
from genlab._validation import (
    as_float_array,
    check_bool,
    check_choice,
    check_n_jobs,
    check_real,
)
from genlab.errors import NumericalWarning

__all__ = [
    "coding_rate",
    "compressed_coding_rate",
    "compressed_coding_rate_projected",
    "rate_reduction",
    "sparse_rate_reduction",
    "sparsity",
    "srr_measure",
]

# Accepted ``sparsity`` / ``kind`` values and the eps reminder, shared with genlab.torch.rate.


def _tokens(Z: ArrayLike, name: str, min_ndim: int) -> NDArray[Any]:
    """``Z`` as a C-contiguous float64 or float32 array with at least ``min_ndim`` axes and no
    empty token or feature axis."""
    arr = as_float_array(Z, name, allow_float32=True)
    if arr.ndim < min_ndim:
        layout = "(..., N, d)" if min_ndim == 2 else "(..., K, N, p)"
        raise ValueError(
            f"{name}: expected an array of shape {layout} with at least {min_ndim} axes, "
            f"got shape {arr.shape}"
        )
    if 0 in arr.shape[-min_ndim:]:
        raise ValueError(
            f"{name}: expected at least one token and one feature (and one head), got shape "
            f"{arr.shape}"
        )
    return arr


def _as_groups(Z: NDArray[Any], group_ndim: int = 2) -> NDArray[Any]:
    """(..., N, d) -> (groups, N, d) (or the last ``group_ndim`` axes likewise) without a copy."""
    return Z.reshape((-1, *Z.shape[-group_ndim:]))


def _subspaces(U: ArrayLike, d: int) -> NDArray[np.float64]:
    arr = as_float_array(U, "U")
    if arr.ndim != 3:
        raise ValueError(
            f"U: expected an array of shape (K, d, p) (K subspaces of dimension p), got shape {arr.shape}"
        )
    if arr.shape[1] != d:
        raise ValueError(
            f"U: expected shape (K, d, p) with d = {d} (the last axis of Z), got shape {arr.shape}"
        )
    if 0 in arr.shape:
        raise ValueError(f"U: expected K >= 1 and p >= 1, got shape {arr.shape}")
    return arr


def _rates(
    core_fn: Any,
    fn: str,
    Z: ArrayLike,
    eps: float,
    normalize_tokens: bool,
    n_jobs: int | None,
    *,
    subspaces: tuple[ArrayLike, ...] = (),
    name: str = "Z",
    group_ndim: int = 2,
    **options: Any,
) -> NDArray[np.float64]:
    """Validates eps, the tokens ``Z`` (called ``name``, groups of ``group_ndim`` axes) and, for
    the functions that take them, the ``subspaces`` (U,); runs the kernel ``core_fn`` of the public
    function ``fn``, and returns its values in the batch shape, with a warning (pointed at the
    caller of ``fn``) when factorizations were jittered."""
    eps = check_eps(eps)
    Za = _tokens(Z, name, group_ndim)
    values, jittered = core_fn(
        _as_groups(Za, group_ndim),
        *(_subspaces(U, Za.shape[-1]) for U in subspaces),
        eps=eps,
        normalize_tokens=check_bool(normalize_tokens, "normalize_tokens"),
        n_jobs=check_n_jobs(n_jobs),
        **options,
    )
    if jittered:
        warnings.warn(
            f"{fn}: rounding broke the positive definiteness of I + a G in {jittered} "
            "factorization(s); a tiny diagonal jitter was added there. Such groups have nearly "
            "low-rank tokens with a very large d/(N eps^2): consider a larger eps or "
            "normalize_tokens=True.",
            NumericalWarning,
            stacklevel=3,
        )
    result: NDArray[np.float64] = values.reshape(Za.shape[:-group_ndim])
    return result


def _sparsity_options(lam: float, sparsity: str) -> dict[str, Any]:
    check_choice(sparsity, "sparsity", SPARSITY_KINDS)
    return {"lam": check_real(lam, "lam", nonnegative=True), "sparsity": sparsity}


def coding_rate(
    Z: ArrayLike, *, eps: float, normalize_tokens: bool = False, n_jobs: int | None = None
) -> NDArray[np.float64]:
    """Coding rate R(Z) = 1/2 logdet(I + d/(N eps^2) Z^T Z) of every token group.

    Computed through the smaller Gram side: 1/2 logdet(I + d/(N eps^2) Z Z^T) when N < d (the two
    are equal by Sylvester's determinant identity).

    Parameters
    ----------
    Z : array_like, shape (..., N, d)
        N tokens (rows) of d features per group; leading axes are batch axes. float64, or float32
        (computed in float64).
    eps : float
        The distortion epsilon > 0, **not** epsilon^2 (code that passes epsilon^2 as ``eps``, such
        as CRATE's measurement script, means ``eps=sqrt(their_eps)`` here).
    normalize_tokens : bool
        Scale every token to unit l2 norm first (zero tokens stay zero).
    n_jobs : int, optional
        Threads (None: all cores or ``RAYON_NUM_THREADS``; -1: all cores).

    Returns
    -------
    ndarray of float64, shape (...)
        R of every group (0-d for a single group). R >= 0.

    Raises
    ------
    TypeError
        Non-numeric ``Z``, or an ``eps`` that is not a real number.
    ValueError
        Fewer than 2 axes, N or d of zero, NaN or infinity in ``Z``, ``eps <= 0``, a Gram matrix
        that overflows float64.

    Warns
    -----
    NumericalWarning
        When a factorization needed a diagonal jitter.

    Examples
    --------
    >>> import numpy as np
    >>> from genlab.rate import coding_rate
    >>> Z = np.eye(4, 2)                 # 4 tokens, 2 features: two unit tokens, two zeros
    >>> r = coding_rate(Z, eps=1.0)     # 1/2 logdet(I + 2/4 Z^T Z) = log(1.5)
    >>> round(float(r), 12), round(float(np.log(1.5)), 12)
    (0.405465108108, 0.405465108108)
    >>> coding_rate(np.zeros((3, 4, 2)), eps=0.5).shape
    (3,)
    """
    return _rates(_core.rate.coding_rate, "coding_rate", Z, eps, normalize_tokens, n_jobs)


def compressed_coding_rate(
    Z: ArrayLike,
    U: ArrayLike,
    *,
    eps: float,
    normalize_tokens: bool = False,
    n_jobs: int | None = None,
) -> NDArray[np.float64]:
    """Compressed coding rate R^c(Z; U) = sum_k 1/2 logdet(I + p/(N eps^2) (Z U_k)^T (Z U_k)).

    The coding rate of Z against K subspaces U_1..U_K of dimension p: the sum over k of the coding
    rate of the projected tokens Z U_k, with the constant p/(N eps^2) (p, the dimension of the coded
    matrix, not d). The projections are computed on the fly, one (group, subspace) pair at a time;
    use :func:`compressed_coding_rate_projected` when you already hold them.

    Parameters
    ----------
    Z : array_like, shape (..., N, d)
        Tokens, as in :func:`coding_rate`.
    U : array_like, shape (K, d, p)
        The subspaces (in CRATE: the per-head slices of the qkv projection, U_k = W[:, k p:(k+1) p]).
        Not required to be orthonormal.
    eps : float
        Epsilon, not epsilon^2 (see :func:`coding_rate`).
    normalize_tokens : bool
        Scale every projected token (each row of each Z U_k) to unit l2 norm first.
    n_jobs : int, optional
        Threads.

    Returns
    -------
    ndarray of float64, shape (...)
        R^c of every group.

    Raises
    ------
    TypeError
        Non-numeric input, or a non-real ``eps``.
    ValueError
        Wrong number of axes, d of Z and U that differ, an empty axis, NaN or infinity, ``eps <= 0``.

    Warns
    -----
    NumericalWarning
        When a factorization needed a diagonal jitter.

    Examples
    --------
    >>> import numpy as np
    >>> from genlab.rate import coding_rate, compressed_coding_rate
    >>> Z = np.random.default_rng(0).normal(size=(10, 4))
    >>> U = np.stack([np.eye(4)[:, :2], np.eye(4)[:, 2:]])   # two 2-D coordinate subspaces
    >>> rc = compressed_coding_rate(Z, U, eps=0.5)
    >>> bool(np.isclose(rc, coding_rate(Z[:, :2], eps=0.5) + coding_rate(Z[:, 2:], eps=0.5)))
    True
    """
    return _rates(
        _core.rate.compressed_coding_rate,
        "compressed_coding_rate",
        Z,
        eps,
        normalize_tokens,
        n_jobs,
        subspaces=(U,),
    )


def compressed_coding_rate_projected(
    ZU: ArrayLike, *, eps: float, normalize_tokens: bool = False, n_jobs: int | None = None
) -> NDArray[np.float64]:
    """Compressed coding rate from already-projected tokens: sum over heads of their coding rates.

    ``ZU[..., k, :, :]`` is Z U_k, shape (N, p); the result is
    sum_k 1/2 logdet(I + p/(N eps^2) (Z U_k)^T (Z U_k)), equal to :func:`compressed_coding_rate` of
    Z and U. This is the form CRATE's authors measure: hook the qkv projection of a layer (shape
    (B, K, N, p), class token included), optionally with ``normalize_tokens=True``; the mean and
    standard deviation over the B images are then ``out.mean()`` and ``out.std()``.

    Parameters
    ----------
    ZU : array_like, shape (..., K, N, p)
        K heads of N projected tokens of dimension p per group. float64 or float32.
    eps : float
        Epsilon, not epsilon^2 (see :func:`coding_rate`).
    normalize_tokens : bool
        Scale every token of every head to unit l2 norm first.
    n_jobs : int, optional
        Threads.

    Returns
    -------
    ndarray of float64, shape (...)
        R^c of every group (the head axis is summed).

    Raises
    ------
    TypeError
        Non-numeric input, or a non-real ``eps``.
    ValueError
        Fewer than 3 axes, K, N or p of zero, NaN or infinity, ``eps <= 0``.

    Warns
    -----
    NumericalWarning
        When a factorization needed a diagonal jitter.

    Examples
    --------
    >>> import numpy as np
    >>> from genlab.rate import compressed_coding_rate, compressed_coding_rate_projected
    >>> rng = np.random.default_rng(0)
    >>> Z, U = rng.normal(size=(8, 5, 6)), rng.normal(size=(3, 6, 2))
    >>> ZU = np.einsum("bnd,kdp->bknp", Z, U)
    >>> bool(np.allclose(compressed_coding_rate_projected(ZU, eps=0.5),
    ...                  compressed_coding_rate(Z, U, eps=0.5)))
    True
    """
    return _rates(
        _core.rate.compressed_coding_rate_projected,
        "compressed_coding_rate_projected",
        ZU,
        eps,
        normalize_tokens,
        n_jobs,
        name="ZU",
        group_ndim=3,
    )


def rate_reduction(
    Z: ArrayLike,
    U: ArrayLike,
    *,
    eps: float,
    normalize_tokens: bool = False,
    n_jobs: int | None = None,
) -> NDArray[np.float64]:
    """Rate reduction R(Z) - R^c(Z; U) of every token group.

    Arguments as in :func:`compressed_coding_rate`; ``normalize_tokens`` normalizes the rows of Z
    for R and the rows of every Z U_k for R^c.

    Returns
    -------
    ndarray of float64, shape (...)
        R - R^c of every group.

    Examples
    --------
    >>> import numpy as np
    >>> from genlab.rate import coding_rate, compressed_coding_rate, rate_reduction
    >>> rng = np.random.default_rng(1)
    >>> Z, U = rng.normal(size=(16, 6)), rng.normal(size=(2, 6, 3))
    >>> dr = rate_reduction(Z, U, eps=0.5)
    >>> bool(np.isclose(dr, coding_rate(Z, eps=0.5) - compressed_coding_rate(Z, U, eps=0.5)))
    True
    """
    return _rates(
        _core.rate.rate_reduction,
        "rate_reduction",
        Z,
        eps,
        normalize_tokens,
        n_jobs,
        subspaces=(U,),
    )


def sparse_rate_reduction(
    Z: ArrayLike,
    U: ArrayLike,
    *,
    eps: float,
    lam: float,
    sparsity: str = "l0",
    normalize_tokens: bool = False,
    n_jobs: int | None = None,
) -> NDArray[np.float64]:
    """Sparse rate reduction R(Z) - R^c(Z; U) - lam * sparsity(Z), the objective CRATE maximizes.

    Parameters
    ----------
    Z, U, eps, normalize_tokens, n_jobs
        As in :func:`rate_reduction`.
    lam : float
        Weight (>= 0) of the sparsity term.
    sparsity : {"l0", "l1"}
        "l0": ||Z||_0 / N, nonzero entries per token; "l1": ||Z||_1 / N, l1 norm per token. Both are
        per token, on Z as given (see :func:`sparsity`).

    Returns
    -------
    ndarray of float64, shape (...)
        The objective for every group (higher is better).

    Raises
    ------
    TypeError
        Non-numeric input, a non-real ``eps`` or ``lam``.
    ValueError
        As :func:`rate_reduction`, plus ``lam < 0`` and an unknown ``sparsity``.

    Examples
    --------
    >>> import numpy as np
    >>> from genlab.rate import rate_reduction, sparse_rate_reduction
    >>> Z = np.maximum(np.random.default_rng(2).normal(size=(16, 6)), 0.0)   # ReLU: sparse
    >>> U = np.random.default_rng(3).normal(size=(2, 6, 3))
    >>> srr = sparse_rate_reduction(Z, U, eps=0.5, lam=0.1)
    >>> l0 = np.count_nonzero(Z) / 16
    >>> bool(np.isclose(srr, rate_reduction(Z, U, eps=0.5) - 0.1 * l0))
    True
    """
    options = _sparsity_options(lam, sparsity)
    return _rates(
        _core.rate.sparse_rate_reduction,
        "sparse_rate_reduction",
        Z,
        eps,
        normalize_tokens,
        n_jobs,
        subspaces=(U,),
        **options,
    )


def srr_measure(
    Z: ArrayLike,
    U: ArrayLike,
    *,
    eps: float,
    lam: float = 1.0,
    sparsity: str = "l0",
    normalize_tokens: bool = False,
    n_jobs: int | None = None,
) -> NDArray[np.float64]:
    """The per-layer SRR measure of Hu et al. (2024): lam * sparsity(Z) + R^c(Z; U) - R(Z).

    With the default ``lam=1`` and ``sparsity="l0"`` it is the paper's ||Z||_0 + R^c - R, with
    ||Z||_0 taken per token (see :func:`sparsity`). Lower is better; it is exactly
    ``-sparse_rate_reduction(Z, U, eps=eps, lam=lam, sparsity=sparsity)``.

    Parameters
    ----------
    Z, U, eps, normalize_tokens, n_jobs
        As in :func:`rate_reduction`; for a layer of CRATE, Z is the layer's output tokens and U
        its subspaces.
    lam : float
        Weight (>= 0) of the sparsity term; 1 in the paper.
    sparsity : {"l0", "l1"}
        Which sparsity, as in :func:`sparse_rate_reduction`.

    Returns
    -------
    ndarray of float64, shape (...)
        The measure for every group.

    Examples
    --------
    >>> import numpy as np
    >>> from genlab.rate import sparse_rate_reduction, srr_measure
    >>> Z = np.maximum(np.random.default_rng(2).normal(size=(16, 6)), 0.0)
    >>> U = np.random.default_rng(3).normal(size=(2, 6, 3))
    >>> bool(srr_measure(Z, U, eps=0.5) == -sparse_rate_reduction(Z, U, eps=0.5, lam=1.0))
    True
    """
    options = _sparsity_options(lam, sparsity)
    return _rates(
        _core.rate.srr_measure,
        "srr_measure",
        Z,
        eps,
        normalize_tokens,
        n_jobs,
        subspaces=(U,),
        **options,
    )


def sparsity(Z: ArrayLike, *, kind: str = "l0", n_jobs: int | None = None) -> NDArray[np.float64]:
    """Sparsity of every token group, normalized per token: the term of the SRR objective.

    ``kind="l0"``: ||Z||_0 / N, the mean number of entries different from zero per token (between
    0 and d); ``kind="l1"``: ||Z||_1 / N, the mean l1 norm of a token. The same normalization is
    used by :func:`sparse_rate_reduction` and :func:`srr_measure`.

    Parameters
    ----------
    Z : array_like, shape (..., N, d)
        Tokens, as in :func:`coding_rate`.
    kind : {"l0", "l1"}
        Which norm.
    n_jobs : int, optional
        Threads.

    Returns
    -------
    ndarray of float64, shape (...)

    Examples
    --------
    >>> import numpy as np
    >>> from genlab.rate import sparsity
    >>> Z = np.array([[1.0, 0.0, -2.0], [0.0, 0.0, 3.0]])
    >>> float(sparsity(Z)), float(sparsity(Z, kind="l1"))
    (1.5, 3.0)
    """
    check_choice(kind, "kind", SPARSITY_KINDS)
    Za = _tokens(Z, "Z", 2)
    values = _core.rate.sparsity(_as_groups(Za), kind=kind, n_jobs=check_n_jobs(n_jobs))
    return values.reshape(Za.shape[:-2])
