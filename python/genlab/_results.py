"""Base for result objects: frozen dataclasses that unpack like tuples where the peer's result does."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any


@dataclasses.dataclass(frozen=True)
class TupleResult:
    """A frozen dataclass whose fields also unpack, index and ``len()`` like a tuple."""

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, f.name) for f in dataclasses.fields(self))

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values())

    def __len__(self) -> int:
        return len(dataclasses.fields(self))

    def __getitem__(self, index: int) -> Any:
        return self._values()[index]
