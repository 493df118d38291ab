"""Flatness searches: the PAC-Bayes noise scale sigma' and the sharpness radius alpha'.

Both find, by bisection, the largest perturbation scale at which the model's training accuracy
moves by ``target_drop`` (Jiang et al. 2020, Algorithm 1 and its sharpness analogue). They are
re-exported by :mod:`genlab.torch.measures`, which turns sigma' and alpha' into measures.
:func:`pacbayes_sigma_stack` and :func:`sharpness_alpha_stack` run the searches of many models
of one architecture together (one vmapped forward pass for the models still searching), each
model with its own data, seed, bisection state and noise, so each gets what it gets alone.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import warnings
from collections.abc import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

from genlab.errors import NumericalWarning
from genlab.torch._modules import evaluation_mode

__all__ = [
    "FlatnessSearch",
    "pacbayes_sigma",
    "pacbayes_sigma_stack",
    "sharpness_alpha",
    "sharpness_alpha_stack",
    "trainable_parameters",
]


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
    """Slices of at most ``batch_size`` examples along the example axis (axis 1 of a stack)."""
    for start in range(0, targets.shape[1], batch_size):
        yield inputs[:, start : start + batch_size], targets[:, start : start + batch_size]


class _Forward:
    """Logits of M models on their own inputs, parameters stacked on a leading model axis:
    ``forward(params, x, rows)`` with ``params[name]`` of shape (k, ...), ``x`` (k, b, ...) and
    ``rows`` the k models (indices into the stack) the parameters belong to; returns (k, b, C).

    One model runs as it is (``functional_call`` on the model itself, the numbers of a plain
    forward pass); several run as one ``vmap`` of ``functional_call`` over a meta-device copy,
    with each model's buffers and untrained parameters. All in evaluation mode.
    """

    def __init__(self, models: Sequence[nn.Module]) -> None:
        self.single = models[0] if len(models) == 1 else None
        if self.single is not None:
            return
        parameters, buffers = stack_module_state(list(models))
        trained = trainable_parameters(models[0])
        # What the searches do not perturb: buffers (BatchNorm statistics) and frozen weights.
        self.fixed = {
            **{k: v.detach() for k, v in parameters.items() if k not in trained},
            **buffers,
        }
        base = copy.deepcopy(models[0]).to("meta").eval()
        self.vmapped = vmap(lambda p, x: functional_call(base, p, (x,)))

    def __call__(self, params: dict[str, Tensor], x: Tensor, rows: Sequence[int]) -> Tensor:
        if self.single is not None:
            one = {name: p[0] for name, p in params.items()}
            return functional_call(self.single, one, (x[0],)).unsqueeze(0)  # type: ignore[no-any-return]
        index = torch.tensor(list(rows), device=x.device)
        fixed = {name: t[index] for name, t in self.fixed.items()}
        return self.vmapped({**fixed, **params}, x)  # type: ignore[no-any-return]


@torch.no_grad()
def _accuracies(
    forward: _Forward,
    params: dict[str, Tensor],
    inputs: Tensor,
    targets: Tensor,
    rows: Sequence[int],
    batch_size: int,
) -> list[float]:
    """Training accuracy of each model of ``rows`` (inputs and targets of those rows only)."""
    correct = torch.zeros(len(rows), dtype=torch.int64, device=targets.device)
    for xb, yb in _chunks(inputs, targets, batch_size):
        correct += (forward(params, xb, rows).argmax(dim=-1) == yb).sum(dim=-1)
    return [int(c) / targets.shape[1] for c in correct.tolist()]


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


# The perturbed accuracy of each model of ``rows`` at its scale, given the unperturbed
# parameters of those rows, the inputs and targets of those rows, their noise generators, their
# scales and their unperturbed accuracies.
_Evaluator = Callable[
    [
        _Forward,
        Sequence[int],
        dict[str, Tensor],
        Tensor,
        Tensor,
        Sequence[torch.Generator],
        Sequence[float],
        Sequence[float],
    ],
    list[float],
]


def _check_search(inputs: Tensor, targets: Tensor, s: _SearchSettings) -> None:
    if inputs.shape[:2] != targets.shape or targets.shape[1] == 0:
        raise ValueError(
            f"inputs, targets: expected the same positive number of examples, got "
            f"{inputs.shape[1]} and {targets.shape[1]}"
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


def _stack_inputs(
    models: Sequence[nn.Module],
    inputs: Sequence[Tensor],
    targets: Sequence[Tensor],
    seeds: Sequence[int],
) -> tuple[Tensor, Tensor]:
    if not models:
        raise ValueError("models: expected at least one model, got none")
    if not (len(models) == len(inputs) == len(targets) == len(seeds)):
        raise ValueError(
            f"expected inputs, targets and a seed per model, got {len(models)} models, "
            f"{len(inputs)} inputs, {len(targets)} targets and {len(seeds)} seeds"
        )
    shapes = {(tuple(x.shape), tuple(y.shape)) for x, y in zip(inputs, targets, strict=True)}
    if len(shapes) > 1:
        raise ValueError(
            f"inputs, targets: every model needs as many examples of one shape, got {shapes}"
        )
    return torch.stack(list(inputs)), torch.stack(list(targets))


def _search(
    models: Sequence[nn.Module],
    inputs: Tensor,
    targets: Tensor,
    seeds: Sequence[int],
    settings: _SearchSettings,
    evaluate: _Evaluator,
) -> list[FlatnessSearch]:
    """Bisection on the scale of each model: grow it while the accuracy deviation is below target.

    The midpoints are geometric, over [upper * 2**-24, upper]: the scale of interest spans orders
    of magnitude (sharpness radii of 1e-4 are common), and Jiang et al.'s linear bisection on
    [0, upper] cannot go below upper * 2**-depth, so a short search would stop at its floor.

    Each model keeps its own bisection state and noise generator (seeded by its seed), and leaves
    the search when it converges; the rest are evaluated together. Runs in evaluation mode
    (restored afterwards) on the trainable parameters, which are never modified (perturbed
    copies go through ``torch.func.functional_call``).
    """
    s = settings
    _check_search(inputs, targets, s)
    with evaluation_mode(*models):
        per_model = [trainable_parameters(model) for model in models]
        params = {name: torch.stack([p[name] for p in per_model]) for name in per_model[0]}
        forward = _Forward(models)
        generators = [torch.Generator(device=inputs.device).manual_seed(seed) for seed in seeds]
        every = list(range(len(models)))
        accuracy = _accuracies(forward, params, inputs, targets, every, s.batch_size)
        lower = [s.upper * _LOWEST_FRACTION] * len(models)
        upper = [s.upper] * len(models)
        scale = [math.nan] * len(models)
        deviation = [math.nan] * len(models)
        found: dict[int, FlatnessSearch] = {}
        active = every
        for step in range(1, s.search_depth + 1):
            if not active:
                break
            for i in active:
                scale[i] = math.sqrt(lower[i] * upper[i])
            perturbed = evaluate(
                forward,
                active,
                {name: p[active] for name, p in params.items()},
                inputs[active],
                targets[active],
                [generators[i] for i in active],
                [scale[i] for i in active],
                [accuracy[i] for i in active],
            )
            for i, value in zip(active, perturbed, strict=True):
                deviation[i] = abs(accuracy[i] - value)
                if abs(deviation[i] - s.target_drop) < s.tolerance:
                    found[i] = FlatnessSearch(scale[i], True, accuracy[i], deviation[i], step)
                elif deviation[i] > s.target_drop:
                    upper[i] = scale[i]
                else:
                    lower[i] = scale[i]
            active = [i for i in active if i not in found]
    for i in active:
        warnings.warn(
            f"{s.kind} search did not converge{f' for model {i}' if len(models) > 1 else ''}: "
            f"after {s.search_depth} bisection steps the accuracy deviation is "
            f"{deviation[i]:.4f} at scale {scale[i]:.6g}, not {s.target_drop} +- "
            f"{s.tolerance}; the last midpoint is returned (raise search_depth or the upper "
            "bound)",
            NumericalWarning,
            stacklevel=3,
        )
        found[i] = FlatnessSearch(scale[i], False, accuracy[i], deviation[i], s.search_depth)
    return [found[i] for i in range(len(models))]


def _draws_settled(
    total: float, done: int, draws: int, accuracy: float, s: _SearchSettings
) -> bool:
    """Whether the bisection's decision is fixed whatever the remaining draws give.

    Accuracies lie in [0, 1], so the mean over all draws will lie in [low, high]. Once every
    deviation in that range is off target on the same side, the decision is fixed: stop drawing
    (the partial mean lies in the range too).
    """
    low, high = total / draws, (total + draws - done) / draws
    farthest = max(abs(accuracy - low), abs(accuracy - high))
    nearest = 0.0 if low <= accuracy <= high else min(abs(accuracy - low), abs(accuracy - high))
    return nearest > s.target_drop + s.tolerance or farthest < s.target_drop - s.tolerance


def _noisy_accuracies(draws: int, s: _SearchSettings) -> _Evaluator:
    """The PAC-Bayes evaluator: each model's mean accuracy over Monte Carlo draws of Gaussian
    weight noise (draws stop per model once its decision is settled)."""

    def evaluate(
        forward: _Forward,
        rows: Sequence[int],
        params: dict[str, Tensor],
        inputs: Tensor,
        targets: Tensor,
        generators: Sequence[torch.Generator],
        sigmas: Sequence[float],
        accuracy: Sequence[float],
    ) -> list[float]:
        total = [0.0] * len(rows)
        done = [0] * len(rows)
        drawing = list(range(len(rows)))
        for draw in range(1, draws + 1):
            noisy = {}
            for name, w in params.items():  # each generator in parameter order, as alone
                noisy[name] = torch.stack(
                    [_with_noise(w[j], sigmas[j], s.magnitude_eps, generators[j]) for j in drawing]
                )
            values = _accuracies(
                forward,
                noisy,
                inputs[drawing],
                targets[drawing],
                [rows[j] for j in drawing],
                s.batch_size,
            )
            for j, value in zip(drawing, values, strict=True):
                total[j] += value
                done[j] = draw
            drawing = [
                j for j in drawing if not _draws_settled(total[j], draw, draws, accuracy[j], s)
            ]
            if not drawing:
                break
        return [t / d for t, d in zip(total, done, strict=True)]

    return evaluate


def _with_noise(
    w: Tensor, sigma: float, magnitude_eps: float | None, generator: torch.Generator
) -> Tensor:
    """``w + u``: ``u ~ N(0, sigma^2)``, or ``N(0, sigma^2 w^2 + eps^2)`` magnitude-aware."""
    if magnitude_eps is None:
        std: Tensor | float = sigma
    else:
        std = torch.sqrt(sigma**2 * w.double() ** 2 + magnitude_eps**2).to(w.dtype)
    noise = torch.randn(w.shape, generator=generator, device=w.device, dtype=w.dtype)
    return w + std * noise


def _worst_case_accuracies(ascent_steps: int, s: _SearchSettings) -> _Evaluator:
    """The sharpness evaluator: each model's accuracy after projected gradient ascent on its
    training cross-entropy within its box."""

    def evaluate(
        forward: _Forward,
        rows: Sequence[int],
        params: dict[str, Tensor],
        inputs: Tensor,
        targets: Tensor,
        generators: Sequence[torch.Generator],
        alphas: Sequence[float],
        _accuracy: Sequence[float],
    ) -> list[float]:
        names = list(params)
        models = range(len(rows))
        boxes = {
            n: torch.stack([_box(params[n][j], alphas[j], s.magnitude_eps) for j in models])
            for n in names
        }
        u = {  # each generator in parameter order, as alone
            n: (2 * torch.stack([_uniform(boxes[n][j], generators[j]) for j in models]) - 1)
            * boxes[n]
            for n in names
        }
        for _ in range(ascent_steps):
            for t in u.values():
                t.requires_grad_(True)
            grads = {n: torch.zeros_like(t) for n, t in u.items()}
            for xb, yb in _chunks(inputs, targets, s.batch_size):
                logits = forward({n: params[n] + u[n] for n in names}, xb, rows)
                # Summed over the models too: each model's gradient is its own loss's.
                loss = F.cross_entropy(logits.flatten(0, 1), yb.flatten(), reduction="sum")
                for n, g in zip(names, torch.autograd.grad(loss, list(u.values())), strict=True):
                    grads[n] += g
            with torch.no_grad():
                u = {
                    n: torch.clamp(
                        u[n] + (2.0 / ascent_steps) * boxes[n] * grads[n].sign(),
                        -boxes[n],
                        boxes[n],
                    )
                    for n in names
                }
        perturbed = {n: params[n] + u[n].detach() for n in names}
        return _accuracies(forward, perturbed, inputs, targets, rows, s.batch_size)

    return evaluate


def _box(w: Tensor, alpha: float, magnitude_eps: float | None) -> Tensor:
    """Half-widths of the sharpness box: ``alpha``, or ``alpha (|w| + eps)`` magnitude-aware."""
    if magnitude_eps is None:
        return torch.full_like(w, alpha)
    return alpha * (w.abs() + magnitude_eps)


def _uniform(like: Tensor, generator: torch.Generator) -> Tensor:
    return torch.rand(like.shape, generator=generator, device=like.device, dtype=like.dtype)


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
    settings, evaluate = _pacbayes_search(
        magnitude_eps, target_drop, tolerance, search_depth, draws, sigma_max, batch_size
    )
    return _search([model], inputs[None], targets[None], [seed], settings, evaluate)[0]


def _pacbayes_search(
    magnitude_eps: float | None,
    target_drop: float,
    tolerance: float,
    search_depth: int,
    draws: int,
    sigma_max: float,
    batch_size: int,
) -> tuple[_SearchSettings, _Evaluator]:
    if draws < 1:
        raise ValueError(f"draws: expected a positive number of Monte Carlo draws, got {draws}")
    kind = "PAC-Bayes sigma" if magnitude_eps is None else "magnitude-aware PAC-Bayes sigma"
    settings = _SearchSettings(
        kind, magnitude_eps, target_drop, tolerance, search_depth, sigma_max, batch_size
    )
    return settings, _noisy_accuracies(draws, settings)


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
    settings, evaluate = _sharpness_search(
        magnitude_eps, target_drop, tolerance, search_depth, ascent_steps, alpha_max, batch_size
    )
    return _search([model], inputs[None], targets[None], [seed], settings, evaluate)[0]


def _sharpness_search(
    magnitude_eps: float | None,
    target_drop: float,
    tolerance: float,
    search_depth: int,
    ascent_steps: int,
    alpha_max: float,
    batch_size: int,
) -> tuple[_SearchSettings, _Evaluator]:
    if ascent_steps < 1:
        raise ValueError(f"ascent_steps: expected a positive number of steps, got {ascent_steps}")
    kind = "sharpness alpha" if magnitude_eps is None else "magnitude-aware sharpness alpha"
    settings = _SearchSettings(
        kind, magnitude_eps, target_drop, tolerance, search_depth, alpha_max, batch_size
    )
    return settings, _worst_case_accuracies(ascent_steps, settings)


def pacbayes_sigma_stack(
    models: Sequence[nn.Module],
    inputs: Sequence[Tensor],
    targets: Sequence[Tensor],
    *,
    seeds: Sequence[int],
    magnitude_eps: float | None = None,
    target_drop: float = 0.1,
    tolerance: float = 0.01,
    search_depth: int = 15,
    draws: int = 10,
    sigma_max: float = 2.0,
    batch_size: int = 1024,
) -> list[FlatnessSearch]:
    """:func:`pacbayes_sigma` of several models of one architecture at once: each model on its
    own ``inputs[i]``, ``targets[i]`` (as many examples for every model) with its own seed, its
    own bisection and its own noise generator, so that each result is the one
    :func:`pacbayes_sigma` gives that model alone (the perturbed accuracies of the models still
    searching are computed by one vmapped forward pass).

    Raises
    ------
    ValueError
        No models, or inputs, targets and seeds not one per model and of one shape.
    """
    x, y = _stack_inputs(models, inputs, targets, seeds)
    settings, evaluate = _pacbayes_search(
        magnitude_eps, target_drop, tolerance, search_depth, draws, sigma_max, batch_size
    )
    return _search(models, x, y, seeds, settings, evaluate)


def sharpness_alpha_stack(
    models: Sequence[nn.Module],
    inputs: Sequence[Tensor],
    targets: Sequence[Tensor],
    *,
    seeds: Sequence[int],
    magnitude_eps: float | None = None,
    target_drop: float = 0.1,
    tolerance: float = 0.01,
    search_depth: int = 15,
    ascent_steps: int = 10,
    alpha_max: float = 2.0,
    batch_size: int = 1024,
) -> list[FlatnessSearch]:
    """:func:`sharpness_alpha` of several models of one architecture at once, each as it would
    be alone (as :func:`pacbayes_sigma_stack`: own data, seed, bisection and random starts; one
    vmapped forward and backward pass for the models still searching)."""
    x, y = _stack_inputs(models, inputs, targets, seeds)
    settings, evaluate = _sharpness_search(
        magnitude_eps, target_drop, tolerance, search_depth, ascent_steps, alpha_max, batch_size
    )
    return _search(models, x, y, seeds, settings, evaluate)
