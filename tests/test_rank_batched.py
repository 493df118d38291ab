"""kendalltau_many and kendalltau_matrix against scipy (per column) and pandas."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from genlab import DegenerateDataWarning
from genlab.rank import kendalltau, kendalltau_many, kendalltau_matrix


def scipy_tau(x, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return stats.kendalltau(x, y, **kw)


@pytest.mark.parametrize("variant", ["b", "c"])
@pytest.mark.parametrize("alternative", ["two-sided", "greater"])
def test_many_matches_scipy_per_column(variant, alternative):
    rng = np.random.default_rng(0)
    n = 300
    y = rng.normal(size=n)
    X = np.column_stack(
        [
            y + rng.normal(size=n),
            rng.integers(0, 4, n),  # ties
            -y,
            rng.normal(size=n),
        ]
    )
    res = kendalltau_many(X, y, variant=variant, alternative=alternative)
    assert res.statistic.shape == res.pvalue.shape == (4,)
    for j in range(X.shape[1]):
        ref = scipy_tau(X[:, j], y, variant=variant, alternative=alternative)
        assert res.statistic[j] == pytest.approx(ref.statistic, rel=1e-12)
        assert res.pvalue[j] == pytest.approx(ref.pvalue, rel=1e-12, abs=1e-300)


def test_many_above_the_bitset_size_matches_single_calls():
    rng = np.random.default_rng(1)
    n = 40_000
    y = rng.integers(0, 1000, n).astype(float)
    X = np.column_stack([y + rng.normal(size=n), rng.normal(size=n)])
    res = kendalltau_many(X, y, n_jobs=2)
    for j in range(2):
        single = kendalltau(X[:, j], y)
        assert res.statistic[j] == single.statistic
        assert res.pvalue[j] == single.pvalue


@pytest.mark.parametrize("policy", ["propagate", "omit"])
def test_many_nan_policy_per_column(policy):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(40, 3))
    y = rng.normal(size=40)
    X[5, 1] = np.nan
    res = kendalltau_many(X, y, nan_policy=policy)
    for j in range(3):
        ref = scipy_tau(X[:, j], y, nan_policy=policy)
        np.testing.assert_allclose(res.statistic[j], ref.statistic, rtol=1e-12)
    with pytest.raises(ValueError, match="column 1 contains NaN"):
        kendalltau_many(X, y, nan_policy="raise")


def test_many_nan_in_y_with_omit():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(30, 2))
    y = rng.normal(size=30)
    y[[0, 4]] = np.nan
    res = kendalltau_many(X, y, nan_policy="omit")
    for j in range(2):
        assert res.statistic[j] == pytest.approx(
            scipy_tau(X[:, j], y, nan_policy="omit").statistic, rel=1e-12
        )


def test_many_warns_on_constant_columns():
    X = np.column_stack([np.ones(5), np.arange(5.0)])
    with pytest.warns(DegenerateDataWarning, match=r"column\(s\) \[0\]"):
        res = kendalltau_many(X, np.arange(5.0))
    assert np.isnan(res.statistic[0])
    assert res.statistic[1] == 1.0


def test_many_errors():
    with pytest.raises(ValueError, match="X: expected a 2-D array"):
        kendalltau_many(np.arange(5.0), np.arange(5.0))
    with pytest.raises(ValueError, match="y: expected a 1-D array"):
        kendalltau_many(np.ones((5, 2)), np.ones((5, 1)))
    with pytest.raises(ValueError, match=r"X: expected the same length as y \(4\)"):
        kendalltau_many(np.ones((5, 2)), np.arange(4.0))
    with pytest.raises(ValueError, match="y: expected at least one observation"):
        kendalltau_many(np.ones((0, 2)), np.ones(0))
    with pytest.raises(TypeError, match="X: expected numeric data"):
        kendalltau_many(np.array([["a"], ["b"]]), [1, 2])
    with pytest.raises(ValueError, match="n_jobs"):
        kendalltau_many(np.ones((3, 2)), np.arange(3.0), n_jobs=0)


@pytest.mark.parametrize("shape", [(2000, 6), (50, 5), (7, 3)])
def test_matrix_matches_pandas(shape):
    rng = np.random.default_rng(4)
    X = rng.normal(size=shape)
    X[:, 1] = np.round(X[:, 1])  # ties
    X[:, 2] = X[:, 0] + 0.1 * rng.normal(size=shape[0])
    ours = kendalltau_matrix(X)
    ref = pd.DataFrame(X).corr(method="kendall").to_numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-15)
    assert np.array_equal(ours, ours.T)


def test_matrix_many_tie_free_columns_mixed_with_tied_and_nan_ones():
    # 12 tie-free columns of 300 rows take the bitset-Gram count on AVX-512 CPUs (and the merge
    # count elsewhere); tied columns and a column with NaN (pairwise-complete) mix in; every
    # variant equals pairwise calls.
    rng = np.random.default_rng(8)
    X = rng.normal(size=(300, 15))
    X[:, 3] = X[:, 0] + 0.3 * rng.normal(size=300)
    X[:, 12] = np.round(X[:, 12])
    X[:, 13] = -X[:, 5]
    X[rng.random(300) < 0.1, 14] = np.nan
    ours = kendalltau_matrix(X)
    ref = pd.DataFrame(X).corr(method="kendall").to_numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-15)
    assert ours[5, 13] == -1.0
    for variant in ("a", "c"):
        M = kendalltau_matrix(X[:, :12], variant=variant)
        for i, j in [(0, 3), (2, 11), (5, 7)]:
            expected = kendalltau(X[:, i], X[:, j], variant=variant).statistic
            assert M[i, j] == pytest.approx(expected, rel=1e-12)


def test_matrix_pairwise_complete_like_pandas():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(60, 4))
    X[rng.random(X.shape) < 0.1] = np.nan
    X[:, 3] = 2.0  # constant column: off-diagonal NaN, diagonal 1 (pandas' rule)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = pd.DataFrame(X).corr(method="kendall").to_numpy()
    with pytest.warns(DegenerateDataWarning, match=r"pair\(s\) \(0, 3\), \(1, 3\), \(2, 3\) "):
        ours = kendalltau_matrix(X)
    np.testing.assert_allclose(ours, ref, rtol=1e-12, equal_nan=True)


def test_matrix_policies():
    X = np.array([[1.0, 2.0], [2.0, np.nan], [3.0, 1.0], [4.0, 0.0]])
    prop = kendalltau_matrix(X, nan_policy="propagate")
    assert np.isnan(prop[0, 1])
    assert np.isnan(prop[1, 1])
    assert prop[0, 0] == 1.0
    with pytest.raises(ValueError, match="column 1 contains NaN"):
        kendalltau_matrix(X, nan_policy="raise")


def test_matrix_variant_a_and_c():
    rng = np.random.default_rng(6)
    X = rng.integers(0, 3, size=(30, 3)).astype(float)
    for variant in ("a", "c"):
        M = kendalltau_matrix(X, variant=variant)
        for i in range(3):
            for j in range(3):
                if i != j:
                    expected = kendalltau(X[:, i], X[:, j], variant=variant).statistic
                    assert M[i, j] == pytest.approx(expected, rel=1e-12)


def test_matrix_errors():
    with pytest.raises(ValueError, match="X: expected a 2-D array"):
        kendalltau_matrix(np.arange(3.0))
    with pytest.raises(ValueError, match="at least one column"):
        kendalltau_matrix(np.ones((3, 0)))
    with pytest.raises(ValueError, match="variant: expected one of"):
        kendalltau_matrix(np.ones((3, 2)), variant="x")
