"""Per-layer compressed coding rate R^c through depth, at initialization and after training.

The first finding of Hu, Zou, Xu (NeurIPS 2024): in the released CRATE ("crate"), the MSSA block
with its skip connection does not compress: R^c *increases* layer by layer. This script measures it
on the embedded digits data for "crate" and "crate-n" (MSSA sign flipped, tied output), with
CRATE's measurement convention (R^c of each layer's qkv projection of LN(Z^l), class token
included, mean over the test images), with and without per-head token normalization.

Usage::

    python examples/srr_through_depth.py                 # writes docs/images/srr_through_depth.png
    python examples/srr_through_depth.py --seeds 1 --epochs 20 --out /tmp/quick.png

Runs on the CPU in a few minutes (2 variants x ``--seeds`` models of depth ``--depth``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib
import numpy as np
import torch

from genlab.torch.data import load_dataset
from genlab.torch.models import build_model
from genlab.torch.srr import measure_srr
from genlab.torch.train import TrainConfig, train

matplotlib.use("Agg")
import matplotlib.pyplot as plt

VARIANTS = ("crate", "crate-n")
NORMALIZATIONS = (False, True)


def profiles(
    variant: str, seed: int, args: argparse.Namespace
) -> dict[tuple[str, bool], np.ndarray]:
    """R^c per layer at init and after training, for each token normalization."""
    data = load_dataset("digits")
    model = build_model(
        variant, num_classes=10, input_shape=data.input_shape, depth=args.depth, seed=seed
    )

    def measure(stage: str) -> None:
        for normalize in NORMALIZATIONS:
            profile = measure_srr(
                model, data.test, eps=args.eps, convention="crate", normalize_tokens=normalize
            )
            out[(stage, normalize)] = profile.compressed_coding_rate

    out: dict[tuple[str, bool], np.ndarray] = {}
    measure("init")
    config = TrainConfig(optimizer="adam", lr=1e-3, epochs=args.epochs, ce_target=0.01, seed=seed)
    result = train(model, data, config)
    print(
        f"{variant} seed {seed}: {result.epochs} epochs, train CE {result.train_loss:.4f}, "
        f"test accuracy {result.test_accuracy:.3f}, converged {result.converged}"
    )
    measure("trained")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--depth", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=80)
    parser.add_argument("--eps", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("docs/images/srr_through_depth.png"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    runs = {v: [profiles(v, seed, args) for seed in range(args.seeds)] for v in VARIANTS}
    layers = np.arange(1, args.depth + 1)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
    colors = {"crate": "tab:blue", "crate-n": "tab:red"}
    for ax, normalize in zip(axes, NORMALIZATIONS, strict=True):
        for variant in VARIANTS:
            for stage, style in (("init", "--"), ("trained", "-")):
                curves = np.stack([run[(stage, normalize)] for run in runs[variant]])
                mean, sd = curves.mean(0), curves.std(0)
                ax.plot(layers, mean, style, color=colors[variant], label=f"{variant}, {stage}")
                ax.fill_between(layers, mean - sd, mean + sd, color=colors[variant], alpha=0.12)
                print(f"{variant:8s} {stage:8s} normalized={normalize!s:5s} R^c:", mean.round(2))
        title = "tokens unit-normalized per head" if normalize else "raw tokens"
        ax.set_title(f"R^c of qkv(LN(Z^l)), {title}")
        ax.set_xlabel("layer l")
        ax.set_ylabel(f"R^c (eps={args.eps}), mean over test images")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(
        f"digits, depth {args.depth}, {args.seeds} seed(s) (band: +-1 sd over seeds)", fontsize=10
    )
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
