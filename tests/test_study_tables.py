"""Ranking any results table (genlab.study.tables, `genlab rank`), exporting a study as one, and
the selection metrics (regret, top-k hit rate) of every ranking."""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from genlab.cli import main
from genlab.study.config import RankingConfig
from genlab.study.ranking import RankingData, rank_data
from genlab.study.tables import TableError, export_study, rank_table

PUBLISHED = Path(__file__).resolve().parents[1] / "docs" / "results" / "digits-crate"
QUICK = RankingConfig(bootstrap=20)


def _grid_table(seed: int = 0) -> dict[str, np.ndarray]:
    """A 3 x 3 x 2 grid, 3 seeds: the gap grows with lr and width; measures of known quality."""
    rng = np.random.default_rng(seed)
    rows = np.array(list(itertools.product(range(3), range(3), range(2), range(3))))
    gap = 0.5 * rows[:, 0] + 0.3 * rows[:, 1] + 0.1 * rows[:, 2] + 0.01 * rng.normal(size=len(rows))
    return {
        "lr": np.array(["slow", "medium", "fast"])[rows[:, 0]],
        "width": rows[:, 1] * 32,
        "depth": rows[:, 2] + 1,
        "seed": rows[:, 3],
        "gap": gap,
        "perfect": gap * 10.0,  # the gap itself, rescaled: ranks every pair right
        "backwards": -gap,  # a perfect measure with the wrong orientation
        "noise": rng.normal(size=len(rows)),
    }


def _write_csv(path: Path, columns: dict[str, np.ndarray]) -> Path:
    names = list(columns)
    lines = [",".join(names)]
    for i in range(len(columns[names[0]])):
        lines.append(",".join(repr(columns[n][i].item()) for n in names).replace("'", ""))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_configuration_perfect_measure_ranks_first_with_psi_one(tmp_path: Path) -> None:
    csv = _write_csv(tmp_path / "results.csv", _grid_table())
    table = rank_table(csv, gap="gap", hparams=["lr", "width", "depth"], config=QUICK)
    first = table.rows[0]
    assert first.name == "perfect"
    assert first.psi == pytest.approx(1.0)
    assert first.tau == pytest.approx(1.0)
    assert first.regret == 0.0
    assert first.top_k_hit_rate == 1.0
    by_name = {r.name: r for r in table.rows}
    # Unknown measures are taken as +1, and the table says so.
    assert set(table.assumed_orientation) == {"perfect", "backwards", "noise"}
    assert by_name["backwards"].psi == pytest.approx(-1.0)
    assert table.stability is not None  # the seed column was found
    assert table.n_models == 54
    assert table.selection_tasks == 3


def test_orientation_flips_a_measure(tmp_path: Path) -> None:
    csv = _write_csv(tmp_path / "results.csv", _grid_table())
    table = rank_table(
        csv, gap="gap", hparams=["lr", "width", "depth"], orientation={"backwards": -1}
    )
    by_name = {r.name: r for r in table.rows}
    assert by_name["backwards"].psi == pytest.approx(1.0)
    assert "backwards" not in table.assumed_orientation


def test_a_table_ranks_without_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the PyTorch layer there is no measure registry: a genlab measure name is taken
    as +1 like any other column (and listed as assumed), and nothing fails."""
    import sys

    monkeypatch.setitem(sys.modules, "genlab.torch.measures", None)  # import raises ImportError
    columns = _grid_table()
    columns["coding_rate_mean"] = columns.pop("noise")  # a genlab measure (-1 in the registry)
    table = rank_table(columns, gap="gap", hparams=["lr", "width", "depth"], config=QUICK)
    assert "coding_rate_mean" in table.assumed_orientation
    assert {r.name: r.orientation for r in table.rows}["coding_rate_mean"] == 1


def test_csv_dataframe_mapping_and_parquet_give_the_same_ranking(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    columns = _grid_table()
    frame = pd.DataFrame(columns)
    kwargs = {"gap": "gap", "hparams": ["lr", "width", "depth"], "config": QUICK}
    tables = [rank_table(columns, **kwargs), rank_table(frame, **kwargs)]  # type: ignore[arg-type]
    tables.append(rank_table(_write_csv(tmp_path / "r.csv", columns), **kwargs))  # type: ignore[arg-type]
    pytest.importorskip("pyarrow")
    frame.to_parquet(tmp_path / "r.parquet")
    tables.append(rank_table(tmp_path / "r.parquet", **kwargs))  # type: ignore[arg-type]
    reference = tables[0]
    for other in tables[1:]:
        for a, b in zip(reference.rows, other.rows, strict=True):
            assert a.name == b.name
            np.testing.assert_allclose(
                [a.psi, a.tau, a.cmi, a.sign_error_mean, a.regret, *a.tau_ci],
                [b.psi, b.tau, b.cmi, b.sign_error_mean, b.regret, *b.tau_ci],
            )


def test_measure_selection_and_exclusion() -> None:
    columns = _grid_table()
    kwargs = {"gap": "gap", "hparams": ["lr", "width", "depth"], "config": QUICK}
    only = rank_table(columns, measures=["noise"], **kwargs)  # type: ignore[arg-type]
    assert [r.name for r in only.rows] == ["noise"]
    rest = rank_table(columns, exclude=["noise"], **kwargs)  # type: ignore[arg-type]
    assert {r.name for r in rest.rows} == {"perfect", "backwards"}
    # Without a seed column there are no replicates: no stability, one selection task.
    no_seed = rank_table(columns, seed=None, **kwargs)  # type: ignore[arg-type]
    assert no_seed.stability is None
    assert no_seed.selection_tasks == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"gap": "nope", "hparams": ["lr"]}, "no column 'nope' (the gap)"),
        ({"gap": "gap", "hparams": ["lr", "colour"]}, "no column 'colour' (a hyperparameter)"),
        ({"gap": "lr", "hparams": ["width"]}, "gap column 'lr' holds values that are not numbers"),
        ({"gap": "gap", "hparams": ["lr"], "measures": ["lr"]}, "not numbers"),
        ({"gap": "gap", "hparams": ["lr"], "exclude": ["typo"]}, "no column 'typo' (in exclude)"),
        ({"gap": "gap", "hparams": ["lr"], "seed": "depth_"}, "no column 'depth_' (the seed)"),
    ],
)
def test_bad_requests_name_the_column(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(TableError, match=re.escape(message)):
        rank_table(_grid_table(), **kwargs)  # type: ignore[arg-type]


def test_bad_files_name_the_file_and_line(tmp_path: Path) -> None:
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,gap,m\n1,0.5,2\n2,0.7\n")
    with pytest.raises(TableError, match=r"ragged.csv:3: 2 cells, the header has 3"):
        rank_table(ragged, gap="gap", hparams=["a"])
    duplicate = tmp_path / "dup.csv"
    duplicate.write_text("a,gap,a\n1,0.5,2\n")
    with pytest.raises(TableError, match=r"dup.csv:1: duplicate column name\(s\) a"):
        rank_table(duplicate, gap="gap", hparams=["a"])
    with pytest.raises(TableError, match="no such file"):
        rank_table(tmp_path / "missing.csv", gap="gap", hparams=["a"])
    nan_gap = tmp_path / "nan.csv"
    nan_gap.write_text("a,gap,m\n1,0.5,2\n2,,3\n3,0.1,1\n")
    with pytest.raises(TableError, match=r"not a finite number in data row\(s\) 2"):
        rank_table(nan_gap, gap="gap", hparams=["a"])
    with pytest.raises(TypeError, match="table: expected"):
        rank_table(42, gap="gap", hparams=["a"])


def test_rows_that_did_not_converge_are_left_out_unless_asked() -> None:
    columns = _grid_table()
    columns["converged"] = np.array(["True"] * 50 + ["False"] * 4)
    kwargs = {"gap": "gap", "hparams": ["lr", "width", "depth"]}
    table = rank_table(columns, config=QUICK, **kwargs)  # type: ignore[arg-type]
    assert (table.n_models, table.n_excluded) == (50, 4)
    assert "converged" not in {r.name for r in table.rows}
    keep = dataclasses.replace(QUICK, exclude_nonconverged=False)
    assert rank_table(columns, config=keep, **kwargs).n_models == 54  # type: ignore[arg-type]


def _naive_selection(m: np.ndarray, gap: np.ndarray, seeds: np.ndarray, top: float) -> tuple:
    """Regret and hit rate by the definition, one seed at a time, ties split by enumeration."""
    regrets, hits = [], []
    for s in sorted(set(seeds.tolist())):
        idx = [i for i in range(len(m)) if seeds[i] == s]
        defined = [i for i in idx if not math.isnan(m[i])]
        if not defined:
            continue
        low = min(m[i] for i in defined)
        chosen = [i for i in defined if m[i] == low]
        best = min(gap[i] for i in idx)
        k = max(1, math.ceil(top * len(idx)))
        top_gaps = sorted(gap[i] for i in idx)[:k]
        regrets.append(sum(gap[i] - best for i in chosen) / len(chosen))
        hits.append(sum(gap[i] <= top_gaps[-1] for i in chosen) / len(chosen))
    if not regrets:
        return math.nan, math.nan
    return sum(regrets) / len(regrets), sum(hits) / len(hits)


@pytest.mark.parametrize("trial", range(20))
def test_selection_metrics_match_the_definition(trial: int) -> None:
    rng = np.random.default_rng(trial)
    n = int(rng.integers(4, 40))
    seeds = rng.integers(0, 3, n)
    gap = rng.integers(0, 6, n).astype(float)  # ties in the gap
    m = rng.integers(0, 4, n).astype(float)  # ties in the measure
    m[rng.random(n) < 0.2] = math.nan
    top = float(rng.choice([0.05, 0.1, 0.5, 1.0]))
    data = RankingData(
        names=("m",),
        values=m[:, None],
        gap=gap,
        gap_name="gap",
        hparams={"a": np.array([str(v) for v in rng.integers(0, 3, n)])},
        seeds=seeds,
    )
    config = dataclasses.replace(QUICK, bootstrap=0, select_top=top)
    row = rank_data(data, config=config, orientation={"m": 1}).rows[0]
    expected = _naive_selection(m, gap, seeds, top)
    np.testing.assert_allclose([row.regret, row.top_k_hit_rate], expected)


def test_orientation_decides_which_model_is_chosen() -> None:
    gap = np.array([0.1, 0.5, 0.9, 0.2])
    data = RankingData(
        names=("m",),
        values=np.array([[3.0], [2.0], [1.0], [0.0]]),
        gap=gap,
        gap_name="gap",
        hparams={},
    )
    up = rank_data(data, config=QUICK, orientation={"m": 1}).rows[0]
    down = rank_data(data, config=QUICK, orientation={"m": -1}).rows[0]
    assert up.regret == pytest.approx(0.2 - 0.1)  # +1: the smallest value, model 3
    assert down.regret == pytest.approx(0.0)  # -1: the largest value, model 0
    assert (up.top_k_hit_rate, down.top_k_hit_rate) == (0.0, 1.0)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_an_exported_study_ranks_back_to_the_study_ranking(
    fmt: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("torch")
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    out = tmp_path / f"results.{fmt}"
    assert main(["study", "export", str(PUBLISHED), "--format", fmt, "--out", str(out)]) == 0
    assert "256 model(s) written" in capsys.readouterr().out
    assert main(["study", "rank", str(PUBLISHED)]) == 0
    study = capsys.readouterr().out
    command = ["rank", str(out), "--gap", "loss_gap", "--hparams", "depth,family,lr,train_size"]
    assert main(command) == 0
    ranked = capsys.readouterr().out
    # The same rows, number for number (only the summary's wording of the gap differs).
    table_of = lambda text: text[text.index("| measure") :]  # noqa: E731
    assert table_of(ranked) == table_of(study)


def test_export_reads_a_study_while_it_is_being_written(tmp_path: Path) -> None:
    """A reader holds no lock that blocks the writer: export while a write transaction waits."""
    import sqlite3

    pytest.importorskip("torch")
    shutil.copy(PUBLISHED / "study.sqlite", tmp_path / "study.sqlite")
    writer = sqlite3.connect(tmp_path / "study.sqlite", isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("BEGIN IMMEDIATE")  # the runner's transaction, open
    writer.execute("UPDATE meta SET value = value WHERE key = 'config_name'")
    assert export_study(tmp_path, tmp_path / "live.csv") == 256
    writer.execute("COMMIT")  # the writer was never blocked by the export
    writer.close()


def test_rank_command_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = _write_csv(tmp_path / "r.csv", _grid_table())
    assert main(["rank", str(csv), "--gap", "gapp", "--hparams", "lr"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("genlab rank: ")
    assert "no column 'gapp'" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["rank", str(csv), "--gap", "gap", "--hparams", "lr", "--orientation", "m=2"])
    assert exit_info.value.code == 2


def test_rank_command_writes_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    csv = _write_csv(tmp_path / "r.csv", _grid_table())
    report = tmp_path / "report"
    command = ["rank", str(csv), "--gap", "gap", "--hparams", "lr,width,depth", "--bootstrap", "0"]
    assert main([*command, "--report", str(report)]) == 0
    assert "| perfect | + | 1 |" in capsys.readouterr().out
    for name in ("report.html", "ranking.csv", "ranking.md", "psi_ranking.png", "stability.png"):
        assert (report / name).is_file(), name
    assert "genlab ranking: r.csv" in (report / "report.html").read_text()
