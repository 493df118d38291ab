"""Sharpness by the Hessian (power iteration, Hutchinson) against the full Hessian from
torch.func, and the expected calibration error against a direct implementation."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("torch")

import torch
from torch import nn
from torch.utils.data import TensorDataset

from genlab.errors import MeasureUnavailableWarning, NumericalWarning
from genlab.torch.calibration import expected_calibration_error
from genlab.torch.data import load_dataset
from genlab.torch.hessian import hessian_top_eigenvalue, hessian_trace
from genlab.torch.measures import MEASURES, MeasureSettings, compute_measures
from genlab.torch.models import build_model
from genlab.torch.train import TrainConfig, train


def _problem(seed: int) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3)).double()
    return model, torch.randn(40, 4, dtype=torch.float64), torch.randint(0, 3, (40,))


def _full_hessian(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The Hessian of the mean cross-entropy in all parameters as one matrix, row by row: the
    gradient of each entry of the gradient (no Hessian-vector products)."""
    params = list(model.parameters())
    loss = nn.functional.cross_entropy(model(x), y)
    gradient = torch.cat(
        [g.reshape(-1) for g in torch.autograd.grad(loss, params, create_graph=True)]
    )
    rows = [
        torch.cat([r.reshape(-1) for r in torch.autograd.grad(g, params, retain_graph=True)])
        for g in gradient
    ]
    return torch.stack(rows).detach()


@pytest.mark.parametrize("seed", range(3))
def test_top_eigenvalue_and_trace_match_the_full_hessian(seed: int) -> None:
    model, x, y = _problem(seed)
    full = _full_hessian(model, x, y)
    eigenvalues = torch.linalg.eigvalsh(full)
    largest = float(eigenvalues[eigenvalues.abs().argmax()])
    top = hessian_top_eigenvalue(model, x, y, max_iterations=2000, tol=1e-10, seed=seed)
    assert top.converged
    assert top.value == pytest.approx(largest, rel=1e-6)
    trace = hessian_trace(model, x, y, max_samples=4000, min_samples=50, tol=0.03, seed=seed)
    assert trace.converged
    assert trace.standard_error <= 0.03 * abs(trace.value)
    # Unbiased: within four standard errors of the exact trace.
    assert abs(trace.value - float(full.trace())) <= 4 * trace.standard_error
    # Chunked evaluation sums to the same products.
    chunked = hessian_top_eigenvalue(
        model, x, y, max_iterations=2000, tol=1e-10, seed=seed, batch_size=7
    )
    assert chunked.value == pytest.approx(top.value, rel=1e-9)


def test_the_estimates_say_when_they_stopped_short() -> None:
    model, x, y = _problem(0)
    with pytest.warns(NumericalWarning, match="power iteration did not converge: after 2 products"):
        est = hessian_top_eigenvalue(model, x, y, max_iterations=2, tol=1e-12)
    assert not est.converged
    assert est.products == 2
    with pytest.warns(NumericalWarning, match="did not reach a standard error"):
        trace = hessian_trace(model, x, y, max_samples=3, min_samples=2, tol=1e-6)
    assert (trace.products, trace.converged) == (3, False)


def test_hessian_errors_and_mode() -> None:
    model, x, y = _problem(0)
    model.train()
    hessian_top_eigenvalue(model, x, y)
    assert model.training  # restored
    with pytest.raises(ValueError, match="same number"):
        hessian_top_eigenvalue(model, x[:0], y[:0])
    with pytest.raises(ValueError, match="tol"):
        hessian_trace(model, x, y, tol=0.0)
    with pytest.raises(ValueError, match="no trainable parameters"):
        hessian_trace(nn.Identity(), x, y)


def _naive_ece(logits: np.ndarray, labels: np.ndarray, bins: int) -> float:
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    confidence, predicted = p.max(axis=1), p.argmax(axis=1)
    total = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = (confidence > lo) & (confidence <= hi)
        if inside.any():
            accuracy = (predicted[inside] == labels[inside]).mean()
            total += inside.mean() * abs(accuracy - confidence[inside].mean())
    return total


@pytest.mark.parametrize(("seed", "bins"), [(0, 15), (1, 10), (2, 1), (3, 40)])
def test_ece_matches_a_direct_computation(seed: int, bins: int) -> None:
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=3.0, size=(500, 7))
    labels = rng.integers(0, 7, 500)
    data = TensorDataset(torch.from_numpy(logits), torch.from_numpy(labels))
    # The identity "model" returns the stored logits.
    got = expected_calibration_error(nn.Identity(), data, bins=bins, batch_size=64)
    assert got == pytest.approx(_naive_ece(logits, labels, bins), abs=1e-12)


def test_ece_errors() -> None:
    data = TensorDataset(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="held-out set is empty"):
        expected_calibration_error(nn.Identity(), data)
    with pytest.raises(ValueError, match="bins"):
        expected_calibration_error(nn.Identity(), data, bins=0)


def test_the_measures_in_compute_measures() -> None:
    data = load_dataset("digits", train_size=200)
    model = build_model("mlp", num_classes=10, input_shape=data.input_shape, seed=0)
    result = train(model, data, TrainConfig(optimizer="adam", lr=1e-2, epochs=30, ce_target=None))
    names = ["hessian_top_eigenvalue", "hessian_trace", "expected_calibration_error"]
    assert {MEASURES[n].group for n in names} == {"hessian", "calibration"}
    settings = MeasureSettings(hessian_iterations=200, hessian_probes=200, flatness_samples=128)
    values = compute_measures(model, data, train_result=result, names=names, settings=settings)
    assert values["hessian_top_eigenvalue"] > 0
    assert values["hessian_trace"] >= values["hessian_top_eigenvalue"] * 0.5
    # The DatasetSplit's test set is the held-out set.
    direct = expected_calibration_error(model, data.test)
    assert values["expected_calibration_error"] == direct
    # Without held-out data the ECE is unavailable.
    with pytest.warns(MeasureUnavailableWarning, match="without held-out data"):
        values = compute_measures(model, data.train, names=["expected_calibration_error"])
    assert math.isnan(values["expected_calibration_error"])
    held_out = compute_measures(model, data.train, held_out=data.test, names=names[2:])
    assert held_out["expected_calibration_error"] == direct
    with pytest.raises(ValueError, match="hessian_probes"):
        MeasureSettings(hessian_probes=1)
