"""Where each patched call runs: the fast path, or the original function with the reason why.

Every patched function is a :func:`dispatch` between genlab's fast path and the peer's original.
A fast path either returns the result or raises :class:`Decline` with the reason it does not
cover the call (an option it does not implement, an input it would treat differently); the
original then runs, so a patched program behaves as the unpatched one. An unexpected exception
inside a fast path is a fallback too (its type and message are the reason): the call never fails
where the original would not.

The three switches (environment variables read at each call, or :class:`Modes` set by
:func:`genlab.accel.install`):

- ``GENLAB_ACCEL_PROFILE=1``: the counts and times of :class:`Profile` are printed at exit;
- ``GENLAB_ACCEL_FAIL_ON_FALLBACK=1``: a fallback raises :class:`FallbackError` instead;
- ``GENLAB_ACCEL_CHECK=1``: every fast call runs the original too and warns
  (:class:`AccelMismatchWarning`) where the results differ beyond ``CHECK_RTOL``/``CHECK_ATOL``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable
from typing import Any, TextIO

import numpy as np

__all__ = [
    "CHECK_ATOL",
    "CHECK_RTOL",
    "AccelMismatchWarning",
    "Decline",
    "FallbackError",
    "FunctionStats",
    "Profile",
    "dispatch",
]

#: Tolerances of ``GENLAB_ACCEL_CHECK``: the fast and the original result agree when
#: ``|fast - original| <= CHECK_ATOL + CHECK_RTOL |original|`` elementwise (NaN equal to NaN).
CHECK_RTOL = 1e-9
CHECK_ATOL = 1e-12


class Decline(Exception):
    """Raised by a fast path that does not cover a call; the message is the reason."""


class FallbackError(RuntimeError):
    """A patched call fell back to the original while fallbacks are errors
    (``GENLAB_ACCEL_FAIL_ON_FALLBACK=1``)."""


class AccelMismatchWarning(UserWarning):
    """Under ``GENLAB_ACCEL_CHECK=1``, genlab's result differs from the original's."""


@dataclasses.dataclass
class FunctionStats:
    """The calls of one patched function: how many ran where, for how long, and why not fast."""

    fast_calls: int = 0
    fast_seconds: float = 0.0
    fallback_calls: int = 0
    fallback_seconds: float = 0.0
    reasons: Counter[str] = dataclasses.field(default_factory=Counter)


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no", "off")


class Profile:
    """Per-function counts and times of the patched calls (:func:`genlab.accel.profile` shows
    them for a block of code; ``GENLAB_ACCEL_PROFILE=1`` at exit)."""

    def __init__(self) -> None:
        self.functions: dict[str, FunctionStats] = {}

    def stats(self, name: str) -> FunctionStats:
        return self.functions.setdefault(name, FunctionStats())

    def report(self) -> str:
        """The table the profiler prints."""
        if not self.functions:
            return "genlab.accel profile: no patched function was called\n"
        width = max(len("function"), *(len(name) for name in self.functions))
        header = f"{'function':<{width}} {'fast':>6} {'time':>10} {'fallback':>9} {'time':>10}"
        lines = ["genlab.accel profile", header, "-" * len(header)]
        for name, s in sorted(self.functions.items()):
            lines.append(
                f"{name:<{width}} {s.fast_calls:>6} {_seconds(s.fast_seconds):>10} "
                f"{s.fallback_calls:>9} {_seconds(s.fallback_seconds):>10}"
            )
            for reason, count in s.reasons.most_common():
                lines.append(f"    fallback x{count}: {reason}")
        return "\n".join(lines) + "\n"

    def print(self, file: TextIO | None = None) -> None:
        print(self.report(), end="", file=file or sys.stderr)


def _seconds(value: float) -> str:
    return f"{value * 1e3:.1f} ms" if value < 1 else f"{value:.2f} s"


def _results_agree(fast: Any, original: Any) -> bool:
    """Whether two results are equal within the check tolerances (tuples and objects with a
    ``statistic``/``pvalue`` compared element by element; anything else by numpy)."""
    if isinstance(original, tuple) and isinstance(fast, tuple):
        return len(fast) == len(original) and all(
            _results_agree(a, b) for a, b in zip(fast, original, strict=True)
        )
    try:
        a = np.asarray(fast, dtype=float)
        b = np.asarray(original, dtype=float)
    except (TypeError, ValueError):
        return bool(fast == original)
    if a.shape != b.shape:
        return False
    return bool(np.allclose(a, b, rtol=CHECK_RTOL, atol=CHECK_ATOL, equal_nan=True))


def dispatch(
    profile: Profile,
    name: str,
    fast: Callable[..., Any],
    original: Callable[..., Any],
    *args: Any,
    **kwargs: Any,
) -> Any:
    """``fast(*args, **kwargs)``, or ``original(*args, **kwargs)`` when the fast path declines
    (recorded under ``name`` in ``profile``, with its reason)."""
    stats = profile.stats(name)
    started = time.perf_counter()
    try:
        result = fast(*args, **kwargs)
    except Decline as exc:
        reason = str(exc)
    except Exception as exc:  # a fast path must never add an error: the original decides
        reason = f"genlab raised {type(exc).__name__}: {exc}"
    else:
        stats.fast_calls += 1
        stats.fast_seconds += time.perf_counter() - started
        if _flag("GENLAB_ACCEL_CHECK"):
            _check(name, result, original, args, kwargs)
        return result
    stats.fallback_calls += 1
    stats.reasons[reason] += 1
    if _flag("GENLAB_ACCEL_FAIL_ON_FALLBACK"):
        raise FallbackError(f"genlab.accel: {name} fell back to the original: {reason}")
    started = time.perf_counter()
    try:
        return original(*args, **kwargs)
    finally:
        stats.fallback_seconds += time.perf_counter() - started


def _check(
    name: str, result: Any, original: Callable[..., Any], args: Any, kwargs: dict[str, Any]
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the original's own warnings were not asked for
        try:
            expected = original(*args, **kwargs)
        except Exception as exc:
            warnings.warn(
                f"genlab.accel check: {name} returned a result where the original raises "
                f"{type(exc).__name__}: {exc}",
                AccelMismatchWarning,
                stacklevel=4,
            )
            return
    if not _results_agree(_comparable(result), _comparable(expected)):
        warnings.warn(
            f"genlab.accel check: {name} differs from the original beyond rtol {CHECK_RTOL:g}, "
            f"atol {CHECK_ATOL:g}: genlab {_short(result)}, original {_short(expected)}",
            AccelMismatchWarning,
            stacklevel=4,
        )


def _comparable(value: Any) -> Any:
    """A result as numbers: pandas objects as their values, results with fields as tuples."""
    if hasattr(value, "to_numpy"):
        return value.to_numpy(dtype=float, na_value=math.nan)
    if hasattr(value, "statistic") and hasattr(value, "pvalue"):
        return (value.statistic, value.pvalue)
    return value


def _short(value: Any) -> str:
    text = repr(_comparable(value))
    return text if len(text) <= 200 else text[:200] + "..."
