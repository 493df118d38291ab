"""Train and measure one model: the unit of work every executor runs (:func:`run_one`).

Its own module so that the executors (which run it in workers) and the runner (which drives the
executors) both import it without importing each other.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from genlab.study.config import MeasuresConfig
from genlab.study.grid import RunSpec
from genlab.study.store import RunRecord

if TYPE_CHECKING:
    from genlab.torch.measures import LayerSpectrum, ModelMeasures

__all__ = ["RunFailedError", "run_one", "run_stack"]


class RunFailedError(RuntimeError):
    """A model's training or measurement raised: the message names the run (its grid point and
    seed) and the cause, which is chained as ``__cause__`` where the run was in this process."""


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _layer_spectra_record(spectra: Sequence[LayerSpectrum]) -> dict[str, list[Any]]:
    """Per-layer spectra as JSON-ready lists (None where a layer has no power-law fit)."""
    return {
        "layers": [layer.name for layer in spectra],
        "alpha": [_finite_or_none(layer.alpha) for layer in spectra],
        "xmin": [layer.fit.xmin if layer.fit else None for layer in spectra],
        "n_tail": [layer.fit.n_tail if layer.fit else None for layer in spectra],
        "alpha_weighted": [_finite_or_none(layer.alpha_weighted) for layer in spectra],
        "log_spectral_norm": [layer.log_spectral_norm for layer in spectra],
        "stable_rank": [layer.stable_rank for layer in spectra],
        "eigenvalues": [layer.eigenvalues.tolist() for layer in spectra],
    }


def run_one(
    spec: RunSpec,
    *,
    measures: MeasuresConfig,
    device: str = "cpu",
    threads: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RunRecord:
    """Train the model of ``spec``, compute its measures, and return the record to store.

    Raises
    ------
    RunFailedError
        Whatever went wrong, with the run it happened in (so that a pool or Ray worker's error
        still says which model failed).
    """
    try:
        return _train_and_measure(spec, measures, device, threads, progress)
    except Exception as exc:
        point = ", ".join(f"{k}={v!r}" for k, v in spec.hparams.items())
        raise RunFailedError(
            f"run {spec.run_id} ({point}{', ' if point else ''}seed={spec.seed}) failed: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def _train_and_measure(
    spec: RunSpec,
    measures: MeasuresConfig,
    device: str,
    threads: int | None,
    progress: Callable[[int, int], None] | None,
) -> RunRecord:
    from genlab.torch.measures import load_plugins
    from genlab.torch.train import EpochRecord, train

    device = _set_up(threads, device)
    model, data, config, family = _prepare(spec, device)

    def on_epoch(record: EpochRecord) -> None:
        if progress is not None:
            progress(record.epoch, record.epochs)

    # In a pool or Ray worker this is the first import of the plugins: their measures exist here
    # only once imported.
    load_plugins(measures.plugins)
    result = train(model, data, config, progress=on_epoch)
    return _measured_record(spec, model, data, result, measures, family, device)


def _set_up(threads: int | None, device: str) -> str:
    """Pin torch's threads; resolve device "auto"."""
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _prepare(spec: RunSpec, device: str) -> tuple[Any, Any, Any, str]:
    """The model, data and training config of a run, and its model family."""
    from genlab.torch.data import load_dataset
    from genlab.torch.models import build_model
    from genlab.torch.train import TrainConfig

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
    return model, data, config, family


def _measured_record(
    spec: RunSpec,
    model: Any,
    data: Any,
    result: Any,
    measures: MeasuresConfig,
    family: str,
    device: str,
    measured: tuple[ModelMeasures, float] | None = None,
) -> RunRecord:
    """Measure a trained model and make the record to store; ``measured`` is its measures and
    the seconds they took when they were computed with others (:func:`run_stack`)."""
    from genlab.torch.measures import MeasureSettings, measure_model
    from genlab.torch.train import EpochRecord

    curves = _srr_curves(measures, family)
    if measured is None:
        started = time.perf_counter()
        one = measure_model(
            model,
            data,
            train_result=result,
            names=measures.names,
            seed=spec.seed,
            settings=MeasureSettings(**measures.settings),
            srr_presets=curves,
        )
        measured = (one, time.perf_counter() - started)
    model_measures, measure_seconds = measured
    profile = None
    if curves:
        profile = {
            "family": family,
            "curves": {
                preset: {
                    key: getattr(srr, key).tolist()
                    for key in ("coding_rate", "compressed_coding_rate", "sparsity", "srr_measure")
                }
                for preset, srr in model_measures.srr_profiles.items()
            },
        }
    values = model_measures.values
    history: dict[str, Any] = {
        field.name: [getattr(r, field.name) for r in result.history]
        for field in dataclasses.fields(EpochRecord)
    }
    if model_measures.errors:
        # What a registered measure's function raised (its value is NaN): kept with the run.
        history["measure_errors"] = dict(model_measures.errors)
    if model_measures.spectra:
        # The per-layer values behind the spectrum measures' means, for the report's plots.
        history["layer_spectra"] = _layer_spectra_record(model_measures.spectra)
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
        n_train=len(data.train),
        n_test=len(data.test),
    )


def _srr_curves(measures: MeasuresConfig, family: str) -> tuple[str, ...]:
    """The presets whose per-layer SRR curves a run stores: both, for a CRATE with SRR on (the
    SRR family's own measurement is shared with the preset it equals: nothing is measured
    twice)."""
    from genlab.torch.models import CRATE_VARIANTS
    from genlab.torch.srr import SRR_PRESETS

    return tuple(SRR_PRESETS) if measures.srr and family in CRATE_VARIANTS else ()


def run_stack(
    specs: Sequence[RunSpec],
    *,
    measures: MeasuresConfig,
    device: str = "cpu",
    threads: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    measure_together: bool | None = None,
) -> list[RunRecord]:
    """Train the models of ``specs`` as one stack (:func:`genlab.torch.stack.train_stack`), then
    measure them; runs that cannot share a stack train one by one instead.

    ``measure_together``: measure the stack with :func:`genlab.torch.measures.measure_models`
    (its flatness searches, Hessian estimates and forward passes for all models at once) rather
    than model by model; None does so on a GPU only (on a CPU a stacked pass was no faster,
    ``benches/bench_study.py``). ``progress`` receives (run_id, epoch, epochs). Raises
    :class:`RunFailedError` naming the runs of the stack.
    """
    try:
        return _train_stack_and_measure(
            specs, measures, device, threads, progress, measure_together
        )
    except Exception as exc:
        ids = ", ".join(s.run_id for s in specs)
        raise RunFailedError(f"stack of runs {ids} failed: {type(exc).__name__}: {exc}") from exc


def _train_stack_and_measure(
    specs: Sequence[RunSpec],
    measures: MeasuresConfig,
    device: str,
    threads: int | None,
    progress: Callable[[str, int, int], None] | None,
    measure_together: bool | None,
) -> list[RunRecord]:
    from genlab.torch.measures import MeasureSettings, load_plugins, measure_models
    from genlab.torch.stack import StackError, train_stack
    from genlab.torch.train import EpochRecord, train

    device = _set_up(threads, device)
    together = device.startswith("cuda") if measure_together is None else measure_together
    load_plugins(measures.plugins)
    prepared = [_prepare(spec, device) for spec in specs]

    def on_epoch(index: int, record: EpochRecord) -> None:
        if progress is not None:
            progress(specs[index].run_id, record.epoch, record.epochs)

    models = [p[0] for p in prepared]
    try:
        results = train_stack(
            models, [p[1] for p in prepared], [p[2] for p in prepared], progress=on_epoch
        )
    except StackError:  # BatchNorm buffers, SRR regularization, ...: one by one
        results = [
            train(model, data, config, progress=functools.partial(on_epoch, i))
            for i, (model, data, config, _) in enumerate(prepared)
        ]
    measured: list[tuple[ModelMeasures, float] | None] = [None] * len(specs)
    if together:
        started = time.perf_counter()
        stacked = measure_models(
            models,
            [p[1] for p in prepared],
            train_results=results,
            names=measures.names,
            seeds=[spec.seed for spec in specs],
            settings=MeasureSettings(**measures.settings),
            srr_presets=_srr_curves(measures, prepared[0][3]),
        )
        share = (time.perf_counter() - started) / len(specs)
        measured = [(m, share) for m in stacked]
    return [
        _measured_record(spec, model, data, result, measures, family, device, done)
        for spec, (model, data, _, family), result, done in zip(
            specs, prepared, results, measured, strict=True
        )
    ]
