"""The house rules: which room may import which (docs/ARCHITECTURE.md).

The rules are read from the import table in docs/ARCHITECTURE.md, so the doc
and the check cannot drift apart:

| room | may import |
| `ledger/` | stdlib, eventsourcing, pydantic, orjson — nothing from other rooms |
| `projections/` | `ledger` |
| `detectors/` | `ledger`, `projections.feed` (the feed only) |
| `streams/` | `ledger`, `projections`, `detectors` |
| `ops/` | everything |

Every ``import``/``from … import`` counts, including relative imports, imports
under ``if TYPE_CHECKING:`` and ``importlib.import_module("…")`` with a literal.
"""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARCHITECTURE = ROOT / "docs" / "ARCHITECTURE.md"
ROOMS = ("ledger", "projections", "detectors", "streams", "ops")
CHECKED_ROOMS = ("ledger", "projections", "detectors", "streams")
# Modules a room's third-party allow-list implies (same distribution family).
_IMPLIED = {"pydantic": ("pydantic_core",)}


@dataclass(frozen=True)
class RoomRule:
    room: str
    unrestricted: bool  # "everything"
    rooms: tuple[str, ...]  # allowed targets among our rooms (module prefixes)
    third_party: tuple[str, ...] | None  # None: not restricted by the doc


def parse_rules(text: str) -> dict[str, RoomRule]:
    """Read the ``| room | may import |`` table."""
    rules: dict[str, RoomRule] = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 2:
            continue
        m = re.fullmatch(r"`(\w+)/?`", cells[0])
        if not m or m.group(1) not in ROOMS:
            continue
        room, allowed = m.group(1), cells[1]
        ticked = tuple(t.rstrip("/") for t in re.findall(r"`([\w.]+/?)`", allowed))
        third_party = None
        if "stdlib" in allowed:
            head = re.split(r"\s[—–-]+\s", allowed, maxsplit=1)[0]
            names = [n.strip() for n in head.split(",")]
            third_party = tuple(n for n in names if n and n != "stdlib" and re.fullmatch(r"\w+", n))
        rules[room] = RoomRule(
            room=room,
            unrestricted="everything" in allowed,
            rooms=tuple(t for t in ticked if t.split(".")[0] in ROOMS),
            third_party=third_party,
        )
    return rules


@dataclass(frozen=True)
class ImportRef:
    path: str  # relative to the repo root
    line: int
    target: str  # absolute dotted module (for `from a import b`: "a.b")


def _module_parts(rel: Path) -> list[str]:
    parts = list(rel.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return parts


def imports_of(source: str, rel: Path) -> list[ImportRef]:
    """Every module a file imports, resolved to absolute dotted names."""
    tree = ast.parse(source, filename=str(rel))
    parts = _module_parts(rel)
    package = parts if rel.name == "__init__.py" else parts[:-1]
    refs: list[ImportRef] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                refs.append(ImportRef(str(rel), node.lineno, alias.name))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                keep = len(package) - (node.level - 1)
                base = package[:keep] if keep >= 0 else []
                module = ".".join(base + (node.module.split(".") if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                # `from projections import balances` may import a submodule:
                # judge it as "projections.balances".
                target = f"{module}.{alias.name}" if module else alias.name
                refs.append(ImportRef(str(rel), node.lineno, target))
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            arg = node.args[0]
            if name in ("import_module", "__import__") and isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                refs.append(ImportRef(str(rel), node.lineno, arg.value))
    return refs


def _matches(target: str, prefix: str) -> bool:
    return target == prefix or target.startswith(prefix + ".")


def violations(room: str, refs: list[ImportRef], rule: RoomRule) -> list[str]:
    bad: list[str] = []
    if rule.unrestricted:
        return bad
    for ref in refs:
        top = ref.target.split(".")[0]
        if top in ROOMS:
            if top == room or any(_matches(ref.target, allowed) for allowed in rule.rooms):
                continue
            bad.append(f"{ref.path}:{ref.line}: {room}/ imports {ref.target} (may import: {', '.join(rule.rooms) or 'no other room'})")
        elif rule.third_party is not None and top not in sys.stdlib_module_names:
            allowed = set(rule.third_party)
            for name in rule.third_party:
                allowed.update(_IMPLIED.get(name, ()))
            if top not in allowed:
                bad.append(f"{ref.path}:{ref.line}: {room}/ imports third-party {ref.target} (may import: stdlib, {', '.join(rule.third_party)})")
    return bad


def _room_files(room: str) -> list[Path]:
    return sorted(p for p in (ROOT / room).rglob("*.py") if "__pycache__" not in p.parts)


@pytest.fixture(scope="module")
def rules() -> dict[str, RoomRule]:
    return parse_rules(ARCHITECTURE.read_text(encoding="utf-8"))


def test_architecture_table_is_readable(rules: dict[str, RoomRule]) -> None:
    assert set(rules) == set(ROOMS), f"import table in {ARCHITECTURE} lists {sorted(rules)}, expected {list(ROOMS)}"
    assert rules["ops"].unrestricted
    assert rules["ledger"].rooms == ()
    assert rules["ledger"].third_party and "eventsourcing" in rules["ledger"].third_party
    assert set(rules["projections"].rooms) == {"ledger"}
    assert set(rules["detectors"].rooms) == {"ledger", "projections.feed"}
    assert "ops" not in rules["streams"].rooms


@pytest.mark.parametrize("room", CHECKED_ROOMS)
def test_room_imports_follow_the_table(room: str, rules: dict[str, RoomRule]) -> None:
    files = _room_files(room)
    assert files, f"{room}/ has no Python files"
    bad: list[str] = []
    for path in files:
        rel = path.relative_to(ROOT)
        try:
            refs = imports_of(path.read_text(encoding="utf-8"), rel)
        except SyntaxError as exc:
            bad.append(f"{rel}:{exc.lineno}: cannot be parsed: {exc.msg}")
            continue
        bad.extend(violations(room, refs, rules[room]))
    assert not bad, f"{len(bad)} import(s) break the room rules of docs/ARCHITECTURE.md:\n" + "\n".join(bad)


# The checker itself must catch what it is meant to catch.
@pytest.mark.parametrize(
    ("rel", "source", "expected"),
    [
        ("ledger/x.py", "from ops import cli\n", ["ledger/x.py:1: ledger/ imports ops.cli"]),
        ("ledger/x.py", "import numpy\n", ["ledger/x.py:1: ledger/ imports third-party numpy"]),
        ("ledger/x.py", "import json, orjson\nfrom pydantic import BaseModel\nfrom eventsourcing.domain import Aggregate\n", []),
        ("ledger/sub/x.py", "from ...projections import feed\n", ["ledger/sub/x.py:1: ledger/ imports projections.feed"]),
        ("ledger/x.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import streams.relay\n", ["ledger/x.py:3: ledger/ imports streams.relay"]),
        ("projections/x.py", "from ledger.money import parse_fen\nfrom . import feed\n", []),
        ("projections/x.py", "import detectors.rules\n", ["projections/x.py:1: projections/ imports detectors.rules"]),
        ("detectors/x.py", "from projections.feed import Accepted\nfrom projections import feed\nimport projections.feed as f\n", []),
        ("detectors/x.py", "from projections import feed, balances\n", ["detectors/x.py:1: detectors/ imports projections.balances"]),
        ("detectors/x.py", "import importlib\nm = importlib.import_module('projections.views')\n", ["detectors/x.py:2: detectors/ imports projections.views"]),
        ("streams/x.py", "from detectors import run\nfrom projections.balances import B\n", []),
        ("streams/x.py", "from ops.settings import Settings\n", ["streams/x.py:1: streams/ imports ops.settings"]),
    ],
)
def test_checker_catches_violations(rel: str, source: str, expected: list[str], rules: dict[str, RoomRule]) -> None:
    room = rel.split("/")[0]
    found = violations(room, imports_of(source, Path(rel)), rules[room])
    assert len(found) == len(expected), found
    for got, want in zip(found, expected):
        assert got.startswith(want), (got, want)
