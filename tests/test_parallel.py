"""Thread pools: n_jobs capped at the cores, kernels that keep working after fork(), and Python
threads calling every kernel at once getting the serial results."""

from __future__ import annotations

import os
import signal
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from genlab import _core, attention, kde, rank, rate
from genlab.errors import ResourceUseWarning

RNG = np.random.default_rng(0)
X = RNG.normal(size=(3000, 6))
Y = X[:, 0] + RNG.normal(size=3000)
TOKENS = RNG.normal(size=(8, 20, 6))
Q = RNG.normal(size=(2, 16, 4))
HP = {"a": np.repeat(np.arange(30), 100) % 3, "b": np.repeat(np.arange(30), 100) // 3}

# Every kernel family, each call returning an array (compared exactly).
KERNELS: dict[str, Callable[[], Any]] = {
    "kendalltau": lambda: np.array(rank.kendalltau(X[:, 0], Y)),
    "kendalltau_many": lambda: rank.kendalltau_many(X, Y, n_jobs=-1).statistic,
    "kendalltau_matrix": lambda: rank.kendalltau_matrix(X),
    "granulated_kendall": lambda: np.array(rank.granulated_kendall(X[:, 1], Y, HP).psi),
    "coding_rate": lambda: rate.coding_rate(TOKENS, eps=0.5),
    "log_density": lambda: kde.log_density(X[:500], X[:50], bandwidth=0.8),
    "tensor_attention": lambda: attention.tensor_attention(Q, Q, Q, Q, Q),
}


def test_n_jobs_above_the_cores_is_capped_with_a_warning() -> None:
    cores = _core.effective_n_jobs(-1)
    serial = rank.kendalltau_many(X, Y, n_jobs=1).statistic
    started = time.perf_counter()
    with pytest.warns(ResourceUseWarning, match=f"more than the {cores} cores"):
        got = rank.kendalltau_many(X, Y, n_jobs=100_000).statistic
    assert time.perf_counter() - started < 10  # 100,000 OS threads would take far longer
    np.testing.assert_array_equal(got, serial)
    assert _core.effective_n_jobs(100_000) == cores


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_kernels_work_in_a_forked_child() -> None:
    expected = {name: fn() for name, fn in KERNELS.items()}  # the parent's pools are running
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads, Python >= 3.12
        pid = os.fork()
    if pid == 0:  # the child: every kernel, default pool and an explicit one
        status = 0
        try:
            for name, fn in KERNELS.items():
                if not np.array_equal(fn(), expected[name]):
                    status = 1
            if not np.array_equal(
                rank.kendalltau_many(X, Y, n_jobs=None).statistic, expected["kendalltau_many"]
            ):
                status = 1
        except BaseException:
            status = 2
        os._exit(status)
    deadline = time.time() + 120
    while time.time() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("a kernel hung in the forked child")
    assert os.waitstatus_to_exitcode(status) == 0


def test_python_threads_calling_every_kernel_get_the_serial_results() -> None:
    expected = {name: fn() for name, fn in KERNELS.items()}
    results: dict[tuple[int, str], Any] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def worker(k: int) -> None:
        try:
            barrier.wait()
            for name, fn in KERNELS.items():
                results[(k, name)] = fn()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)
    for (_, name), got in results.items():
        np.testing.assert_array_equal(got, expected[name], err_msg=name)
    assert len(results) == 4 * len(KERNELS)
