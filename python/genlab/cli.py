"""The ``genlab`` command.

Subcommands
-----------
demo
    Exercise the kernels on generated data and print the results (the main job until the study
    harness lands).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import genlab
from genlab import rank


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _demo_rank(rng: np.random.Generator, n: int) -> None:
    print(f"\n# Ranking: Kendall tau on n = {n:,} generated pairs (y = x + noise)")
    x = rng.normal(size=n)
    y = x + rng.normal(size=n)
    res, seconds = _timed(lambda: rank.kendalltau(x, y))
    print(
        f"genlab.rank.kendalltau: tau-b = {res.statistic:.6f}, p = {res.pvalue:.3g} ({seconds * 1e3:.1f} ms)"
    )
    try:
        from scipy import stats  # type: ignore[import-untyped, unused-ignore]
    except ImportError:
        print("(install scipy to compare with scipy.stats.kendalltau)")
    else:
        ref, ref_seconds = _timed(lambda: stats.kendalltau(x, y))
        print(
            f"scipy.stats.kendalltau: tau-b = {ref.statistic:.6f}, p = {ref.pvalue:.3g} "
            f"({ref_seconds * 1e3:.1f} ms, {ref_seconds / seconds:.1f}x genlab's time)"
        )

    print("\n# A synthetic 'zoo': 3 x 3 x 3 grid, 2 seeds; measures of varying quality vs the gap")
    grid = np.array(
        [(a, b, c) for a in range(3) for b in range(3) for c in range(3) for _ in range(2)]
    )
    hparams = {"lr": grid[:, 0], "width": grid[:, 1], "depth": grid[:, 2]}
    gap = 0.5 * grid[:, 0] + 0.3 * grid[:, 1] + 0.2 * grid[:, 2] + 0.1 * rng.normal(size=len(grid))
    measures = {
        "oracle (the gap itself)": gap,
        "noisy predictor": gap + 0.3 * rng.normal(size=len(grid)),
        "width only": grid[:, 1].astype(float),
        "random": rng.normal(size=len(grid)),
    }
    print(f"{'measure':<26}{'tau':>8}{'Psi':>8}{'CMI':>8}{'sign-err max':>14}")
    for name, m in measures.items():
        g = rank.granulated_kendall(m, gap, hparams)
        c = rank.conditional_mutual_information(m, gap, hparams)
        s = rank.sign_error(m, gap, hparams)
        print(f"{name:<26}{g.tau:>8.3f}{g.psi:>8.3f}{c.score:>8.3f}{s.overall.max:>14.3f}")
    X = np.column_stack(list(measures.values()))
    print("\nPairwise Kendall tau between the measures (kendalltau_matrix):")
    print(np.array2string(rank.kendalltau_matrix(X), precision=3, suppress_small=True))


def _demo(args: argparse.Namespace) -> int:
    rng = np.random.default_rng(args.seed)
    print(f"genlab {genlab.__version__}: demo on generated data (seed {args.seed})")
    _demo_rank(rng, args.n)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genlab", description=genlab.__doc__.splitlines()[0] if genlab.__doc__ else None
    )
    parser.add_argument("--version", action="version", version=f"genlab {genlab.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the kernels on generated data and print the results")
    demo.add_argument("--n", type=int, default=1_000_000, help="pairs for the Kendall tau timing")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``genlab`` command."""
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
