"""RESULTS.md RL tables (audiorl/eval/rl_tables.py): per-set rows and the pooled keyword-recall table's paired test."""

from audiorl.eval.rl_tables import keyword_table_md, rl_table_md
from audiorl.eval.sclite import ScoreFile, pool_draws
from audiorl.eval.stats import compare, wilcoxon_signed_rank
from audiorl.eval.wer import Counts, KeywordCounts, sum_counts


def _score(dset: str, kw_hits: list[int], errs: list[int]) -> ScoreFile:
    """Utterances u0..: 10 words each with errs[i] substitutions; utterance i expects 1 keyword (hit or not); the
    last utterance has no keyword."""
    utts = {f"u{i}": Counts(1, 10 - e, e, 0, 0, int(e > 0)) for i, e in enumerate(errs)}
    kws = {f"u{i}": KeywordCounts(1, h, h) for i, h in enumerate(kw_hits)}
    kws[f"u{len(errs) - 1}"] = KeywordCounts(0, 0, 0)
    s = ScoreFile(f"exp/x/decode_{dset}_beam1/score_word/result.json", sum_counts(utts.values()), utts,
                  keywords_utts=kws)
    s.keywords = sum(kws.values(), KeywordCounts())
    return s


def _exps(base_hits, rl_hits, n=8):
    errs = [1] * n
    return {"sft": {f"decode_{d}_beam1/score_word": _score(d, base_hits, errs) for d in ("test", "test_unseen")},
            "rl": {f"decode_{d}_beam1/score_word": _score(d, rl_hits, errs) for d in ("test", "test_unseen")},
            "other": {"decode_test_beam1/score_word": _score("test", rl_hits, errs)}}


def test_pooled_keyword_recall_and_its_paired_test():
    base = [1, 0, 0, 1, 0, 1, 1, 0]  # 7 keyword utterances per set (the 8th has none)
    rl = [1, 1, 1, 1, 0, 1, 0, 0]
    exps = _exps(base, rl)
    md = keyword_table_md([("SFT", "sft"), ("R3", "rl")], exps, ["test", "test_unseen"])
    rows = {r.split("|")[1]: r.split("|")[2:-1] for r in md.splitlines() if r.startswith("|") and "---" not in r}
    # 7 keyword utterances x 2 sets (the 8th has none); SFT hits 4 of them per set, R3 5
    assert rows["SFT"][:3] == ["14", "8", "57.1"] and rows["SFT"][3] == "(baseline)"
    assert rows["R3"][:3] == ["14", "10", "71.4"]
    diffs = [r - b for b, r in zip(base[:7], rl[:7])] * 2  # +1 at u1, u2; -1 at u6; per set
    _, p = wilcoxon_signed_rank(diffs)
    assert rows["R3"][3] == f"+4/-2, p={p:.3f}"
    assert "pooled over test, test_unseen" in md


def test_keyword_table_in_the_rl_table_and_missing_sets():
    exps = _exps([1] * 8, [1] * 8)
    md = rl_table_md("Rewards", [("SFT", "sft"), ("R3", "rl"), ("partial", "other")], exps, ["test", "test_unseen"])
    assert "keywords pooled over test, test_unseen" in md and "+0/-0, p=1.000" in md
    assert "|partial|-|-|-|(not scored)|" in md  # not scored on every set: no pooled row
    assert "pooled" not in rl_table_md("Rewards", [("SFT", "sft"), ("R3", "rl")], exps, ["test"])  # one set: per-set KW-R
    no_kw = {k: {n: ScoreFile(s.path, s.totals, s.utts) for n, s in v.items()} for k, v in exps.items()}
    assert keyword_table_md([("SFT", "sft"), ("R3", "rl")], no_kw, ["test", "test_unseen"]) == ""


def test_pooled_runs_against_a_repeated_baseline():
    """A row 'rl+rl2' sums each utterance's errors over the two runs and is tested against the baseline counted twice
    (exactly the comparison of the runs' mean with the one deterministic baseline decoding)."""
    errs_b, errs_1, errs_2 = [2, 1, 3, 0, 2, 1, 2, 2], [1, 1, 2, 0, 1, 1, 2, 1], [2, 0, 2, 0, 1, 1, 1, 2]
    hits_b, hits_1, hits_2 = [1, 0, 0, 1, 0, 1, 1, 0], [1, 1, 0, 1, 0, 1, 1, 0], [1, 1, 1, 1, 0, 1, 0, 0]
    exps = {name: {f"decode_{d}_beam1/score_word": _score(d, h, e) for d in ("test", "test_unseen")}
            for name, h, e in (("sft", hits_b, errs_b), ("rl", hits_1, errs_1), ("rl2", hits_2, errs_2))}
    md = rl_table_md("Seeds", [("SFT", "sft"), ("pooled", "rl+rl2"), ("one", "rl")], exps, ["test", "test_unseen"],
                     n_boot=200)
    test_rows = md.split("test:")[1].split("test_unseen:")[0]
    rows = {r.split("|")[1]: r.split("|")[2:-1] for r in test_rows.splitlines() if r.startswith("|") and "---" not in r}
    assert rows["pooled"][0] == f"{100 * (sum(errs_1) + sum(errs_2)) / 160:.2f}"  # the runs' mean WER
    test_of = {name: e["decode_test_beam1/score_word"] for name, e in exps.items()}
    want = compare(pool_draws([test_of["sft"]] * 2), pool_draws([test_of["rl"], test_of["rl2"]]), n_boot=200).verdict
    assert rows["pooled"][5] == (want[2:] if want.startswith("B ") else want)
    # pooled keyword hits: 7 keyword utterances x 2 runs x 2 sets; per utterance rl+rl2 - 2 x sft
    kw = {r.split("|")[1]: r.split("|")[2:-1] for r in md.split("keywords pooled")[1].splitlines()
          if r.startswith("|") and "---" not in r}
    assert kw["pooled"][:2] == ["28", str(2 * (sum(hits_1[:7]) + sum(hits_2[:7])))]
    diffs = [a + b - 2 * c for a, b, c in zip(hits_1[:7], hits_2[:7], hits_b[:7])] * 2
    _, p = wilcoxon_signed_rank(diffs)
    assert kw["pooled"][2] == f"{100 * 2 * (sum(hits_1[:7]) + sum(hits_2[:7])) / 28:.1f}"
    assert kw["pooled"][3] == f"+{sum(d > 0 for d in diffs)}/-{sum(d < 0 for d in diffs)}, p={p:.3f}"
    # a pooled baseline pairs only with rows pooling as many runs
    md2 = rl_table_md("Seeds", [("SFT", "sft+rl"), ("pooled", "rl+rl2"), ("one", "rl")], exps, ["test"], n_boot=50)
    assert "|one|" in md2 and "n/a (pools 1 runs, the baseline 2)" in md2
    assert "(not scored)" in rl_table_md("x", [("SFT", "sft"), ("p", "rl+missing")], exps, ["test"])
