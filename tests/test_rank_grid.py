"""granulated_kendall, conditional_mutual_information and sign_error against naive references."""

from __future__ import annotations

import itertools
import math
import warnings
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genlab import DegenerateDataWarning
from genlab.rank import (
    conditional_mutual_information,
    granulated_kendall,
    kendalltau_across_groups,
    kendalltau_across_resampled_groups,
    sign_error,
)

# --- naive references, written for the tests ------------------------------------------------


def sgn(v: float) -> int:
    return int(v > 0) - int(v < 0)


def naive_tau(m, g, variant, groups=None):
    """tau over the pairs whose groups differ (every pair when ``groups`` is None)."""
    n = len(m)
    groups = list(range(n)) if groups is None else list(groups)
    pairs_ = [(i, j) for i, j in itertools.combinations(range(n), 2) if groups[i] != groups[j]]
    if not pairs_:
        return math.nan
    s = sum(sgn(m[i] - m[j]) * sgn(g[i] - g[j]) for i, j in pairs_)
    pairs = len(pairs_)
    if variant == "a":
        return s / pairs
    tx = sum(m[i] == m[j] for i, j in pairs_)
    ty = sum(g[i] == g[j] for i, j in pairs_)
    if tx == pairs or ty == pairs:
        return math.nan
    if variant == "c":
        assert pairs == n * (n - 1) / 2, "tau-c is defined over all pairs"
        m_classes = min(len(set(m)), len(set(g)))
        return 2 * m_classes * s / (n**2 * (m_classes - 1))
    return s / math.sqrt((pairs - tx) * (pairs - ty))


def configurations(hp):
    names = list(hp)
    return [tuple(hp[k][i] for k in names) for i in range(len(next(iter(hp.values()))))]


def average_replicates(measure, gap, hp):
    """Per-configuration means, and the hyperparameters of each configuration."""
    runs = defaultdict(list)
    for i, config in enumerate(configurations(hp)):
        runs[config].append(i)
    keys = list(runs)
    m = [float(np.mean([measure[i] for i in runs[k]])) for k in keys]
    g = [float(np.mean([gap[i] for i in runs[k]])) for k in keys]
    return m, g, {name: [k[a] for k in keys] for a, name in enumerate(hp)}


def naive_granulated(measure, gap, hp, variant, replicates="pairs"):
    if replicates == "average":
        measure, gap, hp = average_replicates(measure, gap, hp)
    names = list(hp)
    rows = configurations(hp)
    psi = {}
    used = {}
    skipped = {}
    for a, name in enumerate(names):
        cells = defaultdict(list)
        for i, row in enumerate(rows):
            cells[row[:a] + row[a + 1 :]].append(i)
        taus = [
            naive_tau(
                [measure[i] for i in c], [gap[i] for i in c], variant, [rows[i][a] for i in c]
            )
            for c in cells.values()
        ]
        good = [t for t in taus if not math.isnan(t)]
        psi[name] = sum(good) / len(good) if good else math.nan
        used[name], skipped[name] = len(good), len(taus) - len(good)
    defined = [v for v in psi.values() if not math.isnan(v)]
    overall = naive_tau(list(measure), list(gap), variant, rows)
    return psi, sum(defined) / len(defined), used, skipped, overall


def naive_cmi(measure, gap, hp, subset):
    """genlab's rule: ordered pairs of runs of different configurations, pooled over U_S."""
    n = len(measure)
    rows = configurations(hp)
    tables: dict = defaultdict(lambda: defaultdict(int))
    total = 0
    for i in range(n):
        for j in range(n):
            if rows[i] == rows[j]:
                continue
            u = tuple((hp[k][i], hp[k][j]) for k in subset)
            tables[u][(sgn(measure[i] - measure[j]), sgn(gap[i] - gap[j]))] += 1
            total += 1
    mi = h = 0.0
    for table in tables.values():
        nu = sum(table.values())
        pu = nu / total
        pm = defaultdict(float)
        pg = defaultdict(float)
        for (a, b), c in table.items():
            pm[a] += c / nu
            pg[b] += c / nu
        for (a, b), c in table.items():
            p = c / nu
            mi += pu * p * math.log(p / (pm[a] * pg[b]))
        h -= pu * sum(p * math.log(p) for p in pg.values() if p > 0)
    return mi / h if h > 0 else math.nan


def naive_sign_error(measure, gap, hp, n_samples=None, min_weight=0.5, min_ess=12.0):
    """{(first run of a, first run of b): (axis, error, kept)} per environment, from the
    definition."""
    names = list(hp)
    configs = defaultdict(list)
    for i, row in enumerate(configurations(hp)):
        configs[row].append(i)
    keys = list(configs)
    out = {}
    for a, b in itertools.combinations(keys, 2):
        diff = [k for k in range(len(names)) if a[k] != b[k]]
        if len(diff) != 1:
            continue
        num = den = den_sq = 0.0
        for i in configs[a]:
            for j in configs[b]:
                dg = gap[i] - gap[j]
                if n_samples is None:
                    w = 1.0
                else:
                    w = max(0.0, 1 - 2 * math.exp(-2 * n_samples * (abs(dg) / 2) ** 2)) ** 2
                    w = max(w - min_weight, 0.0)
                num += w * (1 - sgn(measure[i] - measure[j]) * sgn(dg)) / 2
                den += w
                den_sq += w * w
        ess = den**2 / den_sq if den > 0 else 0.0
        # Dziugaite et al.'s code keeps ess > min_ess or np.isclose(ess, min_ess): with weights
        # capped at 0.5 - eps, 12 pairs give an ess a hair below 12 that it keeps.
        kept = den > 0 and (ess > min_ess or bool(np.isclose(ess, min_ess)))
        env = frozenset((configs[a][0], configs[b][0]))
        out[env] = (names[diff[0]], num / den if den > 0 else math.nan, kept)
    return out


# --- data ------------------------------------------------------------------------------------


def zoo(seed=0, missing=0.0, seeds=2):
    """A 3 x 2 x 3 grid with several seeds per configuration and, optionally, missing models."""
    rng = np.random.default_rng(seed)
    rows = [
        (lr, w, d)
        for lr in (0.1, 0.01, 0.001)
        for w in ("narrow", "wide")
        for d in (2, 4, 8)
        for _ in range(seeds)
    ]
    keep = rng.random(len(rows)) >= missing
    rows = [r for r, k in zip(rows, keep, strict=True) if k]
    hp = {
        "lr": np.array([r[0] for r in rows]),
        "width": np.array([r[1] for r in rows]),
        "depth": np.array([r[2] for r in rows]),
    }
    base = -np.log10(hp["lr"]) + (hp["width"] == "wide") * 0.7 + np.log2(hp["depth"]) * 0.3
    gap = base + 0.2 * rng.normal(size=len(rows))
    measure = base + 0.5 * rng.normal(size=len(rows))
    return measure, gap, hp


# --- granulated -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variant", "replicates"),
    [("a", "pairs"), ("b", "pairs"), ("a", "average"), ("b", "average"), ("c", "average")],
)
@pytest.mark.parametrize("missing", [0.0, 0.3])
def test_granulated_matches_naive(variant, replicates, missing):
    measure, gap, hp = zoo(seed=1, missing=missing)
    res = granulated_kendall(measure, gap, hp, variant=variant, replicates=replicates)
    psi, Psi, used, skipped, overall = naive_granulated(measure, gap, hp, variant, replicates)
    for k in hp:
        assert res.axis_psi[k] == pytest.approx(psi[k], rel=1e-12)
    assert res.psi == pytest.approx(Psi, rel=1e-12)
    assert res.cells_used == used
    assert res.cells_skipped == skipped
    assert res.tau == pytest.approx(overall, rel=1e-12)
    assert (res.variant, res.replicates) == (variant, replicates)
    assert res.n_models == len(measure)
    assert res.n_configurations == len(set(configurations(hp)))


def test_granulated_counts_skipped_cells():
    # Cell (lr=2) along "width" has a single model: skipped. Constant measure in a cell with
    # tau-b: undefined, skipped; with tau-a: 0, used.
    hp = {"lr": [1, 1, 1, 2], "width": [1, 2, 3, 1]}
    measure = [5.0, 5.0, 5.0, 1.0]
    gap = [0.1, 0.2, 0.3, 0.4]
    with pytest.warns(DegenerateDataWarning, match=r"undefined \(NaN\) for \['width'\]"):
        res_b = granulated_kendall(measure, gap, hp, variant="b")
    assert res_b.cells_used["width"] == 0
    assert res_b.cells_skipped["width"] == 2
    assert math.isnan(res_b.axis_psi["width"])
    res_a = granulated_kendall(measure, gap, hp, variant="a")
    assert res_a.cells_used["width"] == 1
    assert res_a.axis_psi["width"] == 0.0


def test_seed_pairs_do_not_count():
    # Two seeds of one configuration only differ by noise: a cell holding just them is skipped,
    # and seeds ordered against the gap within a configuration do not lower psi.
    hp = {"lr": [1, 1, 2, 2], "width": [1, 1, 1, 1]}
    measure = [1.1, 1.0, 2.1, 2.0]  # configurations in order, seeds reversed
    gap = [0.1, 0.2, 0.3, 0.4]
    res = granulated_kendall(measure, gap, {"lr": hp["lr"]})
    assert res.axis_psi == {"lr": 1.0}
    assert res.tau == 1.0
    hp2 = {"lr": [1, 1, 2, 2], "width": [1, 1, 2, 2]}  # width never varies alone
    with pytest.warns(DegenerateDataWarning, match=r"\['lr', 'width'\]: no cell where only"):
        res2 = granulated_kendall(measure, gap, hp2)
    assert res2.cells_used == {"lr": 0, "width": 0}
    assert res2.cells_skipped == {"lr": 2, "width": 2}
    assert math.isnan(res2.psi)


def test_tau_c_needs_averaged_replicates():
    measure, gap, hp = zoo(seed=1)
    with pytest.raises(ValueError, match=r'variant: tau-c .* replicates="average"'):
        granulated_kendall(measure, gap, hp, variant="c")
    with pytest.raises(ValueError, match="replicates: expected one of"):
        granulated_kendall(measure, gap, hp, replicates="mean")


@settings(max_examples=40)
@given(
    seeds=st.integers(1, 4),
    sizes=st.lists(st.integers(2, 3), min_size=1, max_size=3),
    data=st.data(),
)
def test_configuration_perfect_measure_scores_one(seeds, sizes, data):
    """Whatever the number of seeds, a measure that orders every pair of runs of different
    configurations as the gap does has psi = 1 on every axis, and tau = 1."""
    grid = list(itertools.product(*[range(k) for k in sizes]))
    # Configuration "levels" spaced by 1, seed noise within +-0.3 on both sides: the gap orders
    # every pair of configurations; the measure follows the levels with its own noise.
    level = data.draw(st.permutations(range(len(grid))))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    rows = [(config, lvl) for config, lvl in zip(grid, level, strict=True) for _ in range(seeds)]
    hp = {f"h{a}": np.array([r[0][a] for r in rows]) for a in range(len(sizes))}
    base = np.array([float(r[1]) for r in rows])
    gap = base + rng.uniform(-0.3, 0.3, len(rows))
    measure = 10 * base - rng.uniform(-0.3, 0.3, len(rows))
    for replicates in ("pairs", "average"):
        res = granulated_kendall(measure, gap, hp, replicates=replicates)
        assert res.axis_psi == dict.fromkeys(hp, 1.0)
        assert res.psi == 1.0
        assert res.tau == 1.0
        assert kendalltau_across_groups(
            measure[:, None], gap, np.repeat(np.arange(len(grid)), seeds)
        ).tolist() == [1.0]


def test_granulated_accepts_dataframe_and_is_order_independent():
    measure, gap, hp = zoo(seed=2)
    a = granulated_kendall(measure, gap, hp)
    b = granulated_kendall(measure, gap, pd.DataFrame(hp))
    perm = np.random.default_rng(0).permutation(len(measure))
    c = granulated_kendall(measure[perm], gap[perm], {k: v[perm] for k, v in hp.items()})
    assert a.axis_psi == b.axis_psi
    for k in hp:
        assert c.axis_psi[k] == pytest.approx(a.axis_psi[k], rel=1e-12)


def test_granulated_big_grid_runs():
    # The benchmark's shape: 3^7 grid, one model per configuration.
    grid = np.array(list(itertools.product(range(3), repeat=7)))
    hp = {f"h{i}": grid[:, i] for i in range(7)}
    gap = grid @ np.linspace(1, 2, 7)
    res = granulated_kendall(gap, gap, hp)
    assert res.psi == 1.0
    assert all(v == 3**6 for v in res.cells_used.values())


def test_granulated_nan_policies():
    measure, gap, hp = zoo(seed=3)
    measure = measure.copy()
    measure[4] = np.nan
    with pytest.raises(ValueError, match=r"measure: contains NaN \(first at model 4"):
        granulated_kendall(measure, gap, hp)
    assert math.isnan(granulated_kendall(measure, gap, hp, nan_policy="propagate").psi)
    omitted = granulated_kendall(measure, gap, hp, nan_policy="omit")
    keep = ~np.isnan(measure)
    ref = granulated_kendall(measure[keep], gap[keep], {k: v[keep] for k, v in hp.items()})
    assert omitted.axis_psi == ref.axis_psi
    assert omitted.n_models == keep.sum()


# --- kendalltau_across_groups -----------------------------------------------------------------


def test_tau_across_groups_matches_naive():
    rng = np.random.default_rng(12)
    X = rng.integers(0, 4, size=(40, 5)).astype(float)  # ties on purpose
    X[3, 2] = np.nan
    y = rng.normal(size=40).round(1)
    groups = rng.integers(0, 9, size=40)
    for variant in ("a", "b"):
        got = kendalltau_across_groups(X, y, groups, variant=variant)
        for j in range(X.shape[1]):
            keep = ~np.isnan(X[:, j])
            want = naive_tau(X[keep, j].tolist(), y[keep].tolist(), variant, groups[keep])
            assert got[j] == pytest.approx(want, rel=1e-12)
    assert math.isnan(kendalltau_across_groups(X, y, groups, nan_policy="propagate")[2])
    with pytest.raises(ValueError, match="X: column 2 contains NaN"):
        kendalltau_across_groups(X, y, groups, nan_policy="raise")
    with pytest.raises(ValueError, match="variant: expected one of"):
        kendalltau_across_groups(X, y, groups, variant="c")
    with pytest.raises(TypeError, match="groups: expected a 1-D array of integers"):
        kendalltau_across_groups(X, y, groups.astype(float))
    with pytest.raises(ValueError, match="groups: expected the same length as y"):
        kendalltau_across_groups(X, y, groups[:-1])


def written_out(X, y, groups, copies):
    """A resample as rows: each group repeated as often as drawn, copies keeping its id."""
    rows = np.concatenate(
        [
            np.repeat(np.flatnonzero(groups == g)[None, :], c, axis=0).ravel()
            for g, c in enumerate(copies)
        ]
        + [np.array([], dtype=int)]
    ).astype(int)
    return X[rows], y[rows], groups[rows]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(1, 6), variant=st.sampled_from("ab"))
def test_tau_across_resampled_groups_is_tau_of_each_resample_written_out(seed, k, variant):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 30))
    X = rng.integers(0, 4, size=(n, 3)).astype(float)  # ties on purpose
    X[rng.random(size=X.shape) < 0.1] = np.nan
    y = rng.integers(0, 3, size=n).astype(float)
    groups = rng.integers(0, k, size=n)
    counts = rng.integers(0, 3, size=(4, k))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateDataWarning)
        got = kendalltau_across_resampled_groups(X, y, groups, counts, variant=variant)
    assert got.shape == (4, 3)
    for b, copies in enumerate(counts):
        Xb, yb, gb = written_out(X, y, groups, copies)
        for j in range(3):
            keep = ~np.isnan(Xb[:, j])
            want = naive_tau(Xb[keep, j].tolist(), yb[keep].tolist(), variant, gb[keep])
            if math.isnan(want):
                assert math.isnan(got[b, j])
            else:
                assert got[b, j] == pytest.approx(want, rel=1e-12, abs=1e-15)


def test_tau_across_resampled_groups_many_groups_and_errors():
    # 3,000 groups of 2 runs, 3 resamples: the resamples are counted one by one here (k^2
    # matrices would cost more), and agree with the plain function on each written-out resample.
    rng = np.random.default_rng(5)
    groups = np.repeat(np.arange(3000), 2)
    y = rng.normal(size=6000)
    X = np.column_stack([y + rng.normal(size=6000), rng.normal(size=6000)])
    counts = np.stack([np.bincount(rng.integers(0, 3000, 3000), minlength=3000) for _ in "abc"])
    got = kendalltau_across_resampled_groups(X, y, groups, counts)
    for b in range(3):
        Xb, yb, gb = written_out(X, y, groups, counts[b])
        assert got[b] == pytest.approx(kendalltau_across_groups(Xb, yb, gb), rel=1e-13)
    one_group = np.zeros((1, 3000), dtype=int)
    one_group[0, 7] = 5
    with pytest.warns(DegenerateDataWarning, match="undefined in some resamples for column"):
        assert np.isnan(kendalltau_across_resampled_groups(X, y, groups, one_group)).all()
    X[0, 1] = np.nan
    assert np.isnan(
        kendalltau_across_resampled_groups(X, y, groups, counts, nan_policy="propagate")[:, 1]
    ).all()
    with pytest.raises(ValueError, match="X: column 1 contains NaN"):
        kendalltau_across_resampled_groups(X, y, groups, counts, nan_policy="raise")
    with pytest.raises(ValueError, match="counts: expected copies >= 0, got -1"):
        kendalltau_across_resampled_groups(X, y, groups, -np.ones((2, 3000), dtype=int))
    with pytest.raises(ValueError, match="groups: group id 5 has no column in counts, which has 5"):
        kendalltau_across_resampled_groups(X, y, groups, np.ones((2, 5), dtype=int))
    with pytest.raises(TypeError, match="counts: expected a 2-D array of integers"):
        kendalltau_across_resampled_groups(X, y, groups, np.ones(3000))
    with pytest.raises(TypeError, match="counts: expected a 2-D array of integers"):
        kendalltau_across_resampled_groups(X, y, groups, np.ones((2, 3000)))
    with pytest.raises(ValueError, match="variant: expected one of"):
        kendalltau_across_resampled_groups(X, y, groups, counts, variant="c")


# --- conditional mutual information ---------------------------------------------------------


@pytest.mark.parametrize("max_size", [0, 1, 2])
def test_cmi_matches_naive(max_size):
    measure, gap, hp = zoo(seed=4, missing=0.2)
    res = conditional_mutual_information(measure, gap, hp, max_subset_size=max_size)
    names = list(hp)
    for size in range(max_size + 1):
        for subset in itertools.combinations(names, size):
            expected = naive_cmi(measure, gap, hp, subset)
            assert res.scores[subset] == pytest.approx(expected, rel=1e-9, abs=1e-12)
    defined = {k: v for k, v in res.scores.items() if not math.isnan(v)}
    assert res.score == min(defined.values())
    assert res.scores[res.subset] == res.score
    assert 0.0 <= res.score <= 1.0
    assert res.convention == "genlab"


def test_cmi_average_replicates_is_cmi_of_the_means():
    measure, gap, hp = zoo(seed=4)
    res = conditional_mutual_information(measure, gap, hp, replicates="average")
    m, g, hpm = average_replicates(measure, gap, hp)
    ref = conditional_mutual_information(m, g, hpm)
    assert res.scores == pytest.approx(ref.scores, rel=1e-12)


def test_cmi_edge_scores():
    grid = np.array(list(itertools.product(range(3), range(3), range(2))))
    hp = {"a": grid[:, 0], "b": grid[:, 1], "c": grid[:, 2]}
    rng = np.random.default_rng(5)
    gap = grid @ [1.0, 0.37, 0.011] + 0.001 * rng.random(len(grid))
    assert conditional_mutual_information(gap, gap, hp).score == pytest.approx(1.0, abs=1e-12)
    # Orientation-free: exactly backwards scores 1 as well.
    assert conditional_mutual_information(-gap, gap, hp).score == pytest.approx(1.0, abs=1e-12)
    assert conditional_mutual_information(grid[:, 0], gap, hp).score == pytest.approx(
        0.0, abs=1e-12
    )
    assert conditional_mutual_information(np.ones(len(grid)), gap, hp).score == pytest.approx(
        0.0, abs=1e-12
    )


def test_cmi_competition_subsets():
    measure, gap, hp = zoo(seed=6)
    res = conditional_mutual_information(measure, gap, hp, min_subset_size=2, max_subset_size=2)
    assert all(len(k) == 2 for k in res.scores)
    assert len(res.scores) == 3
    pgdl = conditional_mutual_information(measure, gap, hp, convention="pgdl")
    assert sorted(pgdl.scores) == sorted(res.scores)
    assert pgdl.convention == "pgdl"


def test_cmi_undefined_warns():
    hp = {"a": [1, 2, 1, 2]}
    with pytest.warns(DegenerateDataWarning, match="H"):
        res = conditional_mutual_information([1.0, 2, 3, 4], [1.0, 1, 1, 1], hp)
    assert math.isnan(res.score)
    assert res.subset == ()


def test_cmi_errors():
    measure, gap, hp = zoo(seed=7)
    with pytest.raises(ValueError, match="min_subset_size: must be <= max_subset_size"):
        conditional_mutual_information(measure, gap, hp, min_subset_size=2, max_subset_size=1)
    with pytest.raises(ValueError, match="max_subset_size: expected a non-negative integer"):
        conditional_mutual_information(measure, gap, hp, max_subset_size=-1)
    with pytest.raises(ValueError, match="only 3 hyperparameter axes"):
        conditional_mutual_information(measure, gap, hp, min_subset_size=4, max_subset_size=4)
    with pytest.raises(ValueError, match="convention: expected one of"):
        conditional_mutual_information(measure, gap, hp, convention="jiang")
    with pytest.raises(ValueError, match='max_subset_size: convention "pgdl"'):
        conditional_mutual_information(measure, gap, hp, convention="pgdl", max_subset_size=1)
    with pytest.raises(ValueError, match='replicates: convention "pgdl"'):
        conditional_mutual_information(measure, gap, hp, convention="pgdl", replicates="pairs")
    with pytest.raises(ValueError, match=r'hparams: convention "pgdl" .* at least two axes'):
        conditional_mutual_information(measure, gap, {"lr": hp["lr"]}, convention="pgdl")


# --- sign-error -------------------------------------------------------------------------------


@pytest.mark.parametrize("hoeffding", [False, True])
@pytest.mark.parametrize("min_ess", [0.0, 3.0, 12.0])
def test_sign_error_matches_naive(hoeffding, min_ess):
    measure, gap, hp = zoo(seed=8, missing=0.25, seeds=4)
    gap = gap / 20  # gaps on the scale of error rates, for the Hoeffding weights
    kw = {"weighting": "hoeffding", "n_samples": 2000} if hoeffding else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateDataWarning)  # nothing kept in some cases
        res = sign_error(measure, gap, hp, min_ess=min_ess, **kw)
    ref = naive_sign_error(measure, gap, hp, n_samples=2000 if hoeffding else None, min_ess=min_ess)
    assert len(res.error) == len(ref)
    for k in range(len(res.error)):
        wa, we, wk = ref[frozenset((res.model_a[k], res.model_b[k]))]
        assert (res.axis[k], res.kept[k]) == (wa, wk)
        if math.isnan(we):
            assert math.isnan(res.error[k])
        else:
            assert res.error[k] == pytest.approx(we, rel=1e-12, abs=1e-15)
    errors = np.array([e for _, e, k in ref.values() if k])
    assert res.n_kept == len(errors) == res.overall.n_environments
    assert res.n_excluded == len(ref) - len(errors)
    if len(errors):
        assert res.overall.mean == pytest.approx(errors.mean(), rel=1e-12)
        assert res.overall.p90 == pytest.approx(np.percentile(errors, 90), rel=1e-12)
        assert res.overall.max == pytest.approx(errors.max(), rel=1e-12)
    else:
        assert math.isnan(res.overall.mean)
    for name in hp:
        per = [e for a, e, k in ref.values() if a == name and k]
        assert res.per_axis[name].n_environments == len(per)


def test_sign_error_keeps_by_effective_sample_size():
    # Uniform weights: the effective sample size is the number of pairs of runs. 2 seeds give
    # 4 pairs per environment: below the default min_ess = 12, so nothing is kept, and it says why.
    _measure, gap, hp = zoo(seed=9, seeds=2)
    with pytest.warns(DegenerateDataWarning, match="none of the .* environments is kept"):
        res = sign_error(gap, gap, hp)
    assert res.n_kept == 0
    assert (res.effective_sample_size == 4.0).all()
    assert math.isnan(res.overall.max)
    assert sign_error(gap, gap, hp, min_ess=4).n_kept == len(res.error)


def test_sign_error_extremes():
    _measure, gap, hp = zoo(seed=9, seeds=4)
    assert sign_error(gap, gap, hp).overall.max == 0.0
    assert sign_error(-gap, gap, hp).overall.mean == 1.0
    assert sign_error(np.ones_like(gap), gap, hp).overall.mean == 0.5


def test_sign_error_nan_policies():
    measure, gap, hp = zoo(seed=10, seeds=4)
    measure = measure.copy()
    measure[0] = np.nan
    with pytest.raises(ValueError, match="measure: contains NaN"):
        sign_error(measure, gap, hp)
    prop = sign_error(measure, gap, hp, nan_policy="propagate")
    assert math.isnan(prop.overall.mean)
    omit = sign_error(measure, gap, hp, nan_policy="omit")
    assert not math.isnan(omit.overall.mean)


def test_sign_error_errors():
    measure, gap, hp = zoo(seed=11)
    with pytest.raises(ValueError, match="n_samples"):
        sign_error(measure, gap, hp, weighting="hoeffding")
    with pytest.raises(ValueError, match="weighting: expected one of"):
        sign_error(measure, gap, hp, weighting="bayes")
    with pytest.raises(ValueError, match="min_weight"):
        sign_error(measure, gap, hp, weighting="hoeffding", n_samples=100, min_weight=1.5)
    with pytest.raises(ValueError, match="min_ess: expected a finite number >= 0"):
        sign_error(measure, gap, hp, min_ess=-1)
    with pytest.raises(TypeError, match="min_ess: expected a real number"):
        sign_error(measure, gap, hp, min_ess="12")


# --- errors shared by the grid functions -----------------------------------------------------

GRID_FUNCTIONS = [granulated_kendall, conditional_mutual_information, sign_error]


@pytest.mark.parametrize("fn", GRID_FUNCTIONS)
def test_grid_input_errors(fn):
    hp = {"lr": [1, 2, 3]}
    with pytest.raises(ValueError, match=r"gap: expected the same length as measure \(3\)"):
        fn([1.0, 2.0, 3.0], [1.0, 2.0], hp)
    with pytest.raises(ValueError, match="measure: expected a 1-D array"):
        fn(np.ones((3, 1)), [1.0, 2.0, 3.0], hp)
    with pytest.raises(ValueError, match="measure: expected at least 1 element"):
        fn([], [], {"lr": []})
    with pytest.raises(TypeError, match="measure: expected numeric data"):
        fn(["a", "b", "c"], [1.0, 2.0, 3.0], hp)
    with pytest.raises(ValueError, match=r"hparams\['lr'\]: expected one value per model \(3\)"):
        fn([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], {"lr": [1, 2]})
    with pytest.raises(ValueError, match=r"hparams\['lr'\]: expected a 1-D array"):
        fn([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], {"lr": [[1], [2], [3]]})
    with pytest.raises(ValueError, match="at least one hyperparameter axis"):
        fn([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], {})
    with pytest.raises(TypeError, match="hparams: expected a mapping"):
        fn([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [1, 2, 3])
    with pytest.raises(ValueError, match="contains NaN"):
        fn([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], {"lr": [1.0, np.nan, 2.0]})
    with pytest.raises(ValueError, match="nan_policy: expected one of"):
        fn([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], hp, nan_policy="ignore")
    with pytest.raises(ValueError, match=r"gap: contains NaN \(first at model 1"):
        fn([1.0, 2.0, 3.0], [1.0, np.nan, 3.0], hp)
    with pytest.raises(ValueError, match=r"hparams\['lr'\]: mixed value types \(int and str\)"):
        fn([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], {"lr": [1, "1", 2]})
    with pytest.raises(ValueError, match=r"hparams\['lr'\]: mixed value types \(bool and int\)"):
        fn([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], {"lr": [True, 1, 2]})
    with pytest.raises(ValueError, match="hparams: all 3 models share one configuration"):
        fn([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], {"lr": [1, 1, 1]})
    with pytest.raises(ValueError, match="hparams: axis names 1 and '1' are both"):
        fn([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], {1: [1, 2, 3], "1": [1, 1, 2]})
