"""genlab.kde.information_plane: properties of the pairwise-distance bounds and a direct numpy
computation of Kolchinsky-Tracey / Saxe et al.'s estimators."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from scipy.special import logsumexp

from genlab.kde import information_plane


def pairwise_term(t: NDArray[np.float64], variance: float) -> float:
    """-(1/N) sum_i log[(1/N) sum_j exp(-D_ij / (2 variance))]."""
    dist = ((t[:, None, :] - t[None, :, :]) ** 2).sum(-1)
    return float(-np.mean(logsumexp(-dist / (2 * variance), axis=1) - np.log(len(t))))


def saxe_reference(
    t: NDArray[np.float64], labels: NDArray[np.int64], variance: float
) -> tuple[float, float, float, float]:
    """(I_upper, I_lower, I(T;Y) upper, I(T;Y) lower) as in Saxe et al.'s kde.py."""
    upper, lower = pairwise_term(t, variance), pairwise_term(t, 4 * variance)
    classes = np.unique(labels)
    p = [np.mean(labels == c) for c in classes]
    cond_upper = sum(
        pc * pairwise_term(t[labels == c], variance) for pc, c in zip(p, classes, strict=True)
    )
    cond_lower = sum(
        pc * pairwise_term(t[labels == c], 4 * variance) for pc, c in zip(p, classes, strict=True)
    )
    return upper, lower, upper - cond_upper, lower - cond_lower


def test_matches_the_direct_estimator_with_labels() -> None:
    rng = np.random.default_rng(0)
    t = rng.normal(size=(300, 6))
    labels = rng.integers(0, 3, 300)
    t[labels == 1] += 2.0
    variances = [0.01, 0.1, 1.0]
    res = information_plane(t, labels, noise_variance=variances)
    for k, v in enumerate(variances):
        upper, lower, ty_upper, ty_lower = saxe_reference(t, labels, v)
        assert res.i_xt_upper[k] == pytest.approx(upper, rel=1e-11)
        assert res.i_xt_lower[k] == pytest.approx(lower, rel=1e-11)
        assert res.i_ty_upper is not None
        assert res.i_ty_lower is not None
        assert res.i_ty_upper[k] == pytest.approx(ty_upper, rel=1e-10, abs=1e-12)
        assert res.i_ty_lower[k] == pytest.approx(ty_lower, rel=1e-10, abs=1e-12)
    np.testing.assert_array_equal(res.noise_variance, variances)
    assert res.units == "nats"
    bits = res.to_bits()
    assert bits.units == "bits"
    np.testing.assert_allclose(bits.i_xt_upper, res.i_xt_upper / math.log(2))
    assert bits.i_ty_upper is not None
    np.testing.assert_allclose(bits.i_ty_upper, res.i_ty_upper / math.log(2))
    assert bits.to_bits() is bits


@settings(max_examples=30)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 120),
    d=st.integers(1, 10),
    log_variance=st.floats(-6, 4),
)
def test_bounds_are_ordered_and_at_most_log_n(
    seed: int, n: int, d: int, log_variance: float
) -> None:
    t = np.random.default_rng(seed).normal(size=(n, d))
    res = information_plane(t, noise_variance=math.exp(log_variance))
    lower, upper = float(res.i_xt_lower), float(res.i_xt_upper)
    assert -1e-12 <= lower <= upper + 1e-12
    assert upper <= math.log(n) + 1e-12


def test_identical_points_far_points_and_far_clusters() -> None:
    same = np.ones((40, 5))
    res = information_plane(same, np.arange(40) % 2, noise_variance=[0.1, 10.0])
    np.testing.assert_allclose(res.i_xt_upper, 0.0, atol=1e-12)
    np.testing.assert_allclose(res.i_xt_lower, 0.0, atol=1e-12)
    assert res.i_ty_upper is not None
    np.testing.assert_allclose(res.i_ty_upper, 0.0, atol=1e-12)
    far = np.arange(40.0)[:, None] * 1e3 * np.ones((1, 3))
    res = information_plane(far, noise_variance=1.0)
    assert float(res.i_xt_upper) == pytest.approx(math.log(40), rel=1e-12)
    assert float(res.i_xt_lower) == pytest.approx(math.log(40), rel=1e-12)
    clusters = np.repeat([[0.0, 0.0], [1e3, 0.0]], 20, axis=0)
    clusters += np.random.default_rng(1).normal(scale=1e-3, size=clusters.shape)
    labels = np.repeat(["cat", "dog"], 20)
    res = information_plane(clusters, labels, noise_variance=1.0)
    for value in (res.i_xt_upper, res.i_xt_lower, res.i_ty_upper, res.i_ty_lower):
        assert float(value) == pytest.approx(math.log(2), rel=1e-5)  # type: ignore[arg-type]
    assert float(res.to_bits().i_ty_upper) == pytest.approx(1.0, rel=1e-5)  # type: ignore[arg-type]


def test_invariant_under_translation_rotation_and_joint_scaling() -> None:
    rng = np.random.default_rng(2)
    t = rng.normal(size=(150, 4))
    labels = rng.integers(0, 2, 150)
    variances = np.array([0.05, 0.5])
    base = information_plane(t, labels, noise_variance=variances)
    rotation, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    moved = information_plane(t @ rotation.T + 7.0, labels, noise_variance=variances)
    scaled = information_plane(3.0 * t, labels, noise_variance=9.0 * variances)
    for other in (moved, scaled):
        np.testing.assert_allclose(other.i_xt_upper, base.i_xt_upper, rtol=1e-9)
        np.testing.assert_allclose(other.i_xt_lower, base.i_xt_lower, rtol=1e-9)
        assert other.i_ty_upper is not None
        assert base.i_ty_upper is not None
        np.testing.assert_allclose(other.i_ty_upper, base.i_ty_upper, rtol=1e-9, atol=1e-12)


def test_many_layers_and_epochs_in_one_call() -> None:
    rng = np.random.default_rng(3)
    n = 80
    labels = rng.integers(0, 4, n)
    widths = [3, 7, 2]
    epochs = [[rng.normal(size=(n, w)) * (e + 1) for w in widths] for e in range(4)]
    variances = [0.1, 1.0]
    res = information_plane(epochs, labels, noise_variance=variances)
    assert res.i_xt_upper.shape == (4, 3, 2)
    assert res.i_ty_lower is not None
    assert res.i_ty_lower.shape == (4, 3, 2)
    for e in range(4):
        for layer in range(3):
            one = information_plane(epochs[e][layer], labels, noise_variance=variances)
            np.testing.assert_array_equal(res.i_xt_upper[e, layer], one.i_xt_upper)
            assert one.i_ty_upper is not None
            assert res.i_ty_upper is not None
            np.testing.assert_array_equal(res.i_ty_upper[e, layer], one.i_ty_upper)
    stacked = np.stack([rng.normal(size=(n, 5)) for _ in range(6)]).reshape(2, 3, n, 5)
    res = information_plane(stacked, noise_variance=0.5)
    assert res.i_xt_upper.shape == (2, 3)
    assert res.i_ty_upper is None
    as_float32 = information_plane(stacked.astype(np.float32), noise_variance=0.5)
    np.testing.assert_allclose(as_float32.i_xt_upper, res.i_xt_upper, rtol=1e-5)
    single = information_plane(stacked[0, 0], noise_variance=0.5)
    assert np.ndim(single.i_xt_upper) == 0
    assert float(single.i_xt_upper) == pytest.approx(float(res.i_xt_upper[0, 0]), rel=1e-14)


def test_information_plane_errors() -> None:
    t = np.random.default_rng(4).normal(size=(10, 2))
    for bad in (0.0, -1.0, float("nan"), [1.0, 0.0]):
        with pytest.raises(ValueError, match="noise_variance"):
            information_plane(t, noise_variance=bad)
    with pytest.raises(ValueError, match="noise_variance"):
        information_plane(t, noise_variance=[[1.0]])
    with pytest.raises(ValueError, match="noise_variance is empty"):
        information_plane(t, noise_variance=[])
    with pytest.raises(ValueError, match="labels: expected one label per activation row"):
        information_plane(t, np.zeros(9), noise_variance=1.0)
    with pytest.raises(ValueError, match="labels: expected a 1-D"):
        information_plane(t, np.zeros((10, 1)), noise_variance=1.0)
    with pytest.raises(ValueError, match="activations contains NaN"):
        information_plane(np.full((3, 2), np.nan), noise_variance=1.0)
    with pytest.raises(ValueError, match="activations points is empty"):
        information_plane(np.zeros((0, 2)), noise_variance=1.0)
    with pytest.raises(ValueError, match="shape"):
        information_plane(np.zeros(5), noise_variance=1.0)
    with pytest.raises(ValueError, match="empty sequence"):
        information_plane([], noise_variance=1.0)
    with pytest.raises(ValueError, match="same length at each level"):
        information_plane([[t, t], [t]], noise_variance=1.0)
    with pytest.raises(TypeError, match="numeric"):
        information_plane(np.array([["a", "b"]]), noise_variance=1.0)
