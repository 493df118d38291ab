"""Rank complexity measures against generalization.

Drop-in fast replacements and the study-level coefficients of ``spec/rank.md``:

- :func:`kendalltau`: ``scipy.stats.kendalltau`` (same arguments, same values), plus tau-a;
- :func:`kendalltau_many`: many columns against one target in one parallel call;
- :func:`kendalltau_matrix`: ``pandas.DataFrame.corr(method="kendall")``;
- :func:`granulated_kendall`: Jiang et al.'s granulated coefficient Psi;
- :func:`conditional_mutual_information`: the conditional-MI score (PGDL competition);
- :func:`sign_error`: Dziugaite et al.'s robust sign-error over environments.

All kernels are O(n log n) (or O(n^2) over models where the definition is pairwise) Rust code that
runs with the GIL released.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from genlab import _core
from genlab._results import TupleResult
from genlab._validation import (
    as_float_array,
    check_choice,
    check_n_jobs,
    check_same_length,
    encode_hparams,
    order_preserving_float64,
)
from genlab.errors import DegenerateDataWarning

__all__ = [
    "ConditionalMIResult",
    "GranulatedKendallResult",
    "KendallTauManyResult",
    "KendallTauResult",
    "SignErrorResult",
    "SignErrorSummary",
    "conditional_mutual_information",
    "granulated_kendall",
    "kendalltau",
    "kendalltau_many",
    "kendalltau_matrix",
    "sign_error",
]

_VARIANTS = ("a", "b", "c")
_METHODS = ("auto", "exact", "asymptotic")
_ALTERNATIVES = ("two-sided", "less", "greater")
_NAN_POLICIES = ("propagate", "omit", "raise")


@dataclasses.dataclass(frozen=True)
class KendallTauResult(TupleResult):
    """Result of :func:`kendalltau`; unpacks as ``statistic, pvalue`` like scipy's result.

    Attributes
    ----------
    statistic : float
        Kendall's tau of the requested variant.
    pvalue : float
        p-value of the test of tau = 0 against ``alternative``.
    """

    statistic: float
    pvalue: float

    @property
    def correlation(self) -> float:
        """Alias of ``statistic`` (scipy keeps it for backward compatibility)."""
        return self.statistic


@dataclasses.dataclass(frozen=True)
class KendallTauManyResult(TupleResult):
    """Result of :func:`kendalltau_many`: one statistic and p-value per column."""

    statistic: NDArray[np.float64]
    pvalue: NDArray[np.float64]


def _check_tau_options(variant: str, method: str, alternative: str, nan_policy: str) -> None:
    check_choice(variant, "variant", _VARIANTS)
    check_choice(method, "method", _METHODS)
    check_choice(alternative, "alternative", _ALTERNATIVES)
    check_choice(nan_policy, "nan_policy", _NAN_POLICIES)


def _warn_degenerate(what: str, stacklevel: int = 3) -> None:
    warnings.warn(what, DegenerateDataWarning, stacklevel=stacklevel)


def kendalltau(
    x: ArrayLike,
    y: ArrayLike,
    *,
    nan_policy: str = "propagate",
    method: str = "auto",
    variant: str = "b",
    alternative: str = "two-sided",
) -> KendallTauResult:
    """Kendall's tau, a drop-in for :func:`scipy.stats.kendalltau`.

    Same arguments and same values as scipy (statistic and p-value), computed in O(n log n) by a
    Rust kernel. ``variant="a"`` adds tau-a, (C - D) / (n (n - 1) / 2), the coefficient of Jiang et
    al. (2020); its p-value is the same test as for tau-b (the test depends on C - D only).

    Parameters
    ----------
    x, y : array_like
        Observations of the same size; flattened like scipy does. Numbers (bool, int, float);
        infinities are ordinary values.
    nan_policy : {"propagate", "omit", "raise"}
        "propagate" returns NaN, "omit" drops every pair with a NaN, "raise" raises ``ValueError``.
    method : {"auto", "exact", "asymptotic"}
        p-value method. "auto" is exact without ties for n <= 33, else asymptotic (scipy's rule).
        "exact" raises ``ValueError`` when there are ties.
    variant : {"b", "c", "a"}
        tau-b (default, scipy's), tau-c (Stuart) or tau-a.
    alternative : {"two-sided", "less", "greater"}
        Alternative hypothesis.

    Returns
    -------
    KendallTauResult
        ``statistic`` and ``pvalue``; unpacks as a tuple.

    Raises
    ------
    TypeError
        Non-numeric input.
    ValueError
        Inputs of different sizes, empty input, an unknown option, NaN with ``nan_policy="raise"``,
        ties with ``method="exact"``.

    Warns
    -----
    DegenerateDataWarning
        When fewer than two pairs remain or a variable is constant: tau is then NaN (tau-a is 0
        for a constant variable; its p-value is NaN).

    Notes
    -----
    Differences from scipy, all on input scipy cannot give a meaningful answer for: empty input
    raises ``ValueError`` (scipy returns NaN with a warning); with ``method="asymptotic"`` and n = 2
    genlab returns the limit of the variance formula where scipy raises ``ZeroDivisionError``.

    Examples
    --------
    >>> from genlab.rank import kendalltau
    >>> res = kendalltau([12, 2, 1, 12, 2], [1, 4, 7, 1, 0])
    >>> round(res.statistic, 6), round(res.pvalue, 6)
    (-0.471405, 0.282745)
    >>> tau, p = kendalltau([1, 1, 2, 3], [1, 2, 3, 4], variant="a")
    >>> round(tau, 4)
    0.8333
    """
    _check_tau_options(variant, method, alternative, nan_policy)
    xa = order_preserving_float64(x, "x", ravel=True)
    ya = order_preserving_float64(y, "y", ravel=True)
    check_same_length(xa, ya, "x", "y")
    if xa.size == 0:
        raise ValueError("x: expected at least one observation, got an empty array")
    statistic, pvalue, n_used = _core.kendall_tau(
        xa, ya, variant=variant, method=method, alternative=alternative, nan_policy=nan_policy
    )
    if np.isnan(pvalue):
        propagated = nan_policy == "propagate" and (np.isnan(xa).any() or np.isnan(ya).any())
        if not propagated:
            reason = "fewer than 2 observations" if n_used < 2 else "x or y is constant"
            _warn_degenerate(f"kendalltau is undefined: {reason}; returning NaN")
    return KendallTauResult(float(statistic), float(pvalue))


def kendalltau_many(
    X: ArrayLike,
    y: ArrayLike,
    *,
    variant: str = "b",
    method: str = "auto",
    alternative: str = "two-sided",
    nan_policy: str = "propagate",
    n_jobs: int | None = None,
) -> KendallTauManyResult:
    """Kendall's tau of every column of ``X`` against ``y``, in one parallel call.

    Equal to calling :func:`kendalltau` (and so ``scipy.stats.kendalltau``) on each column; ``y`` is
    ranked once and shared. Typical use: measures (columns) x models (rows) against the gap.

    Parameters
    ----------
    X : array_like, shape (n, m)
        m columns of n observations.
    y : array_like, shape (n,)
        Target.
    variant, method, alternative, nan_policy
        As in :func:`kendalltau`; the NaN policy applies per column.
    n_jobs : int, optional
        Threads (None: all cores or ``RAYON_NUM_THREADS``; -1: all cores).

    Returns
    -------
    KendallTauManyResult
        ``statistic`` and ``pvalue`` arrays of shape (m,).

    Examples
    --------
    >>> import numpy as np
    >>> from genlab.rank import kendalltau_many
    >>> X = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]])
    >>> kendalltau_many(X, [1, 2, 3]).statistic
    array([ 1., -1.])
    """
    _check_tau_options(variant, method, alternative, nan_policy)
    Xa = order_preserving_float64(X, "X")
    if Xa.ndim != 2:
        raise ValueError(
            f"X: expected a 2-D array (n_observations, n_columns), got shape {Xa.shape}"
        )
    ya = order_preserving_float64(y, "y")
    if ya.ndim != 1:
        raise ValueError(f"y: expected a 1-D array, got shape {ya.shape}")
    check_same_length(ya, Xa, "y", "X")
    if ya.size == 0:
        raise ValueError("y: expected at least one observation, got an empty array")
    stats, pvalues, _n_used = _core.kendall_tau_many(
        Xa,
        ya,
        variant=variant,
        method=method,
        alternative=alternative,
        nan_policy=nan_policy,
        n_jobs=check_n_jobs(n_jobs),
    )
    undefined = np.isnan(pvalues)
    if nan_policy == "propagate":
        undefined &= ~(np.isnan(Xa).any(axis=0) | np.isnan(ya).any())
    if undefined.any():
        cols = np.flatnonzero(undefined)
        _warn_degenerate(
            f"kendalltau_many: tau is undefined for column(s) {cols.tolist()[:10]} "
            "(fewer than 2 observations, or a constant variable); returning NaN there"
        )
    return KendallTauManyResult(stats, pvalues)


def kendalltau_matrix(
    X: ArrayLike, *, variant: str = "b", nan_policy: str = "omit", n_jobs: int | None = None
) -> NDArray[np.float64]:
    """Matrix of pairwise Kendall taus between the columns of ``X``.

    A drop-in for ``pandas.DataFrame(X).corr(method="kendall")``: pairwise-complete observations
    (``nan_policy="omit"``, pandas' behaviour), 1 on the diagonal of every column with at least one
    value, NaN where tau is undefined. Each column is ranked once; the pairs run in parallel. On a
    CPU with AVX-512 VPOPCNTDQ, the discordant pairs of many tie-free columns (at least 8, up to
    6000 rows) are counted all at once as a binary Gram matrix (XOR-popcounts of the columns'
    pairwise-order bits); other pairs are merge-counted one by one. Both give exact counts.

    Parameters
    ----------
    X : array_like, shape (n, m)
        m columns (variables) of n observations.
    variant : {"b", "c", "a"}
        Which tau (pandas computes tau-b).
    nan_policy : {"omit", "propagate", "raise"}
        "omit": per pair, drop observations with a NaN in either column (pandas); "propagate": NaN
        for every pair that involves a column with a NaN; "raise": ``ValueError``.
    n_jobs : int, optional
        Threads, as in :func:`kendalltau_many`.

    Returns
    -------
    ndarray, shape (m, m)
        Symmetric matrix of taus.

    Examples
    --------
    >>> import numpy as np
    >>> from genlab.rank import kendalltau_matrix
    >>> kendalltau_matrix(np.array([[1.0, 2.0, 3.0], [2.0, 1.0, 1.0], [3.0, 0.0, 2.0]]))
    array([[ 1.        , -1.        , -0.33333333],
           [-1.        ,  1.        ,  0.33333333],
           [-0.33333333,  0.33333333,  1.        ]])
    """
    check_choice(variant, "variant", _VARIANTS)
    check_choice(nan_policy, "nan_policy", _NAN_POLICIES)
    Xa = order_preserving_float64(X, "X")
    if Xa.ndim != 2:
        raise ValueError(
            f"X: expected a 2-D array (n_observations, n_columns), got shape {Xa.shape}"
        )
    if Xa.shape[1] == 0:
        raise ValueError("X: expected at least one column, got shape " + str(Xa.shape))
    matrix: NDArray[np.float64] = _core.kendall_tau_matrix(
        Xa, variant=variant, nan_policy=nan_policy, n_jobs=check_n_jobs(n_jobs)
    )
    return matrix


def _measure_and_gap(
    measure: ArrayLike, gap: ArrayLike, hparams: Any
) -> tuple[NDArray[np.float64], NDArray[np.float64], list[str], NDArray[np.int64]]:
    m = as_float_array(measure, "measure", ndim=1, min_size=1)
    g = as_float_array(gap, "gap", ndim=1)
    check_same_length(m, g, "measure", "gap")
    names, codes = encode_hparams(hparams, len(m))
    return m, g, names, codes


@dataclasses.dataclass(frozen=True)
class GranulatedKendallResult:
    """Result of :func:`granulated_kendall`.

    Attributes
    ----------
    axis_psi : dict of str to float
        psi_i per hyperparameter axis: the mean over its cells of tau within the cell (NaN when no
        cell was usable).
    psi : float
        Psi, the mean of the defined psi_i.
    tau : float
        tau over all models.
    cells_used, cells_skipped : dict of str to int
        Per axis, cells that entered psi_i and cells skipped (fewer than two models, or tau
        undefined).
    variant : str
        Which tau was used.
    n_models : int
        Models used (after NaN omission).
    """

    axis_psi: dict[str, float]
    psi: float
    tau: float
    cells_used: dict[str, int]
    cells_skipped: dict[str, int]
    variant: str
    n_models: int


def granulated_kendall(
    measure: ArrayLike,
    gap: ArrayLike,
    hparams: Mapping[str, ArrayLike] | Any,
    *,
    variant: str = "a",
    nan_policy: str = "propagate",
    n_jobs: int | None = None,
) -> GranulatedKendallResult:
    """Granulated Kendall coefficient Psi of Jiang et al. (2020).

    For each hyperparameter axis i, a *cell* is a setting of every other hyperparameter; within a
    cell only theta_i varies (plus seeds: several runs of one configuration sit in the same cell).
    psi_i is the mean over cells of tau(measure, gap) within the cell, every cell with equal weight;
    Psi is the mean of psi_i over axes. Cells with fewer than two models, or where tau is undefined,
    are skipped and counted. All grouping happens in one native call.

    Parameters
    ----------
    measure, gap : array_like, shape (n_models,)
        Complexity measure and generalization gap of each model.
    hparams : mapping of str to array_like, or pandas.DataFrame
        Hyperparameter values of each model, one axis per key (numbers or strings; equal values
        are the same setting). Do not include the seed.
    variant : {"a", "b", "c"}
        The tau inside cells. Default "a" (tau-a), as in Jiang et al.; tau-a of a constant measure
        is 0, while tau-b and tau-c are undefined (those cells are skipped).
    nan_policy : {"propagate", "omit", "raise"}
        NaN in measure or gap: all results NaN, drop those models, or ``ValueError``.
    n_jobs : int, optional
        Threads.

    Returns
    -------
    GranulatedKendallResult

    Examples
    --------
    >>> from genlab.rank import granulated_kendall
    >>> hp = {"lr": [0.1, 0.1, 0.01, 0.01], "width": [32, 64, 32, 64]}
    >>> res = granulated_kendall([1.0, 2.0, 3.0, 4.5], [0.1, 0.2, 0.3, 0.4], hp)
    >>> res.axis_psi, res.psi
    ({'lr': 1.0, 'width': 1.0}, 1.0)
    """
    check_choice(variant, "variant", _VARIANTS)
    check_choice(nan_policy, "nan_policy", _NAN_POLICIES)
    m, g, names, codes = _measure_and_gap(measure, gap, hparams)
    axis_psi, used, skipped, psi, tau, n_used = _core.granulated_kendall(
        m, g, codes, variant=variant, nan_policy=nan_policy, n_jobs=check_n_jobs(n_jobs)
    )
    return GranulatedKendallResult(
        axis_psi={n: float(v) for n, v in zip(names, axis_psi, strict=True)},
        psi=float(psi),
        tau=float(tau),
        cells_used={n: int(v) for n, v in zip(names, used, strict=True)},
        cells_skipped={n: int(v) for n, v in zip(names, skipped, strict=True)},
        variant=variant,
        n_models=int(n_used),
    )


@dataclasses.dataclass(frozen=True)
class ConditionalMIResult:
    """Result of :func:`conditional_mutual_information`.

    Attributes
    ----------
    score : float
        min over conditioning subsets S of I(V_mu; V_g | U_S) / H(V_g | U_S), in [0, 1]; higher
        is better. NaN if no subset has H(V_g | U_S) > 0.
    subset : tuple of str
        The subset attaining the minimum.
    scores : dict of tuple of str to float
        The ratio for every subset considered (NaN where H(V_g | U_S) = 0).
    mutual_information, gap_entropy : dict of tuple of str to float
        I(V_mu; V_g | U_S) and H(V_g | U_S) in nats, per subset.
    """

    score: float
    subset: tuple[str, ...]
    scores: dict[tuple[str, ...], float]
    mutual_information: dict[tuple[str, ...], float]
    gap_entropy: dict[tuple[str, ...], float]


def conditional_mutual_information(
    measure: ArrayLike,
    gap: ArrayLike,
    hparams: Mapping[str, ArrayLike] | Any,
    *,
    max_subset_size: int = 2,
    min_subset_size: int = 0,
    nan_policy: str = "propagate",
    n_jobs: int | None = None,
) -> ConditionalMIResult:
    """Conditional-mutual-information score of Jiang et al. (2020) / the PGDL competition.

    Over every ordered pair of distinct models, V_mu = sign(mu(theta) - mu(theta')) and
    V_g = sign(g(theta) - g(theta')) (three values each, sign(0) = 0), and U_S holds the values of
    the hyperparameters in S for both models. The score is

        K(mu) = min over S of I(V_mu; V_g | U_S) / H(V_g | U_S),

    over subsets with ``min_subset_size <= |S| <= max_subset_size`` whose H(V_g | U_S) > 0. A
    perfect predictor scores 1, a measure equal to a hyperparameter in some S scores 0, a constant
    measure scores 0.

    Parameters
    ----------
    measure, gap : array_like, shape (n_models,)
        Complexity measure and generalization gap of each model.
    hparams : mapping of str to array_like, or pandas.DataFrame
        Hyperparameter values of each model.
    max_subset_size : int
        Largest conditioning set (Jiang et al.: 2).
    min_subset_size : int
        Smallest conditioning set; 2 with ``max_subset_size=2`` is the competition's rule
        (|S| = 2 exactly).
    nan_policy : {"propagate", "omit", "raise"}
        NaN in measure or gap.
    n_jobs : int, optional
        Threads (subsets run in parallel).

    Returns
    -------
    ConditionalMIResult

    Examples
    --------
    >>> from genlab.rank import conditional_mutual_information
    >>> hp = {"lr": [1, 1, 1, 2, 2, 2], "depth": [1, 2, 3, 1, 2, 3]}
    >>> gap = [0.1, 0.25, 0.3, 0.2, 0.4, 0.35]
    >>> conditional_mutual_information(gap, gap, hp, max_subset_size=1).score
    1.0
    """
    check_choice(nan_policy, "nan_policy", _NAN_POLICIES)
    for value, name in ((max_subset_size, "max_subset_size"), (min_subset_size, "min_subset_size")):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name}: expected a non-negative integer, got {value!r}")
    if min_subset_size > max_subset_size:
        raise ValueError(
            f"min_subset_size: must be <= max_subset_size ({max_subset_size}), got {min_subset_size}"
        )
    m, g, names, codes = _measure_and_gap(measure, gap, hparams)
    if min_subset_size > len(names):
        raise ValueError(
            f"min_subset_size: there are only {len(names)} hyperparameter axes, got {min_subset_size}"
        )
    rows = _core.conditional_mutual_information(
        m,
        g,
        codes,
        min_subset_size=int(min_subset_size),
        max_subset_size=int(max_subset_size),
        nan_policy=nan_policy,
        n_jobs=check_n_jobs(n_jobs),
    )
    scores: dict[tuple[str, ...], float] = {}
    mi: dict[tuple[str, ...], float] = {}
    entropy: dict[tuple[str, ...], float] = {}
    for axes, info, h, score in rows:
        key = tuple(names[a] for a in axes)
        scores[key], mi[key], entropy[key] = float(score), float(info), float(h)
    defined = {k: v for k, v in scores.items() if not np.isnan(v)}
    if defined:
        subset = min(defined, key=lambda k: defined[k])
        best = defined[subset]
    else:
        subset, best = (), float("nan")
        if nan_policy != "propagate" or not (np.isnan(m).any() or np.isnan(g).any()):
            _warn_degenerate(
                "conditional_mutual_information: H(V_g | U_S) = 0 for every subset "
                "(the gap is constant or determined by the hyperparameters); returning NaN"
            )
    return ConditionalMIResult(best, subset, scores, mi, entropy)


@dataclasses.dataclass(frozen=True)
class SignErrorSummary:
    """Distribution of the sign-error over environments (lower is better; 0.5 is chance)."""

    mean: float
    p90: float
    max: float
    n_environments: int


@dataclasses.dataclass(frozen=True)
class SignErrorResult:
    """Result of :func:`sign_error`.

    Attributes
    ----------
    overall : SignErrorSummary
        Mean, 90th percentile and max of the per-environment errors.
    per_axis : dict of str to SignErrorSummary
        The same over the environments that vary each hyperparameter.
    axis : ndarray of str
        Per environment, the hyperparameter on which its two configurations differ.
    model_a, model_b : ndarray of int
        Per environment, the index of the first model of each configuration.
    error : ndarray of float
        Per environment, the (weighted) mean sign-error; NaN where every weight is 0.
    weight : ndarray of float
        Per environment, the total weight of its pairs of runs.
    n_pairs : ndarray of int
        Per environment, the number of pairs of runs.
    n_excluded : int
        Environments left out of the summaries because their total weight is 0 (possible with
        Hoeffding weighting).
    """

    overall: SignErrorSummary
    per_axis: dict[str, SignErrorSummary]
    axis: NDArray[np.str_]
    model_a: NDArray[np.int64]
    model_b: NDArray[np.int64]
    error: NDArray[np.float64]
    weight: NDArray[np.float64]
    n_pairs: NDArray[np.int64]
    n_excluded: int


def _summarize(errors: NDArray[np.float64]) -> SignErrorSummary:
    if errors.size == 0:
        return SignErrorSummary(float("nan"), float("nan"), float("nan"), 0)
    return SignErrorSummary(
        float(errors.mean()),
        float(np.percentile(errors, 90)),
        float(errors.max()),
        int(errors.size),
    )


def sign_error(
    measure: ArrayLike,
    gap: ArrayLike,
    hparams: Mapping[str, ArrayLike] | Any,
    *,
    weighting: str = "none",
    n_samples: float | None = None,
    min_weight: float = 0.5,
    nan_policy: str = "propagate",
    n_jobs: int | None = None,
) -> SignErrorResult:
    """Robust sign-error of Dziugaite et al. (2020) over the environments of a grid.

    An environment is a pair of configurations that differ in exactly one hyperparameter (seeds
    are several runs of one configuration). For each pair of runs, one from each configuration, the
    sign-error is (1 - sign(d mu) sign(d g)) / 2 in {0, 0.5, 1}; an environment's error is the
    (weighted) mean over its pairs of runs. The result summarizes the distribution over
    environments (mean, 90th percentile, max), overall and per hyperparameter: a robust measure has
    a small maximum, not only a small mean.

    Parameters
    ----------
    measure, gap : array_like, shape (n_models,)
        Complexity measure and generalization gap of each run.
    hparams : mapping of str to array_like, or pandas.DataFrame
        Hyperparameter values of each run (without the seed).
    weighting : {"none", "hoeffding"}
        "hoeffding" weighs each pair of runs by (w - min_weight)_+ with
        w = max(0, 1 - 2 exp(-2 n (|d g| / 2)^2))^2, the bound of Dziugaite et al. on the probability
        that the two gaps truly differ, gaps being error rates estimated from ``n_samples`` points.
    n_samples : float, optional
        Test-set size behind each gap; required with ``weighting="hoeffding"``.
    min_weight : float
        Weights below this are discarded (0.5 in the paper).
    nan_policy : {"propagate", "omit", "raise"}
        NaN in measure or gap: NaN errors for the affected environments, drop those runs, or raise.
    n_jobs : int, optional
        Threads.

    Returns
    -------
    SignErrorResult

    Examples
    --------
    >>> from genlab.rank import sign_error
    >>> hp = {"lr": [1, 1, 2, 2], "width": [1, 2, 1, 2]}
    >>> res = sign_error([1.0, 2.0, 3.0, 4.0], [0.1, 0.2, 0.3, 0.4], hp)
    >>> res.overall.mean, res.overall.n_environments
    (0.0, 4)
    """
    check_choice(weighting, "weighting", ("none", "hoeffding"))
    check_choice(nan_policy, "nan_policy", _NAN_POLICIES)
    m, g, names, codes = _measure_and_gap(measure, gap, hparams)
    axis, a, b, error, weight, n_pairs = _core.sign_error_environments(
        m,
        g,
        codes,
        weighting=weighting,
        n_samples=None if n_samples is None else float(n_samples),
        min_weight=float(min_weight),
        nan_policy=nan_policy,
        n_jobs=check_n_jobs(n_jobs),
    )
    axis_names = np.asarray(names, dtype=np.str_)[axis.astype(np.intp)]
    # Environments with zero total weight carry no information and are left out; NaN data
    # (nan_policy="propagate") make the summaries NaN.
    zero_weight = weight == 0
    propagate = nan_policy == "propagate" and bool(np.isnan(weight).any())

    def summary(mask: NDArray[np.bool_]) -> SignErrorSummary:
        if propagate and np.isnan(error[mask]).any():
            return SignErrorSummary(float("nan"), float("nan"), float("nan"), int(mask.sum()))
        return _summarize(error[mask & ~zero_weight])

    everything = np.ones(len(error), dtype=bool)
    per_axis = {name: summary(axis == k) for k, name in enumerate(names)}
    return SignErrorResult(
        overall=summary(everything),
        per_axis=per_axis,
        axis=axis_names,
        model_a=a.astype(np.int64),
        model_b=b.astype(np.int64),
        error=error,
        weight=weight,
        n_pairs=n_pairs.astype(np.int64),
        n_excluded=int(zero_weight.sum()),
    )
