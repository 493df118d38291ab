"""The study report: ``report.html`` (self-contained, plots embedded), the plots as PNG, and the
ranking table as CSV and markdown, all in ``DIR/report/``."""

from __future__ import annotations

import base64
import csv
import datetime as _dt
import html
import io
import json
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from genlab.study.ranking import RankingTable, gap_of
from genlab.study.store import RunRecord

__all__ = ["write_report"]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    data = buf.getvalue()
    path.write_bytes(data)
    return data


def _psi_bars(table: RankingTable, path: Path) -> bytes:
    plt = _pyplot()
    rows = [r for r in table.rows if not math.isnan(r.psi)][::-1]
    fig, ax = plt.subplots(figsize=(7, 0.28 * max(len(rows), 4) + 1))
    ax.barh([r.name for r in rows], [r.psi for r in rows], color="#4c72b0", label="Psi")
    ax.scatter([r.tau for r in rows], range(len(rows)), color="#dd8452", zorder=3, label="tau")
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel(f"granulated Kendall Psi and overall tau vs the {table.gap} gap")
    ax.legend(loc="lower right")
    return _save(fig, path)


def _scatter(
    records: Sequence[RunRecord], table: RankingTable, measure: str, orientation: int, path: Path
) -> bytes:
    plt = _pyplot()
    axes = list(table.axes) or ["(none)"]
    fig, subplots = plt.subplots(1, len(axes), figsize=(4.2 * len(axes), 3.6), squeeze=False)
    x = np.array([orientation * r.measures.get(measure, math.nan) for r in records])
    y = np.array([gap_of(r, table.gap) for r in records])
    for ax, axis in zip(subplots[0], axes, strict=True):
        values = [str(r.hparams.get(axis, "")) for r in records]
        for k, value in enumerate(sorted(set(values))):
            sel = np.array([v == value for v in values])
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


def _srr_curves(records: Sequence[RunRecord], path: Path) -> bytes | None:
    by_family: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for r in records:
        if r.srr_profile:
            family = str(r.hparams.get("family", r.srr_profile.get("family", "model")))
            by_family[family].append(r.srr_profile)
    if not by_family:
        return None
    plt = _pyplot()
    fig, subplots = plt.subplots(1, len(_SRR_PANELS), figsize=(16, 3.6))
    for ax, (key, title) in zip(subplots, _SRR_PANELS, strict=True):
        for k, (family, profiles) in enumerate(sorted(by_family.items())):
            curves = np.array([p[key] for p in profiles if key in p], dtype=float)
            if curves.size == 0:
                continue
            layers = np.arange(1, curves.shape[1] + 1)
            mean = curves.mean(axis=0)
            ax.plot(layers, mean, marker="o", color=f"C{k % 10}", label=family)
            if len(curves) > 1:
                std = curves.std(axis=0)
                ax.fill_between(layers, mean - std, mean + std, color=f"C{k % 10}", alpha=0.15)
        ax.set_title(title)
        ax.set_xlabel("layer")
    subplots[0].legend(fontsize=8)
    fig.suptitle("Per-layer sparse rate reduction of the trained models (mean +- std over models)")
    return _save(fig, path)


def _coverage(records: Sequence[RunRecord], grid: Mapping[str, Sequence[Any]], path: Path) -> bytes:
    plt = _pyplot()
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
    fig, ax = plt.subplots(figsize=(1.2 * len(values_b) + 2.5, 0.6 * len(values_a) + 1.8))
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
    records = table.as_records()
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
    """Write ``report.html``, the PNG plots and the table (CSV, markdown) to ``directory``.

    Returns the path of ``report.html``.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    used = [r for r in records if r.converged or table.n_excluded == 0]
    figures: list[tuple[str, bytes]] = []
    figures.append(("Psi and tau per measure", _psi_bars(table, out / "psi_ranking.png")))
    top = [r for r in table.rows if not math.isnan(r.psi)][:4]
    for row in top:
        safe = "".join(ch if ch.isalnum() else "_" for ch in row.name)
        figures.append(
            (
                f"{row.name} vs the gap",
                _scatter(used, table, row.name, row.orientation, out / f"scatter_{safe}.png"),
            )
        )
    srr = _srr_curves(used, out / "srr_through_depth.png")
    if srr is not None:
        figures.append(("SRR through depth", srr))
    figures.append(("Grid coverage", _coverage(records, grid, out / "coverage.png")))

    with (out / "ranking.csv").open("w", newline="") as f:
        rows = table.as_records()
        if rows:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    (out / "ranking.md").write_text(table.markdown())

    env = json.loads(meta.get("environment", "{}"))
    notes = orientation_notes or {}
    orient = "".join(
        f"<li><b>{html.escape(r.name)}</b> ({'+' if r.orientation > 0 else '-'}): {html.escape(notes.get(r.name, ''))}</li>"
        for r in table.rows
    )
    train_s = sum(r.train_seconds for r in records)
    measure_s = sum(r.measure_seconds for r in records)
    sections = "".join(
        f"<h2>{html.escape(title)}</h2>{_img(data, title)}" for title, data in figures
    )
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>genlab study: {html.escape(meta.get("config_name", ""))}</title>
<style>{_CSS}</style></head><body>
<h1>genlab study: {html.escape(meta.get("config_name", ""))}</h1>
<p>{len(records)} finished models; {table.n_models} ranked against the <b>{table.gap}</b> gap
({table.n_excluded} excluded because they did not reach the training cross-entropy target).
Measures are ranked by the granulated Kendall coefficient Psi (Jiang et al. 2020). Report written {now}.</p>
<h2>Measures ranked by Psi</h2>
{_html_table(table)}
<p>tau: Kendall tau-b over all ranked models, with a 95% bootstrap interval over models; psi[axis]:
mean tau-a within cells where only that axis varies; cmi: conditional-mutual-information score
(min over conditioning sets of at most 2 axes); sign_error: robust sign-error over environments
(pairs of configurations differing in one axis; 0 is perfect, 0.5 chance).</p>
<h3>Orientation (sign applied before ranking: larger = predicts a larger gap)</h3><ul>{orient}</ul>
{sections}
<h2>Provenance</h2>
<p>Training time {train_s:.1f} s, measurement time {measure_s:.1f} s (summed over models).</p>
<pre>{html.escape(json.dumps(env, indent=2))}</pre>
<h3>Configuration</h3><pre>{html.escape(meta.get("config_toml", ""))}</pre>
</body></html>
"""
    path = out / "report.html"
    path.write_text(page)
    return path
