"""Tensor (triple-wise) attention for training: autograd on CPU and CUDA.

The formulas are those of :mod:`genlab.attention` (``docs/formulas/attention.md``)::

    O_i = sum_{j,k} softmax_{(j,k)}(s <q_i, k1_j, k2_k> + b_j + b_k) (v1_j * v2_k)

(b: an optional per-key bias, -inf for padded keys), computed three ways:

- ``"materialized"``: the n x n x n logits in memory, plain autograd (small n);
- ``"chunked"``: exact, by online softmax over chunks of queries and first keys, in a custom
  :class:`torch.autograd.Function` whose backward recomputes each chunk's probabilities from the
  saved log-sum-exp instead of storing the n x n^2 matrix (flash-attention style);
- ``"poly"``: the polynomial method (degree and coefficients planned by
  :func:`genlab.attention.poly_plan`), differentiable by autograd;

and ``"exact"`` picks materialized or chunked by size. :class:`TensorAttention` is a multi-head
module with the call signature of :class:`torch.nn.MultiheadAttention`, so it can replace it in a
transformer block (for example ``nn.TransformerEncoderLayer.self_attn``).

float64, float32, bfloat16 and float16 inputs are accepted; half precision is computed in float32
and returned in the input dtype.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab import _core
from genlab._options import tensor_attention_mask
from genlab._validation import check_int, physical_memory
from genlab.attention import poly_plan

__all__ = ["TensorAttention", "attention_weights", "logit_bound", "tensor_attention"]

_METHODS = ("exact", "materialized", "chunked", "poly")
_BASES = ("chebyshev", "taylor", "minimax")
#: ``method="exact"`` materializes the logits up to this many elements (batch x n^3).
_MATERIALIZE_LIMIT = 1 << 21
#: Default elements of one chunk's logits (batch x queries x first keys x n) in the chunked path.
_CHUNK_ELEMENTS = 1 << 22


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in (torch.bfloat16, torch.float16) else dtype


def _check_method(method: str) -> None:
    if method not in _METHODS:
        raise ValueError(
            f"method: expected one of {', '.join(map(repr, _METHODS))}, got {method!r}"
        )


def _scale(scale: float | None, d: int) -> float:
    """s: the default 1 / sqrt(d), as in :mod:`genlab.attention`."""
    return 1.0 / math.sqrt(d) if scale is None else float(scale)


class _Masks:
    """The mask of one call: per key set, which keys each query sees (None: all), and a per-key
    additive bias (None: none) of shape (batch, n)."""

    def __init__(self, mask: object, n: int, device: torch.device, key_bias: Tensor | None):
        kind, w1, w2 = tensor_attention_mask(mask)
        self.kind = kind
        self.windows = (w1, w2)
        self.key_bias = key_bias
        i = torch.arange(n, device=device)
        self.allowed: tuple[Tensor | None, Tensor | None] = (None, None)
        if kind != "none":
            causal = i[None, :] <= i[:, None]

            def seen(w: int) -> Tensor:
                return causal if kind == "causal" else causal & (i[None, :] > i[:, None] - w)

            self.allowed = (seen(w1), seen(w2))

    def bias(self, rows: slice, firsts: slice, dtype: torch.dtype) -> Tensor | None:
        """Additive bias (batch or 1, |rows|, |firsts|, n) of the logits of queries ``rows``
        against first keys ``firsts`` and every second key; None when nothing is masked."""
        total: Tensor | None = None
        a1, a2 = self.allowed
        if a1 is not None and a2 is not None:
            allowed = a1[rows, firsts][:, :, None] & a2[rows][:, None, :]
            zero = torch.zeros((), dtype=dtype, device=allowed.device)
            total = torch.where(allowed, zero, -math.inf)[None]
        if self.key_bias is not None:
            kb = self.key_bias.to(dtype)
            pair = kb[:, None, firsts, None] + kb[:, None, None, :]
            total = pair if total is None else total + pair
        return total


def _dropout_keep(seed: int, chunk: int, probs: Tensor, p: float) -> Tensor:
    """The dropout mask of one chunk's probabilities ``probs``, scaled by 1 / (1 - p), in their
    dtype: the same in forward and backward."""
    generator = torch.Generator(device=probs.device)
    generator.manual_seed(seed + chunk)
    keep = torch.rand(probs.shape, generator=generator, device=probs.device) >= p
    return (keep.to(torch.float32) / (1.0 - p)).to(probs.dtype)


def _safe(x: Tensor) -> Tensor:
    """x where finite, else 0: a shift that keeps exp(-inf - shift) = 0 instead of NaN."""
    return torch.where(torch.isfinite(x), x, torch.zeros_like(x))


def _chunk_logits(
    q: Tensor, k1: Tensor, k2: Tensor, scale: float, rows: slice, firsts: slice, masks: _Masks
) -> tuple[Tensor, Tensor]:
    """Logits (B, |rows|, |firsts|, n) of a chunk, and u = s q_i * k1_j (B, |rows|, |firsts|, d)."""
    qs = q[:, rows] * scale
    u = qs[:, :, None, :] * k1[:, None, firsts, :]
    b, cq, cj, d = u.shape
    s = (u.reshape(b, cq * cj, d) @ k2.transpose(1, 2)).view(b, cq, cj, -1)
    bias = masks.bias(rows, firsts, s.dtype)
    return (s if bias is None else s + bias), u


def _chunks(n: int, size: int) -> list[slice]:
    return [slice(start, min(start + size, n)) for start in range(0, n, size)]


class _ChunkedTensorAttention(torch.autograd.Function):
    """Exact tensor attention by online softmax over chunks; the backward recomputes."""

    @staticmethod
    def forward(
        ctx: Any,
        q: Tensor,
        k1: Tensor,
        k2: Tensor,
        v1: Tensor,
        v2: Tensor,
        scale: float,
        masks: _Masks,
        chunk: int,
        dropout_p: float,
        seed: int,
    ) -> Tensor:
        b, n, _ = q.shape
        dv = v1.shape[-1]
        out = q.new_zeros(b, n, dv)
        lse = q.new_empty(b, n)
        rows_chunks, first_chunks = _chunks(n, chunk), _chunks(n, chunk)
        for ri, rows in enumerate(rows_chunks):
            cq = rows.stop - rows.start
            running_max = q.new_full((b, cq), -math.inf)
            running_sum = q.new_zeros(b, cq)
            acc = q.new_zeros(b, cq, dv)
            for fi, firsts in enumerate(first_chunks):
                s, _ = _chunk_logits(q, k1, k2, scale, rows, firsts, masks)
                new_max = torch.maximum(running_max, s.amax(dim=(2, 3)))
                shift = _safe(new_max)
                rescale = torch.exp(running_max - shift)
                p = torch.exp(s - shift[:, :, None, None])
                running_sum = running_sum * rescale + p.sum(dim=(2, 3))
                if dropout_p > 0:
                    p = p * _dropout_keep(seed, ri * len(first_chunks) + fi, p, dropout_p)
                cj = firsts.stop - firsts.start
                w = (p.reshape(b, cq * cj, n) @ v2).view(b, cq, cj, dv)
                acc = acc * rescale[:, :, None] + (w * v1[:, None, firsts, :]).sum(2)
                running_max = new_max
            out[:, rows] = acc / running_sum.clamp_min(torch.finfo(q.dtype).tiny)[:, :, None]
            lse[:, rows] = running_max + torch.log(running_sum)
        ctx.save_for_backward(q, k1, k2, v1, v2, out, lse)
        ctx.config = (scale, masks, chunk, dropout_p, seed)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        q, k1, k2, v1, v2, out, lse = ctx.saved_tensors
        scale, masks, chunk, dropout_p, seed = ctx.config
        b, n, _ = q.shape
        dv = v1.shape[-1]
        grad_out = grad_out.contiguous()
        dq, dk1, dk2 = torch.zeros_like(q), torch.zeros_like(k1), torch.zeros_like(k2)
        dv1, dv2 = torch.zeros_like(v1), torch.zeros_like(v2)
        # D_i = sum_c dO_ic O_ic = sum_{j,k} P_ijk dP_ijk (dropout included).
        delta = (grad_out * out).sum(-1)
        shift = _safe(lse)
        rows_chunks, first_chunks = _chunks(n, chunk), _chunks(n, chunk)
        for ri, rows in enumerate(rows_chunks):
            d_out = grad_out[:, rows]
            cq = rows.stop - rows.start
            for fi, firsts in enumerate(first_chunks):
                cj = firsts.stop - firsts.start
                s, u = _chunk_logits(q, k1, k2, scale, rows, firsts, masks)
                p = torch.exp(s - shift[:, rows, None, None])
                p_used = p
                keep = None
                if dropout_p > 0:
                    keep = _dropout_keep(seed, ri * len(first_chunks) + fi, p, dropout_p)
                    p_used = p * keep
                flat = p_used.reshape(b, cq * cj, n)
                # dO_i * v1_j, the value-side factor shared by dV2 and dP.
                dov1 = (d_out[:, :, None, :] * v1[:, None, firsts, :]).reshape(b, cq * cj, dv)
                dv2 += flat.transpose(1, 2) @ dov1
                w = (flat @ v2).view(b, cq, cj, dv)
                dv1[:, firsts] += (d_out[:, :, None, :] * w).sum(1)
                dp = (dov1 @ v2.transpose(1, 2)).view(b, cq, cj, n)
                if keep is not None:
                    dp = dp * keep
                ds = p * (dp - delta[:, rows, None, None])
                ds_flat = ds.reshape(b, cq * cj, n)
                g = (ds_flat @ k2).view(b, cq, cj, -1)
                dq[:, rows] += scale * (g * k1[:, None, firsts, :]).sum(2)
                dk1[:, firsts] += scale * (g * q[:, rows, None, :]).sum(1)
                # u = s q_i * k1_j already carries the scale.
                dk2 += ds_flat.transpose(1, 2) @ u.reshape(b, cq * cj, -1)
        return dq, dk1, dk2, dv1, dv2, None, None, None, None, None


def _materialized(
    q: Tensor,
    k1: Tensor,
    k2: Tensor,
    v1: Tensor,
    v2: Tensor,
    scale: float,
    masks: _Masks,
    dropout_p: float,
) -> tuple[Tensor, Tensor]:
    """Output and the (B, n, n, n) attention weights, by plain autograd."""
    b, n, _ = q.shape
    s = torch.einsum("bil,bjl,bkl->bijk", q * scale, k1, k2)
    bias = masks.bias(slice(0, n), slice(0, n), s.dtype)
    if bias is not None:
        s = s + bias
    flat = s.reshape(b, n, n * n)
    shift = _safe(flat.amax(-1, keepdim=True)).detach()
    p = torch.exp(flat - shift)
    total = p.sum(-1, keepdim=True)
    # A query whose keys are all masked has total 0 and gets weights 0 (dividing by 1 keeps the
    # gradient finite, where clamping the total would not).
    weights = p / torch.where(total > 0, total, torch.ones_like(total))
    weights = weights.view(b, n, n, n)
    used = F.dropout(weights, dropout_p) if dropout_p > 0 else weights
    return torch.einsum("bijk,bjc,bkc->bic", used, v1, v2), weights


def logit_bound(q: Tensor, k1: Tensor, k2: Tensor, *, scale: float | None = None) -> float:
    """Upper bound on ``max |s <q_i, k1_j, k2_k>|``: the torch twin of :func:`genlab.attention.logit_bound`.

    The smaller of ``|s| sum_l max|q_l| max|k1_l| max|k2_l|`` and
    ``|s| max||q||_3 max||k1||_3 max||k2||_3`` per problem, maximized over the leading axes.

    Examples
    --------
    >>> import torch
    >>> from genlab.torch.attention import logit_bound
    >>> x = torch.full((3, 2), 0.5)
    >>> logit_bound(x, x, x, scale=1.0)
    0.25
    """
    s = _scale(scale, q.shape[-1])
    with torch.no_grad():
        a = [x.detach().abs().to(torch.float64) for x in (q, k1, k2)]
        coordinatewise = (a[0].amax(-2) * a[1].amax(-2) * a[2].amax(-2)).sum(-1)
        norms = [x.pow(3).sum(-1).amax(-1).pow(1.0 / 3.0) for x in a]
        holder = norms[0] * norms[1] * norms[2]
        bound = abs(s) * float(torch.minimum(coordinatewise, holder).max())
    if not math.isfinite(bound):
        raise ValueError(
            "scale: the logit bound |s| max |<q, k1, k2>| overflows float64 for these inputs; "
            "lower |scale| or the magnitude of q, k1, k2"
        )
    return bound


def _monomials(x: Tensor, parent: Tensor, variable: Tensor, level_start: list[int]) -> Tensor:
    """x^alpha for every multi-index alpha of the table, level by level: (..., n, r). The parent
    of a degree-m multi-index has degree m - 1, so each level is one gather of the previous level
    times one gather of x."""
    level = torch.ones(*x.shape[:-1], 1, dtype=x.dtype, device=x.device)
    levels = [level]
    for m in range(1, len(level_start) - 1):
        entries = slice(level_start[m], level_start[m + 1])
        parents = parent[entries] - level_start[m - 1]
        level = level.index_select(-1, parents) * x.index_select(-1, variable[entries])
        levels.append(level)
    return torch.cat(levels, dim=-1)


def _window_sums(x: Tensor, kind: str, window: int) -> Tensor:
    """For each query i, the sum over its keys of x (B, n, r, c): all keys, j <= i, or the last
    ``window``. Windows are summed inside segments of 2 w - 1 rows (a cumulative sum restarted per
    block of w queries), so differences never span more than one segment."""
    b, n, r, c = x.shape
    if kind == "none":
        return x.sum(1, keepdim=True).expand(b, n, r, c)
    if kind == "causal" or window >= n:
        return x.cumsum(1)
    w = window
    blocks = -(-n // w)
    padded = F.pad(x, (0, 0, 0, 0, w - 1, blocks * w - n))
    segments = padded.unfold(1, 2 * w - 1, w).cumsum(-1)  # (B, blocks, r, c, 2w - 1)
    t = torch.arange(w, device=x.device)
    upper = segments[..., t + w - 1]
    lower = F.pad(segments, (1, 0))[..., t]  # C[t - 1], with C[-1] = 0
    sums = (upper - lower).permute(0, 1, 4, 2, 3).reshape(b, blocks * w, r, c)
    return sums[:, :n]


def _poly(
    q: Tensor,
    k1: Tensor,
    k2: Tensor,
    v1: Tensor,
    v2: Tensor,
    scale: float,
    masks: _Masks,
    degree: int | None,
    tol: float | None,
    basis: str,
    logit_range: float | None,
) -> Tensor:
    b, n, d = q.shape
    dv = v1.shape[-1]
    element = q.element_size()
    masked = masks.kind != "none"
    # Per unit of rank: U1, U2, U3 and their autograd copies; masked, also the outer products of
    # both key sets with the values and their running sums.
    per_rank = element * b * n * (6 + (8 * (dv + 1) if masked else 0))
    if q.device.type == "cuda":
        limit = float(torch.cuda.mem_get_info(q.device)[0])
    else:
        limit = physical_memory()
    plan = poly_plan(
        logit_bound(q, k1, k2, scale=scale) if logit_range is None else logit_range,
        d,
        degree=degree,
        tol=tol,
        basis=basis,
        unit_roundoff=float(torch.finfo(q.dtype).eps) / 2,
        bytes_per_rank=float(per_rank),
        memory_limit=limit,
    )
    table = _core.attention.monomial_table(d, plan.degree)
    parent, variable, level_start = table["parent"], table["variable"], table["level_start"]
    multinomial = table["multinomial"]
    device = q.device
    parent_t = torch.from_numpy(parent).to(device)
    variable_t = torch.from_numpy(variable).to(device)
    starts = [int(x) for x in level_start]
    coefficients = torch.from_numpy(plan.coefficients)
    levels = torch.repeat_interleave(
        torch.arange(plan.degree + 1),
        torch.tensor([starts[m + 1] - starts[m] for m in range(plan.degree + 1)]),
    )
    weights = (torch.from_numpy(multinomial) * coefficients[levels]).to(
        device=device, dtype=q.dtype
    )

    def monomials(x: Tensor) -> Tensor:
        return _monomials(x, parent_t, variable_t, starts)

    u1 = monomials(q * scale) * weights
    u2, u3 = monomials(k1), monomials(k2)
    ones = q.new_ones(b, n, 1)
    x1, x2 = torch.cat([v1, ones], -1), torch.cat([v2, ones], -1)
    if masks.key_bias is not None:
        key_weight = torch.exp(masks.key_bias.to(q.dtype))[:, :, None]
        x1, x2 = x1 * key_weight, x2 * key_weight
    if not masked:
        first = u2.transpose(1, 2) @ x1  # (B, r, dv + 1)
        second = u3.transpose(1, 2) @ x2
        numerator = u1 @ (first * second)
    else:
        (w1, w2), kind = masks.windows, masks.kind
        first = _window_sums(u2[..., None] * x1[:, :, None, :], kind, w1)
        second = _window_sums(u3[..., None] * x2[:, :, None, :], kind, w2)
        numerator = torch.einsum("bnr,bnrc,bnrc->bnc", u1, first, second)
    z = numerator[..., dv:]
    # z > 0 wherever a query sees a key (the plan guarantees p > 0 on the logit range); a query
    # whose keys are all padded has z = 0 and gets 0, like the exact paths.
    return numerator[..., :dv] / torch.where(z > 0, z, torch.ones_like(z)) * (z > 0)


def _flatten(
    tensors: dict[str, Tensor], values: tuple[str, ...]
) -> tuple[list[Tensor], tuple[int, ...], int, int, int]:
    """Check shapes, dtypes and devices; broadcast the leading axes and flatten them."""
    for name, t in tensors.items():
        if not isinstance(t, Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise TypeError(f"{name}: expected a floating-point tensor, got dtype {t.dtype}")
        if t.dim() < 2:
            raise ValueError(f"{name}: expected shape (..., n, width), got {tuple(t.shape)}")
    names = list(tensors)
    first = tensors[names[0]]
    for name, t in tensors.items():
        if t.dtype != first.dtype:
            raise TypeError(f"{name}: expected dtype {first.dtype} like {names[0]}, got {t.dtype}")
        if t.device != first.device:
            raise ValueError(
                f"{name}: expected device {first.device} like {names[0]}, got {t.device}"
            )
    n, d = first.shape[-2:]
    dv = tensors[values[0]].shape[-1]
    for name, t in tensors.items():
        want = (n, dv) if name in values else (n, d)
        if tuple(t.shape[-2:]) != want:
            raise ValueError(
                f"{name}: expected shape (..., {want[0]}, {want[1]}), got {tuple(t.shape)}"
            )
    if n == 0 or d == 0 or dv == 0:
        raise ValueError(f"expected n, d and dv >= 1, got n = {n}, d = {d}, dv = {dv}")
    try:
        lead = np.broadcast_shapes(*(tuple(t.shape[:-2]) for t in tensors.values()))
    except ValueError:
        shapes = ", ".join(f"{k} {tuple(t.shape[:-2])}" for k, t in tensors.items())
        raise ValueError(f"the leading (batch/head) axes do not broadcast: {shapes}") from None
    flat = [t.expand(*lead, *t.shape[-2:]).reshape(-1, *t.shape[-2:]) for t in tensors.values()]
    return flat, tuple(lead), n, d, dv


def _key_bias(
    key_padding_mask: Tensor | None,
    lead: tuple[int, ...],
    n: int,
    dtype: torch.dtype,
    device: torch.device,
) -> Tensor | None:
    """``key_padding_mask`` as an additive per-key bias of shape (batch, n): bool True -> -inf."""
    if key_padding_mask is None:
        return None
    if not isinstance(key_padding_mask, Tensor):
        raise TypeError(
            f"key_padding_mask: expected a torch.Tensor, got {type(key_padding_mask).__name__}"
        )
    if key_padding_mask.dtype != torch.bool and not key_padding_mask.is_floating_point():
        # An integer 0/1 mask would be added to the logits as a bias of 0 or 1, not read as
        # padding: ambiguous, so refused (as nn.MultiheadAttention deprecates it).
        raise TypeError(
            "key_padding_mask: expected a bool mask (True: padding) or a float additive bias, "
            f"got {key_padding_mask.dtype}; pass key_padding_mask.bool() for a 0/1 mask"
        )
    kpm = key_padding_mask.to(device)
    if kpm.dtype == torch.bool:
        kpm = torch.zeros(kpm.shape, dtype=dtype, device=device).masked_fill(kpm, -math.inf)
    try:
        return kpm.to(dtype).expand(*lead, n).reshape(-1, n)
    except RuntimeError:
        raise ValueError(
            f"key_padding_mask: expected a shape broadcastable to {(*lead, n)}, "
            f"got {tuple(key_padding_mask.shape)}"
        ) from None


def _check_options(
    method: str,
    basis: str,
    dropout_p: float,
    degree: int | None,
    tol: float | None,
    logit_range: float | None,
) -> None:
    """The options of :func:`tensor_attention` that do not depend on the tensors."""
    _check_method(method)
    if basis not in _BASES:
        raise ValueError(f"basis: expected one of {', '.join(map(repr, _BASES))}, got {basis!r}")
    if not (isinstance(dropout_p, (int, float)) and 0.0 <= dropout_p < 1.0):
        raise ValueError(f"dropout_p: expected a number in [0, 1), got {dropout_p!r}")
    if method == "poly" and dropout_p > 0:
        raise ValueError(
            "dropout_p: the polynomial method never forms the attention weights, so it cannot "
            "drop them; use method='exact' or dropout_p=0"
        )
    if method != "poly" and (degree is not None or tol is not None):
        raise ValueError(f"degree and tol apply to method='poly' only; got method={method!r}")
    if degree is not None:
        check_int(degree, "degree", minimum=0)
    if logit_range is not None and method != "poly":
        raise ValueError(f"logit_range applies to method='poly' only; got method={method!r}")


def _chunk(chunk_size: int | None, batch: int, n: int) -> int:
    """Queries per chunk of the chunked path: given, or sized to ``_CHUNK_ELEMENTS``."""
    if chunk_size is None:
        return max(1, int(math.sqrt(_CHUNK_ELEMENTS / max(1, batch * n))))
    check_int(chunk_size, "chunk_size", minimum=1)
    return chunk_size


def tensor_attention(
    q: Tensor,
    k1: Tensor,
    k2: Tensor,
    v1: Tensor,
    v2: Tensor,
    *,
    scale: float | None = None,
    mask: str | tuple[int, int] | None = None,
    method: str = "exact",
    degree: int | None = None,
    tol: float | None = None,
    basis: str = "chebyshev",
    dropout_p: float = 0.0,
    key_padding_mask: Tensor | None = None,
    chunk_size: int | None = None,
    logit_range: float | None = None,
    validate: bool = True,
) -> Tensor:
    """Tensor attention on torch tensors, differentiable, on CPU or CUDA.

    Parameters
    ----------
    q, k1, k2 : Tensor, shape (..., n, d)
        Queries and the two key sets (leading axes broadcast).
    v1, v2 : Tensor, shape (..., n, dv)
        The two value sets.
    scale : float, optional
        s; default 1 / sqrt(d).
    mask : None, "causal" or (w1, w2)
        As in :func:`genlab.attention.tensor_attention`.
    method : {"exact", "materialized", "chunked", "poly"}
        "materialized": the n^3 logits in memory, plain autograd. "chunked": exact, O(chunk) memory,
        a backward that recomputes. "exact": materialized while batch x n^3 <= 2^21, else chunked.
        "poly": the polynomial method (no dropout).
    degree, tol, basis
        Options of the polynomial method (see :func:`genlab.attention.tensor_attention_poly`);
        half-precision inputs are planned for float32 rounding.
    dropout_p : float
        Dropout on the attention weights (0 <= p < 1), as in ``nn.MultiheadAttention``. The
        chunked path regenerates each chunk's mask from a seed drawn from torch's global RNG.
    key_padding_mask : Tensor, optional
        Shape broadcastable to (..., n): bool (True: the key is padding, for both key sets) or a
        float additive bias (-inf for padding). A query whose keys are all padding gets 0.
    chunk_size : int, optional
        Queries and first keys per chunk of the chunked path (default: about 2^22 logits per
        chunk).
    logit_range : float, optional
        Polynomial method: fit exp on [-logit_range, logit_range] instead of the measured
        :func:`logit_bound`. The coefficients then no longer move with the inputs (the output is
        differentiable everywhere) and no device synchronization is needed; the range must bound
        the logits (checked when ``validate``).
    validate : bool
        Check the inputs' values: NaN or infinity, and that ``logit_range`` bounds the logits
        (a device synchronization).

    Returns
    -------
    Tensor, shape (broadcast leading axes..., n, dv), dtype of the inputs.

    Raises
    ------
    TypeError
        Non-tensor or non-floating inputs, mixed dtypes.
    ValueError
        Shapes that do not fit, n = 0, NaN or infinity, an unknown option, a window < 1,
        dropout with ``method="poly"``, and the polynomial method's refusals.

    Examples
    --------
    >>> import torch
    >>> from genlab.torch.attention import tensor_attention
    >>> q, k1, k2, v1, v2 = (torch.randn(2, 6, 4, dtype=torch.float64, requires_grad=True) for _ in range(5))
    >>> out = tensor_attention(q, k1, k2, v1, v2, mask="causal", method="chunked", chunk_size=4)
    >>> out.sum().backward()
    >>> q.grad.shape
    torch.Size([2, 6, 4])
    """
    _check_options(method, basis, dropout_p, degree, tol, logit_range)
    (qf, k1f, k2f, v1f, v2f), lead, n, d, dv = _flatten(
        {"q": q, "k1": k1, "k2": k2, "v1": v1, "v2": v2}, ("v1", "v2")
    )
    s = _scale(scale, d)
    if not math.isfinite(s):
        raise ValueError(f"scale: expected a finite number, got {scale}")
    if validate:
        for name, t in zip(("q", "k1", "k2", "v1", "v2"), (q, k1, k2, v1, v2), strict=True):
            if not bool(torch.isfinite(t).all()):
                raise ValueError(f"{name}: contains NaN or infinity; all values must be finite")
        if logit_range is not None and logit_bound(qf, k1f, k2f, scale=s) > logit_range:
            raise ValueError(
                f"logit_range: {logit_range} does not bound the logits (their bound is "
                f"{logit_bound(qf, k1f, k2f, scale=s):.4g}); raise it or leave it None"
            )
    dtype = q.dtype
    work = _compute_dtype(dtype)
    qf, k1f, k2f, v1f, v2f = (t.to(work) for t in (qf, k1f, k2f, v1f, v2f))
    masks = _Masks(mask, n, q.device, _key_bias(key_padding_mask, lead, n, work, q.device))
    batch = qf.shape[0]
    if method == "exact":
        method = "materialized" if batch * n**3 <= _MATERIALIZE_LIMIT else "chunked"
    if method == "materialized":
        out, _ = _materialized(qf, k1f, k2f, v1f, v2f, s, masks, dropout_p)
    elif method == "chunked":
        chunk = _chunk(chunk_size, batch, n)
        seed = int(torch.randint(0, 2**62, (1,))) if dropout_p > 0 else 0
        out = _ChunkedTensorAttention.apply(
            qf, k1f, k2f, v1f, v2f, s, masks, min(chunk, n), float(dropout_p), seed
        )
    else:
        out = _poly(qf, k1f, k2f, v1f, v2f, s, masks, degree, tol, basis, logit_range)
    if validate and not bool(torch.isfinite(out).all()):
        # The inputs are finite: the logits (or the weighted value sums) overflowed.
        raise ValueError(
            f"scale: the logits s <q, k1, k2> (or the weighted sums of the values) overflow "
            f"{work} for these inputs; lower |scale| or the magnitude of q, k1, k2"
        )
    return out.to(dtype).reshape(*lead, n, dv)


def attention_weights(
    q: Tensor,
    k1: Tensor,
    k2: Tensor,
    *,
    scale: float | None = None,
    mask: str | tuple[int, int] | None = None,
    key_padding_mask: Tensor | None = None,
) -> Tensor:
    """The (..., n, n, n) tensor-attention weights softmax_{(j,k)}(s <q_i, k1_j, k2_k>) (small n)."""
    ones = q.new_ones(*q.shape[:-1], 1)
    (qf, k1f, k2f, _), lead, n, d, _ = _flatten({"q": q, "k1": k1, "k2": k2, "v": ones}, ("v",))
    s = _scale(scale, d)
    work = _compute_dtype(q.dtype)
    masks = _Masks(mask, n, q.device, _key_bias(key_padding_mask, lead, n, work, q.device))
    v = qf.new_zeros(qf.shape[0], n, 1, dtype=work)
    _, weights = _materialized(qf.to(work), k1f.to(work), k2f.to(work), v, v, s, masks, 0.0)
    return weights.to(q.dtype).reshape(*lead, n, n, n)


class TensorAttention(nn.Module):
    """Multi-head tensor attention with the interface of :class:`torch.nn.MultiheadAttention`.

    Five input projections (Q, K1, K2 from ``query``/``key``; V1, V2 from ``value``), per-head
    tensor attention, an output projection. ``forward`` takes the arguments
    ``nn.MultiheadAttention.forward`` takes and returns ``(output, weights or None)``, so the module
    can replace it in a transformer block, e.g.
    ``layer = nn.TransformerEncoderLayer(d, h, batch_first=True); layer.self_attn = TensorAttention(d, h, batch_first=True)``.

    Parameters
    ----------
    embed_dim, num_heads : int
        Model width and heads (``embed_dim`` divisible by ``num_heads``).
    dropout : float
        Dropout on the attention weights while training (not with ``method="poly"``).
    bias : bool
        Biases of the projections.
    kdim, vdim : int, optional
        Widths of ``key`` and ``value`` (default ``embed_dim``).
    batch_first : bool
        Inputs (batch, seq, feature) instead of (seq, batch, feature), as in
        ``nn.MultiheadAttention``.
    mask : None, "causal" or (w1, w2)
        Mask applied on every call (``is_causal=True`` in ``forward`` also selects "causal").
    method, degree, tol, basis, chunk_size, scale
        As in :func:`tensor_attention`.
    device, dtype
        Of the parameters.

    Notes
    -----
    Queries and keys must have the same length (the attention is over pairs of keys at the
    query's positions). ``attn_mask`` tensors are not supported (pass ``mask`` or ``is_causal``);
    ``key_padding_mask`` is. The module has no packed input projection, so its ``in_proj_bias``
    is None, which also keeps ``nn.TransformerEncoderLayer`` off its fused inference path.

    Examples
    --------
    >>> import torch
    >>> from genlab.torch.attention import TensorAttention
    >>> attn = TensorAttention(16, 4, batch_first=True, mask="causal")
    >>> x = torch.randn(2, 10, 16)
    >>> out, weights = attn(x, x, x)
    >>> out.shape, weights
    (torch.Size([2, 10, 16]), None)
    """

    in_proj_bias: Tensor | None = None
    _qkv_same_embed_dim = False

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        *,
        kdim: int | None = None,
        vdim: int | None = None,
        batch_first: bool = False,
        mask: str | tuple[int, int] | None = None,
        method: str = "exact",
        degree: int | None = None,
        tol: float | None = None,
        basis: str = "chebyshev",
        chunk_size: int | None = None,
        scale: float | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if embed_dim < 1 or num_heads < 1 or embed_dim % num_heads:
            raise ValueError(
                f"embed_dim: expected a positive multiple of num_heads ({num_heads}), got {embed_dim}"
            )
        _check_method(method)
        if method == "poly" and dropout > 0:
            raise ValueError(
                "dropout: the polynomial method cannot drop attention weights; use dropout=0"
            )
        tensor_attention_mask(mask)
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.head_dim = embed_dim // num_heads
        self.kdim = embed_dim if kdim is None else kdim
        self.vdim = embed_dim if vdim is None else vdim
        self.dropout, self.batch_first = dropout, batch_first
        self.mask, self.method, self.degree, self.tol, self.basis = mask, method, degree, tol, basis
        self.chunk_size, self.scale = chunk_size, scale
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=bias, **factory)
        self.k1_proj = nn.Linear(self.kdim, embed_dim, bias=bias, **factory)
        self.k2_proj = nn.Linear(self.kdim, embed_dim, bias=bias, **factory)
        self.v1_proj = nn.Linear(self.vdim, embed_dim, bias=bias, **factory)
        self.v2_proj = nn.Linear(self.vdim, embed_dim, bias=bias, **factory)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias, **factory)

    def _heads(self, x: Tensor) -> Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(
        self,
        query: Tensor,
        key: Tensor | None = None,
        value: Tensor | None = None,
        key_padding_mask: Tensor | None = None,
        need_weights: bool = False,
        attn_mask: Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """Attention of ``query`` over pairs of ``key`` positions, with ``value`` pairs.

        Returns ``(output, weights)``: output like ``query``; weights (batch, n, n, n) averaged
        over heads (or (batch, heads, n, n, n)) when ``need_weights``, else None. Unlike
        ``nn.MultiheadAttention``, ``need_weights`` defaults to False: the weights are cubic in n.
        """
        key = query if key is None else key
        value = key if value is None else value
        if attn_mask is not None and not is_causal:
            raise ValueError(
                "attn_mask: TensorAttention takes masks as mask='causal' or windows (w1, w2) "
                "(constructor) or is_causal=True, not as a tensor"
            )
        unbatched = query.dim() == 2
        if unbatched:
            q_in, k_in, v_in = (x.unsqueeze(0) for x in (query, key, value))
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif self.batch_first:
            q_in, k_in, v_in = query, key, value
        else:
            q_in, k_in, v_in = (x.transpose(0, 1) for x in (query, key, value))
        if q_in.shape[1] != k_in.shape[1] or k_in.shape[1] != v_in.shape[1]:
            raise ValueError(
                "query, key and value must have the same sequence length for tensor attention, "
                f"got {q_in.shape[1]}, {k_in.shape[1]}, {v_in.shape[1]}"
            )
        mask = "causal" if is_causal else self.mask
        kpm = None if key_padding_mask is None else key_padding_mask[:, None, :]
        q = self._heads(self.q_proj(q_in))
        k1, k2 = self._heads(self.k1_proj(k_in)), self._heads(self.k2_proj(k_in))
        v1, v2 = self._heads(self.v1_proj(v_in)), self._heads(self.v2_proj(v_in))
        heads = tensor_attention(
            q,
            k1,
            k2,
            v1,
            v2,
            scale=self.scale,
            mask=mask,
            method=self.method,
            degree=self.degree,
            tol=self.tol,
            basis=self.basis,
            dropout_p=self.dropout if self.training else 0.0,
            key_padding_mask=kpm,
            chunk_size=self.chunk_size,
            validate=False,
        )
        b, _, n, _ = heads.shape
        out = self.out_proj(heads.transpose(1, 2).reshape(b, n, self.embed_dim))
        weights = None
        if need_weights:
            weights = attention_weights(
                q, k1, k2, scale=self.scale, mask=mask, key_padding_mask=kpm
            )
            if average_attn_weights:
                weights = weights.mean(1)
        if unbatched:
            out = out[0]
            weights = None if weights is None else weights[0]
        elif not self.batch_first:
            out = out.transpose(0, 1)
        return out, weights
