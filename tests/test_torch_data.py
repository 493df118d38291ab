"""genlab.torch.data: the digits default (split, subsample, label noise) and the torchvision path
(against a stand-in torchvision module; nothing is downloaded)."""

from __future__ import annotations

import sys
import types
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from sklearn.datasets import load_digits  # noqa: E402

from genlab.torch.data import Batches, DatasetSplit, LabelledSubset, dataset_info, load_dataset  # noqa: E402


def _rows(x: Any) -> set[bytes]:
    return {row.tobytes() for row in np.asarray(x).reshape(len(x), -1)}


def test_digits_default_split() -> None:
    data = load_dataset()
    assert isinstance(data, DatasetSplit)
    assert (data.name, data.num_classes, data.input_shape, data.noisy_labels) == (
        "digits",
        10,
        (1, 8, 8),
        0,
    )
    x_train, y_train = data.train.tensors
    x_test, y_test = data.test.tensors
    assert len(y_train) + len(y_test) == 1797
    assert len(y_test) == 450
    assert x_train.dtype == torch.float32
    assert y_train.dtype == torch.int64
    assert x_train.shape[1:] == (1, 8, 8)
    assert float(x_train.min()) == 0.0
    assert float(x_train.max()) == 1.0
    # pixels are scikit-learn's, scaled by 1/16; train and test partition the data set
    digits = load_digits()
    everything = _rows(digits.images.astype(np.float32) / 16)
    assert _rows(x_train) | _rows(x_test) <= everything
    # stratified: every class holds out about a quarter
    for c in range(10):
        share = float((y_test == c).sum()) / float((torch.cat([y_train, y_test]) == c).sum())
        assert abs(share - 0.25) < 0.01


def test_digits_split_is_fixed() -> None:
    a, b = load_dataset(seed=0), load_dataset(seed=7, train_size=100, label_noise=0.3)
    assert torch.equal(a.test.tensors[0], b.test.tensors[0])
    assert torch.equal(a.test.tensors[1], b.test.tensors[1])


def test_train_size_subsample() -> None:
    full = load_dataset()
    sub = load_dataset(train_size=300, seed=1)
    again = load_dataset(train_size=300, seed=1)
    other = load_dataset(train_size=300, seed=2)
    assert len(sub.train) == 300
    assert torch.equal(sub.train.tensors[0], again.train.tensors[0])
    assert not torch.equal(sub.train.tensors[0], other.train.tensors[0])
    assert _rows(sub.train.tensors[0]) <= _rows(full.train.tensors[0])


def test_label_noise_is_exact_and_seeded() -> None:
    clean = load_dataset(train_size=500, seed=4)
    noisy = load_dataset(train_size=500, seed=4, label_noise=0.2)
    assert torch.equal(clean.train.tensors[0], noisy.train.tensors[0])
    changed = clean.train.tensors[1] != noisy.train.tensors[1]
    assert int(changed.sum()) == noisy.noisy_labels == 100
    assert int(noisy.train.tensors[1].min()) >= 0
    assert int(noisy.train.tensors[1].max()) <= 9
    again = load_dataset(train_size=500, seed=4, label_noise=0.2)
    assert torch.equal(again.train.tensors[1], noisy.train.tensors[1])
    assert torch.equal(clean.test.tensors[1], noisy.test.tensors[1])
    # the new labels spread over the other classes
    assert len(set(noisy.train.tensors[1][changed].tolist())) > 5
    full_noise = load_dataset(label_noise=1.0)
    assert bool((full_noise.train.tensors[1] != load_dataset().train.tensors[1]).all())


@settings(max_examples=15)
@given(
    train_size=st.integers(1, 1347),
    noise=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**31),
)
def test_subsample_and_noise_properties(train_size: int, noise: float, seed: int) -> None:
    clean = load_dataset(train_size=train_size, seed=seed)
    noisy = load_dataset(train_size=train_size, label_noise=noise, seed=seed)
    assert len(noisy.train) == train_size
    changed = int((clean.train.tensors[1] != noisy.train.tensors[1]).sum())
    assert changed == noisy.noisy_labels == round(noise * train_size)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"name": "imagenet"}, ValueError, "name: expected one of 'digits'"),
        ({"train_size": 5000}, ValueError, "has 1347 examples, asked for 5000"),
        ({"train_size": 0}, ValueError, "train_size: expected a positive"),
        ({"train_size": 10.0}, TypeError, "train_size: expected an int"),
        ({"label_noise": 1.5}, ValueError, r"label_noise: expected a number in \[0, 1\]"),
        ({"label_noise": float("nan")}, ValueError, "label_noise: expected a finite"),
        ({"label_noise": "0.1"}, TypeError, "label_noise: expected a real number"),
        ({"seed": 1.0}, TypeError, "seed: expected an int"),
        ({"seed": -1}, ValueError, "seed: expected a non-negative integer"),
        ({"download": "yes"}, TypeError, "download: expected a bool"),
        ({"name": "cifar10"}, ValueError, "root: data set 'cifar10' needs a directory"),
    ],
)
def test_bad_options(kwargs: dict[str, Any], error: type, match: str) -> None:
    # dataset_info checks exactly what load_dataset does, without loading anything.
    for check in (load_dataset, dataset_info):
        with pytest.raises(error, match=match):
            check(**kwargs)


def test_dataset_info_describes_what_load_dataset_returns() -> None:
    full = load_dataset("digits")
    info = dataset_info("digits")
    assert (info.input_shape, info.num_classes, info.train_examples) == (
        full.input_shape,
        full.num_classes,
        len(full.train),
    )
    # The largest train_size allowed is the whole training split.
    assert len(load_dataset("digits", train_size=info.train_examples).train) == 1347


def test_missing_torchvision_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torchvision", None)  # makes the import fail
    with pytest.raises(ImportError, match="pip install torchvision"):
        load_dataset("cifar10", root="/nonexistent")


class _FakeVisionDataset:
    """Stands in for torchvision.datasets.CIFAR10: files are "present" only under root 'here'."""

    def __init__(self, root: str, train: bool, transform: Any, download: bool) -> None:
        if root != "here" and not download:
            raise RuntimeError("Dataset not found or corrupted. You can use download=True")
        n = 20 if train else 8
        self.images = np.random.default_rng(0).integers(0, 255, size=(n, 32, 32, 3))
        self.targets = [i % 10 for i in range(n)]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[Any, int]:
        return self.transform(self.images[i]), self.targets[i]


def _fake_torchvision() -> types.ModuleType:
    module = types.ModuleType("torchvision")

    def to_tensor() -> Any:
        return lambda a: torch.as_tensor(a, dtype=torch.float32).permute(2, 0, 1) / 255

    def normalize(mean: Any, std: Any) -> Any:
        m, s = torch.tensor(mean)[:, None, None], torch.tensor(std)[:, None, None]
        return lambda t: (t - m) / s

    def compose(fns: list[Any]) -> Any:
        def apply(x: Any) -> Any:
            for f in fns:
                x = f(x)
            return x

        return apply

    module.transforms = types.SimpleNamespace(  # type: ignore[attr-defined]
        Compose=compose, ToTensor=to_tensor, Normalize=normalize
    )
    module.datasets = types.SimpleNamespace(CIFAR10=_FakeVisionDataset)  # type: ignore[attr-defined]
    return module


def test_torchvision_path_with_noise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torchvision", _fake_torchvision())
    data = load_dataset("cifar10", root="here", train_size=10, label_noise=0.5, seed=3)
    assert (data.num_classes, data.input_shape, data.name) == (10, (3, 32, 32), "cifar10")
    assert isinstance(data.train, LabelledSubset)
    assert len(data.train) == 10
    assert len(data.test) == 8
    assert data.noisy_labels == 5
    image, label = data.train[0]
    assert image.shape == (3, 32, 32)
    assert label.dtype == torch.int64
    base = data.train.base
    wrong = sum(
        int(data.train[i][1]) != base.targets[int(data.train.indices[i])] for i in range(10)
    )
    assert wrong == 5
    # and the batches iterate through a DataLoader
    xb, yb = next(Batches(data.train, torch.device("cpu")).iterate(4))
    assert xb.shape == (4, 3, 32, 32)
    assert yb.shape == (4,)


def test_torchvision_missing_files(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torchvision", _fake_torchvision())
    with pytest.raises(FileNotFoundError, match=r"not found under '/data/x'.*download=True"):
        load_dataset("cifar10", root="/data/x")
    with pytest.raises(ValueError, match="root: data set 'cifar10' needs a directory"):
        load_dataset("cifar10")


def test_labelled_subset_checks_lengths() -> None:
    with pytest.raises(ValueError, match="one label per index"):
        LabelledSubset(load_dataset().test, np.arange(3), torch.zeros(2, dtype=torch.int64))
