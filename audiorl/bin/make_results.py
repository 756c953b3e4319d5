"""Write RESULTS.md from every exp/*/decode*/**/score*/result.json, ESPnet style.

    python -m audiorl.bin.make_results --exp exp --out RESULTS.md [--title ...] [--baseline NAME] [--extra kw_f]
"""

from __future__ import annotations

import argparse
import shlex
import sys

from audiorl.eval.results import EXTRA_COLUMNS, write_results
from audiorl.log import get_logger, setup_logging

logger = get_logger("audiorl.bin.make_results")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m audiorl.bin.make_results", description=__doc__.split("\n")[0])
    p.add_argument("--exp", default="exp", help="experiment root to scan")
    p.add_argument("--out", default="RESULTS.md", help="markdown file to write")
    p.add_argument("--title", default="RESULTS", help="top-level heading")
    p.add_argument("--baseline", help="experiment name (directory under --exp) to compare every other one with")
    p.add_argument("--extra", default="", help=f"comma-separated extra columns: {','.join(sorted(EXTRA_COLUMNS))}")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for CIs and comparisons")
    p.add_argument("--seed", type=int, default=0, help="bootstrap RNG seed")
    return p


def main(argv: list[str] | None = None) -> int:
    raw = sys.argv[1:] if argv is None else argv
    args = get_parser().parse_args(argv)
    setup_logging()
    command = shlex.join(["python", "-m", "audiorl.bin.make_results", *raw])
    try:
        write_results(args.out, exp_root=args.exp, command=command, title=args.title, baseline=args.baseline,
                      extra=tuple(e for e in args.extra.split(",") if e), n_boot=args.n_boot, seed=args.seed)
    except (ValueError, OSError) as e:
        logger.error("%s", e)
        return 1
    logger.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
