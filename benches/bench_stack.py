"""Stacked training (genlab.torch.stack.train_stack) against training the same models one by one.

Case: 32 digits CRATEs (dim 32, depth 3, 4 heads, 2 x 2 patches; 800 training digits; Adam, each
model its own seed and learning rate), 5 epochs, float32, on the CPU, trained as one stack (1.4x
on 2026-12-05; stacks of 8 and 16 measured the same within noise before). The "peer" is
genlab.torch.train.train called once per model, the path the study takes today.

Run: ``bash scripts/bench.sh benches/bench_stack.py``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from genlab.torch.data import load_dataset  # noqa: E402
from genlab.torch.models import build_model  # noqa: E402
from genlab.torch.stack import train_stack  # noqa: E402
from genlab.torch.train import TrainConfig, train  # noqa: E402

MODELS = 32
STACK = 32


@pytest.fixture(scope="module")
def zoo() -> tuple[list[Any], list[Any], list[TrainConfig]]:
    data = load_dataset("digits", train_size=800)
    models = [
        build_model(
            "crate",
            num_classes=10,
            input_shape=data.input_shape,
            seed=s,
            dim=32,
            depth=3,
            heads=4,
            patch_size=2,
        )
        for s in range(MODELS)
    ]
    configs = [
        TrainConfig(optimizer="adam", lr=(0.003, 0.01)[s % 2], epochs=5, ce_target=None, seed=s)
        for s in range(MODELS)
    ]
    return models, [data] * MODELS, configs


@pytest.mark.parametrize("impl", ["genlab", "one model at a time"])
def test_bench_train_stack(run_case: Callable[..., Any], zoo: Any, impl: str) -> None:
    models, data, configs = zoo

    def stacked() -> None:
        for k in range(0, MODELS, STACK):
            part = slice(k, k + STACK)
            train_stack([copy.deepcopy(m) for m in models[part]], data[part], configs[part])

    def one_by_one() -> None:
        for m, d, c in zip(models, data, configs, strict=True):
            train(copy.deepcopy(m), d, c)

    run_case(
        f"train {MODELS} digits CRATEs for 5 epochs (float32, CPU; stacks of {STACK})",
        impl,
        stacked if impl == "genlab" else one_by_one,
        rounds=1,
        warmup=0,
    )
