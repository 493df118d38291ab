"""Train and measure one model (:func:`run_one`), and run a whole study (:func:`run_study`)."""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from genlab.study.config import MeasuresConfig, StudyConfig
from genlab.study.executors import execute
from genlab.study.grid import RunSpec, expand
from genlab.study.store import RunRecord, Store

__all__ = ["run_one", "run_study"]


def run_one(
    spec: RunSpec,
    *,
    measures: MeasuresConfig,
    device: str = "cpu",
    threads: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RunRecord:
    """Train the model of ``spec``, compute its measures, and return the record to store."""
    import torch

    from genlab.torch.data import load_dataset
    from genlab.torch.measures import MeasureSettings, measure_model
    from genlab.torch.models import CRATE_VARIANTS, build_model
    from genlab.torch.srr import SRR_PRESETS
    from genlab.torch.train import EpochRecord, TrainConfig, train

    if threads is not None:
        torch.set_num_threads(threads)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    data = load_dataset(**spec.data)
    model_options = dict(spec.model)
    family = str(model_options.pop("family", "crate"))
    model = build_model(
        family,
        num_classes=data.num_classes,
        input_shape=data.input_shape,
        seed=spec.seed,
        **model_options,
    )
    config = TrainConfig(**{**spec.train, "seed": spec.seed, "device": device})

    def on_epoch(record: EpochRecord) -> None:
        if progress is not None:
            progress(record.epoch, record.epochs)

    result = train(model, data, config, progress=on_epoch)
    started = time.perf_counter()
    settings = MeasureSettings(**measures.settings)
    # Per-layer curves under both presets; the SRR family's own measurement is shared with the
    # preset it equals, so nothing is measured twice.
    curves = tuple(SRR_PRESETS) if measures.srr and family in CRATE_VARIANTS else ()
    measured = measure_model(
        model,
        result,
        data,
        names=measures.names,
        seed=spec.seed,
        settings=settings,
        srr_presets=curves,
    )
    profile = None
    if curves:
        profile = {
            "family": family,
            "curves": {
                preset: {
                    key: getattr(srr, key).tolist()
                    for key in ("coding_rate", "compressed_coding_rate", "sparsity", "srr_measure")
                }
                for preset, srr in measured.srr_profiles.items()
            },
        }
    values = measured.values
    measure_seconds = time.perf_counter() - started
    history = {
        field.name: [getattr(r, field.name) for r in result.history]
        for field in dataclasses.fields(EpochRecord)
    }
    return RunRecord(
        run_id=spec.run_id,
        seed=spec.seed,
        hparams=dict(spec.hparams),
        converged=bool(result.converged),
        train_loss=float(result.train_loss),
        test_loss=float(result.test_loss),
        train_acc=float(result.train_accuracy),
        test_acc=float(result.test_accuracy),
        measures={k: float(v) for k, v in values.items()},
        srr_profile=profile,
        history=history,
        device=str(device),
        train_seconds=float(result.wall_time),
        measure_seconds=measure_seconds,
        n_train=len(data.train),  # type: ignore[arg-type]
        n_test=len(data.test),  # type: ignore[arg-type]
    )


def _progress_bar(total: int, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="model", disable=not enabled, file=sys.stderr, dynamic_ncols=True)


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

    Returns (models run now, models already stored before).
    """
    store = Store(out)
    store.open_for(config, allow_config_change=allow_config_change)
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

    def on_progress(event: tuple[str, int, int]) -> None:
        run_id, epoch, epochs = event
        bar.set_postfix_str(f"epoch {epoch}/{epochs} [{labels.get(run_id, run_id)}]", refresh=True)

    ran = 0
    try:
        for record in execute(
            pending,
            config.measures,
            executor=executor or config.executor,
            jobs=jobs or config.jobs,
            device=device or config.device,
            address=address,
            on_progress=on_progress,
        ):
            store.add(record)
            ran += 1
            gap = record.test_loss - record.train_loss
            bar.set_postfix_str(
                f"last: test acc {record.test_acc:.3f}, loss gap {gap:.3f}"
                + ("" if record.converged else " (not converged)")
                if not math.isnan(gap)
                else "",
                refresh=False,
            )
            bar.update(1)
    finally:
        bar.close()
    return ran, skipped
