"""Fixtures for the projection tests (helpers live in projhelp.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from projhelp import Books, lines_of

@pytest.fixture
def books_factory(tmp_path: Path) -> Iterator[Any]:
    """books_factory(settings=None) -> Books (SQLite in a fresh directory by default)."""
    from ops.settings import Settings

    made: list[Books] = []
    counter = iter(range(1_000_000))

    def make(settings: Any = None) -> Books:
        if settings is None:
            settings = Settings(data_dir=tmp_path / f"data{next(counter)}", database_url=None, database_schema=None)
        b = Books(settings)
        made.append(b)
        return b

    yield make
    for b in made:
        b.close()


@pytest.fixture
def sim_lines() -> Any:
    """sim_lines(seed, classes, region) -> the simulator's records as JSON lines (cached)."""
    cache: dict[tuple, list[str]] = {}

    def make(seed: int = 7, classes: int = 6, region: str = "420100", fraud_rate: float = 0.3) -> list[str]:
        key = (seed, classes, region, fraud_rate)
        if key not in cache:
            from ops.simulate import simulate

            sim = simulate(seed=seed, classes=classes, fraud_rate=fraud_rate, region=region)
            cache[key] = lines_of(sim.records)
        return cache[key]

    return make
