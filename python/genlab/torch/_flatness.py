"""Flatness searches: the PAC-Bayes noise scale sigma' and the sharpness radius alpha'.

Both find, by bisection, the largest perturbation scale at which the model's training accuracy
moves by ``target_drop`` (Jiang et al. 2020, Algorithm 1 and its sharpness analogue). They are
re-exported by :mod:`genlab.torch.measures`, which turns sigma' and alpha' into measures.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from genlab.errors import NumericalWarning

__all__ = ["FlatnessSearch", "pacbayes_sigma", "sharpness_alpha", "trainable_parameters"]


@dataclasses.dataclass(frozen=True)
class FlatnessSearch:
    """Result of :func:`pacbayes_sigma` or :func:`sharpness_alpha`.

    Attributes
    ----------
    scale : float
        sigma' (PAC-Bayes) or alpha' (sharpness): the last bisection midpoint.
    converged : bool
        Some midpoint moved the accuracy by ``target_drop`` within ``tolerance``.
    accuracy : float
        Accuracy of the unperturbed model on the data used.
    deviation : float
        ``|accuracy - perturbed accuracy|`` at ``scale``.
    steps : int
        Bisection steps taken.
    """

    scale: float
    converged: bool
    accuracy: float
    deviation: float
    steps: int


def trainable_parameters(model: nn.Module) -> dict[str, Tensor]:
    """The parameters the optimizer moves (``requires_grad``), by name, detached."""
    return {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}


def _chunks(inputs: Tensor, targets: Tensor, batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
    for start in range(0, len(targets), batch_size):
        yield inputs[start : start + batch_size], targets[start : start + batch_size]


@torch.no_grad()
def _accuracy(
    model: nn.Module, params: dict[str, Tensor], inputs: Tensor, targets: Tensor, batch_size: int
) -> float:
    correct = 0
    for xb, yb in _chunks(inputs, targets, batch_size):
        logits = functional_call(model, params, (xb,))
        correct += int((logits.argmax(dim=1) == yb).sum())
    return correct / len(targets)


# The smallest scale the search considers, as a fraction of its upper bound.
_LOWEST_FRACTION = 2.0**-24


@dataclasses.dataclass(frozen=True)
class _SearchSettings:
    kind: str
    magnitude_eps: float | None
    target_drop: float
    tolerance: float
    search_depth: int
    upper: float
    batch_size: int
    seed: int


# Perturbed accuracy at a scale, given the unperturbed parameters, the noise generator and the
# unperturbed accuracy.
_Evaluator = Callable[[dict[str, Tensor], torch.Generator, float, float], float]


def _bisect(
    model: nn.Module,
    inputs: Tensor,
    targets: Tensor,
    settings: _SearchSettings,
    evaluate: _Evaluator,
) -> FlatnessSearch:
    """Bisection on the scale: grow it while the accuracy deviation is below target.

    The midpoints are geometric, over [upper * 2**-24, upper]: the scale of interest spans orders
    of magnitude (sharpness radii of 1e-4 are common), and Jiang et al.'s linear bisection on
    [0, upper] cannot go below upper * 2**-depth, so a short search would stop at its floor.

    Runs in evaluation mode (restored afterwards) on the trainable parameters, which are never
    modified (perturbed copies go through ``torch.func.functional_call``).
    """
    s = settings
    if len(inputs) != len(targets) or len(targets) == 0:
        raise ValueError(
            f"inputs, targets: expected the same positive number of examples, got {len(inputs)} "
            f"and {len(targets)}"
        )
    if not 0 < s.tolerance < s.target_drop < 1:
        raise ValueError(
            f"target_drop, tolerance: expected 0 < tolerance < target_drop < 1, got "
            f"{s.target_drop} and {s.tolerance}"
        )
    if s.search_depth < 1:
        raise ValueError(f"search_depth: expected a positive number of steps, got {s.search_depth}")
    if not s.upper > 0:
        raise ValueError(f"upper bound of the search: expected a positive scale, got {s.upper}")
    if s.magnitude_eps is not None and not s.magnitude_eps > 0:
        raise ValueError(
            f"magnitude_eps: expected a positive number or None, got {s.magnitude_eps}"
        )
    was_training = model.training
    model.eval()
    try:
        params = trainable_parameters(model)
        generator = torch.Generator(device=inputs.device).manual_seed(s.seed)
        accuracy = _accuracy(model, params, inputs, targets, s.batch_size)
        lower, upper = s.upper * _LOWEST_FRACTION, s.upper
        scale = deviation = float("nan")
        for step in range(1, s.search_depth + 1):
            scale = math.sqrt(lower * upper)
            deviation = abs(accuracy - evaluate(params, generator, scale, accuracy))
            if abs(deviation - s.target_drop) < s.tolerance:
                return FlatnessSearch(scale, True, accuracy, deviation, step)
            if deviation > s.target_drop:
                upper = scale
            else:
                lower = scale
    finally:
        model.train(was_training)
    warnings.warn(
        f"{s.kind} search did not converge: after {s.search_depth} bisection steps the accuracy "
        f"deviation is {deviation:.4f} at scale {scale:.6g}, not {s.target_drop} +- "
        f"{s.tolerance}; the last midpoint is returned (raise search_depth or the upper bound)",
        NumericalWarning,
        stacklevel=3,
    )
    return FlatnessSearch(scale, False, accuracy, deviation, s.search_depth)


def pacbayes_sigma(
    model: nn.Module,
    inputs: Tensor,
    targets: Tensor,
    *,
    magnitude_eps: float | None = None,
    target_drop: float = 0.1,
    tolerance: float = 0.01,
    search_depth: int = 15,
    draws: int = 10,
    sigma_max: float = 2.0,
    batch_size: int = 1024,
    seed: int = 0,
) -> FlatnessSearch:
    """Largest Gaussian weight-noise scale sigma' that moves training accuracy by ``target_drop``.

    Bisection on sigma in [0, ``sigma_max``] (Jiang et al. 2020, Algorithm 1): at each midpoint,
    the accuracy is averaged over ``draws`` Monte Carlo draws of the noise ``u`` added to every
    trainable parameter ``w``; sigma grows while ``|acc(w) - mean acc(w + u)| < target_drop`` and
    shrinks otherwise, stopping once the deviation is within ``tolerance`` of the target. The
    draws at a midpoint stop early once the mean of all ``draws`` can no longer come within the
    tolerance band (accuracies lie in [0, 1]), which leaves every bisection decision unchanged.

    - plain (``magnitude_eps=None``): ``u_i ~ N(0, sigma^2)``, i.e. standard deviation sigma.
      (A widely copied implementation passes sigma**2 where ``torch.normal`` expects a standard
      deviation, which searches a different quantity; here the standard deviation is sigma.)
    - magnitude-aware: ``u_i ~ N(0, sigma^2 w_i^2 + eps^2)`` (variance), i.e. standard deviation
      ``sqrt(sigma^2 w_i^2 + eps^2)``, with ``eps = magnitude_eps`` (1e-3 in Jiang et al.).

    Parameters
    ----------
    model : torch.nn.Module
        Classifier (evaluated in evaluation mode; its parameters are not modified).
    inputs, targets : Tensor
        Training examples and labels, on the model's device.
    magnitude_eps : float, optional
        Switch to the magnitude-aware noise with this eps.
    target_drop, tolerance : float
        Target accuracy deviation and its tolerance.
    search_depth : int
        Maximum bisection steps.
    draws : int
        Monte Carlo draws per midpoint.
    sigma_max : float
        Upper end of the search interval.
    batch_size : int
        Evaluation batch size.
    seed : int
        Seed of the noise.

    Returns
    -------
    FlatnessSearch
        ``scale`` is sigma'.

    Warns
    -----
    genlab.errors.NumericalWarning
        When no midpoint reached the target deviation; the last midpoint is returned.
    """
    if draws < 1:
        raise ValueError(f"draws: expected a positive number of Monte Carlo draws, got {draws}")

    def noisy_accuracy(
        params: dict[str, Tensor], generator: torch.Generator, sigma: float, accuracy: float
    ) -> float:
        total = 0.0
        for done in range(1, draws + 1):
            noisy = {}
            for name, w in params.items():
                if magnitude_eps is None:
                    std: Tensor | float = sigma
                else:
                    std = torch.sqrt(sigma**2 * w.double() ** 2 + magnitude_eps**2).to(w.dtype)
                noise = torch.randn(w.shape, generator=generator, device=w.device, dtype=w.dtype)
                noisy[name] = w + std * noise
            total += _accuracy(model, noisy, inputs, targets, batch_size)
            # Accuracies lie in [0, 1], so the mean over all draws will lie in [low, high]. Once
            # every deviation in that range is off target on the same side, the bisection's
            # decision is fixed: stop drawing (the partial mean lies in the range too).
            low, high = total / draws, (total + draws - done) / draws
            farthest = max(abs(accuracy - low), abs(accuracy - high))
            nearest = (
                0.0 if low <= accuracy <= high else min(abs(accuracy - low), abs(accuracy - high))
            )
            if nearest > target_drop + tolerance or farthest < target_drop - tolerance:
                break
        return total / done

    kind = "PAC-Bayes sigma" if magnitude_eps is None else "magnitude-aware PAC-Bayes sigma"
    settings = _SearchSettings(
        kind, magnitude_eps, target_drop, tolerance, search_depth, sigma_max, batch_size, seed
    )
    return _bisect(model, inputs, targets, settings, noisy_accuracy)


def sharpness_alpha(
    model: nn.Module,
    inputs: Tensor,
    targets: Tensor,
    *,
    magnitude_eps: float | None = None,
    target_drop: float = 0.1,
    tolerance: float = 0.01,
    search_depth: int = 15,
    ascent_steps: int = 10,
    alpha_max: float = 2.0,
    batch_size: int = 1024,
    seed: int = 0,
) -> FlatnessSearch:
    """Largest box radius alpha' whose worst-case perturbation moves training accuracy by ``target_drop``.

    Bisection on alpha in [0, ``alpha_max``] as in :func:`pacbayes_sigma`, but at each midpoint
    the perturbation ``u`` of the trainable parameters is the (approximate) worst case in the box
    ``|u_i| <= b_i``: projected gradient ascent on the training cross-entropy, ``ascent_steps``
    signed-gradient steps of size ``2 b_i / ascent_steps`` from a uniform random start, each
    followed by clipping to the box.

    - plain (``magnitude_eps=None``): ``b_i = alpha``;
    - magnitude-aware: ``b_i = alpha (|w_i| + eps)``, ``eps = magnitude_eps``. (The additive form
      ``alpha |w_i| + eps`` of the PAC-Bayes noise would leave a worst-case box of half-width
      ``eps`` at ``alpha = 0``, which on its own can exceed the target deviation and leave
      nothing to search; scaling the whole box by alpha keeps ``alpha = 0`` unperturbed.)

    Parameters and return value as in :func:`pacbayes_sigma` (``scale`` is alpha').

    Warns
    -----
    genlab.errors.NumericalWarning
        When no midpoint reached the target deviation.
    """
    if ascent_steps < 1:
        raise ValueError(f"ascent_steps: expected a positive number of steps, got {ascent_steps}")

    def worst_case_accuracy(
        params: dict[str, Tensor], generator: torch.Generator, alpha: float, _accuracy0: float
    ) -> float:
        names = list(params)
        boxes = [
            alpha * (params[n].abs() + magnitude_eps)
            if magnitude_eps is not None
            else torch.full_like(params[n], alpha)
            for n in names
        ]
        u = [
            (2 * torch.rand(b.shape, generator=generator, device=b.device, dtype=b.dtype) - 1) * b
            for b in boxes
        ]
        for _ in range(ascent_steps):
            for t in u:
                t.requires_grad_(True)
            grads = [torch.zeros_like(t) for t in u]
            for xb, yb in _chunks(inputs, targets, batch_size):
                perturbed = {n: params[n] + t for n, t in zip(names, u, strict=True)}
                logits = functional_call(model, perturbed, (xb,))
                loss = F.cross_entropy(logits, yb, reduction="sum")
                for g, gb in zip(grads, torch.autograd.grad(loss, u), strict=True):
                    g += gb
            with torch.no_grad():
                u = [
                    torch.clamp(t + (2.0 / ascent_steps) * b * g.sign(), -b, b)
                    for t, b, g in zip(u, boxes, grads, strict=True)
                ]
        perturbed = {n: params[n] + t.detach() for n, t in zip(names, u, strict=True)}
        return _accuracy(model, perturbed, inputs, targets, batch_size)

    kind = "sharpness alpha" if magnitude_eps is None else "magnitude-aware sharpness alpha"
    settings = _SearchSettings(
        kind, magnitude_eps, target_drop, tolerance, search_depth, alpha_max, batch_size, seed
    )
    return _bisect(model, inputs, targets, settings, worst_case_accuracy)
