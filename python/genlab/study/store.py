"""Results store: one SQLite file per study directory.

SQLite in WAL mode, one transaction per finished model. Killing the process at any moment
(``kill -9``) loses at most the model in progress: a run's row is either fully written or absent,
and its run id is the primary key, so a rerun never duplicates it. The store also records the
configuration (refusing to mix results of a different one unless told to), the versions of
genlab, PyTorch and Python, and the hardware.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import genlab
from genlab.study.config import StudyConfig

__all__ = [
    "RunRecord",
    "Store",
    "StoreDamagedError",
    "StoreError",
    "StoreMismatchError",
    "environment",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    seed INTEGER NOT NULL,
    hparams TEXT NOT NULL,
    converged INTEGER NOT NULL,
    train_loss REAL, test_loss REAL, train_acc REAL, test_acc REAL,
    measures TEXT NOT NULL,
    srr_profile TEXT,
    history TEXT,
    device TEXT,
    train_seconds REAL, measure_seconds REAL,
    finished_at REAL NOT NULL,
    n_train INTEGER, n_test INTEGER
);
"""
# Columns added after the first stores were written, with their SQL type: `open_for` adds them to
# an older store (ALTER TABLE keeps every row), and readers treat them as absent there.
_ADDED_COLUMNS = {"n_train": "INTEGER", "n_test": "INTEGER"}
_RUN_COLUMNS = (
    "run_id, seed, hparams, converged, train_loss, test_loss, train_acc, test_acc, measures, "
    "srr_profile, history, device, train_seconds, measure_seconds, finished_at, n_train, n_test"
)


class StoreError(RuntimeError):
    """A study store that cannot be used as asked; the message names the file and what to do."""


class StoreMismatchError(StoreError):
    """The store holds results of a different configuration."""


class StoreDamagedError(StoreError):
    """The file is not a readable study store (corrupted, truncated, or not one at all). It is
    never written to."""


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """Everything stored for one finished model."""

    run_id: str
    seed: int
    hparams: Mapping[str, Any]
    converged: bool
    train_loss: float
    test_loss: float
    train_acc: float
    test_acc: float
    measures: Mapping[str, float]
    srr_profile: Mapping[str, Any] | None = None
    history: Mapping[str, Any] | None = None
    device: str = "cpu"
    train_seconds: float = 0.0
    measure_seconds: float = 0.0
    n_train: int | None = None
    n_test: int | None = None

    @property
    def loss_gap(self) -> float:
        """Test minus train cross-entropy."""
        return self.test_loss - self.train_loss

    @property
    def error_gap(self) -> float:
        """Test minus train 0-1 error."""
        return self.train_acc - self.test_acc


def environment() -> dict[str, Any]:
    """Versions and hardware, for provenance."""
    env: dict[str, Any] = {
        "genlab": genlab.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    try:
        import torch

        env["torch"] = torch.__version__
        env["cuda"] = torch.cuda.is_available()
        if torch.cuda.is_available():
            env["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except ImportError:
        env["torch"] = None
    import numpy

    env["numpy"] = numpy.__version__
    return env


class Store:
    """The SQLite store of one study directory (``DIR/study.sqlite``)."""

    FILENAME = "study.sqlite"

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / self.FILENAME

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection for writing: creates the store (WAL mode, full sync) if needed."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"{self.directory}: cannot create the study directory: {exc.strerror}"
            ) from None
        with (
            self._sqlite_errors(writing=True),
            closing(sqlite3.connect(self.path, timeout=60.0)) as conn,
        ):
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.executescript(_SCHEMA)
            yield conn

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A read-only connection: reading a study (a published one too) never changes its file."""
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path}: no study store here")
        uri = f"{self.path.resolve().as_uri()}?mode=ro"
        with (
            self._sqlite_errors(writing=False),
            closing(sqlite3.connect(uri, uri=True, timeout=60.0)) as conn,
        ):
            yield conn

    @contextmanager
    def _sqlite_errors(self, *, writing: bool) -> Iterator[None]:
        """SQLite's errors as one clear line: a file SQLite cannot read is damaged (and left as it
        is); one it cannot open or write is a permission problem."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            text = str(exc)
            if "unable to open" in text or "readonly" in text:
                action = "write to" if writing else "open"
                raise StoreError(
                    f"{self.path}: cannot {action} the study store ({text}); check the "
                    "permissions of the directory and the file"
                ) from None
            raise self._damaged(text) from None
        except sqlite3.DatabaseError as exc:
            raise self._damaged(str(exc)) from None

    def _damaged(self, reason: str) -> StoreDamagedError:
        return StoreDamagedError(
            f"{self.path}: not a readable study store ({reason}); it was left untouched. Restore "
            "it from a copy, or run the study in another --out directory."
        )

    def copy_to(self, directory: str | Path) -> Store:
        """A consistent single-file copy of the store in ``directory`` (SQLite's backup, then
        rollback-journal mode and a vacuum, so that the copy is one compact file that readers
        leave untouched)."""
        target = Store(directory)
        target.directory.mkdir(parents=True, exist_ok=True)
        if target.path.resolve() == self.path.resolve():
            raise ValueError(f"{directory}: is the study directory itself")
        target.path.unlink(missing_ok=True)
        with self._read() as source, closing(sqlite3.connect(target.path)) as copy:
            source.backup(copy)
            copy.execute("PRAGMA journal_mode=DELETE")
            copy.execute("VACUUM")
        return target

    def exists(self) -> bool:
        """Whether the directory already holds a store."""
        return self.path.exists()

    def check_usable_for(self, config: StudyConfig, *, allow_config_change: bool = False) -> None:
        """Check, without writing anything, that :meth:`open_for` and :meth:`add` will work: the
        directory can be written, and a store already there is readable and holds results of
        ``config`` (or ``allow_config_change``).

        Raises
        ------
        StoreDamagedError, StoreMismatchError, StoreError
        """
        self._check_writable()
        if not self.path.exists():
            return
        with self._read() as conn:
            self._check_config(conn, config, allow_config_change)
            conn.execute("SELECT count(*) FROM runs").fetchone()

    def _check_writable(self) -> None:
        # The nearest folder that exists must take new files (the store, its WAL and lock files).
        folder = self.directory
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not folder.is_dir():
            raise StoreError(f"{self.directory}: cannot be a study directory ({folder} is a file)")
        if not os.access(folder, os.W_OK | os.X_OK) or (
            self.path.exists() and not os.access(self.path, os.R_OK | os.W_OK)
        ):
            raise StoreError(
                f"{self.directory}: not writable by this user (checked {folder} and the store "
                "in it); use another --out directory"
            )

    def _check_config(
        self, conn: sqlite3.Connection, config: StudyConfig, allow_config_change: bool
    ) -> None:
        row = conn.execute("SELECT value FROM meta WHERE key = 'config_hash'").fetchone()
        if row is not None and row[0] != config.content_hash() and not allow_config_change:
            stored = conn.execute("SELECT value FROM meta WHERE key = 'config_name'").fetchone()
            raise StoreMismatchError(
                f"{self.path} holds results of a different configuration "
                f"({stored[0] if stored else '?'}, hash {row[0]}; this one is "
                f"{config.content_hash()}). Use another --out directory, or pass "
                "--allow-config-change to add these runs to it anyway."
            )

    def open_for(self, config: StudyConfig, *, allow_config_change: bool = False) -> None:
        """Bind the store to ``config``: record it, or check it is the one already recorded.

        The study runner calls this when the first model has finished, so that a configuration
        that cannot train never binds a directory.
        """
        with self._connect() as conn, conn:
            present = {row[1] for row in conn.execute("PRAGMA table_info(runs)")}
            for column, kind in _ADDED_COLUMNS.items():
                if column not in present:
                    conn.execute(f"ALTER TABLE runs ADD COLUMN {column} {kind}")
            self._check_config(conn, config, allow_config_change)
            row = conn.execute("SELECT value FROM meta WHERE key = 'config_hash'").fetchone()
            meta = {
                "config_hash": config.content_hash(),
                "config_name": config.name,
                "config_json": config.to_json(),
                "config_toml": config.source,
                "environment": json.dumps(environment()),
            }
            if row is None:
                meta["created"] = str(time.time())
            conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", meta.items())

    def meta(self) -> dict[str, str]:
        """The recorded configuration and provenance."""
        with self._read() as conn:
            return dict(conn.execute("SELECT key, value FROM meta").fetchall())

    def finished_ids(self) -> set[str]:
        """Run ids already stored (none when there is no store yet)."""
        if not self.path.exists():
            return set()
        with self._read() as conn:
            return {r[0] for r in conn.execute("SELECT run_id FROM runs")}

    def add(self, record: RunRecord) -> bool:
        """Store one finished run in one transaction; False if it was already there."""
        with self._connect() as conn, conn:
            cur = conn.execute(
                f"INSERT OR IGNORE INTO runs ({_RUN_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.run_id,
                    record.seed,
                    json.dumps(dict(record.hparams), sort_keys=True),
                    int(record.converged),
                    record.train_loss,
                    record.test_loss,
                    record.train_acc,
                    record.test_acc,
                    json.dumps(dict(record.measures)),
                    None if record.srr_profile is None else json.dumps(dict(record.srr_profile)),
                    None if record.history is None else json.dumps(dict(record.history)),
                    record.device,
                    record.train_seconds,
                    record.measure_seconds,
                    time.time(),
                    record.n_train,
                    record.n_test,
                ),
            )
            return cur.rowcount == 1

    def records(self) -> list[RunRecord]:
        """Every stored run, in the order they finished."""
        with self._read() as conn:
            present = {row[1] for row in conn.execute("PRAGMA table_info(runs)")}
            # A store written before a column existed reads it as absent (NULL).
            columns = ", ".join(
                c if c in present else f"NULL AS {c}" for c in _RUN_COLUMNS.split(", ")
            )
            conn.row_factory = sqlite3.Row
            rows = conn.execute(
                f"SELECT {columns} FROM runs ORDER BY finished_at, run_id"
            ).fetchall()
        records = []
        for row in rows:
            try:
                records.append(_record(row))
            except (ValueError, TypeError, AttributeError) as exc:
                raise self._damaged(f"run {row['run_id']!r}: {exc}") from None
        return records


def _record(r: sqlite3.Row) -> RunRecord:
    """One stored row as a record (its JSON columns decoded)."""
    return RunRecord(
        run_id=r["run_id"],
        seed=r["seed"],
        hparams=json.loads(r["hparams"]),
        converged=bool(r["converged"]),
        train_loss=r["train_loss"],
        test_loss=r["test_loss"],
        train_acc=r["train_acc"],
        test_acc=r["test_acc"],
        measures={k: _float(v) for k, v in json.loads(r["measures"]).items()},
        srr_profile=None if r["srr_profile"] is None else json.loads(r["srr_profile"]),
        history=None if r["history"] is None else json.loads(r["history"]),
        device=r["device"],
        train_seconds=r["train_seconds"],
        measure_seconds=r["measure_seconds"],
        n_train=r["n_train"],
        n_test=r["n_test"],
    )


def _float(value: Any) -> float:
    return float("nan") if value is None else float(value)
