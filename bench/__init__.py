"""Benchmarks: ``python -m bench`` runs every ``bench/bench_*.py``'s ``main()`` and prints one table per bench.

A bench's ``main()`` returns its rows (a list of dicts with the same keys); warm-up runs are never timed.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable

import torch


def format_table(rows: list[dict], title: str = "") -> str:
    """Plain-text table, columns in the order of the first row's keys; floats with 4 significant digits."""
    if not rows:
        return f"{title}\n(no rows)\n"
    cols = list(rows[0])
    cell = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)  # noqa: E731
    width = {c: max(len(c), *(len(cell(r.get(c, ""))) for r in rows)) for c in cols}
    lines = [title] if title else []
    lines.append("  ".join(c.rjust(width[c]) for c in cols))
    lines.append("  ".join("-" * width[c] for c in cols))
    lines += ["  ".join(cell(r.get(c, "")).rjust(width[c]) for c in cols) for r in rows]
    return "\n".join(lines) + "\n"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fns: dict[str, Callable[[], object]], device: torch.device, repeats: int = 5,
          warmup: int = 1) -> dict[str, float]:
    """Median wall seconds of each ``fn()`` over ``repeats`` runs after ``warmup`` untimed runs. The functions take
    turns (a, b, a, b, ...) so that load from other processes hits them alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def pick_device(name: str = "auto") -> torch.device:
    return torch.device("cuda" if name == "auto" and torch.cuda.is_available() else ("cpu" if name == "auto" else name))
