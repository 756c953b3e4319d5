"""RESULTS.md RL tables (audiorl/eval/rl_tables.py): per-set rows and the pooled keyword-recall table's paired test."""

from audiorl.eval.rl_tables import keyword_table_md, rl_table_md
from audiorl.eval.sclite import ScoreFile
from audiorl.eval.stats import wilcoxon_signed_rank
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
