"""Entry point of utils/combine_data.sh: combine Kaldi data dirs into one (audiorl.data.ops.combine_data).

    python -m audiorl.bin.combine_data [--extra-files "f1 f2"] [--skip-fix true|false] <dest> <src1> <src2> ...

Utterance ids must be unique across the sources (give each a prefix with utils/copy_data_dir.sh
--utt-prefix/--spk-prefix otherwise). A file that only some sources have is left out (with a warning),
except segments, free per-utterance files and --extra-files. Then fix_data_dir runs on <dest>.
"""

from __future__ import annotations

import argparse
import os
import sys

from audiorl.bin.fix_data_dir import str2bool
from audiorl.data.kaldi import DataDirError
from audiorl.data.ops import combine_data
from audiorl.log import setup_logging


def get_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    p.add_argument("--extra-files", default="",
                   help="space-separated names of more per-utterance files to merge; every source must have them")
    p.add_argument("--skip-fix", type=str2bool, default=False, metavar="true|false",
                   help="do not run fix_data_dir on the result")
    p.add_argument("dest", help="the combined data dir to write")
    p.add_argument("srcs", nargs="+", metavar="src", help="source data dirs")
    return p


def main(argv: list[str] | None = None) -> int:
    prog = os.environ.pop("AUDIORL_PROG", "") or "combine_data"
    args = get_parser(prog).parse_args(argv)
    setup_logging()
    try:
        combine_data(args.dest, args.srcs, extra_files=args.extra_files.split(), skip_fix=args.skip_fix)
    except (DataDirError, OSError) as e:
        sys.stderr.write(f"{prog}: {e}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
