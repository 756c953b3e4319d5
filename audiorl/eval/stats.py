"""Confidence intervals and paired significance tests for error rates (numpy only, no scipy).

All functions take per-utterance arrays aligned by utterance: ``errors`` (S+D+I) and ``ref_words``
(reference units). Error rates here are fractions; reports multiply by 100.

The bootstrap resamples *utterances* (errors within an utterance are correlated, so resampling words
would give intervals that are too narrow), and the corpus WER of a resample is
sum(errors) / sum(ref_words), the same ratio-of-sums as the point estimate. Contract, relied on by the
tests: ``rng = np.random.default_rng(seed)`` and the resample indices are the rows of
``rng.integers(0, n, size=(n_boot, n))``, drawn in row chunks (which yields the same stream).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Mapping

import numpy as np

from audiorl.log import get_logger

logger = get_logger(__name__)

_CHUNK_ELEMS = 4_000_000  # indices per chunk (32 MB of int64): bounds memory for 100k-utterance sets


def _resampled_sums(arrays: list[np.ndarray], n_boot: int, seed: int) -> list[np.ndarray]:
    """For each array, its sum over each bootstrap resample of the utterances: shape (n_boot,)."""
    n = len(arrays[0])
    rng = np.random.default_rng(seed)
    out = [np.empty(n_boot, dtype=np.float64) for _ in arrays]
    rows = max(1, _CHUNK_ELEMS // max(n, 1))
    for start in range(0, n_boot, rows):
        k = min(rows, n_boot - start)
        idx = rng.integers(0, n, size=(k, n))  # (k, n) utterance indices
        for a, o in zip(arrays, out):
            o[start:start + k] = a[idx].sum(axis=1)
    return out


def _as_arrays(*xs) -> list[np.ndarray]:
    arrs = [np.asarray(x, dtype=np.float64) for x in xs]
    n = len(arrs[0])
    if n == 0:
        raise ValueError("no utterances to resample")
    for a in arrs:
        if a.shape != (n,):
            raise ValueError(f"per-utterance arrays must be 1-D and of equal length; got shapes {[x.shape for x in arrs]}")
    return arrs


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    # A resample made only of empty references has no WER; it is dropped (nan) rather than made inf.
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def bootstrap_wer_ci(per_utt_errors, per_utt_ref_words, n_boot: int = 1000, alpha: float = 0.05,
                     seed: int = 0) -> tuple[float, float, float]:
    """(wer, lo, hi): the corpus WER and its percentile bootstrap (1 - alpha) interval."""
    e, r = _as_arrays(per_utt_errors, per_utt_ref_words)
    wer = float(e.sum() / r.sum()) if r.sum() > 0 else math.nan
    se, sr = _resampled_sums([e, r], n_boot, seed)
    lo, hi = np.nanquantile(_ratio(se, sr), [alpha / 2, 1 - alpha / 2])
    return wer, float(lo), float(hi)


@dataclass(frozen=True)
class PairedBootstrap:
    delta: float  # WER(B) - WER(A); negative means B is better
    lo: float
    hi: float
    p_not_better: float  # share of resamples where B is not better than A (Bisani & Ney's 1 - POI)


def paired_bootstrap(err_a, err_b, ref_words, *, n_boot: int = 1000, alpha: float = 0.05,
                     seed: int = 0) -> PairedBootstrap:
    """Paired bootstrap of the WER difference: both systems see the same resampled utterances."""
    a, b, r = _as_arrays(err_a, err_b, ref_words)
    delta = float((b.sum() - a.sum()) / r.sum()) if r.sum() > 0 else math.nan
    sa, sb, sr = _resampled_sums([a, b, r], n_boot, seed)
    d = _ratio(sb - sa, sr)
    d = d[~np.isnan(d)]
    lo, hi = np.quantile(d, [alpha / 2, 1 - alpha / 2])
    return PairedBootstrap(delta, float(lo), float(hi), float(np.mean(d >= 0)))


def _norm_sf2(z: float) -> float:
    """Two-sided normal tail probability P(|Z| >= |z|)."""
    return math.erfc(abs(z) / math.sqrt(2.0))


def wilcoxon_signed_rank(diffs, *, exact_max_n: int = 50) -> tuple[float, float]:
    """Two-sided Wilcoxon signed-rank test on paired differences: returns (W+, p).

    Zero differences are dropped (Wilcoxon's convention). Ties get average ranks. Up to ``exact_max_n``
    non-zero pairs the p-value is exact (the sign-flip distribution of the tied ranks, by dynamic
    programming on doubled ranks, which are integers); above it the normal approximation with tie and
    continuity corrections is used.
    """
    d = np.asarray(diffs, dtype=np.float64)
    d = d[d != 0]
    n = d.size
    if n == 0:
        return 0.0, 1.0
    absd = np.abs(d)
    uniq, inv, cnt = np.unique(absd, return_inverse=True, return_counts=True)
    # Average rank of tie group k: (cumulative count before k) + (count_k + 1) / 2.
    avg_rank = np.cumsum(cnt) - cnt + (cnt + 1) / 2.0
    ranks = avg_rank[inv]
    w_plus = float(ranks[d > 0].sum())
    if n <= exact_max_n:
        r2 = np.rint(2 * ranks).astype(np.int64)  # doubled ranks are integers even with ties
        dist = np.zeros(int(r2.sum()) + 1)
        dist[0] = 1.0
        for r in r2:  # each rank enters W+ with probability 1/2
            dist[r:] += dist[:-r].copy()  # r >= 2: ranks are >= 1
        dist /= dist.sum()
        t = int(round(2 * w_plus))
        p = 2 * min(dist[: t + 1].sum(), dist[t:].sum())
        return w_plus, float(min(1.0, p))
    mean = n * (n + 1) / 4.0
    var = n * (n + 1) * (2 * n + 1) / 24.0 - float(((cnt ** 3) - cnt).sum()) / 48.0
    if var <= 0:
        return w_plus, 1.0
    z = (w_plus - mean - 0.5 * np.sign(w_plus - mean)) / math.sqrt(var)
    return w_plus, _norm_sf2(z)


def matched_pairs_z(err_a, err_b) -> tuple[float, float]:
    """MAPSSWE-like test with utterances as segments: z of the mean per-utterance error difference.

    sclite's MAPSSWE cuts the text at stretches both systems got right; with only per-utterance counts
    the utterance is the segment. Sensitive to a few long utterances; prefer Wilcoxon when in doubt.
    """
    a, b = _as_arrays(err_a, err_b)
    d = b - a
    n = d.size
    sd = float(d.std(ddof=1)) if n > 1 else 0.0
    if sd == 0.0:
        return 0.0, 1.0 if float(d.mean()) == 0.0 else 0.0
    z = float(d.mean()) / (sd / math.sqrt(n))
    return z, _norm_sf2(z)


Test = Literal["wilcoxon", "mapsswe", "bootstrap"]


def format_p(p: float) -> str:
    """How a p-value is written in the tables: 'p=0.042', or 'p<0.001' below 0.001."""
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


@dataclass(frozen=True)
class Comparison:
    n_utts: int
    wer_a: float
    wer_b: float
    delta: float  # WER(B) - WER(A), fraction
    lo: float  # bootstrap CI of delta
    hi: float
    p_value: float  # from ``test``
    p_not_better: float  # paired bootstrap
    test: str
    alpha: float

    @property
    def significant(self) -> bool:
        return self.p_value < self.alpha

    @property
    def verdict(self) -> str:
        tail = f"{format_p(self.p_value)}, ΔWER {100 * self.delta:+.2f} [{100 * self.lo:+.2f}, {100 * self.hi:+.2f}]"
        if not self.significant:
            return f"no significant difference, {tail}"
        return f"{'B better' if self.delta < 0 else 'B worse' if self.delta > 0 else 'B different'}, {tail}"

    def __str__(self) -> str:
        return self.verdict


def _per_utt(x) -> Mapping:
    """Per-utterance counts from a ScoreFile, a ScoreResult or a plain {utt: Counts} mapping."""
    utts = getattr(x, "utts", x)
    return {u: getattr(c, "counts", c) for u, c in utts.items()}


def compare(a, b, *, test: Test = "wilcoxon", n_boot: int = 1000, alpha: float = 0.05,
            seed: int = 0) -> Comparison:
    """Compare system B against system A on the utterances both scored (they must be the same set)."""
    ua, ub = _per_utt(a), _per_utt(b)
    only_a = [u for u in ua if u not in ub]
    only_b = [u for u in ub if u not in ua]
    if only_a or only_b:
        raise ValueError(f"the two systems were scored on different utterances: {len(only_a)} only in A "
                         f"(e.g. {only_a[:3]}), {len(only_b)} only in B (e.g. {only_b[:3]}); score both "
                         f"against the same reference")
    utts = list(ua)
    ra = np.array([ua[u].wrd for u in utts])
    rb = np.array([ub[u].wrd for u in utts])
    if (ra != rb).any():
        u = utts[int(np.argmax(ra != rb))]
        raise ValueError(f"utterance {u!r} has {ua[u].wrd} reference units in A but {ub[u].wrd} in B: the "
                         f"references or the normalisation/unit differ; rescore both the same way")
    ea = np.array([ua[u].err for u in utts], dtype=np.float64)
    eb = np.array([ub[u].err for u in utts], dtype=np.float64)
    pb = paired_bootstrap(ea, eb, ra, n_boot=n_boot, alpha=alpha, seed=seed)
    if test == "wilcoxon":
        p = wilcoxon_signed_rank(eb - ea)[1]
    elif test == "mapsswe":
        p = matched_pairs_z(ea, eb)[1]
    elif test == "bootstrap":
        p = min(1.0, 2 * min(pb.p_not_better, 1 - pb.p_not_better))
    else:
        raise ValueError(f"test must be 'wilcoxon', 'mapsswe' or 'bootstrap', got {test!r}")
    tot = ra.sum()
    return Comparison(len(utts), float(ea.sum() / tot) if tot else math.nan, float(eb.sum() / tot) if tot else math.nan,
                      pb.delta, pb.lo, pb.hi, float(p), pb.p_not_better, test, alpha)
