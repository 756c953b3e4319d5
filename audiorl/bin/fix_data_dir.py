"""Entry point of utils/fix_data_dir.sh: make a Kaldi data dir consistent (audiorl.data.ops.fix_data_dir).

    python -m audiorl.bin.fix_data_dir [--utt-extra-files "f1 f2"] [--spk-extra-files "f3"]
        [--drop-empty-text true|false] <data-dir>

Keeps the utterances present in every file, sorts and dedupes every file, regenerates spk2utt, and saves
the originals in <data-dir>/.backup/. Logs "kept N of M utterances" and which file lost which ids.
"""

from __future__ import annotations

import argparse
import os
import sys

from audiorl.data.kaldi import DataDirError
from audiorl.data.ops import fix_data_dir
from audiorl.log import setup_logging


def str2bool(s: str) -> bool:
    if s not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"expected 'true' or 'false', got '{s}'")
    return s == "true"


def get_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    p.add_argument("--utt-extra-files", default="",
                   help="space-separated names of more per-utterance files to filter (besides the known ones)")
    p.add_argument("--spk-extra-files", default="", help="space-separated names of more per-speaker files to filter")
    p.add_argument("--drop-empty-text", type=str2bool, default=False, metavar="true|false",
                   help="also drop utterances whose transcript is empty")
    p.add_argument("data_dir", help="the Kaldi data directory (rewritten in place)")
    return p


def main(argv: list[str] | None = None) -> int:
    prog = os.environ.pop("AUDIORL_PROG", "") or "fix_data_dir"
    args = get_parser(prog).parse_args(argv)
    setup_logging()
    try:
        fix_data_dir(args.data_dir, utt_extra_files=args.utt_extra_files.split(),
                     spk_extra_files=args.spk_extra_files.split(), drop_empty_text=args.drop_empty_text)
    except (DataDirError, OSError) as e:
        sys.stderr.write(f"{prog}: {e}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
