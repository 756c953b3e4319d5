"""Entry point of utils/validate_data_dir.sh: check a Kaldi data dir (audiorl.data.validate).

    python -m audiorl.bin.validate_data_dir [--no-feats] [--no-wav] [--no-text] [--check-audio]
        [--non-print] [--no-spk-sort] [--no-empty-text] <data-dir>

Prints every error and warning (file:line: what; fix: how) to stderr; exit 0 if the dir is valid,
1 if not, 2 for usage errors.
"""

from __future__ import annotations

import argparse
import os
import sys

from audiorl.data.validate import validate_data_dir
from audiorl.log import setup_logging


def get_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    p.add_argument("--no-feats", action="store_true", help="feats.scp may be absent (checked if present)")
    p.add_argument("--no-wav", action="store_true", help="wav.scp may be absent (checked if present)")
    p.add_argument("--no-text", action="store_true", help="text may be absent (checked if present)")
    p.add_argument("--check-audio", action="store_true",
                   help="load every recording: it must exist, decode, be non-empty and contain its segments")
    p.add_argument("--non-print", action="store_true", help="allow non-printable characters in text")
    p.add_argument("--no-spk-sort", action="store_true", help="do not require utt2spk to be sorted by speaker")
    p.add_argument("--no-empty-text", action="store_true", help="empty transcripts are errors, not warnings")
    p.add_argument("data_dir", help="the Kaldi data directory")
    return p


def main(argv: list[str] | None = None) -> int:
    prog = os.environ.pop("AUDIORL_PROG", "") or "validate_data_dir"
    args = get_parser(prog).parse_args(argv)
    setup_logging()
    rep = validate_data_dir(args.data_dir, no_feats=args.no_feats, no_wav=args.no_wav, no_text=args.no_text,
                            check_audio=args.check_audio, non_print=args.non_print, no_spk_sort=args.no_spk_sort,
                            no_empty_text=args.no_empty_text)
    for w in rep.warnings:
        sys.stderr.write(f"{prog}: WARNING: {w}\n")
    for e in rep.errors:
        sys.stderr.write(f"{prog}: ERROR: {e}\n")
    if rep.errors:
        sys.stderr.write(f"{prog}: {args.data_dir} is not a valid data dir: {len(rep.errors)} error(s) above\n")
        return 1
    c = rep.counts
    sys.stdout.write(f"{prog}: Successfully validated data-directory {args.data_dir} ({c['utterances']} utterances, "
                     f"{c['speakers']} speakers)\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
