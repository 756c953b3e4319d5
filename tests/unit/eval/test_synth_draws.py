"""Several synthesis draws of one system: audiorl.eval.sclite.pool_draws and tts_results --draws."""

import json
import os

import pytest

from audiorl.bin import tts_results
from audiorl.eval.sclite import pool_draws, read_result, write_result
from audiorl.eval.stats import compare
from audiorl.eval.wer import score

REFS = {f"u{i:03d}": "the cat sat on the mat" for i in range(120)}


def hyps(every: int, offset: int = 0) -> dict[str, str]:
    """One substitution in every ``every``-th utterance, starting at ``offset``."""
    return {u: ("the cat sat on a mat" if (i + offset) % every == 0 else r) for i, (u, r) in enumerate(REFS.items())}


def write(d, res, tts_metrics=None):
    write_result(os.path.join(d, "judge", "score_word"), res)
    if tts_metrics is not None:
        os.makedirs(os.path.join(d, "score_tts"), exist_ok=True)
        with open(os.path.join(d, "score_tts", "tts_metrics.json"), "w") as f:
            json.dump(tts_metrics, f)
    return read_result(os.path.join(d, "judge", "score_word", "result.json"))


def test_pool_sums_each_utterance_over_draws(tmp_path):
    a = write(str(tmp_path / "a"), score(REFS, hyps(4)))
    b = write(str(tmp_path / "b"), score(REFS, hyps(2, 1)))
    p = pool_draws([a, b])
    assert list(p.utts) == list(REFS)
    assert p.utts["u000"].sub == 1 and p.utts["u000"].wrd == 12  # draw a wrong, draw b right
    assert p.utts["u001"].sub == 1 and p.utts["u002"].sub == 0 and p.utts["u004"].sub == 1  # b only, neither, a only
    assert p.totals.wrd == 2 * a.totals.wrd
    assert p.totals.err == a.totals.err + b.totals.err
    assert p.totals.wer == pytest.approx((a.totals.err + b.totals.err) / (2 * a.totals.wrd))
    # The utterance stays the paired unit: two pooled systems compare over 120 utterances, not 240.
    assert compare(p, pool_draws([b, a]), n_boot=50).n_utts == len(REFS)


def test_pool_refuses_draws_of_other_utterances_or_references(tmp_path):
    a = write(str(tmp_path / "a"), score(REFS, hyps(4)))
    fewer = write(str(tmp_path / "b"), score(dict(list(REFS.items())[:-1]), hyps(4), ignore_extra=True))
    with pytest.raises(ValueError, match="different utterances"):
        pool_draws([a, fewer])
    other = write(str(tmp_path / "c"), score({**REFS, "u000": "the cat"}, hyps(4)))
    with pytest.raises(ValueError, match="reference units"):
        pool_draws([a, other])
    with pytest.raises(ValueError, match="no scores"):
        pool_draws([])


def test_tts_results_pools_draws_in_the_rl_table(tmp_path, capfd):
    sft, rl = str(tmp_path / "sft"), str(tmp_path / "diffro")
    write(sft, score(REFS, hyps(2)), {"sim_ref": {"mean": 0.80, "n": 120}, "dur_ratio": {"mean": 1.0, "n": 120}})
    write(os.path.join(sft, "draw2"), score(REFS, hyps(3)), {"sim_ref": {"mean": 0.70, "n": 120}})
    write(rl, score(REFS, hyps(4)), {"sim_ref": {"mean": 0.79, "n": 120}})
    write(os.path.join(rl, "draw2"), score(REFS, hyps(6)), {"sim_ref": {"mean": 0.77, "n": 120}})
    out = str(tmp_path / "RESULTS.md")
    args = ["--out", out, "--system", f"test|SFT|{sft}", "--system", f"test|diffro|{rl}", "--n_boot", "50"]
    assert tts_results.main(args + ["--draws", "2"]) == 0
    text = open(out).read()
    assert "pooled over 2 synthesis draws" in text
    # SFT: (60 + 40) errors / 1440 words = 6.9%; DiffRO (30 + 20) / 1440 = 3.5%; SIM the mean of the draws.
    assert f"|SFT|`{sft}`|120 x 2|6.9|" in text
    assert f"|diffro|`{rl}`|120 x 2|3.5|" in text
    assert "|0.750|" in text and "|0.780|" in text
    assert "DiffRO lowers judge WER by 50.0% relative" in text

    # Draw 1 alone (the default) reads the system dirs as before.
    assert tts_results.main(args) == 0
    text = open(out).read()
    assert f"|SFT|`{sft}`|120|8.3|" in text and "pooled" not in text

    # A row without its second draw: every row falls back to the draws all of them have, so they stay paired.
    import shutil

    shutil.rmtree(os.path.join(rl, "draw2"))
    assert tts_results.main(args + ["--draws", "3"]) == 0
    text = open(out).read()
    assert f"|diffro|`{rl}`|120|4.2|" in text and f"|SFT|`{sft}`|120|8.3|" in text
    assert "only 1 of 3 synthesis draws" in capfd.readouterr().err


def test_tts_results_pools_draws_in_any_table_of_sampled_rows(tmp_path, capfd):
    """Two RL variants against each other (no SFT row): both have 2 draws, so both are pooled and paired; a table with
    a deterministic row (one draw only) stays on draw 1 without a warning."""
    a, b, real = str(tmp_path / "diffro"), str(tmp_path / "diffro_T04"), str(tmp_path / "real")
    write(a, score(REFS, hyps(2)))
    write(os.path.join(a, "draw2"), score(REFS, hyps(3)))
    write(b, score(REFS, hyps(4)))
    write(os.path.join(b, "draw2"), score(REFS, hyps(6)))
    write(real, score(REFS, hyps(5)))
    out = str(tmp_path / "RESULTS.md")
    args = ["--out", out, "--n_boot", "50", "--draws", "2"]
    assert tts_results.main(args + ["--system", f"dev|diffro|{a}", "--system", f"dev|diffro_T04|{b}"]) == 0
    text = open(out).read()
    assert "pooled over 2 synthesis draws" in text
    assert f"|diffro|`{a}`|120 x 2|6.9|" in text and f"|diffro_T04|`{b}`|120 x 2|3.5|" in text
    capfd.readouterr()
    assert tts_results.main(args + ["--system", f"dev|real|{real}", "--system", f"dev|diffro|{a}"]) == 0
    text = open(out).read()
    assert "pooled" not in text and f"|diffro|`{a}`|120|8.3|" in text
    assert "synthesis draws are scored" not in capfd.readouterr().err
