"""Expansion of a study's grid into runs: one run per (grid point, seed)."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from collections.abc import Mapping
from typing import Any

from genlab.study.config import Scalar, StudyConfig

__all__ = ["RunSpec", "expand"]


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One model to train and measure.

    Attributes
    ----------
    run_id : str
        Stable identifier: a hash of every option and the seed, so that a resumed study
        recognizes finished runs.
    hparams : dict
        The values of the grid axes for this run (what the ranking conditions on).
    seed : int
        Training seed.
    data, model, train : dict
        Complete options for the dataset, the model and the training loop.
    """

    run_id: str
    hparams: Mapping[str, Scalar]
    seed: int
    data: Mapping[str, Any]
    model: Mapping[str, Any]
    train: Mapping[str, Any]


def _run_id(
    data: Mapping[str, Any], model: Mapping[str, Any], train: Mapping[str, Any], seed: int
) -> str:
    blob = json.dumps(
        {"data": dict(data), "model": dict(model), "train": dict(train), "seed": seed},
        sort_keys=True,
        default=str,
    ).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def expand(config: StudyConfig) -> list[RunSpec]:
    """Every run of the study, grid points in the order of the axes, seeds innermost."""
    axes = list(config.grid)
    runs = []
    for point in itertools.product(*(config.grid[a] for a in axes)):
        hparams = dict(zip(axes, point, strict=True))
        sections: dict[str, dict[str, Any]] = {
            "data": dict(config.data),
            "model": dict(config.model),
            "train": dict(config.train),
        }
        for axis, value in hparams.items():
            sections[config.axis_table(axis)][axis] = value
        for seed in config.seeds:
            runs.append(
                RunSpec(
                    run_id=_run_id(sections["data"], sections["model"], sections["train"], seed),
                    hparams=hparams,
                    seed=seed,
                    data=sections["data"],
                    model=sections["model"],
                    train=sections["train"],
                )
            )
    return runs
