"""Rank complexity measures against generalization.

Drop-in fast replacements and the study-level coefficients of ``docs/formulas/ranking.md``:

- :func:`kendalltau`: ``scipy.stats.kendalltau`` (same arguments, same values), plus tau-a;
- :func:`kendalltau_many`: many columns against one target in one parallel call;
- :func:`kendalltau_matrix`: ``pandas.DataFrame.corr(method="kendall")``;
- :func:`granulated_kendall`: Jiang et al.'s granulated coefficient Psi;
- :func:`kendalltau_across_groups`: tau over the pairs of runs of different configurations;
  :func:`kendalltau_across_resampled_groups` the same in many resamples of the configurations
  at once (a bootstrap);
- :func:`conditional_mutual_information`: the conditional-MI score (genlab's rule, or the PGDL
  competition's scoring program exactly);
- :func:`sign_error`: Dziugaite et al.'s robust sign-error over environments.

Replicates (several seeds of one configuration) never pair with each other in these
coefficients: a pair of runs of one configuration says nothing about how configurations are
ordered. ``replicates="pairs"`` (the default) counts only pairs of runs of different
configurations; ``replicates="average"`` averages each configuration's runs first. The formulas,
conventions and their references are in ``docs/formulas/ranking.md``.

All kernels are O(n log n) (or O(n^2) over models where the definition is pairwise) Rust code that
runs with the GIL released.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from genlab import _core
from genlab._results import TupleResult
from genlab._validation import (
    _numeric,
    as_float_array,
    check_choice,
    check_int,
    check_n_jobs,
    check_real,
    check_same_length,
    encode_hparams,
    order_preserving_float64,
    physical_memory,
)
from genlab.errors import DegenerateDataWarning

__all__ = [
    "ConditionalMIResult",
    "GranulatedKendallResult",
    "KendallTauManyResult",
    "KendallTauResult",
    "KendallWorkspace",
    "SignErrorResult",
    "SignErrorSummary",
    "conditional_mutual_information",
    "default_workspace",
    "granulated_kendall",
    "kendalltau",
    "kendalltau_across_groups",
    "kendalltau_across_resampled_groups",
    "kendalltau_many",
    "kendalltau_matrix",
    "sign_error",
]

#: Scratch memory of the large-n Kendall count, kept between calls by whoever holds it:
#: ``KendallWorkspace(max_bytes=48 MiB)``; ``.nbytes`` says what it holds, ``.release()`` frees it.
KendallWorkspace = _core.rank.KendallWorkspace

#: The workspace :func:`kendalltau` uses when given none: at n = 1e6 (48 MB of buffers) reusing
#: memory saves the page faults of fresh memory, about 14 ms of a 60 ms call on a 2-core machine.
#: ``genlab.rank.default_workspace.release()`` frees it; buffers above 48 MiB are never kept.
default_workspace = KendallWorkspace()

_VARIANTS = ("a", "b", "c")
_METHODS = ("auto", "exact", "asymptotic")
_ALTERNATIVES = ("two-sided", "less", "greater")
_NAN_POLICIES = ("propagate", "omit", "raise")
_REPLICATES = ("pairs", "average")
_CMI_CONVENTIONS = ("genlab", "pgdl")


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
    workspace: Any = None,
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
    workspace : KendallWorkspace, optional
        Scratch memory of the count above 32,768 observations, kept between calls
        (:data:`default_workspace` when None; ``KendallWorkspace(max_bytes=0)`` keeps nothing).

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
    if workspace is not None and not isinstance(workspace, KendallWorkspace):
        raise TypeError(
            f"workspace: expected a genlab.rank.KendallWorkspace, got {type(workspace).__name__}"
        )
    statistic, pvalue, n_used = _core.rank.kendalltau(
        xa,
        ya,
        variant=variant,
        method=method,
        alternative=alternative,
        nan_policy=nan_policy,
        workspace=default_workspace if workspace is None else workspace,
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
    stats, pvalues, _n_used = _core.rank.kendalltau_many(
        Xa,
        ya,
        variant=variant,
        method=method,
        alternative=alternative,
        nan_policy=nan_policy,
        n_jobs=check_n_jobs(n_jobs),
    )
    _warn_undefined_columns("kendalltau_many", np.isnan(pvalues), Xa, ya, nan_policy)
    return KendallTauManyResult(stats, pvalues)


def _warn_undefined_columns(
    function: str,
    undefined: NDArray[np.bool_],
    X: NDArray[np.float64],
    y: NDArray[np.float64],
    nan_policy: str,
    *,
    where: str = "",
) -> None:
    """A DegenerateDataWarning naming the columns whose tau is undefined (NaN). Under
    ``nan_policy="propagate"`` a column whose input holds NaN is NaN as asked, not degenerate."""
    if nan_policy == "propagate":
        undefined = undefined & ~(np.isnan(X).any(axis=0) | np.isnan(y).any())
    if undefined.any():
        cols = np.flatnonzero(undefined)
        _warn_degenerate(
            f"{function}: tau is undefined {where}for column(s) {cols.tolist()[:10]} "
            "(fewer than 2 observations, or a constant variable); returning NaN there",
            stacklevel=4,
        )


def kendalltau_matrix(
    X: ArrayLike, *, variant: str = "b", nan_policy: str = "omit", n_jobs: int | None = None
) -> NDArray[np.float64]:
    """Matrix of pairwise Kendall taus between the columns of ``X``.

    A drop-in for ``pandas.DataFrame(X).corr(method="kendall")``: pairwise-complete observations
    (``nan_policy="omit"``, pandas' behaviour), 1 on the diagonal of every column with at least one
    value, NaN where tau is undefined (with a ``DegenerateDataWarning`` naming the pairs). Each
    column is ranked once; the pairs run in parallel. On a
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

    Raises
    ------
    genlab.errors.TooLargeError
        When the m x m result (16 bytes per entry of working memory) would need more than half
        of this machine's memory; the message says how much and how to compute it in blocks.

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
    matrix: NDArray[np.float64] = _core.rank.kendalltau_matrix(
        Xa,
        variant=variant,
        nan_policy=nan_policy,
        # The output grows as m^2 from an input of n * m: refuse what would take the machine.
        memory_limit=physical_memory() / 2,
        n_jobs=check_n_jobs(n_jobs),
    )
    undefined = np.isnan(matrix)
    if nan_policy == "propagate":  # NaN where the data had NaN is what was asked for
        has_nan = np.asarray(np.isnan(Xa).any(axis=0))
        undefined &= ~(has_nan[:, None] | has_nan[None, :])
    pairs_undefined = np.argwhere(np.triu(undefined))
    if len(pairs_undefined):
        pairs = ", ".join(f"({i}, {j})" for i, j in pairs_undefined[:5].tolist())
        more = f" and {len(pairs_undefined) - 5} more" if len(pairs_undefined) > 5 else ""
        _warn_degenerate(
            f"kendalltau_matrix: tau is undefined for column pair(s) {pairs}{more} (fewer than 2 "
            "complete observations, or a constant column); returning NaN there"
        )
    return matrix


def _measure_and_gap(
    measure: ArrayLike, gap: ArrayLike, hparams: Any
) -> tuple[NDArray[np.float64], NDArray[np.float64], list[str], NDArray[np.int64]]:
    m = as_float_array(measure, "measure", ndim=1, min_size=1)
    g = as_float_array(gap, "gap", ndim=1)
    check_same_length(m, g, "measure", "gap")
    names, codes = encode_hparams(hparams, len(m))
    if len(m) > 0 and (codes == codes[0]).all():
        raise ValueError(
            f"hparams: all {len(m)} models share one configuration; the coefficients compare "
            "configurations and need at least two (seeds are not a hyperparameter axis)"
        )
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
        tau over all runs (pairs of runs of different configurations), or over the configuration
        means with ``replicates="average"``.
    cells_used, cells_skipped : dict of str to int
        Per axis, cells that entered psi_i and cells skipped (fewer than two distinct values of
        the axis, or tau undefined).
    variant : str
        Which tau was used.
    replicates : str
        How runs of one configuration entered ("pairs" or "average").
    n_models : int
        Runs used (after NaN omission).
    n_configurations : int
        Distinct configurations among them.
    """

    axis_psi: dict[str, float]
    psi: float
    tau: float
    cells_used: dict[str, int]
    cells_skipped: dict[str, int]
    variant: str
    replicates: str
    n_models: int
    n_configurations: int


def granulated_kendall(
    measure: ArrayLike,
    gap: ArrayLike,
    hparams: Mapping[str, ArrayLike] | Any,
    *,
    variant: str = "a",
    replicates: str = "pairs",
    nan_policy: str = "raise",
    n_jobs: int | None = None,
) -> GranulatedKendallResult:
    """Granulated Kendall coefficient Psi of Jiang et al. (2020).

    For each hyperparameter axis i, a *cell* is a setting of every other hyperparameter; within a
    cell only theta_i varies (plus seeds: several runs of one configuration sit in the same cell).
    psi_i is the mean over cells of tau(measure, gap) within the cell, every cell with equal weight;
    Psi is the mean of psi_i over axes. All grouping happens in one native call.

    Replicates: with ``replicates="pairs"`` tau inside a cell counts only pairs of runs whose value
    of axis i differs (a pair of seeds of one configuration says nothing about axis i); with
    ``"average"`` the measure and the gap are averaged over the runs of each configuration first.
    Either way a measure that orders every pair of runs of different configurations as the gap
    does scores psi_i = 1 on every axis, whatever the number of seeds. A cell with fewer than two
    distinct values of axis i, or where tau is undefined, is skipped and counted.

    Parameters
    ----------
    measure, gap : array_like, shape (n_models,)
        Complexity measure and generalization gap of each run.
    hparams : mapping of str to array_like, or pandas.DataFrame
        Hyperparameter values of each run, one axis per key (numbers or strings, one type per
        axis; equal values are the same setting). Do not include the seed.
    variant : {"a", "b", "c"}
        The tau inside cells. Default "a" (tau-a), as in Jiang et al.; tau-a of a constant measure
        is 0, while tau-b and tau-c are undefined (those cells are skipped). tau-c is defined over
        all pairs of n observations and so needs ``replicates="average"``.
    replicates : {"pairs", "average"}
        How runs of one configuration enter (see above).
    nan_policy : {"raise", "omit", "propagate"}
        NaN in measure or gap: ``ValueError`` naming the argument (default), drop those runs, or
        all results NaN.
    n_jobs : int, optional
        Threads.

    Returns
    -------
    GranulatedKendallResult

    Raises
    ------
    TypeError
        Non-numeric measure or gap, unhashable hyperparameter values.
    ValueError
        Lengths that differ, NaN under ``nan_policy="raise"``, an axis whose values mix types,
        a single configuration, an unknown option, tau-c with ``replicates="pairs"``.

    Examples
    --------
    >>> from genlab.rank import granulated_kendall
    >>> hp = {"lr": [0.1, 0.1, 0.01, 0.01], "width": [32, 64, 32, 64]}
    >>> res = granulated_kendall([1.0, 2.0, 3.0, 4.5], [0.1, 0.2, 0.3, 0.4], hp)
    >>> res.axis_psi, res.psi
    ({'lr': 1.0, 'width': 1.0}, 1.0)

    Two seeds per configuration, a measure that orders the configurations perfectly but its
    seeds backwards: the seed pairs do not count, so psi stays 1.

    >>> hp = {"lr": [1, 1, 2, 2]}
    >>> granulated_kendall([1.1, 1.0, 2.1, 2.0], [0.1, 0.2, 0.3, 0.4], hp).psi
    1.0
    """
    check_choice(variant, "variant", _VARIANTS)
    check_choice(replicates, "replicates", _REPLICATES)
    check_choice(nan_policy, "nan_policy", _NAN_POLICIES)
    m, g, names, codes = _measure_and_gap(measure, gap, hparams)
    out = _core.rank.granulated_kendall(
        m,
        g,
        codes,
        variant=variant,
        replicates=replicates,
        nan_policy=nan_policy,
        n_jobs=check_n_jobs(n_jobs),
    )
    undefined = [n for n, v in zip(names, out["axis_psi"], strict=True) if math.isnan(v)]
    undefined += ["overall tau"] if math.isnan(out["overall_tau"]) else []
    if undefined and not (nan_policy == "propagate" and np.isnan(np.r_[m, g]).any()):
        _warn_degenerate(
            f"granulated_kendall: undefined (NaN) for {undefined}: no cell where only that axis "
            "varies and tau is defined (the axis never varies alone, or the measure or gap is "
            "constant there for tau-b/c); Psi averages the axes that are defined"
        )
    return GranulatedKendallResult(
        axis_psi={n: float(v) for n, v in zip(names, out["axis_psi"], strict=True)},
        psi=float(out["psi"]),
        tau=float(out["overall_tau"]),
        cells_used={n: int(v) for n, v in zip(names, out["cells_used"], strict=True)},
        cells_skipped={n: int(v) for n, v in zip(names, out["cells_skipped"], strict=True)},
        variant=variant,
        replicates=replicates,
        n_models=int(out["n_used"]),
        n_configurations=int(out["n_configurations"]),
    )


def kendalltau_across_groups(
    X: ArrayLike,
    y: ArrayLike,
    groups: ArrayLike,
    *,
    variant: str = "a",
    nan_policy: str = "omit",
    n_jobs: int | None = None,
) -> NDArray[np.float64]:
    """Kendall's tau of every column of ``X`` against ``y``, counting only pairs of different groups.

    With replicate runs, ``groups`` is each run's configuration: a pair of runs of the same
    configuration then does not count, so seeds neither dilute tau toward 0 nor decide it.
    Computed in O(n log n) per column (all pairs minus the pairs within each group), in parallel
    over columns.

    Parameters
    ----------
    X : array_like, shape (n, m)
        m columns (measures) of n runs.
    y : array_like, shape (n,)
        Target (the gap).
    groups : array_like of int, shape (n,)
        Group of each run (any non-negative integers; equal ids are one group).
    variant : {"a", "b"}
        tau-a ``(C - D) / pairs`` or tau-b ``(C - D) / sqrt((pairs - T_x)(pairs - T_y))`` over the
        pairs across groups (tau-c is defined over all pairs, so not here).
    nan_policy : {"omit", "propagate", "raise"}
        NaN in a column or in ``y``: drop those runs for that column, NaN for that column, or
        ``ValueError``.
    n_jobs : int, optional
        Threads.

    Returns
    -------
    ndarray, shape (m,)
        tau per column; NaN where there is no pair across groups (or tau-b is undefined).

    Examples
    --------
    >>> import numpy as np
    >>> from genlab.rank import kendalltau_across_groups
    >>> X = np.array([[1.0], [0.0], [3.0], [2.0]])   # seeds reversed inside each group
    >>> kendalltau_across_groups(X, [0.0, 1.0, 2.0, 3.0], [0, 0, 1, 1])
    array([1.])
    """
    Xa, ya, ga = _across_inputs(X, y, groups, variant, nan_policy)
    taus: NDArray[np.float64] = _core.rank.kendalltau_across_groups(
        Xa,
        ya,
        ga,
        variant=variant,
        nan_policy=nan_policy,
        n_jobs=check_n_jobs(n_jobs),
    )
    _warn_undefined_columns("kendalltau_across_groups", np.isnan(taus), Xa, ya, nan_policy)
    return taus


def _across_inputs(
    X: ArrayLike, y: ArrayLike, groups: ArrayLike, variant: str, nan_policy: str
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]]:
    """The checked (X, y, groups) of a tau across groups."""
    check_choice(variant, "variant", ("a", "b"))
    check_choice(nan_policy, "nan_policy", _NAN_POLICIES)
    Xa = order_preserving_float64(X, "X")
    if Xa.ndim != 2:
        raise ValueError(f"X: expected a 2-D array (n_runs, n_columns), got shape {Xa.shape}")
    ya = order_preserving_float64(y, "y")
    if ya.ndim != 1:
        raise ValueError(f"y: expected a 1-D array, got shape {ya.shape}")
    check_same_length(ya, Xa, "y", "X")
    ga = _numeric(groups, "groups")
    if ga.ndim != 1 or ga.dtype.kind not in "iu":
        raise TypeError(
            f"groups: expected a 1-D array of integers, got dtype {ga.dtype} shape {ga.shape}"
        )
    check_same_length(ya, ga, "y", "groups")
    if ga.size and ga.min() < 0:
        raise ValueError(f"groups: expected non-negative ids, got {int(ga.min())}")
    return Xa, ya, np.ascontiguousarray(ga, dtype=np.int64)


def kendalltau_across_resampled_groups(
    X: ArrayLike,
    y: ArrayLike,
    groups: ArrayLike,
    counts: ArrayLike,
    *,
    variant: str = "a",
    nan_policy: str = "omit",
    n_jobs: int | None = None,
) -> NDArray[np.float64]:
    """:func:`kendalltau_across_groups` in many resamples of the groups at once (a bootstrap
    that resamples groups, such as configurations with all their seeds).

    Row b of ``counts`` says how many copies of each group resample b holds. As in
    :func:`kendalltau_across_groups`, only pairs of runs of different groups count; two copies of
    one group do not pair with each other either. The result equals ranking each resample
    written out, bit for bit, but the pairs are counted once per pair of groups and each resample
    is then a quadratic form (one matrix product for all of them): O(n^2 + B k^2) instead of
    O(B n log n). With many groups the resamples are counted one by one, whichever is cheaper.

    Parameters
    ----------
    X : array_like, shape (n, m)
        m columns (measures) of n runs.
    y : array_like, shape (n,)
        Target (the gap).
    groups : array_like of int, shape (n,)
        Group of each run, ids in ``[0, k)``.
    counts : array_like of int, shape (B, k)
        Copies of each group in each of B resamples (``>= 0``).
    variant : {"a", "b"}
        tau-a or tau-b over the pairs across groups.
    nan_policy : {"omit", "propagate", "raise"}
        NaN in a column or in ``y``: drop those runs for that column, NaN for that column, or
        ``ValueError``.
    n_jobs : int, optional
        Threads.

    Returns
    -------
    ndarray, shape (B, m)
        tau per resample and column; NaN where a resample has no pair across groups (one group
        drawn, say) or tau-b is undefined, with one ``DegenerateDataWarning`` naming the
        columns (a bootstrap expects a few such resamples: ``numpy.nanpercentile`` skips them).

    Examples
    --------
    >>> import numpy as np
    >>> from genlab.rank import kendalltau_across_resampled_groups
    >>> X = np.array([[1.0], [0.0], [3.0], [2.0], [5.0], [4.0]])
    >>> y = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    >>> # Resample 2 holds group 0 twice and group 2 once (the copies of 0 do not pair).
    >>> kendalltau_across_resampled_groups(X, y, [0, 0, 1, 1, 2, 2], [[1, 1, 1], [2, 0, 1]])
    array([[1.],
           [1.]])
    """
    Xa, ya, ga = _across_inputs(X, y, groups, variant, nan_policy)
    ca = _numeric(counts, "counts")
    if ca.ndim != 2 or ca.dtype.kind not in "iu":
        raise TypeError(
            "counts: expected a 2-D array of integers (resamples, groups), got dtype "
            f"{ca.dtype} shape {ca.shape}"
        )
    # Negative counts and group ids without a column are the core's errors (ValueError).
    taus: NDArray[np.float64] = _core.rank.kendalltau_across_resampled_groups(
        Xa,
        ya,
        ga,
        np.ascontiguousarray(ca, dtype=np.int64),
        variant=variant,
        nan_policy=nan_policy,
        n_jobs=check_n_jobs(n_jobs),
    )
    undefined = np.asarray(np.isnan(taus).any(axis=0), dtype=bool)
    _warn_undefined_columns(
        "kendalltau_across_resampled_groups",
        undefined,
        Xa,
        ya,
        nan_policy,
        where="in some resamples ",
    )
    return taus


@dataclasses.dataclass(frozen=True)
class ConditionalMIResult:
    """Result of :func:`conditional_mutual_information`.

    The score cannot see orientation: a measure that orders every pair exactly backwards scores
    as high as a perfect one. Read it beside an oriented coefficient (tau, Psi).

    Attributes
    ----------
    score : float
        The minimum over conditioning subsets S of I(V_mu; V_g | U_S) / H(V_g | U_S), in [0, 1]
        (higher is better); NaN if no subset has H(V_g | U_S) > 0.
    subset : tuple of str
        The subset attaining the minimum.
    scores : dict of tuple of str to float
        The ratio for every subset considered (NaN where H(V_g | U_S) = 0).
    mutual_information, gap_entropy : dict of tuple of str to float
        I(V_mu; V_g | U_S) and H(V_g | U_S) per subset: nats, pooled over conditions, with
        ``convention="genlab"``; bits, averaged over cells, with ``"pgdl"``.
    convention : str
        "genlab" or "pgdl".
    """

    score: float
    subset: tuple[str, ...]
    scores: dict[tuple[str, ...], float]
    mutual_information: dict[tuple[str, ...], float]
    gap_entropy: dict[tuple[str, ...], float]
    convention: str


def _subset_bound(value: int | None, name: str, default: int, convention: str) -> int:
    if value is None:
        return default
    if convention == "pgdl":
        raise ValueError(
            f'{name}: convention "pgdl" conditions on every pair of hyperparameters, as the PGDL '
            f"scoring program does; the subset size cannot be set (got {value!r})"
        )
    return check_int(value, name, minimum=0)


def conditional_mutual_information(
    measure: ArrayLike,
    gap: ArrayLike,
    hparams: Mapping[str, ArrayLike] | Any,
    *,
    convention: str = "genlab",
    replicates: str | None = None,
    max_subset_size: int | None = None,
    min_subset_size: int | None = None,
    nan_policy: str = "raise",
    n_jobs: int | None = None,
) -> ConditionalMIResult:
    """Conditional-mutual-information score of Jiang et al. (2020) and the PGDL competition.

    For ordered pairs of runs (theta, theta'): V_mu = sign(mu(theta) - mu(theta')),
    V_g = sign(g(theta) - g(theta')), and U_S holds the values of the hyperparameters in S for
    both runs. The score is

        K(mu) = min over S of I(V_mu; V_g | U_S) / H(V_g | U_S).

    Two rules (``convention``):

    - ``"genlab"`` (default): three-valued signs (sign(0) = 0); every ordered pair of runs of
      *different* configurations (``replicates="pairs"``; ``"average"`` averages each
      configuration's runs first); I and H pooled over the conditions with weights p(U_S),
      natural logarithms; every S with ``min_subset_size <= |S| <= max_subset_size`` (0 and 2 by
      default, as Jiang et al.) whose H(V_g | U_S) > 0.
    - ``"pgdl"``: the PGDL competition's scoring program exactly: every pair of distinct
      hyperparameters as S; two-valued signs (a tie counts as "not greater"); every ordered pair
      of models, a model with itself included; per cell (the values of both hyperparameters in
      both models) MI and H(V_g) in bits, the entropy with 1e-12 inside its logarithm; MI and H
      each averaged over the cells, then divided. Cells never observed are skipped (the program
      returns NaN there; a full grid has none). The two orders of a pair give the same value.

    A perfect predictor scores 1, a measure equal to a hyperparameter in some S scores 0, a
    constant measure scores 0. The score cannot see orientation: a measure that orders every pair
    exactly backwards scores 1 as well.

    Parameters
    ----------
    measure, gap : array_like, shape (n_models,)
        Complexity measure and generalization gap of each run.
    hparams : mapping of str to array_like, or pandas.DataFrame
        Hyperparameter values of each run (one type per axis; without the seed).
    convention : {"genlab", "pgdl"}
        The rule (see above).
    replicates : {"pairs", "average"}, optional
        How runs of one configuration enter. Default: "pairs" for "genlab"; for "pgdl", as the
        program does (every ordered pair), unless "average" is given.
    max_subset_size, min_subset_size : int, optional
        Bounds on ``|S|`` for "genlab" (defaults 2 and 0); "pgdl" fixes ``|S| = 2``.
    nan_policy : {"raise", "omit", "propagate"}
        NaN in measure or gap.
    n_jobs : int, optional
        Threads (subsets run in parallel).

    Returns
    -------
    ConditionalMIResult

    Raises
    ------
    ValueError
        An unknown option, a subset bound with "pgdl", ``replicates="pairs"`` with "pgdl", fewer
        than two axes with "pgdl", NaN under ``nan_policy="raise"``, a single configuration.

    Examples
    --------
    >>> from genlab.rank import conditional_mutual_information
    >>> hp = {"lr": [1, 1, 1, 2, 2, 2], "depth": [1, 2, 3, 1, 2, 3]}
    >>> gap = [0.1, 0.25, 0.3, 0.2, 0.4, 0.35]
    >>> conditional_mutual_information(gap, gap, hp, max_subset_size=1).score
    1.0
    >>> backwards = [-g for g in gap]   # orientation is invisible to the score
    >>> conditional_mutual_information(backwards, gap, hp, max_subset_size=1).score
    1.0
    """
    check_choice(convention, "convention", _CMI_CONVENTIONS)
    check_choice(nan_policy, "nan_policy", _NAN_POLICIES)
    if replicates is not None:
        check_choice(replicates, "replicates", _REPLICATES)
        if convention == "pgdl" and replicates == "pairs":
            raise ValueError(
                'replicates: convention "pgdl" counts every ordered pair of models as the PGDL '
                'program does; "pairs" does not apply (use "average", or leave it unset)'
            )
    max_size = _subset_bound(max_subset_size, "max_subset_size", 2, convention)
    min_size = _subset_bound(min_subset_size, "min_subset_size", 0, convention)
    if min_size > max_size:
        raise ValueError(
            f"min_subset_size: must be <= max_subset_size ({max_size}), got {min_size}"
        )
    m, g, names, codes = _measure_and_gap(measure, gap, hparams)
    if min_size > len(names):
        raise ValueError(
            f"min_subset_size: there are only {len(names)} hyperparameter axes, got {min_size}"
        )
    rows = _core.rank.conditional_mutual_information(
        m,
        g,
        codes,
        convention=convention,
        # The core's "pgdl" rule counts every ordered pair whatever it is told, except that
        # "average" averages each configuration's runs first.
        replicates=replicates or "pairs",
        min_subset_size=min_size,
        max_subset_size=max_size,
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
    return ConditionalMIResult(best, subset, scores, mi, entropy, convention)


@dataclasses.dataclass(frozen=True)
class SignErrorSummary:
    """Distribution of the sign-error over the kept environments (lower is better; 0.5 is
    chance): mean, 90th percentile, max, and how many environments it summarizes."""

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
        Mean, 90th percentile and max of the errors of the kept environments.
    per_axis : dict of str to SignErrorSummary
        The same over the kept environments that vary each hyperparameter.
    axis : ndarray of str
        Per environment, the hyperparameter on which its two configurations differ.
    model_a, model_b : ndarray of int
        Per environment, the index of the first run of each configuration.
    error : ndarray of float
        Per environment, the (weighted) mean sign-error; NaN where every weight is 0.
    weight : ndarray of float
        Per environment, the total weight of its pairs of runs.
    effective_sample_size : ndarray of float
        Per environment, (sum w)^2 / sum w^2 (the number of pairs of runs with uniform weights).
    kept : ndarray of bool
        Per environment, whether it entered the summaries (positive weight and effective sample
        size >= ``min_ess``).
    n_pairs : ndarray of int
        Per environment, the number of pairs of runs.
    n_kept, n_excluded : int
        Environments kept and left out.
    """

    overall: SignErrorSummary
    per_axis: dict[str, SignErrorSummary]
    axis: NDArray[np.str_]
    model_a: NDArray[np.int64]
    model_b: NDArray[np.int64]
    error: NDArray[np.float64]
    weight: NDArray[np.float64]
    effective_sample_size: NDArray[np.float64]
    kept: NDArray[np.bool_]
    n_pairs: NDArray[np.int64]
    n_kept: int
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
    min_ess: float = 12.0,
    nan_policy: str = "raise",
    n_jobs: int | None = None,
) -> SignErrorResult:
    """Robust sign-error of Dziugaite et al. (2020) over the environments of a grid.

    An environment is a pair of configurations that differ in exactly one hyperparameter (seeds
    are several runs of one configuration). For each pair of runs, one from each configuration,
    the sign-error is (1 - sign(d mu) sign(d g)) / 2 in {0, 0.5, 1}; an environment's error is the
    weighted mean over its pairs of runs. An environment is kept when its effective sample size
    (sum w)^2 / sum w^2 is at least ``min_ess`` (12 in the paper and its code): without that
    filter an environment of one noisy pair counts as much as one of sixteen confident pairs. The
    result summarizes the kept environments (mean, 90th percentile, max), overall and per
    hyperparameter: a robust measure has a small maximum, not only a small mean.

    With uniform weights the effective sample size is the number of pairs of runs, so
    ``min_ess=12`` needs at least 12 pairs per environment (4 seeds per configuration give 16).
    Each environment is counted once (the reference code lists each twice, once per order: the
    mean and max are the same, the 90th percentile can differ slightly).

    Parameters
    ----------
    measure, gap : array_like, shape (n_models,)
        Complexity measure and generalization gap of each run.
    hparams : mapping of str to array_like, or pandas.DataFrame
        Hyperparameter values of each run (one type per axis; without the seed).
    weighting : {"none", "hoeffding"}
        "hoeffding" weighs each pair of runs by (w - min_weight)_+ with
        ``w = max(0, 1 - 2 exp(-2 n (|d g| / 2)^2))^2``, the bound of Dziugaite et al. on the
        probability that the two gaps truly differ, gaps being 0-1 error rates estimated from
        ``n_samples`` points each (the test-set size).
    n_samples : float, optional
        Test-set size behind each gap; required with ``weighting="hoeffding"``.
    min_weight : float
        Weights below this are discarded (0.5 in the paper).
    min_ess : float
        Smallest effective sample size of a kept environment (12 in the paper; 0 keeps every
        environment with a positive weight).
    nan_policy : {"raise", "omit", "propagate"}
        NaN in measure or gap: ``ValueError`` naming the argument, drop those runs, or NaN errors
        for the affected environments (and NaN summaries).
    n_jobs : int, optional
        Threads.

    Returns
    -------
    SignErrorResult

    Warns
    -----
    DegenerateDataWarning
        When no environment is kept (the message says why).

    Examples
    --------
    >>> from genlab.rank import sign_error
    >>> hp = {"lr": [1, 1, 2, 2], "width": [1, 2, 1, 2]}
    >>> res = sign_error([1.0, 2.0, 3.0, 4.0], [0.1, 0.2, 0.3, 0.4], hp, min_ess=1)
    >>> res.overall.mean, res.overall.n_environments
    (0.0, 4)
    """
    check_choice(weighting, "weighting", ("none", "hoeffding"))
    check_choice(nan_policy, "nan_policy", _NAN_POLICIES)
    min_ess = check_real(min_ess, "min_ess", nonnegative=True)
    m, g, names, codes = _measure_and_gap(measure, gap, hparams)
    env = _core.rank.sign_error(
        m,
        g,
        codes,
        weighting=weighting,
        n_samples=None if n_samples is None else check_real(n_samples, "n_samples", positive=True),
        min_weight=check_real(min_weight, "min_weight"),
        min_ess=min_ess,
        nan_policy=nan_policy,
        n_jobs=check_n_jobs(n_jobs),
    )
    axis = env["axis"].astype(np.intp)
    error, weight, kept = env["error"], env["weight"], env["kept"]
    # NaN data under nan_policy="propagate" make the summaries NaN.
    propagate = nan_policy == "propagate" and bool(np.isnan(weight).any())

    def summary(mask: NDArray[np.bool_]) -> SignErrorSummary:
        if propagate and np.isnan(error[mask]).any():
            return SignErrorSummary(float("nan"), float("nan"), float("nan"), 0)
        return _summarize(error[mask & kept])

    if not propagate and len(error) and not kept.any():
        _warn_degenerate(
            f"sign_error: none of the {len(error)} environments is kept: the largest effective "
            f"sample size is {np.nanmax(env['effective_sample_size']):.3g} < min_ess={min_ess:g} "
            "(with uniform weights it is the number of pairs of runs per environment: more seeds "
            "per configuration, or a smaller min_ess)"
        )
    per_axis = {name: summary(axis == k) for k, name in enumerate(names)}
    return SignErrorResult(
        overall=summary(np.ones(len(error), dtype=bool)),
        per_axis=per_axis,
        axis=np.asarray(names, dtype=np.str_)[axis],
        model_a=env["model_a"].astype(np.int64),
        model_b=env["model_b"].astype(np.int64),
        error=error,
        weight=weight,
        effective_sample_size=env["effective_sample_size"],
        kept=kept,
        n_pairs=env["n_pairs"].astype(np.int64),
        n_kept=int(kept.sum()),
        n_excluded=int((~kept).sum()),
    )
