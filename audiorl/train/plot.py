"""Training curves from ``metrics.jsonl`` as one PNG (a local helper; audiorl.eval.plots may absorb it)."""

from __future__ import annotations

import os
from pathlib import Path

from audiorl.train.metrics import read_metrics

# Not curves: bookkeeping fields of every record.
_SKIP = {"step", "split", "epoch", "time_s"}


def plot_curves(metrics_jsonl: str | os.PathLike, out_png: str | os.PathLike, max_panels: int = 6) -> Path | None:
    """Loss (train and valid) first, lr second, then other stats; one panel each. None if no data."""
    records = read_metrics(metrics_jsonl)
    if not records:
        return None
    import matplotlib
    matplotlib.use("Agg")  # no display on training machines
    import matplotlib.pyplot as plt

    series: dict[str, dict[str, tuple[list[int], list[float]]]] = {}
    for r in records:
        for k, v in r.items():
            if k in _SKIP or not isinstance(v, (int, float)):
                continue
            xs, ys = series.setdefault(k, {}).setdefault(r.get("split", "train"), ([], []))
            xs.append(r["step"])
            ys.append(float(v))
    names = [k for k in ("loss", "lr") if k in series] + sorted(k for k in series if k not in ("loss", "lr"))
    names = names[:max_panels]
    cols = min(3, len(names))
    rows = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.2 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        for split, (xs, ys) in sorted(series[name].items()):
            ax.plot(xs, ys, marker="o" if split == "valid" else None, markersize=3, label=split)
        ax.set_title(name)
        ax.set_xlabel("step")
        if name == "loss" and all(y > 0 for _, ys in series[name].values() for y in ys):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.tight_layout()
    out = Path(out_png)
    tmp = out.with_name(out.name + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, out)
    return out
