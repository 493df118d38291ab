"""Rank any table of results, and export a study as such a table.

A results table has one row per trained model: its hyperparameters, its generalization gap, and
one column per complexity measure (CSV, Parquet, a pandas DataFrame or a mapping of columns).
:func:`rank_table` ranks its measures with the statistics of a study
(:func:`genlab.study.ranking.rank_data`); :func:`export_study` writes a study's store as such a
table, which :func:`rank_table` reads back to the same ranking.

Which columns are measures: those named in ``measures``; otherwise every numeric column except
the gap, the hyperparameters, the seed, ``exclude``, and the bookkeeping columns an export
writes (:data:`BOOKKEEPING_COLUMNS`).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from genlab.study.config import RankingConfig
from genlab.study.ranking import RankingData, RankingTable, rank_data

__all__ = ["BOOKKEEPING_COLUMNS", "TableError", "export_study", "rank_table", "read_table"]

#: Columns of an exported study that describe a run rather than measure it: never taken as
#: measures unless named in ``measures``.
BOOKKEEPING_COLUMNS = (
    "run_id",
    "seed",
    "converged",
    "n_train",
    "n_test",
    "train_loss",
    "test_loss",
    "train_acc",
    "test_acc",
    "loss_gap",
    "error_gap",
)
_FALSE = frozenset({"0", "false", "False", "FALSE", "no"})

Columns = dict[str, NDArray[Any]]


class TableError(ValueError):
    """A results table that cannot be ranked as asked; the message names the file and column."""


def read_table(table: Any) -> tuple[Columns, str]:
    """The columns of ``table`` (a CSV or Parquet path, a pandas DataFrame, or a mapping of
    column name to sequence) and a name for it in messages.

    CSV cells stay text until a column is used: a column is numeric when every non-empty cell
    reads as a float (empty cells are NaN).
    """
    if isinstance(table, (str, Path)):
        path = Path(table)
        if not path.is_file():
            raise TableError(f"{path}: no such file")
        suffix = path.suffix.lower()
        if suffix == ".parquet":
            return _read_parquet(path), str(path)
        if suffix in (".csv", ".txt", ".tsv"):
            return _read_csv(path, delimiter="\t" if suffix == ".tsv" else ","), str(path)
        raise TableError(f"{path}: expected a .csv, .tsv or .parquet file")
    if hasattr(table, "columns") and hasattr(table, "to_numpy"):  # a pandas DataFrame
        names = [str(c) for c in table.columns]
        if len(set(names)) != len(names):
            raise TableError("the DataFrame has duplicate column names")
        return {str(c): np.asarray(table[c].to_numpy()) for c in table.columns}, "the DataFrame"
    if isinstance(table, Mapping):
        columns = {str(k): np.asarray(v) for k, v in table.items()}
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise TableError(f"the columns have different lengths: {sorted(lengths)}")
        return columns, "the table"
    raise TypeError(
        "table: expected a CSV or Parquet path, a pandas DataFrame or a mapping of columns, "
        f"got {type(table).__name__}"
    )


def _read_csv(path: Path, *, delimiter: str) -> Columns:
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f, delimiter=delimiter))
    except UnicodeDecodeError as exc:
        raise TableError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if not rows:
        raise TableError(f"{path}: empty file (expected a header line)")
    header = rows[0]
    if len(set(header)) != len(header):
        duplicates = sorted({h for h in header if header.count(h) > 1})
        raise TableError(f"{path}:1: duplicate column name(s) {', '.join(duplicates)}")
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise TableError(f"{path}:{line}: {len(row)} cells, the header has {len(header)}")
    columns = list(zip(*rows[1:], strict=True)) or [() for _ in header]  # transposed in one pass
    return {
        name: np.array(cells, dtype=object) for name, cells in zip(header, columns, strict=True)
    }


def _read_parquet(path: Path) -> Columns:
    try:
        import pyarrow.parquet as pq  # type: ignore[import-untyped, unused-ignore]
    except ImportError:
        raise TableError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow)") from None
    try:
        data = pq.read_table(path).to_pydict()
    except Exception as exc:  # pyarrow's errors have no common base worth naming
        raise TableError(f"{path}: not a readable Parquet file ({exc})") from None
    return {str(k): np.array(v, dtype=object) for k, v in data.items()}


def _numeric(values: NDArray[Any]) -> NDArray[np.float64] | None:
    """The column as floats (empty cells and None as NaN), or None when a cell is not a number."""
    if values.dtype.kind in "fiub":
        return values.astype(float)
    if len(values) and isinstance(values[0], (bool, np.bool_)):
        return None  # a flag column (Parquet booleans), not a measure
    try:  # one vectorized conversion when every cell is a number ("nan" included)
        return values.astype(float)
    except (TypeError, ValueError):
        pass  # empty cells, None, or text: decide cell by cell
    out = np.empty(len(values))
    for i, v in enumerate(values):
        if v is None or (isinstance(v, str) and not v.strip()):
            out[i] = math.nan
            continue
        if isinstance(v, (bool, np.bool_)):
            return None
        try:
            out[i] = float(v)
        except (TypeError, ValueError):
            return None
    return out


def _column(columns: Columns, name: str, what: str, source: str) -> NDArray[Any]:
    if name not in columns:
        raise TableError(
            f"{source}: no column {name!r} ({what}); the columns are {', '.join(columns)}"
        )
    return columns[name]


def _measure_names(
    columns: Columns,
    numeric: Mapping[str, NDArray[np.float64] | None],
    *,
    measures: Sequence[str] | None,
    used: set[str],
    exclude: Sequence[str],
    source: str,
) -> list[str]:
    for name in exclude:
        _column(columns, name, "in exclude", source)
    if measures is not None:
        names = list(measures)
        for name in names:
            _column(columns, name, "a measure", source)
            if numeric[name] is None:
                raise TableError(
                    f"{source}: measure column {name!r} holds values that are not numbers"
                )
        return names
    skip = used | set(exclude) | set(BOOKKEEPING_COLUMNS)
    names = [n for n in columns if n not in skip and numeric[n] is not None]
    if not names:
        raise TableError(f"{source}: no numeric column left to rank as a measure")
    return names


def _kept_rows(columns: Columns, exclude_nonconverged: bool) -> NDArray[np.bool_]:
    n = len(next(iter(columns.values()))) if columns else 0
    if not exclude_nonconverged or "converged" not in columns:
        return np.ones(n, dtype=bool)
    return np.array([str(v).strip() not in _FALSE for v in columns["converged"]], dtype=bool)


def rank_table(
    table: Any,
    *,
    gap: str,
    hparams: Sequence[str],
    seed: str | None = "seed",
    measures: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    orientation: Mapping[str, int] | None = None,
    config: RankingConfig | None = None,
    n_test: int | None = None,
    report: str | Path | None = None,
) -> RankingTable:
    """Rank the measures of a results table against its gap, as a study ranks its own.

    Parameters
    ----------
    table : path, DataFrame or mapping
        One row per model (CSV, TSV or Parquet file, pandas DataFrame, or column name ->
        sequence).
    gap : str
        The column holding each model's generalization gap (finite in every ranked row).
    hparams : sequence of str
        The hyperparameter columns (the grid's axes); equal text is an equal value.
    seed : str, optional
        The column of replicate indices (seeds), used when present: runs of one configuration
        with different seeds are replicates, the stability figure splits them, and model
        selection is scored once per seed. ``"seed"`` by default; None ignores any such column.
    measures : sequence of str, optional
        The measure columns; by default every numeric column that is not the gap, a
        hyperparameter, the seed, in ``exclude`` or bookkeeping (:data:`BOOKKEEPING_COLUMNS`).
    exclude : sequence of str
        Columns never to rank.
    orientation : mapping of str to int, optional
        +1 (larger predicts a larger gap) or -1 per measure. Measures not given take the
        orientation of genlab's registry when they are genlab measures, else +1 (the table's
        summary lists those). The registry lives in the PyTorch layer: without torch
        installed every measure not given here is taken as +1.
    config : RankingConfig, optional
        Tau variant, replicate rule, CMI convention, min_ess, bootstrap, selection top-k. With
        ``exclude_nonconverged`` (the default), rows whose ``converged`` column is false are left
        out.
    n_test : int, optional
        Test-set size behind 0-1 error gaps: sign-error environments are then weighted by
        Hoeffding's bound.
    report : path, optional
        Also write the report (HTML, plots, ranking.csv, ranking.md) to this folder.

    Returns
    -------
    RankingTable

    Raises
    ------
    ValueError
        (``genlab.study.tables.TableError``) A missing column, a gap that is not a finite
        number, fewer than two rows, an unreadable file.
    """
    config = config or RankingConfig()
    columns, source = read_table(table)
    data = _ranking_data(
        columns,
        source,
        gap=gap,
        hparams=hparams,
        seed=seed,
        measures=measures,
        exclude=exclude,
        exclude_nonconverged=config.exclude_nonconverged,
        n_test=n_test,
    )
    if len(data.gap) < 2:
        raise TableError(f"{source}: need at least 2 rows to rank, have {len(data.gap)}")
    result = rank_data(data, config=config, orientation=orientation, default_orientation=1)
    if report is not None:
        from genlab.study.report import write_table_report

        write_table_report(report, result, data, source=Path(source).name)
    return result


def _ranking_data(
    columns: Columns,
    source: str,
    *,
    gap: str,
    hparams: Sequence[str],
    seed: str | None,
    measures: Sequence[str] | None,
    exclude: Sequence[str],
    exclude_nonconverged: bool,
    n_test: int | None,
) -> RankingData:
    gap_values = _numeric(_column(columns, gap, "the gap", source))
    if gap_values is None:
        raise TableError(f"{source}: gap column {gap!r} holds values that are not numbers")
    for axis in hparams:
        _column(columns, axis, "a hyperparameter", source)
    seed_values = None
    if seed is not None and (seed in columns or seed != "seed"):
        seed_values = _numeric(_column(columns, seed, "the seed", source))
        if seed_values is None or not np.all(np.isfinite(seed_values)):
            raise TableError(f"{source}: seed column {seed!r} must hold numbers in every row")
    numeric = {name: _numeric(values) for name, values in columns.items()}
    used = {gap, *hparams, *([seed] if seed_values is not None and seed else [])}
    names = _measure_names(
        columns, numeric, measures=measures, used=used, exclude=exclude, source=source
    )
    keep = _kept_rows(columns, exclude_nonconverged)
    bad = np.flatnonzero(keep & ~np.isfinite(gap_values))
    if len(bad):
        rows = ", ".join(str(i + 1) for i in bad[:5]) + (", ..." if len(bad) > 5 else "")
        raise TableError(
            f"{source}: gap column {gap!r} is not a finite number in data row(s) {rows}"
        )
    # Every name in `names` is numeric (checked by _measure_names).
    measured = [np.asarray(numeric[n], dtype=float) for n in names]
    values = np.column_stack(measured) if measured else np.empty((len(keep), 0))
    return RankingData(
        names=tuple(names),
        values=np.asarray(values[keep], dtype=float),
        gap=gap_values[keep],
        gap_name=gap,
        hparams={a: np.array([str(v) for v in columns[a][keep]]) for a in hparams},
        seeds=None if seed_values is None else seed_values[keep].astype(np.int64),
        n_test=n_test,
        n_excluded=int((~keep).sum()),
        excluded_reason="converged is false",
    )


def export_study(directory: str | Path, path: str | Path, *, format: str | None = None) -> int:
    """Write a study's finished runs as a results table, one row per model, and return the
    number of rows.

    Columns: :data:`BOOKKEEPING_COLUMNS` (``loss_gap`` = test minus train cross-entropy,
    ``error_gap`` = test minus train 0-1 error), then the hyperparameter axes, then every measure
    (sorted). ``format`` is "csv" or "parquet" (default: from the file name). The store is read
    through a read-only connection: a study can be exported while it runs, without blocking it.
    """
    from genlab.study.store import Store, StoreError

    fmt = format or Path(path).suffix.lower().lstrip(".")
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"format: expected 'csv' or 'parquet', got {fmt!r}")
    store = Store(directory)
    if not store.exists():
        raise StoreError(f"{directory} holds no study (no {Store.FILENAME})")
    records = sorted(store.records(), key=lambda r: r.run_id)
    axes = sorted({a for r in records for a in r.hparams})
    names = sorted({m for r in records for m in r.measures})
    clash = sorted(set(axes) & (set(BOOKKEEPING_COLUMNS) | set(names)))
    if clash:
        raise ValueError(f"{directory}: hyperparameter axis names clash with columns: {clash}")
    header = [*BOOKKEEPING_COLUMNS, *axes, *names]
    rows = [
        [
            r.run_id,
            r.seed,
            r.converged,
            r.n_train,
            r.n_test,
            r.train_loss,
            r.test_loss,
            r.train_acc,
            r.test_acc,
            r.loss_gap,
            r.error_gap,
            *(r.hparams.get(a) for a in axes),
            *(r.measures.get(m, math.nan) for m in names),
        ]
        for r in records
    ]
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        with out.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            writer.writerows(rows)
    else:
        try:
            import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
            import pyarrow.parquet as pq  # type: ignore[import-untyped, unused-ignore]
        except ImportError:
            raise ValueError("format 'parquet' needs pyarrow (pip install pyarrow)") from None
        text_axes = {a for a in axes if len({type(r.hparams.get(a)) for r in records}) > 1}
        table = {
            name: [str(row[i]) if name in text_axes else row[i] for row in rows]
            for i, name in enumerate(header)
        }
        pq.write_table(pa.table(table), out)
    return len(rows)
