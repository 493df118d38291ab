"""Rank every stored measure against the generalization gap with :mod:`genlab.rank`.

For each measure: tau over all runs with a 95% bootstrap interval, psi per hyperparameter axis
and Psi (granulated Kendall), the conditional-MI score and the robust sign-error summary; for the
table, the stability of the ranking across two halves of the seeds. One tau variant for the whole
table (tau-a by default, Jiang et al.'s), named in the column headers.

How seeds enter (``RankingConfig.replicates``): with "pairs" (the default) a pair of runs of one
configuration never counts, in tau, psi and CMI alike; with "average" each configuration's runs
are averaged first. The bootstrap resamples configurations (with all their runs), not runs, so
that replicates stay together. The sign-error is Dziugaite et al.'s: environments below an
effective sample size of ``min_ess`` are dropped, and with the 0-1 error gap each pair of runs is
weighted by Hoeffding's bound for the test-set size the runs record. The formulas and their
references: ``docs/formulas/ranking.md``.

Beside the correlations, each measure gets the two numbers of model selection: used to choose
a model (the one it predicts to have the smallest gap, once per seed among that seed's models),
the regret (the chosen model's gap minus the smallest gap there) and the top-k hit rate (how
often the chosen model is among the ``select_top`` fraction with the smallest gaps).

Measures are oriented so that larger means "predicts a larger gap" before anything is computed.
The statistics work on :class:`RankingData`, one row per model: :func:`rank_measures` builds it
from a study's records, :func:`genlab.study.tables.rank_table` from any results table.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from genlab import rank
from genlab._validation import codes_in_order_of_appearance
from genlab.errors import DegenerateDataWarning
from genlab.study.config import RankingConfig
from genlab.study.store import RunRecord

__all__ = [
    "MeasureRanking",
    "RankingData",
    "RankingStability",
    "RankingTable",
    "rank_data",
    "rank_measures",
    "ranking_data",
]


@dataclasses.dataclass(frozen=True)
class MeasureRanking:
    """How well one measure predicts the gap.

    ``tau`` and the ``psi`` values use the table's tau variant (``RankingTable.tau_variant``);
    ``cmi`` cannot see orientation; the sign-error summarizes the ``sign_error_environments``
    environments that were kept. ``regret`` and ``top_k_hit_rate`` are the selection metrics
    (module docstring), averaged over the table's ``selection_tasks``.
    """

    name: str
    orientation: int
    tau: float
    tau_ci: tuple[float, float]
    axis_psi: Mapping[str, float]
    psi: float
    cmi: float
    sign_error_mean: float
    sign_error_p90: float
    sign_error_max: float
    sign_error_environments: int
    regret: float
    top_k_hit_rate: float
    n_models: int


@dataclasses.dataclass(frozen=True)
class RankingStability:
    """The ranking on two halves of the seeds, and how much the two agree.

    ``tau`` is Kendall's tau-b between the two halves' Psi over the measures defined on both: near
    1, the table's order is not an accident of the seeds; near 0, it is noise.
    """

    seeds: tuple[tuple[int, ...], tuple[int, ...]]
    psi: Mapping[str, tuple[float, float]]
    tau: float
    n_measures: int


@dataclasses.dataclass(frozen=True)
class RankingTable:
    """Measures ranked by Psi (best first), with what they were ranked on and how.

    ``assumed_orientation`` names the measures that had no orientation of their own and were
    taken as +1 (larger predicts a larger gap): only :func:`genlab.study.tables.rank_table` does
    that, for measures it cannot know.
    """

    rows: tuple[MeasureRanking, ...]
    gap: str
    axes: tuple[str, ...]
    n_models: int
    n_excluded: int
    n_configurations: int
    tau_variant: str
    replicates: str
    cmi_convention: str
    sign_error_weighting: str
    min_ess: float
    bootstrap: int
    stability: RankingStability | None
    select_top: float = 0.1
    selection_tasks: int = 0
    excluded_reason: str = "did not reach the training cross-entropy target"
    assumed_orientation: tuple[str, ...] = ()


def gap_of(record: RunRecord, gap: str) -> float:
    """The generalization gap of a run: "loss" (cross-entropy) or "error" (0-1)."""
    return record.loss_gap if gap == "loss" else record.error_gap


@dataclasses.dataclass(frozen=True)
class RankingData:
    """What a ranking is computed from, one row per model.

    Attributes
    ----------
    names : tuple of str
        The measures (columns of ``values``).
    values : ndarray, shape (n_models, n_measures)
        Each model's measure values as measured (not oriented); NaN where undefined.
    gap : ndarray, shape (n_models,)
        Each model's generalization gap.
    gap_name : str
        What the gap is ("loss", "error", or a table's column name).
    hparams : mapping of str to ndarray of str
        Each hyperparameter axis's value per model, as text (equal text: equal value).
    seeds : ndarray of int, optional
        Each model's seed (replicate index); None when unknown (no stability, one selection
        task).
    n_test : int, optional
        The test-set size behind 0-1 error gaps: sign-error environments are then weighted by
        Hoeffding's bound.
    n_excluded : int
        Models left out before ranking, and ``excluded_reason`` why.
    """

    names: tuple[str, ...]
    values: NDArray[np.float64]
    gap: NDArray[np.float64]
    gap_name: str
    hparams: Mapping[str, NDArray[np.str_]]
    seeds: NDArray[np.int64] | None = None
    n_test: int | None = None
    n_excluded: int = 0
    excluded_reason: str = "did not reach the training cross-entropy target"


def ranking_data(
    records: Sequence[RunRecord], *, gap: str, exclude_nonconverged: bool
) -> RankingData:
    """A study's finished runs as :class:`RankingData` (in run-id order, so that the bootstrap and
    so the intervals do not depend on the order in which parallel jobs finished)."""
    used = sorted(
        (r for r in records if r.converged or not exclude_nonconverged), key=lambda r: r.run_id
    )
    names = tuple(sorted({name for r in used for name in r.measures}))
    axes = sorted({a for r in used for a in r.hparams})
    values = np.array(
        [[r.measures.get(n, math.nan) for n in names] for r in used], dtype=float
    ).reshape(len(used), len(names))
    return RankingData(
        names=names,
        values=values,
        gap=np.array([gap_of(r, gap) for r in used], dtype=float),
        gap_name=gap,
        hparams={a: np.array([str(r.hparams.get(a)) for r in used]) for a in axes},
        seeds=np.array([r.seed for r in used], dtype=np.int64),
        n_test=_test_size(used) if gap == "error" else None,
        n_excluded=len(records) - len(used),
    )


def _registry_orientation() -> dict[str, int]:
    """The orientation of every measure genlab's registry knows; none without torch (the
    registry lives in the PyTorch layer), so that a results table ranks without it."""
    try:
        from genlab.torch.measures import MEASURES
    except ImportError:
        return {}
    return {name: int(info.orientation) for name, info in MEASURES.items()}


def _orientations(
    names: Sequence[str], orientation: Mapping[str, int] | None, default: int | None
) -> tuple[dict[str, int], tuple[str, ...]]:
    """Each measure's sign (the caller's mapping first, then the measure registry, then
    ``default``), and the measures that took the default."""
    signs = _registry_orientation()
    signs.update(orientation or {})
    unknown = [n for n in names if n not in signs]
    if unknown and default is not None:
        signs.update(dict.fromkeys(unknown, default))
        assumed, unknown = tuple(unknown), []
    else:
        assumed = ()
    if unknown:
        raise ValueError(
            f"orientation: no orientation for measure(s) {', '.join(map(repr, unknown))}: they "
            "are not in genlab.torch.measures.MEASURES; pass orientation={name: +1 or -1} "
            "(+1: larger predicts a larger gap)"
        )
    bad = {n: signs[n] for n in names if signs[n] not in (1, -1)}
    if bad:
        raise ValueError(f"orientation: expected +1 or -1 per measure, got {bad}")
    return {n: signs[n] for n in names}, assumed


def _configuration_ids(hparams: Mapping[str, NDArray[Any]], n: int) -> NDArray[np.int64]:
    """Each model's configuration, numbered in the sorted order of the configurations' values
    as text (the bootstrap draws configurations by these numbers)."""
    if not hparams:
        return np.zeros(n, dtype=np.int64)
    rows = zip(*hparams.values(), strict=True)
    keys = np.array(["\x1f".join(map(str, row)) for row in rows])
    _, ids = np.unique(keys, return_inverse=True)
    return ids.astype(np.int64)


def _configuration_means(
    X: NDArray[np.float64], gap: NDArray[np.float64], config: NDArray[np.int64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-configuration means of every column (NaN runs left out) and of the gap."""
    k = int(config.max()) + 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a configuration with only NaN
        means = np.array([np.nanmean(X[config == c], axis=0) for c in range(k)])
    gaps = np.array([gap[config == c].mean() for c in range(k)])
    return means.reshape(k, X.shape[1]), gaps


def _bootstrap_ci(
    X: NDArray[np.float64],
    gap: NDArray[np.float64],
    config: NDArray[np.int64],
    *,
    resamples: int,
    variant: str,
    rng: np.random.Generator,
) -> NDArray[np.float64]:
    """2.5% and 97.5% percentiles of tau per column over configurations resampled with
    replacement. Runs keep their configuration as group, so two drawn copies of one
    configuration never pair with each other either (they would add tied pairs). All resamples
    are ranked in one call (:func:`genlab.rank.kendalltau_across_resampled_groups`)."""
    k = int(config.max()) + 1 if len(config) else 0
    if resamples == 0 or k < 3:
        return np.full((X.shape[1], 2), math.nan)
    # One draw of k configurations per resample, in this order: the intervals of a given seed
    # stay what they were when each resample was ranked on its own.
    drawn = np.stack([rng.integers(0, k, k) for _ in range(resamples)])
    offsets = (np.arange(resamples) * k)[:, None]
    copies = np.bincount((drawn + offsets).ravel(), minlength=resamples * k)
    with warnings.catch_warnings():
        # A resample can leave a column constant: its tau is NaN there, and nanpercentile skips it.
        warnings.simplefilter("ignore", DegenerateDataWarning)
        taus = rank.kendalltau_across_resampled_groups(
            X, gap, config, copies.reshape(resamples, k), variant=variant
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        bounds: NDArray[np.float64] = np.nanpercentile(taus, [2.5, 97.5], axis=0).T
    return bounds


def _test_size(records: Sequence[RunRecord]) -> int | None:
    """The test-set size behind the error gaps (the smallest, if runs differ: conservative)."""
    sizes = [r.n_test for r in records if r.n_test]
    return min(sizes) if len(sizes) == len(records) and sizes else None


def _psi_only(
    X: NDArray[np.float64],
    gap: NDArray[np.float64],
    hparams: Mapping[str, NDArray[np.int64]],
    config: RankingConfig,
) -> NDArray[np.float64]:
    psis = np.full(X.shape[1], math.nan)
    if len(set(_configuration_ids(hparams, len(gap)).tolist())) < 2:
        return psis
    for j in range(X.shape[1]):
        psis[j] = rank.granulated_kendall(
            X[:, j],
            gap,
            hparams,
            variant=config.tau,
            replicates=config.replicates,
            nan_policy="omit",
        ).psi
    return psis


def _stability(
    X: NDArray[np.float64],
    gap: NDArray[np.float64],
    hparams: Mapping[str, NDArray[np.int64]],
    seeds: NDArray[np.int64],
    names: Sequence[str],
    config: RankingConfig,
) -> RankingStability | None:
    """Psi on the first and the second half of the seeds (sorted), and their agreement."""
    distinct = sorted(set(seeds.tolist()))
    if len(distinct) < 2:
        return None
    half = len(distinct) // 2
    split = (tuple(distinct[:half]), tuple(distinct[half:]))
    per_half = []
    for part in split:
        rows = np.isin(seeds, part)
        per_half.append(
            _psi_only(X[rows], gap[rows], {a: v[rows] for a, v in hparams.items()}, config)
        )
    a, b = per_half
    both = ~(np.isnan(a) | np.isnan(b))
    tau = math.nan
    if both.sum() >= 2:
        tau = rank.kendalltau(a[both], b[both]).statistic
    return RankingStability(
        seeds=split,
        psi={n: (float(a[j]), float(b[j])) for j, n in enumerate(names)},
        tau=float(tau),
        n_measures=int(both.sum()),
    )


def _selection(
    m: NDArray[np.float64], gap: NDArray[np.float64], tasks: NDArray[np.int64], top: float
) -> tuple[float, float]:
    """Mean regret and top-k hit rate of choosing, in each task, the model with the smallest
    oriented measure value (the one it predicts to generalize best).

    The best gap and the top-k are taken over all the task's models, so a measure undefined on
    the best model does not get to ignore it. Models tied at the smallest value share the choice
    (the expected outcome of breaking the tie at random). NaN when no task has a value.
    """
    regrets: list[float] = []
    hits: list[float] = []
    for task in np.unique(tasks):
        rows = tasks == task
        mt, gt = m[rows], gap[rows]
        defined = ~np.isnan(mt)
        if not defined.any():
            continue
        k = max(1, math.ceil(top * len(gt)))
        kth_smallest = np.sort(gt)[k - 1]
        chosen = defined & (mt == mt[defined].min())
        regrets.append(float(np.mean(gt[chosen] - gt.min())))
        hits.append(float(np.mean(gt[chosen] <= kth_smallest)))
    if not regrets:
        return math.nan, math.nan
    return float(np.mean(regrets)), float(np.mean(hits))


def rank_measures(
    records: Sequence[RunRecord],
    *,
    config: RankingConfig,
    orientation: Mapping[str, int] | None = None,
    exclude_nonconverged: bool | None = None,
) -> RankingTable:
    """Rank every measure found in ``records`` against the gap.

    Parameters
    ----------
    records : sequence of RunRecord
        Finished runs (``Store.records()``).
    config : RankingConfig
        Gap definition, tau variant, replicate rule, CMI convention, ``min_ess``, bootstrap size,
        seed, ``select_top``.
    orientation : mapping of str to int, optional
        +1 if a larger value of the measure should predict a larger gap, -1 if smaller. Measures
        not listed take their orientation from ``genlab.torch.measures.MEASURES``; a measure in
        neither is an error (a wrong sign would silently reverse its ranking).
    exclude_nonconverged : bool, optional
        Overrides ``config.exclude_nonconverged``.

    Raises
    ------
    ValueError
        Fewer than two models to rank, or a measure without an orientation.
    """
    exclude = config.exclude_nonconverged if exclude_nonconverged is None else exclude_nonconverged
    data = ranking_data(records, gap=config.gap, exclude_nonconverged=exclude)
    if len(data.gap) < 2:
        hint = (
            f" ({data.n_excluded} more did not converge: try --include-nonconverged)"
            if data.n_excluded
            else ""
        )
        raise ValueError(f"need at least 2 finished models to rank, have {len(data.gap)}{hint}")
    return rank_data(data, config=config, orientation=orientation)


def rank_data(
    data: RankingData,
    *,
    config: RankingConfig,
    orientation: Mapping[str, int] | None = None,
    default_orientation: int | None = None,
) -> RankingTable:
    """Rank every measure of ``data`` against its gap (the statistics of :func:`rank_measures`).

    ``config.gap`` and ``config.exclude_nonconverged`` are not used here: ``data`` already holds
    the gap and the models to rank. A measure with no orientation (neither in ``orientation``
    nor in the measure registry) takes ``default_orientation``, or is an error when that is None.

    Raises
    ------
    ValueError
        Fewer than two models to rank, or a measure without an orientation.
    """
    n = len(data.gap)
    if n < 2:
        raise ValueError(f"need at least 2 models to rank, have {n}")
    names = list(data.names)
    signs, assumed = _orientations(names, orientation, default_orientation)
    axes = tuple(sorted(data.hparams))
    # Integer codes once, rather than text that every statistic below would encode again.
    gap, hparams = data.gap, {a: codes_in_order_of_appearance(data.hparams[a]) for a in axes}
    config_ids = _configuration_ids({a: data.hparams[a] for a in axes}, n)
    n_configurations = len(set(config_ids.tolist()))
    X = data.values * np.array([signs[name] for name in names], dtype=float)
    hoeffding = data.n_test is not None
    weighting = f"hoeffding (n_test = {data.n_test})" if hoeffding else "none"
    if config.replicates == "average":
        # The statistic is tau over configuration means: resample those.
        Xb, gb = _configuration_means(X, gap, config_ids)
        cb = np.arange(len(gb))
    else:
        Xb, gb, cb = X, gap, config_ids
    ci = _bootstrap_ci(
        Xb,
        gb,
        cb,
        resamples=config.bootstrap,
        variant=config.tau,
        rng=np.random.default_rng(config.seed),
    )
    tasks = data.seeds if data.seeds is not None else np.zeros(n, dtype=np.int64)
    grid_defined = n_configurations >= 2 and bool(axes)
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateDataWarning)
        for j, name in enumerate(names):
            m = X[:, j]
            g_res = c_res = s_res = None
            if grid_defined:
                g_res = rank.granulated_kendall(
                    m,
                    gap,
                    hparams,
                    variant=config.tau,
                    replicates=config.replicates,
                    nan_policy="omit",
                )
                if len(axes) >= 2 or config.cmi == "genlab":
                    c_res = rank.conditional_mutual_information(
                        m,
                        gap,
                        hparams,
                        convention=config.cmi,
                        replicates=None if config.cmi == "pgdl" else config.replicates,
                        nan_policy="omit",
                    )
                s_res = rank.sign_error(
                    m,
                    gap,
                    hparams,
                    weighting="hoeffding" if hoeffding else "none",
                    n_samples=data.n_test if hoeffding else None,
                    min_ess=config.min_ess,
                    nan_policy="omit",
                )
            regret, hit_rate = _selection(m, gap, tasks, config.select_top)
            rows.append(
                MeasureRanking(
                    name=name,
                    orientation=signs[name],
                    tau=g_res.tau if g_res else math.nan,
                    tau_ci=(float(ci[j, 0]), float(ci[j, 1])),
                    axis_psi=dict(g_res.axis_psi) if g_res else {},
                    psi=g_res.psi if g_res else math.nan,
                    cmi=c_res.score if c_res else math.nan,
                    sign_error_mean=s_res.overall.mean if s_res else math.nan,
                    sign_error_p90=s_res.overall.p90 if s_res else math.nan,
                    sign_error_max=s_res.overall.max if s_res else math.nan,
                    sign_error_environments=s_res.n_kept if s_res else 0,
                    regret=regret,
                    top_k_hit_rate=hit_rate,
                    n_models=int(np.count_nonzero(~np.isnan(m))),
                )
            )
        stability = None
        if grid_defined and data.seeds is not None:
            stability = _stability(X, gap, hparams, data.seeds, names, config)
    rows.sort(key=lambda r: (-(r.psi if not math.isnan(r.psi) else -math.inf), r.name))
    return RankingTable(
        rows=tuple(rows),
        gap=data.gap_name,
        axes=axes,
        n_models=n,
        n_excluded=data.n_excluded,
        n_configurations=n_configurations,
        tau_variant=config.tau,
        replicates=config.replicates,
        cmi_convention=config.cmi,
        sign_error_weighting=weighting,
        min_ess=config.min_ess,
        bootstrap=config.bootstrap,
        stability=stability,
        select_top=config.select_top,
        selection_tasks=len(np.unique(tasks)),
        excluded_reason=data.excluded_reason,
        assumed_orientation=assumed,
    )
