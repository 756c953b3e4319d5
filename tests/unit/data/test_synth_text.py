"""The synthetic corpus text generator: determinism, disjoint sets, lengths, keywords, vocabulary."""

import re

import pytest

from audiorl.data.synth import text as T

SIZES = {"train": 600, "rl_pool": 200, "dev": 60, "test": 120, "test_unseen_spk": 120}


@pytest.fixture(scope="module")
def sets():
    return T.generate_sets(SIZES, seed=3)


def test_deterministic_by_seed(sets):
    again = T.generate_sets(SIZES, seed=3)
    assert again == sets
    other = T.generate_sets(SIZES, seed=4)
    assert other["test"] != sets["test"]


def test_sizes_and_disjoint(sets):
    assert {k: len(v) for k, v in sets.items()} == SIZES
    seen: dict[str, str] = {}
    for name, sents in sets.items():
        for s in sents:
            assert s.text not in seen, f"'{s.text}' in both {seen.get(s.text)} and {name}"
            seen[s.text] = name


def test_eval_sets_do_not_depend_on_train_size(sets):
    bigger = T.generate_sets({**SIZES, "train": 900}, seed=3)
    for name in ("test", "test_unseen_spk", "dev", "rl_pool"):
        assert bigger[name] == sets[name]


def test_lengths_and_format(sets):
    lengths = [len(s.words) for ss in sets.values() for s in ss]
    assert min(lengths) >= T.MIN_WORDS and max(lengths) <= T.MAX_WORDS
    assert sum(n >= 15 for n in lengths) > 0.03 * len(lengths), "some long sentences expected"
    assert 6.0 < sum(lengths) / len(lengths) < 14.0
    for ss in sets.values():
        for s in ss:
            assert re.fullmatch(r"[a-z]+( [a-z]+)*", s.text), s.text


def test_keywords_listed_are_in_sentence_and_are_a_minority(sets):
    with_kw = 0
    total = 0
    for ss in sets.values():
        for s in ss:
            total += 1
            with_kw += bool(s.keywords)
            for k in s.keywords:
                assert k in s.words, f"keyword {k} not in '{s.text}'"
                assert k in T.KEYWORDS
            # Every keyword word in the sentence is listed (a keyword never appears unlisted).
            assert [w for w in s.words if w in T.KEYWORDS] == list(s.keywords), s.text
    assert 0.05 < with_kw / total < 0.5


def test_vocabulary_covers_output_and_size(sets):
    vocab = T.vocabulary()
    assert 1000 <= len(vocab) <= 3000
    for ss in sets.values():
        for s in ss:
            assert set(s.words) <= vocab, set(s.words) - vocab


def test_numbers():
    assert T.number_words(0) == ["zero"]
    assert T.number_words(105) == "one hundred and five".split()
    assert T.number_words(2500) == "two thousand five hundred".split()
    assert T.number_words(1007) == "one thousand and seven".split()
    assert T.ordinal_words(23) == ["twenty", "third"]
    assert T.ordinal_words(12) == ["twelfth"]
    assert T.ordinal_words(30) == ["thirtieth"]
    assert T.year_words(1984) == "nineteen eighty four".split()
    assert T.year_words(2009) == "two thousand and nine".split()
    assert T.year_words(1905) == "nineteen oh five".split()
    with pytest.raises(ValueError):
        T.number_words(-1)
