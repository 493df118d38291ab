"""Where runs execute: in this process, in a local process pool, or on a Ray cluster.

Each task trains and measures one unit of work, a model or a stack of models that share their
architecture (``[study] stack``; :func:`stack_units`), and returns their :class:`RunRecord` s;
the driver alone writes the store, one transaction per model, so that a killed study loses at
most the units in flight (``jobs`` units of ``stack`` models). Tasks run with a fixed number of
torch threads (cores / jobs), so that the same seed gives the same numbers whichever executor
runs it.
"""

from __future__ import annotations

import concurrent.futures as cf
import importlib.util
import json
import multiprocessing as mp
import os
import queue as queue_module
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from genlab.study.config import MeasuresConfig
from genlab.study.grid import RunSpec
from genlab.study.store import RunRecord
from genlab.study.worker import run_one, run_stack

__all__ = [
    "ProgressEvent",
    "check_setup",
    "execute",
    "stack_units",
    "threads_per_task",
]

# (run_id, epoch, epochs): a model finished an epoch.
ProgressEvent = tuple[str, int, int]


def check_setup(executor: str, device: str, jobs: int) -> None:
    """Check that runs can execute here as asked, before any starts: a known executor (Ray
    importable for "ray"), a CUDA GPU for device "cuda", a positive number of jobs.

    Raises
    ------
    ValueError
        The message starts with the option at fault (``executor``, ``device`` or ``jobs``).
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs: expected a positive integer, got {jobs!r}")
    if executor not in ("local", "ray"):
        raise ValueError(f'executor: expected "local" or "ray", got {executor!r}')
    if executor == "ray" and importlib.util.find_spec("ray") is None:
        raise ValueError(
            "executor: \"ray\" needs Ray, which is not installed here: pip install 'genlab[ray]'"
            ' (or use executor = "local")'
        )
    if device not in ("cpu", "cuda", "auto"):
        raise ValueError(f'device: expected "cpu", "cuda" or "auto", got {device!r}')
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            build = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU build"
            raise ValueError(
                f'device: "cuda" but PyTorch sees no CUDA GPU here (torch {torch.__version__}, '
                f'{build}); use "cpu", or "auto" to take a GPU only when there is one'
            )


def stack_units(specs: Sequence[RunSpec], stack: int) -> list[list[RunSpec]]:
    """The runs in units of at most ``stack`` that can train as one stack: the same model
    options, the same data options but for the seed and the label noise, and the same values of
    the training options a stack shares (:data:`genlab.torch.stack.SHARED_FIELDS`); in the
    order of ``specs`` within each group. ``stack = 1``: one unit per run, in the order of
    ``specs``."""
    if stack < 1:
        raise ValueError(f"stack: expected a positive number of models per stack, got {stack}")
    if stack == 1:
        return [[spec] for spec in specs]
    from genlab.torch.stack import SHARED_FIELDS

    groups: dict[str, list[RunSpec]] = {}
    for spec in specs:
        key = json.dumps(
            [
                dict(spec.model),
                {k: v for k, v in spec.data.items() if k not in ("seed", "label_noise")},
                {k: v for k, v in spec.train.items() if k in SHARED_FIELDS},
            ],
            sort_keys=True,
            default=str,
        )
        groups.setdefault(key, []).append(spec)
    return [
        members[start : start + stack]
        for members in groups.values()
        for start in range(0, len(members), stack)
    ]


def _run_unit(
    unit: Sequence[RunSpec],
    measures: MeasuresConfig,
    device: str,
    threads: int,
    progress: Callable[[str, int, int], None] | None,
) -> list[RunRecord]:
    if len(unit) == 1:
        spec = unit[0]

        def one(epoch: int, epochs: int) -> None:
            if progress is not None:
                progress(spec.run_id, epoch, epochs)

        return [run_one(spec, measures=measures, device=device, threads=threads, progress=one)]
    return run_stack(unit, measures=measures, device=device, threads=threads, progress=progress)


def threads_per_task(jobs: int) -> int:
    """Torch threads per task when ``jobs`` tasks share this machine."""
    return max(1, (os.cpu_count() or 1) // max(jobs, 1))


def _devices(device: str, jobs: int) -> list[str]:
    """The device of each worker: one GPU per worker when several are visible."""
    if device in ("cuda", "auto"):
        import torch

        n = torch.cuda.device_count()
        if n == 0:  # "auto" (check_setup refuses "cuda" without a GPU)
            return ["cpu"] * jobs
        return [f"cuda:{i % n}" for i in range(jobs)]
    return ["cpu"] * jobs


# --- local process pool ------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _pin_threads(threads: int) -> None:
    """torch's threads and the genlab kernels' (rayon's global pool, built at its first use,
    reads RAYON_NUM_THREADS) to ``threads``, so that jobs x threads stays within the cores."""
    os.environ["RAYON_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)


def _init_worker(devices: Any, events: Any, threads: int) -> None:
    _pin_threads(threads)
    # Each worker takes one device for its lifetime.
    _WORKER["device"] = devices.get()
    _WORKER["events"] = events
    _WORKER["threads"] = threads


def _pool_task(unit: Sequence[RunSpec], measures: MeasuresConfig) -> list[RunRecord]:
    events = _WORKER["events"]

    def progress(run_id: str, epoch: int, epochs: int) -> None:
        events.put((run_id, epoch, epochs))

    return _run_unit(unit, measures, _WORKER["device"], _WORKER["threads"], progress)


def _local(
    units: Sequence[Sequence[RunSpec]],
    measures: MeasuresConfig,
    *,
    jobs: int,
    device: str,
    on_progress: Callable[[ProgressEvent], None] | None,
) -> Iterator[RunRecord]:
    threads = threads_per_task(jobs)
    if jobs == 1:
        dev = _devices(device, 1)[0]

        def progress(run_id: str, epoch: int, epochs: int) -> None:
            if on_progress is not None:
                on_progress((run_id, epoch, epochs))

        for unit in units:
            yield from _run_unit(unit, measures, dev, threads, progress)
        return
    # "spawn": forked children would inherit the parent's torch and rayon thread pools, which do
    # not survive fork().
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        devices = manager.Queue()
        for d in _devices(device, jobs):
            devices.put(d)
        events = manager.Queue()
        with cf.ProcessPoolExecutor(
            max_workers=jobs,
            mp_context=ctx,
            initializer=_init_worker,
            initargs=(devices, events, threads),
        ) as pool:
            pending = {pool.submit(_pool_task, unit, measures) for unit in units}
            while pending:
                done, pending = cf.wait(pending, timeout=0.5, return_when=cf.FIRST_COMPLETED)
                while True:
                    try:
                        event = events.get_nowait()
                    except queue_module.Empty:
                        break
                    if on_progress is not None:
                        on_progress(event)
                for future in done:
                    yield from future.result()


# --- Ray ---------------------------------------------------------------------------------------


def _ray_task(
    unit: Sequence[RunSpec], measures: MeasuresConfig, device: str, threads: int
) -> list[RunRecord]:
    _pin_threads(threads)
    return _run_unit(unit, measures, device, threads, None)


def _ray(
    units: Sequence[Sequence[RunSpec]],
    measures: MeasuresConfig,
    *,
    jobs: int,
    device: str,
    address: str | None,
) -> Iterator[RunRecord]:
    import ray  # importable: check_setup said so

    started_here = not ray.is_initialized()
    if started_here:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=jobs, include_dashboard=False, log_to_driver=False)
    try:
        gpus = 1 if _devices(device, 1)[0].startswith("cuda") else 0
        task = ray.remote(num_cpus=1, num_gpus=gpus)(_ray_task)
        # Ray assigns the GPU (CUDA_VISIBLE_DEVICES); inside the task it is cuda:0.
        dev = "cuda:0" if gpus else "cpu"
        threads = threads_per_task(jobs)
        refs = [task.remote(unit, measures, dev, threads) for unit in units]
        while refs:
            done, refs = ray.wait(refs, num_returns=1)
            yield from ray.get(done[0])
    finally:
        if started_here:
            ray.shutdown()


def execute(
    specs: Sequence[RunSpec],
    measures: MeasuresConfig,
    *,
    executor: str = "local",
    jobs: int = 1,
    device: str = "cpu",
    address: str | None = None,
    on_progress: Callable[[ProgressEvent], None] | None = None,
    stack: int = 1,
) -> Iterator[RunRecord]:
    """Run every spec, yielding records as they finish (in completion order).

    Parameters
    ----------
    stack : int
        Models per unit of work: 1 trains each on its own; more trains the runs that share an
        architecture in stacks of up to ``stack`` (:func:`stack_units`).
    executor : {"local", "ray"}
        "local": in this process (``jobs == 1``) or a pool of ``jobs`` processes; "ray": tasks
        on a Ray cluster (``address``), or on a local Ray instance with ``jobs`` CPUs.
    device : {"cpu", "cuda", "auto"}
        "cuda" with several visible GPUs gives one model per GPU (one worker per GPU).
    on_progress : callable, optional
        Receives (run_id, epoch, epochs) as models train (local executors only).
    """
    check_setup(executor, device, jobs)
    units = stack_units(specs, stack)
    if executor == "local":
        return _local(units, measures, jobs=jobs, device=device, on_progress=on_progress)
    return _ray(units, measures, jobs=jobs, device=device, address=address)
