"""genlab.rate against the hand-written torch.logdet / numpy.linalg.slogdet code it replaces.

Peers compute what CRATE's measurement script does: per group, the N x N Gram matrix, I + a G,
batched ``torch.logdet`` (CPU) or ``numpy.linalg.slogdet``, halved and summed over heads. Inputs
are generated once per case; every case times genlab and each peer in the same run.

Run: ``bash scripts/bench.sh benches/bench_rate.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np
import pytest

from genlab import rate

torch = pytest.importorskip("torch")

from genlab.torch import rate as trate  # noqa: E402

EPS = 0.5
# The CRATE-on-CIFAR shape: B images, K heads, N tokens (64 patches + class token), p per head.
B, K, N, P = 256, 6, 65, 64
D = K * P
# coding_rate on long sequences.
B_LONG, N_LONG, D_LONG = 64, 1024, 384


@cache
def _data(name: str, dtype: str) -> Any:
    rng = np.random.default_rng(0)
    shapes = {
        "ZU": (B, K, N, P),
        "Z": (B, N, D),
        "U": (K, D, P),
        "Zlong": (B_LONG, N_LONG, D_LONG),
    }
    return rng.normal(size=shapes[name]).astype(dtype)


def _torch_logdet_rate(gram: Any, a: float) -> Any:
    """1/2 logdet(I + a G) per Gram matrix, by batched ``torch.logdet``."""
    eye = torch.eye(gram.shape[-1], dtype=gram.dtype, device=gram.device)
    return 0.5 * torch.logdet(eye + a * gram)


def _numpy_slogdet_rate(gram: Any, a: float) -> Any:
    """1/2 logdet(I + a G) per Gram matrix, by batched ``numpy.linalg.slogdet``."""
    return 0.5 * np.linalg.slogdet(np.eye(gram.shape[-1], dtype=gram.dtype) + a * gram)[1]


def _token_gram(X: Any) -> Any:
    """X X^T (the N x N Gram matrix of CRATE's script), numpy or torch."""
    return X @ (X.transpose(-1, -2) if isinstance(X, torch.Tensor) else np.swapaxes(X, -1, -2))


def _projected_impls(dtype: str) -> dict[str, Callable[[], Any]]:
    ZU = _data("ZU", dtype)
    ZUt = torch.from_numpy(ZU)
    a = P / (N * EPS**2)
    return {
        "genlab": lambda: rate.compressed_coding_rate_projected(ZU, eps=EPS),
        "torch.logdet": lambda: _torch_logdet_rate(_token_gram(ZUt), a).sum(-1),
        "numpy.slogdet": lambda: _numpy_slogdet_rate(_token_gram(ZU), a).sum(-1),
    }


def _with_u_impls(dtype: str) -> dict[str, Callable[[], Any]]:
    Z, U = _data("Z", dtype), _data("U", dtype)
    Zt, Ut = torch.from_numpy(Z), torch.from_numpy(U)
    a = P / (N * EPS**2)
    return {
        "genlab": lambda: rate.compressed_coding_rate(Z, U, eps=EPS),
        "torch.logdet": lambda: _torch_logdet_rate(
            _token_gram(torch.einsum("bnd,kdp->bknp", Zt, Ut)), a
        ).sum(-1),
        "numpy.slogdet": lambda: _numpy_slogdet_rate(
            _token_gram(np.einsum("bnd,kdp->bknp", Z, U, optimize=True)), a
        ).sum(-1),
    }


def _long_impls(dtype: str) -> dict[str, Callable[[], Any]]:
    Z = _data("Zlong", dtype)
    Zt = torch.from_numpy(Z)
    a = D_LONG / (N_LONG * EPS**2)
    # Peers factor the d x d side Z^T Z (d < N), as hand-written code for long sequences does.
    return {
        "genlab": lambda: rate.coding_rate(Z, eps=EPS),
        "torch.logdet": lambda: _torch_logdet_rate(Zt.transpose(-1, -2) @ Zt, a),
        "numpy.slogdet": lambda: _numpy_slogdet_rate(np.swapaxes(Z, -1, -2) @ Z, a),
    }


# case -> (implementations for a dtype, timed rounds)
CASES: dict[str, tuple[Callable[[str], dict[str, Callable[[], Any]]], int]] = {
    f"compressed_coding_rate_projected B={B} K={K} N={N} p={P}": (_projected_impls, 5),
    f"compressed_coding_rate Z,U B={B} N={N} d={D} K={K} p={P}": (_with_u_impls, 5),
    f"coding_rate B={B_LONG} N={N_LONG} d={D_LONG}": (_long_impls, 3),
}
IMPLS = ["genlab", "torch.logdet", "numpy.slogdet"]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("impl", IMPLS)
def test_rate(run_case: Callable[..., Any], case: str, dtype: str, impl: str) -> None:
    make, rounds = CASES[case]
    run_case(f"{case} {dtype}", impl, make(dtype)[impl], rounds=rounds)


def test_values_agree() -> None:
    """The timed implementations compute the same numbers (float64)."""
    for make, _ in CASES.values():
        impls = make("float64")
        ours = np.asarray(impls["genlab"]())
        np.testing.assert_allclose(impls["torch.logdet"]().numpy(), ours, rtol=1e-8)
        np.testing.assert_allclose(impls["numpy.slogdet"](), ours, rtol=1e-8)


# The differentiable torch version, forward and backward on CPU, against torch.logdet autograd.
@pytest.mark.parametrize("impl", ["genlab", "torch.logdet"])
def test_torch_forward_backward(run_case: Callable[..., Any], impl: str) -> None:
    ZU = torch.from_numpy(_data("ZU", "float64")[:64]).requires_grad_()
    a = P / (N * EPS**2)

    def step() -> None:
        ZU.grad = None
        if impl == "genlab":
            loss = trate.compressed_coding_rate_projected(ZU, eps=EPS).sum()
        else:
            loss = _torch_logdet_rate(_token_gram(ZU), a).sum()
        loss.backward()

    run_case(f"torch forward+backward B=64 K={K} N={N} p={P} float64 (CPU)", impl, step)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("impl", ["genlab", "torch.logdet"])
def test_cuda(run_case: Callable[..., Any], dtype: str, impl: str) -> None:
    ZU = torch.from_numpy(_data("ZU", dtype)).cuda()
    a = P / (N * EPS**2)
    compute = torch.float64 if dtype == "float64" else torch.float32

    def run() -> None:
        if impl == "genlab":
            trate.compressed_coding_rate_projected(ZU, eps=EPS, compute_dtype=compute)
        else:
            _torch_logdet_rate(_token_gram(ZU), a).sum(-1)
        torch.cuda.synchronize()

    run_case(f"CUDA compressed_coding_rate_projected B={B} {dtype}", impl, run)
