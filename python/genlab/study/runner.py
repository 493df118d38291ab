"""Run a whole study (:func:`run_study`): expand the grid, skip stored runs, execute the rest and
store each record as it arrives. One model's training and measurement is
:func:`genlab.study.worker.run_one`."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

from genlab.study.config import ConfigError, StudyConfig
from genlab.study.executors import check_setup, execute
from genlab.study.grid import expand
from genlab.study.store import Store

__all__ = ["run_study"]


def _progress_bar(total: int, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="model", disable=not enabled, file=sys.stderr, dynamic_ncols=True)


def _check_setup(config: StudyConfig, *, executor: str, jobs: int, device: str) -> None:
    """:func:`check_setup` with its error at the config line of the option, or naming the
    command-line override that set it."""
    given = {"executor": executor, "jobs": jobs, "device": device}
    try:
        check_setup(executor, device, jobs)
    except ValueError as exc:
        key, _, reason = str(exc).partition(": ")
        if given[key] == getattr(config, key):
            raise config.error("study", key, reason) from None
        raise ConfigError(f"--{key} {given[key]}: {reason}") from None


def run_study(
    config: StudyConfig,
    out: str | Path,
    *,
    executor: str | None = None,
    jobs: int | None = None,
    device: str | None = None,
    address: str | None = None,
    allow_config_change: bool = False,
    progress: bool = True,
) -> tuple[int, int]:
    """Run every model of the study not yet in the store of ``out``.

    Nothing is written before the first model has finished: the executor, device and jobs are
    checked, then the directory (writable; a store already there readable and of this
    configuration); the store is bound to ``config`` when the first record arrives. So a run that
    fails at once leaves ``out`` as it was, and the corrected configuration can use it.

    Returns (models run now, models already stored before).

    Raises
    ------
    ConfigError
        The executor, device or jobs (from ``config`` or the arguments) cannot run here.
    StoreError
        ``out`` cannot hold this study's store (see :mod:`genlab.study.store`).
    RunFailedError
        A model failed; every model stored before it is kept.
    """
    executor = executor or config.executor
    jobs = config.jobs if jobs is None else jobs
    device = device or config.device
    _check_setup(config, executor=executor, jobs=jobs, device=device)
    store = Store(out)
    store.check_usable_for(config, allow_config_change=allow_config_change)
    specs = expand(config)
    finished = store.finished_ids()
    pending = [s for s in specs if s.run_id not in finished]
    skipped = len(specs) - len(pending)
    bar = _progress_bar(len(pending), progress)
    bar.set_description(f"{config.name}: {skipped} done before")
    labels = {
        s.run_id: " ".join(f"{k}={v}" for k, v in s.hparams.items()) + f" seed={s.seed}"
        for s in pending
    }

    # Models that reported an epoch and are not stored yet (local executors report epochs).
    in_flight: set[str] = set()

    def on_progress(event: tuple[str, int, int]) -> None:
        run_id, epoch, epochs = event
        in_flight.add(run_id)
        bar.set_postfix_str(
            f"{len(in_flight)} in flight, epoch {epoch}/{epochs} [{labels.get(run_id, run_id)}]",
            refresh=True,
        )

    ran = 0
    try:
        for record in execute(
            pending,
            config.measures,
            executor=executor,
            jobs=jobs,
            device=device,
            address=address,
            on_progress=on_progress,
            stack=config.stack,
        ):
            if ran == 0:
                store.open_for(config, allow_config_change=allow_config_change)
            store.add(record)
            ran += 1
            in_flight.discard(record.run_id)
            gap = record.test_loss - record.train_loss
            bar.set_postfix_str(
                f"{len(in_flight)} in flight; last: test acc {record.test_acc:.3f}, loss gap "
                f"{gap:.3f}" + ("" if record.converged else " (not converged)")
                if not math.isnan(gap)
                else f"{len(in_flight)} in flight",
                refresh=False,
            )
            bar.update(1)
    finally:
        bar.close()
    return ran, skipped
