"""Entry point of utils/copy_data_dir.sh: copy a Kaldi data dir, optionally renaming ids (audiorl.data.ops).

    python -m audiorl.bin.copy_data_dir [--utt-prefix P] [--utt-suffix S] [--spk-prefix P] [--spk-suffix S]
        <src-dir> <dest-dir>

Utterance ids become <utt-prefix><utt><utt-suffix>, speaker ids likewise; recording ids change with the
utterances only when there is no segments file. To keep utt2spk sorted by speaker, give speakers the
same prefix as utterances. As in Kaldi, the copy is then validated (--no-feats/--no-text/--no-wav are
added when the source has no such file); --validate-opts "--non-print" passes more options.
"""

from __future__ import annotations

import argparse
import os
import sys

from audiorl.bin.validate_data_dir import get_parser as validate_parser
from audiorl.data.kaldi import DataDirError
from audiorl.data.ops import copy_data_dir
from audiorl.data.validate import validate_data_dir
from audiorl.log import setup_logging


VALUE_OPTS = ("--utt-prefix", "--utt-suffix", "--spk-prefix", "--spk-suffix", "--validate-opts")


def get_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    p.add_argument("--utt-prefix", default="", help="prefix added to every utterance id")
    p.add_argument("--utt-suffix", default="", help="suffix added to every utterance id")
    p.add_argument("--spk-prefix", default="", help="prefix added to every speaker id")
    p.add_argument("--spk-suffix", default="", help="suffix added to every speaker id")
    p.add_argument("--validate-opts", default="", metavar="OPTS",
                   help='options of validate_data_dir.sh for checking the copy, e.g. "--non-print --no-spk-sort"')
    p.add_argument("src", help="source data dir")
    p.add_argument("dest", help="destination data dir")
    return p


def glue_values(argv: list[str]) -> list[str]:
    """'--utt-suffix -sp1.1' -> '--utt-suffix=-sp1.1': argparse would take a value starting with '-' for an
    option, but Kaldi's forms (--validate-opts "--non-print", suffixes like -sp0.9) need exactly that."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] in VALUE_OPTS and i + 1 < len(argv):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def main(argv: list[str] | None = None) -> int:
    prog = os.environ.pop("AUDIORL_PROG", "") or "copy_data_dir"
    args = get_parser(prog).parse_args(glue_values(sys.argv[1:] if argv is None else argv))
    vopts = validate_parser(f"{prog} --validate-opts").parse_args([*args.validate_opts.split(), args.dest])
    setup_logging()
    try:
        copy_data_dir(args.src, args.dest, utt_prefix=args.utt_prefix, utt_suffix=args.utt_suffix,
                      spk_prefix=args.spk_prefix, spk_suffix=args.spk_suffix)
    except (DataDirError, OSError) as e:
        sys.stderr.write(f"{prog}: {e}\n")
        return 1
    has = lambda name: os.path.isfile(os.path.join(args.src, name))  # noqa: E731
    rep = validate_data_dir(args.dest, no_feats=vopts.no_feats or not has("feats.scp"),
                            no_text=vopts.no_text or not has("text"), no_wav=vopts.no_wav or not has("wav.scp"),
                            check_audio=vopts.check_audio, non_print=vopts.non_print,
                            no_spk_sort=vopts.no_spk_sort, no_empty_text=vopts.no_empty_text)
    for e in rep.errors:
        sys.stderr.write(f"{prog}: ERROR: {e}\n")
    if rep.errors:
        sys.stderr.write(f"{prog}: the copy {args.dest} is not a valid data dir (errors above)\n")
    return 1 if rep.errors else 0


if __name__ == "__main__":
    sys.exit(main())
