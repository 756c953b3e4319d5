"""Train a SentencePiece tokenizer on the transcripts of Kaldi ``text`` files.

    python -m audiorl.bin.train_tokenizer --text data/train/text --model_type bpe --vocab_size 400 \
        --out data/token_list/bpe400/bpe

writes <out>.model and <out>.vocab. Only the transcripts (the values after the utterance ids) are used.
"""

from __future__ import annotations

import argparse
import sys

from audiorl.data.kaldi import DataDirError, read_table
from audiorl.data.tokenizer import MODEL_TYPES, train_tokenizer
from audiorl.log import get_logger, setup_logging

logger = get_logger("audiorl.bin.train_tokenizer")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m audiorl.bin.train_tokenizer", description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--text", required=True, nargs="+", help="Kaldi text file(s): '<utt-id> <transcript>' lines")
    p.add_argument("--out", required=True, help="model prefix: writes <out>.model and <out>.vocab")
    p.add_argument("--model_type", default="bpe", choices=MODEL_TYPES, help="SentencePiece model type")
    p.add_argument("--vocab_size", type=int, default=400,
                   help="number of pieces (an upper bound on small corpora: hard_vocab_limit is off)")
    p.add_argument("--user_defined_symbols", default="",
                   help="comma-separated pieces that are never split, e.g. '<sos/eos>,<lang:en>'")
    p.add_argument("--character_coverage", type=float, default=1.0,
                   help="share of characters covered; 1.0 for small alphabets, 0.9995 for CJK")
    p.add_argument("--seed", type=int, default=0, help="random seed (training is deterministic for a seed)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging()
    try:
        lines = [v for path in args.text for v in read_table(path, allow_empty_value=True).values() if v]
        symbols = [s for s in args.user_defined_symbols.split(",") if s]
        train_tokenizer(lines, args.out, args.vocab_size, args.model_type, user_defined_symbols=symbols,
                        character_coverage=args.character_coverage, seed=args.seed)
    except (DataDirError, ValueError, OSError) as e:
        logger.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
