"""The study report: ``report.html`` (self-contained, plots embedded), the plots as PNG, and the
ranking table as CSV and markdown, all in ``DIR/report/``.

Formatting of the ranking lives here (:func:`table_records`, :func:`ranking_markdown`); the
statistics live in :mod:`genlab.study.ranking`. ``ranking.md`` and ``ranking.csv`` hold no date or
path, so the same store always gives the same bytes (the published tables are checked that way).
Figures are drawn with matplotlib's object API on their own canvas: writing a report never
changes the caller's pyplot backend or state.
"""

from __future__ import annotations

import base64
import csv
import datetime as _dt
import html
import io
import json
import math
import warnings
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from genlab.study.ranking import RankingData, RankingTable, gap_of, ranking_data
from genlab.study.store import RunRecord

__all__ = ["ranking_markdown", "table_records", "write_report", "write_table_report"]


def _figure(width: float, height: float) -> Any:
    """A figure on its own Agg canvas (pyplot's global state is never touched)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: Path) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    data = buf.getvalue()
    path.write_bytes(data)
    return data


def _tau_name(table: RankingTable) -> str:
    return f"tau_{table.tau_variant}"


def table_records(table: RankingTable) -> list[dict[str, object]]:
    """The ranking as flat rows (for CSV and markdown); column names state the tau variant."""
    tau = _tau_name(table)
    out = []
    for r in table.rows:
        row: dict[str, object] = {
            "measure": r.name,
            "orientation": "+" if r.orientation > 0 else "-",
            "psi": r.psi,
            tau: r.tau,
            f"{tau}_ci_low": r.tau_ci[0],
            f"{tau}_ci_high": r.tau_ci[1],
        }
        row.update({f"psi[{a}]": r.axis_psi.get(a, math.nan) for a in table.axes})
        row.update(
            {
                "cmi_orientation_free": r.cmi,
                "sign_error_mean": r.sign_error_mean,
                "sign_error_p90": r.sign_error_p90,
                "sign_error_max": r.sign_error_max,
                "sign_error_envs": r.sign_error_environments,
                "regret": r.regret,
                f"top{_percent(table.select_top)}_hit": r.top_k_hit_rate,
                "n_models": r.n_models,
            }
        )
        out.append(row)
    return out


def _percent(fraction: float) -> str:
    return f"{100 * fraction:g}%"


def _format(value: object, digits: int) -> str:
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def table_summary(table: RankingTable) -> str:
    """What the table was computed on and how, in a few sentences (no date or path)."""
    tau = f"tau-{table.tau_variant}"
    replicates = (
        "pairs of runs of the same configuration never count"
        if table.replicates == "pairs"
        else "each configuration's runs are averaged first"
    )
    lines = [
        f"{table.n_models} models ({table.n_configurations} configurations) ranked against the "
        f"{table.gap} gap; {table.n_excluded} excluded ({table.excluded_reason}).",
        f"Every tau is {tau} (overall and inside psi's cells); {replicates}; the 95% interval "
        f"of tau resamples configurations ({table.bootstrap} bootstrap draws, seeded).",
        f"cmi_orientation_free: the conditional-MI score ({table.cmi_convention} rule); it "
        "cannot see orientation, a backwards measure scores as high as a perfect one.",
        f"sign_error: Dziugaite et al.'s, over environments with an effective sample size >= "
        f"{table.min_ess:g}; weighting {table.sign_error_weighting}; sign_error_envs = "
        "environments kept.",
        f"Selection: in each of {table.selection_tasks} task(s) (the models of one seed) the "
        "measure chooses the model it predicts to have the smallest gap; regret is that model's "
        f"gap minus the smallest gap, top{_percent(table.select_top)}_hit how often it is among "
        f"the {_percent(table.select_top)} of models with the smallest gaps (means over tasks).",
    ]
    if table.assumed_orientation:
        lines.append(
            "Orientation +1 (larger predicts a larger gap) was assumed for: "
            + ", ".join(table.assumed_orientation)
            + "."
        )
    s = table.stability
    if s is None:
        lines.append("Ranking stability: not available (it needs at least two seeds).")
    else:
        lines.append(
            f"Ranking stability: Kendall tau-b {s.tau:.3g} between the Psi of the {s.n_measures} "
            f"measures on seeds {list(s.seeds[0])} and on seeds {list(s.seeds[1])} (1: the same "
            "order, 0: unrelated)."
        )
    return "\n".join(lines) + "\n"


def ranking_markdown(table: RankingTable, *, digits: int = 3) -> str:
    """The table as GitHub markdown, after :func:`table_summary`."""
    records = table_records(table)
    if not records:
        return table_summary(table) + "\n(no measures)\n"
    keys = list(records[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for rec in records:
        lines.append("| " + " | ".join(_format(v, digits) for v in rec.values()) + " |")
    return table_summary(table) + "\n" + "\n".join(lines) + "\n"


def _psi_bars(table: RankingTable, path: Path) -> bytes:
    rows = [r for r in table.rows if not math.isnan(r.psi)][::-1]
    fig = _figure(7, 0.28 * max(len(rows), 4) + 1)
    ax = fig.subplots()
    ax.barh([r.name for r in rows], [r.psi for r in rows], color="#4c72b0", label="Psi")
    ax.scatter(
        [r.tau for r in rows],
        range(len(rows)),
        color="#dd8452",
        zorder=3,
        label=f"tau-{table.tau_variant}",
    )
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel(
        f"granulated Kendall Psi and overall tau-{table.tau_variant} vs the {table.gap} gap"
    )
    ax.legend(loc="lower right")
    return _save(fig, path)


def _stability_plot(table: RankingTable, path: Path) -> bytes | None:
    s = table.stability
    if s is None:
        return None
    names = [n for n, (a, b) in s.psi.items() if not (math.isnan(a) or math.isnan(b))]
    a = np.array([s.psi[n][0] for n in names])
    b = np.array([s.psi[n][1] for n in names])
    fig = _figure(5.5, 5.2)
    ax = fig.subplots()
    ax.scatter(a, b, s=18, color="#4c72b0")
    top = set(sorted(names, key=lambda n: -(s.psi[n][0] + s.psi[n][1]))[:4])
    for n, x, y in zip(names, a, b, strict=True):
        if n in top:
            ax.annotate(n, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    lo = float(min(a.min(), b.min(), 0.0)) if names else -1.0
    hi = float(max(a.max(), b.max(), 0.0)) if names else 1.0
    ax.plot([lo, hi], [lo, hi], color="grey", linewidth=0.8, linestyle="--")
    ax.set_xlabel(f"Psi on seeds {list(s.seeds[0])}")
    ax.set_ylabel(f"Psi on seeds {list(s.seeds[1])}")
    ax.set_title(f"Ranking stability: Kendall tau {s.tau:.2f} over {s.n_measures} measures")
    return _save(fig, path)


def _scatter(
    data: RankingData, table: RankingTable, measure: str, orientation: int, path: Path
) -> bytes:
    axes = list(table.axes) or ["(none)"]
    fig = _figure(4.2 * len(axes), 3.6)
    subplots = fig.subplots(1, len(axes), squeeze=False)
    x = orientation * data.values[:, data.names.index(measure)]
    y = data.gap
    for ax, axis in zip(subplots[0], axes, strict=True):
        values = data.hparams.get(axis, np.full(len(y), ""))
        for k, value in enumerate(sorted(set(values.tolist()))):
            sel = values == value
            ax.scatter(x[sel], y[sel], s=18, color=f"C{k % 10}", label=value, alpha=0.85)
        ax.set_title(f"coloured by {axis}")
        ax.set_xlabel(f"{measure}{'' if orientation > 0 else ' (negated)'}")
        ax.set_ylabel(f"{table.gap} gap")
        ax.legend(fontsize=7, title=axis, title_fontsize=7)
    fig.suptitle(f"{measure} vs the generalization gap")
    return _save(fig, path)


_SRR_PANELS = (
    ("compressed_coding_rate", "R^c (compressed coding rate)"),
    ("coding_rate", "R (coding rate)"),
    ("sparsity", "sparsity"),
    ("srr_measure", "SRR measure (sparsity + R^c - R)"),
)


def _curves_of(profile: Mapping[str, Any]) -> Mapping[str, Mapping[str, Any]]:
    """Per-layer curves by SRR preset; stores written before presets hold one unnamed set."""
    if "curves" in profile:
        curves: Mapping[str, Mapping[str, Any]] = profile["curves"]
        return curves
    return {"(one setting)": profile}


def _mean_and_band(ax: Any, values: NDArray[np.float64], colour: int, label: str) -> None:
    """The mean over models (rows) at each layer (column), NaN left out, with a +- std band
    when there are several models."""
    layers = np.arange(1, values.shape[1] + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a layer with no value in any model
        mean, std = np.nanmean(values, axis=0), np.nanstd(values, axis=0)
    ax.plot(layers, mean, marker="o", color=f"C{colour % 10}", label=label)
    if len(values) > 1:
        ax.fill_between(layers, mean - std, mean + std, color=f"C{colour % 10}", alpha=0.15)


def _series_labels(keys: Iterable[tuple[str, int]]) -> dict[tuple[str, int], str]:
    """Labels of per-layer series keyed by (family, number of layers): the family, and its
    layer count too where a grid gives one family several depths (their layers do not pair)."""
    keys = sorted(set(keys))
    depths: dict[str, set[int]] = defaultdict(set)
    for family, layers in keys:
        depths[family].add(layers)
    return {
        (family, layers): family if len(depths[family]) == 1 else f"{family}, {layers} layers"
        for family, layers in keys
    }


def _srr_curves(records: Sequence[RunRecord], path: Path) -> bytes | None:
    # preset -> (family, layers) -> per-model curves
    by_preset: dict[str, dict[tuple[str, int], list[Mapping[str, Any]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for r in records:
        if r.srr_profile:
            family = str(r.hparams.get("family", r.srr_profile.get("family", "model")))
            for preset, curves in _curves_of(r.srr_profile).items():
                layers = len(next(iter(curves.values()), []))
                by_preset[preset][(family, layers)].append(curves)
    if not by_preset:
        return None
    presets = sorted(by_preset)
    fig = _figure(16, 3.4 * len(presets))
    subplots = fig.subplots(len(presets), len(_SRR_PANELS), squeeze=False)
    for row, preset in zip(subplots, presets, strict=True):
        labels = _series_labels(by_preset[preset])
        for ax, (key, title) in zip(row, _SRR_PANELS, strict=True):
            for k, (series, profiles) in enumerate(sorted(by_preset[preset].items())):
                values = np.array([p[key] for p in profiles if key in p], dtype=float)
                if values.size:
                    _mean_and_band(ax, values, k, labels[series])
            ax.set_title(f"{title} [{preset}]", fontsize=9)
            ax.set_xlabel("layer")
            ax.xaxis.get_major_locator().set_params(integer=True)
        row[0].legend(fontsize=8)
    fig.suptitle(
        "Per-layer sparse rate reduction of the trained models (mean +- std over models), "
        "per SRR measurement preset"
    )
    return _save(fig, path)


_SPECTRUM_PANELS = (
    ("alpha", "alpha (power-law exponent of the ESD)"),
    ("alpha_weighted", "alpha log10 lambda_max"),
    ("log_spectral_norm", "log10 lambda_max"),
    ("stable_rank", "stable rank sum(lambda) / lambda_max"),
)


def _layer_spectra(record: RunRecord) -> Mapping[str, Any] | None:
    """The run's per-layer spectra (stored with the spectrum measures), or None."""
    spectra = (record.history or {}).get("layer_spectra")
    return spectra if isinstance(spectra, Mapping) else None


def _spectrum_by_layer(records: Sequence[RunRecord], path: Path) -> bytes | None:
    """WeightWatcher's per-layer view: each summary against the layer, per family (mean +- std
    over the models; layers without a power-law fit left out of alpha's mean)."""
    by_series: dict[tuple[str, int], list[Mapping[str, Any]]] = defaultdict(list)
    for r in records:
        spectra = _layer_spectra(r)
        if spectra is not None:
            family = str(r.hparams.get("family", "model"))
            by_series[(family, len(spectra["layers"]))].append(spectra)
    if not by_series:
        return None
    labels = _series_labels(by_series)
    fig = _figure(16, 3.6)
    subplots = fig.subplots(1, len(_SPECTRUM_PANELS), squeeze=False)[0]
    for ax, (key, title) in zip(subplots, _SPECTRUM_PANELS, strict=True):
        for k, (series, runs) in enumerate(sorted(by_series.items())):
            values = np.array(
                [[math.nan if v is None else v for v in run[key]] for run in runs], dtype=float
            )
            _mean_and_band(ax, values, k, labels[series])
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("weight tensor (in parameter order)")
        ax.xaxis.get_major_locator().set_params(integer=True)
    subplots[0].legend(fontsize=8)
    fig.suptitle(
        "Per-layer weight spectra of the trained models (mean +- std over models): the values "
        "the spectrum measures average"
    )
    return _save(fig, path)


# At most this many layers in the ESD figure (evenly chosen when a model has more).
_ESD_PANELS = 8


def _esd_fits(records: Sequence[RunRecord], gap: str, path: Path) -> bytes | None:
    """The ESD of each layer (empirical survival function, log-log) with its power-law tail fit,
    for the models with the smallest and the largest gap."""
    measured = [r for r in records if _layer_spectra(r) is not None]
    if not measured:
        return None
    by_gap = sorted(measured, key=lambda r: (gap_of(r, gap), r.run_id))
    chosen = [(by_gap[0], "smallest"), (by_gap[-1], "largest")] if len(by_gap) > 1 else []
    chosen = chosen or [(by_gap[0], "only")]
    depth = max(len(_layer_spectra(r)["layers"]) for r, _ in chosen)  # type: ignore[index]
    columns = min(depth, _ESD_PANELS)
    fig = _figure(2.6 * columns, 2.5 * len(chosen))
    subplots = fig.subplots(len(chosen), columns, squeeze=False)
    for row, (record, which) in zip(subplots, chosen, strict=True):
        spectra = _layer_spectra(record)
        assert spectra is not None
        count = len(spectra["layers"])
        shown = np.unique(np.linspace(0, count - 1, min(count, columns)).round().astype(int))
        for ax in row[len(shown) :]:
            ax.set_visible(False)
        for ax, layer in zip(row, shown, strict=False):
            eigenvalues = np.sort(np.asarray(spectra["eigenvalues"][layer], dtype=float))
            survival = 1.0 - np.arange(len(eigenvalues)) / len(eigenvalues)
            ax.loglog(eigenvalues, survival, marker=".", linestyle="none", color="#4c72b0")
            alpha, xmin = spectra["alpha"][layer], spectra["xmin"][layer]
            title = f"{spectra['layers'][layer]}"
            if alpha is not None and xmin is not None:
                tail = eigenvalues[eigenvalues >= xmin]
                fraction = len(tail) / len(eigenvalues)
                ax.loglog(
                    tail, fraction * (tail / xmin) ** (1.0 - alpha), color="#dd8452", linewidth=1.5
                )
                ax.axvline(xmin, color="grey", linestyle="--", linewidth=0.8)
                title += f"\nalpha {alpha:.2f}"
            ax.set_title(title, fontsize=7)
            ax.tick_params(which="both", labelsize=6)
        row[0].set_ylabel(f"P(lambda >= x)\n{which} {gap} gap\n(run {record.run_id})", fontsize=7)
    fig.suptitle(
        "Eigenvalue spectra of W^T W (dots) and the power-law fit of their tails (line, from "
        "xmin dashed)"
    )
    return _save(fig, path)


def _coverage(records: Sequence[RunRecord], grid: Mapping[str, Sequence[Any]], path: Path) -> bytes:
    axes = sorted(grid, key=lambda a: -len(grid[a]))[:2]
    if len(axes) < 2:
        axes = [*axes, "seed"]
    a, b = axes
    values_a = [str(v) for v in grid.get(a, sorted({r.hparams.get(a) for r in records}, key=str))]
    values_b = [str(v) for v in grid.get(b, sorted({r.seed for r in records}))]
    done = np.zeros((len(values_a), len(values_b)))
    converged = np.zeros_like(done)
    for r in records:
        key_a = str(r.hparams.get(a, r.seed if a == "seed" else ""))
        key_b = str(r.hparams.get(b, r.seed if b == "seed" else ""))
        if key_a in values_a and key_b in values_b:
            i, j = values_a.index(key_a), values_b.index(key_b)
            done[i, j] += 1
            converged[i, j] += r.converged
    fig = _figure(1.2 * len(values_b) + 2.5, 0.6 * len(values_a) + 1.8)
    ax = fig.subplots()
    image = ax.imshow(done, cmap="Blues", vmin=0)
    for i in range(len(values_a)):
        for j in range(len(values_b)):
            dark = done[i, j] > 0.5 * max(done.max(), 1)
            ax.text(
                j,
                i,
                f"{int(converged[i, j])}/{int(done[i, j])}",
                ha="center",
                va="center",
                color="white" if dark else "black",
            )
    ax.set_xticks(range(len(values_b)), values_b)
    ax.set_yticks(range(len(values_a)), values_a)
    ax.set_xlabel(b)
    ax.set_ylabel(a)
    ax.set_title("finished models per cell (converged/finished)")
    fig.colorbar(image, ax=ax)
    return _save(fig, path)


def _img(data: bytes, alt: str) -> str:
    encoded = base64.b64encode(data).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}">'


def _html_table(table: RankingTable) -> str:
    records = table_records(table)
    if not records:
        return "<p>No measures were stored.</p>"
    head = "".join(f"<th>{html.escape(k)}</th>" for k in records[0])
    body = []
    for rec in records:
        cells = "".join(
            f"<td>{v:.3g}</td>" if isinstance(v, float) else f"<td>{html.escape(str(v))}</td>"
            for v in rec.values()
        )
        body.append(f"<tr>{cells}</tr>")
    return (
        f'<table id="ranking"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
    )


_CSS = """
body { font-family: sans-serif; margin: 2em; max-width: 1400px; color: #222; }
table { border-collapse: collapse; font-size: 12px; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: right; }
th { background: #f0f0f0; } td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; margin: 0.5em 0; } pre { background: #f7f7f7; padding: 1em; overflow-x: auto; }
"""


def write_report(
    directory: str | Path,
    records: Sequence[RunRecord],
    table: RankingTable,
    *,
    meta: Mapping[str, str],
    grid: Mapping[str, Sequence[Any]],
    orientation_notes: Mapping[str, str] | None = None,
) -> Path:
    """Write a study's ``report.html``, the PNG plots and the table (CSV, markdown) to
    ``directory``.

    Returns the path of ``report.html``.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    data = ranking_data(records, gap=table.gap, exclude_nonconverged=table.n_excluded > 0)
    used = [r for r in records if r.converged or table.n_excluded == 0]
    figures: list[tuple[str, bytes]] = []
    srr = _srr_curves(used, out / "srr_through_depth.png")
    if srr is not None:
        figures.append(("SRR through depth", srr))
    by_layer = _spectrum_by_layer(used, out / "spectrum_by_layer.png")
    if by_layer is not None:
        figures.append(("Weight spectra by layer", by_layer))
    esd = _esd_fits(used, table.gap, out / "spectrum_esd.png")
    if esd is not None:
        figures.append(("Eigenvalue spectra and their power-law fits", esd))
    figures.append(("Grid coverage", _coverage(records, grid, out / "coverage.png")))
    env = json.loads(meta.get("environment", "{}"))
    train_s = sum(r.train_seconds for r in records)
    measure_s = sum(r.measure_seconds for r in records)
    provenance = f"""<h2>Provenance</h2>
<p>Training time {train_s:.1f} s, measurement time {measure_s:.1f} s (summed over models).</p>
<pre>{html.escape(json.dumps(env, indent=2))}</pre>
<h3>Configuration</h3><pre>{html.escape(meta.get("config_toml", ""))}</pre>"""
    return _write_page(
        out,
        table,
        data,
        title=f"genlab study: {meta.get('config_name', '')}",
        intro=f"{len(records)} finished models",
        figures=figures,
        orientation_notes=orientation_notes or {},
        appendix=provenance,
    )


def write_table_report(
    directory: str | Path,
    table: RankingTable,
    data: RankingData,
    *,
    source: str,
    orientation_notes: Mapping[str, str] | None = None,
) -> Path:
    """Write the report of a ranked results table (:func:`genlab.study.tables.rank_table`):
    ``report.html``, the plots, ``ranking.csv`` and ``ranking.md``, as for a study, without the
    study's own sections (SRR curves, grid coverage, provenance). ``source`` names the table.

    Returns the path of ``report.html``.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    return _write_page(
        out,
        table,
        data,
        title=f"genlab ranking: {source}",
        intro=f"{len(data.gap) + data.n_excluded} rows of {source}",
        figures=[],
        orientation_notes=orientation_notes or {},
        appendix="",
    )


def _write_page(
    out: Path,
    table: RankingTable,
    data: RankingData,
    *,
    title: str,
    intro: str,
    figures: Sequence[tuple[str, bytes]],
    orientation_notes: Mapping[str, str],
    appendix: str,
) -> Path:
    """The parts every report has (ranking plots, top scatter plots, the table in three forms),
    with ``figures`` after the scatter plots and ``appendix`` at the end."""
    shown: list[tuple[str, bytes]] = [
        ("Psi and tau per measure", _psi_bars(table, out / "psi_ranking.png"))
    ]
    stability = _stability_plot(table, out / "stability.png")
    if stability is not None:
        shown.append(("Ranking stability across two halves of the seeds", stability))
    for row in [r for r in table.rows if not math.isnan(r.psi)][:4]:
        safe = "".join(ch if ch.isalnum() else "_" for ch in row.name)
        shown.append(
            (
                f"{row.name} vs the gap",
                _scatter(data, table, row.name, row.orientation, out / f"scatter_{safe}.png"),
            )
        )
    shown.extend(figures)

    with (out / "ranking.csv").open("w", newline="") as f:
        rows = table_records(table)
        if rows:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    (out / "ranking.md").write_text(ranking_markdown(table))

    orient = "".join(
        f"<li><b>{html.escape(r.name)}</b> ({'+' if r.orientation > 0 else '-'}): "
        f"{html.escape(orientation_notes.get(r.name, ''))}</li>"
        for r in table.rows
    )
    sections = "".join(f"<h2>{html.escape(name)}</h2>{_img(png, name)}" for name, png in shown)
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    top = _percent(table.select_top)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_CSS}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{html.escape(intro)}; measures are ranked by the granulated Kendall coefficient Psi
(Jiang et al. 2020). Report written {now}.</p>
<pre>{html.escape(table_summary(table))}</pre>
<h2>Measures ranked by Psi</h2>
{_html_table(table)}
<p>{_tau_name(table)}: Kendall tau-{table.tau_variant} over all ranked runs, with a 95% bootstrap
interval; psi[axis]: mean tau-{table.tau_variant} within cells where only that axis varies;
cmi_orientation_free: conditional-mutual-information score (min over conditioning sets; it cannot
see orientation); sign_error: robust sign-error over environments (pairs of configurations
differing in one axis; 0 is perfect, 0.5 chance), over the sign_error_envs environments kept;
regret and top{top}_hit: choosing, per seed, the model the measure predicts to generalize best
(its gap minus the best gap; whether it is among the best {top}).</p>
<h3>Orientation (sign applied before ranking: larger = predicts a larger gap)</h3><ul>{orient}</ul>
{sections}
{appendix}
</body></html>
"""
    path = out / "report.html"
    path.write_text(page)
    return path
