"""Shared test configuration: one hypothesis profile, and the skip of CUDA tests without a GPU.

CUDA tests carry ``@pytest.mark.cuda``; on a machine without a CUDA GPU (CI has none) they are
skipped here, in one place, with the reason shown by ``-ra``.
"""

from __future__ import annotations

import pytest
from hypothesis import settings

# No deadline: the first call of a kernel allocates its thread pool and buffers, and this 2-core
# machine is shared, so wall-clock deadlines would fail at random. Examples stay per test.
settings.register_profile("genlab", deadline=None, print_blob=True)
settings.load_profile("genlab")


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    cuda_items = [item for item in items if "cuda" in item.keywords]
    if cuda_items and not _cuda_available():
        skip = pytest.mark.skip(reason="needs a CUDA GPU")
        for item in cuda_items:
            item.add_marker(skip)
