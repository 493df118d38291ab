"""The study store: round trip, no duplicates, configuration guard, durability under kill -9."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from genlab.study.config import MeasuresConfig, RankingConfig, StudyConfig
from genlab.study.store import RunRecord, Store, StoreMismatchError


def make_config(lr: tuple[float, ...] = (0.1, 0.01)) -> StudyConfig:
    return StudyConfig(
        name="toy",
        seeds=(0, 1),
        data={"name": "digits"},
        model={"family": "mlp"},
        train={"epochs": 2},
        grid={"lr": lr},
        measures=MeasuresConfig(),
        ranking=RankingConfig(),
        source="[study]\nseeds = [0, 1]\n",
    )


def record(i: int, **kw: object) -> RunRecord:
    base = dict(
        run_id=f"run{i}",
        seed=i % 2,
        hparams={"lr": 0.1 if i % 2 else 0.01},
        converged=True,
        train_loss=0.01 * i,
        test_loss=0.5 + 0.02 * i,
        train_acc=1.0,
        test_acc=0.9,
        measures={"a": float(i), "b": float("nan")},
        srr_profile={"coding_rate": [1.0, 2.0]},
        history={"train_loss": [1.0, 0.5]},
        train_seconds=1.5,
        measure_seconds=0.5,
    )
    base.update(kw)
    return RunRecord(**base)  # type: ignore[arg-type]


def test_round_trip_and_no_duplicates(tmp_path):
    store = Store(tmp_path / "study")
    store.open_for(make_config())
    assert store.add(record(1))
    assert not store.add(record(1, test_loss=9.0))  # same run id: kept as first written
    assert store.add(record(2))
    rows = store.records()
    assert [r.run_id for r in rows] == ["run1", "run2"]
    assert rows[0].test_loss == pytest.approx(0.52)
    assert rows[0].measures["a"] == 1.0
    assert rows[0].measures["b"] != rows[0].measures["b"]  # NaN survives
    assert rows[0].srr_profile == {"coding_rate": [1.0, 2.0]}
    assert rows[0].loss_gap == pytest.approx(0.51)
    assert store.finished_ids() == {"run1", "run2"}


def test_meta_records_config_and_environment(tmp_path):
    store = Store(tmp_path)
    config = make_config()
    store.open_for(config)
    meta = store.meta()
    assert meta["config_hash"] == config.content_hash()
    assert meta["config_toml"] == config.source
    assert '"genlab"' in meta["environment"]
    assert sqlite3.connect(store.path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_refuses_a_different_config(tmp_path):
    store = Store(tmp_path)
    store.open_for(make_config())
    other = make_config(lr=(0.5,))
    with pytest.raises(StoreMismatchError, match="different configuration"):
        store.open_for(other)
    store.open_for(other, allow_config_change=True)
    store.open_for(make_config(), allow_config_change=True)


def test_kill_minus_nine_loses_at_most_the_model_in_progress(tmp_path):
    # A writer adds records as fast as it can; kill -9 it mid-stream. The database must be
    # intact, each row complete, and a new writer must continue without duplicates.
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(os.path.dirname(__file__))!r})
        from test_study_store import make_config, record
        from genlab.study.store import Store
        store = Store({str(tmp_path)!r})
        store.open_for(make_config())
        print("ready", flush=True)
        i = 0
        while True:
            store.add(record(i))
            i += 1
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(1.0)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    store = Store(tmp_path)
    conn = sqlite3.connect(store.path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rows = store.records()
    n = len(rows)
    assert n > 0
    assert [r.run_id for r in rows] == [f"run{i}" for i in range(n)]
    assert all(r.measures["a"] == float(i) for i, r in enumerate(rows))
    # Resuming: the next writer skips what is stored and adds the rest exactly once.
    for i in range(n + 5):
        store.add(record(i))
    assert len(store.records()) == n + 5


def test_store_written_before_the_set_sizes_were_recorded(tmp_path):
    # A store from before the n_train / n_test columns: it reads (sizes unknown), and binding it
    # again adds the columns without touching a row.
    directory = tmp_path / "old"
    directory.mkdir()
    with sqlite3.connect(directory / Store.FILENAME) as conn:
        conn.executescript(
            """
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE runs (
                run_id TEXT PRIMARY KEY, seed INTEGER NOT NULL, hparams TEXT NOT NULL,
                converged INTEGER NOT NULL, train_loss REAL, test_loss REAL, train_acc REAL,
                test_acc REAL, measures TEXT NOT NULL, srr_profile TEXT, history TEXT,
                device TEXT, train_seconds REAL, measure_seconds REAL, finished_at REAL NOT NULL
            );
            INSERT INTO runs VALUES ('old1', 0, '{"lr": 0.1}', 1, 0.1, 0.4, 1.0, 0.9,
                '{"a": 1.0}', NULL, NULL, 'cpu', 1.0, 0.5, 1.0);
            """
        )
    store = Store(directory)
    (old,) = store.records()
    assert (old.run_id, old.n_train, old.n_test) == ("old1", None, None)
    store.open_for(make_config())
    store.add(record(1, n_train=400, n_test=360))
    rows = {r.run_id: r for r in store.records()}
    assert rows["old1"] == old
    assert (rows["run1"].n_train, rows["run1"].n_test) == (400, 360)
