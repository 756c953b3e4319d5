"""Contextual biasing lists: keywords placed in the ASR prompt so the LLM can copy rare words it is told about.

With ``BiasingConfig.enabled`` every utterance's prompt becomes ``[audio][w_1 w_2 ... w_n][<|transcribe|>]``: the
text ids of a shuffled list of single-word keywords, then the task prompt. The list holds the utterance's own
keywords (``data/<set>/keywords``) and distractors drawn from a pool (every keyword of the set, or ``pool_file``),
so the model has to check each entry against the audio instead of pasting the list. An empty list gives the plain
``[<|transcribe|>]`` prompt of a model trained without biasing, so a biasing model is a fine-tune of one.

Two modes, both deterministic:
* training (``epoch`` given): a share ``train_prob`` of the utterances get a list (the rest stay plain, so the model
  still transcribes without one), with 0..``max_distractors`` distractors and, with ``ref_words``, a few words of
  the transcript itself (CLAS-style: on a memorised training set its keywords alone show a model nothing it cannot
  hear; reference words, with SpecAugment masking the audio, are meant to make copying pay, though on synth_en's
  7M-parameter model they did not: README, "R3 with contextual biasing lists"); redrawn each epoch.
* evaluation (``epoch`` None: decoding, RL, validation): every utterance gets its keywords plus exactly
  ``eval_distractors`` distractors, fixed per utterance (seeded by its id), so systems compare on the same lists.

The true keywords are in the evaluation list, as in the contextual-biasing literature (a list of the test set's
rare words with N distractors): what is measured is whether the model uses a list, not whether one can be guessed.
RL's keyword reward (R3) scores against the same list, so its precision punishes inserting distractors.
"""

from __future__ import annotations

import os
import random
import zlib
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from audiorl.config import option
from audiorl.data.kaldi import DataDirError, read_list_table


@dataclass
class BiasingConfig:
    """Keyword lists in the ASR prompt (contextual biasing; audiorl/data/biasing.py)."""

    enabled: bool = option(False, "Put a biasing list (the utterance's keywords + distractors, shuffled) in the "
                                  "prompt between the audio embeddings and <|transcribe|>. Needs <data dir>/keywords.")
    train_prob: float = option(0.5, "Share of training utterances given a list (redrawn each epoch); the rest get "
                                     "the plain prompt, so the model still transcribes without one.")
    max_distractors: int = option(10, "Training lists carry 0..max_distractors distractors (uniform).")
    eval_distractors: int = option(10, "Decoding, RL and validation lists carry exactly this many distractors "
                                       "(fewer if the pool is smaller).")
    pool_file: str = option("", "Distractor pool, one keyword per line; '' = every keyword of the data dir's "
                                "keywords table (the set's own rare words, as biasing test sets are built).")
    max_list_words: int = option(24, "Hard cap on the list length (true keywords first, then distractors), which "
                                     "bounds the prompt; 0 = no cap.")
    ref_words: int = option(0, "Training lists also carry 0..ref_words words of the utterance's own transcript "
                                "(CLAS-style reference phrases, at least ref_min_chars long), so that every listed "
                                "utterance, not only one with keywords, shows the model a spoken word in its list. "
                                "0 = keywords only. Evaluation lists never use the reference.")
    ref_min_chars: int = option(4, "Shortest transcript word that ref_words may put in a list (skips function words).")
    seed: int = option(0, "Seed of the list draws (with the utterance id, and the epoch in training).")

    def __post_init__(self) -> None:
        if not 0.0 <= self.train_prob <= 1.0:
            raise ValueError(f"biasing.train_prob={self.train_prob} must be in [0, 1]")
        if min(self.max_distractors, self.eval_distractors, self.max_list_words, self.ref_words) < 0:
            raise ValueError("biasing.max_distractors, eval_distractors, max_list_words and ref_words must be >= 0")


def lists_wanted(mode: str, trained: BiasingConfig, what: str = "biasing") -> bool:
    """Whether to give a model lists: mode 'auto' = as it was trained (``trained.enabled``), 'on' / 'off' force it.
    ``what`` names the setting in the error (an option or config key)."""
    if mode not in ("auto", "on", "off"):
        raise ValueError(f"{what}={mode!r}: use auto, on or off")
    return mode == "on" or (mode == "auto" and trained.enabled)


def _read_pool(path: str) -> list[str]:
    words: list[str] = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            parts = line.split()
            if len(parts) > 1:
                raise DataDirError(f"{path}:{n}: one keyword per line expected, got {line.strip()!r}; "
                                   "biasing keywords are single words")
            words.extend(parts)
    if not words:
        raise DataDirError(f"{path}: empty distractor pool; list one keyword per line or set biasing.pool_file ''")
    return sorted(set(words))


class BiasingLists:
    """Draws each utterance's biasing list and turns a batch of lists into prompt ids."""

    def __init__(self, cfg: BiasingConfig, keywords: dict[str, list[str]], encode: Callable[[str], list[int]],
                 task_prompt: Sequence[int], pad_id: int):
        self.cfg, self.keywords, self.encode = cfg, keywords, encode
        self.task_prompt, self.pad_id = list(task_prompt), pad_id
        self.pool = (_read_pool(cfg.pool_file) if cfg.pool_file
                     else sorted({w for ws in keywords.values() for w in ws}))

    @classmethod
    def for_data_dir(cls, cfg: BiasingConfig, data_dir: str, encode, task_prompt, pad_id,
                     keywords_file: str = "") -> "BiasingLists":
        path = keywords_file or os.path.join(data_dir, "keywords")
        if not os.path.isfile(path):
            raise DataDirError(f"{path}: no such file, but the model uses biasing lists (data.biasing.enabled); "
                               "give the data dir a keywords table ('<utt> <kw> ...', empty value = none; "
                               "utils/copy_data_dir.sh carries it) or decode with --biasing off")
        return cls(cfg, read_list_table(path), encode, task_prompt, pad_id)

    def words(self, utt: str, epoch: int | None = None, ref: Sequence[str] = ()) -> list[str]:
        """The utterance's list (shuffled), [] for none. ``ref``: its transcript words, which training lists draw
        ``ref_words`` extra entries from."""
        c = self.cfg
        key = f"{c.seed}:{utt}" if epoch is None else f"{c.seed}:{epoch}:{utt}"
        rng = random.Random(zlib.crc32(key.encode("utf-8")))
        if epoch is not None and rng.random() >= c.train_prob:
            return []
        true = list(dict.fromkeys(self.keywords.get(utt, [])))  # unique, in order
        if epoch is not None and c.ref_words and ref:
            cands = sorted({w for w in ref if len(w) >= c.ref_min_chars} - set(true))
            true += rng.sample(cands, min(rng.randint(0, c.ref_words), len(cands)))
        n = c.eval_distractors if epoch is None else rng.randint(0, c.max_distractors)
        if c.max_list_words:
            true = true[: c.max_list_words]
            n = min(n, c.max_list_words - len(true))
        spoken = set(true)
        others = [w for w in self.pool if w not in spoken]
        out = true + rng.sample(others, min(n, len(others)))
        rng.shuffle(out)  # the position of a word must not tell whether it is spoken
        return out

    def prompt_ids(self, words: list[str]) -> list[int]:
        return (self.encode(" ".join(words)) if words else []) + self.task_prompt

    def batch(self, utts: Sequence[str], epoch: int | None = None,
              refs: dict[str, str] | None = None) -> tuple[torch.Tensor, torch.Tensor, list]:
        """prompt_ids (B, P) right-padded with pad_id, prompt_lens (B,), and the lists themselves. ``refs``: the
        transcripts, for training lists with ``ref_words``."""
        refs = refs or {}
        lists = [self.words(u, epoch, refs.get(u, "").split()) for u in utts]
        ids = [self.prompt_ids(w) for w in lists]
        P = max(len(x) for x in ids)
        out = torch.full((len(ids), P), self.pad_id, dtype=torch.long)
        for i, x in enumerate(ids):
            out[i, : len(x)] = torch.tensor(x, dtype=torch.long)
        return out, torch.tensor([len(x) for x in ids]), lists
