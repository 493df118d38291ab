"""Fast paths for ``DataFrame.corr``, ``Series.corr`` and ``DataFrame.corrwith`` with
``method="kendall"`` (other methods go straight to pandas, uncounted).

``DataFrame.corr`` runs :func:`genlab.rank.kendalltau_matrix` (pairwise-complete
observations, pandas' rule) on the frame's numeric values; ``Series.corr`` aligns as pandas does
and runs genlab's tau-b; ``corrwith`` is pandas' own code, whose per-column ``Series.corr`` calls
are then the fast ones. Object, datetime, categorical and nullable (extension) columns decline.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from genlab import rank
from genlab.accel._dispatch import Decline, Profile, dispatch
from genlab.errors import DegenerateDataWarning


def _numeric_values(frame: Any, what: str) -> np.ndarray:
    """The frame's (or series') values as float64 (missing values as NaN, pandas' nullable
    numbers included), or :class:`Decline`."""
    from pandas.api.types import is_bool_dtype, is_numeric_dtype  # type: ignore[import-untyped]

    dtypes = [frame.dtype] if getattr(frame, "ndim", 2) == 1 else list(frame.dtypes)
    for dtype in dtypes:
        exact = is_numeric_dtype(dtype) or is_bool_dtype(dtype)
        if isinstance(dtype, np.dtype):
            exact = dtype.kind in "biuf" and dtype.itemsize <= 8
        if not exact or getattr(dtype, "kind", "") == "c":
            raise Decline(f"{what} has a column of dtype {dtype}")
    values: np.ndarray = frame.to_numpy(dtype=np.float64, na_value=np.nan)
    if np.isinf(values).any():
        raise Decline(f"{what} contains infinity")
    return values


def _min_periods(value: Any) -> int:
    if value is None:
        return 1
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise Decline(f"min_periods={value!r}")
    return int(value)


def make_frame_corr(original: Callable[..., Any], profile: Profile) -> Callable[..., Any]:
    def fast(frame: Any, method: str, min_periods: Any, numeric_only: Any) -> Any:
        if not isinstance(numeric_only, (bool, np.bool_)):
            raise Decline(f"numeric_only={numeric_only!r}")
        if numeric_only:
            frame = frame._get_numeric_data()  # pandas' own selection (numbers and bools)
        minimum = _min_periods(min_periods)
        values = _numeric_values(frame, "the frame")
        if values.shape[0] == 0 or values.shape[1] == 0:
            raise Decline("an empty frame")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DegenerateDataWarning)  # pandas says NaN silently
            matrix = rank.kendalltau_matrix(values, variant="b", nan_policy="omit")
        valid = (~np.isnan(values)).astype(np.float64)
        matrix[valid.T @ valid < max(minimum, 1)] = np.nan
        return type(frame)(matrix, index=frame.columns.copy(), columns=frame.columns.copy())

    def corr(self: Any, method: Any = "pearson", min_periods: Any = 1, numeric_only: Any = False):  # type: ignore[no-untyped-def]
        if not (isinstance(method, str) and method == "kendall"):
            return original(self, method=method, min_periods=min_periods, numeric_only=numeric_only)
        return dispatch(
            profile,
            "pandas.DataFrame.corr",
            fast,
            lambda frame, m, p, n: original(frame, method=m, min_periods=p, numeric_only=n),
            self,
            method,
            min_periods,
            numeric_only,
        )

    corr.__doc__ = original.__doc__
    corr.__wrapped__ = original  # type: ignore[attr-defined]
    return corr


def make_series_corr(original: Callable[..., Any], profile: Profile) -> Callable[..., Any]:
    def fast(series: Any, other: Any, method: str, min_periods: Any) -> Any:
        if type(other).__name__ != "Series":
            raise Decline(f"other is a {type(other).__name__}")
        minimum = _min_periods(min_periods)
        this, that = series.align(other, join="inner")
        a, b = _numeric_values(this, "the series"), _numeric_values(that, "other")
        valid = ~(np.isnan(a) | np.isnan(b))
        a, b = a[valid], b[valid]
        if len(a) < max(minimum, 2) or a.min() == a.max() or b.min() == b.max():
            raise Decline("fewer than 2 observations, min_periods not met, or constant values")
        return np.float64(rank.kendalltau(a, b).statistic)

    def corr(self: Any, other: Any, method: Any = "pearson", min_periods: Any = None):  # type: ignore[no-untyped-def]
        if not (isinstance(method, str) and method == "kendall"):
            return original(self, other, method=method, min_periods=min_periods)
        return dispatch(
            profile,
            "pandas.Series.corr",
            fast,
            lambda s, o, m, p: original(s, o, method=m, min_periods=p),
            self,
            other,
            method,
            min_periods,
        )

    corr.__doc__ = original.__doc__
    corr.__wrapped__ = original  # type: ignore[attr-defined]
    return corr
