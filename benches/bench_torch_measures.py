"""Cost of the complexity measures for one small CRATE trained on digits (the issue's budget: all
measures in under 30 s on 2 CPU cores), and the layer-wise SRR profile (R, R^c, sparsity and SRR
per layer, CRATE's measurement convention) against hand-written code on the same hooked tokens
(forward hooks, ``torch.logdet`` per image and head in float32, as CRATE's measurement script
computes R^c). Both sides include the model's forward pass.

Run with ``bash scripts/bench.sh benches/bench_torch_measures.py``.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from genlab.errors import NumericalWarning  # noqa: E402
from genlab.torch.data import DatasetSplit, load_dataset  # noqa: E402
from genlab.torch.measures import MEASURES, compute_measures  # noqa: E402
from genlab.torch.models import build_model  # noqa: E402
from genlab.torch.srr import measure_srr  # noqa: E402
from genlab.torch.train import TrainConfig, TrainResult, train  # noqa: E402

EPS = 0.5


@pytest.fixture(scope="module")
def trained() -> tuple[Any, TrainResult, DatasetSplit]:
    torch.set_num_threads(2)
    data = load_dataset("digits")
    model = build_model("crate", num_classes=10, input_shape=data.input_shape, seed=0)
    config = TrainConfig(optimizer="adam", lr=1e-3, epochs=80, ce_target=0.01)
    return model, train(model, data, config), data


@pytest.mark.parametrize(
    "group", ["all", "flatness", "norms, margin, path", "srr", "hessian", "spectrum"]
)
def test_compute_measures(
    run_case: Callable[..., Any], trained: tuple[Any, TrainResult, DatasetSplit], group: str
) -> None:
    model, result, data = trained
    if group == "all":
        names = list(MEASURES)
    elif group == "flatness":
        names = [n for n, i in MEASURES.items() if i.group == "flatness"]
    elif group in ("srr", "hessian", "spectrum"):
        names = [n for n, i in MEASURES.items() if i.group == group]
    else:
        names = [
            n
            for n, i in MEASURES.items()
            if i.group
            not in ("flatness", "srr", "hessian", "calibration", "optimization", "spectrum")
        ]

    # scripts/bench-compare.sh also runs this file against versions from before
    # compute_measures(model, data, train_result=...), which took the result second.
    new_signature = "train_result" in inspect.signature(compute_measures).parameters

    def measure() -> dict[str, float]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NumericalWarning)
            if new_signature:
                return compute_measures(model, data, train_result=result, names=names)
            return compute_measures(model, result, data, names=names)  # type: ignore[arg-type]

    values = run_case(
        f"compute_measures({group}), CRATE dim 32 depth 4, digits", "genlab", measure, rounds=2
    )
    assert len(values) == len(names)


def _half_logdet(x: Any, scale: float) -> Any:
    """1/2 logdet(I + scale x x^T) over the last two axes, the way hand-written code does it."""
    gram = x @ x.transpose(-1, -2)
    eye = torch.eye(gram.shape[-1]).expand_as(gram)
    return torch.logdet(eye + scale * gram) / 2


def _logdet_peer(model: Any, images: Any) -> dict[str, Any]:
    """The "crate" convention by hand: hooks on every LN -> qkv, torch.logdet per image and head."""
    hooked: dict[str, list[Any]] = {"normalized": [], "qkv": [], "output": []}
    handles = []
    for layer in model.layers:
        handles.append(
            layer.attention_norm.register_forward_hook(
                lambda _m, _i, out: hooked["normalized"].append(out)
            )
        )
        handles.append(
            layer.attention.qkv.register_forward_hook(lambda _m, _i, out: hooked["qkv"].append(out))
        )
        handles.append(
            layer.ista.register_forward_hook(lambda _m, _i, out: hooked["output"].append(out))
        )
    with torch.no_grad():
        model(images)
    for h in handles:
        h.remove()
    heads, p = model.layers[0].attention.heads, model.layers[0].attention.dim_head
    rc, r, sparsity = [], [], []
    for z, qkv, out in zip(hooked["normalized"], hooked["qkv"], hooked["output"], strict=True):
        b, n, d = z.shape
        x = qkv.reshape(b, n, heads, p).transpose(1, 2)  # (B, K, N, p)
        rc.append(_half_logdet(x, p / (n * EPS**2)).sum(1).mean())
        r.append(_half_logdet(z, d / (n * EPS**2)).mean())
        sparsity.append(((out != 0).sum((1, 2)) / n).float().mean())
    rc_t, r_t, sp_t = torch.stack(rc), torch.stack(r), torch.stack(sparsity)
    return {"rc": rc_t, "r": r_t, "sparsity": sp_t, "srr": sp_t + rc_t - r_t}


@pytest.mark.parametrize("impl", ["genlab", "torch.logdet"])
def test_srr_profile(
    run_case: Callable[..., Any], trained: tuple[Any, TrainResult, DatasetSplit], impl: str
) -> None:
    model, _, data = trained
    images = data.train.tensors[0][:512]
    if impl == "genlab":
        profile = run_case(
            "R, R^c, sparsity, SRR per layer, 512 digits, CRATE depth 4",
            impl,
            lambda: measure_srr(model, images, eps=EPS, convention="crate"),
        )
        reference = _logdet_peer(model, images)
        assert abs(profile.compressed_coding_rate - reference["rc"].double().numpy()).max() < 1e-2
        assert abs(profile.srr_measure - reference["srr"].double().numpy()).max() < 1e-2
    else:
        run_case(
            "R, R^c, sparsity, SRR per layer, 512 digits, CRATE depth 4",
            impl,
            lambda: _logdet_peer(model, images),
        )
