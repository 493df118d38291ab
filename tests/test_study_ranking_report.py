"""Ranking of stored runs (against direct genlab.rank calls) and the report files."""

from __future__ import annotations

import dataclasses
import itertools
import math
import warnings

import numpy as np
import pytest

from genlab import DegenerateDataWarning, rank
from genlab.study.config import RankingConfig
from genlab.study.ranking import rank_measures
from genlab.study.report import write_report
from genlab.study.store import RunRecord


def synthetic_records(seed: int = 0, seeds: int = 2) -> list[RunRecord]:
    rng = np.random.default_rng(seed)
    out = []
    for k, (family, lr, s) in enumerate(
        itertools.product(["crate", "crate-n"], [0.01, 0.001, 0.0001], range(seeds))
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
                n_train=800,
                n_test=360,
            )
        )
    return out


ORIENT = {"good": 1, "inverse": -1, "noise": 1}


@pytest.mark.parametrize("replicates", ["pairs", "average"])
@pytest.mark.parametrize("gap_kind", ["loss", "error"])
def test_ranking_matches_direct_calls(replicates, gap_kind):
    records = synthetic_records()
    config = RankingConfig(bootstrap=200, seed=1, replicates=replicates, gap=gap_kind, min_ess=1)
    table = rank_measures(records, config=config, orientation=ORIENT)
    used = sorted((r for r in records if r.converged), key=lambda r: r.run_id)
    assert table.n_models == len(used) == 11
    assert table.n_excluded == 1
    assert table.n_configurations == 6
    assert (table.tau_variant, table.replicates) == ("a", replicates)
    gap = np.array([r.loss_gap if gap_kind == "loss" else r.error_gap for r in used])
    hp = {
        "family": [str(r.hparams["family"]) for r in used],
        "lr": [str(r.hparams["lr"]) for r in used],
    }
    hoeffding = {"weighting": "hoeffding", "n_samples": 360} if gap_kind == "error" else {}
    assert table.sign_error_weighting == ("hoeffding (n_test = 360)" if hoeffding else "none")
    rows = {r.name: r for r in table.rows}
    for name, sign in ORIENT.items():
        m = sign * np.array([r.measures[name] for r in used])
        g = rank.granulated_kendall(m, gap, hp, replicates=replicates)
        assert rows[name].tau == g.tau
        assert rows[name].psi == pytest.approx(g.psi, rel=1e-12)
        assert rows[name].axis_psi == pytest.approx(g.axis_psi, rel=1e-12)
        assert rows[name].cmi == pytest.approx(
            rank.conditional_mutual_information(m, gap, hp, replicates=replicates).score,
            rel=1e-12,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DegenerateDataWarning)
            s = rank.sign_error(m, gap, hp, min_ess=1, **hoeffding)
        assert rows[name].sign_error_max == pytest.approx(s.overall.max, nan_ok=True)
        assert rows[name].sign_error_environments == s.n_kept
        lo, hi = rows[name].tau_ci
        assert lo <= rows[name].tau <= hi
    # Orientation makes "inverse" as good as the gap itself; ranked by Psi, best first.
    assert rows["inverse"].orientation == -1
    assert table.rows[-1].name == "noise"
    psis = [r.psi for r in table.rows]
    assert psis == sorted(psis, reverse=True)


def test_orientation_comes_from_the_registry():
    # coding_rate_last is registered with orientation -1 (a lower coding rate predicts a larger
    # gap): rank_measures applies it without being told.
    records = [
        dataclasses.replace(
            r, measures={"coding_rate_last": -r.measures["good"], "params": r.measures["noise"]}
        )
        for r in synthetic_records()
    ]
    table = rank_measures(records, config=RankingConfig(bootstrap=0))
    rows = {r.name: r for r in table.rows}
    assert rows["coding_rate_last"].orientation == -1
    assert rows["coding_rate_last"].psi > 0.5
    assert rows["params"].orientation == 1
    overridden = rank_measures(
        records, config=RankingConfig(bootstrap=0), orientation={"coding_rate_last": 1}
    )
    assert overridden.rows[-1].name == "coding_rate_last"


def test_unknown_measure_needs_an_orientation():
    records = synthetic_records()
    with pytest.raises(ValueError, match=r"orientation: no orientation for measure.*'good'"):
        rank_measures(records, config=RankingConfig(bootstrap=0))
    with pytest.raises(ValueError, match=r"orientation: expected \+1 or -1"):
        rank_measures(records, config=RankingConfig(bootstrap=0), orientation={**ORIENT, "good": 2})


def test_ranking_stability_splits_the_seeds():
    records = synthetic_records(seeds=4)
    table = rank_measures(records, config=RankingConfig(bootstrap=0), orientation=ORIENT)
    s = table.stability
    assert s is not None
    assert s.seeds == ((0, 1), (2, 3))
    for name, sign in ORIENT.items():
        for half, part in zip(s.psi[name], s.seeds, strict=True):
            used = [r for r in records if r.converged and r.seed in part]
            m = sign * np.array([r.measures[name] for r in used])
            hp = {a: [str(r.hparams[a]) for r in used] for a in ("family", "lr")}
            assert half == rank.granulated_kendall(m, [r.loss_gap for r in used], hp).psi
    a = [s.psi[n][0] for n in ORIENT]
    b = [s.psi[n][1] for n in ORIENT]
    assert s.tau == rank.kendalltau(a, b).statistic
    assert s.n_measures == 3
    one_seed = [r for r in records if r.seed == 0]
    assert (
        rank_measures(one_seed, config=RankingConfig(bootstrap=0), orientation=ORIENT).stability
        is None
    )


def test_ranking_does_not_depend_on_record_order():
    records = synthetic_records()
    config = RankingConfig(bootstrap=100, seed=3, min_ess=1)  # no NaN: NaN != NaN
    a = rank_measures(records, config=config, orientation=ORIENT)
    b = rank_measures(records[::-1], config=config, orientation=ORIENT)
    assert a == b


def test_ranking_options():
    records = synthetic_records()
    all_models = rank_measures(
        records, config=RankingConfig(bootstrap=0), orientation=ORIENT, exclude_nonconverged=False
    )
    assert all_models.n_models == 12
    assert all(math.isnan(r.tau_ci[0]) for r in all_models.rows)
    error = rank_measures(
        records, config=RankingConfig(bootstrap=0, gap="error"), orientation=ORIENT
    )
    assert error.gap == "error"
    tau_b = rank_measures(records, config=RankingConfig(bootstrap=0, tau="b"), orientation=ORIENT)
    assert tau_b.tau_variant == "b"
    with pytest.raises(ValueError, match="at least 2 finished models"):
        rank_measures(records[:1], config=RankingConfig(), orientation=ORIENT)


def test_report_plots_the_stored_layer_spectra(tmp_path):
    """Runs that carry per-layer spectra get the two spectrum figures; runs without get none."""
    from genlab.spectrum import power_law_fit

    rng = np.random.default_rng(3)
    records = synthetic_records()
    with_spectra = []
    for r in records:
        eigenvalues = [np.sort(rng.pareto(2.5, size=40) + 1.0)[::-1] for _ in range(3)]
        fits = [power_law_fit(e) for e in eigenvalues]
        spectra = {
            "layers": ["a.weight", "b.weight", "c.weight"],
            "alpha": [f.alpha for f in fits],
            "xmin": [f.xmin for f in fits],
            "n_tail": [f.n_tail for f in fits],
            "alpha_weighted": [
                f.alpha * np.log10(e[0]) for f, e in zip(fits, eigenvalues, strict=True)
            ],
            "log_spectral_norm": [float(np.log10(e[0])) for e in eigenvalues],
            "stable_rank": [float(e.sum() / e[0]) for e in eigenvalues],
            "eigenvalues": [e.tolist() for e in eigenvalues],
        }
        spectra["alpha"][1] = None  # a layer without a fit
        spectra["xmin"][1] = None
        with_spectra.append(dataclasses.replace(r, history={"layer_spectra": spectra}))
    table = rank_measures(with_spectra, config=RankingConfig(bootstrap=0), orientation=ORIENT)
    meta = {"config_name": "toy", "config_toml": "", "environment": "{}"}
    grid = {"family": ["crate", "crate-n"], "lr": [0.01, 0.001, 0.0001]}
    path = write_report(tmp_path / "with", with_spectra, table, meta=meta, grid=grid)
    assert "Weight spectra by layer" in path.read_text()
    for name in ("spectrum_by_layer.png", "spectrum_esd.png"):
        assert (tmp_path / "with" / name).stat().st_size > 0
    write_report(tmp_path / "without", records, table, meta=meta, grid=grid)
    assert not (tmp_path / "without" / "spectrum_by_layer.png").exists()
    assert not (tmp_path / "without" / "spectrum_esd.png").exists()


def test_report_files(tmp_path):
    records = synthetic_records()
    table = rank_measures(records, config=RankingConfig(bootstrap=50), orientation=ORIENT)
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
        "stability.png",
        "coverage.png",
        "srr_through_depth.png",
        "ranking.csv",
        "ranking.md",
    ):
        assert (tmp_path / "report" / name).stat().st_size > 0
    assert any(p.name.startswith("scatter_") for p in (tmp_path / "report").iterdir())
    md = (tmp_path / "report" / "ranking.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("|"))
    assert header.startswith("| measure | orientation | psi | tau_a | tau_a_ci_low")
    assert "cmi_orientation_free" in header
    assert "Ranking stability: Kendall tau-b" in md
    csv_lines = (tmp_path / "report" / "ranking.csv").read_text().splitlines()
    assert len(csv_lines) == 1 + len(table.rows)


def test_a_grid_of_depths_gets_one_series_per_family_and_depth(tmp_path):
    """Per-layer curves of models of different depths do not pair layer by layer: the SRR and
    spectrum figures draw one series per (family, depth), labelled with the depth."""
    from genlab.study import report

    records = []
    for r in synthetic_records():
        layers = 2 if r.seed == 0 else 3
        curves = {
            key: list(values)[:layers] for key, values in r.srr_profile.items() if key != "family"
        }
        spectra = {
            "layers": [f"w{i}" for i in range(layers)],
            **{key: [1.5] * layers for key, _ in report._SPECTRUM_PANELS},
        }
        records.append(
            dataclasses.replace(
                r,
                hparams={**r.hparams, "depth": layers},
                srr_profile={"family": r.hparams["family"], "curves": {"crate": curves}},
                history={"layer_spectra": spectra},
            )
        )
    keys = {(str(r.hparams["family"]), int(r.hparams["depth"])) for r in records}
    assert report._series_labels(keys)[("crate", 2)] == "crate, 2 layers"
    assert report._series_labels({("crate", 3), ("crate-n", 2)}) == {
        ("crate", 3): "crate",
        ("crate-n", 2): "crate-n",
    }
    for draw, name in ((report._srr_curves, "srr.png"), (report._spectrum_by_layer, "s.png")):
        assert draw(records, tmp_path / name) is not None
        assert (tmp_path / name).stat().st_size > 0


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('tau = "c"', r'cfg.toml:4: \[ranking\] tau: expected "a" or "b", got \'c\''),
        ('replicates = "mean"', r"\[ranking\] replicates: expected \"pairs\" or \"average\""),
        ('cmi = "jiang"', r"\[ranking\] cmi: expected \"genlab\" or \"pgdl\""),
        ("min_ess = -1", r"cfg.toml:4: \[ranking\] min_ess: expected a finite number >= 0"),
        ('gap = "accuracy"', r"\[ranking\] gap: expected \"loss\" or \"error\""),
    ],
)
def test_ranking_config_values_are_checked(line, expected):
    from genlab.study.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match=expected):
        parse_config(f"[study]\nseeds = [0]\n[ranking]\n{line}\n", path="cfg.toml")
    good = parse_config(
        '[study]\nseeds = [0]\n[ranking]\ntau = "b"\nreplicates = "average"\ncmi = "pgdl"\n'
        "min_ess = 4\n"
    )
    assert good.ranking == RankingConfig(tau="b", replicates="average", cmi="pgdl", min_ess=4.0)
