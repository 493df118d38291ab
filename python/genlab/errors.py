"""The exceptions and warnings genlab raises.

Every error about an argument is a :class:`ValueError` (or a :class:`TypeError` for the wrong kind
or dtype), so code written for scipy or scikit-learn catches it as before; the subclasses below
let a caller catch precisely. The classes are defined by the extension's one error-mapping place
(``rust/genlab-py/src/errors.rs``) and the numpy layer raises the same ones.

Exceptions
----------
InvalidArgumentError (ValueError)
    An argument has a value the function cannot accept (an option outside its set, a number out
    of range). The classes below are its subclasses.
ShapeError
    Array shapes that do not fit together.
NonFiniteError
    An array that must be finite holds NaN or infinity.
EmptyInputError
    An array with too few elements.
TooLargeError
    A computation that would need more memory or time than is reasonable.
NotPositiveDefiniteError
    A matrix that must be positive definite is not, even after the allowed jitter.
DTypeError (TypeError)
    Arrays of dtypes that cannot be used together.

Warnings
--------
DegenerateDataWarning, NumericalWarning, ResourceUseWarning
"""

from __future__ import annotations

from genlab._core import (
    DTypeError,
    EmptyInputError,
    InvalidArgumentError,
    NonFiniteError,
    NotPositiveDefiniteError,
    ShapeError,
    TooLargeError,
)

__all__ = [
    "DTypeError",
    "DegenerateDataWarning",
    "EmptyInputError",
    "InvalidArgumentError",
    "MeasureFailedWarning",
    "MeasureUnavailableWarning",
    "NonFiniteError",
    "NotPositiveDefiniteError",
    "NumericalWarning",
    "ResourceUseWarning",
    "ShapeError",
    "TooLargeError",
]


class DegenerateDataWarning(RuntimeWarning):
    """The data leave a result undefined (too few observations, a constant variable), so it is NaN."""


class MeasureFailedWarning(RuntimeWarning):
    """A registered measure's function raised: its value is NaN and the error is recorded, the
    other measures are computed as usual."""


class MeasureUnavailableWarning(UserWarning):
    """A requested measure needs something that was not given (the initial weights, the
    training record, a genlab model): its value is NaN, never a guess."""


class NumericalWarning(RuntimeWarning):
    """A computation needed a numerical safeguard (for example a diagonal jitter) to finish."""


class ResourceUseWarning(RuntimeWarning):
    """A request for more resources than the machine has was scaled down (for example ``n_jobs``
    above the number of cores)."""
