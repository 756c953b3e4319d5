"""Write a recipe's Kaldi data dirs from a local copy of a real corpus in its official layout.

    python -m audiorl.bin.prepare_corpus --corpus librispeech --datadir downloads --out data \
        --train_subsets train-clean-100,train-clean-360 --rl_pool_utts 3000

writes <out>/{train,rl_pool,dev,<test sets>}/{wav.scp,text,utt2spk,spk2utt,utt2dur}: train = the training
subsets minus rl_pool_utts random utterances (the RL pool, disjoint from SFT data), dev = the dev subsets
combined (validation), one set per test subset ('test-clean' -> test_clean). Each set is then checked as
utils/validate_data_dir.sh --no-feats [--check-audio] checks it: the recipes' local/data.sh rely on that. Layouts and
text conventions: audiorl/data/corpora/{librispeech,aishell,libritts}.py. Exit status 1 with a message naming the
file, the line and the fix for bad input (or an invalid set).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Literal

from audiorl.config import option, parse_cli
from audiorl.data.corpora import aishell, librispeech, libritts
from audiorl.data.corpora.common import CorpusError, OnMismatch, corpus_root, prepare, split_list
from audiorl.data.validate import validate_data_dir
from audiorl.log import get_logger, setup_logging

logger = get_logger("prepare_corpus")
MODULES = {"librispeech": librispeech, "aishell": aishell, "libritts": libritts}


def _defaults(kind: str) -> str:
    return "; ".join(f"{name}: {m.DEFAULTS[kind]}" for name, m in MODULES.items())


@dataclass
class PrepareCorpusConfig:
    """Data preparation of a real corpus (stage 1 of asr.sh / tts.sh, via the recipe's local/data.sh)."""

    corpus: Literal["librispeech", "aishell", "libritts"] = option("librispeech", "Which corpus (and layout) to read.")
    datadir: str = option("", "Where the official archives were extracted: the directory holding LibriSpeech/, "
                              "data_aishell/ or LibriTTS/ (or that directory itself). Required.")
    out: str = option("data", "Output root: data dirs go to <out>/<set>.")
    train_subsets: str = option("", f"Comma-separated training subsets; '' = the corpus default ({_defaults('train')}).")
    dev_subsets: str = option("", f"Comma-separated subsets combined into <out>/dev; '' = default ({_defaults('dev')}).")
    test_subsets: str = option("", f"Comma-separated subsets, one test set each; '' = default ({_defaults('test')}).")
    rl_pool_utts: int = option(3000, "Utterances held out of the training subsets into <out>/rl_pool, the RL "
                                     "prompt pool (never seen in SFT); 0 = no RL pool.")
    seed: int = option(0, "Seed of the RL pool draw.")
    on_mismatch: OnMismatch = option("error", "Audio without transcript, transcript without audio, empty text: "
                                              "'error' stops at the first with the file and the fix; 'skip' "
                                              "skips them and logs a count per kind.")
    text_form: libritts.TextForm = option("asr", "libritts only: 'asr' = normalized text upper-cased without "
                                                 "punctuation (the LibriSpeech judge's form); 'normalized' or "
                                                 "'original' = that .txt file as is.")
    nj: int = option(4, "Threads reading the audio headers for utt2dur.")
    check_audio: bool = option(False, "Validate every written set with --check-audio (decode every file and check its "
                                      "duration; minutes per 100 h) instead of checking the tables only.")

    def __post_init__(self) -> None:
        if not self.datadir:
            raise ValueError("--datadir is required: the directory the corpus archives were extracted in")
        if self.nj < 1:
            raise ValueError(f"--nj must be >= 1, got {self.nj}")


def main(argv: list[str] | None = None) -> int:
    cfg = parse_cli(PrepareCorpusConfig, argv, prog="prepare_corpus")
    setup_logging()
    module = MODULES[cfg.corpus]
    reader = libritts.make_reader(cfg.text_form) if cfg.corpus == "libritts" else module.read_subset

    def subsets(value: str, kind: str) -> list[str]:
        names = split_list(value or module.DEFAULTS[kind])
        unknown = [s for s in names if s not in module.SUBSETS]
        if unknown:
            raise CorpusError(f"--{kind}_subsets: {unknown} not {cfg.corpus} subset(s); choose from {', '.join(module.SUBSETS)}")
        return names

    try:
        root = corpus_root(cfg.datadir, module.TOP)
        sets = prepare(reader, root, cfg.out, train=subsets(cfg.train_subsets, "train"),
                       dev=subsets(cfg.dev_subsets, "dev"), test=subsets(cfg.test_subsets, "test"),
                       rl_pool_utts=cfg.rl_pool_utts, seed=cfg.seed, on_mismatch=cfg.on_mismatch, nj=cfg.nj)
    except CorpusError as e:
        logger.error("%s", e)
        return 1
    logger.info("prepared %s from %s: %s", cfg.corpus, root, " ".join(f"{cfg.out}/{s}" for s in sets))
    for s in sets:
        d = os.path.join(cfg.out, s)
        rep = validate_data_dir(d, no_feats=True, check_audio=cfg.check_audio)
        for w in rep.warnings:
            logger.warning("%s: %s", d, w)
        for e in rep.errors:
            logger.error("%s: %s", d, e)
        if rep.errors:
            logger.error("%s is not a valid data dir: %d error(s) above", d, len(rep.errors))
            return 1
        logger.info("validated %s (%d utterances, %d speakers)", d, rep.counts["utterances"], rep.counts["speakers"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
