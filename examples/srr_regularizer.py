"""Does CE + gamma x SRR beat CE alone? Paired by seed, with a 95% confidence interval.

Reads a study trained by ``examples/digits-srr-regularizer.toml`` (one axis, ``srr_gamma``; the
models of one seed share their initialization, data order and training subset) and, for each
gamma > 0, takes the test-accuracy difference to gamma = 0 seed by seed. The interval is the
paired t-interval of the mean difference (n - 1 degrees of freedom); "wins" counts the seeds where
the regularized model is more accurate.

Usage::

    genlab study run examples/digits-srr-regularizer.toml --out runs/digits-srr
    python examples/srr_regularizer.py runs/digits-srr --out docs/results/srr-regularizer
"""

from __future__ import annotations

import argparse
import math
from collections import defaultdict
from pathlib import Path

import matplotlib
import numpy as np
from scipy import stats

from genlab.study.store import Store

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def paired_differences(directory: Path) -> tuple[dict[float, dict[int, float]], int]:
    """Test accuracy by gamma and seed, and the test-set size."""
    accuracy: dict[float, dict[int, float]] = defaultdict(dict)
    sizes = set()
    for record in Store(directory).records():
        accuracy[float(record.hparams["srr_gamma"])][record.seed] = record.test_acc
        sizes.add(record.n_test)
    if 0.0 not in accuracy:
        raise SystemExit(f"{directory}: no model with srr_gamma = 0 (the CE baseline)")
    return dict(accuracy), min(s for s in sizes if s)


def summary(accuracy: dict[float, dict[int, float]]) -> list[dict[str, float]]:
    base = accuracy[0.0]
    rows = []
    for gamma in sorted(g for g in accuracy if g > 0):
        seeds = sorted(set(base) & set(accuracy[gamma]))
        diff = np.array([accuracy[gamma][s] - base[s] for s in seeds])
        n = len(diff)
        half = stats.t.ppf(0.975, n - 1) * diff.std(ddof=1) / math.sqrt(n) if n > 1 else math.nan
        rows.append(
            {
                "gamma": gamma,
                "seeds": n,
                "ce_accuracy": float(np.mean([base[s] for s in seeds])),
                "srr_accuracy": float(np.mean([accuracy[gamma][s] for s in seeds])),
                "difference": float(diff.mean()),
                "ci_low": float(diff.mean() - half),
                "ci_high": float(diff.mean() + half),
                "wins": int((diff > 0).sum()),
                "ties": int((diff == 0).sum()),
            }
        )
    return rows


def markdown(rows: list[dict[str, float]], n_test: int) -> str:
    lines = [
        f"Test accuracy of CE + gamma x SRR minus CE, paired by seed ({n_test} test digits; "
        "95% paired t-interval of the mean difference).",
        "",
        "| gamma | seeds | CE accuracy | CE + gamma SRR accuracy | difference | 95% interval "
        "| seeds where SRR wins (ties) |",
        "|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['gamma']:g} | {r['seeds']} | {r['ce_accuracy']:.4f} | {r['srr_accuracy']:.4f} "
            f"| {r['difference']:+.4f} | [{r['ci_low']:+.4f}, {r['ci_high']:+.4f}] "
            f"| {r['wins']} ({r['ties']}) |"
        )
    return "\n".join(lines) + "\n"


def plot(accuracy: dict[float, dict[int, float]], rows: list[dict[str, float]], path: Path) -> None:
    base = accuracy[0.0]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for k, r in enumerate(rows):
        gamma = r["gamma"]
        seeds = sorted(set(base) & set(accuracy[gamma]))
        diffs = [accuracy[gamma][s] - base[s] for s in seeds]
        ax.scatter(np.full(len(diffs), k), diffs, color="#4c72b0", alpha=0.6, s=18)
        ax.errorbar(
            k + 0.15,
            r["difference"],
            yerr=[[r["difference"] - r["ci_low"]], [r["ci_high"] - r["difference"]]],
            fmt="o",
            color="#dd8452",
            capsize=4,
        )
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(rows)), [f"gamma={r['gamma']:g}" for r in rows])
    ax.set_ylabel("test accuracy: CE + gamma SRR minus CE")
    ax.set_title("Per seed (dots), mean and 95% paired interval (orange)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", type=Path, help="the study's directory (its store)")
    parser.add_argument("--out", type=Path, help="also write table.md and differences.png here")
    args = parser.parse_args()
    accuracy, n_test = paired_differences(args.study)
    rows = summary(accuracy)
    text = markdown(rows, n_test)
    print(text, end="")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "table.md").write_text(text)
        plot(accuracy, rows, args.out / "differences.png")


if __name__ == "__main__":
    main()
