"""Differentiable coding rates and sparse rate reduction on torch tensors (CPU and CUDA).

The functions of :mod:`genlab.rate`, with the same names, arguments and conventions, on torch
tensors and differentiable with autograd: use them as a regularizer (SRR), or to measure a model
layer by layer without leaving torch. Read :mod:`genlab.rate` for the definitions; in short, with
tokens as rows (Z of shape (..., N, d), leading axes batch axes kept in the result):

- :func:`coding_rate`: R(Z) = 1/2 logdet(I + d/(N eps^2) Z^T Z);
- :func:`compressed_coding_rate` (Z and U of shape (K, d, p)) and
  :func:`compressed_coding_rate_projected` (ZU of shape (..., K, N, p)):
  R^c = sum_k 1/2 logdet(I + p/(N eps^2) (Z U_k)^T (Z U_k));
- :func:`rate_reduction`: R - R^c; :func:`sparse_rate_reduction`: R - R^c - lam * sparsity (CRATE's
  objective, to maximize); :func:`srr_measure`: lam * sparsity + R^c - R (Hu et al.'s per-layer
  measure, lower is better); :func:`sparsity`: ||Z||_0 / N or ||Z||_1 / N (per token).
- ``eps`` is epsilon, not epsilon^2.

Numerics. Each log-determinant is 2 sum log L_ii of the Cholesky factor L of I + a G, G the smaller
Gram matrix, from ``torch.linalg.cholesky_ex`` (never ``torch.logdet``, whose LU returns NaN or -inf
on such matrices). The gradient is the closed form d/dX 1/2 logdet(I + a X^T X) = a X (I + a X^T
X)^{-1}, applied with ``torch.cholesky_solve`` on the saved factor; double backward (``create_graph``)
is supported. The Gram matrices and factorizations are computed in ``compute_dtype`` (float64 by
default, as in :mod:`genlab.rate`; pass ``torch.float32`` for speed on a GPU in training), and the
result is returned in the dtype of the input. If rounding breaks positive definiteness, the affected
groups get a tiny diagonal jitter (the rule of the Rust kernel) and
:class:`genlab.errors.NumericalWarning` is emitted; the result is never a silent NaN.

On CPU, in float64 compute, when no gradient is needed (``torch.no_grad()``, or inputs that do not
require grad), the functions call the Rust kernels of :mod:`genlab.rate`, which are several times
faster than batched torch linear algebra; the values agree to rounding (1e-10 or better).

Every function checks its input: a ``TypeError`` for a non-tensor or non-floating tensor, a
``ValueError`` for a wrong shape, an empty token or feature axis, NaN or infinity, tensors on
different devices, or a bad option. The finiteness and jitter checks each read one flag back from
the device (a synchronization on CUDA).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from genlab import _core
from genlab import rate as _np_rate
from genlab._options import SPARSITY_KINDS, check_eps
from genlab._validation import check_bool, check_choice, check_real
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

_COMPUTE_DTYPES = (torch.float32, torch.float64)


# --------------------------------------------------------------------------------------------
# Input checks


def _check_tensor(x: object, name: str, min_ndim: int, layout: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor, got dtype {x.dtype}")
    if x.ndim < min_ndim:
        raise ValueError(
            f"{name}: expected a tensor of shape {layout} with at least {min_ndim} axes, "
            f"got shape {tuple(x.shape)}"
        )
    if 0 in x.shape[-min_ndim:]:
        raise ValueError(
            f"{name}: expected non-empty axes {layout} (ignoring the batch axes), got shape "
            f"{tuple(x.shape)}"
        )
    finite = torch.isfinite(x.detach())
    if not bool(finite.all()):
        index = int(torch.nonzero(~finite.reshape(-1))[0, 0])
        raise ValueError(
            f"{name}: contains NaN or infinity (first at flat index {index}); all values must be finite"
        )
    return x


def _check_subspaces(U: object, Z: Tensor) -> Tensor:
    U = _check_tensor(U, "U", 3, "(K, d, p)")
    if U.ndim != 3 or U.shape[1] != Z.shape[-1]:
        raise ValueError(
            f"U: expected shape (K, d, p) with d = {Z.shape[-1]} (the last axis of Z), "
            f"got shape {tuple(U.shape)}"
        )
    if U.device != Z.device:
        raise ValueError(f"U: expected a tensor on Z's device ({Z.device}), got {U.device}")
    return U


def _check_pair(Z: object, U: object) -> tuple[Tensor, Tensor, torch.dtype]:
    """Checked Z and U, and the dtype of the result (theirs, promoted)."""
    Z = _check_tensor(Z, "Z", 2, "(..., N, d)")
    U = _check_subspaces(U, Z)
    return Z, U, torch.promote_types(Z.dtype, U.dtype)


def _check_compute_dtype(compute_dtype: object) -> torch.dtype:
    if not isinstance(compute_dtype, torch.dtype) or compute_dtype not in _COMPUTE_DTYPES:
        raise ValueError(
            f"compute_dtype: expected torch.float64 or torch.float32, got {compute_dtype!r}"
        )
    return compute_dtype


def _eps(eps: object) -> float:
    return check_eps(eps)


def _lam(lam: object) -> float:
    return check_real(lam, "lam", nonnegative=True)


# --------------------------------------------------------------------------------------------
# The Rust fast path


def _use_rust(compute_dtype: torch.dtype, *tensors: Tensor) -> bool:
    """Whether to call the Rust kernels: CPU, float64 compute, and no gradient to track."""
    needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in tensors)
    return (
        compute_dtype == torch.float64
        and not needs_grad
        and all(t.device.type == "cpu" and t.dtype in _COMPUTE_DTYPES for t in tensors)
    )


def _numpy(x: Tensor) -> np.ndarray[Any, Any]:
    return x.detach().numpy()


def _tensor(values: np.ndarray[Any, Any], dtype: torch.dtype) -> Tensor:
    return torch.tensor(values, dtype=dtype)


def _run(
    rust_kernel: Callable[..., np.ndarray[Any, Any]],
    torch_formula: Callable[..., Tensor],
    tensors: tuple[Tensor, ...],
    dtype: torch.dtype,
    compute_dtype: torch.dtype,
    **options: Any,
) -> Tensor:
    """``rust_kernel`` (the :mod:`genlab.rate` function of the same name) on the checked
    ``tensors`` when the fast path applies, else the differentiable ``torch_formula`` on them in
    ``compute_dtype``; the result in ``dtype``."""
    if _use_rust(compute_dtype, *tensors):
        return _tensor(rust_kernel(*(_numpy(t) for t in tensors), **options), dtype)
    return torch_formula(*(t.to(compute_dtype) for t in tensors), **options).to(dtype)


# --------------------------------------------------------------------------------------------
# 1/2 logdet(I + a G) with its closed-form gradient


def _shifted_gram(X: Tensor, a: float) -> Tensor:
    """I + a G, G = X^T X when X (..., n, m) has m <= n, else X X^T."""
    n, m = X.shape[-2:]
    gram = X.mT @ X if m <= n else X @ X.mT
    eye = torch.eye(gram.shape[-1], dtype=X.dtype, device=X.device)
    return eye + a * gram


def _cholesky_shifted_gram(X: Tensor, a: float, *, warn: bool) -> Tensor:
    """Cholesky factor of I + a G for every group of X (groups, n, m), with the jitter fallback."""
    M = _shifted_gram(X, a)
    L: Tensor
    L, info = torch.linalg.cholesky_ex(M)
    failed = info != 0
    if not bool(failed.any()):
        return L
    side = M.shape[-1]
    max_diag = M.diagonal(dim1=-2, dim2=-1).amax(-1)
    if not bool(torch.isfinite(max_diag).all()):
        raise ValueError(
            "Z: the Gram matrix of a group overflows "
            f"{X.dtype} (a = {a:e}); rescale the tokens, use a larger eps, or compute_dtype=torch.float64"
        )
    eye = torch.eye(side, dtype=M.dtype, device=M.device)
    todo = torch.nonzero(failed).reshape(-1)
    jittered = int(todo.numel())
    machine_eps = torch.finfo(M.dtype).eps
    # The Rust kernel's schedule, read from it (one home): delta = scale(t) * max_i M_ii.
    for attempt in range(_core.rate.JITTER_TRIES):
        delta = _core.rate.jitter_scale(side, machine_eps, attempt) * max_diag[todo]
        L_j, info_j = torch.linalg.cholesky_ex(M[todo] + delta[:, None, None] * eye)
        ok = info_j == 0
        L = L.index_put((todo[ok],), L_j[ok])
        todo = todo[~ok]
        if todo.numel() == 0:
            if warn:
                _warn_jitter(jittered)
            return L
    raise ValueError(
        f"I + a G of a {side} x {side} Gram matrix (a = {a:e}) is not positive definite even with "
        "a diagonal jitter; rescale the tokens or use a larger eps"
    )


def _warn_jitter(count: int) -> None:
    warnings.warn(
        f"rounding broke the positive definiteness of I + a G in {count} factorization(s); a tiny "
        "diagonal jitter was added there. Such groups have nearly low-rank tokens with a very large "
        "d/(N eps^2): consider a larger eps or normalize_tokens=True.",
        NumericalWarning,
        stacklevel=2,
    )


def _half_logdet_grad(X: Tensor, L: Tensor, a: float) -> Tensor:
    """d/dX of 1/2 logdet(I + a G): a X (I + a X^T X)^{-1} = a (I + a X X^T)^{-1} X."""
    n, m = X.shape[-2:]
    if m <= n:
        return a * torch.cholesky_solve(X.mT, L).mT
    return a * torch.cholesky_solve(X, L)


class _HalfLogdetShiftedGram(torch.autograd.Function):
    """1/2 logdet(I + a G) of every group of X (groups, n, m), by Cholesky of the smaller side."""

    @staticmethod
    def forward(ctx: Any, X: Tensor, a: float) -> Tensor:
        L = _cholesky_shifted_gram(X, a, warn=True)
        ctx.save_for_backward(X, L)
        ctx.a = a
        return torch.log(L.diagonal(dim1=-2, dim2=-1)).sum(-1)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        X, L = ctx.saved_tensors
        if torch.is_grad_enabled():
            # create_graph: the gradient must itself be differentiable in X, so the factor is
            # rebuilt inside the graph rather than taken as a constant.
            L = _cholesky_shifted_gram(X, ctx.a, warn=False)
        return grad[:, None, None] * _half_logdet_grad(X, L, ctx.a), None


def _half_logdet(X: Tensor, a: float) -> Tensor:
    """1/2 logdet(I + a G) of every matrix of X (..., n, m), shape (...)."""
    groups = X.reshape(-1, *X.shape[-2:])
    out: Tensor = _HalfLogdetShiftedGram.apply(groups, a)
    return out.reshape(X.shape[:-2])


def _normalize_rows(X: Tensor) -> Tensor:
    """Every row (token) scaled to unit l2 norm; zero rows stay zero."""
    norm = torch.linalg.vector_norm(X, dim=-1, keepdim=True)
    return X / torch.where(norm > 0, norm, torch.ones_like(norm))


def _coding_rate(Z: Tensor, eps: float, normalize_tokens: bool) -> Tensor:
    n, d = Z.shape[-2:]
    X = _normalize_rows(Z) if normalize_tokens else Z
    return _half_logdet(X, d / (n * eps * eps))


def _compressed_coding_rate_projected(ZU: Tensor, eps: float, normalize_tokens: bool) -> Tensor:
    n, p = ZU.shape[-2:]
    X = _normalize_rows(ZU) if normalize_tokens else ZU
    return _half_logdet(X, p / (n * eps * eps)).sum(-1)


def _project(Z: Tensor, U: Tensor) -> Tensor:
    """Z (..., N, d) and U (K, d, p) -> Z U_k stacked as (..., K, N, p)."""
    return torch.einsum("...nd,kdp->...knp", Z, U)


def _compressed_coding_rate(Z: Tensor, U: Tensor, eps: float, normalize_tokens: bool) -> Tensor:
    return _compressed_coding_rate_projected(_project(Z, U), eps, normalize_tokens)


def _rate_reduction(Z: Tensor, U: Tensor, eps: float, normalize_tokens: bool) -> Tensor:
    return _coding_rate(Z, eps, normalize_tokens) - _compressed_coding_rate(
        Z, U, eps, normalize_tokens
    )


def _sparsity(Z: Tensor, kind: str) -> Tensor:
    n = Z.shape[-2]
    if kind == "l0":
        return (Z != 0).sum(dim=(-2, -1)).to(Z.dtype) / n
    return Z.abs().sum(dim=(-2, -1)) / n


def _sparse_rate_reduction(
    Z: Tensor, U: Tensor, eps: float, lam: float, sparsity: str, normalize_tokens: bool
) -> Tensor:
    return _rate_reduction(Z, U, eps, normalize_tokens) - lam * _sparsity(Z, sparsity)


def _srr_measure(
    Z: Tensor, U: Tensor, eps: float, lam: float, sparsity: str, normalize_tokens: bool
) -> Tensor:
    return -_sparse_rate_reduction(Z, U, eps, lam, sparsity, normalize_tokens)


# --------------------------------------------------------------------------------------------
# Public functions


def coding_rate(
    Z: Tensor,
    *,
    eps: float,
    normalize_tokens: bool = False,
    compute_dtype: torch.dtype = torch.float64,
) -> Tensor:
    """Coding rate R(Z) = 1/2 logdet(I + d/(N eps^2) Z^T Z) of every token group, differentiable.

    Parameters
    ----------
    Z : Tensor, shape (..., N, d)
        N tokens (rows) of d features per group; leading axes are batch axes. Any floating dtype,
        CPU or CUDA.
    eps : float
        The distortion epsilon > 0, **not** epsilon^2.
    normalize_tokens : bool
        Scale every token to unit l2 norm first (zero tokens stay zero).
    compute_dtype : torch.float64 or torch.float32
        Precision of the Gram matrices and factorizations.

    Returns
    -------
    Tensor, shape (...), dtype of Z
        R of every group, differentiable in Z.

    Examples
    --------
    >>> import torch
    >>> from genlab.torch.rate import coding_rate
    >>> Z = torch.randn(8, 65, 64, dtype=torch.float64, requires_grad=True)
    >>> R = coding_rate(Z, eps=0.5)
    >>> R.shape
    torch.Size([8])
    >>> R.sum().backward()
    >>> Z.grad.shape
    torch.Size([8, 65, 64])
    """
    eps = _eps(eps)
    compute_dtype = _check_compute_dtype(compute_dtype)
    Z = _check_tensor(Z, "Z", 2, "(..., N, d)")
    return _run(
        _np_rate.coding_rate,
        _coding_rate,
        (Z,),
        Z.dtype,
        compute_dtype,
        eps=eps,
        normalize_tokens=check_bool(normalize_tokens, "normalize_tokens"),
    )


def compressed_coding_rate(
    Z: Tensor,
    U: Tensor,
    *,
    eps: float,
    normalize_tokens: bool = False,
    compute_dtype: torch.dtype = torch.float64,
) -> Tensor:
    """Compressed coding rate R^c(Z; U) = sum_k 1/2 logdet(I + p/(N eps^2) (Z U_k)^T (Z U_k)).

    Parameters
    ----------
    Z : Tensor, shape (..., N, d)
        Tokens.
    U : Tensor, shape (K, d, p)
        The subspaces (in CRATE, the per-head slices of the qkv projection), on Z's device.
        Differentiable too.
    eps : float
        Epsilon, not epsilon^2.
    normalize_tokens : bool
        Scale every projected token (each row of each Z U_k) to unit l2 norm first.
    compute_dtype : torch.float64 or torch.float32
        Precision of the projection, Gram matrices and factorizations.

    Returns
    -------
    Tensor, shape (...), dtype of Z and U promoted
        R^c of every group.

    Examples
    --------
    >>> import torch
    >>> from genlab.torch.rate import compressed_coding_rate
    >>> Z = torch.randn(4, 65, 384)
    >>> U = torch.linalg.qr(torch.randn(384, 384)).Q.reshape(384, 6, 64).permute(1, 0, 2)
    >>> compressed_coding_rate(Z, U, eps=0.5).shape
    torch.Size([4])
    """
    eps = _eps(eps)
    compute_dtype = _check_compute_dtype(compute_dtype)
    Z, U, dtype = _check_pair(Z, U)
    return _run(
        _np_rate.compressed_coding_rate,
        _compressed_coding_rate,
        (Z, U),
        dtype,
        compute_dtype,
        eps=eps,
        normalize_tokens=check_bool(normalize_tokens, "normalize_tokens"),
    )


def compressed_coding_rate_projected(
    ZU: Tensor,
    *,
    eps: float,
    normalize_tokens: bool = False,
    compute_dtype: torch.dtype = torch.float64,
) -> Tensor:
    """Compressed coding rate from already-projected tokens ZU (..., K, N, p), heads summed.

    ``ZU[..., k, :, :]`` is Z U_k; the result is sum_k 1/2 logdet(I + p/(N eps^2) (Z U_k)^T
    (Z U_k)). In CRATE this is the output of a layer's qkv projection, reshaped to (B, K, N, p).

    Parameters
    ----------
    ZU : Tensor, shape (..., K, N, p)
        Projected tokens.
    eps : float
        Epsilon, not epsilon^2.
    normalize_tokens : bool
        Scale every token of every head to unit l2 norm first (CRATE's measurement convention).
    compute_dtype : torch.float64 or torch.float32
        Precision of the Gram matrices and factorizations.

    Returns
    -------
    Tensor, shape (...), dtype of ZU

    Examples
    --------
    >>> import torch
    >>> from genlab.torch.rate import compressed_coding_rate_projected
    >>> qkv = torch.randn(16, 6, 65, 64)          # (B, K, N, p)
    >>> rc = compressed_coding_rate_projected(qkv, eps=0.5, normalize_tokens=True)
    >>> rc.shape
    torch.Size([16])
    """
    eps = _eps(eps)
    compute_dtype = _check_compute_dtype(compute_dtype)
    ZU = _check_tensor(ZU, "ZU", 3, "(..., K, N, p)")
    return _run(
        _np_rate.compressed_coding_rate_projected,
        _compressed_coding_rate_projected,
        (ZU,),
        ZU.dtype,
        compute_dtype,
        eps=eps,
        normalize_tokens=check_bool(normalize_tokens, "normalize_tokens"),
    )


def rate_reduction(
    Z: Tensor,
    U: Tensor,
    *,
    eps: float,
    normalize_tokens: bool = False,
    compute_dtype: torch.dtype = torch.float64,
) -> Tensor:
    """Rate reduction R(Z) - R^c(Z; U) of every token group, differentiable in Z and U.

    Arguments as in :func:`compressed_coding_rate`; ``normalize_tokens`` normalizes the rows of Z
    for R and the rows of every Z U_k for R^c.

    Examples
    --------
    >>> import torch
    >>> from genlab.torch.rate import rate_reduction
    >>> Z, U = torch.randn(4, 32, 12), torch.randn(3, 12, 4)
    >>> rate_reduction(Z, U, eps=0.5).shape
    torch.Size([4])
    """
    eps = _eps(eps)
    compute_dtype = _check_compute_dtype(compute_dtype)
    Z, U, dtype = _check_pair(Z, U)
    return _run(
        _np_rate.rate_reduction,
        _rate_reduction,
        (Z, U),
        dtype,
        compute_dtype,
        eps=eps,
        normalize_tokens=check_bool(normalize_tokens, "normalize_tokens"),
    )


def sparse_rate_reduction(
    Z: Tensor,
    U: Tensor,
    *,
    eps: float,
    lam: float,
    sparsity: str = "l0",
    normalize_tokens: bool = False,
    compute_dtype: torch.dtype = torch.float64,
) -> Tensor:
    """Sparse rate reduction R(Z) - R^c(Z; U) - lam * sparsity(Z), the objective CRATE maximizes.

    Parameters
    ----------
    Z, U, eps, normalize_tokens, compute_dtype
        As in :func:`rate_reduction`.
    lam : float
        Weight (>= 0) of the sparsity term.
    sparsity : {"l0", "l1"}
        "l0": ||Z||_0 / N (nonzeros per token; a count, so it passes no gradient); "l1":
        ||Z||_1 / N (l1 norm per token; differentiable: use it for training).

    Returns
    -------
    Tensor, shape (...), dtype of Z and U promoted

    Examples
    --------
    >>> import torch
    >>> from genlab.torch.rate import sparse_rate_reduction
    >>> Z = torch.relu(torch.randn(4, 32, 12, dtype=torch.float64)).requires_grad_()
    >>> U = torch.randn(3, 12, 4, dtype=torch.float64)
    >>> loss = -sparse_rate_reduction(Z, U, eps=0.5, lam=0.1, sparsity="l1").mean()
    >>> loss.backward()
    """
    return _sparse_objective(
        Z, U, eps, lam, sparsity, normalize_tokens, compute_dtype, measure=False
    )


def _sparse_objective(
    Z: Tensor,
    U: Tensor,
    eps: float,
    lam: float,
    sparsity: str,
    normalize_tokens: bool,
    compute_dtype: torch.dtype,
    *,
    measure: bool,
) -> Tensor:
    """R - R^c - lam * sparsity, or its negative, Hu et al.'s measure (``measure=True``)."""
    eps = _eps(eps)
    lam = _lam(lam)
    check_choice(sparsity, "sparsity", SPARSITY_KINDS)
    compute_dtype = _check_compute_dtype(compute_dtype)
    Z, U, dtype = _check_pair(Z, U)
    return _run(
        _np_rate.srr_measure if measure else _np_rate.sparse_rate_reduction,
        _srr_measure if measure else _sparse_rate_reduction,
        (Z, U),
        dtype,
        compute_dtype,
        eps=eps,
        lam=lam,
        sparsity=sparsity,
        normalize_tokens=check_bool(normalize_tokens, "normalize_tokens"),
    )


def srr_measure(
    Z: Tensor,
    U: Tensor,
    *,
    eps: float,
    lam: float = 1.0,
    sparsity: str = "l0",
    normalize_tokens: bool = False,
    compute_dtype: torch.dtype = torch.float64,
) -> Tensor:
    """The per-layer SRR measure of Hu et al. (2024): lam * sparsity(Z) + R^c(Z; U) - R(Z).

    With ``lam=1`` and ``sparsity="l0"`` it is the paper's ||Z||_0 + R^c - R (||Z||_0 per token);
    lower is better; exactly ``-sparse_rate_reduction(...)`` with the same arguments. As a training
    regularizer (cross-entropy + gamma * measure), use ``sparsity="l1"``: the l0 count passes no
    gradient.

    Parameters
    ----------
    Z, U, eps, normalize_tokens, compute_dtype
        As in :func:`rate_reduction`.
    lam : float
        Weight (>= 0) of the sparsity term; 1 in the paper.
    sparsity : {"l0", "l1"}
        As in :func:`sparse_rate_reduction`.

    Returns
    -------
    Tensor, shape (...), dtype of Z and U promoted

    Examples
    --------
    >>> import torch
    >>> from genlab.torch.rate import srr_measure
    >>> Z, U = torch.relu(torch.randn(4, 32, 12)), torch.randn(3, 12, 4)
    >>> srr_measure(Z, U, eps=0.5).shape
    torch.Size([4])
    """
    return _sparse_objective(
        Z, U, eps, lam, sparsity, normalize_tokens, compute_dtype, measure=True
    )


def sparsity(Z: Tensor, *, kind: str = "l0", compute_dtype: torch.dtype = torch.float64) -> Tensor:
    """Sparsity of every token group, per token: ||Z||_0 / N (``"l0"``) or ||Z||_1 / N (``"l1"``).

    The term of :func:`sparse_rate_reduction` and :func:`srr_measure`. "l0" counts the entries
    different from zero (no gradient); "l1" is differentiable.

    Parameters
    ----------
    Z : Tensor, shape (..., N, d)
        Tokens.
    kind : {"l0", "l1"}
        Which norm.
    compute_dtype : torch.float64 or torch.float32
        Precision of the sums.

    Returns
    -------
    Tensor, shape (...), dtype of Z

    Examples
    --------
    >>> import torch
    >>> from genlab.torch.rate import sparsity
    >>> sparsity(torch.tensor([[1.0, 0.0, -2.0], [0.0, 0.0, 3.0]]), kind="l1")
    tensor(3.)
    """
    check_choice(kind, "kind", SPARSITY_KINDS)
    compute_dtype = _check_compute_dtype(compute_dtype)
    Z = _check_tensor(Z, "Z", 2, "(..., N, d)")
    return _run(_np_rate.sparsity, _sparsity, (Z,), Z.dtype, compute_dtype, kind=kind)
