"""RL data construction (PAPER.md s3): equal-size subsets D0-D3 of an RL prompt pool.

The paper's finding is that the choice of RL data matters as much as the reward. From the SFT model's
decoding of the pool (greedy 1-best + K temperature-1 samples per utterance) we build, each of N utterances:

* D0 random: the control.
* D1 hard: utterances where the SFT model errs (1-best wrong), or is unsure (its samples disagree with its
  1-best), or long ones where it repeats itself (a loop the reference does not have). Ranked by a hardness
  score, so if the pool has fewer than N such utterances the rest are the most uncertain of the others.
  GRPO learns only from groups whose rewards differ: these are the utterances whose groups do.
* D2 short audio: utterances no longer than a duration cap (paper: < 20 s; our pool is all short, so the
  default cap is the pool's median).
* D3 keyword-heavy: most keyword occurrences per reference word (R3's signal lives there).

Pure functions on plain dicts; ``write_subsets`` writes the data dirs with ``subset_data_dir``.
"""

from __future__ import annotations

import json
import os
import random
import statistics
from dataclasses import asdict, dataclass

from audiorl.config import option
from audiorl.data.kaldi import read_list_table, read_table
from audiorl.data.ops import subset_data_dir
from audiorl.log import get_logger
from audiorl.rl.rewards.text import count_phrase, edit_counts, max_consecutive_repeats

logger = get_logger(__name__)

SUBSETS = ("D0", "D1", "D2", "D3")


@dataclass
class SelectConfig:
    """Rules of the D0-D3 subsets."""

    size: int = option(0, "N, utterances in every subset; 0 = a third of the pool (so D1 can be mostly hard).")
    seed: int = option(0, "Seed of D0's draw and of all tie-breaking.")
    min_disagreement: float = option(0.25, "D1: an utterance is 'unsure' when at least this fraction of its "
                                           "sampled transcripts differ from the 1-best.")
    long_seconds: float = option(0.0, "D1: 'long' utterances for the repetition rule; 0 = the pool's 75th "
                                      "duration percentile.")
    max_repeat_n: int = option(4, "D1: loops are n-grams (n <= this) repeated back to back more often than in "
                                  "the reference (audiorl.rl.rewards.text.max_consecutive_repeats).")
    short_max_seconds: float = option(0.0, "D2: duration cap in seconds; 0 = the pool's median (the paper's 20 s "
                                           "keeps everything of a synthetic pool).")


@dataclass
class UttInfo:
    ref: str
    hyp: str  # greedy 1-best
    samples: list[str]
    duration: float
    keywords: list[str]

    @property
    def errors(self) -> int:
        c = edit_counts(self.ref.split(), self.hyp.split())
        return c["sub"] + c["del"] + c["ins"]

    @property
    def disagreement(self) -> float:
        return sum(s.split() != self.hyp.split() for s in self.samples) / len(self.samples) if self.samples else 0.0

    def loops(self, max_n: int) -> bool:
        ref_run = max_consecutive_repeats(self.ref.split(), max_n)
        return any(max_consecutive_repeats(h.split(), max_n) > max(1, ref_run) for h in [self.hyp, *self.samples])

    @property
    def keyword_density(self) -> float:
        words = self.ref.split()
        hits = sum(count_phrase(words, k.split()) for k in set(self.keywords))
        return hits / max(1, len(words))


def hardness(u: UttInfo, cfg: SelectConfig, long_seconds: float) -> tuple[bool, float]:
    """(is hard by the D1 rules, score for ranking): errors count most, then uncertainty, then long loops."""
    wrong, unsure = u.errors > 0, u.disagreement >= cfg.min_disagreement
    long_loop = u.duration >= long_seconds and u.loops(cfg.max_repeat_n)
    score = 2.0 * wrong + u.errors / max(1, len(u.ref.split())) + u.disagreement + 1.0 * long_loop
    return wrong or unsure or long_loop, score


def select_subsets(info: dict[str, UttInfo], cfg: SelectConfig) -> dict[str, list[str]]:
    """{'D0'..'D3': sorted utterance ids}, each of size N (SelectConfig.size)."""
    utts = sorted(info)
    n = cfg.size or len(utts) // 3
    if not 0 < n <= len(utts):
        raise ValueError(f"subset size {n} must be in [1, {len(utts)}] (the pool size); set size")
    rng = random.Random(cfg.seed)
    tie = {u: rng.random() for u in utts}  # one random tie-break per utterance, shared by every rule
    durs = sorted(info[u].duration for u in utts)
    long_s = cfg.long_seconds or durs[int(0.75 * (len(durs) - 1))]
    cap = cfg.short_max_seconds or statistics.median(durs)

    d0 = random.Random(cfg.seed).sample(utts, n)
    scored = {u: hardness(info[u], cfg, long_s) for u in utts}
    d1 = sorted(utts, key=lambda u: (-scored[u][1], tie[u]))[:n]
    n_hard = sum(scored[u][0] for u in d1)
    if n_hard < n:
        logger.warning("D1: only %d hard utterances in the pool; the other %d are the most uncertain of the rest",
                       n_hard, n - n_hard)
    short = [u for u in utts if info[u].duration <= cap]
    if len(short) >= n:
        d2 = sorted(short, key=lambda u: tie[u])[:n]
    else:
        logger.warning("D2: only %d utterances <= %.2f s; taking the %d shortest", len(short), cap, n)
        d2 = sorted(utts, key=lambda u: (info[u].duration, tie[u]))[:n]
    d3 = sorted(utts, key=lambda u: (-info[u].keyword_density, tie[u]))[:n]
    logger.info("rules: N %d, long >= %.2f s, short <= %.2f s, unsure >= %.2f disagreement", n, long_s, cap,
                cfg.min_disagreement)
    return {name: sorted(s) for name, s in zip(SUBSETS, (d0, d1, d2, d3))}


def subset_stats(info: dict[str, UttInfo], utts: list[str]) -> dict[str, float]:
    """Size, hours and the SFT model's 1-best WER etc. on a subset (logged and saved with the subsets)."""
    err = sum(info[u].errors for u in utts)
    words = sum(len(info[u].ref.split()) for u in utts)
    return {"utts": len(utts), "hours": round(sum(info[u].duration for u in utts) / 3600, 3),
            "mean_duration_s": round(statistics.fmean(info[u].duration for u in utts), 2),
            "sft_wer": round(err / max(1, words), 4),
            "frac_wrong": round(sum(info[u].errors > 0 for u in utts) / len(utts), 3),
            "mean_disagreement": round(statistics.fmean(info[u].disagreement for u in utts), 3),
            "mean_keywords": round(statistics.fmean(len(info[u].keywords) for u in utts), 3)}


def load_pool(data_dir: str, decode_dir: str) -> dict[str, UttInfo]:
    """Join data_dir's text/utt2dur/keywords with decode_dir's 1-best ``text`` and ``samples.jsonl``."""
    refs = read_table(os.path.join(data_dir, "text"), allow_empty_value=True)
    dur_path = os.path.join(data_dir, "utt2dur")
    if not os.path.isfile(dur_path):
        raise FileNotFoundError(f"{dur_path}: no such file; D2 needs durations (utils/data/get_utt2dur.sh)")
    durs = {u: float(v) for u, v in read_table(dur_path).items()}
    kw_path = os.path.join(data_dir, "keywords")
    kws = read_list_table(kw_path) if os.path.isfile(kw_path) else {}
    hyps = read_table(os.path.join(decode_dir, "text"), allow_empty_value=True)
    samples: dict[str, list[str]] = {}
    s_path = os.path.join(decode_dir, "samples.jsonl")
    if os.path.isfile(s_path):
        with open(s_path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    row = json.loads(line)
                    samples[row["utt"]] = list(row["hyps"])
    else:
        logger.warning("%s: no sampled transcripts; D1 uses 1-best errors and loops only", s_path)
    missing = [u for u in refs if u not in hyps]
    if missing:
        raise ValueError(f"{decode_dir}/text has no hypothesis for {len(missing)} utterances of {data_dir} "
                         f"(e.g. {missing[:3]}); rerun the decoding (asr.sh stage 9)")
    return {u: UttInfo(refs[u], hyps[u], samples.get(u, []), durs.get(u, 0.0), kws.get(u, [])) for u in refs}


def write_subsets(subsets: dict[str, list[str]], src_dirs: list[str], dest_prefix: str = "_") -> list[str]:
    """For each subset name D and source dir S, write S + dest_prefix + D (e.g. data/rl_pool_D1 and
    dump/fbank/rl_pool_D1, the latter with its features); returns the directories written."""
    out = []
    for src in src_dirs:
        for name, utts in subsets.items():
            dest = f"{src.rstrip('/')}{dest_prefix}{name}"
            subset_data_dir(src, dest, utts=utts)
            out.append(dest)
    return out


def save_stats(path: str, cfg: SelectConfig, stats: dict[str, dict]) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"config": asdict(cfg), "subsets": stats}, f, indent=1)
