"""Layer-wise sparse rate reduction (SRR) of a model, and SRR as a training regularizer.

Every quantity comes from :mod:`genlab.rate` / :mod:`genlab.torch.rate` (one home per formula),
applied to the per-layer tensors a genlab model reports with ``return_intermediates=True``
(:class:`genlab.torch.models.LayerIntermediates`). Conventions (``docs/formulas/rate.md``): tokens are
rows, the class token is included, ``eps`` is epsilon (not epsilon^2), sparsity is ``||Z||_0 / N``
(nonzero entries per token, between 0 and d), and the SRR measure of Hu et al. (2024) is
``sparsity + R^c - R`` (lower is better).

Two conventions decide which tokens of layer ``l`` are coded (``convention=``):

- ``"output"`` (default): the layer's output ``Z^{l+1}`` (CRATE: the ISTA output) against the
  layer's own subspaces ``U^l``: ``R = R(Z^{l+1})``, ``R^c = R^c(Z^{l+1}; U^l)``, sparsity of
  ``Z^{l+1}``, and the SRR measure is exactly ``genlab.rate.srr_measure(Z^{l+1}, U^l)``.
- ``"crate"``: the convention of CRATE's measurement script: ``R^c`` of the hooked head tokens
  ``qkv(LN(Z^l))`` (shape (B, K, N, p), optionally unit-normalized within each head), ``R`` of the
  tokens they project, ``LN(Z^l)``, and the sparsity of the ISTA output ``Z^{l+1}``; the SRR
  measure is their combination ``sparsity + R^c - R``.

The sparsity term is normalized per token (``sparsity_normalization="token"``: nonzero entries
per token, between 0 and d, the objective's ``||Z||_0 / N``) or as a fraction of the entries
(``"fraction"``: ``||Z||_0 / (N d)``, between 0 and 1, as the SRR paper reports it).

:data:`SRR_PRESETS` names the two settings users compare: ``"crate"`` reproduces the CRATE
authors' measurement script (convention "crate", eps = 0.1, tokens unit-normalized within each
head, sparsity as a fraction) and ``"output"`` measures the SRR objective itself on the layer
outputs (convention "output", eps = 0.5, raw tokens, sparsity per token).

Values are computed per image and summarized as mean and standard deviation over images.
Measurement runs without gradients on the Rust kernels (CPU) or in torch (CUDA).
"""

from __future__ import annotations

import dataclasses
import random
import types
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from genlab._options import check_eps
from genlab._validation import check_bool, check_choice
from genlab.torch import rate as trate
from genlab.torch.data import Batches
from genlab.torch.models import IntermediatesModel, LayerIntermediates

__all__ = [
    "CONVENTIONS",
    "SPARSITY_NORMALIZATIONS",
    "SRR_PRESETS",
    "SRRProfile",
    "SRRSettings",
    "layer_srr",
    "measure_srr",
    "srr_penalty",
]

#: Accepted ``convention`` values.
CONVENTIONS: tuple[str, ...] = ("output", "crate")
#: Accepted ``sparsity_normalization`` values.
SPARSITY_NORMALIZATIONS: tuple[str, ...] = ("token", "fraction")
_PENALTY_MODES = ("random-layer", "all-layers")


@dataclasses.dataclass(frozen=True)
class SRRSettings:
    """How a model's SRR is measured: which tokens, eps, token normalization, sparsity scale."""

    convention: str
    eps: float
    normalize_tokens: bool
    sparsity_normalization: str

    def __post_init__(self) -> None:
        check_choice(self.convention, "convention", CONVENTIONS)
        check_eps(self.eps)
        check_bool(self.normalize_tokens, "normalize_tokens")
        check_choice(self.sparsity_normalization, "sparsity_normalization", SPARSITY_NORMALIZATIONS)


#: Named measurement settings: ``"crate"`` (the CRATE authors' script) and ``"output"`` (the SRR
#: objective on the layer outputs).
SRR_PRESETS: Mapping[str, SRRSettings] = types.MappingProxyType(
    {
        "crate": SRRSettings(
            convention="crate", eps=0.1, normalize_tokens=True, sparsity_normalization="fraction"
        ),
        "output": SRRSettings(
            convention="output", eps=0.5, normalize_tokens=False, sparsity_normalization="token"
        ),
    }
)


@dataclasses.dataclass(frozen=True)
class SRRProfile:
    """Per-layer SRR quantities of one model on a set of images (means and std over images).

    Attributes
    ----------
    coding_rate, coding_rate_std : ndarray, shape (L,)
        R per layer.
    compressed_coding_rate, compressed_coding_rate_std : ndarray, shape (L,)
        R^c per layer.
    sparsity, sparsity_std : ndarray, shape (L,)
        Nonzeros of the layer output: per token, ``||Z^{l+1}||_0 / N``, or as a fraction of the
        entries, ``||Z^{l+1}||_0 / (N d)`` (``sparsity_normalization``).
    srr_measure, srr_measure_std : ndarray, shape (L,)
        ``sparsity + R^c - R`` per layer (lower is better).
    n_samples : int
        Images measured.
    eps : float
        Epsilon of the coding rates.
    normalize_tokens : bool
        Whether tokens were unit-normalized (within each head for R^c).
    convention : str
        "output" or "crate" (see the module docstring).
    sparsity_normalization : str
        "token" (nonzeros per token) or "fraction" (of the entries).
    """

    coding_rate: NDArray[np.float64]
    coding_rate_std: NDArray[np.float64]
    compressed_coding_rate: NDArray[np.float64]
    compressed_coding_rate_std: NDArray[np.float64]
    sparsity: NDArray[np.float64]
    sparsity_std: NDArray[np.float64]
    srr_measure: NDArray[np.float64]
    srr_measure_std: NDArray[np.float64]
    n_samples: int
    eps: float
    normalize_tokens: bool
    convention: str
    sparsity_normalization: str = "token"

    @property
    def depth(self) -> int:
        """Number of layers L."""
        return len(self.srr_measure)

    @property
    def rate_reduction(self) -> NDArray[np.float64]:
        """``R - R^c`` per layer (mean over images)."""
        return self.coding_rate - self.compressed_coding_rate

    def summary(self) -> dict[str, float]:
        """The per-model summaries: last-layer value and mean over layers of every quantity.

        Keys ``<quantity>_last`` and ``<quantity>_mean`` for ``srr_measure``,
        ``compressed_coding_rate``, ``coding_rate``, ``rate_reduction`` and ``sparsity`` (the
        names of the SRR family in :data:`genlab.torch.measures.MEASURES`).
        """
        out: dict[str, float] = {}
        for name in (
            "srr_measure",
            "compressed_coding_rate",
            "coding_rate",
            "rate_reduction",
            "sparsity",
        ):
            values = np.asarray(getattr(self, name), dtype=np.float64)
            out[f"{name}_last"] = float(values[-1])
            out[f"{name}_mean"] = float(values.mean())
        return out


def layer_srr(
    layer: LayerIntermediates,
    *,
    eps: float,
    normalize_tokens: bool = False,
    convention: str = "output",
    lam: float = 1.0,
    sparsity_normalization: str = "token",
) -> dict[str, Tensor]:
    """R, R^c, sparsity and the SRR measure of one layer, per image (shape (B,) each).

    Differentiable when the layer's tensors carry gradients (the sparsity is the l0 count and
    passes none; see :func:`srr_penalty` for the training form).

    Parameters
    ----------
    layer : LayerIntermediates
        One entry of ``model(x, return_intermediates=True)[1]``.
    eps : float
        Epsilon of the coding rates (not epsilon^2).
    normalize_tokens : bool
        Unit-normalize tokens (within each head for R^c) before coding them.
    convention : {"output", "crate"}
        Which tokens are coded (module docstring).
    lam : float
        Weight of the sparsity in the SRR measure (1 in the paper).
    sparsity_normalization : {"token", "fraction"}
        Nonzero entries per token, or the fraction of nonzero entries (module docstring).

    Returns
    -------
    dict of str to Tensor
        ``coding_rate``, ``compressed_coding_rate``, ``sparsity``, ``srr_measure``, in float64
        (the tokens are converted first, so float32 models lose nothing in the result).
    """
    eps = check_eps(eps)
    normalize_tokens = check_bool(normalize_tokens, "normalize_tokens")
    check_choice(convention, "convention", CONVENTIONS)
    check_choice(sparsity_normalization, "sparsity_normalization", SPARSITY_NORMALIZATIONS)
    output = layer.output.double()
    if convention == "output" and sparsity_normalization == "token":
        subspaces = layer.subspaces.double()
        norm = normalize_tokens
        return {
            "coding_rate": trate.coding_rate(output, eps=eps, normalize_tokens=norm),
            "compressed_coding_rate": trate.compressed_coding_rate(
                output, subspaces, eps=eps, normalize_tokens=norm
            ),
            "sparsity": trate.sparsity(output),
            "srr_measure": trate.srr_measure(
                output, subspaces, eps=eps, lam=lam, normalize_tokens=norm
            ),
        }
    if convention == "output":
        subspaces = layer.subspaces.double()
        rc = trate.compressed_coding_rate(
            output, subspaces, eps=eps, normalize_tokens=normalize_tokens
        )
        r = trate.coding_rate(output, eps=eps, normalize_tokens=normalize_tokens)
    else:
        rc = trate.compressed_coding_rate_projected(
            layer.head_tokens.double(), eps=eps, normalize_tokens=normalize_tokens
        )
        r = trate.coding_rate(
            layer.normalized_input.double(), eps=eps, normalize_tokens=normalize_tokens
        )
    nonzeros = trate.sparsity(output)
    if sparsity_normalization == "fraction":
        nonzeros = nonzeros / output.shape[-1]
    return {
        "coding_rate": r,
        "compressed_coding_rate": rc,
        "sparsity": nonzeros,
        "srr_measure": lam * nonzeros + rc - r,
    }


def _input_batches(
    data: Dataset[Any] | DataLoader[Any] | Tensor | Iterable[Any],
    device: torch.device,
    max_samples: int | None,
    batch_size: int,
    seed: int,
) -> Iterator[Tensor]:
    """Input batches on ``device``, at most ``max_samples`` inputs in all."""
    if isinstance(data, Tensor):
        inputs: Iterable[Any] = torch.split(data, batch_size)
    elif isinstance(data, Dataset) and not isinstance(data, DataLoader):
        n = len(data)  # type: ignore[arg-type]
        if max_samples is not None and max_samples < n:
            keep = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:max_samples]
            data = torch.utils.data.Subset(data, keep.sort().values.tolist())
        inputs = (x for x, _ in Batches(data, device).iterate(batch_size))
    else:
        inputs = data
    seen = 0
    for item in inputs:
        x = item[0] if isinstance(item, (tuple, list)) else item
        if not isinstance(x, Tensor):
            raise TypeError(
                f"loader_or_dataset: expected batches of tensors (or (inputs, labels) pairs), got "
                f"{type(x).__name__}"
            )
        if max_samples is not None:
            x = x[: max_samples - seen]
        if len(x) == 0:
            break
        seen += len(x)
        yield x.to(device)


@torch.no_grad()
def measure_srr(
    model: nn.Module,
    loader_or_dataset: Dataset[Any] | DataLoader[Any] | Tensor | Iterable[Any],
    *,
    eps: float = 0.5,
    normalize_tokens: bool = False,
    convention: str = "output",
    lam: float = 1.0,
    sparsity_normalization: str = "token",
    max_samples: int | None = None,
    batch_size: int = 256,
    seed: int = 0,
) -> SRRProfile:
    """Per-layer R, R^c, sparsity and SRR measure of ``model`` on ``data``.

    Parameters
    ----------
    model : IntermediatesModel
        A genlab model (``forward(x, return_intermediates=True)``); evaluated in evaluation mode
        on its own device and left in the mode it was in.
    loader_or_dataset : Dataset, DataLoader, Tensor or iterable
        A data set of ``(input, label)`` items, a loader or iterable of batches (tensors or
        ``(inputs, labels)`` pairs), or a tensor of inputs.
    eps : float
        Epsilon of the coding rates (not epsilon^2).
    normalize_tokens : bool
        Unit-normalize every token (within each head for R^c) before coding it; the CRATE
        measurement script does.
    convention : {"output", "crate"}
        Which tokens are coded (module docstring).
    lam : float
        Weight of the sparsity in the SRR measure.
    sparsity_normalization : {"token", "fraction"}
        Nonzero entries per token, or the fraction of nonzero entries.
    max_samples : int, optional
        Measure at most this many images (a seeded random subset of a Dataset; the first ones of
        a loader or tensor).
    batch_size : int
        Images per forward pass (for a Dataset or tensor).
    seed : int
        Seed of the subset.

    Returns
    -------
    SRRProfile

    Raises
    ------
    TypeError
        ``model`` is not a genlab model, or ``loader_or_dataset`` does not yield tensors.
    ValueError
        Bad ``eps``, ``convention`` or ``max_samples``, or no images.

    Examples
    --------
    >>> from genlab.torch.data import load_dataset
    >>> from genlab.torch.models import build_model
    >>> from genlab.torch.srr import measure_srr
    >>> data = load_dataset("digits")
    >>> model = build_model("crate", num_classes=10, input_shape=data.input_shape, depth=3, seed=0)
    >>> profile = measure_srr(model, data.test, eps=0.5, max_samples=64)
    >>> profile.compressed_coding_rate.shape, profile.n_samples
    ((3,), 64)
    """
    if not isinstance(model, IntermediatesModel):
        raise TypeError(
            "model: expected a genlab model with per-layer intermediates "
            f"(genlab.torch.models), got {type(model).__name__}"
        )
    eps = check_eps(eps)
    check_bool(normalize_tokens, "normalize_tokens")
    check_choice(convention, "convention", CONVENTIONS)
    check_choice(sparsity_normalization, "sparsity_normalization", SPARSITY_NORMALIZATIONS)
    if max_samples is not None and (isinstance(max_samples, bool) or max_samples < 1):
        raise ValueError(f"max_samples: expected a positive int or None, got {max_samples!r}")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    per_image: dict[str, list[Tensor]] = {}
    try:
        for x in _input_batches(loader_or_dataset, device, max_samples, batch_size, seed):
            _, layers = model(x, return_intermediates=True)
            values = [
                layer_srr(
                    layer,
                    eps=eps,
                    normalize_tokens=normalize_tokens,
                    convention=convention,
                    lam=lam,
                    sparsity_normalization=sparsity_normalization,
                )
                for layer in layers
            ]
            for key in values[0]:
                # (L, B) for this batch
                per_image.setdefault(key, []).append(torch.stack([v[key].cpu() for v in values]))
    finally:
        model.train(was_training)
    if not per_image:
        raise ValueError("loader_or_dataset: expected at least one image, got none")
    stats = {k: torch.cat(v, dim=1).numpy() for k, v in per_image.items()}
    n = stats["srr_measure"].shape[1]

    def mean_std(key: str) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        v = stats[key]
        return v.mean(axis=1), v.std(axis=1, ddof=1) if n > 1 else np.zeros(len(v))

    r, r_std = mean_std("coding_rate")
    rc, rc_std = mean_std("compressed_coding_rate")
    sp, sp_std = mean_std("sparsity")
    srr, srr_std = mean_std("srr_measure")
    return SRRProfile(
        coding_rate=r,
        coding_rate_std=r_std,
        compressed_coding_rate=rc,
        compressed_coding_rate_std=rc_std,
        sparsity=sp,
        sparsity_std=sp_std,
        srr_measure=srr,
        srr_measure_std=srr_std,
        n_samples=int(n),
        eps=eps,
        normalize_tokens=bool(normalize_tokens),
        convention=convention,
        sparsity_normalization=sparsity_normalization,
    )


def srr_penalty(
    layers: Sequence[LayerIntermediates],
    *,
    eps: float,
    mode: str = "random-layer",
    normalize_tokens: bool = False,
    rng: random.Random | None = None,
    compute_dtype: torch.dtype = torch.float64,
) -> Tensor:
    """The differentiable SRR regularizer of a forward pass (Hu et al. 2024), a scalar.

    The SRR measure of the "output" convention with the differentiable sparsity:
    ``genlab.torch.rate.srr_measure(Z^{l+1}, U^l, lam=1, sparsity="l1")`` = ``||Z^{l+1}||_1 / N +
    R^c(Z^{l+1}; U^l) - R(Z^{l+1})``, averaged over the batch, at one layer chosen uniformly with
    ``rng`` ("random-layer", the paper's efficient form) or averaged over all layers
    ("all-layers"). Gradients flow into the layer outputs and into the subspaces ``U^l`` (the qkv
    weights).

    Parameters
    ----------
    layers : sequence of LayerIntermediates
        From ``model(x, return_intermediates=True)`` with gradients enabled.
    eps : float
        Epsilon of the coding rates (not epsilon^2).
    mode : {"random-layer", "all-layers"}
        Which layers.
    normalize_tokens : bool
        Unit-normalize tokens before the coding rates.
    rng : random.Random, optional
        Picks the layer in "random-layer" mode (default: a fresh unseeded one).
    compute_dtype : torch.dtype
        Precision of the Gram matrices and Cholesky factors (float64 by default).

    Returns
    -------
    Tensor
        A 0-d tensor in the dtype of the layer outputs (float32 for float16 outputs).
    """
    check_choice(mode, "mode", _PENALTY_MODES)
    if not layers:
        raise ValueError("layers: expected at least one layer, got none")
    if mode == "random-layer":
        chosen = [(rng or random.Random()).randrange(len(layers))]
    else:
        chosen = list(range(len(layers)))
    # At least float32: under mixed precision the layer outputs are float16.
    dtype = torch.promote_types(layers[0].output.dtype, torch.float32)
    total = torch.zeros((), dtype=dtype, device=layers[0].output.device)
    for i in chosen:
        layer = layers[i]
        total = (
            total
            + trate.srr_measure(
                layer.output.to(dtype),
                layer.subspaces.to(dtype),
                eps=eps,
                lam=1.0,
                sparsity="l1",
                normalize_tokens=normalize_tokens,
                compute_dtype=compute_dtype,
            ).mean()
        )
    return total / len(chosen)
