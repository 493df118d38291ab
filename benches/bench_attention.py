"""Tensor attention: genlab against its peers, in the same run.

Cases (run with ``bash scripts/bench.sh benches/bench_attention.py``):

- exact Rust kernel, n = 256, d = 16, float64, against the materialized torch einsum on CPU
  (target: at least 3x faster);
- polynomial method, n = 4096, d = 4, degree 6, logit range <= 1, against genlab's exact kernel
  (target: at least 100x faster with relative Frobenius error <= 1e-4; the exact side takes about a
  minute on 2 cores and runs once);
- torch module forward + backward on CUDA (materialized, chunked, polynomial) for n up to 1024,
  skipped without a GPU.

The error-vs-degree table of the polynomial method (logit ranges 1, 3, 8) is printed by
``python benches/bench_attention.py --error-table``.
"""

from __future__ import annotations

import argparse
import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from genlab.attention import (
    logit_bound,
    poly_plan,
    tensor_attention,
    tensor_attention_poly,
)
from genlab.errors import NumericalWarning


def bounded_inputs(n: int, d: int, dv: int, logit_range: float, seed: int = 0) -> list[np.ndarray]:
    """Queries and keys uniform in [-a, a] with s d a^3 = logit_range (s = 1 / sqrt(d)), and one
    query and key pair at (a, ..., a), so that the logits fill [-T, T] with T = logit_range
    attained (and measured exactly by logit_bound); standard normal values."""
    rng = np.random.default_rng(seed)
    a = (logit_range * math.sqrt(d) / d) ** (1 / 3)
    keys = [rng.uniform(-a, a, (n, d)) for _ in range(3)]
    for k in keys:
        k[0] = a
    return keys + [rng.standard_normal((n, dv)) for _ in range(2)]


def relative_frobenius(approx: np.ndarray, exact: np.ndarray) -> float:
    return float(np.linalg.norm(approx - exact) / np.linalg.norm(exact))


def torch_materialized(x: list[np.ndarray]) -> Callable[[], Any]:
    """The peer: the n x n x n logits by einsum, softmax over the n^2 pairs, einsum with V1 * V2."""
    torch = pytest.importorskip("torch")
    q, k1, k2, v1, v2 = (torch.from_numpy(a) for a in x)
    n, d = q.shape

    def run() -> Any:
        logits = torch.einsum("il,jl,kl->ijk", q / math.sqrt(d), k1, k2).reshape(n, n * n)
        pairs = (v1[:, None, :] * v2[None, :, :]).reshape(n * n, -1)
        return torch.softmax(logits, -1) @ pairs

    return run


@pytest.mark.parametrize("impl", ["genlab", "torch-einsum"])
def test_exact_n256_d16(run_case: Callable[..., Any], impl: str) -> None:
    x = [np.random.default_rng(i).standard_normal((256, 16)) for i in range(5)]
    case = "tensor_attention exact n=256 d=16 f64"
    if impl == "genlab":
        out = run_case(case, impl, lambda: tensor_attention(*x), rounds=10)
    else:
        out = run_case(case, impl, torch_materialized(x), rounds=5).numpy()
    np.testing.assert_allclose(out, tensor_attention(*x), rtol=1e-10, atol=1e-13)


_EXACT_4096: dict[str, np.ndarray] = {}


@pytest.mark.parametrize("impl", ["exact", "genlab"])
def test_poly_n4096_d4_degree6(run_case: Callable[..., Any], benchmark: Any, impl: str) -> None:
    x = bounded_inputs(4096, 4, 4, 1.0)
    assert logit_bound(*x[:3]) <= 1.0 + 1e-12
    case = "tensor_attention poly n=4096 d=4 g=6 T<=1 (peer: exact)"
    if impl == "exact":
        _EXACT_4096["out"] = run_case(case, impl, lambda: tensor_attention(*x), rounds=1, warmup=0)
        return
    res = run_case(case, impl, lambda: tensor_attention_poly(*x, degree=6), rounds=10)
    assert res.degree == 6
    assert res.rank == 210
    benchmark.extra_info["error_bound"] = res.error_bound
    if "out" in _EXACT_4096:  # the exact side ran in this session
        err = relative_frobenius(res.output, _EXACT_4096["out"])
        benchmark.extra_info["relative_frobenius_error"] = err
        assert err <= 1e-4


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


@pytest.mark.skipif(not _cuda_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("n", [256, 512, 1024])
@pytest.mark.parametrize("impl", ["genlab", "materialized", "poly"])
def test_torch_cuda_forward_backward(run_case: Callable[..., Any], impl: str, n: int) -> None:
    """TensorAttention-sized heads (batch 1, 4 heads, head width 16) in float32 on CUDA: the
    chunked exact path is 'genlab', the materialized path and the polynomial path its peers."""
    import torch

    from genlab.torch.attention import tensor_attention as torch_tensor_attention

    if impl == "materialized" and n > 512:
        pytest.skip("the n^3 logits of 4 heads at n = 1024 take 16 GiB")
    gen = torch.Generator(device="cuda").manual_seed(0)
    x = [
        (0.3 * torch.randn(1, 4, n, 16, device="cuda", generator=gen)).requires_grad_()
        for _ in range(5)
    ]
    method = {"genlab": "chunked", "materialized": "materialized", "poly": "poly"}[impl]
    extra: dict[str, Any] = (
        {"degree": 4, "basis": "minimax", "logit_range": 4.0} if impl == "poly" else {}
    )

    def step() -> None:
        out = torch_tensor_attention(*x, mask="causal", method=method, validate=False, **extra)
        out.sum().backward()
        torch.cuda.synchronize()

    run_case(f"torch cuda fwd+bwd causal n={n} h=4 d=16 f32", impl, step, rounds=3)


def error_table(n: int = 256, d: int = 4, dv: int = 4) -> str:
    """Markdown table: error bound and measured relative Frobenius error against the exact
    kernel, per logit range, degree and basis."""
    bases = ("chebyshev", "minimax", "taylor")
    head = "| T | degree | rank | " + " | ".join(f"{b} bound | {b} error" for b in bases) + " |"
    lines = [
        f"n = {n}, d = {d}: queries and keys uniform, scaled so that the logits fill [-T, T] "
        "(T attained), standard normal values. bound: the plan's error bound (per entry, relative "
        "to max |v1 v2|); error: measured relative Frobenius error against the exact kernel.",
        "",
        head,
        "|" + "---|" * (3 + 2 * len(bases)),
    ]
    for target in (1.0, 3.0, 8.0):
        x = bounded_inputs(n, d, dv, target, seed=1)
        t = logit_bound(*x[:3])
        exact = tensor_attention(*x)
        for degree in range(0, 21, 2):
            cells = []
            for basis in bases:
                try:
                    plan = poly_plan(t, d, degree=degree, basis=basis)
                except ValueError:
                    cells += ["not positive", "-"]
                    continue
                with warnings.catch_warnings():  # large bounds at low degree are the point
                    warnings.simplefilter("ignore", NumericalWarning)
                    out = tensor_attention_poly(*x, degree=degree, basis=basis).output
                cells += [f"{plan.error_bound:.1e}", f"{relative_frobenius(out, exact):.1e}"]
            rank = math.comb(d + degree, degree)
            lines.append(f"| {t:.2f} | {degree} | {rank} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description="Tensor attention benchmarks (run with pytest).")
    parser.add_argument(
        "--error-table", action="store_true", help="print the error-vs-degree table"
    )
    args = parser.parse_args()
    if args.error_table:
        print(error_table())
    else:
        parser.print_help()


if __name__ == "__main__":
    main()
