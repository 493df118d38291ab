"""Small facts about a model that several measures need: its device, and running it (or a stack
of them) in evaluation mode without losing the mode it was in."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a model without parameters)."""
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


@contextlib.contextmanager
def evaluation_mode(*models: nn.Module) -> Iterator[None]:
    """The models in evaluation mode (dropout off, BatchNorm on its running statistics), then
    each back in the mode it was in, also when the body raises."""
    was_training = [model.training for model in models]
    for model in models:
        model.eval()
    try:
        yield
    finally:
        for model, mode in zip(models, was_training, strict=True):
            model.train(mode)
