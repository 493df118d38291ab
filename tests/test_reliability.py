"""Hostile input: nothing may take the machine, poison a study, or return a silent NaN.

Each test is one reproducer: the bad input, the exact exception type, the argument named in
the message.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from genlab import rank
from genlab.errors import TooLargeError


def test_a_tiny_input_cannot_ask_for_a_huge_matrix() -> None:
    started = time.perf_counter()
    with pytest.raises(
        TooLargeError, match=r"X: the 60000 x 60000 matrix .* would need 5[0-9.]+ GiB"
    ):
        rank.kendalltau_matrix(np.zeros((3, 60_000)))
    assert time.perf_counter() - started < 2  # refused before anything is allocated
    # What it says to do works: blocks of columns.
    X = np.random.default_rng(0).normal(size=(50, 6))
    full = rank.kendalltau_matrix(X)
    assert np.array_equal(rank.kendalltau_matrix(X[:, :3]), full[:3, :3])


def test_cmi_refuses_to_enumerate_millions_of_subsets() -> None:
    g = np.random.default_rng(1).normal(size=6)
    hp = {f"a{i}": np.random.default_rng(i).integers(0, 2, 6) for i in range(26)}
    started = time.perf_counter()
    with pytest.raises(TooLargeError, match=r"max_subset_size: .* 67108864 subsets"):
        rank.conditional_mutual_information(g, g, hp, max_subset_size=26)
    assert time.perf_counter() - started < 2
    # The default bound (2) is fine: 1 + 26 + 325 subsets.
    assert len(rank.conditional_mutual_information(g, g, hp).scores) == 352
