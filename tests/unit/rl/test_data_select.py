"""audiorl.rl.data_select on a hand-made pool: D0-D3 have equal size and each rule holds."""

import json

from audiorl.data.kaldi import read_table, write_table
from audiorl.rl.data_select import SelectConfig, UttInfo, load_pool, select_subsets, subset_stats, write_subsets


def pool() -> dict[str, UttInfo]:
    info = {}
    # 4 easy, fluent, long, keyword-free utterances: the model is right and sure
    for i in range(4):
        info[f"easy{i}"] = UttInfo("a b c d e f", "a b c d e f", ["a b c d e f"] * 4, 6.0 + i, [])
    # 2 wrong 1-best, 1 unsure (samples disagree), 1 long with a loop the reference does not have
    info["wrong0"] = UttInfo("the cat sat", "the cat sat sat", ["the cat sat"] * 4, 3.0, [])
    info["wrong1"] = UttInfo("a dog ran", "a fog ran", ["a fog ran"] * 4, 3.5, [])
    info["unsure"] = UttInfo("go home now", "go home now", ["go home now", "go hum now", "go home no", "go home now"],
                             2.5, [])
    info["loop"] = UttInfo("one two three four", "one two three four", ["one two two two two three four"] * 4,
                           12.0, [])
    # keyword-heavy: two of three words are keywords; one more with a single keyword in four words
    info["kw0"] = UttInfo("carlos met anna", "carlos met anna", ["carlos met anna"] * 4, 1.0, ["carlos", "anna"])
    info["kw1"] = UttInfo("we saw carlos today", "we saw carlos today", ["we saw carlos today"] * 4, 1.5, ["carlos"])
    # short ones
    info["short0"] = UttInfo("yes", "yes", ["yes"] * 4, 0.5, [])
    info["short1"] = UttInfo("no", "no", ["no"] * 4, 0.6, [])
    return info


def test_equal_sizes_and_rules():
    info = pool()
    cfg = SelectConfig(size=4, short_max_seconds=2.0)
    s = select_subsets(info, cfg)
    assert set(s) == {"D0", "D1", "D2", "D3"} and all(len(v) == 4 for v in s.values())
    assert set(s["D1"]) == {"wrong0", "wrong1", "unsure", "loop"}
    assert all(info[u].duration <= 2.0 for u in s["D2"])
    assert s["D3"][:2] == ["kw0", "kw1"] or {"kw0", "kw1"} <= set(s["D3"])
    assert s["D0"] == select_subsets(info, cfg)["D0"]  # reproducible
    st = subset_stats(info, s["D1"])
    assert st["utts"] == 4 and st["frac_wrong"] == 0.5 and st["sft_wer"] > 0
    assert subset_stats(info, s["D2"])["sft_wer"] == 0


def test_d1_fills_with_the_most_uncertain_when_few_are_hard():
    info = pool()
    s = select_subsets(info, SelectConfig(size=6))
    assert {"wrong0", "wrong1", "unsure", "loop"} <= set(s["D1"]) and len(s["D1"]) == 6


def test_load_and_write(tmp_path):
    info = pool()
    data, dec = tmp_path / "data" / "pool", tmp_path / "decode"
    data.mkdir(parents=True)
    dec.mkdir()
    write_table(str(data / "text"), {u: i.ref for u, i in info.items()})
    write_table(str(data / "utt2spk"), {u: u for u in info})
    write_table(str(data / "spk2utt"), {u: u for u in info})
    write_table(str(data / "wav.scp"), {u: f"/dev/null/{u}.wav" for u in info})
    write_table(str(data / "utt2dur"), {u: i.duration for u, i in info.items()})
    write_table(str(data / "keywords"), {u: " ".join(i.keywords) for u, i in info.items() if i.keywords})
    write_table(str(dec / "text"), {u: i.hyp for u, i in info.items()})
    (dec / "samples.jsonl").write_text("".join(json.dumps({"utt": u, "hyps": i.samples}) + "\n"
                                               for u, i in info.items()))
    loaded = load_pool(str(data), str(dec))
    assert loaded == info
    subsets = select_subsets(loaded, SelectConfig(size=4, short_max_seconds=2.0))
    dirs = write_subsets(subsets, [str(data)])
    assert dirs[1].endswith("pool_D1")
    assert set(read_table(str(tmp_path / "data" / "pool_D1" / "text"))) == set(subsets["D1"])
    assert set(read_table(str(tmp_path / "data" / "pool_D3" / "keywords"))) <= set(subsets["D3"])
