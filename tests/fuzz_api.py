"""Fuzz the public API with generated bad arrays and options (run by ``tests/test_fuzz.py``).

One subprocess per module, under a memory cap and a timeout::

    python tests/fuzz_api.py MODULE --examples N

Every function of MODULE is called ``N`` times (hypothesis, derandomized) on arguments built from
a valid call and then, most of the time, damaged: NaN and infinities, extreme magnitudes, empty
and wrong shapes, other dtypes (float32, integers, bool, complex, objects, strings), strided,
transposed and broadcast views, lists, torch tensors that require grad, bad scalars (None, bools,
strings, huge or negative integers, NaN) for the options. Each call must either raise
``ValueError`` or ``TypeError`` or return a result whose numbers are finite. A non-finite number is
accepted only where the input already had one, where genlab warned about it
(``DegenerateDataWarning``, ``NumericalWarning``), or where the function's contract has it (log
densities of compact kernels, -inf outside their support). Anything else fails: another
exception (a Rust panic, a MemoryError, an OverflowError), a silent NaN, a crash (the parent sees
the signal) or a hang (the parent's timeout).
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import math
import os
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from genlab.errors import DegenerateDataWarning, NumericalWarning

ACCEPTED_ERRORS = (ValueError, TypeError)
SIGNALLING_WARNINGS = (DegenerateDataWarning, NumericalWarning)

# Values that break naive arithmetic: signed zeros, subnormals, squares that overflow or
# underflow, the largest floats.
EXTREMES = [0.0, -0.0, 5e-324, 1e-310, -1e-310, 1e-154, 1e154, -1e154, 1e300, -1e300, 1.7e308]
ELEMENT = st.one_of(
    st.floats(-3.0, 3.0, allow_nan=False),
    st.integers(-2, 2).map(float),  # ties
    st.sampled_from(EXTREMES),
)
BAD_SCALARS = st.sampled_from(
    [None, True, False, 0, -1, 2**64, -(2**64), 1.5, -0.5, math.nan, math.inf, "x", "", [1, 2], 1j]
)
N_JOBS = st.sampled_from([None, 1, 2, -1, -7, 0, 100_000, 2**64, "2", 1.5])


# --- building arguments -------------------------------------------------------------------------


def floats(draw: Any, shape: tuple[int, ...]) -> np.ndarray:
    return draw(hnp.arrays(np.float64, shape, elements=ELEMENT))


def _with_value(draw: Any, x: np.ndarray, value: float) -> np.ndarray:
    if x.size == 0:
        return x
    y = x.astype(np.float64)
    y.flat[draw(st.integers(0, x.size - 1))] = value
    return y


def _as_float32(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return x.astype(np.float32)


def _requiring_grad(x: np.ndarray) -> Any:
    import torch

    return torch.tensor(np.nan_to_num(x).astype(np.float64), requires_grad=True)


# One way to damage an array each: (draw, x) -> what the function gets instead.
DAMAGES: dict[str, Callable[[Any, np.ndarray], Any]] = {
    "nan": lambda draw, x: _with_value(draw, x, math.nan),
    "inf": lambda draw, x: _with_value(draw, x, -math.inf),
    "float32": lambda draw, x: _as_float32(x),
    "int": lambda draw, x: np.clip(np.nan_to_num(x), -1e6, 1e6).astype(np.int64),
    "bool": lambda draw, x: x > 0,
    "complex": lambda draw, x: x + 1j,
    "object": lambda draw, x: np.array([2**64] * max(x.size, 1), dtype=object),
    "str": lambda draw, x: x.astype(str),
    "strided": lambda draw, x: np.repeat(x, 2, axis=-1)[..., ::2] if x.ndim else x,
    "transposed": lambda draw, x: np.asfortranarray(x),
    "broadcast": lambda draw, x: np.broadcast_to(x[:1], x.shape) if x.ndim and len(x) else x,
    "extra-axis": lambda draw, x: x[None],
    "flat": lambda draw, x: x.ravel(),
    "empty": lambda draw, x: x[:0] if x.ndim else x,
    "list": lambda draw, x: x.tolist(),
    "scalar": lambda draw, x: draw(BAD_SCALARS),
    "grad": lambda draw, x: _requiring_grad(x),
}


def damage(draw: Any, x: np.ndarray) -> Any:
    """``x`` as it is (most of the time) or damaged in one of the ways of DAMAGES."""
    if not rarely(draw, 3):
        return x
    return DAMAGES[draw(st.sampled_from(sorted(DAMAGES)))](draw, x)


def rarely(draw: Any, one_in: int) -> bool:
    """True about once in ``one_in`` draws. (A plain choice would not do: hypothesis favours the
    ends of every range, so the rare branch would come up far more often than asked.)"""
    v = draw(st.integers(0, 2**32 - 1))
    return ((v + 0x9E3779B9) * 0x85EBCA6B) % 2**32 < 2**32 // one_in


def option(draw: Any, valid: list[Any]) -> Any:
    """A valid value, or (one time in eight) a bad one."""
    return draw(BAD_SCALARS if rarely(draw, 8) else st.sampled_from(valid))


def positive(draw: Any) -> Any:
    """A positive real option (eps, bandwidth, tol...), or a bad one."""
    good = st.one_of(st.floats(1e-3, 10.0), st.sampled_from([1e-300, 1e-160, 1e154, 1e300]))
    return draw(st.one_of(good, good, BAD_SCALARS))


# --- what a call must do ------------------------------------------------------------------------


def numbers(result: Any) -> Iterator[float]:
    """The floating-point numbers in a result (arrays, scalars, dataclasses, tuples, dicts)."""
    if isinstance(result, float):
        yield result
    elif isinstance(result, np.ndarray):
        if result.dtype.kind in "fc":
            yield from result.ravel().astype(complex).real.tolist()
    elif isinstance(result, np.generic):
        yield from numbers(result.item())
    elif type(result).__module__.startswith("torch"):
        yield from numbers(result.detach().cpu().double().numpy())
    else:
        for part in _parts(result):
            yield from numbers(part)


def _parts(result: Any) -> list[Any]:
    """The members of a dataclass, mapping or sequence (nothing for other values)."""
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return [getattr(result, f.name) for f in dataclasses.fields(result)]
    if isinstance(result, dict):
        return list(result.values())
    if isinstance(result, (tuple, list)):
        return list(result)
    return []


def has_nonfinite(*inputs: Any) -> bool:
    for x in inputs:
        try:
            arr = np.asarray(x.detach() if hasattr(x, "detach") else x)
        except Exception:
            continue
        if arr.dtype.kind in "fc" and not np.isfinite(arr).all():
            return True
        if arr.dtype == object and any(
            isinstance(v, float) and not math.isfinite(v) for v in arr.ravel()
        ):
            return True
    return False


@dataclasses.dataclass
class Tally:
    raised: int = 0
    returned: int = 0


TALLIES: dict[str, Tally] = {}


def run(
    name: str,
    call: Callable[[], Any],
    inputs: tuple[Any, ...],
    allow: Callable[[float], bool] = lambda v: False,
    view: Callable[[Any], Any] = lambda result: result,
) -> None:
    """Call, and fail unless it raised ValueError/TypeError or returned finite numbers (or
    non-finite ones the rules above accept). ``view`` picks the part of the result that must be
    finite, where the contract marks undefined entries itself."""
    tally = TALLIES.setdefault(name, Tally())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = call()
        except ACCEPTED_ERRORS as exc:
            tally.raised += 1
            if name == os.environ.get("GENLAB_FUZZ_SHOW"):  # to see what a function refuses
                print(f"{name}: {type(exc).__name__}: {exc}"[:200], file=sys.stderr)
            return
    tally.returned += 1
    bad = [v for v in numbers(view(result)) if not math.isfinite(v) and not allow(v)]
    if not bad:
        return
    warned = any(issubclass(w.category, SIGNALLING_WARNINGS) for w in caught)
    if warned or has_nonfinite(*inputs):
        return
    raise AssertionError(f"{name}: a silent non-finite result ({bad[:3]}) from finite input")


# --- the modules ---------------------------------------------------------------------------------


def public_functions(module: Any, skip: frozenset[str] | set[str] = frozenset()) -> list[str]:
    """The functions a module exports (so that a new one is fuzzed, or fails here unhandled)."""
    return sorted(
        name
        for name in module.__all__
        if name not in skip and inspect.isfunction(getattr(module, name))
    )


def fuzz_rank(draw: Any) -> None:
    from genlab import rank

    fn = draw(st.sampled_from(public_functions(rank, skip={"default_workspace"})))
    n = draw(st.integers(1, 24))  # empty arrays come from damage()
    m = draw(st.integers(1, 4))
    x, y = damage(draw, floats(draw, (n,))), damage(draw, floats(draw, (n,)))
    X = damage(draw, floats(draw, (n, m)))
    nan_policy = option(draw, ["propagate", "omit", "raise"])
    variant = option(draw, ["a", "b", "c"])
    if fn == "kendalltau":
        method = option(draw, ["auto", "exact", "asymptotic"])
        alternative = option(draw, ["two-sided", "less", "greater"])
        kw = dict(nan_policy=nan_policy, method=method, variant=variant, alternative=alternative)
        run(fn, lambda: rank.kendalltau(x, y, **kw), (x, y))
    elif fn == "kendalltau_many":
        kw = dict(variant=variant, nan_policy=nan_policy, n_jobs=draw(N_JOBS))
        run(fn, lambda: rank.kendalltau_many(X, y, **kw), (X, y))
    elif fn == "kendalltau_matrix":
        kw = dict(variant=variant, nan_policy=nan_policy, n_jobs=draw(N_JOBS))
        run(fn, lambda: rank.kendalltau_matrix(X, **kw), (X,))
    elif fn == "kendalltau_across_groups":
        groups = damage(draw, draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, 3))))
        kw = dict(variant=variant, nan_policy=nan_policy, n_jobs=draw(N_JOBS))
        run(fn, lambda: rank.kendalltau_across_groups(X, y, groups, **kw), (X, y))
    elif fn == "kendalltau_across_resampled_groups":
        groups = damage(draw, draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, 3))))
        counts = damage(draw, draw(hnp.arrays(np.int64, (3, 4), elements=st.integers(-1, 3))))
        kw = dict(variant=variant, nan_policy=nan_policy, n_jobs=draw(N_JOBS))
        run(fn, lambda: rank.kendalltau_across_resampled_groups(X, y, groups, counts, **kw), (X, y))
    else:
        axes = draw(st.integers(1, 3))
        hparams: Any = {
            f"h{i}": damage(draw, draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, 2))))
            for i in range(axes)
        }
        if rarely(draw, 10):
            hparams = draw(BAD_SCALARS)
        kw: dict[str, Any] = {"nan_policy": nan_policy, "n_jobs": draw(N_JOBS)}
        if fn == "granulated_kendall":
            kw.update(variant=variant, replicates=option(draw, ["pairs", "average"]))
        elif fn == "conditional_mutual_information":
            kw.update(convention=option(draw, ["genlab", "pgdl"]))
            if kw["convention"] != "pgdl":  # pgdl fixes the subsets
                kw.update(max_subset_size=option(draw, [None, 0, 1, 2, 3]))
        else:
            kw.update(
                weighting=option(draw, ["none", "hoeffding"]),
                n_samples=option(draw, [None, 100, 1e6]),
                min_ess=option(draw, [0.0, 1.0, 12.0]),
            )
        # By contract, a sign_error environment that is not kept (no weight) has an undefined
        # error, a summary of no environment is NaN (its n_environments says 0), and so is the
        # CMI score of a subset S with H(V_g | U_S) = 0.
        views: dict[str, Callable[[Any], Any]] = {
            "sign_error": lambda r: (
                [s for s in (r.overall, *r.per_axis.values()) if s.n_environments],
                r.error[r.kept],
            ),
            "conditional_mutual_information": lambda r: (r.score, r.mutual_information),
        }
        run(
            fn,
            lambda: getattr(rank, fn)(x, y, hparams, **kw),
            (x, y),
            view=views.get(fn, lambda r: r),
        )


def fuzz_rate(draw: Any) -> None:
    from genlab import rate

    fn = draw(st.sampled_from(public_functions(rate)))
    lead = tuple(draw(st.lists(st.integers(0, 2), max_size=2)))
    n_tok, d = draw(st.integers(1, 6)), draw(st.integers(1, 5))
    k, p = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    Z = damage(draw, floats(draw, (*lead, n_tok, d)))
    U = damage(draw, floats(draw, (k, d, p)))
    kw: dict[str, Any] = {"n_jobs": draw(N_JOBS)}
    if fn != "sparsity":
        kw.update(eps=positive(draw), normalize_tokens=option(draw, [False, True]))
    if fn in ("sparse_rate_reduction", "srr_measure"):
        kw.update(lam=option(draw, [0.0, 1.0, 1e300]), sparsity=option(draw, ["l0", "l1"]))
    if fn == "sparsity":
        kw.update(kind=option(draw, ["l0", "l1"]))
    if fn == "compressed_coding_rate_projected":
        ZU = damage(draw, floats(draw, (*lead, k, n_tok, p)))
        run(fn, lambda: rate.compressed_coding_rate_projected(ZU, **kw), (ZU,))
    elif fn in ("coding_rate", "sparsity"):
        run(fn, lambda: getattr(rate, fn)(Z, **kw), (Z,))
    else:
        run(fn, lambda: getattr(rate, fn)(Z, U, **kw), (Z, U))


KERNELS = ["gaussian", "tophat", "epanechnikov", "exponential", "linear", "cosine"]


def fuzz_kde(draw: Any) -> None:
    from genlab import kde

    fn = draw(
        st.sampled_from(
            [
                "log_density",
                "select_bandwidth",
                "regime",
                "information_plane",
                "KernelDensity",
                "gaussian_kde",
            ]
        )
    )
    n, m, d = draw(st.integers(1, 12)), draw(st.integers(1, 4)), draw(st.integers(1, 3))
    data = damage(draw, floats(draw, (n, d)))
    queries = damage(draw, floats(draw, (m, d))) if draw(st.booleans()) else None
    # A log density (or log-likelihood) below -1.8e308, e.g. outside a compact kernel's support
    # or far out in a Gaussian's tail, is -inf in float64: the correctly rounded value.
    minus_inf = lambda v: v == -math.inf  # noqa: E731
    if fn == "log_density":
        bandwidth = draw(
            st.one_of(
                st.just(positive(draw)),
                st.sampled_from(["scott", "silverman", "nn", "loo_cv", "bogus"]),
            )
        )
        weights = damage(draw, np.abs(floats(draw, (n,)))) if draw(st.booleans()) else None
        kw = dict(
            bandwidth=bandwidth,
            weights=weights,
            kernel=option(draw, KERNELS),
            leave_one_out=option(draw, [False, True]),
            n_jobs=draw(N_JOBS),
        )
        run(fn, lambda: kde.log_density(data, queries, **kw), (data, queries), minus_inf)
    elif fn == "select_bandwidth":
        method = option(draw, ["loo_cv", "nn", "scott", "silverman"])
        kw = dict(
            n_neighbors=option(draw, [None, 1, 3]),
            bounds=option(draw, [None, (0.01, 10.0), (1e-300, 1e300)]),
            n_jobs=draw(N_JOBS),
        )
        run(fn, lambda: kde.select_bandwidth(data, method, **kw), (data,), minus_inf)
    elif fn == "regime":
        h, jobs = positive(draw), draw(N_JOBS)
        run(fn, lambda: kde.regime(data, h, queries=queries, n_jobs=jobs), (data,))
    elif fn == "information_plane":
        labels = damage(draw, draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, 2))))
        variance = draw(st.one_of(st.just(positive(draw)), st.just(np.array([0.1, 1.0]))))
        layers = draw(st.sampled_from([[[data]], [data], data]))
        kw = dict(noise_variance=variance, n_jobs=draw(N_JOBS))
        use_labels = draw(st.booleans())
        run(
            fn,
            lambda: kde.information_plane(layers, labels if use_labels else None, **kw),
            (data,),
        )
    elif fn == "KernelDensity":
        est_kw = dict(bandwidth=positive(draw), kernel=option(draw, KERNELS))
        weight = damage(draw, np.abs(floats(draw, (n,)))) if draw(st.booleans()) else None

        def score() -> Any:
            est = kde.KernelDensity(**est_kw).fit(data, sample_weight=weight)
            return est.score_samples(data if queries is None else queries)

        run(fn, score, (data, queries, weight), minus_inf)
    else:
        bw = draw(
            st.one_of(st.sampled_from([None, "scott", "silverman", "x"]), st.just(positive(draw)))
        )

        def pdf() -> Any:
            est = kde.gaussian_kde(data.T if hasattr(data, "T") else data, bw_method=bw)
            return est.logpdf(est.dataset if queries is None else getattr(queries, "T", queries))

        run(fn, pdf, (data, queries), minus_inf)


def fuzz_attention(draw: Any) -> None:
    from genlab import attention

    fn = draw(
        st.sampled_from(
            ["attention", "tensor_attention", "tensor_attention_poly", "logit_bound", "poly_plan"]
        )
    )
    lead = tuple(draw(st.lists(st.integers(0, 2), max_size=2)))
    n, d, dv = draw(st.integers(1, 6)), draw(st.integers(1, 4)), draw(st.integers(1, 3))
    q, k1, k2 = (damage(draw, floats(draw, (*lead, n, d))) for _ in range(3))
    v1, v2 = (damage(draw, floats(draw, (*lead, n, dv))) for _ in range(2))
    scale = draw(
        st.one_of(st.none(), st.floats(-3, 3), st.sampled_from([1e300, 1e308]), BAD_SCALARS)
    )
    if fn == "attention":
        mask = option(draw, [None, "causal", 1, 3])
        kw = dict(scale=scale, mask=mask, n_jobs=draw(N_JOBS))
        run(fn, lambda: attention.attention(q, k1, v1, **kw), (q, k1, v1))
    elif fn == "logit_bound":
        run(fn, lambda: attention.logit_bound(q, k1, k2, scale=scale), (q, k1, k2))
    elif fn == "poly_plan":
        kw = dict(
            degree=option(draw, [None, 0, 3, 12]),
            tol=option(draw, [None, 1e-3, 1e-12]),
            basis=option(draw, ["chebyshev", "taylor", "minimax"]),
            bytes_per_rank=option(draw, [0.0, 8.0, 1e300]),
            memory_limit=option(draw, [None, 1e6, 1e12]),
        )
        logit_range = draw(st.one_of(st.floats(0, 20), BAD_SCALARS))
        width = option(draw, [1, 4, 64, 2**63 - 1])
        run(fn, lambda: attention.poly_plan(logit_range, width, **kw), ())
    else:
        kw = dict(
            scale=scale,
            mask=option(draw, [None, "causal", (1, 2), (3, 3)]),
            degree=option(draw, [None, 12, 20]),
            tol=option(draw, [None, 1e-3]),
            basis=option(draw, ["chebyshev", "taylor", "minimax"]),
            n_jobs=draw(N_JOBS),
        )
        if fn == "tensor_attention":
            kw["method"] = option(draw, ["exact", "poly"])
            if kw["method"] == "exact":
                kw.pop("degree"), kw.pop("tol"), kw.pop("basis")
        inputs = (q, k1, k2, v1, v2)
        run(fn, lambda: getattr(attention, fn)(*inputs, **kw), inputs)


def fuzz_torch(draw: Any) -> None:
    import torch

    from genlab.torch import attention as tattention
    from genlab.torch import rate as trate
    from genlab.torch.data import dataset_info
    from genlab.torch.measures import MeasureSettings
    from genlab.torch.models import build_model
    from genlab.torch.train import TrainConfig

    fn = draw(
        st.sampled_from(
            [
                "rate.coding_rate",
                "rate.compressed_coding_rate",
                "rate.sparse_rate_reduction",
                "attention.tensor_attention",
                "build_model",
                "TrainConfig",
                "MeasureSettings",
                "dataset_info",
            ]
        )
    )

    def tensor(x: Any) -> Any:
        return torch.from_numpy(x) if isinstance(x, np.ndarray) and x.dtype.kind in "fiub" else x

    if fn.startswith("rate."):
        lead = tuple(draw(st.lists(st.integers(0, 2), max_size=2)))
        n_tok, d, k, p = (draw(st.integers(1, 5)) for _ in range(4))
        Z = tensor(damage(draw, floats(draw, (*lead, n_tok, d))))
        U = tensor(damage(draw, floats(draw, (k, d, p))))
        kw: dict[str, Any] = dict(eps=positive(draw), normalize_tokens=option(draw, [False, True]))
        name = fn.split(".")[1]
        if name == "coding_rate":
            run(fn, lambda: trate.coding_rate(Z, **kw), (Z,))
        elif name == "compressed_coding_rate":
            run(fn, lambda: trate.compressed_coding_rate(Z, U, **kw), (Z, U))
        else:
            kw.update(lam=option(draw, [0.0, 1.0]), sparsity=option(draw, ["l0", "l1"]))
            run(fn, lambda: trate.sparse_rate_reduction(Z, U, **kw), (Z, U))
    elif fn == "attention.tensor_attention":
        n, d, dv = draw(st.integers(0, 5)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
        q, k1, k2 = (tensor(damage(draw, floats(draw, (2, n, d)))) for _ in range(3))
        v1, v2 = (tensor(damage(draw, floats(draw, (2, n, dv)))) for _ in range(2))
        padding = draw(
            st.sampled_from(["int", "wrong-shape", "not-a-tensor"])
            if rarely(draw, 6)
            else st.sampled_from([None, "bool", "float"])
        )
        kpm: Any = {
            None: None,
            "bool": torch.zeros(2, n, dtype=torch.bool),
            "int": torch.zeros(2, n, dtype=torch.int64),
            "float": torch.zeros(2, n, dtype=torch.float64),
            "wrong-shape": torch.zeros(3, n + 1, dtype=torch.bool),
            "not-a-tensor": [[True] * n] * 2,
        }[padding]
        method = option(draw, ["exact", "materialized", "chunked", "poly"])
        kw = dict(
            scale=draw(st.one_of(st.none(), st.floats(-3, 3), st.just(1e308), BAD_SCALARS)),
            mask=option(draw, [None, "causal", (1, 2)]),
            method=method,
            dropout_p=option(draw, [0.0, 0.5]),
            key_padding_mask=kpm,
        )
        inputs = (q, k1, k2, v1, v2)
        run(fn, lambda: tattention.tensor_attention(*inputs, **kw), inputs)
    elif fn == "build_model":
        family = option(draw, ["crate", "crate-t", "crate-c", "crate-n", "mlp", "cnn"])
        options = {
            key: option(draw, values)
            for key, values in {
                "dim": [8, 16, 15],
                "depth": [1, 2],
                "heads": [1, 2, 4],
                "dropout": [0.0, 0.5],
                "width": [4, 8],
            }.items()
            if draw(st.booleans())
        }
        if family in ("mlp", "cnn"):
            options = {k: v for k, v in options.items() if k in ("width", "depth", "dropout")}
        elif family in ("crate", "crate-t", "crate-c", "crate-n"):
            options.pop("width", None)
        shape = option(draw, [(1, 8, 8), (3, 4, 4), (1, 3, 3)])

        def build() -> Any:
            with torch.device("meta"):
                return build_model(family, num_classes=3, input_shape=shape, seed=0, **options)

        run(fn, lambda: (build(), 0.0)[1], ())
    else:
        fields = {
            "TrainConfig": {
                "lr": [0.1, 1e-3],
                "momentum": [0.0, 0.9],
                "epochs": [1, 5],
                "batch_size": [8],
                "optimizer": ["sgd", "adam"],
                "amp": [False],
                "ce_target": [None, 0.01],
                "device": ["cpu"],
            },
            "MeasureSettings": {
                "margin_quantile": [0.1, 0.5],
                "draws": [1, 10],
                "flatness_samples": [None, 64],
                "srr_eps": [0.1, 0.5],
                "srr_normalize_tokens": [True, False],
                "tolerance": [0.01],
            },
            "dataset_info": {
                "name": ["digits", "cifar10"],
                "root": [None, "data"],
                "train_size": [None, 100, 1347],
                "label_noise": [0.0, 0.5, 1.0],
                "seed": [0, 3],
            },
        }[fn]
        kwargs = {k: option(draw, v) for k, v in fields.items() if draw(st.booleans())}
        target = {"TrainConfig": TrainConfig, "MeasureSettings": MeasureSettings}.get(
            fn, dataset_info
        )
        run(fn, lambda: (target(**kwargs), 0.0)[1], ())


def fuzz_study(draw: Any) -> None:
    """Generated TOML configurations: a ConfigError (a ValueError) or a valid config."""
    from genlab.study.config import parse_config

    # Each key: a valid value first, then bad ones (used one time in six).
    tables = {
        "study": {"seeds": ["[0]", "[-1]", "[]", "[0, 0]", '"x"'], "jobs": ["1", "0", "-1"]},
        "data": {"name": ['"digits"', '"nope"'], "train_size": ["100", "0", "99999"]},
        "model": {
            "family": ['"crate"', '"x"'],
            "heads": ["2", "0", "nan"],
            "dim": ["16", "15", "-4"],
        },
        "train": {
            "weight_decay": ["0.0", "-1.0", "nan", "inf"],
            "epochs": ["1", "0"],
            "momentum": ["0.5", "5.0"],
        },
        "grid": {
            "lr": ["[0.1, 0.01]", "[]", "[0.1, 0.1]", "3"],
            "dropout": ["[0.0, 0.5]", "[1.5]"],
        },
        "measures": {
            "margin_quantile": ["0.1", "2.0"],
            "draws": ["1", "0"],
            "names": ['"all"', '["nope"]'],
        },
        "ranking": {"gap": ['"loss"', '"x"'], "bootstrap": ["10", "-1"], "min_ess": ["12", "nan"]},
    }
    lines = []
    for table, keys in tables.items():
        chosen = {
            k: draw(st.sampled_from(v[1:])) if rarely(draw, 6) else v[0]
            for k, v in keys.items()
            if k == "seeds" or draw(st.booleans())
        }
        if table == "study" or chosen:
            lines.append(f"[{table}]")
            lines.extend(f"{k} = {v}" for k, v in chosen.items())
    text = "\n".join(lines) + "\n"
    run("parse_config", lambda: (parse_config(text, path="fuzz.toml"), 0.0)[1], ())


def fuzz_spectrum(draw: Any) -> None:
    from genlab import spectrum

    fn = draw(st.sampled_from(public_functions(spectrum)))
    sizes = draw(st.lists(st.integers(0, 40), min_size=1, max_size=3))
    spectra = [damage(draw, np.abs(floats(draw, (n,)))) for n in sizes]
    if fn == "power_law_fit":
        run(fn, lambda: spectrum.power_law_fit(spectra[0]), (spectra[0],))
    else:
        n_jobs = draw(N_JOBS)
        run(fn, lambda: spectrum.power_law_fit_many(spectra, n_jobs=n_jobs), tuple(spectra))


MODULES: dict[str, Callable[[Any], None]] = {
    "rank": fuzz_rank,
    "rate": fuzz_rate,
    "kde": fuzz_kde,
    "attention": fuzz_attention,
    "torch": fuzz_torch,
    "study": fuzz_study,
    "spectrum": fuzz_spectrum,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("module", choices=sorted(MODULES))
    parser.add_argument("--examples", type=int, default=200)
    args = parser.parse_args(argv)
    fuzz = MODULES[args.module]

    @settings(
        max_examples=args.examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def check(data: st.DataObject) -> None:
        fuzz(data.draw)

    try:
        check()
    except Exception:
        traceback.print_exc()
        return 1
    for name, tally in sorted(TALLIES.items()):
        print(f"{args.module}.{name}: {tally.raised} raised, {tally.returned} returned")
    return 0


if __name__ == "__main__":
    sys.exit(main())
