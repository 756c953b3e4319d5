"""Entry point of utils/split_data.sh: split a Kaldi data dir into nj parts (audiorl.data.ops.split_data).

    python -m audiorl.bin.split_data [--per-utt] <data-dir> <num-to-split>

Writes <data-dir>/split<N>/1 ... <data-dir>/split<N>/<N> with each speaker's utterances in one part, or
<data-dir>/split<N>utt/<n> with --per-utt (utterances balanced, speakers may be split). Does nothing if
the parts are newer than the data dir's files.
"""

from __future__ import annotations

import argparse
import os
import sys

from audiorl.data.kaldi import DataDirError
from audiorl.data.ops import split_data
from audiorl.log import setup_logging


def get_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    g = p.add_mutually_exclusive_group()
    g.add_argument("--per-utt", action="store_true", help="balance utterances; write split<N>utt/")
    g.add_argument("--per-spk", action="store_true", help="keep each speaker in one part (the default)")
    p.add_argument("data_dir", help="the Kaldi data directory")
    p.add_argument("nj", help="number of parts (a positive integer)")
    return p


def main(argv: list[str] | None = None) -> int:
    prog = os.environ.pop("AUDIORL_PROG", "") or "split_data"
    parser = get_parser(prog)
    args = parser.parse_args(argv)
    if not args.nj.isdigit() or int(args.nj) < 1:
        parser.error(f"<num-to-split> must be a positive integer, got '{args.nj}'")
    setup_logging()
    try:
        split_data(args.data_dir, int(args.nj), per_utt=args.per_utt)
    except (DataDirError, OSError) as e:
        sys.stderr.write(f"{prog}: {e}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
