"""Data sets for training and measuring: the embedded digits default, MNIST and CIFAR-10/100.

- ``"digits"`` (the default): scikit-learn's 8 x 8 handwritten digits (1797 images, 10 classes),
  shipped with scikit-learn, so nothing is downloaded. Pixels are scaled from 0..16 to [0, 1]; the
  images have shape (1, 8, 8). The train/test split is fixed (stratified, 25 % of each class held
  out, drawn once with a fixed seed), so every model of a study sees the same test set.
- ``"mnist"``, ``"cifar10"``, ``"cifar100"``: through torchvision from a local directory
  (``root``), downloading only when ``download=True``. Pixels are scaled to [0, 1] and normalized
  per channel with the usual training-set means and standard deviations.

Both study axes that act on the data are here: ``train_size`` (a seeded subsample of the training
split) and ``label_noise`` (a seeded fraction of training labels replaced by a different class;
test labels are never changed).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, TensorDataset

from genlab._validation import check_bool, check_fraction, check_int
from genlab.errors import InvalidArgumentError

__all__ = [
    "DATASETS",
    "Batches",
    "DatasetInfo",
    "DatasetSplit",
    "LabelledSubset",
    "dataset_info",
    "load_dataset",
]

#: Names :func:`load_dataset` accepts.
DATASETS: tuple[str, ...] = ("digits", "mnist", "cifar10", "cifar100")

# Fixed seed of the digits train/test split (independent of ``seed``, which varies per model).
_DIGITS_SPLIT_SEED = 0
_DIGITS_TEST_FRACTION = 0.25

# name -> (torchvision class, input shape, classes, training examples, per-channel mean,
# per-channel std)
_TORCHVISION: dict[
    str, tuple[str, tuple[int, int, int], int, int, tuple[float, ...], tuple[float, ...]]
]
_TORCHVISION = {
    "mnist": ("MNIST", (1, 28, 28), 10, 60_000, (0.1307,), (0.3081,)),
    "cifar10": (
        "CIFAR10",
        (3, 32, 32),
        10,
        50_000,
        (0.4914, 0.4822, 0.4465),
        (0.2470, 0.2435, 0.2616),
    ),
    "cifar100": (
        "CIFAR100",
        (3, 32, 32),
        100,
        50_000,
        (0.5071, 0.4865, 0.4409),
        (0.2673, 0.2564, 0.2762),
    ),
}
# The digits data: 1797 images of 10 classes, 450 of them (a quarter of each class) held out.
_DIGITS_SHAPE, _DIGITS_CLASSES, _DIGITS_TRAIN_EXAMPLES = (1, 8, 8), 10, 1347


@dataclasses.dataclass(frozen=True)
class DatasetSplit:
    """A training set and a test set of one image classification task.

    Attributes
    ----------
    train, test : torch.utils.data.Dataset
        Items are ``(image, label)`` with a float32 image of ``input_shape`` and an int64 label.
        For "digits" both are ``TensorDataset`` (``.tensors`` holds all images and labels).
    num_classes : int
        Number of classes.
    input_shape : tuple of int
        Shape of one image, ``(channels, height, width)``.
    name : str
        Data set name.
    noisy_labels : int
        How many training labels were replaced (``label_noise``).
    """

    train: Dataset[Any]
    test: Dataset[Any]
    num_classes: int
    input_shape: tuple[int, ...]
    name: str
    noisy_labels: int = 0


class LabelledSubset(Dataset[tuple[Tensor, Tensor]]):
    """The items ``indices`` of ``base`` with their labels replaced by ``labels``."""

    def __init__(self, base: Dataset[Any], indices: NDArray[np.int64], labels: Tensor) -> None:
        if len(indices) != len(labels):
            raise ValueError(
                f"labels: expected one label per index ({len(indices)}), got {len(labels)}"
            )
        self.base = base
        self.indices = indices
        self.labels = labels

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        image, _ = self.base[int(self.indices[i])]
        return image, self.labels[i]


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a data set is, known without loading it (:func:`dataset_info`).

    Attributes
    ----------
    name : str
        Data set name.
    input_shape : tuple of int
        Shape of one image, ``(channels, height, width)``.
    num_classes : int
        Number of classes.
    train_examples : int
        Size of the full training split (``train_size`` may be at most this).
    """

    name: str
    input_shape: tuple[int, ...]
    num_classes: int
    train_examples: int


def dataset_info(
    name: str = "digits",
    *,
    root: str | Path | None = None,
    train_size: int | None = None,
    label_noise: float = 0.0,
    seed: int = 0,
    download: bool = False,
) -> DatasetInfo:
    """Check the options of :func:`load_dataset` without loading anything, and describe the data
    set they name (the study harness checks a whole grid this way before training).

    Raises
    ------
    ValueError, TypeError
        As :func:`load_dataset` would for the same options (the message starts with the option).

    Examples
    --------
    >>> from genlab.torch.data import dataset_info
    >>> dataset_info("cifar10", root="data")
    DatasetInfo(name='cifar10', input_shape=(3, 32, 32), num_classes=10, train_examples=50000)
    """
    if not isinstance(name, str) or name.lower() not in DATASETS:
        accepted = ", ".join(repr(d) for d in DATASETS)
        raise InvalidArgumentError(f"name: expected one of {accepted}, got {name!r}")
    name = name.lower()
    if name == "digits":
        info = DatasetInfo(name, _DIGITS_SHAPE, _DIGITS_CLASSES, _DIGITS_TRAIN_EXAMPLES)
    else:
        class_name, shape, num_classes, train_examples, _, _ = _TORCHVISION[name]
        if root is None:
            raise InvalidArgumentError(
                f"root: data set {name!r} needs a directory (root=...) that holds torchvision's "
                f"{class_name} files or where they may be downloaded (download=True)"
            )
        if not isinstance(root, (str, Path)):
            raise TypeError(f"root: expected a path (str), got {type(root).__name__}")
        info = DatasetInfo(name, shape, num_classes, train_examples)
    if train_size is not None:
        check_int(train_size, "train_size", minimum=1)
        if train_size > info.train_examples:
            raise InvalidArgumentError(
                f"train_size: the {name} training split has {info.train_examples} examples, "
                f"asked for {train_size}"
            )
    check_fraction(label_noise, "label_noise", zero=True, one=True)
    # numpy's generators take seeds >= 0 only.
    check_int(seed, "seed", minimum=0)
    check_bool(download, "download")
    return info


def _subsample_and_corrupt(
    labels: NDArray[np.int64],
    num_classes: int,
    *,
    train_size: int | None,
    label_noise: float,
    seed: int,
) -> tuple[NDArray[np.int64], NDArray[np.int64], int]:
    """Indices of the kept training examples, their (possibly corrupted) labels, and #corrupted.

    The subsample is a uniformly random set of ``train_size`` examples; then exactly
    ``round(label_noise * n)`` of them, chosen at random, get a label drawn uniformly from the
    *other* classes, so the fraction of wrong labels is ``label_noise``. Both draws come from
    ``numpy.random.default_rng(seed)``.
    """
    n_total = len(labels)
    rng = np.random.default_rng(seed)
    if train_size is not None and train_size > n_total:
        raise ValueError(
            f"train_size: the training split has {n_total} examples, asked for {train_size}"
        )
    if train_size is None:
        indices = np.arange(n_total, dtype=np.int64)
    else:
        indices = np.sort(rng.choice(n_total, size=train_size, replace=False)).astype(np.int64)
    kept = labels[indices].copy()
    n_noisy = round(label_noise * len(indices))
    if n_noisy:
        flip = rng.choice(len(indices), size=n_noisy, replace=False)
        # An offset in 1..C-1 moves each chosen label to a uniformly random other class.
        offsets = rng.integers(1, num_classes, size=n_noisy)
        kept[flip] = (kept[flip] + offsets) % num_classes
    return indices, kept, n_noisy


def _digits_split() -> tuple[NDArray[np.float32], NDArray[np.int64], NDArray[np.bool_]]:
    """Digits images in [0, 1], labels, and the fixed stratified test mask."""
    try:
        from sklearn.datasets import load_digits  # type: ignore[import-untyped]
    except ImportError as exc:  # pragma: no cover - scikit-learn is part of genlab[torch]
        raise ImportError(
            "the 'digits' data set ships with scikit-learn: install it with "
            "`pip install scikit-learn` (or `pip install 'genlab[torch]'`)"
        ) from exc
    digits = load_digits()
    images = (np.asarray(digits.images, dtype=np.float32) / 16.0)[:, None, :, :]
    labels = np.asarray(digits.target, dtype=np.int64)
    rng = np.random.default_rng(_DIGITS_SPLIT_SEED)
    test = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        n_test = round(_DIGITS_TEST_FRACTION * len(members))
        test[rng.permutation(members)[:n_test]] = True
    return images, labels, test


def _load_digits(
    train_size: int | None, label_noise: float, seed: int
) -> tuple[Dataset[Any], Dataset[Any], int]:
    images, labels, test = _digits_split()
    train_images, train_labels = images[~test], labels[~test]
    indices, kept, n_noisy = _subsample_and_corrupt(
        train_labels, _DIGITS_CLASSES, train_size=train_size, label_noise=label_noise, seed=seed
    )
    train = TensorDataset(torch.from_numpy(train_images[indices]), torch.from_numpy(kept))
    test_set = TensorDataset(torch.from_numpy(images[test]), torch.from_numpy(labels[test]))
    return train, test_set, n_noisy


def _import_torchvision(name: str) -> Any:
    try:
        return importlib.import_module("torchvision")
    except ImportError as exc:
        raise ImportError(
            f"data set {name!r} loads through torchvision, which is not installed: install it "
            "with `pip install torchvision` (matching your torch version), or use the embedded "
            "default name='digits'"
        ) from exc


def _load_torchvision(
    name: str,
    root: str | Path,
    download: bool,
    train_size: int | None,
    label_noise: float,
    seed: int,
) -> tuple[Dataset[Any], Dataset[Any], int]:
    torchvision = _import_torchvision(name)
    class_name, _, num_classes, _, mean, std = _TORCHVISION[name]
    transforms = torchvision.transforms
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])
    cls = getattr(torchvision.datasets, class_name)
    try:
        train = cls(root=str(root), train=True, transform=transform, download=download)
        test = cls(root=str(root), train=False, transform=transform, download=download)
    except RuntimeError as exc:
        hint = (
            "the download failed" if download else "pass download=True to fetch it (needs network)"
        )
        raise FileNotFoundError(
            f"data set {name!r} not found under {str(root)!r}: put torchvision's {class_name} "
            f"files there (the layout torchvision.datasets.{class_name}(root) expects), or "
            f"{hint}. torchvision said: {exc}"
        ) from exc
    labels = np.asarray(train.targets, dtype=np.int64)
    indices, kept, n_noisy = _subsample_and_corrupt(
        labels, num_classes, train_size=train_size, label_noise=label_noise, seed=seed
    )
    return LabelledSubset(train, indices, torch.from_numpy(kept)), test, n_noisy


def load_dataset(
    name: str = "digits",
    *,
    root: str | Path | None = None,
    train_size: int | None = None,
    label_noise: float = 0.0,
    seed: int = 0,
    download: bool = False,
) -> DatasetSplit:
    """Load a classification data set as a train/test :class:`DatasetSplit`.

    Parameters
    ----------
    name : {"digits", "mnist", "cifar10", "cifar100"}
        "digits" is embedded (scikit-learn); the others load through torchvision.
    root : str or Path, optional
        Directory of the torchvision files (needed for every name but "digits").
    train_size : int, optional
        Keep a random subset of this many training examples (drawn with ``seed``).
    label_noise : float
        Fraction of training labels replaced by a uniformly random *different* class (exactly
        ``round(label_noise * n_train)`` of them, drawn with ``seed``).
    seed : int
        Seed of the subsample and the label noise (not of the fixed train/test split).
    download : bool
        Let torchvision download a missing data set into ``root``.

    Returns
    -------
    DatasetSplit

    Raises
    ------
    ValueError
        Unknown name, ``train_size`` larger than the training split, ``label_noise`` outside
        [0, 1], or no ``root`` for a torchvision data set.
    ImportError
        torchvision (or scikit-learn for "digits") is not installed; the message says what to
        install.
    FileNotFoundError
        The torchvision files are not under ``root`` and ``download`` is False.

    Examples
    --------
    >>> from genlab.torch.data import load_dataset
    >>> data = load_dataset("digits", train_size=500, label_noise=0.1, seed=3)
    >>> len(data.train), len(data.test), data.input_shape, data.noisy_labels
    (500, 450, (1, 8, 8), 50)
    """
    info = dataset_info(
        name,
        root=root,
        train_size=train_size,
        label_noise=label_noise,
        seed=seed,
        download=download,
    )
    name, label_noise = info.name, float(label_noise)
    if name == "digits":
        train, test, n_noisy = _load_digits(train_size, label_noise, seed)
    else:
        assert root is not None  # checked by dataset_info
        train, test, n_noisy = _load_torchvision(
            name, root, download, train_size, label_noise, seed
        )
    return DatasetSplit(train, test, info.num_classes, info.input_shape, name, n_noisy)


class Batches:
    """Mini-batches ``(inputs, labels)`` of a data set on ``device``.

    A two-tensor ``TensorDataset`` (the digits data) is moved to ``device`` once and sliced;
    any other data set goes through a ``DataLoader`` (single process) batch by batch.
    """

    def __init__(self, dataset: Dataset[Any], device: torch.device) -> None:
        self.dataset = dataset
        self.device = device
        self.tensors: tuple[Tensor, Tensor] | None = None
        if isinstance(dataset, TensorDataset) and len(dataset.tensors) == 2:
            x, y = dataset.tensors
            self.tensors = (x.to(device), y.to(device))

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def iterate(
        self, batch_size: int, *, generator: torch.Generator | None = None
    ) -> Iterator[tuple[Tensor, Tensor]]:
        """Batches in order, or shuffled with ``generator`` when it is given."""
        if self.tensors is not None:
            x, y = self.tensors
            n = len(y)
            order = torch.randperm(n, generator=generator) if generator is not None else None
            for start in range(0, n, batch_size):
                if order is None:
                    yield x[start : start + batch_size], y[start : start + batch_size]
                else:
                    idx = order[start : start + batch_size].to(self.device)
                    yield x[idx], y[idx]
            return
        loader = DataLoader(
            self.dataset, batch_size=batch_size, shuffle=generator is not None, generator=generator
        )
        for xb, yb in loader:
            yield xb.to(self.device), yb.to(self.device)
