"""The grid coefficients against re-implementations of the programs users compare with.

- ``pgdl_program_score``: the PGDL competition's scoring program (``scoring_program/
  mutual_information.py`` of the starting kit), rewritten here step by step: its loops over
  ordered pairs of hyperparameters and of models, its tables over every combination of values,
  its entropy with 1e-12 inside the logarithm, its per-cell averages.
- ``dziugaite_losses``: the environment losses of Dziugaite et al.'s code
  (robust-generalization-measures, ``create_environments.py`` and ``get_all_losses``), rewritten
  here: ordered pairs of runs, accumulated weights, squared weights and weighted losses per ordered
  pair of configurations, then the effective-sample-size filter with ``numpy.isclose``.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict

import numpy as np
import pytest

from genlab.rank import conditional_mutual_information, sign_error


def pgdl_program_score(measure, gap, hp):
    """min over ordered pairs of distinct hyperparameters, as the program computes it, and the
    score of every ordered pair."""
    names = list(hp)
    n = len(measure)
    possible = {k: sorted(set(hp[k])) for k in names}

    def entropy(p):
        q = p / p.sum()
        return -np.sum(q * np.log2(q + 1e-12))

    def mi_from_table(t):
        total = t.sum()
        a0, a1 = t.sum(axis=1), t.sum(axis=0)
        mi = 0.0
        for i in range(2):
            for j in range(2):
                joint = t[i, j] / total
                if joint == 0:
                    continue
                mi += joint * np.log2(joint / ((a0[i] / total) * (a1[j] / total)))
        return mi, entropy(a0)

    scores = {}
    for h1, h2 in itertools.permutations(names, 2):
        cells = list(itertools.product(possible[h1], possible[h1], possible[h2], possible[h2]))
        table = {c: np.zeros((2, 2)) for c in cells}
        for i in range(n):
            for j in range(n):
                k0 = 0 if gap[i] > gap[j] else 1
                k1 = 0 if measure[i] > measure[j] else 1
                table[(hp[h1][i], hp[h1][j], hp[h2][i], hp[h2][j])][k0, k1] += 1
        mi_total = h_total = 0.0
        for c in cells:
            mi, h = mi_from_table(table[c])
            mi_total += mi
            h_total += h
        scores[(h1, h2)] = (mi_total / len(cells)) / (h_total / len(cells))
    return min(scores.values()), scores


def full_grid(seed, seeds):
    """3 x 2 x 2 grid, every configuration with ``seeds`` runs (a full grid, as in PGDL)."""
    rng = np.random.default_rng(seed)
    rows = [(a, b, c) for a in (1, 2, 3) for b in ("x", "y") for c in (0.5, 1.5)] * seeds
    hp = {
        "depth": np.array([r[0] for r in rows]),
        "kind": np.array([r[1] for r in rows]),
        "lr": np.array([r[2] for r in rows]),
    }
    base = hp["depth"] * 0.3 + (hp["kind"] == "y") * 0.2 - hp["lr"] * 0.25
    gap = base + 0.15 * rng.normal(size=len(rows))
    measure = base + 0.3 * rng.normal(size=len(rows))
    # Ties in both variables, which the program's two-valued signs treat as "not greater".
    gap[:3] = gap[3]
    measure[5:8] = measure[8]
    return measure, gap, hp


@pytest.mark.parametrize(("seed", "seeds"), [(0, 1), (1, 2), (2, 3)])
def test_cmi_pgdl_matches_the_scoring_program(seed, seeds):
    measure, gap, hp = full_grid(seed, seeds)
    best, per_pair = pgdl_program_score(measure, gap, hp)
    res = conditional_mutual_information(measure, gap, hp, convention="pgdl")
    assert res.score == pytest.approx(best, rel=1e-9, abs=1e-12)
    for (h1, h2), value in per_pair.items():
        key = (h1, h2) if (h1, h2) in res.scores else (h2, h1)
        assert res.scores[key] == pytest.approx(value, rel=1e-9, abs=1e-12)


def test_cmi_pgdl_differs_from_genlabs_rule_on_replicates():
    # The two conventions are different statistics; the docs say which is which.
    measure, gap, hp = full_grid(3, 2)
    pgdl = conditional_mutual_information(measure, gap, hp, convention="pgdl").score
    genlab = conditional_mutual_information(measure, gap, hp).score
    assert abs(pgdl - genlab) > 1e-3


def hoeffding_weight(delta, n):
    phi = 2 * math.exp(-2 * n * (abs(delta) / 2) ** 2)
    return max(0.0, 1.0 - phi) ** 2


def dziugaite_losses(measure, gap, hp, n_test=None, min_ess=12.0):
    """The kept environment losses per hyperparameter, each environment once per order."""
    names = list(hp)
    rows = [tuple(hp[k][i] for k in names) for i in range(len(measure))]
    combo_id = {c: i for i, c in enumerate(sorted(set(rows), key=str))}
    loss = defaultdict(float)
    weights = defaultdict(float)
    weights_sq = defaultdict(float)
    for i, h1 in enumerate(rows):
        for j, h2 in enumerate(rows):
            if sum(a != b for a, b in zip(h1, h2, strict=True)) != 1:
                continue
            if n_test is None:
                w = 1.0
            else:
                w = hoeffding_weight(gap[i] - gap[j], n_test)
                w = w - 0.5 if w > 0.5 else 0.0
            key = (combo_id[h1], combo_id[h2])
            weights[key] += w
            weights_sq[key] += w**2
            err = float(np.sign(measure[i] - measure[j]) * np.sign(gap[i] - gap[j]))
            loss[key] += (1 - err) / 2 * w
    out = {}
    for a, name in enumerate(names):
        values = sorted(set(hp[name]), key=str)
        losses = []
        for v1, v2 in itertools.permutations(values, 2):
            pairs = []
            for c in combo_id:
                if c[a] != v1:
                    continue
                coupled = (*c[:a], v2, *c[a + 1 :])
                if coupled in combo_id:
                    pairs.append((combo_id[c], combo_id[coupled]))
            if not pairs:
                continue
            w = np.array([weights[p] for p in pairs])
            w_sq = np.array([weights_sq[p] for p in pairs])
            w_sq[np.isclose(w, 0)] = 1
            ess = w**2 / w_sq
            keep = np.isclose(ess, min_ess) | (ess > min_ess)
            losses += (np.array([loss[p] for p in pairs])[keep] / w[keep]).tolist()
        out[name] = np.array(losses)
    return out


def uneven_zoo(seed):
    """4 seeds per configuration, one configuration with 3: environments of 16 and 12 pairs."""
    rng = np.random.default_rng(seed)
    rows = [(lr, w) for lr in (0.1, 0.01, 0.001) for w in (32, 64) for _ in range(4)][1:]
    hp = {"lr": np.array([r[0] for r in rows]), "width": np.array([r[1] for r in rows])}
    base = -np.log10(hp["lr"]) * 0.05 + (hp["width"] == 64) * 0.03
    gap = base + 0.02 * rng.normal(size=len(rows))  # error-rate scale
    measure = base + 0.04 * rng.normal(size=len(rows))
    return measure, gap, hp


@pytest.mark.parametrize("n_test", [None, 10_000, 2_000])
@pytest.mark.parametrize("seed", [0, 1])
def test_sign_error_matches_dziugaite_code(n_test, seed):
    measure, gap, hp = uneven_zoo(seed)
    kw = {} if n_test is None else {"weighting": "hoeffding", "n_samples": n_test}
    res = sign_error(measure, gap, hp, **kw)
    ref = dziugaite_losses(measure, gap, hp, n_test=n_test)
    everything = np.concatenate(list(ref.values()))
    assert res.n_kept * 2 == len(everything)
    for name in hp:
        ours = res.error[res.kept & (res.axis == name)]
        # Each environment once here, twice (once per order) in the reference.
        np.testing.assert_allclose(np.sort(np.repeat(ours, 2)), np.sort(ref[name]), rtol=1e-9)
        if len(ours):
            assert res.per_axis[name].mean == pytest.approx(ref[name].mean(), rel=1e-9)
            assert res.per_axis[name].max == pytest.approx(ref[name].max(), rel=1e-9)
    if len(everything):
        assert res.overall.mean == pytest.approx(everything.mean(), rel=1e-9)
        assert res.overall.max == pytest.approx(everything.max(), rel=1e-9)
