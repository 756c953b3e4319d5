"""Unit tests of audiorl.data.ops: fix, subset, combine, copy, split (tiny dirs; no audio is opened)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from audiorl.data.kaldi import DataDirError, read_table
from audiorl.data.ops import (combine_data, copy_data_dir, fix_data_dir, load_data_dir, split_data,
                              split_scp_keys, subset_data_dir)
from audiorl.data.validate import validate_data_dir


def make_dir(path, spk_utts: dict[str, int], *, segments=False, extra: dict[str, str] | None = None) -> str:
    """Data dir with speakers s -> n utterances '<s>-<i>' (text, utt2spk, spk2utt, wav.scp, utt2dur)."""
    d = Path(path)
    d.mkdir(parents=True)
    utts = [(f"{s}-{i}", s) for s, n in sorted(spk_utts.items()) for i in range(n)]
    files = {
        "text": "".join(f"{u} words of {u}\n" for u, _ in utts),
        "utt2spk": "".join(f"{u} {s}\n" for u, s in utts),
        "spk2utt": "".join(f"{s} {' '.join(f'{s}-{i}' for i in range(n))}\n" for s, n in sorted(spk_utts.items())),
        "utt2dur": "".join(f"{u} {(i * 3) % 7 + 1}.5\n" for i, (u, _) in enumerate(utts)),
    }
    if segments:  # two utterances per recording "<spk>-r<k>"
        files["segments"] = "".join(f"{u} {s}-r{int(u.split('-')[1]) // 2} {int(u.split('-')[1]) % 2} "
                                    f"{int(u.split('-')[1]) % 2 + 1}\n" for u, s in utts)
        recos = sorted({line.split()[1] for line in files["segments"].splitlines()})
        files["wav.scp"] = "".join(f"{r} /audio/{r}.wav\n" for r in recos)
    else:
        files["wav.scp"] = "".join(f"{u} /audio/{u}.wav\n" for u, _ in utts)
    files.update(extra or {})
    for name, content in files.items():
        (d / name).write_text(content)
    return str(d)


def valid(d: str) -> None:
    rep = validate_data_dir(d, no_feats=True)
    assert rep.ok, rep.errors


def keys(d: str, name: str = "utt2spk") -> list[str]:
    return list(read_table(os.path.join(d, name), allow_empty_value=True))


# -- fix_data_dir ------------------------------------------------------------------------------------
def test_fix_intersects_sorts_and_reports(tmp_path, caplog):
    d = make_dir(tmp_path / "d", {"a": 3, "b": 2}, extra={"keywords": "a-0 k\nzz k\n"})
    p = Path(d)
    p.joinpath("text").write_text("b-1 x\na-0 y\na-1 z\r\na-1 dup\nb-0 w\n")  # a-2 missing, unsorted, dup, CR
    p.joinpath("wav.scp").write_text("a-0 x.wav\na-1 x.wav\na-2 x.wav\nb-0 x.wav\nq x.wav\n")  # b-1 missing
    p.joinpath("spk2utt").write_text("junk\n")
    with caplog.at_level(logging.INFO, logger="audiorl.data.ops"):
        rep = fix_data_dir(d)
    assert (rep.kept, rep.total) == (3, 5) and rep.summary().endswith("kept 3 of 5 utterances")
    assert rep.lacking == {"text": ["a-2"], "wav.scp": ["b-1"]}
    assert rep.removed["utt2dur"] == ["a-2", "b-1"] and rep.removed["wav.scp"] == ["a-2", "q"]
    assert rep.removed["keywords"] == ["zz"] and rep.duplicates == {"text": ["a-1"]}
    assert "kept 3 of 5 utterances" in caplog.text and "dropping 1 utterance(s) not in text: a-2" in caplog.text
    valid(d)
    assert p.joinpath("text").read_text() == "a-0 y\na-1 z\nb-0 w\n"
    assert p.joinpath("spk2utt").read_text() == "a a-0 a-1\nb b-0\n"
    assert p.joinpath(".backup", "spk2utt").read_text() == "junk\n"  # originals kept


def test_fix_segments_recordings_and_speaker_files(tmp_path):
    d = make_dir(tmp_path / "d", {"a": 4, "b": 2}, segments=True, extra={"spk2gender": "a m\n", "reco2dur": ""})
    p = Path(d)
    p.joinpath("reco2dur").write_text("a-r0 2\na-r1 2\nb-r0 2\n")
    seg = p.joinpath("segments").read_text().replace("a-3 a-r1 1 2", "a-3 a-r1 2 1")  # malformed: dropped
    p.joinpath("segments").write_text(seg)
    rep = fix_data_dir(d)
    # b has no spk2gender line -> its utterances go; a-3's segment was bad; a-r1 keeps a-2
    assert keys(d) == ["a-0", "a-1", "a-2"] and rep.kept == 3
    assert rep.lacking == {"segments": ["a-3"], "spk2gender": ["b-0", "b-1"]}
    assert keys(d, "wav.scp") == ["a-r0", "a-r1"] and keys(d, "reco2dur") == ["a-r0", "a-r1"]
    valid(d)


def test_fix_drop_empty_text_and_nothing_left(tmp_path):
    d = make_dir(tmp_path / "d", {"a": 2, "b": 1})
    Path(d, "text").write_text("a-0 x\na-1\nb-0  \n")
    assert fix_data_dir(d).kept == 3
    rep = fix_data_dir(d, drop_empty_text=True)
    assert rep.kept == 1 and rep.empty_text == ["a-1", "b-0"]
    Path(d, "text").write_text("zz x\n")
    before = Path(d, "utt2spk").read_text()
    with pytest.raises(DataDirError, match="no utterance is in every file"):
        fix_data_dir(d)
    assert Path(d, "utt2spk").read_text() == before  # nothing written


def test_fix_refuses_unfixable(tmp_path):
    d = make_dir(tmp_path / "d", {"a": 2})
    Path(d, "utt2spk").write_text("a-0 a\na-1 a extra\n")
    with pytest.raises(DataDirError, match=r"utt2spk:2: expected 2 fields"):
        fix_data_dir(d)
    Path(d, "utt2spk").write_bytes(b"a-0 a\na-1 \xe9\n")
    with pytest.raises(DataDirError, match=r"utt2spk:2: not valid UTF-8"):
        fix_data_dir(d)


# -- subset_data_dir ---------------------------------------------------------------------------------
@pytest.mark.parametrize("how,num,expected", [
    ("first", 2, ["a-0", "a-1"]), ("last", 2, ["b-2", "c-0"]), ("even", 3, ["a-2", "b-1", "c-0"]),
    ("shortest", 2, ["a-0", "b-2"]), ("speakers", 2, ["a-0", "a-1", "a-2", "c-0"]),
    ("per_spk", 1, ["a-0", "b-0", "c-0"]),
])
def test_subset_modes(tmp_path, how, num, expected):
    src = make_dir(tmp_path / "src", {"a": 3, "b": 3, "c": 1})
    assert subset_data_dir(src, str(tmp_path / "dst"), num, how=how) == expected
    assert keys(str(tmp_path / "dst")) == expected
    valid(str(tmp_path / "dst"))


def test_subset_random_lists_and_errors(tmp_path):
    src = make_dir(tmp_path / "src", {"a": 5, "b": 5}, segments=True, extra={"frame_shift": "0.01\n"})
    r1 = subset_data_dir(src, str(tmp_path / "r1"), 4, how="random", seed=3)
    assert r1 == subset_data_dir(src, str(tmp_path / "r2"), 4, how="random", seed=3) and len(r1) == 4
    sel = subset_data_dir(src, str(tmp_path / "u"), utts=["b-4", "a-0", "nope"])
    assert sel == ["a-0", "b-4"] and keys(str(tmp_path / "u"), "wav.scp") == ["a-r0", "b-r2"]
    assert Path(tmp_path, "u", "frame_shift").read_text() == "0.01\n"
    valid(str(tmp_path / "u"))
    assert subset_data_dir(src, str(tmp_path / "s"), spks=["b"]) == [f"b-{i}" for i in range(5)]
    with pytest.raises(DataDirError, match="cannot select 11 utterances: the source has only 10"):
        subset_data_dir(src, str(tmp_path / "x"), 11)
    with pytest.raises(DataDirError, match="subset is empty"):
        subset_data_dir(src, str(tmp_path / "x"), utts=["nope"])


# -- combine_data ------------------------------------------------------------------------------------
def test_combine(tmp_path):
    a = make_dir(tmp_path / "a", {"a": 2}, extra={"keywords": "a-0 k\n", "feats.scp": "a-0 f:1\na-1 f:2\n"})
    b = make_dir(tmp_path / "b", {"b": 2}, segments=True)
    rep = combine_data(str(tmp_path / "c"), [a, b])
    c = str(tmp_path / "c")
    assert rep.kept == 4 and keys(c) == ["a-0", "a-1", "b-0", "b-1"]
    assert not Path(c, "feats.scp").exists()  # only one source has it
    assert keys(c, "keywords") == ["a-0"]  # free files: merged from those that have them
    assert Path(c, "segments").read_text().startswith("a-0 a-0 0 1.5\n")  # whole-recording segments
    assert keys(c, "wav.scp") == ["a-0", "a-1", "b-r0"]
    valid(c)


def test_combine_refuses_collisions(tmp_path):
    a = make_dir(tmp_path / "a", {"a": 2})
    b = make_dir(tmp_path / "b", {"a": 1, "b": 1})
    with pytest.raises(DataDirError, match=r"'a-0' \(.*a/utt2spk:1 and .*b/utt2spk:1\).*--utt-prefix"):
        combine_data(str(tmp_path / "c"), [a, b])
    with pytest.raises(DataDirError, match="must not be one of the sources"):
        combine_data(a, [a, b])
    c = make_dir(tmp_path / "c2", {"x": 1}, extra={"spk2gender": "x m\n"})
    d = make_dir(tmp_path / "d2", {"y": 1}, extra={"spk2gender": "y f\n"})
    Path(d, "utt2spk").write_text("y-0 x\n")  # same speaker x in both, genders disagree
    Path(d, "spk2gender").write_text("x f\n")
    with pytest.raises(DataDirError, match="spk2gender:1: 'x f' conflicts with"):
        combine_data(str(tmp_path / "e"), [c, d])


# -- copy_data_dir -----------------------------------------------------------------------------------
def test_copy_with_prefixes(tmp_path):
    src = make_dir(tmp_path / "src", {"a": 2, "b": 1}, segments=True, extra={"spk2gender": "a m\nb f\n"})
    dst = str(tmp_path / "dst")
    copy_data_dir(src, dst, utt_prefix="sp-", spk_prefix="sp-", utt_suffix="-x")
    assert keys(dst) == ["sp-a-0-x", "sp-a-1-x", "sp-b-0-x"]
    assert read_table(os.path.join(dst, "utt2spk"))["sp-a-0-x"] == "sp-a"
    assert keys(dst, "spk2gender") == ["sp-a", "sp-b"] and keys(dst, "wav.scp") == ["a-r0", "b-r0"]
    assert read_table(os.path.join(dst, "segments"))["sp-a-1-x"] == "a-r0 1 2"
    valid(dst)
    copy_data_dir(make_dir(tmp_path / "s2", {"a": 1}), str(tmp_path / "d2"), utt_prefix="p-", spk_prefix="p-")
    assert keys(str(tmp_path / "d2"), "wav.scp") == ["p-a-0"]  # no segments: recordings renamed too
    with pytest.raises(DataDirError, match="contains whitespace"):
        copy_data_dir(src, dst, utt_prefix="a b")


# -- split_data --------------------------------------------------------------------------------------
def test_split_scp_keys():
    ks = [f"u{i}" for i in range(7)]
    assert [len(p) for p in split_scp_keys(ks, 3)] == [3, 2, 2]
    u2s = {k: ("s1" if i < 4 else "s2" if i < 5 else "s3") for i, k in enumerate(ks)}
    assert split_scp_keys(ks, 2, u2s) == [ks[:4], ks[4:]]
    with pytest.raises(DataDirError, match="use at most 7 jobs"):
        split_scp_keys(ks, 8)
    with pytest.raises(DataDirError, match="3 speakers into 4 parts"):
        split_scp_keys(ks, 4, u2s)


def test_split_data_per_spk_and_per_utt(tmp_path):
    d = make_dir(tmp_path / "d", {"a": 3, "b": 1, "c": 2}, segments=True)
    parts = split_data(d, 2)
    assert parts == [f"{d}/split2/1", f"{d}/split2/2"]
    got = [keys(p) for p in parts]
    assert got == [["a-0", "a-1", "a-2"], ["b-0", "c-0", "c-1"]]
    for p in parts:
        valid(p)
    assert keys(parts[1], "wav.scp") == ["b-r0", "c-r0"]
    mtime = os.path.getmtime(f"{parts[0]}/utt2spk")
    assert split_data(d, 2) == parts and os.path.getmtime(f"{parts[0]}/utt2spk") == mtime  # up to date
    utt_parts = split_data(d, 4, per_utt=True)
    assert utt_parts[0] == f"{d}/split4utt/1" and [len(keys(p)) for p in utt_parts] == [2, 2, 1, 1]
    with pytest.raises(DataDirError, match="3 speakers into 4 parts"):
        split_data(d, 4)
    loaded = load_data_dir(utt_parts[2])
    assert list(loaded.utt2spk) == ["c-0"]
