"""Reward registry and built-in rewards (audiorl/rl/rewards, PAPER.md s3-s4)."""

import jiwer
import pytest
import torch

from audiorl.rl.rewards import RewardConfig, RewardInput, RewardSpec, compute_rewards, known_rewards, register_reward
from audiorl.rl.rewards import base
from audiorl.rl.rewards.group import diversity, duration
from audiorl.rl.rewards.text import (
    accuracy,
    edit_counts,
    exact_match,
    hallucination,
    hallucination_causes,
    keyword_precision_recall,
    keywords,
    max_consecutive_repeats,
    neg_edit_distance,
)


def S(hyp, ref="", **kw):
    return RewardInput(hyp_text=hyp, ref_text=ref, **kw)


def slow_levenshtein(a, b):
    """Textbook DP, independent of rapidfuzz."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


PAIRS = [
    ("the cat sat on the mat", "the cat sat on the mat"),
    ("the cat sat on the mat", "a cat sat on mat"),
    ("the cat sat on the mat", "the cat sat on the the mat today"),
    ("hello world", "goodbye cruel world of mine"),
    ("one two three four", "four three two one"),
    ("a b c d e", "x"),
]


# ------------------------------------------------------------------------------------------ R1 accuracy
@pytest.mark.parametrize("ref,hyp", PAIRS)
def test_accuracy_agrees_with_jiwer_and_slow_dp(ref, hyp):
    got = accuracy([S(hyp, ref)], floor=-1e9)[0]
    assert got == pytest.approx(1 - jiwer.wer(ref, hyp))
    assert got == pytest.approx(1 - slow_levenshtein(ref.split(), hyp.split()) / len(ref.split()))
    o = jiwer.process_words(ref, hyp)
    assert edit_counts(ref.split(), hyp.split()) == {"hits": o.hits, "sub": o.substitutions,
                                                     "del": o.deletions, "ins": o.insertions}
    r, h = ref.replace(" ", ""), hyp.replace(" ", "")
    assert accuracy([S(hyp, ref)], unit="char", floor=-1e9)[0] == pytest.approx(1 - jiwer.cer(r, h))


def test_accuracy_chinese_cer_ignores_spaces():
    assert accuracy([S("今天 天气 很好", "今天天气很好")], unit="char")[0] == 1.0
    assert accuracy([S("今天天气不好", "今天天气很好")], unit="char")[0] == pytest.approx(1 - 1 / 6)


def test_accuracy_floor():
    s = [S("a b c d e f g h", "a")]  # WER 7
    assert accuracy(s)[0] == -1.0  # default floor -1
    assert accuracy(s, floor=0.0)[0] == 0.0
    assert accuracy([S("a b", "a")], floor=0.0)[0] == 0.0 and accuracy([S("a b", "a")])[0] == 0.0
    assert accuracy([S("", "")])[0] == 1.0 and accuracy([S("x", "")])[0] == 0.0  # empty ref divides by 1


def test_exact_match_and_neg_edit_distance():
    assert exact_match([S(" a  b ", "a b"), S("a c", "a b")]) == [1.0, 0.0]
    assert neg_edit_distance([S("a c d", "a b")], normalize=False) == [-2.0]
    assert neg_edit_distance([S("a c d", "a b")]) == [-1.0]


# ------------------------------------------------------------------------------------------ R2 hallucination
REF = "the quick brown fox jumps over the lazy dog near the river bank"


def test_good_hypotheses_are_not_hallucinations():
    good = [S(REF, REF), S(REF.replace("quick", "quack"), REF), S("the quick brown fox", REF),
            S("ha ha ha ha ha", "ha ha ha ha ha"), S("no no no", "no"), S("", REF)]
    assert hallucination(good) == [0.0] * len(good)
    assert all(hallucination_causes(s) == [] for s in good)


def test_repetition_loop_is_caught():
    loop = S("the quick brown fox jumps jumps jumps jumps over the lazy dog near the river bank", REF)
    assert "loop" in hallucination_causes(loop) and hallucination([loop]) == [-1.0]
    bigram_loop = S("the lazy dog " + "near the " * 5 + "river bank", "the lazy dog near the river bank")
    assert "loop" in hallucination_causes(bigram_loop)
    assert max_consecutive_repeats("a b a b a b c".split(), 4) == 3
    assert max_consecutive_repeats("a b c".split(), 4) == 1


def test_long_period_loop_caught_by_ngram_ratio():
    sent = "please call stella ask her to bring these things"
    hyp = S(" ".join([sent] * 3), sent)  # period 9 > max_n
    causes = hallucination_causes(hyp, max_length_ratio=100, max_insertion=100)
    assert causes == ["ngram_ratio"]


def test_long_insertions_and_length_ratio():
    ins = S("the quick brown fox jumps over and then he went home to sleep the lazy dog near the river bank", REF)
    assert hallucination_causes(ins) == ["insertion"]
    short = S("the quick brown fox and then he went", REF)  # 4 words replacing 9: no excess, no alarm
    assert hallucination_causes(short) == []
    scattered = S("yes well i i think so so", "yes i think so")  # runs of 1 extra word; 7 <= 2 * 4 words
    assert hallucination_causes(scattered) == []
    assert hallucination_causes(S("hello there my friend how are you", "hello")) == ["insertion", "length_ratio"]
    assert hallucination_causes(S("thank you all", "")) == ["length_ratio"]  # words on a silent utterance
    assert hallucination_causes(S("a x b y c z d w v", "a b c d")) == ["length_ratio"]  # scattered, 9 > 2 * 4


def test_wrong_script_is_caught():
    translated = S("敏捷的棕色狐狸跳过了懒狗", REF)
    assert "script" in hallucination_causes(translated)
    to_english = S("the weather is nice today", "今天天气很好")
    assert "script" in hallucination_causes(to_english, unit="char")
    codeswitch = S("我们用 python 写代码", "我们用 python 写代码")
    assert hallucination_causes(codeswitch, unit="char") == []
    assert hallucination_causes(S("the quick brown 狐 fox jumps over the lazy dog near the river bank", REF)) == []
    assert "script" in hallucination_causes(S("привет мир как дела", "hello world how are"), script="latin")


# ------------------------------------------------------------------------------------------ R3 keywords
def test_keyword_precision_recall_hand_cases():
    ref = "book a flight from new york to zurich on friday"
    kws = ["New York", "Zurich", "Geneva"]
    # all keywords right
    assert keyword_precision_recall(ref, ref, kws) == (1.0, 1.0)
    # zurich missed: recall 1/2; the one keyword claimed is right: precision 1
    assert keyword_precision_recall("book a flight from new york to zoo rich on friday", ref, kws) == (1.0, 0.5)
    # distractor geneva instead of zurich: precision 1/2, recall 1/2
    assert keyword_precision_recall("book a flight from new york to geneva on friday", ref, kws) == (0.5, 0.5)
    # an extra copy of a correct keyword is an unsupported claim: 2 of 3 claims supported
    p, r = keyword_precision_recall("new york new york to zurich", ref, kws)
    assert (p, r) == (pytest.approx(2 / 3), 1.0)
    # no keyword claimed, none found
    assert keyword_precision_recall("hello", ref, kws) == (1.0, 0.0)
    assert keywords([S("book a flight from new york to geneva on friday", ref, keywords=kws)]) == [0.5]


def test_keywords_neutral_without_list_and_case_and_chars():
    assert keywords([S("anything", "else"), S("x", "y", keywords=[])]) == [1.0, 1.0]
    assert keywords([S("x", "y")], no_keyword_value=0.0) == [0.0]
    cased = S("new york", "New York", keywords=["New York"])
    assert keywords([cased], ignore_case=False) == [0.5]  # P = 1 (0/0), R = 0
    zh = S("我 想去 北京 和 上海", "我想去北京和广州", keywords=["北京", "广州"])
    assert keywords([zh], unit="char") == [pytest.approx(0.5 * (1.0 + 0.5))]


# ------------------------------------------------------------------------------------------ group rewards
def T(tokens, group, **meta):
    return RewardInput(hyp_tokens=tokens, group_index=group, meta=meta)


def test_duration_hand_cases():
    s = [T([0] * 10, 0), T([0] * 20, 0), T([0] * 30, 0), T([0] * 4, 1), T([0] * 8, 1)]
    got = duration(s)
    assert got == pytest.approx([-0.5, 0.0, -0.5, -(2 / 6), -(2 / 6)])  # medians 20 and (4+8)/2 = 6
    secs = [T([], 0, duration=1.0), T([], 0, duration=2.0), T([], 0, duration=4.0)]
    assert duration(secs, length="duration") == pytest.approx([-0.5, 0.0, -1.0])
    assert duration([T([], 0), T([], 0), T([1], 0)]) == [0.0, 0.0, -1.0]
    with pytest.raises(KeyError, match="meta\\['duration'\\]"):
        duration([T([1], 0)], length="duration")


def test_diversity_hand_cases():
    s = [T([1, 2, 3, 4], 0), T([1, 2, 3, 5], 0), T([9, 9, 9, 9], 0), T([7], 1)]
    got = diversity(s)
    # d(0,1)=1/4, d(0,2)=1, d(1,2)=1; the singleton group scores 0
    assert got == pytest.approx([(0.25 + 1) / 2, (0.25 + 1) / 2, 1.0, 0.0])
    f0 = [T([1], 0, f0_std=50.0), T([1], 0, f0_std=25.0)]
    assert diversity(f0, f0_weight=0.5) == pytest.approx([0.5, 0.25])
    with pytest.raises(KeyError, match="f0_std"):
        diversity([T([1], 0)], f0_weight=1.0)


# ------------------------------------------------------------------------------------------ registry
def test_unknown_reward_lists_known_ones():
    with pytest.raises(KeyError, match="unknown reward 'acuracy'.*accuracy.*hallucination"):
        RewardConfig(rewards=[{"name": "acuracy"}])
    with pytest.raises(ValueError, match="no option\\(s\\) \\['flor'\\].*floor"):
        RewardConfig(rewards=[{"name": "accuracy", "kwargs": {"flor": 0}}])
    with pytest.raises(ValueError, match="unknown key\\(s\\) \\['wieght'\\]"):
        RewardConfig(rewards=[{"name": "accuracy", "wieght": 2}])
    with pytest.raises(ValueError, match="alias"):
        RewardConfig(rewards=[{"name": "accuracy"}, {"name": "accuracy", "kwargs": {"unit": "char"}}])


def test_weighted_combination_from_yaml_like_dicts():
    cfg = RewardConfig(rewards=[
        {"name": "accuracy", "weight": 1.0},
        {"name": "hallucination", "weight": 2.0},
        {"name": "keywords", "weight": 0.5},
        {"name": "accuracy", "weight": 0.0, "alias": "cer", "kwargs": {"unit": "char"}},
    ])
    samples = [S("a b c d", "a b c d", keywords=["c"]),
               S("a b b b b b c d", "a b c d", keywords=["c"]),
               S("a x c d", "a b c d", keywords=["b"])]
    total, per = compute_rewards(cfg, samples)
    assert set(per) == {"accuracy", "hallucination", "keywords", "cer"}
    assert per["accuracy"].tolist() == pytest.approx([1.0, 0.0, 0.75])
    assert per["hallucination"].tolist() == [0.0, -1.0, 0.0]
    assert per["keywords"].tolist() == pytest.approx([1.0, 1.0, 0.5])
    want = per["accuracy"] + 2 * per["hallucination"] + 0.5 * per["keywords"]
    assert torch.allclose(total, want) and total.dtype == torch.float32 and total.shape == (3,)


def test_register_custom_reward_and_bad_outputs():
    @register_reward("_test_len")
    def _len(samples, scale: float = 1.0):
        return torch.tensor([scale * len(s.hyp_text) for s in samples])

    @register_reward("_test_nan")
    def _nan(samples):
        return [float("nan")] * len(samples)

    try:
        assert "_test_len" in known_rewards()
        total, per = compute_rewards(RewardConfig([RewardSpec("_test_len", 2.0, {"scale": 0.5})]), [S("abc"), S("")])
        assert total.tolist() == [3.0, 0.0]
        with pytest.raises(ValueError, match="non-finite"):
            compute_rewards(RewardConfig([RewardSpec("_test_nan")]), [S("a")])
        with pytest.raises(ValueError, match="already registered"):
            register_reward("accuracy")(_len)
    finally:
        base._REGISTRY.pop("_test_len", None)
        base._REGISTRY.pop("_test_nan", None)
