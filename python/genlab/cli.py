"""The ``genlab`` command.

Subcommands
-----------
demo
    Exercise the kernels on generated data and print the results.
study run CONFIG --out DIR / study rank DIR / study report DIR [--out OUT] / study publish DIR OUT
    The study harness (see :mod:`genlab.study`). ``publish`` copies the store as one file into
    OUT and writes the report beside it: ``genlab study report OUT --out OUT`` then regenerates
    the same table, byte for byte.
study export DIR [--format csv|parquet] [--out FILE]
    One row per model (hyperparameters, gaps, every measure), readable by ``genlab rank``.
rank TABLE --gap COLUMN --hparams a,b,c [--measures m1,m2 | --exclude ...] [--orientation m=-1]
    Rank the measures of any results table (CSV, TSV, Parquet) as a study ranks its own
    (:func:`genlab.study.tables.rank_table`); ``--report DIR`` writes the report too.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import genlab
from genlab import rank


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _demo_rank(rng: np.random.Generator, n: int) -> None:
    print(f"\n# Ranking: Kendall tau on n = {n:,} generated pairs (y = x + noise)")
    x = rng.normal(size=n)
    y = x + rng.normal(size=n)
    res, seconds = _timed(lambda: rank.kendalltau(x, y))
    print(
        f"genlab.rank.kendalltau: tau-b = {res.statistic:.6f}, p = {res.pvalue:.3g} ({seconds * 1e3:.1f} ms)"
    )
    try:
        from scipy import stats  # type: ignore[import-untyped, unused-ignore]
    except ImportError:
        print("(install scipy to compare with scipy.stats.kendalltau)")
    else:
        ref, ref_seconds = _timed(lambda: stats.kendalltau(x, y))
        print(
            f"scipy.stats.kendalltau: tau-b = {ref.statistic:.6f}, p = {ref.pvalue:.3g} "
            f"({ref_seconds * 1e3:.1f} ms, {ref_seconds / seconds:.1f}x genlab's time)"
        )

    print("\n# A synthetic 'zoo': 3 x 3 x 3 grid, 4 seeds; measures of varying quality vs the gap")
    grid = np.array(
        [(a, b, c) for a in range(3) for b in range(3) for c in range(3) for _ in range(4)]
    )
    hparams = {"lr": grid[:, 0], "width": grid[:, 1], "depth": grid[:, 2]}
    gap = 0.5 * grid[:, 0] + 0.3 * grid[:, 1] + 0.2 * grid[:, 2] + 0.1 * rng.normal(size=len(grid))
    measures = {
        "oracle (the gap itself)": gap,
        "noisy predictor": gap + 0.3 * rng.normal(size=len(grid)),
        "width only": grid[:, 1].astype(float),
        "random": rng.normal(size=len(grid)),
    }
    print(f"{'measure':<26}{'tau':>8}{'Psi':>8}{'CMI':>8}{'sign-err max':>14}")
    for name, m in measures.items():
        g = rank.granulated_kendall(m, gap, hparams)
        c = rank.conditional_mutual_information(m, gap, hparams)
        s = rank.sign_error(m, gap, hparams)
        print(f"{name:<26}{g.tau:>8.3f}{g.psi:>8.3f}{c.score:>8.3f}{s.overall.max:>14.3f}")
    X = np.column_stack(list(measures.values()))
    print("\nPairwise Kendall tau between the measures (kendalltau_matrix):")
    print(np.array2string(rank.kendalltau_matrix(X), precision=3, suppress_small=True))


def _demo(args: argparse.Namespace) -> int:
    rng = np.random.default_rng(args.seed)
    print(f"genlab {genlab.__version__}: demo on generated data (seed {args.seed})")
    _demo_rank(rng, args.n)
    return 0


# --- genlab study ------------------------------------------------------------------------------


def _measure_notes() -> dict[str, str]:
    from genlab.torch.measures import MEASURES

    return {name: m.description for name, m in MEASURES.items()}


def _study_table(directory: str, *, include_nonconverged: bool, gap: str | None) -> Any:
    import dataclasses

    from genlab.study.config import ConfigError, RankingConfig, parse_config
    from genlab.study.ranking import rank_measures
    from genlab.study.store import Store

    store = Store(directory)
    if not store.exists():
        raise StudyCommandError(f"{directory} holds no study (no {Store.FILENAME})")
    meta = store.meta()
    if "config_toml" not in meta:
        raise StudyCommandError(f"{store.path}: records no configuration; it is not a study store")
    try:
        config = parse_config(
            meta["config_toml"], path=f"{directory}/{Store.FILENAME}", check_runs=False
        )
    except ConfigError as exc:  # its measure plugins cannot be imported here
        raise StudyCommandError(str(exc)) from None
    ranking: RankingConfig = config.ranking
    if gap is not None:
        ranking = dataclasses.replace(ranking, gap=gap)
    records = store.records()
    try:
        table = rank_measures(
            records,
            config=ranking,
            exclude_nonconverged=False if include_nonconverged else None,
        )
    except ValueError as exc:  # too few models, or too few configurations, to rank
        raise StudyCommandError(f"{directory}: {exc}") from None
    return store, meta, config, records, table, _measure_notes()


class StudyCommandError(Exception):
    """A study command cannot do what was asked; ``main`` prints the message as one line."""


def _study_run(args: argparse.Namespace) -> int:
    from genlab.study.config import ConfigError, load_config
    from genlab.study.runner import run_study
    from genlab.study.store import Store, StoreMismatchError
    from genlab.study.worker import RunFailedError

    try:
        config = load_config(args.config)
        ran, skipped = run_study(
            config,
            args.out,
            executor=args.executor,
            jobs=args.jobs,
            device=args.device,
            address=args.address,
            allow_config_change=args.allow_config_change,
            progress=not args.quiet,
        )
    except (ConfigError, StoreMismatchError) as exc:
        # The configuration is at fault (also when it is not the one the directory holds).
        print(f"genlab study run: {exc}", file=sys.stderr)
        return 2
    except RunFailedError as exc:
        if args.traceback:
            raise
        stored = len(Store(args.out).finished_ids()) if Store(args.out).exists() else 0
        raise StudyCommandError(
            f"{exc}\n{stored} model(s) stored in {args.out} are kept; fix the cause and run the "
            "same command again to continue (--traceback shows where it failed)"
        ) from None
    print(f"{ran} model(s) trained and measured, {skipped} already stored, in {args.out}")
    if args.no_report:
        return 0
    return _study_report(args, directory=args.out)


def _study_rank(args: argparse.Namespace) -> int:
    from genlab.study.report import ranking_markdown

    _, _, _, _, table, _ = _study_table(
        args.dir, include_nonconverged=args.include_nonconverged, gap=args.gap
    )
    print(ranking_markdown(table))
    return 0


def _study_report(
    args: argparse.Namespace, directory: str | None = None, out: str | None = None
) -> int:
    from genlab.study.report import ranking_markdown, write_report

    directory = directory or args.dir
    out = out or getattr(args, "out_dir", None) or str(Path(directory) / "report")
    include = getattr(args, "include_nonconverged", False)
    _store, meta, config, records, table, notes = _study_table(
        directory, include_nonconverged=include, gap=getattr(args, "gap", None)
    )
    path = write_report(
        out,
        records,
        table,
        meta=meta,
        grid=config.grid,
        orientation_notes=notes,
    )
    print(ranking_markdown(table))
    print(f"Report: {path.resolve()}")
    return 0


def _study_publish(args: argparse.Namespace) -> int:
    from genlab.study.store import Store

    source = Store(args.dir)
    if not source.exists():
        raise StudyCommandError(f"{args.dir} holds no study (no {Store.FILENAME})")
    target = source.copy_to(args.target)
    print(f"Store copied to {target.path} (one file, {target.path.stat().st_size:,} bytes)")
    return _study_report(args, directory=args.target, out=args.target)


def _study_export(args: argparse.Namespace) -> int:
    from genlab.study.tables import export_study

    out = args.out_file or str(Path(args.dir) / f"results.{args.format}")
    try:
        n = export_study(args.dir, out, format=args.format)
    except ValueError as exc:
        raise StudyCommandError(str(exc)) from None
    print(f"{n} model(s) written to {out}")
    return 0


def _names(text: str | None) -> list[str] | None:
    return None if text is None else [n.strip() for n in text.split(",") if n.strip()]


def _orientation_arg(text: str) -> dict[str, int]:
    """``m1=-1,m2=+1`` as a mapping (argparse type: a bad entry is a usage error)."""
    out: dict[str, int] = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        name, sep, sign = item.rpartition("=")
        if not sep or not name or sign.strip() not in ("1", "+1", "-1"):
            raise argparse.ArgumentTypeError(f"expected NAME=+1 or NAME=-1, got {item!r}")
        out[name.strip()] = int(sign)
    return out


def _rank(args: argparse.Namespace) -> int:
    import dataclasses

    from genlab.study.config import RankingConfig
    from genlab.study.report import ranking_markdown
    from genlab.study.tables import rank_table

    config = dataclasses.replace(
        RankingConfig(),
        exclude_nonconverged=not args.include_nonconverged,
        tau=args.tau,
        replicates=args.replicates,
        bootstrap=args.bootstrap,
    )
    orientation: dict[str, int] = {}
    for mapping in args.orientation or []:
        orientation.update(mapping)
    try:
        table = rank_table(
            args.table,
            gap=args.gap,
            hparams=_names(args.hparams) or [],
            seed=None if args.seed == "" else args.seed,
            measures=_names(args.measures),
            exclude=_names(args.exclude) or [],
            orientation=orientation,
            config=config,
            n_test=args.n_test,
            report=args.report,
        )
    except ValueError as exc:
        raise StudyCommandError(str(exc)) from None
    print(ranking_markdown(table))
    if args.report:
        print(f"Report: {(Path(args.report) / 'report.html').resolve()}")
    return 0


def _add_rank_parser(sub: Any) -> None:
    rank_ = sub.add_parser(
        "rank", help="rank the measures of any results table (CSV, TSV, Parquet) against a gap"
    )
    rank_.add_argument("table", help="results table: one row per model")
    rank_.add_argument("--gap", required=True, help="the column holding the generalization gap")
    rank_.add_argument(
        "--hparams", required=True, help="the hyperparameter columns, comma-separated"
    )
    rank_.add_argument(
        "--seed", default="seed", help="the seed column, used when present ('' for none)"
    )
    which = rank_.add_mutually_exclusive_group()
    which.add_argument("--measures", help="the measure columns (default: every numeric column)")
    which.add_argument("--exclude", help="columns not to rank, comma-separated")
    rank_.add_argument(
        "--orientation",
        type=_orientation_arg,
        action="append",
        help="NAME=-1 for a measure whose smaller values predict a larger gap (repeatable; "
        "default +1, or genlab's own for its measures)",
    )
    rank_.add_argument("--tau", choices=["a", "b"], default="a")
    rank_.add_argument("--replicates", choices=["pairs", "average"], default="pairs")
    rank_.add_argument(
        "--bootstrap", type=_count, default=1000, help="resamples for tau's interval (0: none)"
    )
    rank_.add_argument(
        "--n-test", type=_positive_int, help="test-set size behind 0-1 error gaps (Hoeffding)"
    )
    rank_.add_argument(
        "--include-nonconverged",
        action="store_true",
        help="keep rows whose 'converged' column is false",
    )
    rank_.add_argument("--report", help="also write the report (HTML, plots, CSV) to this folder")
    rank_.set_defaults(func=_rank)


def _add_study_parser(sub: Any) -> None:
    study = sub.add_parser("study", help="train a zoo, rank complexity measures, write a report")
    verbs = study.add_subparsers(dest="verb", required=True)

    run = verbs.add_parser("run", help="train and measure every model of a grid (resumable)")
    run.add_argument("config", help="study configuration (TOML), e.g. examples/digits-crate.toml")
    run.add_argument("--out", required=True, help="study directory (created; reused to resume)")
    run.add_argument("--executor", choices=["local", "ray"], help="overrides [study] executor")
    run.add_argument("--jobs", type=_positive_int, help="parallel models (overrides [study] jobs)")
    run.add_argument("--device", choices=["cpu", "cuda", "auto"], help="overrides [study] device")
    run.add_argument("--address", help="Ray cluster address (default: a local Ray instance)")
    run.add_argument(
        "--allow-config-change",
        action="store_true",
        help="add runs to a directory made with a different configuration",
    )
    run.add_argument("--no-report", action="store_true", help="do not write the report at the end")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument(
        "--traceback", action="store_true", help="show the full traceback when a model fails"
    )
    run.set_defaults(func=_study_run, include_nonconverged=False, gap=None)

    rank_ = verbs.add_parser("rank", help="print the measures ranked against the gap")
    rank_.add_argument("dir", help="study directory")
    rank_.add_argument("--include-nonconverged", action="store_true")
    rank_.add_argument("--gap", choices=["loss", "error"], help="overrides [ranking] gap")
    rank_.set_defaults(func=_study_rank)

    report = verbs.add_parser("report", help="write report.html, PNG plots, CSV and markdown")
    report.add_argument("dir", help="study directory")
    report.add_argument("--include-nonconverged", action="store_true")
    report.add_argument("--gap", choices=["loss", "error"], help="overrides [ranking] gap")
    report.add_argument(
        "--out", dest="out_dir", help="where to write the report (default: DIR/report)"
    )
    report.set_defaults(func=_study_report)

    publish = verbs.add_parser(
        "publish",
        help="copy the store (one file) and write its report side by side, for a results folder",
    )
    publish.add_argument("dir", help="study directory")
    publish.add_argument("target", help="folder for the copy and the report (e.g. docs/results/X)")
    publish.add_argument("--include-nonconverged", action="store_true")
    publish.add_argument("--gap", choices=["loss", "error"], help="overrides [ranking] gap")
    publish.set_defaults(func=_study_publish)

    export = verbs.add_parser(
        "export", help="write one row per model (hyperparameters, gaps, measures) for genlab rank"
    )
    export.add_argument("dir", help="study directory (may be running)")
    export.add_argument("--format", choices=["csv", "parquet"], default="csv")
    export.add_argument(
        "--out", dest="out_file", help="file to write (default: DIR/results.FORMAT)"
    )
    export.set_defaults(func=_study_export)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genlab", description=genlab.__doc__.splitlines()[0] if genlab.__doc__ else None
    )
    parser.add_argument("--version", action="version", version=f"genlab {genlab.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the kernels on generated data and print the results")
    demo.add_argument("--n", type=int, default=1_000_000, help="pairs for the Kendall tau timing")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=_demo)
    _add_study_parser(sub)
    _add_rank_parser(sub)
    return parser


def _integer_at_least(minimum: int, words: str) -> Callable[[str], int]:
    """An argparse type: an integer >= ``minimum`` (``words`` says which in the message)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {words}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {words}, got {value}")
        return value

    return parse


_positive_int = _integer_at_least(1, "a positive integer")
_count = _integer_at_least(0, "a non-negative integer")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``genlab`` command.

    Returns the exit status: 0, 1 when a command fails (one line on stderr: a damaged or
    unwritable study directory, a failed model, too few models to rank), 2 for an invalid
    configuration (or one that is not the configuration of the study directory) or command line.
    """
    from genlab.study.store import StoreError

    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
    except (StudyCommandError, StoreError) as exc:
        command = " ".join(filter(None, ("genlab", args.command, getattr(args, "verb", None))))
        print(f"{command}: {exc}", file=sys.stderr)
        return 1
    return result


if __name__ == "__main__":
    sys.exit(main())
