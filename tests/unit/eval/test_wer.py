"""WER/CER counts, alignments, normalisation and keyword metrics on hand-computed cases."""

import logging
import math

import pytest

from audiorl.eval.normalize import NormConfig, Normalizer, tokenize
from audiorl.eval.wer import Counts, ScoreError, keyword_prf, score, score_pair


def test_sub_ins_counts_and_pra_lines():
    u = score_pair("a b c d", "a x c e d")
    c = u.counts
    assert (c.corr, c.sub, c.dels, c.ins) == (3, 1, 0, 1)
    assert u.ops == "CSCIC"
    ref, hyp, ev = u.pra()
    assert ref == "REF:  a B c * d"
    assert hyp == "HYP:  a X c E d"
    assert ev == "Eval:   S   I"


def test_deletion_gap_has_width_of_deleted_word():
    u = score_pair("the quick fox", "the fox")
    assert (u.counts.dels, u.counts.sub, u.counts.ins) == (1, 0, 0)
    ref, hyp, ev = u.pra()
    assert ref == "REF:  the QUICK fox"
    assert hyp == "HYP:  the ***** fox"
    assert ev == "Eval:     D"


def test_corpus_wer_is_ratio_of_sums_not_mean_of_ratios():
    # utt1: 1 error / 1 word; utt2: 0 errors / 9 words -> 1/10, not mean(1.0, 0.0) = 0.5.
    r = score({"u1": "a", "u2": "b c d e f g h i j"}, {"u1": "z", "u2": "b c d e f g h i j"})
    t = r.totals
    assert (t.snt, t.wrd, t.err, t.serr) == (2, 10, 1, 1)
    assert t.wer == pytest.approx(0.1)
    assert t.pct("serr") == pytest.approx(50.0)
    assert r.summary_line() == "%WER 10.00 [ 1 / 10, 0 ins, 0 del, 1 sub ]"


def test_empty_reference_counts_insertions_without_adding_to_denominator():
    r = score({"u1": "", "u2": "a b"}, {"u1": "x y", "u2": "a b"})
    t = r.totals
    assert (t.wrd, t.ins, t.err) == (2, 2, 2)
    assert t.wer == pytest.approx(1.0)
    # No reference words at all: errors make the rate infinite, no errors make it zero.
    assert score({"u": ""}, {"u": "x"}).totals.wer == math.inf
    assert score({"u": ""}, {"u": ""}).totals.wer == 0.0


def test_empty_hypothesis_is_all_deletions_but_not_missing():
    r = score({"u1": "a b c"}, {"u1": ""})
    assert r.totals.dels == 3 and r.missing == []


def test_missing_hypothesis_scored_as_deletions_and_reported(caplog):
    with caplog.at_level(logging.WARNING):
        r = score({"u1": "a b", "u2": "c d e", "u3": "f"}, {"u1": "a b", "u3": "f"})
    assert r.missing == ["u2"]
    assert r.utts["u2"].missing and r.utts["u2"].counts.dels == 3
    assert r.totals.err == 3 and r.totals.wrd == 6
    assert "u2" in caplog.text and "1 of 3" in caplog.text


def test_extra_hypothesis_is_an_error_unless_ignored():
    with pytest.raises(ScoreError, match="not in the reference.*ignore"):
        score({"u1": "a"}, {"u1": "a", "zz": "b"})
    r = score({"u1": "a"}, {"u1": "a", "zz": "b"}, ignore_extra=True)
    assert r.extra == ["zz"] and r.totals.err == 0 and list(r.utts) == ["u1"]


def test_cer_chinese_with_nfkc_and_punctuation():
    # Full-width 'ＡＩ' and '，' vs half-width 'ai' and no punctuation: identical after the zh preset.
    r = score({"u1": "今天ＡＩ很好，谢谢。"}, {"u1": "今天 ai 很好 谢谢"}, unit="char", norm="zh")
    assert r.totals.wrd == 8 and r.totals.err == 0
    # 北京 -> 背景: two character substitutions out of five.
    r = score({"u1": "我们去北京！"}, {"u1": "我们去背景"}, unit="char", norm="zh")
    t = r.totals
    assert (t.wrd, t.sub, t.dels, t.ins) == (5, 2, 0, 0)
    assert r.summary_line().startswith("%CER 40.00")
    # Without normalisation the full-width punctuation is a deleted character.
    assert score({"u1": "我们去北京！"}, {"u1": "我们去北京"}, unit="char").totals.dels == 1


def test_cer_alignment_keeps_cjk_columns_aligned():
    ref, hyp, ev = score_pair("北京", "背景", unit="char").pra()
    assert ref == "REF:  北 京"
    assert hyp == "HYP:  背 景"
    assert ev == "Eval: S  S"  # each CJK character is two columns wide


def test_char_tokenize_keep_space_and_bracketed_tags():
    assert tokenize("ab cd", "char") == ["a", "b", "c", "d"]
    assert tokenize("ab cd", "char", keep_space=True) == ["a", "b", "<space>", "c", "d"]
    assert tokenize("你<unk>好", "char") == ["你", "<unk>", "好"]
    with pytest.raises(ValueError):
        tokenize("x", "phone")


def test_normalizer_steps():
    en = Normalizer(NormConfig(lowercase=True, strip_punct=True, remove_bracketed=True, remove_tokens=("uh",)))
    assert en("Don't STOP, <unk> uh [noise] uhm well-known!") == "don't stop uhm well known"
    assert en("It\u2019s") == "it's"
    zh = Normalizer(NormConfig(nfkc=True, remove_bracketed=True))
    assert zh("你好<unk>世界\u3000ＯＫ") == "你好 世界 OK"


def test_mapping_file(tmp_path):
    m = tmp_path / "map"
    m.write_text("colour color\nOK okay\num\n", encoding="utf-8")
    nz = Normalizer(NormConfig(lowercase=True, mapping_file=str(m)))
    assert nz("Colour ok UM fine") == "color okay fine"


def test_remove_tokens_validated():
    with pytest.raises(ValueError, match="without spaces"):
        NormConfig(remove_tokens=("a b",))


def test_keyword_precision_recall_with_multiplicity():
    refs = {"u1": "paris and paris again", "u2": "hello world", "u3": "nothing", "u4": "to new york"}
    hyps = {"u1": "paris and berlin again", "u2": "world world world", "u3": "nothing", "u4": "to york"}
    kws = {"u1": ["paris", "paris"], "u2": ["world", "berlin"], "u4": ["new", "york"]}
    r = score(refs, hyps, keywords=kws)
    k1, k2, k3, k4 = (r.keywords[u] for u in ("u1", "u2", "u3", "u4"))
    assert (k1.expected, k1.found, k1.hits) == (2, 1, 1)  # one of two 'paris' recalled; list duplicates merged
    assert k1.recall == 0.5 and k1.precision == 1.0
    assert (k2.expected, k2.found, k2.hits) == (1, 3, 1)  # over-generation lowers precision
    assert k2.precision == pytest.approx(1 / 3) and k2.recall == 1.0
    assert (k3.expected, k3.found, k3.hits) == (0, 0, 0) and k3.f1 == 1.0  # nothing to find
    assert (k4.expected, k4.found, k4.hits) == (2, 1, 1)
    kt = r.keyword_totals
    assert (kt.expected, kt.found, kt.hits) == (5, 5, 3)
    assert kt.precision == 0.6 and kt.recall == 0.6 and kt.f1 == pytest.approx(0.6)


def test_keyword_distractor_costs_precision_and_omission_costs_recall():
    k = keyword_prf(["paris", "berlin"], "i saw paris", "i saw berlin")  # berlin: a biasing-list distractor
    assert (k.expected, k.found, k.hits) == (1, 1, 0) and k.precision == 0.0 and k.recall == 0.0
    k = keyword_prf(["paris"], "i saw paris", "i saw")
    assert (k.precision, k.recall, k.f1) == (1.0, 0.0, 0.0)  # nothing claimed wrongly, nothing found


def test_bias_list_false_alarms_are_list_words_written_beyond_the_reference():
    refs = {"u1": "i saw paris", "u2": "we met anna in rome", "u3": "nothing here"}
    hyps = {"u1": "i saw berlin", "u2": "we met anna in rome rome", "u3": "nothing here"}
    lists = {"u1": ["paris", "berlin", "oslo"], "u2": ["anna", "rome", "oslo"]}  # u3: no list (plain prompt)
    r = score(refs, hyps, keywords={"u1": ["paris"]}, bias_lists=lists)
    assert r.keyword_totals.found == 0, "the keyword table is scored on its own"
    b1, b2, b3 = (r.bias[u] for u in ("u1", "u2", "u3"))
    assert (b1.expected, b1.found, b1.hits) == (1, 1, 0)  # distractor 'berlin' written, 'paris' missed
    assert (b2.expected, b2.found, b2.hits) == (2, 3, 2)  # "rome" written once more than spoken; "oslo" not
    assert (b3.expected, b3.found, b3.hits) == (0, 0, 0)
    bt = r.bias_totals
    assert bt.found - bt.hits == 2 and bt.recall == pytest.approx(2 / 3)
    assert score(refs, hyps).bias is None and score(refs, hyps).bias_totals is None


def test_keyword_multichar_in_cer_mode():
    k = keyword_prf(["阿里巴巴", "杭州"], "阿里巴巴在杭州", "阿里巴巴在杭州，阿里巴巴", unit="char", norm="zh")
    assert (k.expected, k.found, k.hits) == (2, 3, 2)


def test_counts_from_dict_roundtrip():
    c = Counts(1, 3, 1, 0, 2, 1)
    assert Counts.from_dict(c.to_dict()) == c


def test_by_group_requires_every_utterance():
    r = score({"u1": "a", "u2": "b"}, {"u1": "a", "u2": "c"})
    g = r.by_group({"u1": "s1", "u2": "s2"})
    assert g["s1"].err == 0 and g["s2"].sub == 1
    with pytest.raises(ScoreError, match="utt2spk"):
        r.by_group({"u1": "s1"})
