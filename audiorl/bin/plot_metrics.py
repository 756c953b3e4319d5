"""Plot training curves from metrics.jsonl files to a PNG.

    python -m audiorl.bin.plot_metrics exp/x/metrics.jsonl --out exp/x/curves.png
    python -m audiorl.bin.plot_metrics exp/grpo/metrics.jsonl exp/diffro/metrics.jsonl --labels grpo,diffro \\
        --splits valid --out exp/grpo_vs_diffro.png

One file: a subplot per metric, train/valid overlaid. Several files: one colour per run.
"""

from __future__ import annotations

import argparse
import os
import sys

from audiorl.eval.plots import plot_metrics, plot_runs
from audiorl.log import get_logger, setup_logging

logger = get_logger("audiorl.bin.plot_metrics")


def _csv(s: str | None) -> list[str] | None:
    return [x for x in s.split(",") if x] if s else None


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m audiorl.bin.plot_metrics", description=__doc__.split("\n")[0])
    p.add_argument("metrics_jsonl", nargs="+", help="metrics.jsonl file(s) written by the trainer")
    p.add_argument("--out", required=True, help="PNG to write")
    p.add_argument("--metrics", help="comma-separated metrics to plot (default: every numeric key)")
    p.add_argument("--labels", help="comma-separated run names for several files (default: the experiment dir names)")
    p.add_argument("--splits", help="comma-separated splits to draw with several files (default: all)")
    p.add_argument("--x", default="step", help="key for the x axis")
    p.add_argument("--logy", default="lr", help="comma-separated metrics drawn on a log scale")
    p.add_argument("--smooth", type=float, default=0.0, help="EMA weight in [0, 1) for the train split (0 = raw)")
    p.add_argument("--title", help="figure title")
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging()
    if not 0 <= args.smooth < 1:
        logger.error("--smooth must be in [0, 1), got %s", args.smooth)
        return 2
    kw = dict(metrics=_csv(args.metrics), x=args.x, logy=_csv(args.logy) or (), smooth=args.smooth, title=args.title)
    try:
        if len(args.metrics_jsonl) == 1:
            plot_metrics(args.metrics_jsonl[0], args.out, **kw)
        else:
            labels = _csv(args.labels) or [os.path.basename(os.path.dirname(os.path.abspath(p)))
                                           for p in args.metrics_jsonl]
            if len(labels) != len(args.metrics_jsonl) or len(set(labels)) != len(labels):
                logger.error("need one distinct label per file, got %s for %d files; use --labels",
                             labels, len(args.metrics_jsonl))
                return 2
            plot_runs(dict(zip(labels, args.metrics_jsonl)), args.out, splits=_csv(args.splits), **kw)
    except (ValueError, OSError) as e:
        logger.error("%s", e)
        return 1
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
