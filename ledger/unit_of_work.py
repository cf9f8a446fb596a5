"""The unit of work of one batch: the aggregates it reads and the events it makes.

Aggregates are read through a bounded cache shared across batches (the ledger
is a single writer per store). Nothing in the cache is trusted after a failed
save: the caller clears it, and the batch is redone from the store.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import StoredEvent

A = TypeVar("A", bound=Aggregate)

CACHE_AGGREGATES_MAX = 200_000


class AggregateCache:
    """LRU of aggregates as saved. Bounded so memory stays flat on any input."""

    def __init__(self, maxsize: int = CACHE_AGGREGATES_MAX) -> None:
        if maxsize < 1:
            raise ValueError("cache maxsize must be positive")
        self.maxsize = maxsize
        self._items: OrderedDict[UUID, Aggregate] = OrderedDict()

    def get(self, agg_id: UUID) -> Aggregate | None:
        agg = self._items.get(agg_id)
        if agg is not None:
            self._items.move_to_end(agg_id)
        return agg

    def put(self, agg: Aggregate) -> None:
        self._items[agg.id] = agg
        self._items.move_to_end(agg.id)
        while len(self._items) > self.maxsize:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


class UnitOfWork:
    def __init__(self, repository: Any, cache: AggregateCache, mapper: Any) -> None:
        self._repository = repository
        self._cache = cache
        self._mapper = mapper
        self.aggregates: dict[UUID, Aggregate] = {}
        self._touched: list[Aggregate] = []
        self.stored: list[StoredEvent] = []  # in decision order: the batch's one transaction

    def get(self, cls: type[A], agg_id: UUID) -> A | None:
        agg = self.aggregates.get(agg_id)
        if agg is None:
            agg = self._cache.get(agg_id)
            if agg is None:
                try:
                    agg = self._repository.get(agg_id)
                except AggregateNotFoundError:
                    return None
            self.aggregates[agg_id] = agg
        if not isinstance(agg, cls):
            raise TypeError(f"aggregate {agg_id} is a {type(agg).__name__}, not a {cls.__name__}")
        self._touched.append(agg)
        return agg

    def add(self, agg: A) -> A:
        if agg.id in self.aggregates:
            raise ValueError(f"aggregate {agg.id} already exists in this unit of work")
        self.aggregates[agg.id] = agg
        self._touched.append(agg)
        return agg

    def collect(self) -> None:
        """After a record is handled: move its aggregates' new events to the batch, in order."""
        for agg in self._touched:
            for e in agg.collect_events():
                self.stored.append(self._mapper.to_stored_event(e))
        self._touched.clear()

    def discard_record(self) -> None:
        """After a record was refused: it must have changed nothing."""
        for agg in self._touched:
            pending = agg.collect_events()
            if pending:
                raise RuntimeError(
                    f"a handler changed {type(agg).__name__} {agg.id} before refusing a record: "
                    f"{[type(e).__name__ for e in pending]}"
                )
        self._touched.clear()

    def commit_to(self, cache: AggregateCache) -> None:
        for agg in self.aggregates.values():
            cache.put(agg)
