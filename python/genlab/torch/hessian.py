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
(:class:`~genlab.errors.NumericalWarning`). :func:`hessian_top_eigenvalue_stack` and
:func:`hessian_trace_stack` estimate many models of one architecture together (one vmapped
product for the stack), each model with its own data, seed and stopping.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab._validation import check_int, check_real
from genlab.errors import NumericalWarning
from genlab.torch._flatness import _chunks, _Forward, _stack_inputs
from genlab.torch._modules import evaluation_mode

__all__ = [
    "HessianEstimate",
    "hessian_top_eigenvalue",
    "hessian_top_eigenvalue_stack",
    "hessian_trace",
    "hessian_trace_stack",
]


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
    models: Sequence[nn.Module], inputs: Tensor, targets: Tensor, batch_size: int
) -> tuple[Callable[[list[Tensor]], list[Tensor]], list[Tensor]]:
    """``v -> H v`` for each model's mean cross-entropy over its own (inputs[i], targets[i]),
    and the parameters, both stacked on a leading model axis.

    The gradient of each chunk of examples is built once, with its graph (the forward pass and
    the first backward pass); every product then only differentiates ``grad . v`` through that
    graph, which is about a third of the cost of rebuilding it and gives the same numbers. The
    models' losses are summed: each model's Hessian is a diagonal block of the sum's, so each
    gets its own product. The graphs of all chunks are held while the function lives (the
    Hessian measures use a few hundred examples).
    """
    names = [name for name, p in models[0].named_parameters() if p.requires_grad]
    if not names:
        raise ValueError("model: has no trainable parameters")
    per_model = [dict(m.named_parameters()) for m in models]
    params = [torch.stack([p[name].detach() for p in per_model]).requires_grad_() for name in names]
    forward = _Forward(models)
    rows = range(len(models))
    n = targets.shape[1]
    chunk_grads = []
    for x, y in _chunks(inputs, targets, batch_size):
        logits = forward(dict(zip(names, params, strict=True)), x, rows)
        # Mean over all n examples: each chunk weighs len(chunk) / n.
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum") / n
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
    if inputs.shape[1] == 0 or inputs.shape[:2] != targets.shape:
        raise ValueError(
            f"inputs, targets: expected the same number (at least 1) of inputs and labels, got "
            f"{inputs.shape[1]} and {targets.shape[1]}"
        )
    check_real(tol, "tol", positive=True)
    check_int(limit, name, minimum=1)


def _dots(a: list[Tensor], b: list[Tensor]) -> list[float]:
    """Each model's inner product of two stacked vectors (lists of (M, ...) tensors), float64."""
    total = sum((x.double() * y.double()).flatten(1).sum(dim=1) for x, y in zip(a, b, strict=True))
    assert isinstance(total, Tensor)
    return [float(v) for v in total.tolist()]


def _per_model(values: Sequence[float], like: Tensor) -> Tensor:
    """(M,) values shaped to broadcast over a stacked (M, ...) tensor, in its dtype."""
    shape = (len(values),) + (1,) * (like.dim() - 1)
    return torch.tensor(values, dtype=like.dtype, device=like.device).reshape(shape)


def _draw(
    params: list[Tensor], generators: Sequence[torch.Generator | None], draw: Callable[..., Tensor]
) -> list[Tensor]:
    """A stacked vector: each model's row drawn from its own generator, parameter by parameter
    (the order a model alone draws in), on the CPU and then moved to the parameters' device and
    dtype; zeros for a model whose generator is None (done)."""
    return [
        torch.stack(
            [
                draw(p.shape[1:], g).to(p)
                if g is not None
                else torch.zeros(p.shape[1:], dtype=p.dtype, device=p.device)
                for g in generators
            ]
        )
        for p in params
    ]


def _model(i: int, count: int) -> str:
    return f" for model {i}" if count > 1 else ""


def _top_eigenvalues(
    models: Sequence[nn.Module],
    inputs: Tensor,
    targets: Tensor,
    seeds: Sequence[int],
    max_iterations: int,
    tol: float,
    batch_size: int,
) -> list[HessianEstimate]:
    _check(inputs, targets, tol, max_iterations, "max_iterations")
    count = len(models)
    with evaluation_mode(*models):
        hvp, params = _hvp_function(models, inputs, targets, batch_size)
        generators = [torch.Generator().manual_seed(seed) for seed in seeds]
        vector = _draw(params, generators, lambda shape, g: torch.randn(shape, generator=g))
        norms = [math.sqrt(v) for v in _dots(vector, vector)]
        vector = [v / _per_model(norms, v) for v in vector]
        value = [math.nan] * count
        converged = [False] * count
        products = [0] * count
        active = list(range(count))
        for _ in range(max_iterations):
            if not active:
                break
            product = hvp(vector)
            estimates = _dots(vector, product)  # Rayleigh quotients of unit vectors
            sizes = [math.sqrt(v) for v in _dots(product, product)]
            going = []
            for i in active:
                products[i] += 1
                if sizes[i] == 0.0:  # H v = 0: v lies in the null space; the estimate 0 is exact
                    value[i], converged[i] = 0.0, True
                elif not math.isnan(value[i]) and abs(estimates[i] - value[i]) <= tol * abs(
                    estimates[i]
                ):
                    value[i], converged[i] = estimates[i], True
                else:
                    value[i] = estimates[i]
                    going.append(i)
            active = going
            # The next vectors; finished models get zeros (their rows are not used again).
            scale = [sizes[i] if i in active else 1.0 for i in range(count)]
            keep = [1.0 if i in active else 0.0 for i in range(count)]
            vector = [
                torch.where(_per_model(keep, p) > 0, p / _per_model(scale, p), 0.0) for p in product
            ]
    for i in range(count):
        if not converged[i]:
            warnings.warn(
                f"Hessian power iteration did not converge{_model(i, count)}: after "
                f"{products[i]} products the top eigenvalue estimate still moved by more than "
                f"{tol:g} (relative); raise max_iterations or tol",
                NumericalWarning,
                stacklevel=3,
            )
    return [
        HessianEstimate(value=value[i], products=products[i], converged=converged[i], tolerance=tol)
        for i in range(count)
    ]


def _traces(
    models: Sequence[nn.Module],
    inputs: Tensor,
    targets: Tensor,
    seeds: Sequence[int],
    max_samples: int,
    min_samples: int,
    tol: float,
    batch_size: int,
) -> list[HessianEstimate]:
    _check(inputs, targets, tol, max_samples, "max_samples")
    check_int(min_samples, "min_samples", minimum=2)
    count = len(models)
    with evaluation_mode(*models):
        hvp, params = _hvp_function(models, inputs, targets, batch_size)
        generators: list[torch.Generator | None] = [
            torch.Generator().manual_seed(seed) for seed in seeds
        ]
        samples: list[list[float]] = [[] for _ in models]
        converged = [False] * count
        mean = [math.nan] * count
        standard_error = [math.nan] * count
        while any(g is not None for g in generators):
            probe = _draw(
                params,
                generators,
                lambda shape, g: torch.randint(0, 2, shape, generator=g) * 2 - 1,
            )
            values = _dots(probe, hvp(probe))
            for i, generator in enumerate(generators):
                if generator is None:
                    continue
                samples[i].append(values[i])
                if len(samples[i]) >= 2:
                    drawn = torch.tensor(samples[i], dtype=torch.float64)
                    mean[i] = float(drawn.mean())
                    standard_error[i] = float(drawn.std() / math.sqrt(len(samples[i])))
                    if len(samples[i]) >= min_samples and standard_error[i] <= tol * abs(mean[i]):
                        converged[i] = True
                if converged[i] or len(samples[i]) >= max_samples:
                    generators[i] = None
    for i in range(count):
        if len(samples[i]) == 1:
            mean[i] = samples[i][0]
        if not converged[i]:
            warnings.warn(
                f"Hutchinson's trace estimate did not reach a standard error of {tol:g} of its "
                f"value in {len(samples[i])} probes{_model(i, count)} (mean {mean[i]:.6g}, "
                f"standard error {standard_error[i]:.3g}); raise max_samples or tol",
                NumericalWarning,
                stacklevel=3,
            )
    return [
        HessianEstimate(
            value=mean[i],
            products=len(samples[i]),
            converged=converged[i],
            tolerance=tol,
            standard_error=standard_error[i],
        )
        for i in range(count)
    ]


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
    return _top_eigenvalues(
        [model], inputs[None], targets[None], [seed], max_iterations, tol, batch_size
    )[0]


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
    return _traces(
        [model], inputs[None], targets[None], [seed], max_samples, min_samples, tol, batch_size
    )[0]


def hessian_top_eigenvalue_stack(
    models: Sequence[nn.Module],
    inputs: Sequence[Tensor],
    targets: Sequence[Tensor],
    *,
    seeds: Sequence[int],
    max_iterations: int = 20,
    tol: float = 1e-3,
    batch_size: int = 1024,
) -> list[HessianEstimate]:
    """:func:`hessian_top_eigenvalue` of several models of one architecture at once, each on its
    own ``inputs[i]``, ``targets[i]`` (as many examples for every model) with its own seed and
    its own stopping: one vmapped Hessian-vector product for the whole stack per iteration.
    Each estimate is the one the model gets alone, to float rounding of the batched kernels.

    Raises
    ------
    ValueError
        No models, or inputs, targets and seeds not one per model and of one shape.
    """
    x, y = _stack_inputs(models, inputs, targets, seeds)
    return _top_eigenvalues(models, x, y, seeds, max_iterations, tol, batch_size)


def hessian_trace_stack(
    models: Sequence[nn.Module],
    inputs: Sequence[Tensor],
    targets: Sequence[Tensor],
    *,
    seeds: Sequence[int],
    max_samples: int = 100,
    min_samples: int = 10,
    tol: float = 0.1,
    batch_size: int = 1024,
) -> list[HessianEstimate]:
    """:func:`hessian_trace` of several models at once (as :func:`hessian_top_eigenvalue_stack`:
    each model its own data, probes from its own seed, and its own stopping)."""
    x, y = _stack_inputs(models, inputs, targets, seeds)
    return _traces(models, x, y, seeds, max_samples, min_samples, tol, batch_size)
