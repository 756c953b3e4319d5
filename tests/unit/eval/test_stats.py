"""Bootstrap intervals and paired tests: properties, a slow reference with the same draws, speed."""

import itertools
import time

import numpy as np
import pytest

from audiorl.eval import stats
from audiorl.eval.stats import (bootstrap_wer_ci, compare, matched_pairs_z, paired_bootstrap,
                                wilcoxon_signed_rank)
from audiorl.eval.wer import Counts


def _corpus(n, seed=0, rate=0.1):
    rng = np.random.default_rng(seed)
    ref = rng.integers(3, 30, size=n)
    err = rng.binomial(ref, rate)
    return err, ref


def test_ci_contains_point_estimate_and_shrinks_with_data():
    e, r = _corpus(100)
    wer, lo, hi = bootstrap_wer_ci(e, r)
    assert wer == pytest.approx(e.sum() / r.sum())
    assert lo < wer < hi
    e2, r2 = _corpus(3000)
    w2, lo2, hi2 = bootstrap_wer_ci(e2, r2)
    assert lo2 < w2 < hi2
    assert hi2 - lo2 < (hi - lo) / 3  # ~sqrt(30) narrower


def test_reproducible_by_seed():
    e, r = _corpus(200)
    assert bootstrap_wer_ci(e, r, seed=3) == bootstrap_wer_ci(e, r, seed=3)
    assert bootstrap_wer_ci(e, r, seed=3) != bootstrap_wer_ci(e, r, seed=4)


def _slow_bootstrap(e, r, n_boot, alpha, seed):
    # Same draws as the contract in stats.py, then plain Python loops.
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(e), size=(n_boot, len(e)))
    wers = []
    for row in idx.tolist():
        se = sum(int(e[i]) for i in row)
        sr = sum(int(r[i]) for i in row)
        wers.append(se / sr)
    return np.quantile(wers, [alpha / 2, 1 - alpha / 2])


def test_matches_slow_reference_with_same_draws():
    e, r = _corpus(25, seed=7)
    _, lo, hi = bootstrap_wer_ci(e, r, n_boot=200, alpha=0.1, seed=11)
    ref_lo, ref_hi = _slow_bootstrap(e, r, 200, 0.1, 11)
    assert lo == pytest.approx(ref_lo, abs=1e-12) and hi == pytest.approx(ref_hi, abs=1e-12)


def test_paired_matches_slow_reference():
    e, r = _corpus(20, seed=1)
    e2 = np.maximum(e - 1, 0)
    pb = paired_bootstrap(e, e2, r, n_boot=100, seed=5)
    rng = np.random.default_rng(5)
    idx = rng.integers(0, len(e), size=(100, len(e)))
    deltas = [(sum(e2[i] for i in row) - sum(e[i] for i in row)) / sum(r[i] for i in row) for row in idx]
    assert pb.lo == pytest.approx(np.quantile(deltas, 0.025))
    assert pb.hi == pytest.approx(np.quantile(deltas, 0.975))
    assert pb.p_not_better == pytest.approx(np.mean(np.array(deltas) >= 0))


def test_chunked_draws_give_identical_results(monkeypatch):
    e, r = _corpus(300)
    full = bootstrap_wer_ci(e, r, n_boot=500)
    monkeypatch.setattr(stats, "_CHUNK_ELEMS", 1000)  # 3 rows per chunk
    assert bootstrap_wer_ci(e, r, n_boot=500) == full


def test_fast_enough():
    e, r = _corpus(1000)
    bootstrap_wer_ci(e, r, n_boot=50)  # warm-up (first numpy call paths)
    t = time.perf_counter()
    bootstrap_wer_ci(e, r, n_boot=1000)
    paired_bootstrap(e, e, r, n_boot=1000)
    assert time.perf_counter() - t < 1.5  # typically ~0.05 s; generous for a loaded shared machine


def _as_counts(e, r):
    return {f"u{i:04d}": Counts(1, int(ri - ei), int(ei), 0, 0, int(ei > 0)) for i, (ei, ri) in enumerate(zip(e, r))}


def test_identical_systems_no_significant_difference():
    e, r = _corpus(500)
    c = compare(_as_counts(e, r), _as_counts(e, r))
    assert not c.significant and c.p_value == 1.0 and c.delta == 0.0
    assert c.verdict.startswith("no significant difference")


def test_clearly_better_system_is_significant():
    e, r = _corpus(500, rate=0.2)
    rng = np.random.default_rng(9)
    better = np.maximum(e - rng.binomial(1, 0.6, size=e.size), 0)
    for test in ("wilcoxon", "mapsswe", "bootstrap"):
        c = compare(_as_counts(e, r), _as_counts(better, r), test=test)
        assert c.significant and c.delta < 0 and c.hi < 0, test
        assert c.verdict.startswith("B better, p"), c.verdict
    worse = compare(_as_counts(better, r), _as_counts(e, r))
    assert worse.verdict.startswith("B worse")


def test_compare_refuses_mismatched_utterances_or_references():
    e, r = _corpus(10)
    a = _as_counts(e, r)
    b = dict(a)
    b.pop("u0000")
    with pytest.raises(ValueError, match="different utterances"):
        compare(a, b)
    b = dict(a)
    b["u0001"] = Counts(1, 99, 0, 0, 0, 0)
    with pytest.raises(ValueError, match="reference units"):
        compare(a, b)


def test_wilcoxon_exact_against_enumeration_with_ties():
    d = np.array([1, -1, 2, 2, 3, -2, 1, 4])  # ties and both signs
    w, p = wilcoxon_signed_rank(d)
    # Brute force: every sign assignment of the same (tied, averaged) ranks.
    absd = np.abs(d)
    ranks = np.array([np.mean([i + 1 for i, v in enumerate(np.sort(absd)) if v == a]) for a in absd])
    assert w == pytest.approx(ranks[d > 0].sum())
    sums = np.array([sum(r for r, s in zip(ranks, signs) if s) for signs in itertools.product([0, 1], repeat=d.size)])
    p_ref = min(1.0, 2 * min(np.mean(sums <= w + 1e-9), np.mean(sums >= w - 1e-9)))
    assert p == pytest.approx(p_ref)
    assert wilcoxon_signed_rank([1] * 10)[1] == pytest.approx(2 / 2 ** 10)
    assert wilcoxon_signed_rank([0, 0, 0]) == (0.0, 1.0)


def test_wilcoxon_normal_approximation_close_to_exact():
    d = np.random.default_rng(2).integers(-3, 5, size=45)
    p_exact = wilcoxon_signed_rank(d, exact_max_n=100)[1]
    p_norm = wilcoxon_signed_rank(d, exact_max_n=0)[1]
    assert p_norm == pytest.approx(p_exact, abs=0.02)


def test_matched_pairs_z_degenerate_cases():
    assert matched_pairs_z([1, 2, 3], [1, 2, 3]) == (0.0, 1.0)
    assert matched_pairs_z([2, 2, 2], [1, 1, 1])[1] == 0.0  # constant non-zero difference
