"""Entry point of utils/subset_data_dir.sh: copy part of a Kaldi data dir (audiorl.data.ops.subset_data_dir).

    python -m audiorl.bin.subset_data_dir [--first|--last|--shortest|--random [--seed S]|--speakers|--per-spk]
        <src-dir> <num> <dest-dir>
    python -m audiorl.bin.subset_data_dir --utt-list <file> <src-dir> <dest-dir>
    python -m audiorl.bin.subset_data_dir --spk-list <file> <src-dir> <dest-dir>

Without a mode flag, <num> utterances spread evenly over the source are kept (Kaldi's default). List
files give one id per line (the first field; other fields are ignored).
"""

from __future__ import annotations

import argparse
import os
import sys

from audiorl.data.kaldi import DataDirError
from audiorl.data.ops import subset_data_dir
from audiorl.log import setup_logging


def get_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0].split(": ", 1)[1],
                                usage=f"{prog} [options] <src-dir> <num> <dest-dir>\n"
                                      f"       {prog} --utt-list|--spk-list <file> <src-dir> <dest-dir>")
    mode = p.add_mutually_exclusive_group()
    for flag, help_ in (("--first", "the first <num> utterances (in sorted order)"),
                        ("--last", "the last <num> utterances"),
                        ("--shortest", "the <num> shortest utterances (needs utt2dur, segments or utt2num_frames)"),
                        ("--random", "<num> random utterances (reproducible with --seed)"),
                        ("--speakers", "all utterances of <num> speakers spread evenly over the speakers"),
                        ("--per-spk", "<num> utterances of every speaker (all of those with fewer)")):
        mode.add_argument(flag, dest="how", action="store_const", const=flag[2:].replace("-", "_"), help=help_)
    mode.add_argument("--utt-list", metavar="FILE", help="keep the utterances listed in FILE")
    mode.add_argument("--spk-list", metavar="FILE", help="keep the utterances of the speakers listed in FILE")
    p.add_argument("--seed", type=int, default=0, help="random seed for --random")
    p.add_argument("args", nargs="+", metavar="<src-dir> [<num>] <dest-dir>", help=argparse.SUPPRESS)
    return p


def read_ids(path: str) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [line.split()[0] for line in f if line.strip()]


def main(argv: list[str] | None = None) -> int:
    prog = os.environ.pop("AUDIORL_PROG", "") or "subset_data_dir"
    parser = get_parser(prog)
    args = parser.parse_args(argv)
    by_list = args.utt_list or args.spk_list
    if len(args.args) != (2 if by_list else 3):
        parser.error(f"expected {'<src-dir> <dest-dir>' if by_list else '<src-dir> <num> <dest-dir>'}, "
                     f"got {len(args.args)} argument(s)")
    num = None
    if not by_list:
        try:
            num = int(args.args[1])
        except ValueError:
            parser.error(f"<num> must be a positive integer, got '{args.args[1]}'")
        if num < 1:
            parser.error(f"<num> must be a positive integer, got '{args.args[1]}'")
    setup_logging()
    try:
        ids = read_ids(by_list) if by_list else None
        subset_data_dir(args.args[0], args.args[-1], num, how=args.how or "even", seed=args.seed,
                        utts=ids if args.utt_list else None, spks=ids if args.spk_list else None)
    except (DataDirError, OSError, UnicodeDecodeError) as e:
        sys.stderr.write(f"{prog}: {e}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
