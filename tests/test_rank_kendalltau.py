"""genlab.rank.kendalltau against scipy.stats.kendalltau, and tau-a against a naive count."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from genlab import DegenerateDataWarning
from genlab.rank import KendallTauResult, kendalltau

VARIANTS = ("b", "c")
METHODS = ("auto", "exact", "asymptotic")
ALTERNATIVES = ("two-sided", "less", "greater")


def scipy_tau(x, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return stats.kendalltau(x, y, **kw)


def ours(x, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateDataWarning)
        return kendalltau(x, y, **kw)


def assert_same(a: float, b: float, rtol: float = 1e-12) -> None:
    a, b = float(a), float(b)
    if np.isnan(b):
        assert np.isnan(a), f"expected NaN, got {a}"
        return
    assert a == pytest.approx(b, rel=rtol, abs=1e-300), (a, b)


def naive_pair_counts(x, y):
    c = d = 0
    for i, j in itertools.combinations(range(len(x)), 2):
        s = np.sign(x[i] - x[j]) * np.sign(y[i] - y[j])
        c += s > 0
        d += s < 0
    return c, d


def datasets():
    rng = np.random.default_rng(1234)
    out = []
    for n in (2, 3, 5, 10, 33, 34, 60, 200, 1000):
        x = rng.normal(size=n)
        out.append((f"continuous-{n}", x, x + rng.normal(size=n)))
        out.append(
            (f"ties-{n}", rng.integers(0, 4, n).astype(float), rng.integers(0, 3, n).astype(float))
        )
        out.append((f"x-ties-{n}", rng.integers(0, 5, n), rng.normal(size=n)))
    out.append(("anti", np.arange(20.0), -np.arange(20.0)))
    out.append(("identical", np.arange(15.0), np.arange(15.0)))
    out.append(("one-discordant", np.arange(40.0), np.r_[1.0, 0.0, np.arange(2.0, 40.0)]))
    return out


DATASETS = datasets()


@pytest.mark.parametrize(("name", "x", "y"), DATASETS, ids=[d[0] for d in DATASETS])
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("alternative", ALTERNATIVES)
@pytest.mark.parametrize("method", METHODS)
def test_matches_scipy(name, x, y, variant, alternative, method):
    kw = {"variant": variant, "alternative": alternative, "method": method}
    has_ties = len(np.unique(x)) < len(x) or len(np.unique(y)) < len(y)
    if method == "exact" and has_ties:
        with pytest.raises(ValueError, match="ties"):
            kendalltau(x, y, **kw)
        return
    if method == "asymptotic" and len(x) == 2:
        # scipy divides 0 by 0 in a variance term whose limit is 0 (see test_asymptotic_n2).
        with pytest.raises(ZeroDivisionError):
            scipy_tau(x, y, **kw)
        assert 0.0 < ours(x, y, **kw).pvalue <= 1.0
        return
    ref = scipy_tau(x, y, **kw)
    res = ours(x, y, **kw)
    assert_same(res.statistic, ref.statistic)
    assert_same(res.pvalue, ref.pvalue)


def test_large_n_matches_scipy():
    rng = np.random.default_rng(0)
    n = 100_000
    x = rng.normal(size=n)
    y = 0.3 * x + rng.normal(size=n)
    for variant in VARIANTS:
        ref = scipy_tau(x, y, variant=variant)
        res = kendalltau(x, y, variant=variant)
        assert_same(res.statistic, ref.statistic)
        assert_same(res.pvalue, ref.pvalue)
    # Heavy ties at large n exercise the tie-corrected variance and the run sorting.
    xt = rng.integers(0, 50, n)
    yt = xt // 3 + rng.integers(0, 7, n)
    ref = scipy_tau(xt, yt)
    res = kendalltau(xt, yt)
    assert_same(res.statistic, ref.statistic)
    assert_same(res.pvalue, ref.pvalue)


def test_above_the_parallel_threshold_matches_scipy():
    # 2**17 observations reach the bucket sort and the parallel merges.
    rng = np.random.default_rng(1)
    n = 2**17 + 11
    x = rng.standard_cauchy(size=n)  # heavy tails: most mass in few buckets
    y = np.round(x + rng.normal(size=n), 1)
    x[5] = np.inf
    y[7] = -np.inf
    ref = scipy_tau(x, y)
    res = kendalltau(x, y)
    assert_same(res.statistic, ref.statistic)
    assert_same(res.pvalue, ref.pvalue)


@pytest.mark.parametrize("policy", ["propagate", "omit"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_nan_policies_match_scipy(policy, variant):
    rng = np.random.default_rng(3)
    x = rng.normal(size=50)
    y = rng.integers(0, 6, 50).astype(float)
    x[[3, 17]] = np.nan
    y[[17, 30, 41]] = np.nan
    ref = scipy_tau(x, y, nan_policy=policy, variant=variant)
    res = kendalltau(x, y, nan_policy=policy, variant=variant)
    assert_same(res.statistic, ref.statistic)
    assert_same(res.pvalue, ref.pvalue)


def test_nan_policy_raise():
    with pytest.raises(ValueError, match="NaN"):
        kendalltau([1.0, np.nan, 3.0], [1, 2, 3], nan_policy="raise")
    # No NaN: "raise" is the same as the default.
    assert kendalltau([1, 2, 3], [1, 3, 2], nan_policy="raise") == kendalltau([1, 2, 3], [1, 3, 2])


def test_omit_leaving_too_few_pairs_warns_and_gives_nan():
    with pytest.warns(DegenerateDataWarning, match="fewer than 2"):
        res = kendalltau([1.0, np.nan, 3.0], [np.nan, 2.0, 1.0], nan_policy="omit")
    assert np.isnan(res.statistic)
    assert np.isnan(res.pvalue)


def test_inputs_scipy_accepts():
    # Lists, integer arrays, bools, infinities, 2-D arrays (flattened, as scipy does).
    cases = [
        ([12, 2, 1, 12, 2], [1, 4, 7, 1, 0]),
        (np.array([3, 1, 2], dtype=np.int8), np.array([1, 2, 3], dtype=np.uint64)),
        ([True, False, True, True], [1.0, 0.0, 2.0, 3.0]),
        ([1.0, np.inf, -np.inf, 2.0], [2.0, 3.0, 1.0, np.inf]),
        (np.arange(6).reshape(2, 3), np.arange(6.0)[::-1]),
    ]
    for x, y in cases:
        ref = scipy_tau(x, y)
        res = kendalltau(x, y)
        assert_same(res.statistic, ref.statistic)
        assert_same(res.pvalue, ref.pvalue)


def test_huge_integers_keep_their_order():
    # Beyond 2**53, float64 would merge distinct integers into ties.
    big = 2**62
    x = np.array([big, big + 1, big + 2, big + 3], dtype=np.int64)
    res = kendalltau(x, [1, 2, 3, 4])
    assert res.statistic == 1.0
    ref = scipy_tau(x, [1, 2, 3, 4])
    assert_same(res.pvalue, ref.pvalue)


def test_result_object():
    res = kendalltau([1, 2, 3, 4], [1, 3, 2, 4])
    assert isinstance(res, KendallTauResult)
    tau, p = res
    assert (tau, p) == (res.statistic, res.pvalue) == (res[0], res[1])
    assert res.correlation == res.statistic
    assert len(res) == 2
    with pytest.raises(AttributeError):
        res.statistic = 0.0  # type: ignore[misc]


def test_degenerate_inputs_warn_and_give_nan():
    with pytest.warns(DegenerateDataWarning, match="fewer than 2"):
        res = kendalltau([1.0], [2.0])
    assert np.isnan(res.statistic)
    assert np.isnan(res.pvalue)
    with pytest.warns(DegenerateDataWarning, match="constant"):
        res = kendalltau([1, 1, 1], [1, 2, 3])
    assert np.isnan(res.statistic)
    assert np.isnan(res.pvalue)
    # tau-a of a constant variable is 0 (sign(0) = 0); its p-value is undefined.
    with pytest.warns(DegenerateDataWarning):
        res = kendalltau([1, 1, 1], [1, 2, 3], variant="a")
    assert res.statistic == 0.0
    assert np.isnan(res.pvalue)


def test_propagated_nan_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = kendalltau([1.0, np.nan], [1.0, 2.0])
    assert np.isnan(res.statistic)


def test_asymptotic_n2():
    # scipy raises ZeroDivisionError (0/0 in a term whose limit is 0); genlab uses the limit.
    res = kendalltau([1, 2], [1, 2], method="asymptotic")
    assert res.statistic == 1.0
    assert_same(res.pvalue, 2 * stats.norm.sf(1.0))


def test_spec_example_three_variants():
    x, y = [1, 1, 2, 3], [1, 2, 3, 4]
    assert kendalltau(x, y, variant="a").statistic == pytest.approx(0.8333333333333334, rel=1e-15)
    assert kendalltau(x, y, variant="b").statistic == pytest.approx(0.912870929175277, rel=1e-15)
    assert kendalltau(x, y, variant="c").statistic == pytest.approx(0.9375, rel=1e-15)


@pytest.mark.parametrize("seed", range(6))
def test_tau_a_against_naive(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 80))
    x = rng.integers(0, 5, n).astype(float)
    y = rng.integers(0, 5, n).astype(float)
    c, d = naive_pair_counts(x, y)
    expected = (c - d) / (n * (n - 1) / 2)
    if len(np.unique(x)) == 1 or len(np.unique(y)) == 1:
        with pytest.warns(DegenerateDataWarning):
            got = kendalltau(x, y, variant="a").statistic
    else:
        got = kendalltau(x, y, variant="a").statistic
    assert got == pytest.approx(expected, rel=1e-14, abs=1e-15)


def test_tau_a_pvalue_is_the_tau_b_test():
    rng = np.random.default_rng(5)
    x, y = rng.integers(0, 4, 40), rng.integers(0, 4, 40)
    assert kendalltau(x, y, variant="a").pvalue == kendalltau(x, y, variant="b").pvalue


def test_exact_refuses_hopeless_sizes():
    rng = np.random.default_rng(0)
    x = rng.permutation(400_000)
    with pytest.raises(ValueError, match="asymptotic"):
        kendalltau(x, rng.permutation(400_000), method="exact")


# --- errors ---------------------------------------------------------------------------------


def test_different_lengths():
    with pytest.raises(ValueError, match=r"y: expected the same length as x \(3\), got length 2"):
        kendalltau([1, 2, 3], [1, 2])


def test_empty_input():
    with pytest.raises(ValueError, match="x: expected at least one observation"):
        kendalltau([], [])


@pytest.mark.parametrize("bad", [["a", "b", "c"], [1 + 2j, 2, 3], [None, 1, 2], [{}, {}, {}]])
def test_non_numeric(bad):
    with pytest.raises(TypeError, match="x: expected numeric data"):
        kendalltau(bad, [1, 2, 3])


@pytest.mark.parametrize(
    ("option", "value"),
    [("variant", "d"), ("method", "fast"), ("alternative", "two_sided"), ("nan_policy", "drop")],
)
def test_unknown_options(option, value):
    with pytest.raises(ValueError, match=f"{option}: expected one of"):
        kendalltau([1, 2, 3], [3, 2, 1], **{option: value})


def test_options_are_keyword_only():
    with pytest.raises(TypeError):
        kendalltau([1, 2, 3], [3, 2, 1], "omit")  # type: ignore[misc]


# --- properties -----------------------------------------------------------------------------

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
pairs = st.integers(min_value=3, max_value=60).flatmap(
    lambda n: st.tuples(
        st.lists(finite, min_size=n, max_size=n), st.lists(finite, min_size=n, max_size=n)
    )
)


def non_constant(v) -> bool:
    return len(set(v)) > 1


@settings(max_examples=60)
@given(pairs)
def test_symmetric(xy):
    x, y = xy
    if not (non_constant(x) and non_constant(y)):
        return
    a, b = kendalltau(x, y), kendalltau(y, x)
    assert a.statistic == pytest.approx(b.statistic, rel=1e-12)
    assert a.pvalue == pytest.approx(b.pvalue, rel=1e-12)


integer_pairs = st.integers(min_value=3, max_value=60).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(-1000, 1000), min_size=n, max_size=n),
        st.lists(st.integers(-1000, 1000), min_size=n, max_size=n),
    )
)


@settings(max_examples=60)
@given(integer_pairs)
def test_invariant_under_increasing_transforms(xy):
    # Integers and transforms that are exact in float64 (x^3 + 7, 2^y), so that no two distinct
    # values collapse into a tie after rounding.
    x, y = (np.asarray(v, dtype=float) for v in xy)
    if not (non_constant(x) and non_constant(y)):
        return
    a = kendalltau(x, y)
    b = kendalltau(x**3 + 7.0, np.exp2(y))
    assert a.statistic == b.statistic
    assert a.pvalue == b.pvalue


@settings(max_examples=40)
@given(st.lists(finite, min_size=2, max_size=60, unique=True))
def test_self_and_negation(x):
    assert kendalltau(x, x).statistic == 1.0
    assert kendalltau(x, [-v for v in x]).statistic == -1.0


def test_the_large_count_workspace_is_explicit() -> None:
    from genlab.rank import KendallWorkspace, default_workspace

    rng = np.random.default_rng(3)
    x = rng.normal(size=40_000)  # above the bitset range: the count that needs scratch memory
    y = x + rng.normal(size=x.size)
    expected = stats.kendalltau(x, y)
    default_workspace.release()
    assert default_workspace.nbytes == 0
    res = kendalltau(x, y)
    assert res.statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert default_workspace.nbytes >= 48 * x.size  # kept for the next call
    default_workspace.release()
    assert default_workspace.nbytes == 0
    mine = KendallWorkspace()
    assert kendalltau(x, y, workspace=mine) == res
    assert mine.nbytes > 0
    assert default_workspace.nbytes == 0
    keep_nothing = KendallWorkspace(max_bytes=0)
    assert kendalltau(x, y, workspace=keep_nothing) == res
    assert keep_nothing.nbytes == 0
    with pytest.raises(TypeError, match=r"workspace: expected a genlab\.rank\.KendallWorkspace"):
        kendalltau(x, y, workspace=bytearray(10))
