"""Models per minute of a whole study: stacked training against one model at a time.

Case: 32 models of the default digits study (`examples/digits-crate.toml`: its 4 CRATE variants x
its 2 learning rates x 4 seeds, at depth 3 and 400 training digits), every measure (the SRR
family with both presets' curves, path-norm, the four flatness searches, the Hessian), run by
``genlab.study.run_study`` with the config's 2 jobs, each in a fresh store. "genlab" is the
stacked path (``[study] stack = 8``: each variant's 8 runs train as one stack,
``genlab.torch.stack.train_stack``, then each model is measured); the peer, "one model at a
time", is ``stack = 1``, the path the default study takes. Models per minute = 32 / time; the
ratio table's ratio is their ratio.

Also timed, to say where the time goes: one optimizer step (forward and backward, batch 64) of
32 of these models as one vmapped stack against 32 single-model steps, one evaluation forward
pass (256 examples) the same two ways, and one model's forward and backward pass on 1024
examples at once against 16 batches of 64 (per-step overhead would make the large batch far
faster).

Run: ``bash scripts/bench.sh benches/bench_study.py`` (about 8 minutes on 2 cores).
"""

from __future__ import annotations

import copy
import dataclasses
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
from torch.func import functional_call, stack_module_state, vmap  # noqa: E402

from genlab.study.config import StudyConfig, load_config  # noqa: E402
from genlab.study.grid import expand  # noqa: E402
from genlab.study.runner import run_study  # noqa: E402
from genlab.torch.models import build_model  # noqa: E402

DEFAULT = Path(__file__).resolve().parents[1] / "examples" / "digits-crate.toml"
MODELS = 32
STACK = 8


def _grid_of_32(stack: int) -> StudyConfig:
    config = load_config(DEFAULT)
    grid = dict(config.grid)
    grid["depth"] = (3,)
    grid["train_size"] = (400,)
    return dataclasses.replace(config, grid=grid, seeds=(0, 1, 2, 3), stack=stack)


@pytest.mark.parametrize("impl", ["genlab", "one model at a time"])
def test_bench_study_models_per_minute(run_case: Callable[..., Any], impl: str) -> None:
    config = _grid_of_32(STACK if impl == "genlab" else 1)
    assert len(expand(config)) == MODELS

    def study() -> None:
        with tempfile.TemporaryDirectory() as out:
            ran, _ = run_study(config, out, progress=False)
            assert ran == MODELS

    run_case(
        f"study of {MODELS} digits CRATEs, every measure, 2 jobs (stacks of {STACK})",
        impl,
        study,
        rounds=1,
        warmup=0,
    )


def _zoo() -> list[Any]:
    return [
        build_model(
            "crate", num_classes=10, input_shape=(1, 8, 8), seed=s, dim=32, depth=3, heads=4
        )
        for s in range(MODELS)
    ]


@pytest.mark.parametrize("impl", ["genlab", "one model at a time"])
@pytest.mark.parametrize("what", ["training step, batch 64", "evaluation pass, 256 examples"])
def test_bench_stacked_step(run_case: Callable[..., Any], impl: str, what: str) -> None:
    torch.set_num_threads(1)  # as in a study worker with 2 jobs on 2 cores
    models = _zoo()
    batch = 64 if what.startswith("training") else 256
    x = torch.randn(MODELS, batch, 1, 8, 8)
    y = torch.randint(0, 10, (MODELS, batch))
    params, _ = stack_module_state(models)
    params = {k: v.detach().requires_grad_() for k, v in params.items()}
    base = copy.deepcopy(models[0]).to("meta")
    logits = vmap(lambda p, xb: functional_call(base, p, (xb,)))

    def stacked() -> None:
        if what.startswith("training"):
            out = logits(params, x)
            F.cross_entropy(out.flatten(0, 1), y.flatten()).backward()
        else:
            with torch.no_grad():
                logits(params, x)

    def one_by_one() -> None:
        for i, model in enumerate(models):
            if what.startswith("training"):
                F.cross_entropy(model(x[i]), y[i]).backward()
            else:
                with torch.no_grad():
                    model(x[i])

    run_case(
        f"{what} of {MODELS} digits CRATEs (1 thread)",
        impl,
        stacked if impl == "genlab" else one_by_one,
        rounds=10,
        warmup=2,
    )


@pytest.mark.parametrize("impl", ["genlab", "16 steps of 64"])
def test_bench_one_large_batch(run_case: Callable[..., Any], impl: str) -> None:
    """Is a step's time per-step overhead? One model's forward and backward on 1024 examples at
    once against 16 batches of 64: if overhead dominated, the large batch would be far faster."""
    torch.set_num_threads(1)
    model = _zoo()[0]
    x = torch.randn(1024, 1, 8, 8)
    y = torch.randint(0, 10, (1024,))

    def large() -> None:
        F.cross_entropy(model(x), y).backward()

    def small() -> None:
        for start in range(0, 1024, 64):
            F.cross_entropy(model(x[start : start + 64]), y[start : start + 64]).backward()

    run_case(
        "forward + backward of one digits CRATE on 1024 examples (1 thread)",
        impl,
        large if impl == "genlab" else small,
        rounds=10,
        warmup=2,
    )
