"""Text rewards, shared by ASR (PAPER.md s3) and the TTS ASR-judge (s4 R1).

Texts are compared as given: case, punctuation and number normalisation are the task's job, done the
same way as in its evaluation. ``unit='word'`` splits on whitespace (exactly jiwer's default WER
transform); ``unit='char'`` drops all whitespace and compares characters (Chinese CER convention;
equals jiwer.cer on whitespace-free strings). Edit operations come from rapidfuzz's Levenshtein, the
library jiwer itself uses, so error counts agree with jiwer.process_words.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from typing import Literal, Sequence

from rapidfuzz.distance import Levenshtein

from audiorl.rl.rewards.base import RewardInput, register_reward

Unit = Literal["word", "char"]


# ------------------------------------------------------------------------------------------ helpers
def split_units(text: str, unit: Unit = "word") -> list[str]:
    if unit == "word":
        return text.split()
    if unit == "char":
        return list("".join(text.split()))
    raise ValueError(f"unit={unit!r}: choose 'word' or 'char'")


def edit_counts(ref: Sequence, hyp: Sequence) -> dict[str, int]:
    """Minimum-edit alignment counts: hits, substitutions, deletions, insertions (as jiwer)."""
    sub = dele = ins = 0
    for op in Levenshtein.editops(ref, hyp):
        if op.tag == "replace":
            sub += 1
        elif op.tag == "delete":
            dele += 1
        else:
            ins += 1
    return {"hits": len(ref) - sub - dele, "sub": sub, "del": dele, "ins": ins}


def error_rate(ref_text: str, hyp_text: str, unit: Unit = "word") -> float:
    """(S + D + I) / len(ref) - WER or CER. An empty reference divides by 1 (every hyp unit is an error)."""
    ref, hyp = split_units(ref_text, unit), split_units(hyp_text, unit)
    return Levenshtein.distance(ref, hyp) / max(len(ref), 1)


def max_insertion_run(ref: Sequence, hyp: Sequence) -> int:
    """Largest number of extra hypothesis units inside one unmatched stretch of the alignment.

    For each maximal region between matched ('equal') blocks: (hyp units - ref units) in it. Robust to
    how a tie-breaking aligner places insertions next to substitutions ('A B' -> 'X Y Z W' is 2 extra).
    """
    best = 0
    extra_hyp = extra_ref = 0
    for op in Levenshtein.opcodes(ref, hyp):
        if op.tag == "equal":
            best, extra_hyp, extra_ref = max(best, extra_hyp - extra_ref), 0, 0
        else:
            extra_hyp += op.dest_end - op.dest_start
            extra_ref += op.src_end - op.src_start
    return max(best, extra_hyp - extra_ref)


def max_consecutive_repeats(units: Sequence, max_n: int) -> int:
    """Most consecutive copies of any n-gram, n in 1..max_n ('a b a b a b' -> 3; no repeat -> 1)."""
    best = 1 if units else 0
    size = len(units)
    for n in range(1, max_n + 1):
        i = 0
        while i + 2 * n <= size:
            gram, c, j = units[i:i + n], 1, i + n
            while j + n <= size and units[j:j + n] == gram:
                c, j = c + 1, j + n
            best = max(best, c)
            i = i + 1 if c == 1 else j - n + 1  # skip over the run already counted
    return best


def repeated_ngram_ratio(units: Sequence, n: int, min_ngrams: int) -> float:
    """1 - distinct/total n-grams; 0 for sequences with fewer than ``min_ngrams`` n-grams."""
    grams = [tuple(units[i:i + n]) for i in range(len(units) - n + 1)]
    if len(grams) < min_ngrams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


_WIDTH_PREFIXES = ("FULLWIDTH", "HALFWIDTH")
_SCRIPT_ALIASES = {"hiragana": "kana", "katakana": "kana", "cjk": "cjk"}


@lru_cache(maxsize=65536)
def char_script(ch: str) -> str | None:
    """Script of a letter from its Unicode name ('latin', 'cjk', 'kana', 'hangul', 'cyrillic', ...); None
    for digits, punctuation, spaces and symbols, which say nothing about the language."""
    if not ch.isalpha():
        return None
    words = unicodedata.name(ch, "UNKNOWN").split()
    if words[0] in _WIDTH_PREFIXES and len(words) > 1:
        words = words[1:]
    w = words[0].lower()
    return _SCRIPT_ALIASES.get(w, w)


def script_counts(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for ch in text:
        s = char_script(ch)
        if s is not None:
            out[s] = out.get(s, 0) + 1
    return out


def foreign_script_fraction(hyp_text: str, ref_text: str, script: str | Sequence[str] = "auto") -> float:
    """Fraction of the hypothesis' letters outside the expected scripts (0 when it has no letters).

    ``script``: 'auto' = the scripts that make up >= 10% of the reference's letters (code-switched
    references allow both; a reference without letters disables the check); otherwise a name or list
    ('latin' for English, 'cjk' for Chinese, ['cjk', 'latin'] for code-switched Chinese).
    """
    if script == "auto":
        ref_counts = script_counts(ref_text)
        total_ref = sum(ref_counts.values())
        if total_ref == 0:
            return 0.0
        expected = {s for s, c in ref_counts.items() if c >= 0.1 * total_ref}
    else:
        expected = {script} if isinstance(script, str) else set(script)
    hyp_counts = script_counts(hyp_text)
    total = sum(hyp_counts.values())
    if total == 0:
        return 0.0
    return sum(c for s, c in hyp_counts.items() if s not in expected) / total


def hallucination_causes(
    s: RewardInput,
    unit: Unit = "word",
    max_n: int = 4,
    max_repeats: int = 3,
    ratio_n: int = 4,
    max_repeat_ratio: float = 0.5,
    ratio_min_ngrams: int = 8,
    max_insertion: int = 4,
    max_length_ratio: float = 2.0,
    min_length_excess: int = 3,
    script: str | list[str] = "auto",
    max_foreign_frac: float = 0.3,
) -> list[str]:
    """Why a hypothesis counts as a hallucination (empty list = it does not); see ``hallucination``."""
    hyp, ref = split_units(s.hyp_text, unit), split_units(s.ref_text, unit)
    causes = []
    # (a) loops, judged against the reference so that a faithful 'ha ha ha ha' is not punished
    if max_consecutive_repeats(hyp, max_n) > max(max_repeats, max_consecutive_repeats(ref, max_n)):
        causes.append("loop")
    hyp_ratio = repeated_ngram_ratio(hyp, ratio_n, ratio_min_ngrams)
    if hyp_ratio > max_repeat_ratio and hyp_ratio > repeated_ngram_ratio(ref, ratio_n, ratio_min_ngrams) + 0.1:
        causes.append("ngram_ratio")
    # (b) words not in the audio
    if max_insertion_run(ref, hyp) >= max_insertion:
        causes.append("insertion")
    if len(hyp) > max_length_ratio * max(len(ref), 1) and len(hyp) - len(ref) >= min_length_excess:
        causes.append("length_ratio")
    # (c) translated / wrong language
    if foreign_script_fraction(s.hyp_text, s.ref_text, script) > max_foreign_frac:
        causes.append("script")
    return causes


# ------------------------------------------------------------------------------------------ rewards
@register_reward("accuracy")
def accuracy(samples: list[RewardInput], unit: Unit = "word", floor: float = -1.0) -> list[float]:
    """R1 (PAPER.md s3, s4): max(floor, 1 - WER) for unit='word', 1 - CER for unit='char'.

    floor (default -1): the paper's 1 - WER is unbounded below, and one looping hypothesis at WER 20
    would dominate its group's std and squash every other advantage to ~0; -1 keeps the ranking of
    mildly bad outputs (WER 1-2) that floor=0 would tie. Set floor=0 for a [0, 1] reward.
    """
    return [max(floor, 1.0 - error_rate(s.ref_text, s.hyp_text, unit)) for s in samples]


@register_reward("exact_match")
def exact_match(samples: list[RewardInput], unit: Unit = "word") -> list[float]:
    """1 when the hypothesis' units equal the reference's (whitespace-insensitive), else 0."""
    return [float(split_units(s.hyp_text, unit) == split_units(s.ref_text, unit)) for s in samples]


@register_reward("neg_edit_distance")
def neg_edit_distance(samples: list[RewardInput], unit: Unit = "word", normalize: bool = True) -> list[float]:
    """-(S + D + I); divided by max(len(ref), 1) when normalize (then it is -WER, unfloored)."""
    out = []
    for s in samples:
        ref, hyp = split_units(s.ref_text, unit), split_units(s.hyp_text, unit)
        d = Levenshtein.distance(ref, hyp)
        out.append(-d / max(len(ref), 1) if normalize else -float(d))
    return out


@register_reward("hallucination")
def hallucination(
    samples: list[RewardInput],
    unit: Unit = "word",
    max_n: int = 4,
    max_repeats: int = 3,
    ratio_n: int = 4,
    max_repeat_ratio: float = 0.5,
    ratio_min_ngrams: int = 8,
    max_insertion: int = 4,
    max_length_ratio: float = 2.0,
    min_length_excess: int = 3,
    script: str | list[str] = "auto",
    max_foreign_frac: float = 0.3,
) -> list[float]:
    """R2 (PAPER.md s3): -1 when any of these holds, else 0 (units per ``unit``):

    (a) loop: some n-gram (n <= max_n) occurs more than max(max_repeats, the reference's own longest
        run) times in a row; or the repeated ratio_n-gram ratio (1 - distinct/total, only with >=
        ratio_min_ngrams n-grams) exceeds max_repeat_ratio and the reference's ratio + 0.1 (catches
        loops longer than max_n, e.g. a sentence said three times).
    (b) insertion: one unmatched stretch of the alignment holds >= max_insertion more hypothesis than
        reference units; or len(hyp) > max_length_ratio * max(len(ref), 1) with at least
        min_length_excess extra units (so 'no no no' for 'no' is not flagged; scattered insertions are).
    (c) script: more than max_foreign_frac of the hypothesis' letters are outside the expected script(s)
        ('auto' = those of the reference; see foreign_script_fraction).
    Defaults suit English words; for unit='char' (Chinese) raise max_n to ~8 and max_insertion to ~8.
    A translation into another language of the same script is not caught.
    """
    kw = dict(unit=unit, max_n=max_n, max_repeats=max_repeats, ratio_n=ratio_n, max_repeat_ratio=max_repeat_ratio,
              ratio_min_ngrams=ratio_min_ngrams, max_insertion=max_insertion, max_length_ratio=max_length_ratio,
              min_length_excess=min_length_excess, script=script, max_foreign_frac=max_foreign_frac)
    return [-1.0 if hallucination_causes(s, **kw) else 0.0 for s in samples]


def count_phrase(units: Sequence[str], phrase: Sequence[str]) -> int:
    """Non-overlapping occurrences of ``phrase`` (a unit sequence) in ``units``, left to right."""
    k, i, c = len(phrase), 0, 0
    if k == 0:
        return 0
    while i + k <= len(units):
        if list(units[i:i + k]) == list(phrase):
            c, i = c + 1, i + k
        else:
            i += 1
    return c


def keyword_precision_recall(
    hyp_text: str, ref_text: str, keywords: Sequence[str], unit: Unit = "word", ignore_case: bool = True
) -> tuple[float, float]:
    """Keyword precision and recall over occurrence counts (see ``keywords`` for the definition)."""
    norm = (lambda t: t.casefold()) if ignore_case else (lambda t: t)
    hyp, ref = split_units(norm(hyp_text), unit), split_units(norm(ref_text), unit)
    phrases = {tuple(split_units(norm(k), unit)) for k in keywords}
    phrases.discard(())
    h = {p: count_phrase(hyp, p) for p in phrases}
    r = {p: count_phrase(ref, p) for p in phrases}
    hit = sum(min(h[p], r[p]) for p in phrases)
    n_h, n_r = sum(h.values()), sum(r.values())
    precision = hit / n_h if n_h else 1.0  # claimed no keyword: nothing claimed wrongly
    recall = hit / n_r if n_r else 1.0  # reference holds no keyword: nothing to miss
    return precision, recall


@register_reward("keywords")
def keywords(
    samples: list[RewardInput], unit: Unit = "word", ignore_case: bool = True, no_keyword_value: float = 1.0
) -> list[float]:
    """R3 (PAPER.md s3): (keyword precision + keyword recall) / 2.

    K = the utterance's keyword list (duplicates merged; multi-word keywords are phrases matched on
    whole units, casefolded when ignore_case). For each k: h_k, r_k = non-overlapping occurrences in
    hypothesis and reference; hit = sum_k min(h_k, r_k).
      precision = hit / sum_k h_k: of the keyword occurrences the hypothesis claims, the share the
                  reference supports (punishes inserting biasing-list distractors or extra copies);
      recall    = hit / sum_k r_k: of the reference's keyword occurrences, the share recovered.
    0/0 counts as 1 (nothing claimed wrongly / nothing to find). Keywords are counted independently,
    so 'york' also matches inside 'new york'. An utterance with no keyword list (None or []) scores
    ``no_keyword_value`` (1.0, consistent with 0/0 = 1); since every member of a group shares the
    list, this constant cancels in the group-mean-centred advantage.
    """
    out = []
    for s in samples:
        if not s.keywords:
            out.append(float(no_keyword_value))
            continue
        p, r = keyword_precision_recall(s.hyp_text, s.ref_text, s.keywords, unit, ignore_case)
        out.append(0.5 * (p + r))
    return out
