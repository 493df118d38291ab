"""genlab.accel: the patched peers return what the originals return, fall back where genlab does not
cover a call, and say so (profile, fail-on-fallback, check)."""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
import types
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import sklearn.neighbors
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

import genlab.accel
from genlab.accel import FallbackError

ROOT = Path(__file__).resolve().parents[1]
# Held in a dict: install() replaces module-level names that are the originals (the names a
# program took with `from scipy.stats import kendalltau` before installing), this one's too.
ORIGINALS = {
    "kendalltau": scipy.stats.kendalltau,
    "gaussian_kde": scipy.stats.gaussian_kde,
    "KernelDensity": sklearn.neighbors.KernelDensity,
    "DataFrame.corr": pd.DataFrame.corr,
}


@pytest.fixture
def accel(monkeypatch: pytest.MonkeyPatch) -> Iterator[genlab.accel.Profile]:
    """genlab.accel installed for one test (the environment restored after it)."""
    for name in ("GENLAB_ACCEL", "GENLAB_ACCEL_PROFILE", "GENLAB_ACCEL_CHECK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("GENLAB_ACCEL_FAIL_ON_FALLBACK", raising=False)
    genlab.accel.install()
    try:
        with genlab.accel.profile(file=io.StringIO()) as profile:
            yield profile
    finally:
        genlab.accel.uninstall()


def calls(profile: genlab.accel.Profile, name: str) -> tuple[int, int]:
    stats = profile.functions.get(name)
    return (stats.fast_calls, stats.fallback_calls) if stats else (0, 0)


def test_install_and_uninstall_replace_and_restore_everything() -> None:
    user_module = types.ModuleType("user_code_before_install")
    user_module.kendalltau = scipy.stats.kendalltau  # `from scipy.stats import kendalltau`
    sys.modules[user_module.__name__] = user_module
    try:
        genlab.accel.install()
        assert genlab.accel.is_installed()
        assert os.environ["GENLAB_ACCEL"] == "1"
        assert scipy.stats.kendalltau is not ORIGINALS["kendalltau"]
        assert user_module.kendalltau is scipy.stats.kendalltau
        assert issubclass(scipy.stats.gaussian_kde, ORIGINALS["gaussian_kde"])
        assert issubclass(sklearn.neighbors.KernelDensity, ORIGINALS["KernelDensity"])
        assert pd.DataFrame.corr is not ORIGINALS["DataFrame.corr"]
        genlab.accel.install()  # idempotent
        genlab.accel.uninstall()
        assert not genlab.accel.is_installed()
        assert "GENLAB_ACCEL" not in os.environ
        assert scipy.stats.kendalltau is ORIGINALS["kendalltau"]
        assert user_module.kendalltau is ORIGINALS["kendalltau"]
        assert scipy.stats.gaussian_kde is ORIGINALS["gaussian_kde"]
        assert sklearn.neighbors.KernelDensity is ORIGINALS["KernelDensity"]
        assert pd.DataFrame.corr is ORIGINALS["DataFrame.corr"]
    finally:
        genlab.accel.uninstall()
        del sys.modules[user_module.__name__]


def test_kendalltau_is_scipys_result_on_the_fast_path(accel) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=300)
    y = (x + rng.normal(size=300)).round(1)  # ties in y
    for kwargs in ({}, {"variant": "c"}, {"alternative": "less"}, {"method": "asymptotic"}):
        got = scipy.stats.kendalltau(x, y, **kwargs)
        want = ORIGINALS["kendalltau"](x, y, **kwargs)
        assert type(got) is type(want)
        assert got.statistic == pytest.approx(want.statistic, rel=1e-12)
        assert got.pvalue == pytest.approx(want.pvalue, rel=1e-9, abs=1e-300)
    small = scipy.stats.kendalltau([1, 2, 3, 4, 5], [1, 3, 2, 5, 4])
    assert small == ORIGINALS["kendalltau"](
        [1, 2, 3, 4, 5], [1, 3, 2, 5, 4]
    )  # a tuple, like scipy's
    tau, _ = small
    assert (len(small), small[0], small.correlation) == (2, tau, tau)
    assert calls(accel, "scipy.stats.kendalltau") == (5, 0)


def test_kendalltau_falls_back_to_scipy_where_scipy_decides(accel) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.isnan(scipy.stats.kendalltau([1.0], [2.0]).statistic)
        assert np.isnan(scipy.stats.kendalltau([2.0, 2.0, 2.0], [1.0, 2.0, 3.0]).statistic)
    with pytest.raises(ValueError, match="The input contains nan values"):
        scipy.stats.kendalltau([1.0, np.nan, 3.0], [1.0, 2.0, 3.0], nan_policy="raise")
    # scipy does not check `alternative` on its exact path: neither does the patched call.
    odd = scipy.stats.kendalltau([1, 2, 3], [3, 1, 2], alternative="bigger")
    assert odd == ORIGINALS["kendalltau"]([1, 2, 3], [3, 1, 2], alternative="bigger")
    with pytest.raises(ValueError, match="Unknown method banana"):
        scipy.stats.kendalltau([1, 2, 3], [3, 1, 2], method="banana")
    stats = accel.functions["scipy.stats.kendalltau"]
    assert stats.fast_calls == 0
    assert stats.fallback_calls == 5
    assert stats.reasons["fewer than 2 observations"] == 1
    assert stats.reasons["a constant input (tau undefined)"] == 1
    assert stats.reasons["NaN with nan_policy='raise' (scipy's error)"] == 1


def test_kendalltau_nan_policies_on_the_fast_path(accel) -> None:
    x = np.array([1.0, np.nan, 3.0, 4.0, 2.0, 7.0])
    y = np.array([1.0, 2.0, 3.0, np.nan, 5.0, 4.0])
    for policy in ("propagate", "omit"):
        got = scipy.stats.kendalltau(x, y, nan_policy=policy)
        want = ORIGINALS["kendalltau"](x, y, nan_policy=policy)
        np.testing.assert_allclose(got, want, rtol=1e-12)
    assert calls(accel, "scipy.stats.kendalltau") == (2, 0)


def test_fail_on_fallback_and_check_modes(accel, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENLAB_ACCEL_FAIL_ON_FALLBACK", "1")
    assert scipy.stats.kendalltau([1, 2, 3], [1, 3, 2]).statistic == pytest.approx(1 / 3)
    with pytest.raises(FallbackError, match="kendalltau fell back to the original: x has dtype"):
        scipy.stats.kendalltau(np.array([1, 2, 3], dtype=np.longdouble), [1, 3, 2])
    monkeypatch.delenv("GENLAB_ACCEL_FAIL_ON_FALLBACK")
    monkeypatch.setenv("GENLAB_ACCEL_CHECK", "1")
    with warnings.catch_warnings():
        warnings.simplefilter("error", genlab.accel.AccelMismatchWarning)
        scipy.stats.kendalltau(np.arange(50.0), np.arange(50.0) ** 3)
        frame = pd.DataFrame(np.random.default_rng(1).normal(size=(40, 3)))
        frame.corr(method="kendall")


def test_profile_report_names_fast_calls_and_fallback_reasons() -> None:
    out = io.StringIO()
    try:
        with genlab.accel.profile(file=out):
            scipy.stats.kendalltau([1, 2, 3, 4], [2, 1, 4, 3])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                scipy.stats.kendalltau([1.0], [2.0])
    finally:
        genlab.accel.uninstall()
    report = out.getvalue()
    assert "genlab.accel profile" in report
    line = next(row for row in report.splitlines() if row.startswith("scipy.stats.kendalltau"))
    assert line.split()[1] == "1"  # one fast call
    assert "fallback x1: fewer than 2 observations" in report


def test_gaussian_kde_evaluates_as_scipy(accel) -> None:
    rng = np.random.default_rng(2)
    data = rng.normal(size=(2, 300))
    points = rng.normal(size=(2, 50))
    weights = rng.random(300)
    for kwargs in ({}, {"bw_method": "silverman"}, {"weights": weights}, {"bw_method": 0.3}):
        ours, theirs = (
            scipy.stats.gaussian_kde(data, **kwargs),
            ORIGINALS["gaussian_kde"](data, **kwargs),
        )
        assert isinstance(ours, ORIGINALS["gaussian_kde"])
        np.testing.assert_allclose(ours(points), theirs(points), rtol=1e-12)
        np.testing.assert_allclose(ours.pdf(points), theirs.pdf(points), rtol=1e-12)
        np.testing.assert_allclose(ours.logpdf(points), theirs.logpdf(points), rtol=1e-12)
        assert ours.integrate_box_1d is not None  # scipy's own methods remain
    one_d = scipy.stats.gaussian_kde(data[0])
    np.testing.assert_allclose(
        one_d([0.0, 1.0]), ORIGINALS["gaussian_kde"](data[0])([0.0, 1.0]), rtol=1e-12
    )
    assert calls(accel, "scipy.stats.gaussian_kde.evaluate") == (9, 0)
    with pytest.raises(ValueError, match="points have dimension 3, dataset has dimension 2"):
        scipy.stats.gaussian_kde(data)(np.zeros((3, 4)))  # scipy's own error, after a fallback
    long = scipy.stats.gaussian_kde(data.astype(np.longdouble))
    assert long(points).dtype == np.longdouble  # scipy's path: genlab computes in float64


def test_gaussian_kde_subclass_still_works(accel) -> None:
    class Narrow(scipy.stats.gaussian_kde):
        def covariance_factor(self) -> float:
            return 0.1

    data = np.random.default_rng(3).normal(size=(1, 200))
    ours = Narrow(data)
    theirs = ORIGINALS["gaussian_kde"](data, bw_method=0.1)
    np.testing.assert_allclose(ours([0.0, 0.5]), theirs([0.0, 0.5]), rtol=1e-12)


@pytest.mark.parametrize("kernel", ["gaussian", "tophat", "epanechnikov", "exponential"])
def test_kernel_density_scores_as_scikit_learn(accel, kernel: str) -> None:
    rng = np.random.default_rng(4)
    data, queries = rng.normal(size=(400, 3)), rng.normal(size=(30, 3))
    weights = rng.random(400)
    ours = sklearn.neighbors.KernelDensity(kernel=kernel, bandwidth=0.7)
    theirs = ORIGINALS["KernelDensity"](kernel=kernel, bandwidth=0.7)
    ours.fit(data, sample_weight=weights)
    theirs.fit(data, sample_weight=weights)
    np.testing.assert_allclose(
        ours.score_samples(queries), theirs.score_samples(queries), rtol=1e-9
    )
    assert ours.score(queries) == pytest.approx(theirs.score(queries), rel=1e-9)
    assert clone(ours).get_params() == theirs.get_params()
    # A pickle names scikit-learn's class: it loads where genlab is not installed.
    loaded = pickle.loads(pickle.dumps(ours))
    assert type(loaded) is ORIGINALS["KernelDensity"]
    np.testing.assert_allclose(loaded.score_samples(queries), theirs.score_samples(queries))
    assert calls(accel, "sklearn.neighbors.KernelDensity.score_samples") == (2, 0)


def test_kernel_density_falls_back_for_what_genlab_does_not_do(accel) -> None:
    data = np.random.default_rng(5).normal(size=(200, 2))
    manhattan = sklearn.neighbors.KernelDensity(metric="manhattan").fit(data)
    reference = ORIGINALS["KernelDensity"](metric="manhattan").fit(data)
    np.testing.assert_allclose(manhattan.score_samples(data[:5]), reference.score_samples(data[:5]))
    with pytest.raises(NotFittedError):
        sklearn.neighbors.KernelDensity().score_samples(data)
    stats = accel.functions["sklearn.neighbors.KernelDensity.score_samples"]
    assert stats.fast_calls == 0
    assert stats.reasons["metric 'manhattan'"] == 1


def test_pandas_kendall_correlations_as_pandas(accel) -> None:
    rng = np.random.default_rng(6)
    frame = pd.DataFrame(rng.normal(size=(200, 4)).round(1), columns=list("abcd"))
    frame.iloc[::5, 1] = np.nan
    frame["e"] = 1.0  # constant: NaN
    for min_periods in (1, 170):
        got = frame.corr(method="kendall", min_periods=min_periods)
        want = ORIGINALS["DataFrame.corr"](frame, method="kendall", min_periods=min_periods)
        pd.testing.assert_frame_equal(got, want, rtol=1e-12)
    assert calls(accel, "pandas.DataFrame.corr") == (2, 0)
    pd.testing.assert_frame_equal(
        frame.corr(), ORIGINALS["DataFrame.corr"](frame)
    )  # pearson untouched
    assert calls(accel, "pandas.DataFrame.corr") == (2, 0)
    a, b = frame["a"], frame["b"].iloc[::-1]
    assert a.corr(b, method="kendall") == pytest.approx(
        pd.Series.corr.__wrapped__(a, b, method="kendall"), rel=1e-12
    )
    assert calls(accel, "pandas.Series.corr") == (1, 0)
    got = frame[["a", "b", "c"]].corrwith(frame["d"], method="kendall")
    assert calls(accel, "pandas.Series.corr")[0] == 4  # corrwith went through Series.corr
    want = pd.Series(
        {c: ORIGINALS["kendalltau"](*_complete(frame[c], frame["d"]))[0] for c in "abc"}
    )
    pd.testing.assert_series_equal(got, want, rtol=1e-12)
    text = frame.assign(f="x")
    with pytest.raises(ValueError, match="could not convert string to float"):
        text.corr(method="kendall")  # pandas' own error, after a fallback


def _complete(a: pd.Series, b: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    keep = a.notna() & b.notna()
    return a[keep].to_numpy(), b[keep].to_numpy()


def test_ipython_extension_hooks() -> None:
    try:
        genlab.accel.load_ipython_extension(None)
        assert genlab.accel.is_installed()
        genlab.accel.unload_ipython_extension(None)
        assert not genlab.accel.is_installed()
    finally:
        genlab.accel.uninstall()


def run_python(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("GENLAB_ACCEL")}
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**environment, **env},
        check=False,
        cwd=ROOT,
    )


def test_an_unmodified_script_prints_the_same_numbers() -> None:
    plain = run_python("examples/accel_demo.py")
    assert plain.returncode == 0, plain.stderr
    fast = run_python("-m", "genlab.accel", "examples/accel_demo.py", GENLAB_ACCEL_PROFILE="1")
    assert fast.returncode == 0, fast.stderr
    assert fast.stdout == plain.stdout
    report = fast.stderr
    for name in (
        "scipy.stats.kendalltau",
        "scipy.stats.gaussian_kde.evaluate",
        "sklearn.neighbors.KernelDensity.score_samples",
        "pandas.DataFrame.corr",
    ):
        line = next(row for row in report.splitlines() if row.startswith(name))
        fast_calls, fallbacks = int(line.split()[1]), int(line.split()[4])
        assert (fast_calls, fallbacks) == (1, 0), line
    module = run_python("-m", "genlab.accel", "-m", "examples.accel_demo")
    assert module.returncode == 0, module.stderr
    assert module.stdout == plain.stdout
    usage = run_python("-m", "genlab.accel")
    assert usage.returncode == 2
    assert "usage: python -m genlab.accel" in usage.stderr


def _patched_in_child(_: int) -> bool:
    import scipy.stats as stats

    return (
        stats.kendalltau.__module__ == "scipy.stats._stats_py"
        and stats.kendalltau.__code__.co_filename.endswith(
            str(Path("genlab", "accel", "_scipy.py"))
        )
    )


def test_processes_started_after_install_are_patched_too() -> None:
    """Through GENLAB_ACCEL=1 and the genlab_accel.pth startup hook: multiprocessing's spawn
    and joblib's loky workers install genlab.accel before running anything."""
    import multiprocessing

    from joblib import Parallel, delayed

    try:
        genlab.accel.install()
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            assert pool.map(_patched_in_child, [0]) == [True]
        assert Parallel(n_jobs=2, backend="loky")(
            delayed(_patched_in_child)(i) for i in range(2)
        ) == [True, True]
    finally:
        genlab.accel.uninstall()
    probe = "import scipy.stats, genlab.accel; print(genlab.accel.is_installed())"
    assert run_python("-c", probe).stdout.strip() == "False"  # no GENLAB_ACCEL: idle


RAY_PROBE = """
import genlab.accel
genlab.accel.install()
import ray
ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)

@ray.remote
def patched():
    import scipy.stats
    return scipy.stats.kendalltau.__code__.co_filename.endswith("_scipy.py")

print("ray worker patched:", ray.get(patched.remote()))
ray.shutdown()
"""


def test_ray_workers_are_patched_too() -> None:
    pytest.importorskip("ray")
    result = run_python("-c", RAY_PROBE)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ray worker patched: True" in result.stdout
