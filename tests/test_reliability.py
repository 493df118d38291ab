"""Hostile input: nothing may take the machine, poison a study, or return a silent NaN.

Each test is one reproducer: the bad input, the exact exception type, the argument named in
the message.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time

import numpy as np
import pytest

from genlab import attention, kde, rank, rate
from genlab.errors import EmptyInputError, InvalidArgumentError, TooLargeError


def test_a_tiny_input_cannot_ask_for_a_huge_matrix() -> None:
    started = time.perf_counter()
    with pytest.raises(
        TooLargeError, match=r"X: the 60000 x 60000 matrix .* would need 5[0-9.]+ GiB"
    ):
        rank.kendalltau_matrix(np.zeros((3, 60_000)))
    assert time.perf_counter() - started < 2  # refused before anything is allocated
    # What it says to do works: blocks of columns.
    X = np.random.default_rng(0).normal(size=(50, 6))
    full = rank.kendalltau_matrix(X)
    assert np.array_equal(rank.kendalltau_matrix(X[:, :3]), full[:3, :3])


def test_cmi_refuses_to_enumerate_millions_of_subsets() -> None:
    g = np.random.default_rng(1).normal(size=6)
    hp = {f"a{i}": np.random.default_rng(i).integers(0, 2, 6) for i in range(26)}
    started = time.perf_counter()
    with pytest.raises(TooLargeError, match=r"max_subset_size: .* 67108864 subsets"):
        rank.conditional_mutual_information(g, g, hp, max_subset_size=26)
    assert time.perf_counter() - started < 2
    # The default bound (2) is fine: 1 + 26 + 325 subsets.
    assert len(rank.conditional_mutual_information(g, g, hp).scores) == 352


# --- silent NaN from finite input (item 4) ------------------------------------------------------


def _qkv(seed: int, n: int = 5, d: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(2, n, d)) for _ in range(5)]


def test_attention_logits_that_overflow_are_an_error_naming_scale() -> None:
    q, k1, k2, v1, v2 = _qkv(0)
    with pytest.raises(InvalidArgumentError, match=r"scale: the logits s <q_i, k_j>.* overflow"):
        attention.attention(q, k1, v1, scale=1e308)
    with pytest.raises(InvalidArgumentError, match=r"scale: the logits s <q_i, k1_j, k2_k>"):
        attention.tensor_attention(q * 1e110, k1 * 1e110, k2 * 1e110, v1, v2)
    with pytest.raises(InvalidArgumentError, match=r"scale: the logit bound .* overflows"):
        attention.tensor_attention(q * 1e110, k1 * 1e110, k2 * 1e110, v1, v2, method="poly")
    # Just below overflow the answer is the finite hard maximum: the value of the best key.
    out = attention.attention(q, k1, v1, scale=1e300)
    best = np.einsum("bid,bjd->bij", q, k1).argmax(-1)
    np.testing.assert_array_equal(out, np.take_along_axis(v1, best[..., None], axis=1))


def test_torch_attention_logits_that_overflow_are_an_error_naming_scale() -> None:
    torch = pytest.importorskip("torch")
    from genlab.torch.attention import tensor_attention

    q, k1, k2, v1, v2 = (torch.from_numpy(a) for a in _qkv(1))
    for method in ("materialized", "chunked"):
        with pytest.raises(ValueError, match=r"scale: the logits s <q, k1, k2>.* overflow"):
            tensor_attention(q, k1, k2, v1, v2, scale=1e308, method=method)
    with pytest.raises(ValueError, match=r"scale: the logit bound .* overflows"):
        tensor_attention(q * 1e110, k1 * 1e110, k2 * 1e110, v1, v2, method="poly")


def test_kde_at_extreme_bandwidths_is_finite_or_an_error() -> None:
    rng = np.random.default_rng(2)
    X, T = rng.normal(size=(50, 3)), rng.normal(size=(40, 4))
    with pytest.raises(InvalidArgumentError, match=r"noise_variance: 1e-310 is too small"):
        kde.information_plane([[T]], noise_variance=1e-310)
    # A huge bandwidth: every other point contributes equally (1 / Y2 = n - 1 leave-one-out),
    # as at h = 1e10; h * h overflowing must not turn that into NaN.
    for h in (1e10, 1e155, 1e300):
        np.testing.assert_allclose(kde.regime(X, h).inverse_y2, 49.0, rtol=1e-12)
    for kernel in ("gaussian", "epanechnikov", "exponential", "tophat", "linear", "cosine"):
        values = kde.log_density(X, X[:4], bandwidth=1e300, kernel=kernel)
        assert np.isfinite(values).all(), kernel
    with pytest.raises(InvalidArgumentError, match=r"bandwidth: 1e-160 is too small"):
        kde.log_density(X, X[:3], bandwidth=1e-160)


def test_huge_finite_weights_are_normalized_not_overflowed() -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(30, 2))
    w = rng.uniform(0.5, 1.0, size=30)
    expected = kde.log_density(X, X[:5], bandwidth=0.7, weights=w)
    np.testing.assert_allclose(
        kde.log_density(X, X[:5], bandwidth=0.7, weights=w * 1e308), expected, rtol=1e-12
    )


def test_a_bandwidth_rule_on_zero_features_is_an_error() -> None:
    X = np.random.default_rng(4).normal(size=(20, 3))
    for method in ("scott", "silverman", "nn", "loo_cv"):
        with pytest.raises(EmptyInputError, match=r"data: expected at least one feature"):
            kde.select_bandwidth(X[:, :0], method)


# --- options read wrongly (item 5) ----------------------------------------------------------------


def test_normalize_tokens_must_be_a_bool() -> None:
    Z = np.random.default_rng(5).normal(size=(2, 6, 3))
    with pytest.raises(TypeError, match=r"normalize_tokens: expected a bool .* str 'no'"):
        rate.coding_rate(Z, eps=0.5, normalize_tokens="no")
    torch = pytest.importorskip("torch")
    from genlab.torch import rate as trate
    from genlab.torch.models import build_model
    from genlab.torch.srr import measure_srr

    with pytest.raises(TypeError, match="normalize_tokens: expected a bool"):
        trate.coding_rate(torch.from_numpy(Z), eps=0.5, normalize_tokens=1)
    model = build_model("crate", num_classes=3, input_shape=(1, 4, 4), depth=1, seed=0)
    with pytest.raises(TypeError, match="normalize_tokens: expected a bool"):
        measure_srr(model, torch.zeros(2, 1, 4, 4), normalize_tokens="no")


def test_an_integer_key_padding_mask_is_refused_not_added() -> None:
    torch = pytest.importorskip("torch")
    from genlab.torch.attention import tensor_attention

    q = torch.randn(2, 5, 4, dtype=torch.float64)
    with pytest.raises(TypeError, match=r"key_padding_mask: expected a bool mask .* torch.int64"):
        tensor_attention(q, q, q, q, q, key_padding_mask=torch.ones(2, 5, dtype=torch.int64))
    # The bool mask it names instead works: padding the last key changes the output.
    padding = torch.zeros(2, 5, dtype=torch.bool)
    padding[:, -1] = True
    assert not torch.equal(
        tensor_attention(q, q, q, q, q, key_padding_mask=padding), tensor_attention(q, q, q, q, q)
    )


def test_poly_plan_rank_does_not_wrap() -> None:
    # C(d + 6, 6) with d = 2**63 - 1 is about 8.6e110: refused as too large, not wrapped to 0.
    with pytest.raises(TooLargeError, match=r"d = 9223372036854775807 .*8.5508e110\) would need"):
        attention.poly_plan(1.0, 2**63 - 1)
    with pytest.raises(InvalidArgumentError, match=r"d: expected an integer below 2\*\*63"):
        attention.poly_plan(1.0, 2**64 - 1)


def test_complex_input_is_a_type_error_naming_the_argument() -> None:
    z = np.arange(5) + 1j
    with pytest.raises(TypeError, match=r"x: expected numeric data .* complex128"):
        rank.kendalltau(z, np.arange(5.0))
    with pytest.raises(TypeError, match=r"Z: expected numeric data .* complex128"):
        rate.coding_rate(np.ones((2, 4, 3)) + 0j, eps=0.5)
    with pytest.raises(TypeError, match=r"data: expected numeric data .* complex128"):
        kde.log_density(np.ones((4, 2)) + 0j, np.ones((1, 2)), bandwidth=1.0)
    with pytest.raises(TypeError, match=r"Q: expected numeric data .* complex128"):
        attention.attention(np.ones((4, 2)) + 0j, np.ones((4, 2)), np.ones((4, 2)))


# --- unclear errors (item 7) ----------------------------------------------------------------------


def test_a_tensor_that_requires_grad_is_named() -> None:
    torch = pytest.importorskip("torch")
    x = torch.randn(10, requires_grad=True)
    with pytest.raises(TypeError, match=r"x: a torch tensor that requires grad.* x.detach\(\)"):
        rank.kendalltau(x, np.arange(10.0))
    with pytest.raises(TypeError, match=r"Z: a torch tensor that requires grad"):
        rate.coding_rate(torch.randn(2, 5, 3, requires_grad=True), eps=0.5)
    assert rank.kendalltau(x.detach(), np.arange(10.0)).statistic == pytest.approx(
        rank.kendalltau(x.detach().numpy(), np.arange(10.0)).statistic
    )


def test_huge_broadcast_views_are_refused_before_copying() -> None:
    started = time.perf_counter()
    view = np.broadcast_to(np.zeros(1), (10**11,))
    with pytest.raises(TooLargeError, match=r"x: an array of shape \(100000000000,\).*GiB"):
        rank.kendalltau(view, view)
    big = np.broadcast_to(np.zeros((1, 1)), (10**6, 10**5))
    with pytest.raises(TooLargeError, match=r"data: an array of shape \(1000000, 100000\)"):
        kde.log_density(big, big[:2], bandwidth=1.0)
    with pytest.raises(TooLargeError, match=r"Z: an array of shape \(100000, 1000, 1000\)"):
        rate.coding_rate(np.broadcast_to(np.zeros((1, 1, 1)), (10**5, 10**3, 10**3)), eps=0.5)
    q = np.broadcast_to(np.zeros((1, 1, 2, 2)), (10**5, 10**5, 2, 2))
    with pytest.raises(TooLargeError, match=r"Q: an array of shape"):
        attention.attention(q, np.zeros((2, 2)), np.zeros((2, 2)))
    assert time.perf_counter() - started < 5
    # A small broadcast view is fine and gives the same as its copy.
    small = np.broadcast_to(np.arange(4.0)[:, None], (4, 3))
    np.testing.assert_array_equal(
        rank.kendalltau_matrix(small), rank.kendalltau_matrix(small.copy())
    )


def test_integers_beyond_64_bits_and_strings_are_named() -> None:
    with pytest.raises(TypeError, match=r"x: .* dtype object \(integers outside the 64-bit"):
        rank.kendalltau([2**64, 1, 2], [1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match=r"x: expected numeric data .* <U1"):
        rank.kendalltau(["a", "b", "c"], [1.0, 2.0, 3.0])
    g = np.arange(6.0)
    with pytest.raises(InvalidArgumentError, match=r"max_subset_size: expected an integer below"):
        rank.conditional_mutual_information(g, g, {"a": [0, 1] * 3}, max_subset_size=2**64)
    with pytest.raises(InvalidArgumentError, match=r"n_neighbors: expected an integer below"):
        kde.select_bandwidth(np.eye(5), "loo_cv", n_neighbors=2**64)
    with pytest.raises(TypeError, match=r"eps: expected a real number, got str"):
        rate.coding_rate(np.ones((1, 3, 2)), eps="0.5")
    # n_jobs far below -cores means one thread (joblib's rule), not an overflow.
    X = np.random.default_rng(6).normal(size=(20, 3))
    np.testing.assert_array_equal(
        rank.kendalltau_many(X, X[:, 0], n_jobs=-(2**64)).statistic,
        rank.kendalltau_many(X, X[:, 0], n_jobs=1).statistic,
    )


def _run_capped(code: str, cap_gib: float) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter limited to ``cap_gib`` of address space."""

    def cap() -> None:
        limit = int(cap_gib * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=cap,
        check=False,
    )


def test_ranking_many_configurations_takes_memory_linear_in_the_runs() -> None:
    # 6000 runs of 3000 configurations: the CMI (both conventions) once kept a table per pair of
    # conditions (9 million of them here, ~1 GB) and took the machine at 20,000 runs; the
    # sign-error's environments (18 million pairs of configurations) are refused before they
    # are built.
    code = """
import numpy as np, warnings
from genlab import rank
from genlab.errors import TooLargeError
warnings.simplefilter("ignore")
rng = np.random.default_rng(0)
n = 6000
m, g = rng.normal(size=n), rng.normal(size=n)
config = np.arange(n) // 2  # 3000 configurations of two seeds each
hp = {"a": config % 60, "b": config // 60}
genlab = rank.conditional_mutual_information(m, g, hp).score
pgdl = rank.conditional_mutual_information(m, g, hp, convention="pgdl").score
# A random measure: near 0 with genlab's rule; the PGDL rule's cells of 2 x 2 runs are biased up.
assert 0 <= genlab < 0.01 and 0 <= pgdl < 1, (genlab, pgdl)
try:
    rank.sign_error(m, g, {"a": np.arange(n)})
except TooLargeError as exc:
    assert "17997000 environments" in str(exc), exc
else:
    raise AssertionError("sign_error built 18 million environments")
print("ok")
"""
    done = _run_capped(code, cap_gib=1.5)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "ok"


def test_wide_data_does_not_ask_for_a_features_squared_matrix() -> None:
    # 3 points of 100,000 features (2.4 MB): regime's covariance spectrum comes from the 3 x 3
    # Gram matrix (the d x d covariance would need 80 GB); the scipy drop-in, which needs the
    # d x d kernel covariance itself, refuses before allocating it.
    rng = np.random.default_rng(7)
    wide = rng.normal(size=(3, 100_000))
    started = time.perf_counter()
    report = kde.regime(wide, 1.0)
    assert time.perf_counter() - started < 10
    assert report.eigenvalues.shape == (100_000,)
    np.testing.assert_array_equal(report.eigenvalues[:-3], 0.0)
    centered = wide - wide.mean(axis=0)
    gram = np.linalg.eigvalsh(centered @ centered.T / 2)  # 3 x 3, the covariance's spectrum
    np.testing.assert_allclose(report.eigenvalues[-2:], gram[-2:], rtol=1e-10)
    with pytest.raises(TooLargeError, match=r"dataset: a kernel covariance of 100000 x 100000"):
        kde.gaussian_kde(wide.T)
