"""Calibration of a classifier on held-out data: the expected calibration error (ECE).

Top-label ECE with equal-width confidence bins (Guo et al. 2017): with confidence
``c_i = max_k softmax(logits_i)_k`` and correctness ``a_i`` (the argmax is the label), the
examples are put in ``bins`` bins ``((b - 1) / B, b / B]`` by confidence, and::

    ECE = sum_b (|B_b| / n) |mean_{i in B_b} a_i - mean_{i in B_b} c_i|

0 is perfect calibration; an over-confident model has a large ECE. The value depends on the
number of bins (15 is the common choice, and the default).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from genlab._validation import check_int
from genlab.torch._modules import evaluation_mode, model_device
from genlab.torch.data import Batches

__all__ = ["expected_calibration_error", "expected_calibration_error_of"]


@torch.no_grad()
def expected_calibration_error(
    model: nn.Module, data: Dataset[Any], *, bins: int = 15, batch_size: int = 1024
) -> float:
    """Top-label expected calibration error of ``model`` on ``data`` (module docstring), in
    evaluation mode.

    Examples
    --------
    >>> import torch
    >>> from torch.utils.data import TensorDataset
    >>> from genlab.torch.calibration import expected_calibration_error
    >>> class Fixed(torch.nn.Module):  # always 80% sure of class 0
    ...     def forward(self, x):
    ...         return torch.log(torch.tensor([[0.8, 0.2]])).expand(len(x), 2)
    >>> data = TensorDataset(torch.zeros(10, 1), torch.tensor([0] * 8 + [1] * 2))
    >>> round(expected_calibration_error(Fixed(), data), 6)  # right 8 times in 10: calibrated
    0.0
    """
    check_int(bins, "bins", minimum=1)
    n = len(data)  # type: ignore[arg-type]
    if n == 0:
        raise ValueError("data: the held-out set is empty")
    confidences, correct = [], []
    with evaluation_mode(model):
        for x, y in Batches(data, model_device(model)).iterate(batch_size):
            confidence, right = top_label(model(x), y)
            confidences.append(confidence)
            correct.append(right)
    return _ece(torch.cat(confidences), torch.cat(correct), bins)


def _ece(confidence: Tensor, correct: Tensor, bins: int) -> float:
    """ECE from each example's top-label confidence and correctness (float64, CPU)."""
    n = len(confidence)
    # Bin b holds confidences in ((b - 1) / B, b / B]; a confidence is at least 1 / classes > 0.
    index = torch.clamp(torch.ceil(confidence * bins).long() - 1, 0, bins - 1)
    # sum_b (|B_b| / n) |mean acc - mean conf| = sum_b |sum acc - sum conf| / n
    accuracy_sums = torch.bincount(index, weights=correct, minlength=bins)
    confidence_sums = torch.bincount(index, weights=confidence, minlength=bins)
    return float((accuracy_sums - confidence_sums).abs().sum()) / n


def top_label(logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Each example's top-label confidence and whether that label is right (float64, on the
    CPU), from logits (..., classes) and labels (...)."""
    probabilities = torch.softmax(logits.double(), dim=-1)
    confidence, predicted = probabilities.max(dim=-1)
    return confidence.cpu(), (predicted == labels).double().cpu()


def expected_calibration_error_of(logits: Tensor, labels: Tensor, *, bins: int = 15) -> float:
    """:func:`expected_calibration_error` from logits already computed (one model's, (n,
    classes), and its labels)."""
    check_int(bins, "bins", minimum=1)
    if len(labels) == 0:
        raise ValueError("data: the held-out set is empty")
    return _ece(*top_label(logits, labels), bins)
