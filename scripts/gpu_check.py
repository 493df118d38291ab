"""GPU timings for docs/results/gpu.md (run by scripts/gpu-check.sh on a machine with a CUDA GPU).

(a) models per minute of the digits CRATE zoo trained and measured on the GPU (the default
    study's architecture and measures), one model at a time and as one stack of many; (b) one training step of a CRATE with the SRR regularizer
    (random-layer, as Hu et al. train) against plain cross-entropy; (c) tensor attention forward
    + backward by method. Every timing synchronizes the GPU, takes the median of repeated runs
    after warm-up, and the page names the GPU, torch and the command.

Usage: ``python scripts/gpu_check.py --tests "SUMMARY" --out docs/results/gpu.md``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

import genlab
from genlab.study.config import load_config
from genlab.torch.attention import tensor_attention
from genlab.torch.data import load_dataset
from genlab.torch.measures import MeasureSettings, measure_model, measure_models
from genlab.torch.models import build_model
from genlab.torch.srr import srr_penalty
from genlab.torch.stack import train_stack
from genlab.torch.train import TrainConfig, train

DEVICE = torch.device("cuda")
STUDY = Path(__file__).resolve().parents[1] / "examples" / "digits-crate.toml"


def median_seconds(fn: Callable[[], object], *, repeats: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _zoo(count: int, device: str) -> tuple[list[torch.nn.Module], Any, list[TrainConfig]]:
    """``count`` digits CRATEs of the default study's architecture (depth 3, 400 digits), each
    its own seed and a learning rate of the study's two."""
    data = load_dataset("digits", train_size=400)
    study = load_config(STUDY)
    models = [
        build_model(
            "crate",
            num_classes=10,
            input_shape=data.input_shape,
            seed=seed,
            **{**study.model, "depth": 3},
        )
        for seed in range(count)
    ]
    configs = [
        TrainConfig(
            **{**study.train, "lr": (0.005, 0.01)[seed % 2], "seed": seed, "device": device}
        )
        for seed in range(count)
    ]
    return models, data, configs


def zoo_models_per_minute(count: int, stacked: bool) -> tuple[float, float]:
    """(models per minute, mean test accuracy) of training and measuring ``count`` digits
    CRATEs on the GPU with the default study's measures: one after another (``train``,
    ``measure_model``) or as one stack (``train_stack``, ``measure_models``)."""
    models, data, configs = _zoo(count, "cuda")
    settings = MeasureSettings(**load_config(STUDY).measures.settings)
    presets = ("crate", "output")
    started = time.perf_counter()
    if stacked:
        results = train_stack(models, [data] * count, configs)
        measure_models(
            models,
            [data] * count,
            train_results=results,
            seeds=list(range(count)),
            settings=settings,
            srr_presets=presets,
        )
    else:
        results = []
        for seed, (model, config) in enumerate(zip(models, configs, strict=True)):
            results.append(train(model, data, config))
            measure_model(
                model,
                data,
                train_result=results[-1],
                seed=seed,
                settings=settings,
                srr_presets=presets,
            )
    torch.cuda.synchronize()
    minutes = (time.perf_counter() - started) / 60
    return count / minutes, statistics.mean(r.test_accuracy for r in results)


def srr_step_times(batch: int, dim: int, depth: int) -> tuple[float, float]:
    """Median seconds of one Adam step of a CIFAR-sized CRATE, CE alone and CE + 0.1 SRR."""
    import random

    model = build_model(
        "crate",
        num_classes=10,
        input_shape=(3, 32, 32),
        seed=0,
        dim=dim,
        depth=depth,
        heads=6,
        patch_size=4,
    ).to(DEVICE)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.randn(batch, 3, 32, 32, device=DEVICE)
    y = torch.randint(0, 10, (batch,), device=DEVICE)
    rng = random.Random(0)

    def step(gamma: float) -> None:
        optimizer.zero_grad(set_to_none=True)
        logits, layers = model(x, return_intermediates=True)
        loss = F.cross_entropy(logits, y)
        if gamma:
            loss = loss + gamma * srr_penalty(layers, eps=0.5, mode="random-layer", rng=rng)
        torch.autograd.backward(loss)
        optimizer.step()

    plain = median_seconds(lambda: step(0.0), repeats=20)
    regularized = median_seconds(lambda: step(0.1), repeats=20)
    return plain, regularized


def attention_times(n: int, d: int, heads: int) -> dict[str, float]:
    """Median seconds of forward + backward of tensor attention, per method, in float64 (the
    polynomial method's coefficients need it: in float32 rounding swamps its error bound)."""
    shape = (heads, n, d)
    # Inputs of scale 0.5: logits in a range the polynomial method reaches at its default tol.
    tensors = [
        (0.5 * torch.randn(shape, device=DEVICE, dtype=torch.float64)).requires_grad_()
        for _ in range(5)
    ]
    out: dict[str, float] = {}
    for method in ("materialized", "chunked", "poly"):

        def run(method: str = method) -> None:
            result = tensor_attention(*tensors, method=method)
            torch.autograd.backward(result.sum())

        try:
            out[method] = median_seconds(run, repeats=5, warmup=1)
        except (RuntimeError, ValueError) as exc:  # out of memory, or a size the method refuses
            out[method] = float("nan")
            print(f"tensor attention {method}: {type(exc).__name__}: {exc}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", default="(not run)", help="the CUDA tests' pytest summary")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--models", type=int, default=16)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("gpu_check: torch sees no CUDA GPU")
    name = torch.cuda.get_device_name(0)
    one_rate, one_accuracy = zoo_models_per_minute(args.models, stacked=False)
    stacks = {n: zoo_models_per_minute(n, stacked=True) for n in (args.models, 4 * args.models)}
    plain, regularized = srr_step_times(batch=128, dim=192, depth=6)
    attention = attention_times(n=512, d=4, heads=8)
    lines = [
        "# genlab on a GPU",
        "",
        f"Written by `bash scripts/gpu-check.sh` on {name} (torch {torch.__version__}, CUDA "
        f"{torch.version.cuda}, genlab {genlab.__version__}, Python {platform.python_version()}).",
        "",
        f"CUDA tests (`pytest -m cuda` over the test files that hold them): {args.tests.strip()}",
        "",
        "| timing | value |",
        "|---|---:|",
        f"| (a) digits CRATE zoo trained and measured one model at a time ({args.models} models; "
        f"mean test accuracy {one_accuracy:.3f}) | {one_rate:.1f} models per minute |",
    ]
    for count, (rate, accuracy) in stacks.items():
        lines.append(
            f"| (a) the same zoo as one stack of {count} models (mean test accuracy "
            f"{accuracy:.3f}) | {rate:.1f} models per minute ({rate / one_rate:.1f}x) |"
        )
    lines += [
        f"| (b) one Adam step, CRATE dim 192 depth 6 on 32 x 32 x 3 inputs, batch 128: CE | "
        f"{plain * 1e3:.2f} ms |",
        f"| (b) the same step with CE + 0.1 SRR (one random layer) | {regularized * 1e3:.2f} ms "
        f"({regularized / plain:.2f}x) |",
    ]
    for method, seconds in attention.items():
        lines.append(
            f"| (c) tensor attention forward + backward, {method}, 8 heads n = 512 d = 4 float64 "
            f"| {seconds * 1e3:.2f} ms |"
        )
    lines += [
        "",
        "Medians of repeated runs after warm-up, the GPU synchronized around each. The zoo: "
        "`examples/digits-crate.toml`'s CRATE at depth 3 on 400 digits, learning rates 0.005 "
        "and 0.01, Adam to cross-entropy 0.01 within 100 epochs, then every measure with the "
        "study's settings; one at a time is `train` + `measure_model`, a stack is "
        "`train_stack` + `measure_models` (the flatness searches of the whole stack together).",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
