"""PNG training curves from the trainer's ``metrics.jsonl`` (one JSON object per line).

A record looks like ``{"step": 100, "split": "train", "loss": 1.2, "lr": 1e-3}``. Every numeric key
other than the x axis and bookkeeping keys is a metric; each gets its own subplot, with one line per
split (train/valid overlaid) or, in ``plot_runs``, one colour per run and one line style per split.
Figures are built with the object API on the Agg canvas: no pyplot, no global backend switch, so
plotting from a training process or a headless job cannot pick up a GUI backend.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from typing import Iterable, Mapping, Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from audiorl.log import get_logger
from audiorl.train.metrics import read_metrics  # noqa: F401  (one reader of metrics.jsonl; re-exported)

logger = get_logger(__name__)
# Log-scale tick labels are mathtext; on a machine without the TeX/STIX fonts matplotlib logs one "findfont ...
# Falling back to DejaVu Sans" warning per glyph family into the training log. The fallback is fine: keep the log clean.
logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)

# Keys that describe a record rather than measure something.
NON_METRIC_KEYS = frozenset({"step", "split", "epoch", "iter", "time", "wall_time", "timestamp"})
SPLIT_STYLES = {"train": "-", "valid": "--", "dev": "--", "test": ":"}
Records = Sequence[Mapping]
Series = dict[str, dict[str, tuple[list[float], list[float]]]]  # metric -> split -> (xs, ys)


def collect(records: Iterable[Mapping], *, x: str = "step", metrics: Sequence[str] | None = None) -> Series:
    """Group finite numeric values by metric and split, in record order; records without ``x`` are skipped."""
    series: Series = {}
    skipped = 0
    for rec in records:
        if x not in rec:
            skipped += 1
            continue
        split = str(rec.get("split", "train"))
        for k, v in rec.items():
            if k == x or k in NON_METRIC_KEYS or isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            if metrics is not None and k not in metrics:
                continue
            if not math.isfinite(v):
                continue  # a nan loss is a fact to log, not a point matplotlib can draw
            xs, ys = series.setdefault(k, {}).setdefault(split, ([], []))
            xs.append(float(rec[x]))
            ys.append(float(v))
    if skipped:
        logger.warning("%d records have no %r key and were not plotted", skipped, x)
    if metrics is not None:
        absent = [m for m in metrics if m not in series]
        if absent:
            logger.warning("metrics not found in the records: %s", absent)
        series = {m: series[m] for m in metrics if m in series}
    return series


def ema(ys: Sequence[float], weight: float) -> list[float]:
    """TensorBoard-style debiased exponential moving average (weight 0 = no smoothing)."""
    out, acc = [], 0.0
    for i, y in enumerate(ys, 1):
        acc = weight * acc + (1 - weight) * y
        out.append(acc / (1 - weight ** i))
    return out


def _load(src: str | Records) -> Records:
    return read_metrics(src) if isinstance(src, str) else src


def _grid(n: int, ncols: int) -> tuple[Figure, list]:
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(4.2 * ncols, 3.2 * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(nrows, ncols, i + 1) for i in range(n)]
    return fig, axes


def _draw(ax, xs, ys, *, label: str, style: str, color=None, smooth: float = 0.0) -> None:
    if smooth > 0 and len(ys) > 2:
        line, = ax.plot(xs, ys, style, color=color, alpha=0.25, linewidth=0.8)
        ax.plot(xs, ema(ys, smooth), style, color=line.get_color(), label=label, linewidth=1.4)
    else:
        ax.plot(xs, ys, style, color=color, label=label, linewidth=1.4, marker="o" if len(xs) < 30 else None,
                markersize=3)


def _finish(fig: Figure, axes, names: Sequence[str], *, x: str, logy: Sequence[str], out: str, title: str | None) -> str:
    for ax, m in zip(axes, names):
        ax.set_title(m)
        ax.set_xlabel(x)
        ax.grid(True, alpha=0.3)
        if m in logy and all(y > 0 for line in ax.get_lines() for y in line.get_ydata()):
            ax.set_yscale("log")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    # Atomic: a dashboard polling the PNG must never read a half-written file.
    d = os.path.dirname(os.path.abspath(out))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp.", suffix=".png", dir=d)
    os.close(fd)
    try:
        fig.savefig(tmp, format="png", dpi=100)
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return out


def plot_metrics(src: str | Records, out: str, *, metrics: Sequence[str] | None = None, x: str = "step",
                 logy: Sequence[str] = ("lr",), smooth: float = 0.0, ncols: int = 3, title: str | None = None) -> str:
    """One run: a subplot per metric, one line per split. Returns ``out``."""
    series = collect(_load(src), x=x, metrics=metrics)
    if not series:
        raise ValueError(f"nothing to plot in {src if isinstance(src, str) else 'the records'}: no numeric metrics "
                         f"with a {x!r} key")
    fig, axes = _grid(len(series), ncols)
    for ax, (m, by_split) in zip(axes, series.items()):
        for split, (xs, ys) in sorted(by_split.items(), key=lambda kv: kv[0] != "train"):
            _draw(ax, xs, ys, label=split, style=SPLIT_STYLES.get(split, "-."), smooth=smooth if split == "train" else 0)
    return _finish(fig, axes, list(series), x=x, logy=logy, out=out, title=title)


def plot_runs(runs: Mapping[str, str | Records], out: str, *, metrics: Sequence[str] | None = None,
              splits: Sequence[str] | None = None, x: str = "step", logy: Sequence[str] = ("lr",),
              smooth: float = 0.0, ncols: int = 3, title: str | None = None) -> str:
    """Several runs on one figure (e.g. GRPO vs DiffRO): colour = run, line style = split.

    ``splits`` limits the splits drawn (e.g. ('valid',) to keep the figure readable); a metric appears
    if any run has it.
    """
    per_run = {name: collect(_load(src), x=x, metrics=metrics) for name, src in runs.items()}
    names: list[str] = []
    for s in per_run.values():
        names += [m for m in s if m not in names]
    if not names:
        raise ValueError("nothing to plot: no run has numeric metrics")
    fig, axes = _grid(len(names), ncols)
    colors = [f"C{i % 10}" for i in range(len(per_run))]
    for ax, m in zip(axes, names):
        for color, (run, s) in zip(colors, per_run.items()):
            for split, (xs, ys) in sorted(s.get(m, {}).items(), key=lambda kv: kv[0] != "train"):
                if splits is not None and split not in splits:
                    continue
                _draw(ax, xs, ys, label=f"{run} ({split})", style=SPLIT_STYLES.get(split, "-."), color=color,
                      smooth=smooth if split == "train" else 0)
    return _finish(fig, axes, names, x=x, logy=logy, out=out, title=title)
