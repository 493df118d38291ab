"""granulated_kendall, conditional_mutual_information and sign_error against naive references."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest

from genlab import DegenerateDataWarning
from genlab.rank import conditional_mutual_information, granulated_kendall, sign_error

# --- naive references, written for the tests ------------------------------------------------


def sgn(v: float) -> int:
    return int(v > 0) - int(v < 0)


def naive_tau(m, g, variant):
    n = len(m)
    if n < 2:
        return math.nan
    s = sum(sgn(m[i] - m[j]) * sgn(g[i] - g[j]) for i, j in itertools.combinations(range(n), 2))
    pairs = n * (n - 1) / 2
    if variant == "a":
        return s / pairs
    tx = sum(m[i] == m[j] for i, j in itertools.combinations(range(n), 2))
    ty = sum(g[i] == g[j] for i, j in itertools.combinations(range(n), 2))
    if tx == pairs or ty == pairs:
        return math.nan
    if variant == "c":
        m_classes = min(len(set(m)), len(set(g)))
        return 2 * m_classes * s / (n**2 * (m_classes - 1))
    return s / math.sqrt((pairs - tx) * (pairs - ty))


def naive_granulated(measure, gap, hp, variant):
    names = list(hp)
    rows = [tuple(hp[k][i] for k in names) for i in range(len(measure))]
    psi = {}
    used = {}
    skipped = {}
    for a, name in enumerate(names):
        cells = defaultdict(list)
        for i, row in enumerate(rows):
            cells[row[:a] + row[a + 1 :]].append(i)
        taus = [
            naive_tau([measure[i] for i in c], [gap[i] for i in c], variant) for c in cells.values()
        ]
        good = [t for t in taus if not math.isnan(t)]
        psi[name] = sum(good) / len(good) if good else math.nan
        used[name], skipped[name] = len(good), len(taus) - len(good)
    defined = [v for v in psi.values() if not math.isnan(v)]
    return psi, sum(defined) / len(defined), used, skipped


def naive_cmi(measure, gap, hp, subset):
    n = len(measure)
    tables: dict = defaultdict(lambda: defaultdict(int))
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            u = tuple((hp[k][i], hp[k][j]) for k in subset)
            tables[u][(sgn(measure[i] - measure[j]), sgn(gap[i] - gap[j]))] += 1
    total = n * (n - 1)
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


def naive_sign_error(measure, gap, hp, n_samples=None, min_weight=0.5):
    names = list(hp)
    configs = defaultdict(list)
    for i in range(len(measure)):
        configs[tuple(hp[k][i] for k in names)].append(i)
    keys = list(configs)
    out = []
    for a, b in itertools.combinations(keys, 2):
        diff = [k for k in range(len(names)) if a[k] != b[k]]
        if len(diff) != 1:
            continue
        num = den = 0.0
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
        out.append((names[diff[0]], num / den if den > 0 else math.nan))
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


@pytest.mark.parametrize("variant", ["a", "b", "c"])
@pytest.mark.parametrize("missing", [0.0, 0.3])
def test_granulated_matches_naive(variant, missing):
    measure, gap, hp = zoo(seed=1, missing=missing)
    res = granulated_kendall(measure, gap, hp, variant=variant)
    psi, Psi, used, skipped = naive_granulated(measure, gap, hp, variant)
    for k in hp:
        assert res.axis_psi[k] == pytest.approx(psi[k], rel=1e-12)
    assert res.psi == pytest.approx(Psi, rel=1e-12)
    assert res.cells_used == used
    assert res.cells_skipped == skipped
    assert res.tau == pytest.approx(naive_tau(measure, gap, variant), rel=1e-12)
    assert res.variant == variant
    assert res.n_models == len(measure)


def test_granulated_counts_skipped_cells():
    # Cell (lr=2) along "width" has a single model: skipped. Constant measure in a cell with
    # tau-b: undefined, skipped; with tau-a: 0, used.
    hp = {"lr": [1, 1, 1, 2], "width": [1, 2, 3, 1]}
    measure = [5.0, 5.0, 5.0, 1.0]
    gap = [0.1, 0.2, 0.3, 0.4]
    res_b = granulated_kendall(measure, gap, hp, variant="b")
    assert res_b.cells_used["width"] == 0
    assert res_b.cells_skipped["width"] == 2
    assert math.isnan(res_b.axis_psi["width"])
    res_a = granulated_kendall(measure, gap, hp, variant="a")
    assert res_a.cells_used["width"] == 1
    assert res_a.axis_psi["width"] == 0.0


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
    assert math.isnan(granulated_kendall(measure, gap, hp).psi)
    omitted = granulated_kendall(measure, gap, hp, nan_policy="omit")
    keep = ~np.isnan(measure)
    ref = granulated_kendall(measure[keep], gap[keep], {k: v[keep] for k, v in hp.items()})
    assert omitted.axis_psi == ref.axis_psi
    assert omitted.n_models == keep.sum()
    with pytest.raises(ValueError, match="NaN"):
        granulated_kendall(measure, gap, hp, nan_policy="raise")


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


def test_cmi_edge_scores():
    grid = np.array(list(itertools.product(range(3), range(3), range(2))))
    hp = {"a": grid[:, 0], "b": grid[:, 1], "c": grid[:, 2]}
    rng = np.random.default_rng(5)
    gap = grid @ [1.0, 0.37, 0.011] + 0.001 * rng.random(len(grid))
    assert conditional_mutual_information(gap, gap, hp).score == pytest.approx(1.0, abs=1e-12)
    assert conditional_mutual_information(grid[:, 0], gap, hp).score == pytest.approx(
        0.0, abs=1e-12
    )
    assert conditional_mutual_information(np.ones(len(grid)), gap, hp).score == pytest.approx(
        0.0, abs=1e-12
    )


def test_cmi_competition_rule():
    measure, gap, hp = zoo(seed=6)
    res = conditional_mutual_information(measure, gap, hp, min_subset_size=2, max_subset_size=2)
    assert all(len(k) == 2 for k in res.scores)
    assert len(res.scores) == 3


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


# --- sign-error -------------------------------------------------------------------------------


@pytest.mark.parametrize("hoeffding", [False, True])
def test_sign_error_matches_naive(hoeffding):
    measure, gap, hp = zoo(seed=8, missing=0.25, seeds=3)
    gap = gap / 20  # gaps on the scale of error rates, for the Hoeffding weights
    kw = {"weighting": "hoeffding", "n_samples": 2000} if hoeffding else {}
    res = sign_error(measure, gap, hp, **kw)
    ref = naive_sign_error(measure, gap, hp, n_samples=2000 if hoeffding else None)
    assert len(res.error) == len(ref)
    got = sorted(zip(res.axis.tolist(), res.error.tolist(), strict=True), key=str)
    want = sorted(ref, key=str)
    for (ga, ge), (wa, we) in zip(got, want, strict=True):
        assert ga == wa
        if math.isnan(we):
            assert math.isnan(ge)
        else:
            assert ge == pytest.approx(we, rel=1e-12, abs=1e-15)
    errors = np.array([e for _, e in ref if not math.isnan(e)])
    assert res.overall.mean == pytest.approx(errors.mean(), rel=1e-12)
    assert res.overall.p90 == pytest.approx(np.percentile(errors, 90), rel=1e-12)
    assert res.overall.max == pytest.approx(errors.max(), rel=1e-12)
    assert res.n_excluded == sum(math.isnan(e) for _, e in ref)
    for name in hp:
        per = [e for a, e in ref if a == name and not math.isnan(e)]
        assert res.per_axis[name].n_environments == len(per)


def test_sign_error_extremes():
    _measure, gap, hp = zoo(seed=9)
    assert sign_error(gap, gap, hp).overall.max == 0.0
    assert sign_error(-gap, gap, hp).overall.mean == 1.0
    assert sign_error(np.ones_like(gap), gap, hp).overall.mean == 0.5


def test_sign_error_nan_policies():
    measure, gap, hp = zoo(seed=10)
    measure = measure.copy()
    measure[0] = np.nan
    prop = sign_error(measure, gap, hp)
    assert math.isnan(prop.overall.mean)
    omit = sign_error(measure, gap, hp, nan_policy="omit")
    assert not math.isnan(omit.overall.mean)
    with pytest.raises(ValueError, match="NaN"):
        sign_error(measure, gap, hp, nan_policy="raise")


def test_sign_error_errors():
    measure, gap, hp = zoo(seed=11)
    with pytest.raises(ValueError, match="n_samples"):
        sign_error(measure, gap, hp, weighting="hoeffding")
    with pytest.raises(ValueError, match="weighting: expected one of"):
        sign_error(measure, gap, hp, weighting="bayes")
    with pytest.raises(ValueError, match="min_weight"):
        sign_error(measure, gap, hp, weighting="hoeffding", n_samples=100, min_weight=1.5)


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
