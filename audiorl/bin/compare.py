"""Paired significance test between two scored systems (A = baseline, B = candidate).

    python -m audiorl.bin.compare exp/base/decode_test/score_wer exp/rl/decode_test/score_wer

Each argument is a score directory, result.json or result.txt (ESPnet/sclite files with per-utterance
'Scores:' lines work too). Prints a one-line verdict, e.g. 'B better, p=0.003, ΔWER -1.20 [-1.90, -0.50]'
(ΔWER = WER(B) - WER(A) in absolute percent, bracket = bootstrap CI). Exit code 0 whatever the verdict.
"""

from __future__ import annotations

import argparse
import sys

from audiorl.eval.sclite import read_result
from audiorl.eval.stats import compare
from audiorl.log import get_logger, setup_logging

logger = get_logger("audiorl.bin.compare")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m audiorl.bin.compare", description=__doc__.split("\n")[0])
    p.add_argument("a", help="system A (baseline): score dir or result file")
    p.add_argument("b", help="system B (candidate): score dir or result file")
    p.add_argument("--test", choices=("wilcoxon", "mapsswe", "bootstrap"), default="wilcoxon",
                   help="matched-pairs test that decides significance (the CI is always the paired bootstrap)")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level; the CI is 1 - alpha")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples")
    p.add_argument("--seed", type=int, default=0, help="bootstrap RNG seed")
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging()
    try:
        a, b = read_result(args.a), read_result(args.b)
        c = compare(a, b, test=args.test, n_boot=args.n_boot, alpha=args.alpha, seed=args.seed)
    except (ValueError, OSError) as e:
        logger.error("%s", e)
        return 1
    print(f"A: {a.path}  WER {100 * c.wer_a:.2f}\nB: {b.path}  WER {100 * c.wer_b:.2f}  ({c.n_utts} utterances)")
    print(f"{c.verdict}  [{c.test}; P(B not better) by bootstrap {c.p_not_better:.3f}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
