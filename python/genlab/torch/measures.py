"""Complexity measures of a trained classifier, numbered as in Jiang et al. (2020).

:data:`MEASURES` lists every measure (name -> :class:`MeasureInfo`: Jiang et al.'s equation number
where there is one, orientation, group, formula). :func:`compute_measures` computes a chosen set
for one model and returns name -> value. Every measure is oriented so that, by its hypothesis,
*larger predicts a larger generalization gap* (``orientation=+1``); the SRR components whose
hypothesis runs the other way say ``orientation=-1``.

Conventions (``docs/formulas/measures.md``):

- Norm and path measures are taken on the model's *canonical form* (:func:`canonical_form`), so
  that a rescaling that leaves the network's function unchanged leaves them unchanged too: every
  BatchNorm is folded into the Conv or Linear layer before it (as Jiang et al.'s reference code
  does), and every Linear or Conv layer whose output goes straight into a LayerNorm (inside an
  ``nn.Sequential``, where order is data flow) is divided by its scale
  ``||[W, b]||_F / sqrt(out_features)``: LayerNorm removes that scale, so it is not a property of
  the function (CRATE's patch embedding is such a layer).
- Weight tensors ``W_i`` (``i = 1..d``): the weights of every ``nn.Linear`` and ``nn.Conv*d`` and
  every CRATE ISTA dictionary ``D`` of the canonical form, each reshaped to 2-D ``(out, -1)``
  (:func:`weight_tensors`); biases, normalization parameters, class tokens and positional
  embeddings are not weight tensors. A weight used twice (the qkv weight of
  "crate-t"/"crate-c"/"crate-n") counts once. ``W_i^0`` is its value at initialization
  (``TrainResult.initial_state``, put in canonical form the same way).
- The margin ``gamma``: the 10th percentile over training examples of (correct-class logit -
  largest other logit) (:func:`margins`). Measures that divide by it are NaN (with a
  :class:`~genlab.errors.DegenerateDataWarning`) when ``gamma <= 0``.
- ``w``: the vector of all *trainable* parameters (``requires_grad``; so "crate-fix"'s frozen
  projection is architecture, not a parameter), ``w^0`` at initialization, ``omega = len(w)``,
  ``m`` the number of training examples. The flatness searches perturb exactly ``w``.
- Values are the raw formulas, with natural logs. Every count, margin, norm, path and flatness
  measure also has a size-adjusted form ``<name>_adj`` by the rule of Jiang et al.'s code
  (:func:`size_adjusted`): ``(v - log m) / 2`` for the ``log_*`` measures, ``sqrt(v / m)`` for
  the others. Rank those when the grid varies the training-set size.

Norm and margin measures (``||.||_2`` spectral, ``||.||_F`` Frobenius):

==================================  ===  ====================================================
name                                Eq.  formula
==================================  ===  ====================================================
params                              20   number of entries of the W_i
inverse_margin                      22   1 / gamma^2
log_spec_init_main                  29   log(prod ||W_i||_2^2 / gamma^2 sum ||W_i - W_i^0||_F^2 / ||W_i||_2^2)
log_spec_orig_main                  30   log(prod ||W_i||_2^2 / gamma^2 sum ||W_i||_F^2 / ||W_i||_2^2)
log_prod_of_spec_over_margin        31   log(prod ||W_i||_2^2 / gamma^2)
log_prod_of_spec                    32   sum log ||W_i||_2^2
fro_over_spec                       33   sum ||W_i||_F^2 / ||W_i||_2^2
log_sum_of_spec_over_margin         34   log d + (1/d) log(prod ||W_i||_2^2 / gamma^2)
log_sum_of_spec                     35   log d + (1/d) sum log ||W_i||_2^2
log_prod_of_fro_over_margin         36   log(prod ||W_i||_F^2 / gamma^2)
log_prod_of_fro                     37   sum log ||W_i||_F^2
log_sum_of_fro_over_margin          38   log d + (1/d) log(prod ||W_i||_F^2 / gamma^2)
log_sum_of_fro                      39   log d + (1/d) sum log ||W_i||_F^2
fro_dist                            40   sum ||W_i - W_i^0||_F^2
dist_spec_init                      41   sum ||W_i - W_i^0||_2^2
param_norm                          42   sum ||W_i||_F^2
path_norm_over_margin               43   path_norm / gamma^2
path_norm                           44   see :func:`path_norm`
==================================  ===  ====================================================

Flatness measures (sigma' from :func:`pacbayes_sigma`, alpha' from :func:`sharpness_alpha`,
``eps = 1e-3``; the "mag" forms use the magnitude-aware searches):

- pacbayes_init (48) ``||w - w^0||^2 / (4 sigma'^2) + log(m / sigma') + 10``;
  pacbayes_orig (49) the same with ``||w||^2``; pacbayes_flatness (53) ``1 / sigma'^2``.
- sharpness_init (50) ``||w - w^0||^2 log(2 omega) / (4 alpha'^2) + log(m / alpha') + 10``;
  sharpness_orig (51) the same with ``||w||^2``; sharpness_flatness (52) ``1 / alpha'^2``.
- pacbayes_mag_init (56) ``1/4 sum_i log((eps^2 + (sigma'^2 + 1) ||w - w^0||^2 / omega) /
  (eps^2 + sigma'^2 (w_i - w_i^0)^2)) + log(m / sigma') + 10``; pacbayes_mag_orig (57) the same
  with ``||w||^2`` in the numerator (the denominator keeps ``w_i - w_i^0``, as in Jiang et al.);
  pacbayes_mag_flatness (61) ``1 / sigma'^2``.
- sharpness_mag_init (58), sharpness_mag_orig (59): as 56 and 57 with alpha' and
  ``alpha'^2 + 4 log(2 omega)`` in place of ``sigma'^2 + 1``; sharpness_mag_flatness (60)
  ``1 / alpha'^2``.

(The numbers 48, 49, 53, 56, 57 and 61 are Jiang et al.'s; 50-52 and 58-60 for the sharpness
forms are placed by the same pattern and should be checked against the paper before citing them;
the constants of the sharpness forms are written here as implemented.)

Optimization-based measures, unnumbered here: steps_to_ce_0_1, steps_ce_0_1_to_0_01 (recorded
by :func:`genlab.torch.train.train`; NaN when the milestone was not reached) and gradient_noise,
the variance of mini-batch gradients of the trained model (:func:`genlab.torch.train.
gradient_noise`) at one batch size for every model (``MeasureSettings.gradient_noise_batch_size``):
at each run's own batch size it would mostly measure 1 / B.

Hessian and calibration measures, unnumbered: hessian_top_eigenvalue and hessian_trace of the
training loss (:mod:`genlab.torch.hessian`: power iteration and Hutchinson's estimator, with the
``MeasureSettings.hessian_*`` limits and tolerances) and expected_calibration_error on the
held-out set (:mod:`genlab.torch.calibration`).

Spectrum measures (WeightWatcher's), unnumbered: per weight tensor of the canonical form, the
eigenvalues of ``W_i^T W_i`` (squared singular values; those below 1e-10 of the largest dropped)
and their power-law fit (:mod:`genlab.spectrum`); spectral_alpha is the mean exponent over the
layers with a fittable spectrum, spectral_alpha_weighted the mean of ``alpha log10 lambda_max``,
log_spectral_norm the mean ``log10 lambda_max``, stable_rank the mean ``sum lambda / lambda_max``.
The per-layer values: :func:`layer_spectra` (and ``ModelMeasures.spectra``); a study stores them
with each run and its report plots them.

SRR family (:func:`genlab.torch.srr.measure_srr` on the training set): per-layer coding rate R,
compressed coding rate R^c, sparsity and the SRR measure ``sparsity + R^c - R``, each as the
last-layer value (``*_last``) and the mean over layers (``*_mean``); rate_reduction ``R - R^c``.
Which tokens are coded, eps, token normalization and the sparsity's scale are
``MeasureSettings.srr_*``; the default is the CRATE authors' measurement script (preset "crate"
of :data:`genlab.torch.srr.SRR_PRESETS`). Measured on a seeded subset of
``MeasureSettings.srr_samples`` training images.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import itertools
import math
import types
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from genlab._options import check_eps
from genlab._validation import check_bool, check_choice, check_fraction, check_int, check_real
from genlab.errors import (
    DegenerateDataWarning,
    InvalidArgumentError,
    MeasureFailedWarning,
    MeasureUnavailableWarning,
)
from genlab.spectrum import PowerLawFit, power_law_fit_many
from genlab.torch._flatness import (
    FlatnessSearch,
    _Forward,
    pacbayes_sigma,
    pacbayes_sigma_stack,
    sharpness_alpha,
    sharpness_alpha_stack,
    trainable_parameters,
)
from genlab.torch._modules import evaluation_mode, model_device
from genlab.torch.calibration import expected_calibration_error, expected_calibration_error_of
from genlab.torch.data import Batches, DatasetSplit
from genlab.torch.hessian import (
    hessian_top_eigenvalue,
    hessian_top_eigenvalue_stack,
    hessian_trace,
    hessian_trace_stack,
)
from genlab.torch.models import ISTA, CRATELayer, IntermediatesModel
from genlab.torch.srr import (
    CONVENTIONS,
    SPARSITY_NORMALIZATIONS,
    SRR_PRESETS,
    SRRProfile,
    SRRSettings,
    measure_srr,
)
from genlab.torch.train import TrainResult, gradient_noise, gradient_noise_stack

__all__ = [
    "ADJUSTED_SUFFIX",
    "MEASURES",
    "FlatnessSearch",
    "LayerSpectrum",
    "MeasureContext",
    "MeasureInfo",
    "MeasureSettings",
    "ModelMeasures",
    "canonical_form",
    "compute_measures",
    "layer_spectra",
    "load_plugins",
    "margins",
    "measure_model",
    "measure_models",
    "pacbayes_sigma",
    "pacbayes_sigma_stack",
    "path_norm",
    "register_measure",
    "sharpness_alpha",
    "sharpness_alpha_stack",
    "size_adjusted",
    "spectral_norm",
    "unregister_measure",
    "weight_tensors",
]


@dataclasses.dataclass(frozen=True)
class MeasureInfo:
    """Metadata of one measure.

    Attributes
    ----------
    name : str
        Registry key.
    jiang : int or None
        Equation number in Jiang et al. (2020), None for measures they do not number.
    orientation : int
        +1 if a larger value predicts a larger generalization gap (by the measure's hypothesis),
        -1 if a smaller one does.
    group : str
        "count", "margin", "spectral", "frobenius", "distance", "path", "flatness",
        "optimization", "hessian", "calibration", "spectrum" or "srr" (or a registered
        measure's own).
    description : str
        One line: what it is.
    """

    name: str
    jiang: int | None
    orientation: int
    group: str
    description: str


def _registry() -> dict[str, MeasureInfo]:
    rows: list[tuple[str, int | None, int, str, str]] = [
        ("params", 20, 1, "count", "number of entries of the weight tensors W_i"),
        ("inverse_margin", 22, 1, "margin", "1 / gamma^2, gamma the 10th-percentile margin"),
        ("log_spec_init_main", 29, 1, "spectral", "spectral bound with distance from init"),
        ("log_spec_orig_main", 30, 1, "spectral", "spectral bound with fro/spec sum"),
        ("log_prod_of_spec_over_margin", 31, 1, "spectral", "log prod ||W||_2^2 / gamma^2"),
        ("log_prod_of_spec", 32, 1, "spectral", "sum log ||W||_2^2"),
        ("fro_over_spec", 33, 1, "spectral", "sum ||W||_F^2 / ||W||_2^2"),
        ("log_sum_of_spec_over_margin", 34, 1, "spectral", "log sum-of-spec over margin"),
        ("log_sum_of_spec", 35, 1, "spectral", "log d + mean log ||W||_2^2"),
        ("log_prod_of_fro_over_margin", 36, 1, "frobenius", "log prod ||W||_F^2 / gamma^2"),
        ("log_prod_of_fro", 37, 1, "frobenius", "sum log ||W||_F^2"),
        ("log_sum_of_fro_over_margin", 38, 1, "frobenius", "log sum-of-fro over margin"),
        ("log_sum_of_fro", 39, 1, "frobenius", "log d + mean log ||W||_F^2"),
        ("fro_dist", 40, 1, "distance", "sum ||W - W0||_F^2"),
        ("dist_spec_init", 41, 1, "distance", "sum ||W - W0||_2^2"),
        ("param_norm", 42, 1, "frobenius", "sum ||W||_F^2"),
        ("path_norm_over_margin", 43, 1, "path", "path-norm / gamma^2"),
        ("path_norm", 44, 1, "path", "squared parameters, all-ones input, sum of outputs"),
        ("pacbayes_init", 48, 1, "flatness", "PAC-Bayes bound around the initialization"),
        ("pacbayes_orig", 49, 1, "flatness", "PAC-Bayes bound around the origin"),
        ("sharpness_init", 50, 1, "flatness", "sharpness bound around the initialization"),
        ("sharpness_orig", 51, 1, "flatness", "sharpness bound around the origin"),
        ("sharpness_flatness", 52, 1, "flatness", "1 / alpha'^2 (worst-case box radius)"),
        ("pacbayes_flatness", 53, 1, "flatness", "1 / sigma'^2 (Gaussian noise scale)"),
        ("pacbayes_mag_init", 56, 1, "flatness", "magnitude-aware PAC-Bayes, from init"),
        ("pacbayes_mag_orig", 57, 1, "flatness", "magnitude-aware PAC-Bayes, from origin"),
        ("sharpness_mag_init", 58, 1, "flatness", "magnitude-aware sharpness, from init"),
        ("sharpness_mag_orig", 59, 1, "flatness", "magnitude-aware sharpness, from origin"),
        ("sharpness_mag_flatness", 60, 1, "flatness", "1 / alpha'^2, magnitude-aware box"),
        ("pacbayes_mag_flatness", 61, 1, "flatness", "1 / sigma'^2, magnitude-aware noise"),
        ("steps_to_ce_0_1", None, 1, "optimization", "optimizer steps to training CE 0.1"),
        ("steps_ce_0_1_to_0_01", None, 1, "optimization", "steps from training CE 0.1 to 0.01"),
        ("gradient_noise", None, 1, "optimization", "variance of mini-batch gradients at the end"),
        ("srr_measure_last", None, 1, "srr", "SRR measure sparsity + R^c - R, last layer"),
        ("srr_measure_mean", None, 1, "srr", "SRR measure sparsity + R^c - R, mean over layers"),
        ("compressed_coding_rate_last", None, 1, "srr", "R^c of the head tokens, last layer"),
        ("compressed_coding_rate_mean", None, 1, "srr", "R^c of the head tokens, layer mean"),
        ("coding_rate_last", None, -1, "srr", "R of the layer's tokens, last layer"),
        ("coding_rate_mean", None, -1, "srr", "R of the layer's tokens, layer mean"),
        ("rate_reduction_last", None, -1, "srr", "R - R^c, last layer"),
        ("rate_reduction_mean", None, -1, "srr", "R - R^c, layer mean"),
        ("sparsity_last", None, 1, "srr", "nonzeros per token of the layer output, last layer"),
        ("sparsity_mean", None, 1, "srr", "nonzeros per token of the layer output, layer mean"),
        ("hessian_top_eigenvalue", None, 1, "hessian", "top eigenvalue of the loss Hessian"),
        ("hessian_trace", None, 1, "hessian", "trace of the loss Hessian (Hutchinson)"),
        ("expected_calibration_error", None, 1, "calibration", "top-label ECE, held-out set"),
        ("spectral_alpha", None, 1, "spectrum", "mean power-law exponent of the layer ESDs"),
        ("spectral_alpha_weighted", None, 1, "spectrum", "mean alpha log10 lambda_max"),
        ("log_spectral_norm", None, 1, "spectrum", "mean log10 lambda_max of W^T W"),
        ("stable_rank", None, 1, "spectrum", "mean sum(lambda) / lambda_max of W^T W"),
    ]
    registry = {r[0]: MeasureInfo(*r) for r in rows}
    for info in list(registry.values()):
        if info.group in _SIZE_ADJUSTED_GROUPS:
            rule = "(v - log m) / 2" if info.name.startswith("log_") else "sqrt(v / m)"
            registry[info.name + ADJUSTED_SUFFIX] = dataclasses.replace(
                info,
                name=info.name + ADJUSTED_SUFFIX,
                description=f"{info.name} adjusted for the training-set size m: {rule}",
            )
    return registry


#: The size-adjusted form of a measure is named ``<name>_adj``.
ADJUSTED_SUFFIX = "_adj"
# Jiang et al.'s code adjusts every measure it computes; these are its groups.
_SIZE_ADJUSTED_GROUPS = frozenset(
    {"count", "margin", "spectral", "frobenius", "distance", "path", "flatness"}
)


def size_adjusted(name: str, value: float, m: int) -> float:
    """The size-adjusted form of measure ``name`` with value ``value`` on ``m`` training examples.

    Jiang et al.'s rule: ``(value - log m) / 2`` for a ``log_*`` measure (it is the log of a
    squared quantity, so this is the log of ``sqrt(. / m)``), ``sqrt(value / m)`` otherwise. NaN
    for a negative non-log value (its square root is not real).
    """
    if name.startswith("log_"):
        return (value - math.log(m)) / 2
    return math.sqrt(value / m) if value >= 0 else math.nan


# The registry itself: the built-in measures, then those added by register_measure.
_REGISTRY: dict[str, MeasureInfo] = _registry()
_BUILT_IN = frozenset(_REGISTRY)

#: Every measure: name -> :class:`MeasureInfo` (a read-only view; :func:`register_measure` adds
#: to it).
MEASURES: Mapping[str, MeasureInfo] = types.MappingProxyType(_REGISTRY)


@dataclasses.dataclass(frozen=True)
class MeasureContext:
    """What the function of a registered measure receives.

    Attributes
    ----------
    model : torch.nn.Module
        The trained classifier, in eval mode, on its device. Do not modify it.
    train : torch.utils.data.Dataset
        The training set, as ``(input, label)`` pairs.
    initial_model : torch.nn.Module or None
        A copy of the model holding its initial weights (None when they were not given).
    train_result : TrainResult or None
        The training record (history, milestones), when given.
    settings : MeasureSettings
        The measurement settings of the run.
    seed : int
        The run's seed: draw any randomness from it (``torch.Generator().manual_seed(seed)``).
    """

    model: nn.Module
    train: Dataset[Any]
    initial_model: nn.Module | None
    train_result: TrainResult | None
    settings: MeasureSettings
    seed: int


MeasureFunction = Callable[[MeasureContext], float]
# The functions of registered measures, by name.
_REGISTERED_FUNCTIONS: dict[str, MeasureFunction] = {}


def register_measure(
    name: str,
    fn: MeasureFunction | None = None,
    *,
    orientation: int,
    group: str = "custom",
    description: str = "",
) -> Any:
    """Add a measure: it is computed, stored, ranked and plotted like the built-in ones.

    ``fn(context)`` gets a :class:`MeasureContext` and returns a number. Used as a decorator
    when ``fn`` is omitted::

        @register_measure("weight_count", orientation=+1, description="entries of all weights")
        def weight_count(ctx):
            return sum(p.numel() for p in ctx.model.parameters())

    In a study, name the module that registers it in ``[measures] plugins``: every worker imports
    it. A measure whose function raises is NaN for that model, with a
    :class:`~genlab.errors.MeasureFailedWarning`; the study records the error and goes on.

    Parameters
    ----------
    name : str
        The measure's name: not empty, no whitespace or commas, not taken.
    fn : callable, optional
        The function (or use the decorator form).
    orientation : {+1, -1}
        +1 if by its hypothesis a larger value predicts a larger generalization gap, -1 if a
        smaller one does.
    group : str
        A group name for tables ("custom" by default).
    description : str
        One line: what it is (shown in the report).

    Returns
    -------
    The function (so that the decorator leaves it usable), or the decorator.

    Raises
    ------
    ValueError
        The name is taken or malformed, or the orientation is not +1 or -1.
    TypeError
        ``fn`` is not callable.
    """
    if not isinstance(name, str) or not name or any(c.isspace() or c == "," for c in name):
        raise ValueError(
            f"name: expected a non-empty name without whitespace or commas, got {name!r}"
        )
    if name in _REGISTRY:
        origin = "a built-in measure" if name in _BUILT_IN else "already registered"
        raise ValueError(f"name: {name!r} is {origin}; choose another name")
    if isinstance(orientation, bool) or orientation not in (1, -1):
        raise ValueError(f"orientation: expected +1 or -1, got {orientation!r}")
    if not isinstance(group, str) or not isinstance(description, str):
        raise TypeError("group, description: expected strings")

    def register(function: MeasureFunction) -> MeasureFunction:
        if not callable(function):
            raise TypeError(f"fn: expected a callable, got {type(function).__name__}")
        _REGISTRY[name] = MeasureInfo(name, None, int(orientation), group, description)
        _REGISTERED_FUNCTIONS[name] = function
        return function

    return register if fn is None else register(fn)


def unregister_measure(name: str) -> None:
    """Remove a measure added by :func:`register_measure` (built-in measures stay).

    Raises
    ------
    ValueError
        ``name`` is built in or not registered.
    """
    if name not in _REGISTERED_FUNCTIONS:
        what = "a built-in measure" if name in _BUILT_IN else "not a registered measure"
        raise ValueError(f"name: {name!r} is {what}")
    del _REGISTERED_FUNCTIONS[name]
    del _REGISTRY[name]


def load_plugins(modules: Iterable[str]) -> None:
    """Import the modules that register measures (a study's ``[measures] plugins``).

    Raises
    ------
    ImportError
        A module cannot be imported; the message names it and the cause.
    """
    import importlib

    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as exc:  # a plugin's own error at import time is an import failure too
            raise ImportError(
                f"measure plugin {module!r} cannot be imported: {type(exc).__name__}: {exc}"
            ) from exc


@dataclasses.dataclass(frozen=True)
class MeasureSettings:
    """Knobs of :func:`compute_measures` (defaults follow Jiang et al. where they set one).

    Attributes
    ----------
    margin_quantile : float
        Quantile of the training margins used as gamma (0.1).
    flatness_samples : int or None
        Training examples used by the flatness searches (the first ones of a seeded
        permutation); None uses all.
    target_drop, tolerance : float
        Accuracy deviation of the flatness searches (0.1) and its tolerance (0.01).
    search_depth : int
        Bisection steps (15).
    draws : int
        Monte Carlo draws per PAC-Bayes midpoint (10).
    ascent_steps : int
        Projected-gradient steps per sharpness midpoint.
    sigma_max, alpha_max : float
        Upper ends of the PAC-Bayes and sharpness searches.
    magnitude_eps : float
        eps of the magnitude-aware measures (1e-3).
    gradient_noise_batch_size : int
        Mini-batch size of gradient_noise, the same for every model (64).
    srr_samples : int or None
        Training examples for the SRR family; None uses all.
    srr_convention : {"crate", "output"}
        Which tokens the SRR family codes (:mod:`genlab.torch.srr`).
    srr_eps : float
        Quantization error epsilon of the coding rates (epsilon, not epsilon squared).
    srr_normalize_tokens : bool
        Normalize tokens to unit norm (within each head for R^c) before the coding rates.
    srr_sparsity_normalization : {"fraction", "token"}
        Sparsity as the fraction of nonzero entries, or as nonzero entries per token.
    batch_size : int
        Evaluation batch size.
    hessian_samples : int
        Training examples of the Hessian measures (256): the first of the flatness searches'
        seeded subset. Each Hessian-vector product costs about three gradients over them.
    hessian_iterations, hessian_tol : int, float
        Power iterations at most (20) for hessian_top_eigenvalue, and the relative change of the
        estimate between two iterations that stops it (1e-3).
    hessian_probes, hessian_trace_tol : int, float
        Rademacher probes at most (30) for hessian_trace, and the standard error relative to the
        estimate that stops it (0.1, after at least 10 probes).
    calibration_bins : int
        Equal-width confidence bins of expected_calibration_error (15).

    The four ``srr_*`` defaults are the CRATE authors' measurement script (preset "crate" of
    :data:`genlab.torch.srr.SRR_PRESETS`); :meth:`with_srr_preset` switches all four at once.
    """

    margin_quantile: float = 0.1
    flatness_samples: int | None = 512
    target_drop: float = 0.1
    tolerance: float = 0.01
    search_depth: int = 15
    draws: int = 10
    ascent_steps: int = 5
    sigma_max: float = 2.0
    alpha_max: float = 2.0
    magnitude_eps: float = 1e-3
    gradient_noise_batch_size: int = 64
    srr_samples: int | None = 512
    srr_convention: str = "crate"
    srr_eps: float = 0.1
    srr_normalize_tokens: bool = True
    srr_sparsity_normalization: str = "fraction"
    batch_size: int = 1024
    hessian_samples: int = 256
    hessian_iterations: int = 20
    hessian_tol: float = 1e-3
    hessian_probes: int = 30
    hessian_trace_tol: float = 0.1
    calibration_bins: int = 15

    def __post_init__(self) -> None:
        # Checked where they enter, so that a bad value fails before a model is trained.
        check_choice(self.srr_convention, "srr_convention", CONVENTIONS)
        check_eps(self.srr_eps, "srr_eps")
        check_bool(self.srr_normalize_tokens, "srr_normalize_tokens")
        check_choice(
            self.srr_sparsity_normalization, "srr_sparsity_normalization", SPARSITY_NORMALIZATIONS
        )
        for name in (
            "search_depth",
            "draws",
            "ascent_steps",
            "gradient_noise_batch_size",
            "batch_size",
            "hessian_samples",
            "hessian_iterations",
            "calibration_bins",
        ):
            check_int(getattr(self, name), name, minimum=1)
        check_int(self.hessian_probes, "hessian_probes", minimum=2)
        for name in ("flatness_samples", "srr_samples"):
            if getattr(self, name) is not None:
                check_int(getattr(self, name), name, minimum=1)
        for name in ("margin_quantile", "target_drop"):
            check_fraction(getattr(self, name), name)
        for name in (
            "tolerance",
            "sigma_max",
            "alpha_max",
            "magnitude_eps",
            "hessian_tol",
            "hessian_trace_tol",
        ):
            check_real(getattr(self, name), name, positive=True)
        if not self.tolerance < self.target_drop:
            raise InvalidArgumentError(
                f"tolerance: expected less than target_drop ({self.target_drop}), got "
                f"{self.tolerance}"
            )

    def srr_settings(self) -> SRRSettings:
        """The SRR measurement settings as one value."""
        return SRRSettings(
            convention=self.srr_convention,
            eps=self.srr_eps,
            normalize_tokens=self.srr_normalize_tokens,
            sparsity_normalization=self.srr_sparsity_normalization,
        )

    def with_srr_preset(self, preset: str) -> MeasureSettings:
        """A copy with the four ``srr_*`` settings of a named preset ("crate" or "output")."""
        check_choice(preset, "srr_preset", tuple(SRR_PRESETS))
        chosen = SRR_PRESETS[preset]
        return dataclasses.replace(
            self,
            srr_convention=chosen.convention,
            srr_eps=chosen.eps,
            srr_normalize_tokens=chosen.normalize_tokens,
            srr_sparsity_normalization=chosen.sparsity_normalization,
        )


_WEIGHT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_WeightLayer = nn.Linear | nn.Conv1d | nn.Conv2d | nn.Conv3d
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_BatchNorm = nn.BatchNorm1d | nn.BatchNorm2d | nn.BatchNorm3d


def _bias_of(layer: _WeightLayer) -> Tensor:
    """The layer's bias, created (zero) when it has none."""
    if layer.bias is None:
        weight = layer.weight
        layer.bias = nn.Parameter(torch.zeros(weight.shape[0], dtype=weight.dtype))
    bias: Tensor = layer.bias
    return bias


@torch.no_grad()
def _fold_batch_norm(layer: _WeightLayer, norm: _BatchNorm) -> None:
    """``norm(layer(x))`` in evaluation mode as one affine layer: weight and bias rescaled by
    ``gamma / sqrt(running_var + eps)``, the running mean and beta moved into the bias."""
    var, mean = norm.running_var, norm.running_mean
    assert var is not None, "only BatchNorms with running statistics are folded"
    assert mean is not None
    gamma = norm.weight if norm.weight is not None else torch.ones_like(var)
    beta = norm.bias if norm.bias is not None else torch.zeros_like(var)
    scale = gamma / torch.sqrt(var + norm.eps)
    bias = _bias_of(layer)
    weight = layer.weight
    weight.mul_(scale.reshape((weight.shape[0],) + (1,) * (weight.dim() - 1)))
    bias.copy_((bias - mean) * scale + beta)


@torch.no_grad()
def _normalize_scale(layer: _WeightLayer) -> None:
    """Divide weight and bias by ``||[W, b]||_F / sqrt(out_features)`` (a layer that feeds a
    LayerNorm: only its direction is a property of the function)."""
    weight, bias = layer.weight, layer.bias
    total = weight.pow(2).sum()
    if bias is not None:
        total = total + bias.pow(2).sum()
    scale = torch.sqrt(total / weight.shape[0])
    if scale > 0:
        weight.div_(scale)
        if bias is not None:
            bias.div_(scale)


@torch.no_grad()
def canonical_form(model: nn.Module) -> nn.Module:
    """A float64 copy of ``model`` in evaluation mode whose weights do not change under the
    rescalings that leave the network's function unchanged.

    1. A BatchNorm that directly follows a Linear or Conv layer among its parent's children
       (registration order, as Jiang et al.'s reference code reads it) is folded into that layer
       with its running statistics and replaced by the identity (one that keeps no running
       statistics normalizes by each batch, so it is left as it is).
    2. A Linear or Conv layer directly followed by a LayerNorm inside an ``nn.Sequential`` (where
       order is data flow) is divided by ``||[W, b]||_F / sqrt(out_features)``: LayerNorm
       removes any positive scale of its input, so only the layer's direction shapes the
       function. (Outside a Sequential, registration order need not be data flow, so no such
       rescaling is assumed.)

    Parameter names are kept (a folded layer without a bias gains one), so the canonical forms of
    a model and of its initialization pair up by name. The copy is for measuring, not running:
    rule 2 changes its outputs.
    """
    net = copy.deepcopy(model).double().eval()
    for parent in list(net.modules()):
        children = list(parent.named_children())
        for (_, before), (name, child) in itertools.pairwise(children):
            if (
                isinstance(child, _BATCH_NORMS)
                and child.track_running_stats
                and isinstance(before, _WEIGHT_LAYERS)
            ):
                _fold_batch_norm(before, child)
                setattr(parent, name, nn.Identity())
            elif (
                isinstance(parent, nn.Sequential)
                and isinstance(child, nn.LayerNorm)
                and isinstance(before, _WEIGHT_LAYERS)
            ):
                _normalize_scale(before)
    return net


def weight_tensors(model: nn.Module) -> list[tuple[str, Tensor]]:
    """The weight tensors ``W_i`` of ``model`` as ``(parameter name, 2-D view (out, -1))``.

    Weights of ``nn.Linear``, ``nn.Conv1d/2d/3d``, CRATE's :class:`~genlab.torch.models.ISTA`
    dictionaries and ``nn.MultiheadAttention``'s input projections (the packed
    ``in_proj_weight``, queries, keys and values stacked as PyTorch stores them, or the three
    separate ones; its output projection is an ``nn.Linear``), in ``named_parameters`` order,
    each once.
    """
    wanted: set[int] = set()
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, ISTA)):
            wanted.add(id(module.weight))
        elif isinstance(module, nn.MultiheadAttention):
            for name in ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight"):
                weight = getattr(module, name, None)
                if weight is not None:
                    wanted.add(id(weight))
    return [
        (name, p.detach().reshape(p.shape[0], -1))
        for name, p in model.named_parameters()
        if id(p) in wanted
    ]


def spectral_norm(matrix: Tensor) -> float:
    """Largest singular value of ``matrix`` reshaped to ``(shape[0], -1)``, in float64."""
    m = matrix.detach().reshape(matrix.shape[0], -1).double()
    return float(torch.linalg.matrix_norm(m, ord=2))


@torch.no_grad()
def margins(model: nn.Module, dataset: Dataset[Any], *, batch_size: int = 1024) -> Tensor:
    """Per-example margins ``logit[y] - max_{j != y} logit[j]`` (evaluation mode, float64, CPU)."""
    device = model_device(model)
    was_training = model.training
    model.eval()
    out = []
    for xb, yb in Batches(dataset, device).iterate(batch_size):
        out.append(_margins_of(model(xb), yb).cpu())
    model.train(was_training)
    return torch.cat(out)


def _margins_of(logits: Tensor, labels: Tensor) -> Tensor:
    """``logit[y] - max_{j != y} logit[j]`` in float64, for logits (..., classes)."""
    logits = logits.double()
    correct = logits.gather(-1, labels[..., None]).squeeze(-1)
    others = logits.scatter(-1, labels[..., None], float("-inf"))
    return correct - others.max(dim=-1).values


class _Affine(nn.Module):
    """The affine part of a LayerNorm, ``x * weight + bias`` (the normalization dropped)."""

    def __init__(self, norm: nn.LayerNorm) -> None:
        super().__init__()
        shape = norm.normalized_shape
        weight = norm.weight if norm.weight is not None else torch.ones(shape)
        bias = norm.bias if norm.bias is not None else torch.zeros(shape)
        self.weight = nn.Parameter(weight.detach().clone())
        self.bias = nn.Parameter(bias.detach().clone())

    def forward(self, x: Tensor) -> Tensor:
        return x * self.weight + self.bias


def _ista_as_linear(ista: ISTA) -> nn.Module:
    matrix, bias = ista.effective_linear()
    linear = nn.Linear(matrix.shape[1], matrix.shape[0])
    with torch.no_grad():
        linear.weight.copy_(matrix)
        linear.bias.copy_(bias)
    return nn.Sequential(linear, nn.ReLU())


def _fold_for_path_norm(net: nn.Module) -> None:
    for module in list(net.modules()):
        if isinstance(module, CRATELayer):
            module.residual_sign = 1.0
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.LayerNorm):
                setattr(module, child_name, _Affine(child))
            elif isinstance(child, ISTA):
                setattr(module, child_name, _ista_as_linear(child))


@torch.no_grad()
def path_norm(model: nn.Module, input_shape: Sequence[int]) -> float:
    """Path-norm (Jiang et al. eq. 44): square every parameter, forward an all-ones input, sum.

    On the canonical form of ``model`` (:func:`canonical_form`: float64, evaluation mode,
    BatchNorm folded, layers that feed a LayerNorm at unit scale):

    1. every ``nn.LayerNorm`` is replaced by its affine part ``x * weight + bias`` (the
       normalization cannot be folded into a fixed weight);
    2. every CRATE ISTA step is replaced by the equivalent ``relu(Linear(x))`` with weight
       ``I + eta D^T - eta D^T D`` and bias ``-eta lambda`` (:meth:`ISTA.effective_linear`), so
       its *effective* weights are squared, as for any ReLU layer;
    3. the MSSA residual sign of "crate-n" becomes +1 (the square of -1);
    4. every parameter (trainable or not, including biases, class token and positional
       embedding) is squared elementwise;
    5. the output for one all-ones input of ``input_shape`` is summed.

    For a ReLU network without normalization (the MLP and CNN here) this is exactly
    ``sum over input-output paths of the product of squared weights`` (with biases as paths from
    a constant unit). For CRATE, the softmax attention is kept as it is: its weights are
    nonnegative and sum to one, so it averages the squared-weight path sums of the tokens
    (the head scale ``dim_head^-0.5`` stays inside the softmax).
    """
    net = canonical_form(model)
    _fold_for_path_norm(net)
    net.double()  # the folded-in replacements are new float32 modules
    for p in net.parameters():
        p.copy_(p * p)
    x = torch.ones((1, *input_shape), dtype=torch.float64, device=model_device(net))
    return float(net(x).sum())


class _Context:
    """Lazily computed ingredients shared by the measures of one model."""

    def __init__(
        self,
        model: nn.Module,
        train: Dataset[Any],
        input_shape: tuple[int, ...],
        settings: MeasureSettings,
        seed: int,
        initial_state: Mapping[str, Tensor] | None,
        train_result: TrainResult | None,
        held_out: Dataset[Any] | None = None,
    ) -> None:
        self.model = model
        self.held_out = held_out
        self.train = train
        self.input_shape = input_shape
        self.settings = settings
        self.seed = seed
        self.initial_state = initial_state
        self.train_result = train_result
        self.device = model_device(model)
        self.m = len(train)  # type: ignore[arg-type]
        self._cache: dict[str, Any] = {}

    def cached(self, key: Any, fn: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = fn()
        return self._cache[key]

    def _initial_state(self) -> Mapping[str, Tensor]:
        # Only the measures that need it ask (the others are unavailable without it).
        assert self.initial_state is not None, "a measure that needs initial_state ran without it"
        return self.initial_state

    def initial_model(self) -> nn.Module:
        """A copy of the model holding its initial weights (``result.initial_state``)."""
        net = copy.deepcopy(self.model)
        try:
            net.load_state_dict(self._initial_state())
        except RuntimeError as exc:
            raise ValueError(
                "initial_state: does not fit this model; pass the initial state of this model "
                f"({str(exc).splitlines()[0]})"
            ) from None
        return net

    def canonical_weights(self, initial: bool) -> dict[str, Tensor]:
        """The weight tensors of the canonical form of the trained (or initial) model."""

        def compute() -> dict[str, Tensor]:
            source = self.initial_model() if initial else self.model
            return dict(weight_tensors(canonical_form(source)))

        weights: dict[str, Tensor] = self.cached(("canonical_weights", initial), compute)
        return weights

    def layer_spectra(self) -> tuple[LayerSpectrum, ...]:
        """Each canonical weight's ESD and power-law fit (computed once)."""
        spectra: tuple[LayerSpectrum, ...] = self.cached(
            "layer_spectra", lambda: _layer_spectra(self.canonical_weights(initial=False))
        )
        return spectra

    def srr_profile(self, settings: SRRSettings) -> SRRProfile:
        """The model's SRR profile under ``settings`` (measured once per settings)."""

        def compute() -> SRRProfile:
            return measure_srr(
                self.model,
                self.train,
                eps=settings.eps,
                normalize_tokens=settings.normalize_tokens,
                convention=settings.convention,
                sparsity_normalization=settings.sparsity_normalization,
                max_samples=self.settings.srr_samples,
                batch_size=min(self.settings.batch_size, 256),
                seed=self.seed,
            )

        profile: SRRProfile = self.cached(("srr", settings), compute)
        return profile

    def initial(self, name: str, like: Tensor) -> Tensor:
        """The initial value of parameter ``name``, checked against its current value."""
        try:
            value = self._initial_state()[name]
        except KeyError:
            raise ValueError(
                f"initial_state: has no entry {name!r}; pass the initial state of this model"
            ) from None
        if value.shape != like.shape:
            raise ValueError(
                f"initial_state: {name!r} has shape {tuple(value.shape)}, the model's has "
                f"{tuple(like.shape)}; pass the initial state of this model"
            )
        return value.to(self.device)

    @property
    def gamma(self) -> float:
        def compute() -> float:
            q = torch.quantile(
                margins(self.model, self.train, batch_size=self.settings.batch_size),
                self.settings.margin_quantile,
            )
            return float(q)

        return float(self.cached("gamma", compute))

    def gamma_if_computed(self) -> float | None:
        """gamma if some measure needed it, else None."""
        value = self._cache.get("gamma")
        return None if value is None else float(value)

    def log_gamma_sq(self) -> float:
        return 2 * math.log(self.gamma) if self.gamma > 0 else float("nan")

    def flat(self, initial: bool) -> Tensor:
        params = trainable_parameters(self.model)
        return torch.cat(
            [
                (p - self.initial(n, p) if initial else p).double().reshape(-1)
                for n, p in params.items()
            ]
        )

    def flatness_data(self) -> tuple[Tensor, Tensor]:
        def compute() -> tuple[Tensor, Tensor]:
            batches = Batches(self.train, self.device)
            xs, ys = zip(*batches.iterate(self.settings.batch_size), strict=True)
            x, y = torch.cat(xs), torch.cat(ys)
            limit = self.settings.flatness_samples
            if limit is not None and limit < len(y):
                g = torch.Generator().manual_seed(self.seed)
                keep = torch.randperm(len(y), generator=g)[:limit].to(self.device)
                x, y = x[keep], y[keep]
            return x, y

        x, y = self.cached("flatness_data", compute)
        return x, y

    def hessian_data(self) -> tuple[Tensor, Tensor]:
        """The Hessian measures' examples: the first of the flatness searches' seeded subset."""
        x, y = self.flatness_data()
        return x[: self.settings.hessian_samples], y[: self.settings.hessian_samples]


def _norm_measures(ctx: _Context) -> dict[str, float]:
    weights = ctx.canonical_weights(initial=False)
    if not weights:
        raise ValueError("model: has no weight tensors (Linear, Conv or ISTA layers)")
    d = len(weights)
    spec = torch.tensor([spectral_norm(w) ** 2 for w in weights.values()], dtype=torch.float64)
    fro = torch.tensor([float(w.pow(2).sum()) for w in weights.values()], dtype=torch.float64)
    if ctx.initial_state is not None:
        initial = ctx.canonical_weights(initial=True)
        deltas = [w - initial[n].to(w.device) for n, w in weights.items()]
        dist_fro = torch.tensor([float(x.pow(2).sum()) for x in deltas], dtype=torch.float64)
        dist_spec = torch.tensor([spectral_norm(x) ** 2 for x in deltas], dtype=torch.float64)
    else:  # the distances are unavailable (NaN, named in the caller's warning)
        dist_fro = dist_spec = torch.full((d,), math.nan, dtype=torch.float64)
    log_prod_spec = float(spec.log().sum())
    log_prod_fro = float(fro.log().sum())
    lg = ctx.log_gamma_sq()
    fro_over_spec = float((fro / spec).sum())
    return {
        # -inf when the weights are still at their initialization
        "log_spec_init_main": log_prod_spec - lg + float((dist_fro / spec).sum().log()),
        "log_spec_orig_main": log_prod_spec - lg + math.log(fro_over_spec),
        "log_prod_of_spec_over_margin": log_prod_spec - lg,
        "log_prod_of_spec": log_prod_spec,
        "fro_over_spec": fro_over_spec,
        "log_sum_of_spec_over_margin": math.log(d) + (log_prod_spec - lg) / d,
        "log_sum_of_spec": math.log(d) + log_prod_spec / d,
        "log_prod_of_fro_over_margin": log_prod_fro - lg,
        "log_prod_of_fro": log_prod_fro,
        "log_sum_of_fro_over_margin": math.log(d) + (log_prod_fro - lg) / d,
        "log_sum_of_fro": math.log(d) + log_prod_fro / d,
        "fro_dist": float(dist_fro.sum()),
        "dist_spec_init": float(dist_spec.sum()),
        "param_norm": float(fro.sum()),
    }


def _over_margin(value: float, ctx: _Context) -> float:
    return value / ctx.gamma**2 if ctx.gamma > 0 else float("nan")


def _path_measures(ctx: _Context) -> dict[str, float]:
    value = path_norm(ctx.model, ctx.input_shape)
    return {"path_norm": value, "path_norm_over_margin": _over_margin(value, ctx)}


def _margin_measures(ctx: _Context) -> dict[str, float]:
    return {"inverse_margin": _over_margin(1.0, ctx)}


def _count_measures(ctx: _Context) -> dict[str, float]:
    return {"params": float(sum(w.numel() for _, w in weight_tensors(ctx.model)))}


def _bound(norm_sq: float, scale: float, factor: float, ctx: _Context) -> float:
    return norm_sq * factor / (4 * scale**2) + math.log(ctx.m / scale) + 10


def _mag_bound(reference: Tensor, scale: float, inflation: float, ctx: _Context) -> float:
    eps_sq = ctx.settings.magnitude_eps**2
    delta = ctx.flat(initial=True)
    numerator = eps_sq + inflation * float(reference.pow(2).sum()) / len(reference)
    ratio = numerator / (eps_sq + scale**2 * delta.pow(2))
    return float(ratio.log().sum()) / 4 + math.log(ctx.m / scale) + 10


def _search_options(settings: MeasureSettings, family: str, magnitude: bool) -> dict[str, Any]:
    """The keyword arguments of a flatness search ("pacbayes" or "sharpness") but the seed."""
    s = settings
    options: dict[str, Any] = {
        "magnitude_eps": s.magnitude_eps if magnitude else None,
        "target_drop": s.target_drop,
        "tolerance": s.tolerance,
        "search_depth": s.search_depth,
        "batch_size": s.batch_size,
    }
    if family == "pacbayes":
        return {**options, "draws": s.draws, "sigma_max": s.sigma_max}
    return {**options, "ascent_steps": s.ascent_steps, "alpha_max": s.alpha_max}


# The flatness search of each family, for one model and for a stack of models.
_SEARCHES: dict[str, Callable[..., FlatnessSearch]] = {
    "pacbayes": pacbayes_sigma,
    "sharpness": sharpness_alpha,
}
_STACKED_SEARCHES: dict[str, Callable[..., list[FlatnessSearch]]] = {
    "pacbayes": pacbayes_sigma_stack,
    "sharpness": sharpness_alpha_stack,
}


def _flatness_measures(ctx: _Context, family: str, magnitude: bool) -> dict[str, float]:
    """The init/orig bounds and the flatness of one search ("pacbayes" or "sharpness")."""

    def search() -> float:
        x, y = ctx.flatness_data()
        options = _search_options(ctx.settings, family, magnitude)
        return _SEARCHES[family](ctx.model, x, y, seed=ctx.seed, **options).scale

    # The weights first: a mismatched initial state fails before the (long) search.
    w = ctx.flat(initial=False)
    dw = ctx.flat(initial=True) if ctx.initial_state is not None else None
    # measure_models fills this in for a whole stack of models at once.
    scale = float(ctx.cached(("search", family, magnitude), search))
    log_2omega = math.log(2 * len(w))
    if family == "pacbayes":
        factor, inflation = 1.0, scale**2 + 1
    else:
        factor, inflation = log_2omega, scale**2 + 4 * log_2omega
    prefix = f"{family}_mag" if magnitude else family
    # Without the initial weights, the bounds that use them are unavailable (NaN; the
    # magnitude-aware ones divide by w - w^0 even around the origin).
    init = orig = math.nan
    if magnitude and dw is not None:
        init, orig = _mag_bound(dw, scale, inflation, ctx), _mag_bound(w, scale, inflation, ctx)
    elif not magnitude:
        orig = _bound(float(w.pow(2).sum()), scale, factor, ctx)
        if dw is not None:
            init = _bound(float(dw.pow(2).sum()), scale, factor, ctx)
    return {f"{prefix}_init": init, f"{prefix}_orig": orig, f"{prefix}_flatness": 1 / scale**2}


def _flatness_group(family: str, magnitude: bool) -> Callable[[_Context], dict[str, float]]:
    return functools.partial(_flatness_measures, family=family, magnitude=magnitude)


def _optional(value: int | None) -> float:
    return float("nan") if value is None else float(value)


def _optimization_measures(ctx: _Context) -> dict[str, float]:
    r = ctx.train_result
    return {
        "steps_to_ce_0_1": math.nan if r is None else _optional(r.steps_to_ce_0_1),
        "steps_ce_0_1_to_0_01": math.nan if r is None else _optional(r.steps_ce_0_1_to_0_01),
        # measure_models fills this in for a whole stack of models at once.
        "gradient_noise": float(
            ctx.cached(
                "gradient_noise",
                lambda: gradient_noise(
                    ctx.model, ctx.train, ctx.settings.gradient_noise_batch_size
                ),
            )
        ),
    }


def _hessian_options(settings: MeasureSettings) -> tuple[dict[str, Any], dict[str, Any]]:
    """The keyword arguments of the two Hessian estimates (top eigenvalue, trace) but the seed."""
    s = settings
    top = {"max_iterations": s.hessian_iterations, "tol": s.hessian_tol, "batch_size": s.batch_size}
    trace = {
        "max_samples": s.hessian_probes,
        "min_samples": min(10, s.hessian_probes),
        "tol": s.hessian_trace_tol,
        "batch_size": s.batch_size,
    }
    return top, trace


def _hessian_measures(ctx: _Context) -> dict[str, float]:
    def estimates() -> tuple[float, float]:
        x, y = ctx.hessian_data()
        top, trace = _hessian_options(ctx.settings)
        return (
            hessian_top_eigenvalue(ctx.model, x, y, seed=ctx.seed, **top).value,
            hessian_trace(ctx.model, x, y, seed=ctx.seed, **trace).value,
        )

    # measure_models fills this in for a whole stack of models at once.
    top, trace = ctx.cached("hessian", estimates)
    return {"hessian_top_eigenvalue": top, "hessian_trace": trace}


def _calibration_measures(ctx: _Context) -> dict[str, float]:
    assert ctx.held_out is not None, "expected_calibration_error ran without held-out data"
    held_out = ctx.held_out

    def ece() -> float:
        return expected_calibration_error(
            ctx.model,
            held_out,
            bins=ctx.settings.calibration_bins,
            batch_size=ctx.settings.batch_size,
        )

    # measure_models fills this in for a whole stack of models at once.
    return {"expected_calibration_error": float(ctx.cached("calibration", ece))}


# Eigenvalues of W^T W below this fraction of the largest are rank deficiency, not spectrum.
_ZERO_EIGENVALUE = 1e-10


@dataclasses.dataclass(frozen=True)
class LayerSpectrum:
    """One weight tensor's empirical spectral density (ESD) and WeightWatcher's summaries of it.

    Attributes
    ----------
    name : str
        The weight tensor (its parameter name in the canonical form, BatchNorm folded).
    eigenvalues : ndarray
        The ESD: the eigenvalues of ``W^T W`` (squared singular values of the 2-D weight),
        descending, numerically zero ones (below 1e-10 of the largest) dropped.
    fit : PowerLawFit or None
        The power-law fit of the ESD's tail (:func:`genlab.spectrum.power_law_fit`); None when
        the ESD has fewer than two distinct values (no tail to fit).
    """

    name: str
    eigenvalues: np.ndarray
    fit: PowerLawFit | None

    @property
    def lambda_max(self) -> float:
        """The largest eigenvalue (the squared spectral norm)."""
        return float(self.eigenvalues[0])

    @property
    def alpha(self) -> float:
        """The power-law exponent of the tail; NaN without a fit."""
        return self.fit.alpha if self.fit is not None else math.nan

    @property
    def alpha_weighted(self) -> float:
        """``alpha log10 lambda_max``; NaN without a fit."""
        return self.alpha * math.log10(self.lambda_max)

    @property
    def log_spectral_norm(self) -> float:
        """``log10 lambda_max``."""
        return math.log10(self.lambda_max)

    @property
    def stable_rank(self) -> float:
        """``sum(lambda) / lambda_max``."""
        return float(self.eigenvalues.sum()) / self.lambda_max


def _layer_spectra(weights: Mapping[str, Tensor]) -> tuple[LayerSpectrum, ...]:
    """The ESD of each weight and its power-law fit, all layers fitted in one batched call."""
    spectra = {}
    for name, w in weights.items():
        eigenvalues = (torch.linalg.svdvals(w.double()) ** 2).cpu().numpy()  # descending
        spectra[name] = eigenvalues[eigenvalues > _ZERO_EIGENVALUE * eigenvalues[0]]
    # A layer with one eigenvalue, or all equal, has no tail to fit.
    fittable = [n for n, s in spectra.items() if len(s) >= 2 and s[-1] < s[0]]
    fits = dict(zip(fittable, power_law_fit_many([spectra[n] for n in fittable]), strict=True))
    return tuple(LayerSpectrum(n, s, fits.get(n)) for n, s in spectra.items())


def layer_spectra(model: nn.Module) -> tuple[LayerSpectrum, ...]:
    """Each layer's ESD and power-law fit, as the spectrum measures see them (WeightWatcher's
    per-layer view): the weights of :func:`canonical_form` (BatchNorm folded), in
    :func:`weight_tensors` order.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from genlab.torch.measures import layer_spectra
    >>> _ = torch.manual_seed(0)
    >>> layers = layer_spectra(nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)))
    >>> [(layer.name, len(layer.eigenvalues)) for layer in layers]
    [('0.weight', 32), ('2.weight', 10)]
    >>> all(layer.alpha > 1 for layer in layers)
    True
    """
    return _layer_spectra(dict(weight_tensors(canonical_form(model))))


def _spectrum_measures(ctx: _Context) -> dict[str, float]:
    """WeightWatcher's layer summaries on the canonical weights (:class:`LayerSpectrum`),
    averaged over the layers (alpha and alpha_weighted over the layers with a fit)."""
    layers = ctx.layer_spectra()
    if not layers:
        raise ValueError("model: has no weight tensors (Linear, Conv or ISTA layers)")
    fitted = [layer for layer in layers if layer.fit is not None]

    def mean(values: list[float]) -> float:
        return sum(values) / len(values) if values else math.nan

    return {
        "spectral_alpha": mean([layer.alpha for layer in fitted]),
        "spectral_alpha_weighted": mean([layer.alpha_weighted for layer in fitted]),
        "log_spectral_norm": mean([layer.log_spectral_norm for layer in layers]),
        "stable_rank": mean([layer.stable_rank for layer in layers]),
    }


def _srr_measures(ctx: _Context) -> dict[str, float]:
    return ctx.srr_profile(ctx.settings.srr_settings()).summary()


# The functions that compute the measures, keyed by what they compute; each returns every
# measure of its key at once (the norms share one pass over the weights, a flatness search gives
# its three measures). The names themselves are listed once, in the registry.
_COMPUTE: dict[str, Callable[[_Context], dict[str, float]]] = {
    "count": _count_measures,
    "margin": _margin_measures,
    "norms": _norm_measures,
    "path": _path_measures,
    "pacbayes": _flatness_group("pacbayes", magnitude=False),
    "pacbayes_mag": _flatness_group("pacbayes", magnitude=True),
    "sharpness": _flatness_group("sharpness", magnitude=False),
    "sharpness_mag": _flatness_group("sharpness", magnitude=True),
    "optimization": _optimization_measures,
    "srr": _srr_measures,
    "hessian": _hessian_measures,
    "calibration": _calibration_measures,
    "spectrum": _spectrum_measures,
}


def _computed_by(name: str) -> str:
    """The key of :data:`_COMPUTE` that computes registered measure ``name``."""
    group = MEASURES[name].group
    if group in ("spectral", "frobenius", "distance"):
        return "norms"
    if group == "flatness":
        return name.rsplit("_", 1)[0]  # pacbayes_init -> pacbayes, sharpness_mag_orig -> ...
    return group


# The measures that divide by the margin (NaN when it is not positive).
_MARGIN_DEPENDENT = frozenset(
    {"inverse_margin", "log_spec_init_main", "log_spec_orig_main", "path_norm_over_margin"}
    | {name for name in MEASURES if name.endswith("_over_margin")}
)


@dataclasses.dataclass(frozen=True)
class ModelMeasures:
    """Result of :func:`measure_model`.

    Attributes
    ----------
    values : dict of str to float
        name -> value, as :func:`compute_measures` returns it.
    srr_profiles : dict of str to SRRProfile
        The per-layer SRR profile under each requested preset of
        :data:`genlab.torch.srr.SRR_PRESETS`.
    errors : dict of str to str
        The registered measures whose function raised (their value is NaN), with the error.
    spectra : tuple of LayerSpectrum
        Each layer's ESD and power-law fit when a spectrum measure was computed (the per-layer
        values behind its mean), else empty.
    """

    values: dict[str, float]
    srr_profiles: dict[str, SRRProfile]
    errors: dict[str, str] = dataclasses.field(default_factory=dict)
    spectra: tuple[LayerSpectrum, ...] = ()


def _base_name(name: str) -> str:
    return name.removesuffix(ADJUSTED_SUFFIX) if name.endswith(ADJUSTED_SUFFIX) else name


# What a measure needs beyond the model and its training data: without it the measure is
# unavailable (NaN, named in one warning), never guessed. By base name (size-adjusted forms too).
_NEEDS_INITIAL_STATE = frozenset(
    {
        "log_spec_init_main",
        "fro_dist",
        "dist_spec_init",
        "pacbayes_init",
        "sharpness_init",
        "pacbayes_mag_init",
        "pacbayes_mag_orig",  # its denominator keeps w - w^0
        "sharpness_mag_init",
        "sharpness_mag_orig",
    }
)
_NEEDS_TRAIN_RESULT = frozenset({"steps_to_ce_0_1", "steps_ce_0_1_to_0_01"})


def _missing(name: str, ctx: _Context) -> str | None:
    """What ``ctx`` lacks for built-in measure ``name`` (None: it can be computed)."""
    base = _base_name(name)
    if base in _NEEDS_INITIAL_STATE and ctx.initial_state is None:
        return "initial_state"
    if base in _NEEDS_TRAIN_RESULT and ctx.train_result is None:
        return "train_result"
    if MEASURES[base].group == "srr" and not isinstance(ctx.model, IntermediatesModel):
        return "a genlab model (per-layer tokens)"
    if MEASURES[base].group == "calibration" and ctx.held_out is None:
        return "held-out data"
    return None


def _training_data(data: Any) -> tuple[Dataset[Any], tuple[int, ...]]:
    """The training set of ``data`` (DatasetSplit, Dataset, DataLoader or (inputs, labels)) and
    the shape of one input."""
    if isinstance(data, DatasetSplit):
        return data.train, tuple(data.input_shape)
    if isinstance(data, DataLoader):
        data = data.dataset
    elif isinstance(data, (tuple, list)):
        if len(data) != 2 or not all(isinstance(a, Tensor) for a in data):
            raise TypeError("data: a pair must be (inputs, labels) tensors")
        inputs, labels = data
        if len(inputs) != len(labels):
            raise ValueError(
                f"data: {len(inputs)} inputs but {len(labels)} labels; expected one label each"
            )
        data = TensorDataset(inputs, labels)
    if not (hasattr(data, "__getitem__") and hasattr(data, "__len__")):
        raise TypeError(
            "data: expected a DatasetSplit, a torch Dataset or DataLoader of (input, label), or a "
            f"pair of tensors, got {type(data).__name__}"
        )
    if len(data) == 0:
        raise ValueError("data: the training set is empty")
    first = data[0]
    if not (isinstance(first, (tuple, list)) and len(first) == 2 and isinstance(first[0], Tensor)):
        raise TypeError("data: each item must be an (input tensor, label) pair")
    return data, tuple(first[0].shape)


def _initial_state_of(
    model: nn.Module,
    initial_state: Mapping[str, Tensor] | None,
    train_result: TrainResult | None,
) -> Mapping[str, Tensor] | None:
    """Checks the model and what was given about its training; the initial state to use."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    if train_result is not None and not isinstance(train_result, TrainResult):
        raise TypeError(f"train_result: expected a TrainResult, got {type(train_result).__name__}")
    if initial_state is None and train_result is not None:
        initial_state = train_result.initial_state
    if initial_state is not None and not isinstance(initial_state, Mapping):
        raise TypeError(
            "initial_state: expected a state dict (model.state_dict() before training), got "
            f"{type(initial_state).__name__}"
        )
    return initial_state


def _warn_unavailable(missing: Mapping[str, str]) -> None:
    """One warning naming every unavailable measure, grouped by what it lacks."""
    if not missing:
        return
    by_need: dict[str, list[str]] = {}
    for name, why in missing.items():
        by_need.setdefault(why, []).append(name)
    warnings.warn(
        "measures unavailable (NaN): "
        + "; ".join(f"without {why}: {', '.join(names)}" for why, names in by_need.items()),
        MeasureUnavailableWarning,
        stacklevel=4,
    )


def measure_model(
    model: nn.Module,
    data: Any,
    *,
    initial_state: Mapping[str, Tensor] | None = None,
    train_result: TrainResult | None = None,
    held_out: Any = None,
    names: Iterable[str] | None = None,
    seed: int = 0,
    settings: MeasureSettings | None = None,
    srr_presets: Iterable[str] = (),
) -> ModelMeasures:
    """:func:`compute_measures`, plus the model's per-layer SRR profiles under named presets
    and, with the spectrum measures, each layer's spectrum (:class:`LayerSpectrum`).

    A profile is measured once even when the SRR family needs it too (the settings of the SRR
    family equal to a preset share its measurement). Arguments as :func:`compute_measures`;
    ``srr_presets`` names entries of :data:`genlab.torch.srr.SRR_PRESETS` ("crate", "output").
    """
    wanted = _wanted(names)
    presets = _presets(srr_presets)
    ctx = _context(model, data, initial_state, train_result, held_out, seed, settings)
    return _measure(ctx, wanted, presets)


def measure_models(
    models: Sequence[nn.Module],
    data: Sequence[Any],
    *,
    train_results: Sequence[TrainResult | None] | None = None,
    names: Iterable[str] | None = None,
    seeds: Sequence[int],
    settings: MeasureSettings | None = None,
    srr_presets: Iterable[str] = (),
) -> list[ModelMeasures]:
    """:func:`measure_model` of several models of one architecture, the flatness searches and
    the Hessian estimates of all of them run together (:func:`pacbayes_sigma_stack`,
    :func:`sharpness_alpha_stack`, :func:`~genlab.torch.hessian.hessian_top_eigenvalue_stack`,
    :func:`~genlab.torch.hessian.hessian_trace_stack`: one vmapped pass for the models still
    searching, each model with its own data, seed, bisection, noise and stopping).

    Each result is what :func:`measure_model` gives that model alone (``data[i]``,
    ``train_results[i]``, ``seeds[i]``), to float rounding of the batched kernels. The margin
    gamma (every measure over the margin), the calibration error and the gradient noise also
    come from passes over the whole stack when the models' data are of one size; the weight
    norms, path-norm, SRR family and spectra are computed model by model (milliseconds each).
    On a CPU a vmapped pass over a stack of small CRATEs was no faster than the passes model by
    model (``benches/bench_study.py``), so the study uses this on a GPU only. Models whose
    parameters differ in shape are measured one by one.

    Raises
    ------
    ValueError
        ``data``, ``train_results`` and ``seeds`` are not one per model; and as
        :func:`measure_model`.
    """
    results = [None] * len(models) if train_results is None else list(train_results)
    if not (len(models) == len(data) == len(results) == len(seeds)):
        raise ValueError(
            f"expected data, a train result and a seed per model, got {len(models)} models, "
            f"{len(data)} data, {len(results)} train results and {len(seeds)} seeds"
        )
    wanted = _wanted(names)
    presets = _presets(srr_presets)
    contexts = [
        _context(model, d, None, result, None, seed, settings)
        for model, d, result, seed in zip(models, data, results, seeds, strict=True)
    ]
    shapes = {
        tuple((n, tuple(p.shape)) for n, p in trainable_parameters(m).items()) for m in models
    }
    if len(contexts) > 1 and len(shapes) == 1:
        _measure_together(contexts, wanted)
    return [_measure(ctx, wanted, presets) for ctx in contexts]


def _measure_together(contexts: Sequence[_Context], wanted: Sequence[str]) -> None:
    """Run the flatness searches, Hessian estimates and forward passes that ``wanted`` needs for
    all ``contexts`` as one stack and put each model's result where the measures look for it."""
    groups = {_computed_by(_base_name(n)) for n in wanted if n in MEASURES}
    first = contexts[0]
    models = [ctx.model for ctx in contexts]
    seeds = [ctx.seed for ctx in contexts]
    for family in ("pacbayes", "sharpness"):
        for magnitude in (False, True):
            group = f"{family}_mag" if magnitude else family
            if group not in groups:
                continue
            data = [ctx.flatness_data() for ctx in contexts]
            found = _STACKED_SEARCHES[family](
                models,
                [x for x, _ in data],
                [y for _, y in data],
                seeds=seeds,
                **_search_options(first.settings, family, magnitude),
            )
            for ctx, search in zip(contexts, found, strict=True):
                ctx.cached(("search", family, magnitude), functools.partial(float, search.scale))
    _forward_passes_together(contexts, groups)
    if "hessian" in groups:
        data = [ctx.hessian_data() for ctx in contexts]
        xs, ys = [x for x, _ in data], [y for _, y in data]
        top, trace = _hessian_options(first.settings)
        tops = hessian_top_eigenvalue_stack(models, xs, ys, seeds=seeds, **top)
        traces = hessian_trace_stack(models, xs, ys, seeds=seeds, **trace)
        for ctx, a, b in zip(contexts, tops, traces, strict=True):
            ctx.cached("hessian", functools.partial(tuple, (a.value, b.value)))


def _whole(datasets: Sequence[Dataset[Any]], device: torch.device) -> tuple[Tensor, Tensor] | None:
    """Each dataset's examples in order, stacked ((M, n, ...), (M, n)); None when they differ
    in size or shape."""
    parts = []
    for dataset in datasets:
        xs, ys = zip(*Batches(dataset, device).iterate(4096), strict=True)
        parts.append((torch.cat(xs), torch.cat(ys)))
    if len({(tuple(x.shape), tuple(y.shape)) for x, y in parts}) > 1:
        return None
    return torch.stack([x for x, _ in parts]), torch.stack([y for _, y in parts])


@torch.no_grad()
def _stacked_logits(contexts: Sequence[_Context], x: Tensor) -> Tensor:
    """Every model's logits on its own inputs (M, n, ...), in passes of ``batch_size``."""
    forward = _Forward([ctx.model for ctx in contexts])
    rows = range(len(contexts))
    step = contexts[0].settings.batch_size
    per_model = [trainable_parameters(ctx.model) for ctx in contexts]
    params = {name: torch.stack([p[name] for p in per_model]) for name in per_model[0]}
    with evaluation_mode(*(ctx.model for ctx in contexts)):
        parts = [forward(params, x[:, i : i + step], rows) for i in range(0, x.shape[1], step)]
    return torch.cat(parts, dim=1)


def _forward_passes_together(contexts: Sequence[_Context], groups: set[str]) -> None:
    """The margin gamma, the calibration error and the gradient noise of all ``contexts`` from
    passes over the whole stack, put where the measures look for them (skipped when the models'
    data differ in size)."""
    first = contexts[0]
    s = first.settings
    needs_train = groups & {"margin", "norms", "path", "optimization"}
    train = _whole([ctx.train for ctx in contexts], first.device) if needs_train else None
    if groups & {"margin", "norms", "path"} and train is not None:
        x, y = train
        gammas = torch.quantile(
            _margins_of(_stacked_logits(contexts, x), y).cpu(), s.margin_quantile, dim=1
        )
        for ctx, gamma in zip(contexts, gammas.tolist(), strict=True):
            ctx.cached("gamma", functools.partial(float, gamma))
    if "calibration" in groups and all(ctx.held_out is not None for ctx in contexts):
        held_out = _whole([ctx.held_out for ctx in contexts], first.device)  # type: ignore[misc]
        if held_out is not None:
            x, y = held_out
            logits = _stacked_logits(contexts, x)
            for i, ctx in enumerate(contexts):
                value = expected_calibration_error_of(logits[i], y[i], bins=s.calibration_bins)
                ctx.cached("calibration", functools.partial(float, value))
    if "optimization" in groups and train is not None:
        noise = gradient_noise_stack(
            [ctx.model for ctx in contexts], *train, s.gradient_noise_batch_size
        )
        for ctx, value in zip(contexts, noise, strict=True):
            ctx.cached("gradient_noise", functools.partial(float, value))


def _wanted(names: Iterable[str] | None) -> list[str]:
    wanted = list(MEASURES) if names is None else list(names)
    unknown = [n for n in wanted if n not in MEASURES]
    if unknown:
        raise ValueError(
            f"names: unknown measure(s) {', '.join(map(repr, unknown))}; see "
            "genlab.torch.measures.MEASURES for the accepted names"
        )
    return wanted


def _presets(srr_presets: Iterable[str]) -> list[str]:
    presets = list(srr_presets)
    for preset in presets:
        check_choice(preset, "srr_presets", tuple(SRR_PRESETS))
    return presets


def _context(
    model: nn.Module,
    data: Any,
    initial_state: Mapping[str, Tensor] | None,
    train_result: TrainResult | None,
    held_out: Any,
    seed: int,
    settings: MeasureSettings | None,
) -> _Context:
    """The checked inputs of one model's measurement."""
    initial_state = _initial_state_of(model, initial_state, train_result)
    train_set, input_shape = _training_data(data)
    if held_out is None and isinstance(data, DatasetSplit):
        held_out = data.test
    elif held_out is not None:
        held_out, _ = _training_data(held_out)
    return _Context(
        model,
        train_set,
        input_shape,
        settings or MeasureSettings(),
        seed,
        initial_state,
        train_result,
        held_out,
    )


def _measure(ctx: _Context, wanted: Sequence[str], presets: Sequence[str]) -> ModelMeasures:
    """The measures ``wanted`` (and SRR profiles under ``presets``) of one model."""
    values: dict[str, float] = {}
    built_in = [n for n in wanted if n not in _REGISTERED_FUNCTIONS]
    missing = {n: why for n in built_in if (why := _missing(n, ctx)) is not None}
    for name in missing:
        values[name] = math.nan
    computable = [n for n in built_in if n not in missing]
    for key in dict.fromkeys(_computed_by(_base_name(n)) for n in computable):
        values.update(_COMPUTE[key](ctx))
    errors = _registered_measures(ctx, [n for n in wanted if n in _REGISTERED_FUNCTIONS], values)
    negative = []
    for name in computable:
        if name.endswith(ADJUSTED_SUFFIX):
            base = values[_base_name(name)]
            values[name] = size_adjusted(_base_name(name), base, ctx.m)
            if base < 0 and not name.startswith("log_"):
                negative.append(_base_name(name))
    _warn_unavailable(missing)
    if negative:
        warnings.warn(
            f"size-adjusted measures of negative values are NaN (sqrt(v / m) is not real): "
            f"{', '.join(negative)}",
            DegenerateDataWarning,
            stacklevel=3,
        )
    gamma = ctx.gamma_if_computed()
    if gamma is not None and gamma <= 0 and any(_base_name(n) in _MARGIN_DEPENDENT for n in wanted):
        warnings.warn(
            f"the margin gamma (10th-percentile training margin) is {gamma:.4g} <= 0, so the "
            "measures that divide by gamma^2 are NaN; the model does not fit its training set",
            DegenerateDataWarning,
            stacklevel=3,
        )
    spectrum_measured = any(_computed_by(_base_name(n)) == "spectrum" for n in computable)
    return ModelMeasures(
        values={n: float(values[n]) for n in wanted},
        srr_profiles={p: ctx.srr_profile(SRR_PRESETS[p]) for p in presets},
        errors=errors,
        spectra=ctx.layer_spectra() if spectrum_measured else (),
    )


def _registered_measures(
    ctx: _Context, names: Sequence[str], values: dict[str, float]
) -> dict[str, str]:
    """Compute the registered measures ``names`` into ``values``; a function that raises (or
    returns something that is not a number) gives NaN, and its error is returned by name."""
    if not names:
        return {}
    context = MeasureContext(
        model=ctx.model,
        train=ctx.train,
        initial_model=(
            ctx.cached("initial_model", ctx.initial_model)
            if ctx.initial_state is not None
            else None
        ),
        train_result=ctx.train_result,
        settings=ctx.settings,
        seed=ctx.seed,
    )
    errors: dict[str, str] = {}
    for name in names:
        try:
            values[name] = float(_REGISTERED_FUNCTIONS[name](context))
        except Exception as exc:  # the user's code: any failure is that measure's alone
            values[name] = math.nan
            errors[name] = f"{type(exc).__name__}: {exc}"
    if errors:
        warnings.warn(
            "registered measure(s) raised, their values are NaN: "
            + "; ".join(f"{n}: {e}" for n, e in errors.items()),
            MeasureFailedWarning,
            stacklevel=4,
        )
    return errors


def compute_measures(
    model: nn.Module,
    data: Any,
    *,
    initial_state: Mapping[str, Tensor] | None = None,
    train_result: TrainResult | None = None,
    held_out: Any = None,
    names: Iterable[str] | None = None,
    seed: int = 0,
    settings: MeasureSettings | None = None,
) -> dict[str, float]:
    """Compute complexity measures of a trained classifier, genlab's or anyone's.

    Parameters
    ----------
    model : torch.nn.Module
        The trained classifier: ``model(x)`` returns logits (on any device; not modified). Any
        architecture: Linear and Conv layers are its weight tensors, BatchNorms are folded into
        the layer before them and LayerNorm-fed layers normalized (:func:`canonical_form`). The
        SRR family needs a genlab model (per-layer tokens).
    data : DatasetSplit, Dataset, DataLoader or (inputs, labels)
        The data it was trained on: a :class:`~genlab.torch.data.DatasetSplit` (its training
        set), a torch ``Dataset`` or ``DataLoader`` of ``(input, label)``, or a pair of tensors.
    initial_state : mapping of str to Tensor, optional
        The model's ``state_dict()`` before training (``train_result.initial_state`` when
        omitted). Without it, the measures that compare with the initialization are unavailable.
    train_result : TrainResult, optional
        genlab's training record; the optimization milestones need it.
    held_out : Dataset, DataLoader or (inputs, labels), optional
        Data the model was not trained on, for expected_calibration_error (a DatasetSplit's test
        set when omitted).
    names : iterable of str, optional
        Measures to compute (keys of :data:`MEASURES`, size-adjusted forms included); None
        computes all. Only the groups needed run (the flatness searches are the expensive ones).
    seed : int
        Seed of the flatness searches' noise and of the example subsets.
    settings : MeasureSettings, optional
        Knobs (defaults: ``MeasureSettings()``).

    Returns
    -------
    dict of str to float
        name -> value, in the order of ``names`` (registry order when None). NaN where a measure
        is undefined (margin <= 0, a cross-entropy milestone never reached, the size-adjusted
        form of a negative value) or unavailable (what it needs was not given).

    Raises
    ------
    ValueError
        Unknown measure names, empty data, or an ``initial_state`` that does not match ``model``.
    TypeError
        ``data`` of another kind, or a ``TrainResult`` passed as ``data`` (genlab 0.1 took
        ``compute_measures(model, result, data)``: pass ``train_result=result`` now).

    Warns
    -----
    genlab.errors.MeasureUnavailableWarning
        Requested measures that need what was not given, once, naming them.
    genlab.errors.NumericalWarning
        A flatness search did not converge.
    genlab.errors.DegenerateDataWarning
        The margin is not positive; a size-adjusted form is undefined.

    Examples
    --------
    >>> from genlab.torch.data import load_dataset
    >>> from genlab.torch.models import build_model
    >>> from genlab.torch.train import TrainConfig, train
    >>> from genlab.torch.measures import compute_measures
    >>> data = load_dataset("digits")
    >>> model = build_model("mlp", num_classes=10, input_shape=data.input_shape, seed=0)
    >>> result = train(model, data, TrainConfig(optimizer="adam", lr=1e-3, epochs=2, ce_target=None))
    >>> m = compute_measures(model, data, train_result=result, names=["params", "path_norm"])
    >>> m["params"]
    25856.0
    """
    if isinstance(data, TrainResult):
        raise TypeError(
            "data: got a TrainResult; the training result is now a keyword argument: "
            "compute_measures(model, data, train_result=result)"
        )
    return measure_model(
        model,
        data,
        initial_state=initial_state,
        train_result=train_result,
        held_out=held_out,
        names=names,
        seed=seed,
        settings=settings,
    ).values
