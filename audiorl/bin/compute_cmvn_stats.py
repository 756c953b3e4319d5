"""Global CMVN statistics of a feats.scp, in Kaldi's (2, D+1) stats format.

    python -m audiorl.bin.compute_cmvn_stats <feats-scp> <cmvn-out>

Read them back with audiorl.data.features.load_cmvn (or Kaldi's copy-matrix).
"""

from __future__ import annotations

import argparse
import sys

from audiorl.data.features import compute_cmvn_stats
from audiorl.data.kaldi import DataDirError
from audiorl.log import get_logger, setup_logging

logger = get_logger("audiorl.bin.compute_cmvn_stats")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m audiorl.bin.compute_cmvn_stats", description=__doc__.split("\n")[0])
    p.add_argument("feats_scp", help="feats.scp to accumulate over (every frame of every utterance)")
    p.add_argument("cmvn_out", help="output stats file, e.g. data/train/cmvn.ark")
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging()
    try:
        mean, std = compute_cmvn_stats(args.feats_scp, args.cmvn_out)
    except (DataDirError, ValueError, OSError) as e:
        logger.error("%s", e)
        return 1
    logger.info("wrote %s: %d dims, mean of means %.3f, mean of stds %.3f", args.cmvn_out, len(mean),
                float(mean.mean()), float(std.mean()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
