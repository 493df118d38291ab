"""Sharpness by the Hessian of the training loss: its largest eigenvalue (power iteration) and
its trace (Hutchinson's estimator), both from Hessian-vector products, never the Hessian itself.

The loss is the mean cross-entropy of the model in evaluation mode over a fixed set of training
examples (the first ``MeasureSettings.hessian_samples`` of the flatness searches' subset in
``compute_measures``), with respect to every trainable parameter. A Hessian-vector product
differentiates ``grad . v`` through the graph of the gradient (Pearlmutter's trick through
autograd); the gradient and its graph are built once per call, so each product costs about two
gradient evaluations over those examples.

- :func:`hessian_top_eigenvalue`: power iteration from a seeded random unit vector; stops when
  the Rayleigh quotient changes by at most ``tol`` (relative) between two iterations, or after
  ``max_iterations``. It finds the eigenvalue of largest *magnitude*; at a minimum the Hessian's
  large eigenvalues are positive, and a negative result says the point is not one.
- :func:`hessian_trace`: the mean of ``v^T H v`` over Rademacher vectors ``v`` (entries +-1, an
  unbiased estimator of the trace); stops when the standard error of the mean is at most ``tol``
  times its absolute value (after at least ``min_samples`` probes), or after ``max_samples``.

Both return a :class:`HessianEstimate` with the value, the number of Hessian-vector products,
whether the tolerance was met, and the tolerance; a run that did not meet it warns
(:class:`~genlab.errors.NumericalWarning`).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab._validation import check_int, check_real
from genlab.errors import NumericalWarning
from genlab.torch._modules import evaluation_mode

__all__ = ["HessianEstimate", "hessian_top_eigenvalue", "hessian_trace"]


@dataclasses.dataclass(frozen=True)
class HessianEstimate:
    """An estimate of a Hessian quantity and how it was reached.

    Attributes
    ----------
    value : float
        The estimate.
    products : int
        Hessian-vector products used.
    converged : bool
        Whether the stopping tolerance was met before the limit.
    tolerance : float
        The relative tolerance asked for.
    standard_error : float
        Hutchinson's standard error of the trace (NaN for the eigenvalue).
    """

    value: float
    products: int
    converged: bool
    tolerance: float
    standard_error: float = math.nan


def _hvp_function(
    model: nn.Module, inputs: Tensor, targets: Tensor, batch_size: int
) -> tuple[Callable[[list[Tensor]], list[Tensor]], list[Tensor]]:
    """``v -> H v`` for the mean cross-entropy over (inputs, targets), and the parameters.

    The gradient of each chunk of examples is built once, with its graph (the forward pass and
    the first backward pass); every product then only differentiates ``grad . v`` through that
    graph, which is about a third of the cost of rebuilding it and gives the same numbers. The
    graphs of all chunks are held while the function lives (the Hessian measures use a few
    hundred examples).
    """
    params: list[Tensor] = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model: has no trainable parameters")
    n = len(targets)
    chunk_grads = []
    for start in range(0, n, batch_size):
        x, y = inputs[start : start + batch_size], targets[start : start + batch_size]
        # Mean over all n examples: each chunk weighs len(chunk) / n.
        loss = F.cross_entropy(model(x), y, reduction="sum") / n
        chunk_grads.append(torch.autograd.grad(loss, params, create_graph=True))

    def hvp(vector: list[Tensor]) -> list[Tensor]:
        out = [torch.zeros_like(p) for p in params]
        for grads in chunk_grads:
            dot = torch.stack([(g * v).sum() for g, v in zip(grads, vector, strict=True)]).sum()
            products = torch.autograd.grad(dot, params, retain_graph=True)
            for acc, h in zip(out, products, strict=True):
                acc += h.detach()
        return out

    return hvp, params


def _check(inputs: Tensor, targets: Tensor, tol: float, limit: int, name: str) -> None:
    if len(inputs) == 0 or len(inputs) != len(targets):
        raise ValueError(
            f"inputs, targets: expected the same number (at least 1) of inputs and labels, got "
            f"{len(inputs)} and {len(targets)}"
        )
    check_real(tol, "tol", positive=True)
    check_int(limit, name, minimum=1)


def _dot(a: list[Tensor], b: list[Tensor]) -> float:
    return float(sum((x.double() * y.double()).sum() for x, y in zip(a, b, strict=True)))


def hessian_top_eigenvalue(
    model: nn.Module,
    inputs: Tensor,
    targets: Tensor,
    *,
    max_iterations: int = 20,
    tol: float = 1e-3,
    seed: int = 0,
    batch_size: int = 1024,
) -> HessianEstimate:
    """The largest-magnitude eigenvalue of the Hessian of the mean cross-entropy over
    ``(inputs, targets)``, by power iteration (module docstring).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from genlab.torch.hessian import hessian_top_eigenvalue
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = nn.Linear(3, 2)
    >>> est = hessian_top_eigenvalue(model, torch.randn(64, 3), torch.randint(0, 2, (64,)))
    >>> est.converged, est.value > 0
    (True, True)
    """
    _check(inputs, targets, tol, max_iterations, "max_iterations")
    with evaluation_mode(model):
        hvp, params = _hvp_function(model, inputs, targets, batch_size)
        generator = torch.Generator().manual_seed(seed)
        vector = [torch.randn(p.shape, generator=generator).to(p) for p in params]
        norm = math.sqrt(_dot(vector, vector))
        vector = [v / norm for v in vector]
        value, converged, products = math.nan, False, 0
        for _ in range(max_iterations):
            product = hvp(vector)
            products += 1
            estimate = _dot(vector, product)  # Rayleigh quotient of a unit vector
            size = math.sqrt(_dot(product, product))
            if size == 0.0:  # H v = 0: v lies in the null space; the estimate 0 is exact there
                value, converged = 0.0, True
                break
            if not math.isnan(value) and abs(estimate - value) <= tol * abs(estimate):
                value, converged = estimate, True
                break
            value = estimate
            vector = [p / size for p in product]
    if not converged:
        warnings.warn(
            f"Hessian power iteration did not converge: after {products} products the top "
            f"eigenvalue estimate still moved by more than {tol:g} (relative); raise "
            "max_iterations or tol",
            NumericalWarning,
            stacklevel=2,
        )
    return HessianEstimate(value=value, products=products, converged=converged, tolerance=tol)


def hessian_trace(
    model: nn.Module,
    inputs: Tensor,
    targets: Tensor,
    *,
    max_samples: int = 100,
    min_samples: int = 10,
    tol: float = 0.1,
    seed: int = 0,
    batch_size: int = 1024,
) -> HessianEstimate:
    """The trace of the Hessian of the mean cross-entropy over ``(inputs, targets)``, by
    Hutchinson's estimator with Rademacher probes (module docstring).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from genlab.torch.hessian import hessian_trace
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = nn.Linear(3, 2)
    >>> est = hessian_trace(model, torch.randn(64, 3), torch.randint(0, 2, (64,)))
    >>> est.value > 0
    True
    """
    _check(inputs, targets, tol, max_samples, "max_samples")
    check_int(min_samples, "min_samples", minimum=2)
    with evaluation_mode(model):
        hvp, params = _hvp_function(model, inputs, targets, batch_size)
        generator = torch.Generator().manual_seed(seed)
        samples: list[float] = []
        converged = False
        mean = standard_error = math.nan
        while len(samples) < max_samples:
            probe = [
                (torch.randint(0, 2, p.shape, generator=generator) * 2 - 1).to(p) for p in params
            ]
            samples.append(_dot(probe, hvp(probe)))
            if len(samples) >= 2:
                values = torch.tensor(samples, dtype=torch.float64)
                mean = float(values.mean())
                standard_error = float(values.std() / math.sqrt(len(samples)))
                if len(samples) >= min_samples and standard_error <= tol * abs(mean):
                    converged = True
                    break
        if len(samples) == 1:
            mean = samples[0]
    if not converged:
        warnings.warn(
            f"Hutchinson's trace estimate did not reach a standard error of {tol:g} of its "
            f"value in {len(samples)} probes (mean {mean:.6g}, standard error "
            f"{standard_error:.3g}); raise max_samples or tol",
            NumericalWarning,
            stacklevel=2,
        )
    return HessianEstimate(
        value=mean,
        products=len(samples),
        converged=converged,
        tolerance=tol,
        standard_error=standard_error,
    )
