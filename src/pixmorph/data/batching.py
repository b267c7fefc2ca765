"""Batching images of mixed sizes: the one helper every loop that stacks images uses."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import Any, TypeVar

from torch import Tensor

T = TypeVar("T")


def item_shapes(item: dict[str, Any]) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """The shapes of a dataset item's tensors: items stack into one batch when these agree."""
    return tuple((k, tuple(v.shape)) for k, v in item.items() if isinstance(v, Tensor))


def same_size_runs(
    items: Iterable[T], batch_size: int, shape: Callable[[T], Hashable]
) -> Iterator[list[T]]:
    """Consecutive items in lists of at most batch_size; a change of shape starts a new list."""
    pending: list[T] = []
    for item in items:
        if pending and (len(pending) == batch_size or shape(item) != shape(pending[0])):
            yield pending
            pending = []
        pending.append(item)
    if pending:
        yield pending
