"""The typed exceptions of genlab.errors: built in one place, subclasses of the built-in exception
a drop-in user expects, raised by the Rust core and the numpy layer alike."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from genlab import _core, attention, errors, rank, rate
from genlab.errors import (
    DTypeError,
    EmptyInputError,
    InvalidArgumentError,
    NonFiniteError,
    ShapeError,
    TooLargeError,
)


def test_hierarchy() -> None:
    for cls in (ShapeError, NonFiniteError, EmptyInputError, TooLargeError):
        assert issubclass(cls, InvalidArgumentError)
    assert issubclass(errors.NotPositiveDefiniteError, InvalidArgumentError)
    assert issubclass(InvalidArgumentError, ValueError)
    assert issubclass(DTypeError, TypeError)
    # One definition: genlab.errors re-exports the extension's classes.
    assert errors.ShapeError is _core.ShapeError
    # Errors cross process boundaries (study workers, Ray) intact.
    again = pickle.loads(pickle.dumps(ShapeError("x: expected 3, got 2")))
    assert isinstance(again, ShapeError)
    assert str(again) == "x: expected 3, got 2"


def test_the_numpy_layer_raises_typed_errors() -> None:
    with pytest.raises(ShapeError, match="y: expected the same length as x"):
        rank.kendalltau([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(InvalidArgumentError, match="variant: expected one of"):
        rank.kendalltau([1.0, 2.0], [1.0, 2.0], variant="d")
    with pytest.raises(EmptyInputError, match="measure: expected at least 1 element"):
        rank.granulated_kendall([], [], {"lr": []})
    with pytest.raises(NonFiniteError, match=r"hparams\['lr'\]: contains NaN"):
        rank.granulated_kendall([1.0, 2.0], [1.0, 2.0], {"lr": [1.0, np.nan]})


def test_the_core_raises_typed_errors() -> None:
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(2, 5, 3))
    Z[1, 2, 0] = np.nan
    with pytest.raises(NonFiniteError, match="contains NaN or infinity"):
        rate.coding_rate(Z, eps=0.5)
    q = 1e-3 * rng.normal(size=(8, 64))  # small logits: the degree is fine, its rank is not
    with pytest.raises(TooLargeError, match="would need"):
        attention.tensor_attention_poly(q, q, q, q, q, degree=20)
    # The numpy layer casts to a common dtype; the extension refuses a mix it is handed.
    data = rng.normal(size=(20, 2))
    with pytest.raises(DTypeError, match="expected the same dtype"):
        _core.kde.log_density(data, data.astype(np.float32), bandwidth=0.5)
