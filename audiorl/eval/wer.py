"""Word/character error rates with per-utterance alignments, and keyword precision/recall.

``score(refs, hyps)`` is the one entry point for corpus scoring: it normalises both sides with the same
``NormConfig``, aligns every utterance (jiwer's Levenshtein with unit costs), and keeps per-utterance
counts and alignments, so that sclite-style reports and paired significance tests can be built from
the result. Conventions follow sclite:
* WER = (S + D + I) / (number of reference units), summed over the corpus (not a mean of ratios);
* a reference utterance with no hypothesis is scored as all deletions and *reported* (``missing``);
* a hypothesis whose utterance is not in the references is an error (``ignore_extra`` to allow);
* an empty reference contributes its insertions to the numerator and nothing to the denominator.
"""

from __future__ import annotations

import math
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Mapping

import jiwer

from audiorl.eval.normalize import SPACE_TOKEN, NormConfig, Normalizer, Unit, resolve_norm, tokenize
from audiorl.log import get_logger

logger = get_logger(__name__)

# jiwer's default transform would re-normalise; ours already did, so only split on the single spaces.
_SPLIT = jiwer.ReduceToListOfListOfWords()
_JIWER_OP = {"equal": "C", "substitute": "S", "delete": "D", "insert": "I"}


class ScoreError(ValueError):
    """Inputs that cannot be scored as given (the message says what to change)."""


@dataclass
class Counts:
    """Error counts of one utterance (snt == 1) or of a set of utterances (sums)."""

    snt: int = 0
    corr: int = 0
    sub: int = 0
    dels: int = 0
    ins: int = 0
    serr: int = 0  # sentences with at least one error

    @property
    def wrd(self) -> int:
        return self.corr + self.sub + self.dels

    @property
    def err(self) -> int:
        return self.sub + self.dels + self.ins

    @property
    def wer(self) -> float:
        """Error rate as a fraction; inf when there are errors but no reference units at all."""
        if self.wrd:
            return self.err / self.wrd
        return 0.0 if self.err == 0 else math.inf

    def pct(self, name: str) -> float:
        """sclite percentage: Corr/Sub/Del/Ins/Err of #Wrd, S.Err of #Snt."""
        num = {"corr": self.corr, "sub": self.sub, "del": self.dels, "ins": self.ins, "err": self.err,
               "serr": self.serr}[name]
        den = self.snt if name == "serr" else self.wrd
        if den == 0:
            return 0.0 if num == 0 else math.inf
        return 100.0 * num / den

    def __add__(self, o: Counts) -> Counts:
        return Counts(self.snt + o.snt, self.corr + o.corr, self.sub + o.sub, self.dels + o.dels,
                      self.ins + o.ins, self.serr + o.serr)

    def to_dict(self) -> dict[str, int]:
        return {"snt": self.snt, "wrd": self.wrd, "corr": self.corr, "sub": self.sub, "del": self.dels,
                "ins": self.ins, "err": self.err, "serr": self.serr}

    @classmethod
    def from_dict(cls, d: Mapping[str, int]) -> Counts:
        c = cls(int(d.get("snt", 1)), int(d["corr"]), int(d["sub"]), int(d["del"]), int(d["ins"]))
        c.serr = int(d["serr"]) if "serr" in d else int(c.err > 0)
        return c


def sum_counts(items) -> Counts:
    total = Counts()
    for c in items:
        total = total + c
    return total


@dataclass
class UttScore:
    utt: str
    ref: list[str]
    hyp: list[str]
    ops: str  # one letter per alignment column: C(orrect) S(ub) D(el) I(ns)
    missing: bool = False  # no hypothesis was given for this utterance

    @property
    def counts(self) -> Counts:
        n = Counter(self.ops)
        err = n["S"] + n["D"] + n["I"]
        return Counts(1, n["C"], n["S"], n["D"], n["I"], int(err > 0))

    def pairs(self) -> list[tuple[str, str | None, str | None]]:
        """(op, ref unit or None, hyp unit or None) per alignment column."""
        out, i, j = [], 0, 0
        for op in self.ops:
            r = self.ref[i] if op != "I" else None
            h = self.hyp[j] if op != "D" else None
            i += op != "I"
            j += op != "D"
            out.append((op, r, h))
        return out

    def pra(self) -> tuple[str, str, str]:
        """sclite ``pra`` lines: errors upper-cased, gaps as '*' of the other side's width."""
        refs, hyps, evals = [], [], []
        for op, r, h in self.pairs():
            if op != "C":
                r = r.upper() if r is not None else None
                h = h.upper() if h is not None else None
            w = max(_width(r or ""), _width(h or ""))
            refs.append(_pad(r if r is not None else "*" * w, w))
            hyps.append(_pad(h if h is not None else "*" * w, w))
            evals.append(_pad("" if op == "C" else op, w))
        return ("REF:  " + " ".join(refs)).rstrip(), ("HYP:  " + " ".join(hyps)).rstrip(), \
            ("Eval: " + " ".join(evals)).rstrip()


def _width(s: str) -> int:
    # Terminal columns: CJK characters take two, so REF/HYP columns stay aligned on screen.
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)


def _pad(s: str, w: int) -> str:
    return s + " " * (w - _width(s))


@dataclass
class KeywordCounts:
    """Occurrence counts over the utterance's keyword set K (duplicates in the list merged):
    expected = sum_k r_k, found = sum_k h_k, hits = sum_k min(r_k, h_k), where r_k and h_k are the
    non-overlapping occurrences of keyword k in the normalised reference and hypothesis. So a keyword
    is recalled with multiplicity, and a biasing-list distractor (r_k = 0) that the hypothesis
    contains costs precision. Same definition as the RL keyword reward (audiorl/rl/rewards/text.py)."""

    expected: int = 0
    found: int = 0
    hits: int = 0

    @property
    def precision(self) -> float:
        # 0/0 = 1: nothing claimed, nothing claimed wrongly (as the RL reward); omissions show in recall.
        return self.hits / self.found if self.found else 1.0

    @property
    def recall(self) -> float:
        return self.hits / self.expected if self.expected else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def false_alarms(self) -> int:
        """Occurrences written beyond the reference: a listed distractor, or a keyword written more often than said."""
        return self.found - self.hits

    def __add__(self, o: KeywordCounts) -> KeywordCounts:
        return KeywordCounts(self.expected + o.expected, self.found + o.found, self.hits + o.hits)

    def to_dict(self) -> dict:
        return {"expected": self.expected, "found": self.found, "hits": self.hits,
                "precision": self.precision, "recall": self.recall, "f1": self.f1}


def _count_occurrences(needle: list[str], hay: list[str]) -> int:
    """Non-overlapping occurrences of a unit sequence (a word, or a multi-character keyword in CER mode)."""
    n, k, i = 0, len(needle), 0
    while i + k <= len(hay):
        if hay[i:i + k] == needle:
            n += 1
            i += k
        else:
            i += 1
    return n


def keyword_counts(keywords: list[list[str]], ref: list[str], hyp: list[str]) -> KeywordCounts:
    """Keyword counts for already tokenised keywords, reference and hypothesis."""
    kc = KeywordCounts()
    for kw in dict.fromkeys(tuple(k) for k in keywords if k):
        r, h = _count_occurrences(list(kw), ref), _count_occurrences(list(kw), hyp)
        kc = kc + KeywordCounts(r, h, min(r, h))
    return kc


def keyword_prf(keywords: list[str], ref: str, hyp: str, *, unit: Unit = "word",
                norm: NormConfig | str | None = None, normalizer: Callable[[str], str] | None = None) -> KeywordCounts:
    """Keyword counts for one utterance from raw strings; keywords normalised like ref and hyp.
    Pass a prebuilt ``normalizer`` in loops."""
    nz = normalizer or Normalizer(resolve_norm(norm))
    return keyword_counts([tokenize(nz(k), unit) for k in keywords], tokenize(nz(ref), unit), tokenize(nz(hyp), unit))


@dataclass
class ScoreResult:
    unit: str
    norm: NormConfig
    utts: dict[str, UttScore]  # in reference order
    missing: list[str] = field(default_factory=list)  # reference utterances with no hypothesis
    extra: list[str] = field(default_factory=list)  # hypotheses with no reference (only if ignored)
    keywords: dict[str, KeywordCounts] | None = None  # per utterance, when a keyword table was given
    # Per utterance, the same counts over the biasing list the model was given (audiorl/data/biasing.py): found -
    # hits = list words written beyond what was spoken (a listed distractor copied into the transcript).
    bias: dict[str, KeywordCounts] | None = None

    @property
    def totals(self) -> Counts:
        return sum_counts(u.counts for u in self.utts.values())

    @property
    def keyword_totals(self) -> KeywordCounts | None:
        if self.keywords is None:
            return None
        return sum(self.keywords.values(), KeywordCounts())

    @property
    def bias_totals(self) -> KeywordCounts | None:
        return None if self.bias is None else sum(self.bias.values(), KeywordCounts())

    @property
    def bias_false_alarm_utts(self) -> int:
        """Utterances whose transcript holds a biasing-list word beyond its reference (0 without lists)."""
        return sum(1 for b in (self.bias or {}).values() if b.false_alarms)

    def by_group(self, utt2grp: Mapping[str, str]) -> dict[str, Counts]:
        """Totals per speaker (or any grouping); an utterance missing from the map is an error."""
        lost = [u for u in self.utts if u not in utt2grp]
        if lost:
            raise ScoreError(f"{len(lost)} scored utterance(s) have no speaker in utt2spk, e.g. {lost[:3]}; "
                             f"pass the utt2spk of the same data dir as the reference")
        out: dict[str, Counts] = {}
        for u, s in self.utts.items():
            out[utt2grp[u]] = out.get(utt2grp[u], Counts()) + s.counts
        return dict(sorted(out.items()))

    def summary_line(self, name: str = "") -> str:
        """Kaldi compute-wer style: '%WER 5.23 [ 41 / 784, 3 ins, 8 del, 30 sub ] name'."""
        t = self.totals
        label = "%CER" if self.unit == "char" else "%WER"
        return (f"{label} {100 * t.wer:.2f} [ {t.err} / {t.wrd}, {t.ins} ins, {t.dels} del, {t.sub} sub ] "
                f"{name}").rstrip()


def score(refs: Mapping[str, str], hyps: Mapping[str, str], *, unit: Unit = "word",
          norm: NormConfig | str | None = None, keep_space: bool = False,
          keywords: Mapping[str, list[str]] | None = None, ignore_extra: bool = False,
          normalizer: Callable[[str], str] | None = None,
          bias_lists: Mapping[str, list[str]] | None = None) -> ScoreResult:
    """Score hypotheses against references; see the module docstring for the conventions.

    ``norm`` is a NormConfig or a preset name; ``normalizer`` (rarely needed) replaces the Normalizer
    built from it. ``keywords`` maps utt -> keyword list (the ``keywords`` table); utterances without an
    entry have no keywords. ``bias_lists`` maps utt -> the biasing list decoding put in its prompt (asr_decode's
    ``bias_lists``), counted the same way, so that its false alarms are the list words written but not spoken.
    """
    cfg = resolve_norm(norm)
    nz = normalizer or Normalizer(cfg)
    extra = [u for u in hyps if u not in refs]
    if extra and not ignore_extra:
        raise ScoreError(f"{len(extra)} hypothesis utterance(s) are not in the reference, e.g. {extra[:5]}; "
                         f"check that ref and hyp come from the same data set, or ignore them explicitly "
                         f"(ignore_extra / --ignore-extra true)")
    if extra:
        logger.warning("ignoring %d hypotheses with no reference, e.g. %s", len(extra), extra[:5])
    missing = [u for u in refs if u not in hyps]
    if missing:
        logger.warning("%d of %d reference utterances have no hypothesis (scored as all deletions), e.g. %s",
                       len(missing), len(refs), missing[:5])

    utts = list(refs)
    ref_toks = [tokenize(nz(refs[u]), unit, keep_space=keep_space) for u in utts]
    hyp_toks = [tokenize(nz(hyps.get(u, "")), unit, keep_space=keep_space) for u in utts]
    out = ScoreResult(unit, cfg, {}, missing, extra if ignore_extra else [])
    if utts:
        # One batched call: jiwer aligns in C (rapidfuzz); the per-call overhead dominates otherwise.
        res = jiwer.process_words([" ".join(t) for t in ref_toks], [" ".join(t) for t in hyp_toks],
                                  reference_transform=_SPLIT, hypothesis_transform=_SPLIT)
        missing_set = set(missing)
        for u, r, h, chunks in zip(utts, ref_toks, hyp_toks, res.alignments):
            ops = "".join(_JIWER_OP[c.type] * max(c.ref_end_idx - c.ref_start_idx, c.hyp_end_idx - c.hyp_start_idx)
                          for c in chunks)
            out.utts[u] = UttScore(u, r, h, ops, u in missing_set)

    def counts_of(name: str, table: Mapping[str, list[str]]) -> dict[str, KeywordCounts]:
        unknown = [u for u in table if u not in refs]
        if unknown:
            logger.warning("%s table has %d utterances not in the reference (ignored), e.g. %s",
                           name, len(unknown), unknown[:3])
        return {u: keyword_counts([tokenize(nz(k), unit) for k in table.get(u, [])],
                                  [t for t in r if t != SPACE_TOKEN], [t for t in h if t != SPACE_TOKEN])
                for u, r, h in zip(utts, ref_toks, hyp_toks)}

    if keywords is not None:
        out.keywords = counts_of("keywords", keywords)
    if bias_lists is not None:
        out.bias = counts_of("bias_lists", bias_lists)
    return out


def score_pair(ref: str, hyp: str, *, unit: Unit = "word", norm: NormConfig | str | None = None,
               normalizer: Callable[[str], str] | None = None) -> UttScore:
    """Score one utterance (e.g. inside a reward); same conventions as ``score``. Pass a prebuilt
    ``normalizer`` when calling this in a loop, so the mapping file is not re-read each time."""
    return score({"utt": ref}, {"utt": hyp}, unit=unit, norm=norm, normalizer=normalizer).utts["utt"]
