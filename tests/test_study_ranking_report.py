"""Ranking of stored runs (against direct genlab.rank calls) and the report files."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from genlab import rank
from genlab.study.config import RankingConfig
from genlab.study.ranking import rank_measures
from genlab.study.report import write_report
from genlab.study.store import RunRecord


def synthetic_records(seed: int = 0) -> list[RunRecord]:
    rng = np.random.default_rng(seed)
    out = []
    for k, (family, lr, s) in enumerate(
        itertools.product(["crate", "crate-n"], [0.01, 0.001, 0.0001], [0, 1])
    ):
        gap = 0.3 * (family == "crate") + 10 * lr + 0.05 * rng.normal()
        train_loss = 0.01 + 0.001 * k
        out.append(
            RunRecord(
                run_id=f"r{k}",
                seed=s,
                hparams={"family": family, "lr": lr},
                converged=k != 5,
                train_loss=train_loss,
                test_loss=train_loss + gap,
                train_acc=1.0,
                test_acc=1.0 - gap / 3,
                measures={
                    "good": gap + 0.01 * rng.normal(),
                    "inverse": -gap,
                    "noise": float(rng.normal()),
                },
                srr_profile={
                    "family": family,
                    "coding_rate": [1.0, 1.5, 2.0],
                    "compressed_coding_rate": [3.0, 3.5 + (family == "crate"), 4.0],
                    "sparsity": [0.5, 0.4, 0.3],
                    "srr_measure": [2.5, 2.4, 2.3],
                },
                train_seconds=1.0,
                measure_seconds=0.5,
            )
        )
    return out


def test_ranking_matches_direct_calls():
    records = synthetic_records()
    config = RankingConfig(bootstrap=200, seed=1)
    table = rank_measures(records, config=config, orientation={"inverse": -1})
    used = [r for r in records if r.converged]
    assert table.n_models == len(used) == 11
    assert table.n_excluded == 1
    gap = np.array([r.loss_gap for r in used])
    hp = {
        "family": [str(r.hparams["family"]) for r in used],
        "lr": [str(r.hparams["lr"]) for r in used],
    }
    rows = {r.name: r for r in table.rows}
    for name, sign in (("good", 1), ("inverse", -1), ("noise", 1)):
        m = sign * np.array([r.measures[name] for r in used])
        ref_tau = rank.kendalltau(m, gap)
        assert rows[name].tau == pytest.approx(ref_tau.statistic, rel=1e-12)
        assert rows[name].pvalue == pytest.approx(ref_tau.pvalue, rel=1e-12)
        g = rank.granulated_kendall(m, gap, hp)
        assert rows[name].psi == pytest.approx(g.psi, rel=1e-12)
        assert rows[name].axis_psi == pytest.approx(g.axis_psi, rel=1e-12)
        assert rows[name].cmi == pytest.approx(
            rank.conditional_mutual_information(m, gap, hp).score, rel=1e-12
        )
        assert rows[name].sign_error_max == rank.sign_error(m, gap, hp).overall.max
        lo, hi = rows[name].tau_ci
        assert lo <= rows[name].tau <= hi
    # Orientation makes "inverse" as good as the gap itself; ranked by Psi, best first.
    assert rows["inverse"].orientation == -1
    assert table.rows[-1].name == "noise"
    psis = [r.psi for r in table.rows]
    assert psis == sorted(psis, reverse=True)


def test_ranking_does_not_depend_on_record_order():
    records = synthetic_records()
    config = RankingConfig(bootstrap=100, seed=3)
    a = rank_measures(records, config=config)
    b = rank_measures(records[::-1], config=config)
    assert a == b


def test_ranking_options():
    records = synthetic_records()
    all_models = rank_measures(
        records, config=RankingConfig(bootstrap=0), exclude_nonconverged=False
    )
    assert all_models.n_models == 12
    assert all(math.isnan(r.tau_ci[0]) for r in all_models.rows)
    error = rank_measures(records, config=RankingConfig(bootstrap=0, gap="error"))
    assert error.gap == "error"
    with pytest.raises(ValueError, match="at least 2 finished models"):
        rank_measures(records[:1], config=RankingConfig())


def test_report_files(tmp_path):
    records = synthetic_records()
    table = rank_measures(records, config=RankingConfig(bootstrap=50))
    meta = {
        "config_name": "toy",
        "config_toml": "[study]\nseeds = [0, 1]\n",
        "environment": '{"genlab": "x"}',
    }
    path = write_report(
        tmp_path / "report",
        records,
        table,
        meta=meta,
        grid={"family": ["crate", "crate-n"], "lr": [0.01, 0.001, 0.0001]},
        orientation_notes={"good": "a good measure"},
    )
    html = path.read_text()
    assert '<table id="ranking">' in html
    assert html.count("data:image/png;base64,") >= 4
    assert "srr_through_depth" not in html  # embedded, not linked
    for name in (
        "psi_ranking.png",
        "coverage.png",
        "srr_through_depth.png",
        "ranking.csv",
        "ranking.md",
    ):
        assert (tmp_path / "report" / name).stat().st_size > 0
    assert any(p.name.startswith("scatter_") for p in (tmp_path / "report").iterdir())
    md = (tmp_path / "report" / "ranking.md").read_text()
    assert md.splitlines()[0].startswith("| measure | orientation | psi | tau")
    csv_lines = (tmp_path / "report" / "ranking.csv").read_text().splitlines()
    assert len(csv_lines) == 1 + len(table.rows)
