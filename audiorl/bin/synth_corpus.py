"""Synthesise the offline English corpus (egs/synth_en) into a db dir; resumable.

    python -m audiorl.bin.synth_corpus --db ../db [--nj 2] [--seed 0] [--smoke true] [--train_utts N] ...

writes <db>/wav/<set>/<spk>/*.wav, <db>/data/<set>/{wav.scp,text,utt2spk,spk2utt,utt2dur,spk2gender,
keywords} (wav.scp paths relative to <db>) and <db>/corpus.json. Existing valid wavs are skipped.
Options are the fields of audiorl.data.synth.corpus.CorpusConfig plus --db, --nj, --smoke.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from audiorl.data.synth.corpus import SMOKE_SIZES, CorpusConfig, build_corpus
from audiorl.data.synth.voices import SynthesisError
from audiorl.log import get_logger, setup_logging

logger = get_logger("audiorl.bin.synth_corpus")


def str2bool(s: str) -> bool:
    if s not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"expected 'true' or 'false', got '{s}'")
    return s == "true"


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m audiorl.bin.synth_corpus", description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--db", required=True, help="output dir for audio, data dirs and corpus.json")
    p.add_argument("--nj", type=int, default=2, help="parallel synthesis processes")
    p.add_argument("--smoke", type=str2bool, default=False,
                   help=f"a few dozen utterances per set ({SMOKE_SIZES}); explicit size options win")
    p.add_argument("--progress", type=str2bool, default=True, help="show a progress bar on stderr")
    for f in dataclasses.fields(CorpusConfig):
        # Absent unless given, so that --smoke fills in sizes without overriding explicit ones.
        p.add_argument(f"--{f.name}", type=type(f.default), default=argparse.SUPPRESS,
                       help=f"{f.metadata['help']} (default: {f.default})")
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging()
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(CorpusConfig) if hasattr(args, f.name)}
    kwargs = {**(SMOKE_SIZES if args.smoke else {}), **given}
    try:
        cfg = CorpusConfig(**kwargs)
        logger.info("synth_corpus: db=%s nj=%d %s", args.db, args.nj, cfg)
        build_corpus(args.db, cfg, nj=args.nj, progress=args.progress)
    except (ValueError, SynthesisError) as e:
        logger.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
