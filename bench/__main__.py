"""Run every bench/bench_*.py ``main()`` and print one table per bench: ``python -m bench [name ...]``."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import bench


def run(names: list[str]) -> int:
    found = sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_"))
    unknown = [n for n in names if n not in found and f"bench_{n}" not in found]
    if unknown:
        print(f"bench: unknown bench {unknown}; available: {found}", file=sys.stderr)
        return 2
    chosen = [m for m in found if not names or m in names or m.removeprefix("bench_") in names]
    for name in chosen:
        module = importlib.import_module(f"bench.{name}")
        rows = module.main([])
        if rows is not None:
            print(bench.format_table(rows, title=f"== {name} =="), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
