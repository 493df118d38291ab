"""genlab.attention against a materialized numpy reference, the spec's invariants, the polynomial
method's error, and every documented error."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genlab import errors
from genlab.attention import (
    attention,
    logit_bound,
    poly_plan,
    tensor_attention,
    tensor_attention_poly,
)
from genlab.errors import NumericalWarning


def allowed(mask: object, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Boolean (n, n) matrices: query i sees first key j / second key k."""
    i = np.arange(n)[:, None]
    j = np.arange(n)[None, :]
    if mask is None:
        full = np.ones((n, n), dtype=bool)
        return full, full
    if mask == "causal":
        return j <= i, j <= i
    w1, w2 = mask  # type: ignore[misc]
    return (j <= i) & (j > i - w1), (j <= i) & (j > i - w2)


def reference(
    Q: np.ndarray,
    K1: np.ndarray,
    K2: np.ndarray,
    V1: np.ndarray,
    V2: np.ndarray,
    scale: float | None = None,
    mask: object = None,
) -> np.ndarray:
    """The definition with the (..., n, n, n) logits materialized."""
    n, d = Q.shape[-2:]
    s = 1 / math.sqrt(d) if scale is None else scale
    logits = s * np.einsum("...il,...jl,...kl->...ijk", Q, K1, K2)
    a1, a2 = allowed(mask, n)
    logits = np.where(a1[:, :, None] & a2[:, None, :], logits, -np.inf)
    flat = logits.reshape(*logits.shape[:-2], n * n)
    w = np.exp(flat - flat.max(-1, keepdims=True))
    w = (w / w.sum(-1, keepdims=True)).reshape(logits.shape)
    return np.einsum("...ijk,...jc,...kc->...ic", w, V1, V2)


def softmax_attention(
    Q: np.ndarray, K: np.ndarray, V: np.ndarray, mask: object = None
) -> np.ndarray:
    n, d = Q.shape[-2:]
    logits = Q @ np.swapaxes(K, -1, -2) / math.sqrt(d)
    a, _ = allowed(mask if not isinstance(mask, int) else (mask, mask), n)
    logits = np.where(a, logits, -np.inf)
    w = np.exp(logits - logits.max(-1, keepdims=True))
    return (w / w.sum(-1, keepdims=True)) @ V


def inputs(
    rng: np.random.Generator, lead: tuple[int, ...], n: int, d: int, dv: int, spread: float = 1.0
) -> list[np.ndarray]:
    keys = [spread * rng.standard_normal((*lead, n, d)) for _ in range(3)]
    return keys + [rng.standard_normal((*lead, n, dv)) for _ in range(2)]


def uniform_inputs(
    rng: np.random.Generator, n: int, d: int, dv: int, logit_range: float
) -> list[np.ndarray]:
    """Queries and keys uniform in [-a, a] with s d a^3 = logit_range (s = 1 / sqrt(d))."""
    a = (logit_range * math.sqrt(d) / d) ** (1 / 3)
    keys = [rng.uniform(-a, a, (n, d)) for _ in range(3)]
    return keys + [rng.standard_normal((n, dv)) for _ in range(2)]


MASKS = [None, "causal", (1, 1), (3, 5), (40, 2)]


@pytest.mark.parametrize("mask", MASKS)
@pytest.mark.parametrize(
    ("lead", "n", "d", "dv"), [((), 1, 1, 1), ((2,), 7, 3, 5), ((2, 3), 33, 4, 2), ((), 64, 8, 8)]
)
def test_exact_matches_the_materialized_reference(
    lead: tuple[int, ...], n: int, d: int, dv: int, mask: object
) -> None:
    x = inputs(np.random.default_rng(n * 7 + d), lead, n, d, dv)
    got = tensor_attention(*x, mask=mask)
    assert got.shape == (*lead, n, dv)
    np.testing.assert_allclose(got, reference(*x, mask=mask), rtol=1e-11, atol=1e-12)


@settings(max_examples=30)
@given(
    n=st.integers(1, 20),
    d=st.integers(1, 6),
    dv=st.integers(1, 10),
    scale=st.floats(-3, 3),
    w1=st.integers(1, 25),
    w2=st.integers(1, 25),
    seed=st.integers(0, 2**32 - 1),
)
def test_exact_matches_reference_property(
    n: int, d: int, dv: int, scale: float, w1: int, w2: int, seed: int
) -> None:
    x = inputs(np.random.default_rng(seed), (), n, d, dv, spread=2.0)
    for mask in (None, "causal", (w1, w2)):
        np.testing.assert_allclose(
            tensor_attention(*x, scale=scale, mask=mask),
            reference(*x, scale=scale, mask=mask),
            rtol=1e-10,
            atol=1e-12,
        )


def test_float32_in_float32_out_and_broadcasting() -> None:
    rng = np.random.default_rng(1)
    Q = rng.standard_normal((2, 1, 9, 3))
    K1, K2 = rng.standard_normal((3, 9, 3)), rng.standard_normal((9, 3))
    V1, V2 = rng.standard_normal((2, 3, 9, 4)), rng.standard_normal((1, 9, 4))
    got = tensor_attention(Q, K1, K2, V1, V2)
    full = [np.broadcast_to(a, (2, 3, *a.shape[-2:])) for a in (Q, K1, K2, V1, V2)]
    np.testing.assert_allclose(got, reference(*full), rtol=1e-11)
    single = tensor_attention(*(a.astype(np.float32) for a in (Q, K1, K2, V1, V2)))
    assert single.dtype == np.float32
    np.testing.assert_allclose(single, got, rtol=1e-5, atol=1e-6)
    assert tensor_attention(Q.astype(np.float32), K1, K2, V1, V2).dtype == np.float64


def test_large_logits_stay_finite() -> None:
    x = inputs(np.random.default_rng(2), (), 12, 3, 2, spread=40.0)
    got = tensor_attention(*x)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, reference(*x), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("mask", [None, "causal", 4])
def test_ordinary_attention_matches_softmax(mask: object) -> None:
    rng = np.random.default_rng(3)
    Q, K, V = (
        rng.standard_normal((2, 50, 6)),
        rng.standard_normal((2, 50, 6)),
        rng.standard_normal((2, 50, 3)),
    )
    np.testing.assert_allclose(
        attention(Q, K, V, mask=mask), softmax_attention(Q, K, V, mask), rtol=1e-11, atol=1e-13
    )


@pytest.mark.parametrize("mask", [None, "causal", (5, 9)])
def test_reduces_to_ordinary_attention_when_k2_and_v2_are_ones(mask: object) -> None:
    rng = np.random.default_rng(4)
    n, d = 30, 5
    Q, K1, V1 = (
        rng.standard_normal((n, d)),
        rng.standard_normal((n, d)),
        rng.standard_normal((n, 3)),
    )
    ones_k, ones_v = np.ones((n, d)), np.ones((n, 3))
    ordinary_mask = mask[0] if isinstance(mask, tuple) else mask
    want = softmax_attention(Q, K1, V1, ordinary_mask)
    np.testing.assert_allclose(
        tensor_attention(Q, K1, ones_k, V1, ones_v, mask=mask), want, rtol=1e-11
    )
    np.testing.assert_allclose(attention(Q, K1, V1, mask=ordinary_mask), want, rtol=1e-11)


def test_swapping_the_key_value_sets_changes_nothing() -> None:
    Q, K1, K2, V1, V2 = inputs(np.random.default_rng(5), (3,), 20, 4, 6)
    for mask in (None, "causal"):
        np.testing.assert_allclose(
            tensor_attention(Q, K1, K2, V1, V2, mask=mask),
            tensor_attention(Q, K2, K1, V2, V1, mask=mask),
            rtol=1e-12,
        )
    np.testing.assert_allclose(
        tensor_attention(Q, K1, K2, V1, V2, mask=(3, 7)),
        tensor_attention(Q, K2, K1, V2, V1, mask=(7, 3)),
        rtol=1e-12,
    )


def test_permuting_key_rows_jointly_changes_nothing() -> None:
    rng = np.random.default_rng(6)
    Q, K1, K2, V1, V2 = inputs(rng, (), 25, 4, 3)
    p1, p2 = rng.permutation(25), rng.permutation(25)
    base = tensor_attention(Q, K1, K2, V1, V2)
    np.testing.assert_allclose(
        tensor_attention(Q, K1[p1], K2[p2], V1[p1], V2[p2]), base, rtol=1e-12
    )
    # Permuting queries permutes the output.
    np.testing.assert_allclose(tensor_attention(Q[p1], K1, K2, V1, V2), base[p1], rtol=1e-12)


def test_windows_of_size_n_are_causal() -> None:
    x = inputs(np.random.default_rng(7), (2,), 17, 3, 2)
    causal = tensor_attention(*x, mask="causal")
    np.testing.assert_allclose(tensor_attention(*x, mask=(17, 17)), causal, rtol=1e-13)
    np.testing.assert_allclose(tensor_attention(*x, mask=(100, 17)), causal, rtol=1e-13)
    np.testing.assert_allclose(
        attention(x[0], x[1], x[3], mask=17), attention(x[0], x[1], x[3], mask="causal")
    )


def test_n_jobs_gives_the_same_result() -> None:
    x = inputs(np.random.default_rng(8), (4,), 40, 4, 4)
    np.testing.assert_array_equal(tensor_attention(*x, n_jobs=1), tensor_attention(*x, n_jobs=-1))


def test_logit_bound_bounds_every_logit() -> None:
    x = inputs(np.random.default_rng(9), (2,), 15, 4, 1)
    Q, K1, K2 = x[:3]
    logits = np.einsum("...il,...jl,...kl->...ijk", Q, K1, K2) / 2
    bound = logit_bound(Q, K1, K2)
    assert np.abs(logits).max() <= bound < 4 * np.abs(logits).max()
    assert logit_bound(Q, K1, K2, scale=-1.0) == pytest.approx(2 * bound)


def test_polynomial_degree_zero_is_the_uniform_average() -> None:
    Q, K1, K2, V1, V2 = uniform_inputs(np.random.default_rng(10), 12, 3, 4, 1.0)
    with pytest.warns(NumericalWarning, match="error bound"):
        res = tensor_attention_poly(Q, K1, K2, V1, V2, degree=0)
    np.testing.assert_allclose(
        res.output, np.broadcast_to(V1.mean(0) * V2.mean(0), (12, 4)), rtol=1e-12
    )
    assert (res.degree, res.rank) == (0, 1)
    with pytest.warns(NumericalWarning):
        causal = tensor_attention_poly(Q, K1, K2, V1, V2, degree=0, mask="causal").output
    prefix = (
        np.cumsum(V1, 0)
        / np.arange(1, 13)[:, None]
        * (np.cumsum(V2, 0) / np.arange(1, 13)[:, None])
    )
    np.testing.assert_allclose(causal, prefix, rtol=1e-12)


@pytest.mark.parametrize("basis", ["chebyshev", "taylor", "minimax"])
@pytest.mark.parametrize("mask", [None, "causal", (6, 19)])
def test_polynomial_error_falls_with_degree_and_stays_within_its_bound(
    basis: str, mask: object
) -> None:
    x = uniform_inputs(np.random.default_rng(11), 48, 4, 3, 1.0)
    exact = tensor_attention(*x, mask=mask)
    scale = np.abs(x[3]).max(0) * np.abs(x[4]).max(0)
    errors = []
    for degree in (2, 4, 6, 8):
        res = tensor_attention_poly(*x, mask=mask, degree=degree, basis=basis, tol=1.0)
        err = np.abs(res.output - exact)
        assert (err <= res.error_bound * scale + 1e-13).all()
        errors.append(err.max())
    assert all(b < a for a, b in itertools.pairwise(errors)), errors
    assert errors[-1] < 1e-5


def test_tolerance_chooses_the_smallest_sufficient_degree() -> None:
    x = uniform_inputs(np.random.default_rng(12), 40, 4, 2, 1.0)
    res = tensor_attention_poly(*x, tol=1e-7)
    assert res.error_bound <= 1e-7
    assert res.logit_range <= 1.0 + 1e-12
    below = poly_plan(res.logit_range, 4, degree=res.degree - 1)
    assert below.error_bound > 1e-7
    assert res.rank == math.comb(4 + res.degree, res.degree)
    assert (
        np.abs(res.output - tensor_attention(*x)).max()
        <= 1e-7 * np.abs(x[3]).max() * np.abs(x[4]).max()
    )
    np.testing.assert_array_equal(tensor_attention(*x, method="poly", tol=1e-7), res.output)


def test_minimax_reaches_what_chebyshev_cannot_at_large_logit_range() -> None:
    x = uniform_inputs(np.random.default_rng(13), 20, 2, 2, 5.0)
    assert logit_bound(*x[:3]) > 3.0
    with pytest.raises(ValueError, match="not positive"):
        tensor_attention_poly(*x, degree=4)
    res = tensor_attention_poly(*x, degree=4, basis="minimax", tol=0.5)
    assert res.error_bound < 0.5
    exact = tensor_attention(*x)
    assert (
        np.abs(res.output - exact).max()
        <= res.error_bound * np.abs(x[3]).max() * np.abs(x[4]).max()
    )


def test_poly_plan_reports_degree_rank_and_bound() -> None:
    plan = poly_plan(1.0, 4, degree=6)
    assert (plan.degree, plan.rank, plan.basis) == (6, 210, "chebyshev")
    assert plan.coefficients.shape == (7,)
    assert 1e-6 < plan.error_bound < 1e-4
    t = np.linspace(-1, 1, 101)
    rel = np.polyval(plan.coefficients[::-1], t) * np.exp(-t) - 1
    assert np.abs(rel).max() < plan.error_bound
    assert poly_plan(1.0, 4, tol=1e-4).degree <= 6


# ---------------------------------------------------------------- errors


def test_tolerance_out_of_reach_raises() -> None:
    x = inputs(np.random.default_rng(14), (), 16, 4, 2, spread=2.5)
    with pytest.raises(ValueError, match="out of reach"):
        tensor_attention_poly(*x, tol=1e-12)
    with pytest.raises(ValueError, match="above tol"):
        tensor_attention_poly(
            *uniform_inputs(np.random.default_rng(0), 8, 2, 1, 1.0), degree=2, tol=1e-8
        )


def test_rank_that_does_not_fit_in_memory_says_how_much_it_needs() -> None:
    rng = np.random.default_rng(15)
    x = [0.1 * rng.standard_normal((4, 64)) for _ in range(5)]
    with pytest.raises(ValueError, match=r"would need [0-9.]+ (GiB|TiB)"):
        tensor_attention_poly(*x, degree=12)
    with pytest.raises(ValueError, match="would need"):
        poly_plan(1.0, 64, degree=12, bytes_per_rank=1000.0, memory_limit=2.0**30)


def test_bad_degree_and_tol() -> None:
    x = uniform_inputs(np.random.default_rng(16), 6, 2, 1, 1.0)
    with pytest.raises(ValueError, match="degree: expected a non-negative integer, got -1"):
        tensor_attention_poly(*x, degree=-1)
    with pytest.raises(TypeError, match="degree"):
        tensor_attention_poly(*x, degree=2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="from 0 to 32"):
        tensor_attention_poly(*x, degree=33)
    for tol in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="tol"):
            tensor_attention_poly(*x, tol=tol)
    with pytest.raises(ValueError, match="method='poly' only"):
        tensor_attention(*x, degree=3)
    with pytest.raises(ValueError, match="basis"):
        tensor_attention_poly(*x, degree=3, basis="legendre")
    with pytest.raises(ValueError, match="method"):
        tensor_attention(*x, method="fast")


@pytest.mark.parametrize(
    ("mask", "error", "match"),
    [
        ((0, 3), ValueError, r"mask\[0\] \(window w1\): expected a positive integer, got 0"),
        ((3, -1), ValueError, r"mask\[1\]"),
        ((2.5, 3), TypeError, "expected an integer"),
        ((True, 3), TypeError, "expected an integer"),
        ("diagonal", ValueError, "'causal'"),
        ((1, 2, 3), TypeError, "pair of window sizes"),
        (3, TypeError, "pair of window sizes"),
    ],
)
def test_bad_masks(mask: object, error: type[Exception], match: str) -> None:
    x = inputs(np.random.default_rng(17), (), 5, 2, 2)
    with pytest.raises(error, match=match):
        tensor_attention(*x, mask=mask)  # type: ignore[arg-type]
    with pytest.raises(error, match=match):
        tensor_attention_poly(*x, mask=mask, degree=2)  # type: ignore[arg-type]


def test_bad_ordinary_attention_masks() -> None:
    Q = np.ones((4, 2))
    with pytest.raises(ValueError, match="window size"):
        attention(Q, Q, Q, mask=0)
    with pytest.raises(ValueError, match="'causal'"):
        attention(Q, Q, Q, mask="upper")
    with pytest.raises(TypeError, match="integer"):
        attention(Q, Q, Q, mask=(2, 2))  # type: ignore[arg-type]


def test_shape_mismatches_name_the_argument() -> None:
    rng = np.random.default_rng(18)
    Q, K1, K2, V1, V2 = inputs(rng, (), 6, 3, 2)
    cases = {
        "K1": (Q, K1[:5], K2, V1, V2),
        "K2": (Q, K1, K2[:, :2], V1, V2),
        "V1": (Q, K1, K2, V1[:4], V2),
        "V2": (Q, K1, K2, V1, rng.standard_normal((6, 3))),
    }
    for name, args in cases.items():
        with pytest.raises(ValueError, match=f"^{name}: expected shape"):
            tensor_attention(*args)
    with pytest.raises(ValueError, match="Q: expected an array of shape"):
        tensor_attention(Q[0], K1, K2, V1, V2)
    with pytest.raises(ValueError, match="do not broadcast"):
        tensor_attention(np.ones((2, 6, 3)), np.ones((3, 6, 3)), K2, V1, V2)
    with pytest.raises(ValueError, match="K: expected shape"):
        attention(Q, K1[:3], V1)


def test_empty_and_degenerate_sizes() -> None:
    with pytest.raises(ValueError, match=r"n >= 1\), got n = 0"):
        tensor_attention(*(np.ones((0, 3)) for _ in range(5)))
    with pytest.raises(ValueError, match="d >= 1"):
        tensor_attention(*(np.ones((4, 0)) for _ in range(3)), np.ones((4, 2)), np.ones((4, 2)))
    with pytest.raises(ValueError, match="V1: expected values of width >= 1"):
        tensor_attention(*(np.ones((4, 2)) for _ in range(3)), np.ones((4, 0)), np.ones((4, 0)))
    with pytest.raises(ValueError, match=r"n >= 1\), got n = 0"):
        attention(np.ones((0, 2)), np.ones((0, 2)), np.ones((0, 2)))


@pytest.mark.parametrize("position", range(5))
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_rejected(position: int, bad: float) -> None:
    x = inputs(np.random.default_rng(19), (), 4, 2, 2)
    x[position][1, 1] = bad
    name = ["Q", "K1", "K2", "V1", "V2"][position]
    # The core's scan, with the flat index of the first bad value (row 1, column 1 of 2).
    message = rf"^{name} contains NaN or infinity \(first at flat index 3\)"
    with pytest.raises(errors.NonFiniteError, match=message):
        tensor_attention(*x)
    with pytest.raises(errors.NonFiniteError, match=message):
        tensor_attention_poly(*x, degree=1)


def test_bad_types_and_scalars() -> None:
    x = inputs(np.random.default_rng(20), (), 4, 2, 2)
    with pytest.raises(TypeError, match="Q: expected numeric data"):
        tensor_attention(np.full((4, 2), "a"), *x[1:])
    with pytest.raises(ValueError, match="scale: expected a finite number"):
        tensor_attention(*x, scale=float("inf"))
    with pytest.raises(TypeError, match="scale"):
        tensor_attention(*x, scale="big")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_jobs"):
        tensor_attention(*x, n_jobs=0)
    with pytest.raises(ValueError, match="logit_range"):
        poly_plan(-1.0, 3, degree=2)
    with pytest.raises(ValueError, match="d: expected a positive integer"):
        poly_plan(1.0, 0, degree=2)
