"""genlab.torch.rate: equal to genlab.rate (1e-10 in float64), differentiable (gradcheck), CPU and
CUDA, with the same errors."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from genlab import rate as np_rate  # noqa: E402
from genlab.errors import NumericalWarning  # noqa: E402
from genlab.torch import rate as trate  # noqa: E402

F64 = torch.float64

# (name, torch function, numpy function, needs U, extra keyword arguments)
CASES: list[tuple[str, Any, Any, bool, dict[str, Any]]] = [
    ("coding_rate", trate.coding_rate, np_rate.coding_rate, False, {}),
    ("compressed", trate.compressed_coding_rate, np_rate.compressed_coding_rate, True, {}),
    ("reduction", trate.rate_reduction, np_rate.rate_reduction, True, {}),
    (
        "srr_l1",
        trate.sparse_rate_reduction,
        np_rate.sparse_rate_reduction,
        True,
        {"lam": 0.3, "sparsity": "l1"},
    ),
    (
        "srr_l0",
        trate.sparse_rate_reduction,
        np_rate.sparse_rate_reduction,
        True,
        {"lam": 0.3, "sparsity": "l0"},
    ),
    ("measure", trate.srr_measure, np_rate.srr_measure, True, {}),
    ("measure_l1", trate.srr_measure, np_rate.srr_measure, True, {"lam": 2.0, "sparsity": "l1"}),
]
CASE_IDS = [c[0] for c in CASES]


def _inputs(
    shape: tuple[int, ...] = (3, 2, 9, 6), k: int = 3, p: int = 4, seed: int = 0
) -> tuple[Any, Any]:
    g = torch.Generator().manual_seed(seed)
    Z = torch.relu(torch.randn(shape, generator=g, dtype=F64))
    U = torch.randn(k, shape[-1], p, generator=g, dtype=F64)
    return Z, U


def _call(fn: Any, needs_u: bool, Z: Any, U: Any, **kw: Any) -> Any:
    return fn(Z, U, **kw) if needs_u else fn(Z, **kw)


# --------------------------------------------------------------------------------------------
# Values


@pytest.mark.parametrize(("name", "tfn", "nfn", "needs_u", "extra"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("shape", [(3, 2, 9, 6), (4, 6, 9), (7, 5)])
def test_equals_numpy_api_in_float64(
    name: str,
    tfn: Any,
    nfn: Any,
    needs_u: bool,
    extra: dict[str, Any],
    normalize: bool,
    shape: tuple[int, ...],
) -> None:
    Z, U = _inputs(shape)
    want = _call(nfn, needs_u, Z.numpy(), U.numpy(), eps=0.6, normalize_tokens=normalize, **extra)
    # Through torch (a gradient is needed) and through the Rust kernel (none is).
    traced = _call(
        tfn,
        needs_u,
        Z.clone().requires_grad_(),
        U,
        eps=0.6,
        normalize_tokens=normalize,
        **extra,
    )
    direct = _call(tfn, needs_u, Z, U, eps=0.6, normalize_tokens=normalize, **extra)
    for got in (traced, direct):
        assert got.shape == Z.shape[:-2]
        assert got.dtype == F64
        np.testing.assert_allclose(got.detach().numpy(), want, rtol=1e-10, atol=1e-10)


def test_projected_and_sparsity_equal_numpy() -> None:
    Z, U = _inputs((5, 11, 8))
    ZU = torch.einsum("bnd,kdp->bknp", Z, U)
    for normalize in (False, True):
        want = np_rate.compressed_coding_rate_projected(
            ZU.numpy(), eps=0.3, normalize_tokens=normalize
        )
        for x in (ZU, ZU.clone().requires_grad_()):
            got = trate.compressed_coding_rate_projected(x, eps=0.3, normalize_tokens=normalize)
            np.testing.assert_allclose(got.detach().numpy(), want, rtol=1e-10, atol=1e-10)
    for kind in ("l0", "l1"):
        want = np_rate.sparsity(Z.numpy(), kind=kind)
        for x in (Z, Z.clone().requires_grad_()):
            got = trate.sparsity(x, kind=kind)
            np.testing.assert_allclose(got.detach().numpy(), want, rtol=1e-12)


def test_float32_input_returns_float32_computed_in_float64() -> None:
    Z, U = _inputs((4, 30, 8))
    Z32, U32 = Z.float(), U.float()
    want = np_rate.compressed_coding_rate(Z32.numpy(), U32.numpy(), eps=0.5)
    for z in (Z32, Z32.clone().requires_grad_()):
        got = trate.compressed_coding_rate(z, U32, eps=0.5)
        assert got.dtype == torch.float32
        np.testing.assert_allclose(got.detach().numpy(), want, rtol=1e-6)
    # float32 compute: faster on GPUs, still close for unit-scale tokens.
    fast = trate.compressed_coding_rate(Z32, U32, eps=0.5, compute_dtype=torch.float32)
    assert fast.dtype == torch.float32
    np.testing.assert_allclose(fast.numpy(), want, rtol=1e-4)


def test_rust_kernel_is_used_only_without_gradients(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    original = np_rate.coding_rate

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append("rust")
        return original(*args, **kwargs)

    monkeypatch.setattr(np_rate, "coding_rate", spy)
    Z, _ = _inputs((2, 5, 3))
    trate.coding_rate(Z, eps=0.5)
    assert calls == ["rust"]
    Zg = Z.clone().requires_grad_()
    trate.coding_rate(Zg, eps=0.5)
    trate.coding_rate(Z, eps=0.5, compute_dtype=torch.float32)
    assert calls == ["rust"]
    with torch.no_grad():
        trate.coding_rate(Zg, eps=0.5)
    assert calls == ["rust", "rust"]


# --------------------------------------------------------------------------------------------
# Gradients


def _gradcheck(fn: Callable[..., Any], *inputs: Any) -> None:
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("shape", [(2, 7, 3), (2, 3, 7), (4, 4)])
@pytest.mark.parametrize("normalize", [False, True])
def test_gradcheck_coding_rate(shape: tuple[int, ...], normalize: bool) -> None:
    Z = torch.randn(shape, dtype=F64, generator=torch.Generator().manual_seed(1))
    Z.requires_grad_()
    _gradcheck(lambda z: trate.coding_rate(z, eps=0.7, normalize_tokens=normalize), Z)


@pytest.mark.parametrize(("name", "tfn", "nfn", "needs_u", "extra"), CASES[1:], ids=CASE_IDS[1:])
def test_gradcheck_in_z_and_u(
    name: str, tfn: Any, nfn: Any, needs_u: bool, extra: dict[str, Any]
) -> None:
    g = torch.Generator().manual_seed(2)
    # Strictly positive entries: the l1 term is differentiable there.
    Z = (torch.rand(2, 6, 5, dtype=F64, generator=g) + 0.1).requires_grad_()
    U = torch.randn(2, 5, 3, dtype=F64, generator=g).requires_grad_()
    for normalize in (False, True):

        def fn(z: Any, u: Any, normalize: bool = normalize) -> Any:
            return tfn(z, u, eps=0.5, normalize_tokens=normalize, **extra)

        _gradcheck(fn, Z, U)


def test_gradcheck_projected_and_double_backward() -> None:
    g = torch.Generator().manual_seed(3)
    ZU = torch.randn(2, 3, 5, 4, dtype=F64, generator=g).requires_grad_()
    _gradcheck(lambda x: trate.compressed_coding_rate_projected(x, eps=0.5), ZU)
    for shape in [(2, 6, 3), (2, 3, 6)]:
        Z = torch.randn(shape, dtype=F64, generator=g).requires_grad_()
        assert torch.autograd.gradgradcheck(lambda z: trate.coding_rate(z, eps=0.5), (Z,))


def test_gradient_is_the_closed_form() -> None:
    """d/dZ 1/2 logdet(I + a Z^T Z) = a Z (I + a Z^T Z)^{-1}, on either Gram side."""
    g = torch.Generator().manual_seed(4)
    for n, d in [(9, 4), (4, 9)]:
        Z = torch.randn(n, d, dtype=F64, generator=g).requires_grad_()
        trate.coding_rate(Z, eps=0.5).backward()
        a = d / (n * 0.25)
        want = a * Z.detach() @ torch.linalg.inv(torch.eye(d, dtype=F64) + a * Z.detach().T @ Z)
        assert Z.grad is not None
        torch.testing.assert_close(Z.grad, want, rtol=1e-10, atol=1e-12)


def test_zero_token_with_normalization_has_finite_gradient() -> None:
    Z = torch.randn(6, 4, dtype=F64)
    Z[2] = 0.0
    Z.requires_grad_()
    trate.coding_rate(Z, eps=0.5, normalize_tokens=True).backward()
    assert Z.grad is not None
    assert torch.isfinite(Z.grad).all()


def test_l0_sparsity_passes_no_gradient_l1_does() -> None:
    Z = torch.randn(5, 4, dtype=F64).requires_grad_()
    assert not trate.sparsity(Z, kind="l0").requires_grad  # a count: constant in Z
    trate.sparsity(Z, kind="l1").backward()
    assert Z.grad is not None
    torch.testing.assert_close(Z.grad, torch.sign(Z.detach()) / 5)


# --------------------------------------------------------------------------------------------
# Numerical safeguards


def test_jitter_warns_and_stays_finite_on_the_torch_path() -> None:
    g = torch.Generator().manual_seed(5)
    Z = torch.randn(16, 6, 1, dtype=F64, generator=g) @ torch.randn(
        16, 1, 5, dtype=F64, generator=g
    )
    Z.requires_grad_()
    with pytest.warns(NumericalWarning, match=r"jitter was added"):
        R = trate.coding_rate(Z, eps=1e-15)
    assert torch.isfinite(R).all()
    R.sum().backward()
    assert Z.grad is not None
    assert torch.isfinite(Z.grad).all()
    # The Rust path warns too.
    with pytest.warns(NumericalWarning):
        trate.coding_rate(Z.detach(), eps=1e-15)


def test_no_warning_on_ordinary_input() -> None:
    Z, U = _inputs()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trate.srr_measure(Z.requires_grad_(), U, eps=0.5).sum().backward()


# --------------------------------------------------------------------------------------------
# Bad input


def test_bad_input_errors() -> None:
    Z, U = _inputs((2, 5, 4))
    with pytest.raises(TypeError, match=r"^Z: expected a torch.Tensor, got ndarray"):
        trate.coding_rate(Z.numpy(), eps=1.0)
    with pytest.raises(
        TypeError, match=r"^Z: expected a floating-point tensor, got dtype torch.int64"
    ):
        trate.coding_rate(torch.ones(3, 2, dtype=torch.int64), eps=1.0)
    with pytest.raises(ValueError, match=r"^Z: .*at least 2 axes"):
        trate.coding_rate(torch.ones(3, dtype=F64), eps=1.0)
    with pytest.raises(ValueError, match=r"^ZU: .*at least 3 axes"):
        trate.compressed_coding_rate_projected(torch.ones(3, 2, dtype=F64), eps=1.0)
    with pytest.raises(ValueError, match=r"^Z: expected non-empty axes"):
        trate.coding_rate(torch.ones(2, 0, 3, dtype=F64), eps=1.0)
    with pytest.raises(ValueError, match=r"^U: expected shape \(K, d, p\) with d = 4"):
        trate.compressed_coding_rate(Z, torch.ones(2, 3, 3, dtype=F64), eps=1.0)
    with pytest.raises(ValueError, match=r"^U: expected a tensor of shape \(K, d, p\)"):
        trate.rate_reduction(Z, torch.ones(4, 3, dtype=F64), eps=1.0)
    bad = Z.clone()
    bad[1, 2, 3] = float("nan")
    with pytest.raises(
        ValueError, match=r"^Z: contains NaN or infinity \(first at flat index 31\)"
    ):
        trate.coding_rate(bad.requires_grad_(), eps=1.0)
    badu = U.clone()
    badu[0, 0, 0] = float("inf")
    with pytest.raises(ValueError, match=r"^U: contains NaN or infinity"):
        trate.srr_measure(Z, badu, eps=1.0)
    for eps in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match=r"^eps: .*not epsilon\^2"):
            trate.coding_rate(Z, eps=eps)
    with pytest.raises(TypeError, match=r"^eps: expected a real number"):
        trate.coding_rate(Z, eps=torch.tensor(0.5))
    with pytest.raises(ValueError, match=r"^lam: "):
        trate.sparse_rate_reduction(Z, U, eps=1.0, lam=-1.0)
    with pytest.raises(ValueError, match=r"^sparsity: expected one of"):
        trate.srr_measure(Z, U, eps=1.0, sparsity="l2")
    with pytest.raises(ValueError, match=r"^kind: expected one of"):
        trate.sparsity(Z, kind="l2")
    with pytest.raises(ValueError, match=r"^compute_dtype: "):
        trate.coding_rate(Z, eps=1.0, compute_dtype=torch.float16)


# --------------------------------------------------------------------------------------------
# CUDA (skipped without a GPU)


@pytest.mark.cuda
@pytest.mark.parametrize(("name", "tfn", "nfn", "needs_u", "extra"), CASES, ids=CASE_IDS)
def test_cuda_equals_numpy_api(
    name: str, tfn: Any, nfn: Any, needs_u: bool, extra: dict[str, Any]
) -> None:
    Z, U = _inputs()
    want = _call(nfn, needs_u, Z.numpy(), U.numpy(), eps=0.6, **extra)
    got = _call(tfn, needs_u, Z.cuda(), U.cuda(), eps=0.6, **extra)
    assert got.device.type == "cuda"
    np.testing.assert_allclose(got.cpu().numpy(), want, rtol=1e-10, atol=1e-10)


@pytest.mark.cuda
def test_cuda_gradcheck_and_float32() -> None:
    g = torch.Generator().manual_seed(6)
    Z = (torch.rand(2, 6, 5, dtype=F64, generator=g) + 0.1).cuda().requires_grad_()
    U = torch.randn(2, 5, 3, dtype=F64, generator=g).cuda().requires_grad_()
    _gradcheck(lambda z, u: trate.srr_measure(z, u, eps=0.5, sparsity="l1"), Z, U)
    Z32 = Z.detach().float()
    got = trate.coding_rate(Z32, eps=0.5, compute_dtype=torch.float32)
    assert got.dtype == torch.float32
    assert got.device.type == "cuda"
    want = np_rate.coding_rate(Z32.cpu().numpy(), eps=0.5)
    np.testing.assert_allclose(got.cpu().numpy(), want, rtol=1e-4)
    with pytest.raises(ValueError, match=r"^U: expected a tensor on Z's device"):
        trate.compressed_coding_rate(Z, U.detach().cpu(), eps=0.5)
