"""Unit tests of audiorl/data/corpora (LibriSpeech, AISHELL-1, LibriTTS readers and the shared preparation) on
miniature trees in the official layouts (tests/fake_corpora.py), including the bad-input messages."""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

import pytest

from audiorl.bin import prepare_corpus
from audiorl.data.corpora import aishell, librispeech, libritts
from audiorl.data.corpora.common import (CorpusError, Problems, Utterance, hold_out, prepare, speaker_prefixed,
                                         write_data_dir)
from audiorl.data.kaldi import read_table
from audiorl.data.validate import validate_data_dir

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from fake_corpora import make_aishell, make_librispeech, make_libritts  # noqa: E402

LS_SETS = ("train", "rl_pool", "dev", "dev_clean", "dev_other", "test_clean", "test_other")


def _prepare(module_reader, root, out, *, on_mismatch="error", rl_pool_utts=2, **subsets):
    return prepare(module_reader, str(root), str(out), rl_pool_utts=rl_pool_utts, seed=0, on_mismatch=on_mismatch,
                   train=subsets.get("train", ["train-clean-100"]), dev=subsets.get("dev", ["dev-clean"]),
                   test=subsets.get("test", ["test-clean"]))


def _valid(d: Path) -> None:
    report = validate_data_dir(str(d), no_feats=True)
    assert report.ok, report.errors


# ---- LibriSpeech -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ls_root(tmp_path_factory):
    return make_librispeech(tmp_path_factory.mktemp("ls"))


def test_librispeech_prepare(ls_root, tmp_path):
    out = tmp_path / "data"
    rc = prepare_corpus.main(["--corpus", "librispeech", "--datadir", str(ls_root), "--out", str(out),
                              "--rl_pool_utts", "3", "--nj", "2"])
    assert rc == 0
    for s in LS_SETS:
        _valid(out / s)
    train, pool = read_table(str(out / "train/text")), read_table(str(out / "rl_pool/text"))
    assert len(pool) == 3 and not set(train) & set(pool), "the RL pool is held out of the SFT data"
    assert len(train) + len(pool) == 4 * 3, "every train-clean-100 utterance is in train or rl_pool"
    assert set(read_table(str(out / "dev/text"))) == set(read_table(str(out / "dev_clean/text"))) | \
        set(read_table(str(out / "dev_other/text")))
    # Official ids are kept (already speaker-prefixed), the speaker is the reader, audio is the flac itself.
    utt2spk = read_table(str(out / "train/utt2spk")) | read_table(str(out / "rl_pool/utt2spk"))
    assert utt2spk["1034-121119-0000"] == "1034" and utt2spk["19-227-0002"] == "19"
    wav = read_table(str(out / "test_clean/wav.scp"))
    assert wav["1089-134686-0001"] == str(ls_root / "LibriSpeech/test-clean/1089/134686/1089-134686-0001.flac")
    dur = read_table(str(out / "test_clean/utt2dur"))
    assert all(v == "0.600" for v in dur.values())
    text = (ls_root / "LibriSpeech/test-clean/1089/134686/1089-134686.trans.txt").read_text().splitlines()[1]
    assert read_table(str(out / "test_clean/text"))["1089-134686-0001"] == text.split(" ", 1)[1]


def test_librispeech_pool_is_reproducible(ls_root, tmp_path):
    pools = []
    for seed in (0, 0, 1):
        out = tmp_path / f"s{seed}_{len(pools)}"
        prepare(librispeech.read_subset, str(ls_root / "LibriSpeech"), str(out), train=["train-clean-100"],
                dev=["dev-clean"], test=[], rl_pool_utts=4, seed=seed, on_mismatch="error")
        pools.append(set(read_table(str(out / "rl_pool/text"))))
    assert pools[0] == pools[1] and pools[0] != pools[2]


def _ls_copy(tmp_path) -> Path:
    return make_librispeech(tmp_path / "c", utts_per_chapter=2, subsets=("train-clean-100", "dev-clean", "test-clean"))


def test_librispeech_malformed_line(tmp_path):
    root = _ls_copy(tmp_path)
    trans = root / "LibriSpeech/train-clean-100/19/198/19-198.trans.txt"
    trans.write_text(trans.read_text() + "19-198-0009\n")  # an id with no transcript
    with pytest.raises(CorpusError, match=rf"{re.escape(str(trans))}:3: malformed line .* expected"):
        _prepare(librispeech.read_subset, root / "LibriSpeech", tmp_path / "data")


def test_librispeech_line_in_wrong_chapter(tmp_path):
    root = _ls_copy(tmp_path)
    trans = root / "LibriSpeech/train-clean-100/19/198/19-198.trans.txt"
    trans.write_text(trans.read_text().replace("19-198-0001", "19-227-0001"))
    with pytest.raises(CorpusError, match=r"19-198.trans.txt:2: utterance 19-227-0001 does not belong in 19/198"):
        _prepare(librispeech.read_subset, root / "LibriSpeech", tmp_path / "data")


def test_librispeech_missing_transcript_line_error_or_counted_skip(tmp_path, caplog):
    root = _ls_copy(tmp_path)
    trans = root / "LibriSpeech/train-clean-100/103/1240/103-1240.trans.txt"
    trans.write_text(trans.read_text().splitlines()[0] + "\n")  # drops 103-1240-0001
    flac = root / "LibriSpeech/train-clean-100/103/1240/103-1240-0001.flac"
    with pytest.raises(CorpusError, match=rf"{re.escape(str(flac))}: audio without a transcript line; .*"
                                          r"--on_mismatch skip"):
        _prepare(librispeech.read_subset, root / "LibriSpeech", tmp_path / "data")
    with caplog.at_level(logging.WARNING):
        _prepare(librispeech.read_subset, root / "LibriSpeech", tmp_path / "data", on_mismatch="skip")
    assert "skipped 1 utterance(s): audio without a transcript line" in caplog.text
    kept = read_table(str(tmp_path / "data/train/text")) | read_table(str(tmp_path / "data/rl_pool/text"))
    assert "103-1240-0001" not in kept and len(kept) == 3 * 2 + 2 - 1


def test_librispeech_missing_audio_and_missing_transcript_file(tmp_path):
    root = _ls_copy(tmp_path)
    (root / "LibriSpeech/dev-clean/84/121123/84-121123-0000.flac").unlink()
    with pytest.raises(CorpusError, match=r"84-121123.trans.txt \(84-121123-0000\): transcript line without audio"):
        _prepare(librispeech.read_subset, root / "LibriSpeech", tmp_path / "data")
    (root / "LibriSpeech/dev-clean/84/121123/84-121123.trans.txt").unlink()
    with pytest.raises(CorpusError, match=r"84-121123.trans.txt: missing transcript file; the 1 .flac files"):
        _prepare(librispeech.read_subset, root / "LibriSpeech", tmp_path / "data")


def test_librispeech_missing_subset(tmp_path, capsys):
    # main() sets up logging on stderr (replacing pytest's caplog handler), so read stderr.
    root = _ls_copy(tmp_path)
    rc = prepare_corpus.main(["--corpus", "librispeech", "--datadir", str(root), "--out", str(tmp_path / "data"),
                              "--train_subsets", "train-clean-100,train-clean-360", "--rl_pool_utts", "1"])
    assert rc == 1
    assert "train-clean-360: no such directory (LibriSpeech subset 'train-clean-360'); download and extract it " \
           "(local/download.sh --subsets train-clean-360)" in capsys.readouterr().err
    rc = prepare_corpus.main(["--corpus", "librispeech", "--datadir", str(root), "--train_subsets", "train-clean-10"])
    assert rc == 1 and "['train-clean-10'] not librispeech subset(s)" in capsys.readouterr().err


# ---- AISHELL-1 ----------------------------------------------------------------------------------------------

def test_aishell_normalisation():
    assert aishell.normalize_text("而 对 楼市 ，ＡＢＣ ｘ１。") == "而对楼市abcx1"
    assert aishell.normalize_text("“限购”！ 【好】") == "限购好"


def test_aishell_prepare(tmp_path, capsys):
    root = make_aishell(tmp_path / "db")
    out = tmp_path / "data"
    rc = prepare_corpus.main(["--corpus", "aishell", "--datadir", str(tmp_path / "db"), "--out", str(out),
                              "--rl_pool_utts", "2", "--on_mismatch", "skip"])
    assert rc == 0
    err = capsys.readouterr().err
    assert "skipped 1 utterance(s): audio without a transcript line (first: " in err
    assert "BAC009S0002W0999.wav" in err, "the official release's untranscribed wavs are counted, by name"
    for s in ("train", "rl_pool", "dev", "test"):
        _valid(out / s)
    train = read_table(str(out / "train/text")) | read_table(str(out / "rl_pool/text"))
    assert len(train) == 3 * 4
    # Speaker-prefixed ids; the word segmentation, full-width letters and punctuation are gone.
    first = train["S0002-BAC009S0002W0121"]
    assert " " not in first and first.endswith("abc好") and "，" not in first
    assert read_table(str(out / "test/utt2spk"))["S0765-BAC009S0765W0122"] == "S0765"
    assert read_table(str(out / "dev/wav.scp"))["S0724-BAC009S0724W0121"] == \
        str(root / "data_aishell/wav/dev/S0724/BAC009S0724W0121.wav")
    # Default policy: the untranscribed wav is an error that names it and the way out.
    with pytest.raises(CorpusError, match=r"BAC009S0002W0999.wav: audio without a transcript line; "
                                          r".*aishell_transcript_v0.8.txt has no line for BAC009S0002W0999"):
        _prepare(aishell.read_subset, root / "data_aishell", tmp_path / "d2", train=["train"], dev=["dev"],
                 test=["test"])


def test_aishell_bad_transcript(tmp_path):
    root = make_aishell(tmp_path / "db", untranscribed=False)
    t = root / "data_aishell/transcript/aishell_transcript_v0.8.txt"
    lines = t.read_text(encoding="utf-8").splitlines()
    t.write_text("\n".join(lines[:3] + ["BAC009S0002W0500"] + lines[3:]) + "\n", encoding="utf-8")
    kw = dict(train=["train"], dev=["dev"], test=["test"])
    with pytest.raises(CorpusError, match=r"aishell_transcript_v0.8.txt:4: malformed line 'BAC009S0002W0500'; "
                                          r"expected '<utterance-id> <text>'"):
        _prepare(aishell.read_subset, root / "data_aishell", tmp_path / "d", **kw)
    t.write_text("\n".join(lines + [lines[1]]) + "\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=rf"v0.8.txt:{len(lines) + 1}: utterance \S+ is transcribed twice "
                                          r"\(first on line 2\)"):
        _prepare(aishell.read_subset, root / "data_aishell", tmp_path / "d", **kw)


def test_aishell_unextracted_speaker_archives(tmp_path):
    (tmp_path / "data_aishell/wav").mkdir(parents=True)
    (tmp_path / "data_aishell/wav/S0002.tar.gz").write_bytes(b"")
    (tmp_path / "data_aishell/transcript").mkdir()
    (tmp_path / "data_aishell/transcript/aishell_transcript_v0.8.txt").write_text("BAC009S0002W0121 好\n")
    with pytest.raises(CorpusError, match=r"wav/train: no such directory, but .* holds the per-speaker archives: "
                                          r"extract them first"):
        aishell.read_subset(str(tmp_path / "data_aishell"), "train", Problems("error"))


# ---- LibriTTS ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tts_root(tmp_path_factory):
    return make_libritts(tmp_path_factory.mktemp("tts"))


def test_libritts_prepare(tts_root, tmp_path):
    out = tmp_path / "data"
    rc = prepare_corpus.main(["--corpus", "libritts", "--datadir", str(tts_root), "--out", str(out),
                              "--rl_pool_utts", "2"])
    assert rc == 0
    for s in ("train", "rl_pool", "dev", "test_clean"):
        _valid(out / s)
    text = read_table(str(out / "test_clean/text"))
    # Ids '<spk>-<official id>': '19_198_...' alone would sort after '190_...' while speaker 19 sorts before 190.
    assert text["1089-1089_134686_000001_000001"].endswith(", MR SMITH HE SAID".replace(",", "")), text
    assert all(t == t.upper() and "," not in t and "\u201c" not in t for t in text.values())
    wav = read_table(str(out / "dev/wav.scp"))["84-84_121123_000000_000000"]
    assert wav.endswith("LibriTTS/dev-clean/84/121123/84_121123_000000_000000.wav")
    assert read_table(str(out / "dev/utt2dur"))["84-84_121123_000000_000000"] == "0.600"


@pytest.mark.parametrize("form,expect", [("normalized", "\u201c"), ("original", "(1894).")])
def test_libritts_text_forms(tts_root, form, expect):
    utts = libritts.make_reader(form)(str(tts_root / "LibriTTS"), "dev-clean", Problems("error"))
    assert utts and all(expect in u.text for u in utts)


def test_libritts_asr_text():
    assert libritts.asr_text("\u201cMr. Smith\u2019s twenty-one cats,\u201d she said.") == \
        "MR SMITH'S TWENTY ONE CATS SHE SAID"


def test_libritts_bad_input(tmp_path):
    root = make_libritts(tmp_path / "db", utts_per_chapter=2)
    d = root / "LibriTTS/dev-clean/84/121123"
    read = libritts.make_reader("asr")
    (d / "84_121123_000000_000001.normalized.txt").unlink()
    with pytest.raises(CorpusError, match=r"84_121123_000000_000001.wav: audio without .normalized.txt; restore"):
        read(str(root / "LibriTTS"), "dev-clean", Problems("error"))
    problems = Problems("skip")
    assert len(read(str(root / "LibriTTS"), "dev-clean", problems)) == 2 + 1
    assert problems.counts == {"audio without .normalized.txt": 1}
    (d / "84_121123_000000_000000.normalized.txt").write_text(" ... \n")
    with pytest.raises(CorpusError, match=r"84_121123_000000_000000.normalized.txt: empty text"):
        read(str(root / "LibriTTS"), "dev-clean", Problems("error"))
    (d / "84_121123_000000_000000.normalized.txt").write_text("One.\nTwo.\n")
    with pytest.raises(CorpusError, match=r"normalized.txt: 2 lines of text; a LibriTTS text file holds one sentence"):
        read(str(root / "LibriTTS"), "dev-clean", Problems("error"))
    (d / "84_121123_000000_000000.normalized.txt").write_bytes(b"caf\xe9\n")
    with pytest.raises(CorpusError, match=r"normalized.txt: not valid UTF-8"):
        read(str(root / "LibriTTS"), "dev-clean", Problems("error"))
    (d / "84_121123_000000_000000.normalized.txt").rename(d / "85_121123_000000_000000.normalized.txt")
    with pytest.raises(CorpusError, match=r"85_121123_000000_000000.normalized.txt: malformed file name: expected "
                                          r"84_121123_<paragraph>_<sentence>"):
        read(str(root / "LibriTTS"), "dev-clean", Problems("error"))


# ---- shared rules -----------------------------------------------------------------------------------------

def test_speaker_prefixed():
    assert speaker_prefixed("103", "103-1240-0000", "x") == "103-1240-0000"
    assert speaker_prefixed("19", "19_198_000000_000000", "x") == "19-19_198_000000_000000"
    with pytest.raises(CorpusError, match=r"dir/a-b: speaker id 'a-b' has characters"):
        speaker_prefixed("a-b", "u1", "dir/a-b")
    with pytest.raises(CorpusError, match=r"utterance id 'u 1' has characters"):
        speaker_prefixed("a", "u 1", "f")


def test_hold_out_is_disjoint_and_bounded():
    utts = [Utterance(f"s{i % 3}-u{i:02d}", f"s{i % 3}", "x.wav", "t") for i in range(20)]
    kept, held = hold_out(list(reversed(utts)), 5, seed=3)
    assert len(held) == 5 and {u.utt for u in kept} | {u.utt for u in held} == {u.utt for u in utts}
    assert hold_out(utts, 5, seed=3) == (kept, held), "independent of the input order"
    with pytest.raises(CorpusError, match=r"rl_pool_utts=20 would leave no training data: .* only 20 utterances"):
        hold_out(utts, 20, seed=0)


def test_prepare_rejects_set_name_clash_and_duplicates(ls_root, tmp_path):
    root = ls_root / "LibriSpeech"
    with pytest.raises(CorpusError, match=r"data dir name\(s\) \['test_clean'\] that another set already uses"):
        _prepare(librispeech.read_subset, root, tmp_path / "d", test=["test-clean", "test-clean"])
    with pytest.raises(CorpusError, match=r"utterance id '\S+' occurs twice .* a subset is probably listed twice"):
        _prepare(librispeech.read_subset, root, tmp_path / "d", train=["train-clean-100", "train-clean-100"])


def test_write_data_dir_reports_unreadable_audio(tmp_path):
    bad = tmp_path / "x.wav"
    bad.write_bytes(b"RIFF....WAVEjunk")
    with pytest.raises(CorpusError, match=r"utterance s-1: .*x.wav"):
        write_data_dir(str(tmp_path / "d"), [Utterance("s-1", "s", str(bad), "t")])
    with pytest.raises(CorpusError, match=r"utterance s-1: .*missing.wav: no such file"):
        write_data_dir(str(tmp_path / "d"), [Utterance("s-1", "s", str(tmp_path / "missing.wav"), "t")])
