"""Rank every stored measure against the generalization gap with genlab.rank.

For each measure: overall Kendall tau with its p-value and a bootstrap confidence interval over
models, psi per hyperparameter axis and Psi (granulated Kendall, tau-a), the conditional-MI score
and the robust sign-error summary. Measures are oriented so that larger means "predicts a larger
gap" (their registry orientation); the table states each orientation.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping, Sequence

import numpy as np

from genlab import rank
from genlab.errors import DegenerateDataWarning
from genlab.study.config import RankingConfig
from genlab.study.store import RunRecord

__all__ = ["MeasureRanking", "RankingTable", "rank_measures"]


@dataclasses.dataclass(frozen=True)
class MeasureRanking:
    """How well one measure predicts the gap."""

    name: str
    orientation: int
    tau: float
    pvalue: float
    tau_ci: tuple[float, float]
    axis_psi: Mapping[str, float]
    psi: float
    cmi: float
    sign_error_mean: float
    sign_error_p90: float
    sign_error_max: float
    n_models: int


@dataclasses.dataclass(frozen=True)
class RankingTable:
    """Measures ranked by Psi (best first), with what they were ranked on."""

    rows: tuple[MeasureRanking, ...]
    gap: str
    axes: tuple[str, ...]
    n_models: int
    n_excluded: int

    def as_records(self) -> list[dict[str, object]]:
        """Flat rows (for CSV and markdown)."""
        out = []
        for r in self.rows:
            row: dict[str, object] = {
                "measure": r.name,
                "orientation": "+" if r.orientation > 0 else "-",
                "psi": r.psi,
                "tau": r.tau,
                "tau_ci_low": r.tau_ci[0],
                "tau_ci_high": r.tau_ci[1],
                "tau_pvalue": r.pvalue,
            }
            row.update({f"psi[{a}]": r.axis_psi.get(a, math.nan) for a in self.axes})
            row.update(
                {
                    "cmi": r.cmi,
                    "sign_error_mean": r.sign_error_mean,
                    "sign_error_p90": r.sign_error_p90,
                    "sign_error_max": r.sign_error_max,
                    "n_models": r.n_models,
                }
            )
            out.append(row)
        return out

    def markdown(self, *, digits: int = 3) -> str:
        """The table as GitHub markdown."""
        records = self.as_records()
        if not records:
            return "(no measures)\n"
        keys = list(records[0])
        lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
        for rec in records:
            cells = [f"{v:.{digits}g}" if isinstance(v, float) else str(v) for v in rec.values()]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"


def gap_of(record: RunRecord, gap: str) -> float:
    """The generalization gap of a run: "loss" (cross-entropy) or "error" (0-1)."""
    return record.loss_gap if gap == "loss" else record.error_gap


def _bootstrap_ci(
    X: np.ndarray, y: np.ndarray, resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """2.5% and 97.5% percentiles of tau-b over models resampled with replacement, per column."""
    if resamples == 0 or len(y) < 3:
        return np.full((X.shape[1], 2), math.nan)
    taus = np.empty((resamples, X.shape[1]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateDataWarning)
        for b in range(resamples):
            idx = rng.integers(0, len(y), len(y))
            taus[b] = rank.kendalltau_many(X[idx], y[idx], nan_policy="omit").statistic
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        bounds: np.ndarray = np.nanpercentile(taus, [2.5, 97.5], axis=0).T
    return bounds


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
        Gap definition, bootstrap size, seed.
    orientation : mapping of str to int, optional
        +1 if a larger value of the measure should predict a larger gap, -1 if smaller; measures
        not listed count as +1.
    exclude_nonconverged : bool, optional
        Overrides ``config.exclude_nonconverged``.

    Raises
    ------
    ValueError
        When fewer than two models remain to rank.
    """
    exclude = config.exclude_nonconverged if exclude_nonconverged is None else exclude_nonconverged
    # A fixed order (not completion order, which varies with parallel jobs) keeps the bootstrap
    # resamples, and so the intervals, reproducible.
    used = sorted((r for r in records if r.converged or not exclude), key=lambda r: r.run_id)
    if len(used) < 2:
        hint = " (most did not converge: try --include-nonconverged)" if exclude and records else ""
        raise ValueError(f"need at least 2 finished models to rank, have {len(used)}{hint}")
    orientation = orientation or {}
    names = sorted({name for r in used for name in r.measures})
    axes = tuple(sorted({a for r in used for a in r.hparams}))
    gap = np.array([gap_of(r, config.gap) for r in used])
    hparams = {a: np.array([str(r.hparams.get(a)) for r in used]) for a in axes}
    X = (
        np.column_stack(
            [[orientation.get(n, 1) * r.measures.get(n, math.nan) for r in used] for n in names]
        )
        if names
        else np.empty((len(used), 0))
    )
    rng = np.random.default_rng(config.seed)
    ci = _bootstrap_ci(X, gap, config.bootstrap, rng)
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateDataWarning)
        overall = rank.kendalltau_many(X, gap, nan_policy="omit") if names else None
        for j, name in enumerate(names):
            m = X[:, j]
            g_res = c_res = s_res = None
            if hparams:
                g_res = rank.granulated_kendall(m, gap, hparams, nan_policy="omit")
                c_res = rank.conditional_mutual_information(m, gap, hparams, nan_policy="omit")
                s_res = rank.sign_error(m, gap, hparams, nan_policy="omit")
            rows.append(
                MeasureRanking(
                    name=name,
                    orientation=orientation.get(name, 1),
                    tau=float(overall.statistic[j]) if overall is not None else math.nan,
                    pvalue=float(overall.pvalue[j]) if overall is not None else math.nan,
                    tau_ci=(float(ci[j, 0]), float(ci[j, 1])),
                    axis_psi=dict(g_res.axis_psi) if g_res else {},
                    psi=g_res.psi if g_res else math.nan,
                    cmi=c_res.score if c_res else math.nan,
                    sign_error_mean=s_res.overall.mean if s_res else math.nan,
                    sign_error_p90=s_res.overall.p90 if s_res else math.nan,
                    sign_error_max=s_res.overall.max if s_res else math.nan,
                    n_models=int(np.count_nonzero(~np.isnan(m))),
                )
            )
    rows.sort(key=lambda r: (-(r.psi if not math.isnan(r.psi) else -math.inf), r.name))
    return RankingTable(
        rows=tuple(rows),
        gap=config.gap,
        axes=axes,
        n_models=len(used),
        n_excluded=len(records) - len(used),
    )
