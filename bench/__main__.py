"""Run every bench module: ``python -m bench [name ...]``.

A bench module is any ``bench/<name>.py`` other than ``common`` that defines
``main()``. Names on the command line narrow the run (``python -m bench ingest``).
Sizes come from the environment (``BENCH_RECORDS`` and friends).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
from pathlib import Path

SKIP = {"common", "__main__", "__init__"}


def modules() -> list[str]:
    here = Path(__file__).resolve().parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name not in SKIP and not m.name.startswith("_"))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    names = modules()
    wanted = argv or names
    unknown = [n for n in wanted if n not in names]
    if unknown:
        print(f"unknown bench module(s): {', '.join(unknown)}; have: {', '.join(names)}", file=sys.stderr)
        return 2
    failed = []
    for name in wanted:
        module = importlib.import_module(f"bench.{name}")
        run = getattr(module, "main", None)
        if run is None:
            continue
        print(f"\n######## bench.{name}", flush=True)
        t0 = time.perf_counter()
        try:
            run()
        except Exception as exc:  # noqa: BLE001 - one failing bench must not hide the others
            failed.append(name)
            print(f"bench.{name} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        print(f"######## bench.{name}: {time.perf_counter() - t0:.1f} s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    raise SystemExit(main())
