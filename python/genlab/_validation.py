"""Input checks shared by every numpy-facing module.

Every check raises ``TypeError`` for the wrong kind of object or dtype and a ``ValueError`` for
the wrong shape, size or value (the typed subclasses of :mod:`genlab.errors`: ``ShapeError``,
``EmptyInputError``, ``NonFiniteError``, ``InvalidArgumentError``), and names the argument, what
it got and what was expected.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from genlab import _core
from genlab.errors import (
    EmptyInputError,
    InvalidArgumentError,
    NonFiniteError,
    ResourceUseWarning,
    ShapeError,
    TooLargeError,
)

__all__ = [
    "as_float_array",
    "check_bool",
    "check_choice",
    "check_fraction",
    "check_int",
    "check_n_jobs",
    "check_real",
    "check_same_length",
    "encode_hparams",
    "order_preserving_float64",
    "physical_memory",
]

# Integers beyond this magnitude are not all representable as float64.
_EXACT_INT_LIMIT = 2**53


def physical_memory() -> float:
    """Bytes of physical memory (8 GiB where the platform cannot say)."""
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, OSError, ValueError):  # pragma: no cover - non-POSIX
        return 8.0 * 2**30


def _format_bytes(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "bytes" else f"{int(n)} bytes"
        n /= 1024
    raise AssertionError  # pragma: no cover


def _check_copy_size(arr: NDArray[Any], dtype: Any, name: str) -> None:
    """Refuse to make ``arr`` a C-contiguous array of ``dtype`` when that copy would take more
    than half the machine's memory: a broadcast view (``np.broadcast_to``) or a strided slice can
    stand for far more elements than it stores, and its copy would end in a MemoryError, or
    worse, with the process killed by the kernel."""
    if arr.dtype == dtype and arr.flags.c_contiguous:
        return
    needed = float(arr.size) * np.dtype(dtype).itemsize
    limit = physical_memory() / 2
    if needed > limit:
        raise TooLargeError(
            f"{name}: an array of shape {arr.shape} ({arr.size:,} elements) would need "
            f"{_format_bytes(needed)} as a contiguous {np.dtype(dtype).name} copy, more than "
            f"half this machine's memory ({_format_bytes(limit)}); pass it in smaller blocks"
        )


def _contiguous(arr: NDArray[Any], dtype: Any, name: str) -> NDArray[Any]:
    """``arr`` as a C-contiguous array of ``dtype`` (see :func:`_check_copy_size`)."""
    _check_copy_size(arr, dtype, name)
    return np.ascontiguousarray(arr, dtype=dtype)


def _check_not_torch(x: object, name: str) -> None:
    """A torch tensor numpy cannot take as it is: one that requires grad (this API does not
    differentiate), or one on a GPU."""
    if type(x).__module__.split(".")[0] != "torch" or not hasattr(x, "device"):
        return
    if getattr(x, "requires_grad", False):
        raise TypeError(
            f"{name}: a torch tensor that requires grad; this numpy-based function does not "
            f"differentiate: pass {name}.detach(), or use genlab.torch for gradients"
        )
    if getattr(x.device, "type", "cpu") != "cpu":
        raise TypeError(
            f"{name}: a torch tensor on {x.device}; pass {name}.cpu(), or use genlab.torch, "
            "which runs on the tensor's device"
        )


def _numeric(x: ArrayLike, name: str) -> NDArray[Any]:
    _check_not_torch(x, name)
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError, OverflowError) as exc:
        raise TypeError(
            f"{name}: expected an array of numbers, got {type(x).__name__} ({exc})"
        ) from None
    if arr.dtype.kind not in "biuf":
        hint = ""
        if arr.dtype == object and any(
            isinstance(v, int) and not isinstance(v, bool) for v in arr.ravel()[:1000]
        ):
            hint = " (integers outside the 64-bit range become Python objects: scale them first)"
        raise TypeError(
            f"{name}: expected numeric data (bool, integer or float), got dtype {arr.dtype}{hint}"
        )
    return arr


def as_float_array(
    x: ArrayLike,
    name: str,
    *,
    ndim: int | None = None,
    allow_float32: bool = False,
    finite: bool = False,
    min_size: int = 0,
) -> NDArray[Any]:
    """``x`` as a C-contiguous float64 (or float32 when allowed and given) array.

    Parameters
    ----------
    x : array_like
        Input.
    name : str
        Argument name used in error messages.
    ndim : int, optional
        Required number of dimensions.
    allow_float32 : bool
        Keep float32 input as float32 instead of converting it.
    finite : bool
        Reject NaN and infinity.
    min_size : int
        Minimum number of elements.
    """
    arr = _numeric(x, name)
    if ndim is not None and arr.ndim != ndim:
        raise ShapeError(
            f"{name}: expected a {ndim}-D array, got {arr.ndim}-D with shape {arr.shape}"
        )
    dtype = np.float32 if allow_float32 and arr.dtype == np.float32 else np.float64
    out = _contiguous(arr, dtype, name)
    if out.size < min_size:
        raise EmptyInputError(f"{name}: expected at least {min_size} element(s), got {out.size}")
    if finite and not np.isfinite(out).all():
        index = int(np.flatnonzero(~np.isfinite(out.ravel()))[0])
        raise NonFiniteError(
            f"{name}: contains NaN or infinity (first at flat index {index}); all values must be finite"
        )
    return out


def order_preserving_float64(
    x: ArrayLike, name: str, *, ravel: bool = False
) -> NDArray[np.float64]:
    """``x`` as float64 with the order of its values kept exactly.

    Rank statistics only depend on the order of the values. Integers beyond 2**53 would collide in
    float64, so such arrays are replaced by their dense ranks.
    """
    arr = _numeric(x, name)
    _check_copy_size(arr, np.float64, name)  # before the scan below, which copies too
    if ravel:
        arr = arr.ravel()
    if arr.dtype.kind in "iu" and arr.size and int(np.abs(arr).max()) >= _EXACT_INT_LIMIT:
        _, inverse = np.unique(arr, return_inverse=True)
        arr = inverse.reshape(arr.shape)
    return _contiguous(arr, np.float64, name)


def check_same_length(a: NDArray[Any], b: NDArray[Any], name_a: str, name_b: str) -> None:
    """Raise :class:`~genlab.errors.ShapeError` unless ``a`` and ``b`` have the same length along
    axis 0."""
    if len(a) != len(b):
        raise ShapeError(
            f"{name_b}: expected the same length as {name_a} ({len(a)}), got length {len(b)}"
        )


def check_choice(value: object, name: str, choices: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``choices``; else raise with the accepted values listed."""
    if not isinstance(value, str) or value not in choices:
        accepted = ", ".join(repr(c) for c in choices)
        raise InvalidArgumentError(f"{name}: expected one of {accepted}, got {value!r}")
    return value


def check_n_jobs(n_jobs: int | None) -> int | None:
    """Validate an ``n_jobs`` argument (None, a positive count, or -1 for all cores, -2 for all
    but one...). A count above the number of cores is capped there, with a warning: more threads
    than cores only add switching (and 100,000 would start 100,000 OS threads)."""
    if n_jobs is None:
        return None
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)):
        raise TypeError(f"n_jobs: expected an int or None, got {type(n_jobs).__name__}")
    cores = _core.effective_n_jobs(-1)  # the cores the kernels can use (affinity respected)
    if n_jobs < -cores:
        # -k means all cores but k - 1, and at least one (joblib's rule): -cores already is one
        # (and a huge negative int would not fit the extension's 64 bits).
        return -cores
    if n_jobs == 0:
        raise InvalidArgumentError(
            "n_jobs: expected a positive number of threads, -1 (all cores) or None, got 0"
        )
    if n_jobs > cores:
        warnings.warn(
            f"n_jobs={n_jobs} is more than the {cores} cores of this machine; using {cores}",
            ResourceUseWarning,
            stacklevel=3,
        )
        return cores
    return int(n_jobs)


# The largest integer option: what a signed 64-bit integer holds (the extension's sizes and counts
# are 64-bit; a larger Python int would fail there with an OverflowError).
_MAX_INT_OPTION = 2**63 - 1


def check_int(value: object, name: str, *, minimum: int) -> int:
    """``value`` as an int: ``TypeError`` unless an integer (not bool), ``ValueError`` below
    ``minimum`` or above 2**63 - 1."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an integer, got {type(value).__name__}")
    if value < minimum:
        expected = {1: "a positive integer", 0: "a non-negative integer"}.get(
            minimum, f"an integer >= {minimum}"
        )
        raise InvalidArgumentError(f"{name}: expected {expected}, got {value}")
    if value > _MAX_INT_OPTION:
        raise InvalidArgumentError(f"{name}: expected an integer below 2**63, got {value}")
    return int(value)


def check_real(
    value: object, name: str, *, positive: bool = False, nonnegative: bool = False, hint: str = ""
) -> float:
    """``value`` as a finite float: ``TypeError`` unless a real number (not bool), ``ValueError``
    unless finite and, as asked, > 0 or >= 0. ``hint`` is appended to the message."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    out = float(value)
    if positive and not out > 0:
        raise InvalidArgumentError(f"{name}: expected a finite number > 0{hint}, got {value!r}")
    if nonnegative and not out >= 0:
        raise InvalidArgumentError(f"{name}: expected a finite number >= 0{hint}, got {value!r}")
    if not np.isfinite(out):
        raise InvalidArgumentError(f"{name}: expected a finite number{hint}, got {value!r}")
    return out


def check_bool(value: object, name: str) -> bool:
    """``value`` if it is a bool; ``TypeError`` otherwise (``"no"`` or ``0`` are not read as a
    truth value: a string is always true, which is how ``"no"`` came to mean yes)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(
            f"{name}: expected a bool (True or False), got {type(value).__name__} {value!r}"
        )
    return bool(value)


def check_fraction(value: object, name: str, *, zero: bool = False, one: bool = False) -> float:
    """``value`` as a float in the open interval (0, 1), with 0 and/or 1 included as asked:
    ``TypeError`` unless a real number, ``ValueError`` outside."""
    out = check_real(value, name)
    low_ok = out >= 0 if zero else out > 0
    high_ok = out <= 1 if one else out < 1
    if not (low_ok and high_ok):
        interval = f"{'[' if zero else '('}0, 1{']' if one else ')'}"
        raise InvalidArgumentError(f"{name}: expected a number in {interval}, got {value!r}")
    return out


def _value_kind(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (int, float, np.integer, np.floating)):
        return "number"
    if isinstance(value, (str, np.str_)):
        return "str"
    return type(value).__name__


def _axis_values(values: Any, name: str) -> NDArray[Any]:
    """One axis as an array; values of mixed kinds (1 and "1", True and 1) are an error, not
    silently converted (numpy turns [1, "1"] into two equal strings)."""
    _check_not_torch(values, f"hparams[{name!r}]")
    if isinstance(values, np.ndarray) and values.dtype.kind != "O":
        return values
    listed = values.tolist() if hasattr(values, "tolist") else values
    if isinstance(listed, (list, tuple)) and all(np.ndim(v) == 0 for v in listed):
        kinds: dict[str, str] = {}
        for v in listed:
            kinds.setdefault(_value_kind(v), type(v).__name__)
        if len(kinds) > 1:
            found = " and ".join(sorted(kinds.values()))
            raise InvalidArgumentError(
                f"hparams[{name!r}]: mixed value types ({found}); give every value of an axis "
                "the same type (equal-looking values of different types would be different "
                "settings, or silently merged)"
            )
    return np.asarray(values)


def codes_in_order_of_appearance(values: NDArray[Any]) -> NDArray[np.int64]:
    """Integer codes of a 1-D array of sortable values: equal values share a code, and codes
    count up in the order in which values first appear (as a dict of first sightings would
    number them, in one vectorized pass)."""
    _, first, inverse = np.unique(values, return_index=True, return_inverse=True)
    order_of_appearance = np.empty(len(first), dtype=np.int64)
    order_of_appearance[np.argsort(first, kind="stable")] = np.arange(len(first))
    return np.ascontiguousarray(order_of_appearance[inverse.ravel()])


def _factorize(values: NDArray[Any], name: str) -> NDArray[np.int64]:
    if values.dtype.kind in "biuf":
        if values.dtype.kind == "f" and np.isnan(values).any():
            raise NonFiniteError(
                f"hparams[{name!r}]: contains NaN; every model needs a value on every axis"
            )
        _, inverse = np.unique(values, return_inverse=True)
        return np.ascontiguousarray(inverse.ravel(), dtype=np.int64)
    if values.dtype.kind in "US":
        return codes_in_order_of_appearance(values)
    if values.dtype.kind == "O":
        seen: dict[Any, int] = {}
        try:
            codes = [seen.setdefault(v, len(seen)) for v in values.tolist()]
        except TypeError as exc:
            raise TypeError(f"hparams[{name!r}]: values must be hashable ({exc})") from exc
        return np.asarray(codes, dtype=np.int64)
    raise TypeError(f"hparams[{name!r}]: unsupported dtype {values.dtype}")


def encode_hparams(hparams: Any, n_models: int) -> tuple[list[str], NDArray[np.int64]]:
    """Encode hyperparameter axes as integer codes.

    Parameters
    ----------
    hparams : mapping of str to array_like, or pandas.DataFrame
        One 1-D array of ``n_models`` values per axis (numbers, strings, any hashable values).
    n_models : int
        Expected length of every axis.

    Returns
    -------
    names : list of str
        Axis names, in input order.
    codes : ndarray of int64, shape (n_models, n_axes)
        Equal values share a code.
    """
    if hasattr(hparams, "columns") and hasattr(hparams, "__getitem__"):
        raw = [(c, hparams[c]) for c in hparams.columns]
    elif isinstance(hparams, Mapping):
        raw = list(hparams.items())
    else:
        raise TypeError(
            "hparams: expected a mapping of axis name -> 1-D array, or a pandas DataFrame, "
            f"got {type(hparams).__name__}"
        )
    if not raw:
        raise EmptyInputError("hparams: expected at least one hyperparameter axis, got none")
    first_key: dict[str, Any] = {}
    for key, _ in raw:
        other = first_key.setdefault(str(key), key)
        if other is not key:
            raise InvalidArgumentError(
                f"hparams: axis names {other!r} and {key!r} are both {str(key)!r} as text; "
                "rename one (the axes would merge)"
            )
    items = [(str(k), _axis_values(v, str(k))) for k, v in raw]
    columns = []
    for name, values in items:
        if values.ndim != 1:
            raise ShapeError(f"hparams[{name!r}]: expected a 1-D array, got shape {values.shape}")
        if len(values) != n_models:
            raise ShapeError(
                f"hparams[{name!r}]: expected one value per model ({n_models}), got {len(values)}"
            )
        columns.append(_factorize(values, name))
    codes = np.stack(columns, axis=1) if n_models else np.zeros((0, len(columns)), dtype=np.int64)
    return [name for name, _ in items], np.ascontiguousarray(codes, dtype=np.int64)
