"""genlab.rate against a numpy slogdet reference written here, plus invariances and bad input."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from genlab import rate
from genlab.errors import NumericalWarning

# --------------------------------------------------------------------------------------------
# Reference: slogdet of I + a G on either Gram side, in float64.


def ref_coding_rate(Z: NDArray[Any], eps: float, side: str = "features") -> NDArray[np.float64]:
    """1/2 logdet(I + d/(N eps^2) Z^T Z) (side="features") or with Z Z^T (side="tokens")."""
    Z = np.asarray(Z, dtype=np.float64)
    n, d = Z.shape[-2:]
    a = d / (n * eps**2)
    Zt = np.swapaxes(Z, -1, -2)
    gram = Zt @ Z if side == "features" else Z @ Zt
    sign, logdet = np.linalg.slogdet(np.eye(gram.shape[-1]) + a * gram)
    assert np.all(sign > 0)
    return 0.5 * logdet


def ref_normalize(Z: NDArray[Any]) -> NDArray[np.float64]:
    norm = np.linalg.norm(Z, axis=-1, keepdims=True)
    return np.asarray(Z / np.where(norm > 0, norm, 1.0), dtype=np.float64)


def ref_compressed(
    Z: NDArray[Any], U: NDArray[Any], eps: float, normalize: bool = False
) -> NDArray[np.float64]:
    ZU = np.einsum("...nd,kdp->...knp", np.asarray(Z, dtype=np.float64), U)
    if normalize:
        ZU = ref_normalize(ZU)
    return ref_coding_rate(ZU, eps).sum(axis=-1)


def ref_l0(Z: NDArray[Any]) -> NDArray[np.float64]:
    return np.count_nonzero(Z, axis=(-2, -1)) / Z.shape[-2]


def ref_l1(Z: NDArray[Any]) -> NDArray[np.float64]:
    return np.abs(np.asarray(Z, dtype=np.float64)).sum(axis=(-2, -1)) / Z.shape[-2]


def low_rank(rng: np.random.Generator, shape: tuple[int, ...], rank: int) -> NDArray[np.float64]:
    *batch, n, d = shape
    return rng.normal(size=(*batch, n, rank)) @ rng.normal(size=(*batch, rank, d))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


# --------------------------------------------------------------------------------------------
# Values


@pytest.mark.parametrize(
    "shape",
    [(7, 3), (3, 7), (5, 5), (1, 4), (4, 1), (4, 65, 64), (2, 3, 10, 6), (6, 2, 2)],
)
@pytest.mark.parametrize("eps", [0.1, 0.5, 2.0])
def test_coding_rate_matches_slogdet(rng: np.random.Generator, shape: Any, eps: float) -> None:
    Z = rng.normal(size=shape)
    got = rate.coding_rate(Z, eps=eps)
    assert got.shape == shape[:-2]
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, ref_coding_rate(Z, eps), rtol=1e-10, atol=1e-12)


def test_both_gram_sides_agree_with_the_result(rng: np.random.Generator) -> None:
    for shape in [(3, 40, 9), (3, 9, 40)]:
        Z = rng.normal(size=shape)
        got = rate.coding_rate(Z, eps=0.3)
        for side in ("features", "tokens"):
            np.testing.assert_allclose(got, ref_coding_rate(Z, 0.3, side), rtol=1e-10)


@pytest.mark.parametrize("rank", [1, 3])
def test_low_rank_and_near_singular_tokens(rng: np.random.Generator, rank: int) -> None:
    Z = low_rank(rng, (3, 30, 12), rank)
    np.testing.assert_allclose(rate.coding_rate(Z, eps=0.5), ref_coding_rate(Z, 0.5), rtol=1e-10)
    near = Z + 1e-9 * rng.normal(size=Z.shape)
    np.testing.assert_allclose(
        rate.coding_rate(near, eps=0.5), ref_coding_rate(near, 0.5), rtol=1e-10
    )


def exact_coding_rate(Z: NDArray[np.float64], eps: float) -> NDArray[np.float64]:
    """1/2 sum_i log1p(a sigma_i^2) from the singular values of Z: accurate even where a G is far
    larger than I (where any method that forms I + a G loses the identity's digits)."""
    n, d = Z.shape[-2:]
    sigma = np.linalg.svd(Z, compute_uv=False)
    return 0.5 * np.log1p(d / (n * eps**2) * sigma**2).sum(axis=-1)


@pytest.mark.parametrize(("eps", "rtol"), [(1e-2, 1e-10), (1e-3, 1e-8), (1e-4, 1e-6)])
def test_large_constant(rng: np.random.Generator, eps: float, rtol: float) -> None:
    """a = d/(N eps^2) from 1e4 to 1e8 on rank-4 tokens: no jitter, and as accurate as float64
    allows (the error of forming I + a G grows with a)."""
    Z = low_rank(rng, (4, 20, 16), 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NumericalWarning)
        got = rate.coding_rate(Z, eps=eps)
    exact = exact_coding_rate(Z, eps)
    np.testing.assert_allclose(got, exact, rtol=rtol)
    # As close as numpy's slogdet of the same matrix (within a factor of 10).
    slogdet_error = np.abs(ref_coding_rate(Z, eps) - exact).max()
    assert np.abs(got - exact).max() <= 10 * slogdet_error + 1e-12 * np.abs(exact).max()


def test_float32_is_computed_in_float64(rng: np.random.Generator) -> None:
    Z = rng.normal(size=(5, 30, 8)).astype(np.float32)
    got = rate.coding_rate(Z, eps=0.5)
    assert got.dtype == np.float64
    # Exactly the float64 computation on the float32 values, not a float32 computation.
    np.testing.assert_allclose(got, ref_coding_rate(Z.astype(np.float64), 0.5), rtol=1e-10)
    U = rng.normal(size=(2, 8, 3))
    np.testing.assert_allclose(
        rate.compressed_coding_rate(Z, U, eps=0.5), ref_compressed(Z, U, 0.5), rtol=1e-10
    )
    ZU = np.einsum("bnd,kdp->bknp", Z.astype(np.float64), U).astype(np.float32)
    np.testing.assert_allclose(
        rate.compressed_coding_rate_projected(ZU, eps=0.5),
        ref_coding_rate(ZU, 0.5).sum(-1),
        rtol=1e-10,
    )


def test_integer_and_list_input_become_float64() -> None:
    Z = [[1, 0], [0, 2], [1, 1]]
    np.testing.assert_allclose(rate.coding_rate(Z, eps=1.0), ref_coding_rate(np.array(Z), 1.0))


def test_normalize_tokens(rng: np.random.Generator) -> None:
    Z = rng.normal(size=(3, 12, 5)) * rng.uniform(0.1, 10, size=(3, 12, 1))
    Z[0, 4] = 0.0  # a zero token stays zero
    np.testing.assert_allclose(
        rate.coding_rate(Z, eps=0.5, normalize_tokens=True),
        ref_coding_rate(ref_normalize(Z), 0.5),
        rtol=1e-10,
    )
    U = rng.normal(size=(2, 5, 3))
    np.testing.assert_allclose(
        rate.compressed_coding_rate(Z, U, eps=0.5, normalize_tokens=True),
        ref_compressed(Z, U, 0.5, normalize=True),
        rtol=1e-10,
    )


@pytest.mark.parametrize("batch", [(), (4,), (2, 3)])
def test_compressed_rate_forms_match_the_reference(
    rng: np.random.Generator, batch: tuple[int, ...]
) -> None:
    Z = rng.normal(size=(*batch, 9, 12))
    U = rng.normal(size=(3, 12, 4))
    want = ref_compressed(Z, U, 0.4)
    got = rate.compressed_coding_rate(Z, U, eps=0.4)
    assert got.shape == batch
    np.testing.assert_allclose(got, want, rtol=1e-10)
    ZU = np.einsum("...nd,kdp->...knp", Z, U)
    projected = rate.compressed_coding_rate_projected(ZU, eps=0.4)
    assert projected.shape == batch
    np.testing.assert_allclose(projected, want, rtol=1e-10)


def test_identity_blocks_give_the_sum_of_block_rates(rng: np.random.Generator) -> None:
    K, p, N = 4, 3, 10
    Z = rng.normal(size=(5, N, K * p))
    U = np.stack([np.eye(K * p)[:, k * p : (k + 1) * p] for k in range(K)])
    blocks = sum(rate.coding_rate(Z[..., k * p : (k + 1) * p], eps=0.5) for k in range(K))
    np.testing.assert_allclose(rate.compressed_coding_rate(Z, U, eps=0.5), blocks, rtol=1e-12)


def test_reductions_and_sparsity(rng: np.random.Generator) -> None:
    Z = np.maximum(rng.normal(size=(2, 3, 16, 6)), 0.0)
    U = rng.normal(size=(2, 6, 3))
    R = ref_coding_rate(Z, 0.5)
    Rc = ref_compressed(Z, U, 0.5)
    np.testing.assert_allclose(rate.sparsity(Z), ref_l0(Z))
    np.testing.assert_allclose(rate.sparsity(Z, kind="l1"), ref_l1(Z), rtol=1e-13)
    np.testing.assert_allclose(rate.rate_reduction(Z, U, eps=0.5), R - Rc, rtol=1e-9, atol=1e-12)
    for kind, s in (("l0", ref_l0(Z)), ("l1", ref_l1(Z))):
        srr = rate.sparse_rate_reduction(Z, U, eps=0.5, lam=0.3, sparsity=kind)
        np.testing.assert_allclose(srr, R - Rc - 0.3 * s, rtol=1e-9, atol=1e-12)
        measure = rate.srr_measure(Z, U, eps=0.5, lam=0.3, sparsity=kind)
        np.testing.assert_array_equal(measure, -srr)
    np.testing.assert_allclose(rate.srr_measure(Z, U, eps=0.5), ref_l0(Z) + Rc - R, rtol=1e-9)


def test_empty_batch_and_single_group_shapes() -> None:
    assert rate.coding_rate(np.zeros((0, 4, 3)), eps=1.0).shape == (0,)
    assert rate.compressed_coding_rate_projected(np.zeros((2, 0, 1, 4, 3)), eps=1.0).shape == (2, 0)
    single = rate.coding_rate(np.ones((4, 3)), eps=1.0)
    assert single.shape == ()
    assert rate.sparsity(np.ones((4, 3))).shape == ()


def test_thread_count_does_not_change_the_result(rng: np.random.Generator) -> None:
    Z = rng.normal(size=(64, 33, 20))
    U = rng.normal(size=(4, 20, 5))
    for fn in (
        lambda n: rate.coding_rate(Z, eps=0.5, n_jobs=n),
        lambda n: rate.compressed_coding_rate(Z, U, eps=0.5, n_jobs=n),
    ):
        np.testing.assert_array_equal(fn(1), fn(2))
        np.testing.assert_array_equal(fn(1), fn(-1))


def test_zero_tokens_have_zero_rate() -> None:
    assert rate.coding_rate(np.zeros((3, 5, 4)), eps=0.1).tolist() == [0.0, 0.0, 0.0]
    assert float(rate.coding_rate(np.zeros((5, 4)), eps=0.1, normalize_tokens=True)) == 0.0


# --------------------------------------------------------------------------------------------
# Numerical safeguards


def test_jitter_warns_and_never_returns_nan(rng: np.random.Generator) -> None:
    # Rank one with a = d/(N eps^2) ~ 1e29: float64 cannot hold I + a G (the identity rounds
    # away), Cholesky meets non-positive pivots, and the kernel jitters.
    u, v = rng.normal(size=(16, 6, 1)), rng.normal(size=(16, 1, 5))
    Z = u @ v
    with pytest.warns(NumericalWarning, match=r"^coding_rate: .*jitter was added") as record:
        got = rate.coding_rate(Z, eps=1e-15)
    assert record[0].filename == __file__  # the warning points at the caller
    assert np.all(np.isfinite(got))
    # The large eigenvalue is kept; the others can only grow.
    top = 0.5 * np.log1p(5 / (6 * 1e-30) * (Z**2).sum(axis=(-2, -1)))
    assert np.all(got >= top - 1e-6)
    U = np.stack([np.eye(5)[:, :3], np.eye(5)[:, 2:]])
    with pytest.warns(NumericalWarning, match=r"^rate_reduction: ") as record:
        dr = rate.rate_reduction(Z, U, eps=1e-15)
    assert record[0].filename == __file__
    assert np.all(np.isfinite(dr))


def test_overflowing_gram_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"overflows float64"):
        rate.coding_rate(np.full((3, 2), 1e200), eps=1.0)


# --------------------------------------------------------------------------------------------
# Properties


finite_floats = st.floats(-10, 10, allow_nan=False, allow_infinity=False)


@st.composite
def token_groups(draw: st.DrawFn) -> NDArray[np.float64]:
    n = draw(st.integers(1, 8))
    d = draw(st.integers(1, 8))
    seed = draw(st.integers(0, 2**32 - 1))
    scale = draw(st.sampled_from([1e-3, 1.0, 30.0]))
    return np.random.default_rng(seed).normal(size=(n, d)) * scale


@settings(max_examples=60)
@given(Z=token_groups(), eps=st.sampled_from([0.05, 0.5, 3.0]), seed=st.integers(0, 1000))
def test_invariances_and_bounds(Z: NDArray[np.float64], eps: float, seed: int) -> None:
    g = np.random.default_rng(seed)
    n, d = Z.shape
    R = float(rate.coding_rate(Z, eps=eps))
    assert R >= 0.0
    # Orthogonal change of feature basis.
    Q, _ = np.linalg.qr(g.normal(size=(d, d)))
    assert float(rate.coding_rate(Z @ Q, eps=eps)) == pytest.approx(R, rel=1e-9, abs=1e-9)
    # Token permutation.
    assert float(rate.coding_rate(Z[g.permutation(n)], eps=eps)) == pytest.approx(
        R, rel=1e-12, abs=1e-12
    )
    # A larger eps codes with fewer bits.
    assert float(rate.coding_rate(Z, eps=2 * eps)) <= R + 1e-12
    # Against the reference, on either side.
    assert float(ref_coding_rate(Z, eps, "tokens")) == pytest.approx(R, rel=1e-9, abs=1e-9)


@settings(max_examples=40)
@given(Z=token_groups(), k=st.integers(1, 3), p=st.integers(1, 4), seed=st.integers(0, 1000))
def test_compressed_rate_properties(Z: NDArray[np.float64], k: int, p: int, seed: int) -> None:
    g = np.random.default_rng(seed)
    d = Z.shape[1]
    U = g.normal(size=(k, d, p))
    rc = float(rate.compressed_coding_rate(Z, U, eps=0.5))
    assert rc >= 0.0
    assert rc == pytest.approx(float(ref_compressed(Z, U, 0.5)), rel=1e-9, abs=1e-9)
    # Rotating the features and the subspaces together changes nothing.
    Q, _ = np.linalg.qr(g.normal(size=(d, d)))
    rotated = float(rate.compressed_coding_rate(Z @ Q, Q.T @ U, eps=0.5))
    assert rotated == pytest.approx(rc, rel=1e-9, abs=1e-9)


# --------------------------------------------------------------------------------------------
# Bad input


def _Z() -> NDArray[np.float64]:
    return np.random.default_rng(0).normal(size=(2, 5, 4))


def _U() -> NDArray[np.float64]:
    return np.random.default_rng(1).normal(size=(2, 4, 3))


ALL_WITH_U = [
    rate.compressed_coding_rate,
    rate.rate_reduction,
    lambda Z, U, **kw: rate.sparse_rate_reduction(Z, U, lam=0.1, **kw),
    rate.srr_measure,
]


@pytest.mark.parametrize("eps", [0.0, -1.0, float("nan"), float("inf")])
def test_eps_must_be_positive_and_finite(eps: float) -> None:
    with pytest.raises(ValueError, match=r"eps: .*not epsilon\^2"):
        rate.coding_rate(_Z(), eps=eps)
    for fn in ALL_WITH_U:
        with pytest.raises(ValueError, match=r"^eps: "):
            fn(_Z(), _U(), eps=eps)
    with pytest.raises(ValueError, match=r"^eps: "):
        rate.compressed_coding_rate_projected(np.ones((2, 3, 4)), eps=eps)


@pytest.mark.parametrize("eps", ["0.1", None, True, np.array([0.1, 0.2])])
def test_eps_must_be_a_real_number(eps: Any) -> None:
    with pytest.raises(TypeError, match=r"^eps: expected a real number"):
        rate.coding_rate(_Z(), eps=eps)


def test_eps_is_required() -> None:
    with pytest.raises(TypeError):
        rate.coding_rate(_Z())  # type: ignore[call-arg]


def test_wrong_rank() -> None:
    with pytest.raises(ValueError, match=r"^Z: .*\(\.\.\., N, d\).*shape \(5,\)"):
        rate.coding_rate(np.ones(5), eps=1.0)
    with pytest.raises(ValueError, match=r"^ZU: .*\(\.\.\., K, N, p\)"):
        rate.compressed_coding_rate_projected(np.ones((4, 3)), eps=1.0)
    for fn in ALL_WITH_U:
        with pytest.raises(ValueError, match=r"^U: expected an array of shape \(K, d, p\)"):
            fn(_Z(), np.ones((4, 3)), eps=1.0)


def test_mismatched_feature_dimension() -> None:
    for fn in ALL_WITH_U:
        with pytest.raises(ValueError, match=r"^U: .*d = 4 .*got shape \(2, 3, 3\)"):
            fn(_Z(), np.ones((2, 3, 3)), eps=1.0)


@pytest.mark.parametrize("shape", [(0, 4), (4, 0), (3, 0, 4), (3, 4, 0)])
def test_zero_tokens_or_features(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"^Z: expected at least one token and one feature"):
        rate.coding_rate(np.ones(shape), eps=1.0)
    with pytest.raises(ValueError, match=r"^Z: expected at least one token"):
        rate.sparsity(np.ones(shape))


def test_empty_subspaces_and_heads() -> None:
    with pytest.raises(ValueError, match=r"^U: expected K >= 1 and p >= 1"):
        rate.compressed_coding_rate(_Z(), np.ones((0, 4, 3)), eps=1.0)
    with pytest.raises(ValueError, match=r"^U: expected K >= 1 and p >= 1"):
        rate.compressed_coding_rate(_Z(), np.ones((2, 4, 0)), eps=1.0)
    with pytest.raises(ValueError, match=r"^ZU: expected at least one token"):
        rate.compressed_coding_rate_projected(np.ones((2, 0, 3, 4)), eps=1.0)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values(bad: float) -> None:
    Z = _Z()
    Z[1, 2, 3] = bad
    flat = 1 * 20 + 2 * 4 + 3
    with pytest.raises(
        ValueError, match=rf"^Z contains NaN or infinity \(first at flat index {flat}\)"
    ):
        rate.coding_rate(Z, eps=1.0)
    for fn in ALL_WITH_U:
        with pytest.raises(ValueError, match=r"^Z contains NaN"):
            fn(Z, _U(), eps=1.0)
    U = _U()
    U[0, 0, 0] = bad
    for fn in ALL_WITH_U:
        with pytest.raises(ValueError, match=r"^U contains NaN"):
            fn(_Z(), U, eps=1.0)
    with pytest.raises(ValueError, match=r"^ZU contains NaN"):
        rate.compressed_coding_rate_projected(Z[None], eps=1.0)
    with pytest.raises(ValueError, match=r"^Z contains NaN"):
        rate.sparsity(Z)


def test_non_numeric_input() -> None:
    with pytest.raises(TypeError, match=r"^Z: expected numeric data"):
        rate.coding_rate(np.array([["a", "b"]]), eps=1.0)
    with pytest.raises(TypeError, match=r"^U: expected numeric data"):
        rate.compressed_coding_rate(_Z(), np.full((1, 4, 2), "x"), eps=1.0)
    with pytest.raises(TypeError, match=r"^Z: expected numeric data"):
        rate.coding_rate(np.ones((2, 2), dtype=complex), eps=1.0)


def test_bad_sparsity_options() -> None:
    with pytest.raises(ValueError, match=r"^lam: expected a finite number >= 0"):
        rate.sparse_rate_reduction(_Z(), _U(), eps=1.0, lam=-0.1)
    with pytest.raises(ValueError, match=r"^lam: "):
        rate.srr_measure(_Z(), _U(), eps=1.0, lam=float("nan"))
    with pytest.raises(TypeError, match=r"^lam: expected a real number"):
        rate.srr_measure(_Z(), _U(), eps=1.0, lam="1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^sparsity: expected one of 'l0', 'l1', got 'l2'"):
        rate.sparse_rate_reduction(_Z(), _U(), eps=1.0, lam=0.1, sparsity="l2")
    with pytest.raises(ValueError, match=r"^kind: expected one of 'l0', 'l1'"):
        rate.sparsity(_Z(), kind="L0")


def test_bad_n_jobs() -> None:
    with pytest.raises(ValueError, match=r"^n_jobs: "):
        rate.coding_rate(_Z(), eps=1.0, n_jobs=0)
    with pytest.raises(TypeError, match=r"^n_jobs: "):
        rate.coding_rate(_Z(), eps=1.0, n_jobs=1.5)  # type: ignore[arg-type]
