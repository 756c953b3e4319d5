"""audiorl.data.biasing: the rules of a biasing list (true keywords always in at evaluation, distractors never
spoken ones, deterministic draws, training share and sizes) and its prompt ids."""

import pytest
import torch

from audiorl.config import load_config
from audiorl.data.biasing import BiasingConfig, BiasingLists
from audiorl.data.kaldi import DataDirError

POOL = [f"w{i:02d}" for i in range(40)]
KW = {f"u{i:03d}": ([POOL[i % 40], POOL[(i * 7) % 40]] if i % 3 else []) for i in range(300)}
KW["u000"] = [*POOL]  # an utterance with more keywords than the cap
KW["u001"] = ["w05", "w05"]  # a repeated keyword counts once


def _encode(text):  # one id per word, so list lengths are easy to read off
    return [POOL.index(w) for w in text.split()]


def _lists(**kw):
    return BiasingLists(BiasingConfig(**kw), KW, _encode, task_prompt=[99], pad_id=98)


def test_eval_lists_hold_the_keywords_and_exactly_n_distractors():
    b = _lists(eval_distractors=5, max_list_words=0)
    for u, true in KW.items():
        w = b.words(u)
        assert len(w) == len(set(w)), "no word twice"
        assert set(true) <= set(w)
        assert len(set(w) - set(true)) == min(5, 40 - len(set(true)))
        assert set(w) <= set(POOL)
    assert b.words("u004") == _lists(eval_distractors=5, max_list_words=0).words("u004"), "deterministic"
    assert b.words("u004") != _lists(eval_distractors=5, max_list_words=0, seed=1).words("u004")
    # the spoken words are not always first: position must not tell
    firsts = [b.words(u)[0] in KW[u] for u in KW if len(KW[u]) == 2]
    assert 0.05 < sum(firsts) / len(firsts) < 0.6
    assert _lists(eval_distractors=0).words("u003") == [] and _lists(eval_distractors=0).words("u002") != []


def test_cap_keeps_the_true_keywords_first():
    b = _lists(eval_distractors=5, max_list_words=6)
    assert len(b.words("u000")) == 6 and set(b.words("u000")) <= set(KW["u000"])
    w = b.words("u004")
    assert len(w) == 6 and set(KW["u004"]) <= set(w)


def test_training_draws_share_sizes_and_epochs():
    b = _lists(train_prob=0.5, max_distractors=4, max_list_words=0)
    lists = {u: b.words(u, epoch=0) for u in KW}
    share = sum(1 for w in lists.values() if w) / len(lists)
    assert 0.4 < share < 0.6
    for u, w in lists.items():
        if w:  # a list always holds the keywords, plus 0..4 distractors
            assert set(KW[u]) <= set(w) and len(set(w) - set(KW[u])) <= 4
    sizes = {len(set(w) - set(KW[u])) for u, w in lists.items() if w}
    assert sizes == {0, 1, 2, 3, 4}
    assert lists == {u: b.words(u, epoch=0) for u in KW}
    assert lists != {u: b.words(u, epoch=1) for u in KW}
    assert all(_lists(train_prob=0.0).words(u, 3) == [] for u in KW)
    assert all(_lists(train_prob=1.0, max_distractors=1).words(u, 3) for u in KW if KW[u])


def test_reference_words_join_training_lists_only():
    ref = {u: "a w30 go to w31 an w32 w33" for u in KW}  # "a", "go", "to", "an" are under ref_min_chars
    b = _lists(train_prob=1.0, max_distractors=0, max_list_words=0, ref_words=2, ref_min_chars=3)
    counts = set()
    for u in KW:
        w = b.words(u, epoch=0, ref=ref[u].split())
        extra = set(w) - set(KW[u])
        assert extra <= {"w30", "w31", "w32", "w33"}, "only long-enough transcript words, no distractors"
        assert len(w) == len(set(w))
        counts.add(len(extra - set(KW[u])))
    assert counts == {0, 1, 2}
    assert all(b.words(u, ref=ref[u].split()) == _lists(max_list_words=0, ref_words=2).words(u) for u in KW), \
        "evaluation lists never take words from the reference"
    # the default (ref_words 0) ignores the transcript: draws stay those of a model trained before the option
    plain = _lists(train_prob=0.7, max_distractors=3)
    assert all(plain.words(u, 2, ref[u].split()) == plain.words(u, 2) for u in KW)
    ids, lens, lists = b.batch(["u003", "u004"], epoch=0, refs={"u003": ref["u003"], "u004": ref["u004"]})
    assert lists == [b.words("u003", 0, ref["u003"].split()), b.words("u004", 0, ref["u004"].split())]


def test_prompt_ids_and_batch_padding():
    b = _lists(eval_distractors=2)
    assert b.prompt_ids([]) == [99], "no list = the plain task prompt"
    assert b.prompt_ids(["w03", "w10"]) == [3, 10, 99]
    ids, lens, lists = b.batch(["u003", "u004", "u006"])
    assert ids.shape == (3, int(lens.max())) and ids.dtype == torch.long
    for row, n, w in zip(ids, lens, lists):
        assert row[:n].tolist() == [POOL.index(x) for x in w] + [99]
        assert (row[n:] == 98).all()
    assert lens.tolist() == [len(w) + 1 for w in lists]


def test_pool_file_and_missing_keywords(tmp_path):
    pool = tmp_path / "pool"
    pool.write_text("w01\nw02\n\nw03\n")
    b = BiasingLists(BiasingConfig(pool_file=str(pool), eval_distractors=10), KW, _encode, [99], 98)
    assert b.pool == ["w01", "w02", "w03"] and set(b.words("u003")) - set(KW["u003"]) <= {"w01", "w02", "w03"}
    pool.write_text("w01\nw02 w03\n")
    with pytest.raises(DataDirError, match=r"pool:2: one keyword per line"):
        BiasingLists(BiasingConfig(pool_file=str(pool)), KW, _encode, [99], 98)
    with pytest.raises(DataDirError, match=r"keywords: no such file.*--biasing off"):
        BiasingLists.for_data_dir(BiasingConfig(), str(tmp_path), _encode, [99], 98)


@pytest.mark.parametrize("bad", [["--train_prob", "1.5"], ["--max_distractors", "-1"], ["--eval_distractors", "-2"],
                                 ["--ref_words", "-1"]])
def test_config_validation(bad):
    with pytest.raises(ValueError, match="biasing"):
        load_config(BiasingConfig, overrides=bad)


def test_lists_wanted_follows_the_trained_model_unless_forced():
    from audiorl.data.biasing import lists_wanted
    on, off = BiasingConfig(enabled=True), BiasingConfig()
    assert lists_wanted("auto", on) and not lists_wanted("auto", off)
    assert lists_wanted("on", off) and not lists_wanted("off", on)
    with pytest.raises(ValueError, match="--biasing='yes'"):
        lists_wanted("yes", on, "--biasing")
