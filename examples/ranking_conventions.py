"""Why the ranking conventions matter, in numbers (the figures quoted in docs/formulas/).

Run from the repository root (about 20 s on 2 cores):

    python examples/ranking_conventions.py

1. tau-a and tau-b disagree on a tie-heavy measure: params_adj of the published digits study
   takes 4 values over the ranked runs.
2. The two conditional-MI rules give different scores on the same data.
3. The gradient noise of one model tracks the mini-batch size it is measured at (about 1 / B),
   which is why every model is measured at one batch size.
"""

from __future__ import annotations

import numpy as np
import torch

from genlab import rank
from genlab.study.store import Store
from genlab.torch.data import load_dataset
from genlab.torch.models import build_model
from genlab.torch.train import TrainConfig, gradient_noise, train

STORE = "docs/results/digits-crate"


def main() -> None:
    runs = [r for r in Store(STORE).records() if r.converged]
    gap = np.array([r.loss_gap for r in runs])
    hparams = {a: [str(r.hparams[a]) for r in runs] for a in ("family", "lr", "train_size")}

    params = np.array([r.measures["params_adj"] for r in runs])
    tau_a = rank.kendalltau(params, gap, variant="a").statistic
    tau_b = rank.kendalltau(params, gap).statistic
    print(
        f"1. params_adj ({len(set(params))} values, {len(runs)} runs): "
        f"tau-a {tau_a:.3f}, tau-b {tau_b:.3f}"
    )

    measure = np.array([r.measures["log_sum_of_spec_adj"] for r in runs])
    genlab = rank.conditional_mutual_information(measure, gap, hparams).score
    pgdl = rank.conditional_mutual_information(measure, gap, hparams, convention="pgdl").score
    print(
        f"2. CMI of log_sum_of_spec_adj: genlab's rule {genlab:.4f}, the PGDL program's {pgdl:.4f}"
    )

    torch.manual_seed(0)
    data = load_dataset("digits", train_size=800)
    model = build_model(
        "crate",
        num_classes=10,
        input_shape=data.input_shape,
        dim=32,
        depth=3,
        heads=4,
        patch_size=2,
        seed=0,
    )
    train(model, data, TrainConfig(optimizer="adam", lr=0.003, epochs=100, ce_target=0.01))
    noise = {b: gradient_noise(model, data.train, b) for b in (16, 64, 256)}
    print(
        "3. gradient noise of one trained CRATE at batch size 16 / 64 / 256: "
        + " / ".join(f"{v:.3f}" for v in noise.values())
    )


if __name__ == "__main__":
    main()
