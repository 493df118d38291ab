"""genlab.study.rank_table on a large results table, and the conditional-MI score inside it.

Case: 10,000 rows (a 5 x 5 x 4 x 5 grid of 500 configurations, 20 seeds each), 40 measures of
decreasing quality, written as CSV; ranked with the default 1000 bootstrap draws and without
them. No peer does this ranking; the figures are the time of the whole job.

Run: ``bash scripts/bench.sh benches/bench_study_tables.py``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from genlab import rank
from genlab.study import rank_table
from genlab.study.config import RankingConfig

AXES = ["lr", "width", "depth", "batch"]


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    grid = np.array(list(itertools.product(range(5), range(5), range(4), range(5))))
    rows = np.repeat(grid, 20, axis=0)
    seeds = np.tile(np.arange(20), len(grid))
    gap = rows @ np.array([0.5, 0.3, 0.2, 0.1]) + 0.3 * rng.normal(size=len(rows))
    columns = {**{a: rows[:, k] for k, a in enumerate(AXES)}, "seed": seeds, "gap": gap}
    for j in range(40):
        columns[f"m{j}"] = gap + (j / 10) * rng.normal(size=len(rows))
    path = tmp_path_factory.mktemp("table") / "results.csv"
    header = ",".join(columns)
    body = np.column_stack(list(columns.values()))
    np.savetxt(path, body, delimiter=",", header=header, comments="", fmt="%.17g")
    return path


@pytest.mark.parametrize("bootstrap", [0, 1000])
def test_bench_rank_table(run_case: Callable[..., Any], table: Path, bootstrap: int) -> None:
    config = RankingConfig(bootstrap=bootstrap)
    result = run_case(
        f"rank_table 10,000 rows x 40 measures, bootstrap={bootstrap}",
        "genlab",
        lambda: rank_table(table, gap="gap", hparams=AXES, config=config),
        rounds=1,
        warmup=0,
    )
    assert result.rows[0].name == "m0"


def test_bench_conditional_mi(run_case: Callable[..., Any], table: Path) -> None:
    data = np.genfromtxt(table, delimiter=",", names=True)
    hparams = {a: data[a].astype(np.int64) for a in AXES}
    run_case(
        "conditional_mutual_information, 10,000 runs, 4 axes, one measure",
        "genlab",
        lambda: rank.conditional_mutual_information(data["m3"], data["gap"], hparams),
        rounds=3,
    )
