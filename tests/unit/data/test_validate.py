"""Unit tests of audiorl.data.validate: every rule, on tiny data dirs built in tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from audiorl.data.kaldi import DataDirError
from audiorl.data.validate import file_kind, scan_table, validate_data_dir

UTTS = [("s1-a", "s1", "hello world"), ("s1-b", "s1", "good morning"), ("s2-a", "s2", "foo bar")]


def make_dir(tmp_path, utts=UTTS, *, audio=True, samples=1600):
    """A valid data dir (text, utt2spk, spk2utt, wav.scp) with 0.1 s wavs; returns its path as str."""
    d = tmp_path / "data"
    (tmp_path / "wav").mkdir(exist_ok=True)
    d.mkdir()
    spk2utt: dict[str, list[str]] = {}
    for u, s, _ in utts:
        spk2utt.setdefault(s, []).append(u)
        if audio:
            soundfile.write(tmp_path / "wav" / f"{u}.wav", np.zeros(samples, dtype="float32"), 16000)
    write(d, "text", "".join(f"{u} {t}\n" for u, _, t in utts))
    write(d, "utt2spk", "".join(f"{u} {s}\n" for u, s, _ in utts))
    write(d, "spk2utt", "".join(f"{s} {' '.join(us)}\n" for s, us in sorted(spk2utt.items())))
    write(d, "wav.scp", "".join(f"{u} {tmp_path}/wav/{u}.wav\n" for u, _, _ in utts))
    return str(d)


def write(d, name, content: str | bytes) -> None:
    (Path(d) / name).write_bytes(content.encode() if isinstance(content, str) else content)


def check(d, **kw):
    kw.setdefault("no_feats", True)
    return validate_data_dir(d, **kw)


def only_error(rep, *needles):
    """Exactly one error, containing every needle."""
    assert len(rep.errors) == 1, rep.errors
    for n in needles:
        assert n in rep.errors[0], (n, rep.errors[0])
    return rep.errors[0]


def test_valid_dir_passes_with_counts(tmp_path):
    d = make_dir(tmp_path)
    rep = check(d, check_audio=True)
    assert rep.ok and rep.errors == [] and rep.warnings == []
    assert rep.counts == {"utterances": 3, "speakers": 2, "recordings": 3, "empty_text": 0, "recordings_read": 3}
    rep.raise_if_invalid()


def test_feats_wav_text_required_unless_opted_out(tmp_path):
    d = make_dir(tmp_path)
    only_error(validate_data_dir(d), "feats.scp: no such file", "--no-feats")
    for name, flag in (("wav.scp", "no_wav"), ("text", "no_text")):
        (tmp_path / "data" / name).rename(tmp_path / name)
        only_error(check(d), f"{name}: no such file", f"--{flag.replace('_', '-')}")
        assert check(d, **{flag: True}).ok
        (tmp_path / name).rename(tmp_path / "data" / name)


def test_missing_utt2spk_and_spk2utt(tmp_path):
    d = make_dir(tmp_path)
    (tmp_path / "data" / "spk2utt").unlink()
    only_error(check(d), "spk2utt: no such file", "utils/utt2spk_to_spk2utt.pl")
    (tmp_path / "data" / "utt2spk").unlink()
    rep = check(d)
    assert any("utt2spk: no such file" in e for e in rep.errors)
    with pytest.raises(DataDirError, match="utt2spk: no such file"):
        rep.raise_if_invalid()


def test_no_such_directory(tmp_path):
    only_error(check(str(tmp_path / "nope")), "no such directory")


def test_utt2spk_must_be_sorted_by_speaker(tmp_path):
    d = make_dir(tmp_path, [("a", "s2", "x y"), ("b", "s1", "x y")])
    only_error(check(d), "utt2spk:2:", "not sorted by speaker", "--no-spk-sort")
    assert check(d, no_spk_sort=True).ok


def test_single_speaker_is_a_warning(tmp_path):
    d = make_dir(tmp_path, [("a", "s1", "x"), ("b", "s1", "y")])
    rep = check(d)
    assert rep.ok and len(rep.warnings) == 1 and "one speaker 's1'" in rep.warnings[0]


def test_spk2utt_order_and_duplicates(tmp_path):
    d = make_dir(tmp_path)
    write(d, "spk2utt", "s1 s1-b s1-a\ns2 s2-a\n")
    only_error(check(d), "spk2utt:1:", "not sorted", "utt2spk_to_spk2utt.pl")
    write(d, "spk2utt", "s1 s1-a s1-b\ns2 s2-a s1-a\n")
    assert any("listed twice" in e for e in check(d).errors)


def test_exact_files_must_match_utterances(tmp_path):
    d = make_dir(tmp_path)
    for name, content in (("feats.scp", "s1-a f.ark:1\ns1-b f.ark:2\n"), ("utt2lang", "s1-a en\ns1-b en\n"),
                          ("utt2uniq", "s1-a a\ns1-b b\n"), ("vad.scp", "s1-a v:1\ns1-b v:2\n"),
                          ("utt2dur", "s1-a 1.0\ns1-b 2\n"), ("utt2num_frames", "s1-a 10\ns1-b 20\n")):
        write(d, name, content)
        err = only_error(check(d), f"{name}: utterance ids must equal", "-s2-a", "utt2spk:3", "fix_data_dir.sh")
        assert "1 of utt2spk missing here" in err
        (tmp_path / "data" / name).unlink()


def test_partial_diff_is_short(tmp_path):
    d = make_dir(tmp_path, [(f"u{i:03d}", f"u{i:03d}", "x") for i in range(20)], audio=False)
    write(d, "text", "")
    err = only_error(check(d), "text: utterance ids must equal", "20 of utt2spk missing here", "  ...")
    assert err.count("\n  -") == 5


def test_speaker_files(tmp_path):
    d = make_dir(tmp_path)
    write(d, "spk2gender", "s1 m\ns2 f\n")
    assert check(d).ok
    write(d, "spk2gender", "s1 m\ns2 x\n")
    only_error(check(d), "spk2gender:2:", "'<spk> m' or '<spk> f'")
    write(d, "spk2gender", "s1 m\n")
    only_error(check(d), "spk2gender: speaker ids must equal", "-s2")
    (tmp_path / "data" / "spk2gender").unlink()
    write(d, "cmvn.scp", "s1 c.ark:1\ns3 c.ark:2\n")
    only_error(check(d), "cmvn.scp:2: speaker ids must equal", "+s3")
    (tmp_path / "data" / "cmvn.scp").unlink()
    write(d, "spk2warp", "s1 1.1\ns2 1.6\n")
    only_error(check(d), "spk2warp:2:", "between 0.5 and 1.5")


@pytest.mark.parametrize("name,value,needle", [
    ("utt2dur", "0", "duration > 0"), ("utt2dur", "-1.5", "duration > 0"), ("utt2dur", "abc", "duration > 0"),
    ("utt2dur", "1 2", "duration > 0"), ("utt2dur", "nan", "duration > 0"),
    ("utt2num_frames", "10.5", "integer > 0"), ("utt2num_frames", "0", "integer > 0"),
    ("utt2num_frames", "-3", "integer > 0"), ("utt2warp", "0.2", "between 0.5 and 1.5"),
    ("utt2lang", "en us", "expected 2 fields"), ("feats.scp", "", "no value"),
])
def test_bad_values(tmp_path, name, value, needle):
    d = make_dir(tmp_path)
    good = {"utt2dur": "1.5", "utt2num_frames": "10", "utt2warp": "1.0", "utt2lang": "en", "feats.scp": "f.ark:1"}[name]
    write(d, name, f"s1-a {good}\ns1-b {value}\ns2-a {good}\n")
    only_error(check(d), f"{name}:2:", needle)


def test_segments_rules(tmp_path):
    d = make_dir(tmp_path)
    write(d, "wav.scp", f"rec1 {tmp_path}/wav/s1-a.wav\nrec2 {tmp_path}/wav/s1-b.wav\n")
    write(d, "segments", "s1-a rec1 0 0.05\ns1-b rec1 0.05 0.1\ns2-a rec2 0.00 0.1\n")
    write(d, "reco2file_and_channel", "rec1 rec1 A\nrec2 rec2 B\n")
    write(d, "reco2dur", "rec1 0.1\nrec2 0.1\n")
    assert check(d, check_audio=True).ok
    write(d, "segments", "s1-a rec1 0 0.05\ns1-b rec1 0.05\ns2-a rec2 0.3 0.1\n")
    rep = check(d)
    assert any("segments:2: expected 4 fields" in e for e in rep.errors)
    assert any("segments:3: need 0 <= start < end" in e for e in rep.errors)
    for bad in ("-0.1 0.5", "0.5 0.5", "0 -1", "a b"):
        write(d, "segments", f"s1-a rec1 0 0.05\ns1-b rec1 {bad}\ns2-a rec2 0 0.1\n")
        only_error(check(d), "segments:2:")


def test_segment_recordings_must_match_wav_scp(tmp_path):
    d = make_dir(tmp_path)
    write(d, "wav.scp", f"rec1 {tmp_path}/wav/s1-a.wav\nrec3 {tmp_path}/wav/s1-b.wav\n")
    write(d, "segments", "s1-a rec1 0 0.05\ns1-b rec1 0.05 0.1\ns2-a rec2 0.0 0.1\n")
    err = only_error(check(d), "wav.scp:2: recording ids must equal those of", "-rec2", "+rec3", "segments:3")
    assert "fix_data_dir.sh" in err
    (tmp_path / "data" / "wav.scp").unlink()
    assert any("segments exists but wav.scp does not" in e for e in check(d, no_wav=True).errors)


def test_reco2file_and_channel(tmp_path):
    d = make_dir(tmp_path)
    write(d, "reco2file_and_channel", "s1-a f A\ns1-b f C\ns2-a g 1\n")
    rep = check(d)
    only_error(rep, "reco2file_and_channel:2:", "channel A or B")
    assert any("reco2file_and_channel:3: channel is '1'" in w for w in rep.warnings)


def test_segment_past_end_of_audio_with_tolerance(tmp_path):
    d = make_dir(tmp_path)  # every recording is 0.1 s
    write(d, "segments", "s1-a s1-a 0 0.15\ns1-b s1-b 0 0.1\ns2-a s2-a 0 0.1\n")
    assert check(d, check_audio=True).ok  # 0.05 s over: within Kaldi's 0.1 s
    write(d, "segments", "s1-a s1-a 0 0.15\ns1-b s1-b 0 0.3\ns2-a s2-a 0 0.1\n")
    only_error(check(d, check_audio=True), "segments:2:", "ends at 0.30 s", "0.10 s long", "wav.scp:2")
    assert check(d).ok  # the audio is only opened with check_audio


def test_check_audio_missing_empty_and_stale(tmp_path):
    d = make_dir(tmp_path)
    (tmp_path / "wav" / "s1-b.wav").unlink()
    soundfile.write(tmp_path / "wav" / "s2-a.wav", np.zeros(0, dtype="float32"), 16000)
    rep = check(d, check_audio=True)
    err = only_error(rep, f"{d}/wav.scp:2: cannot read recording 's1-b'", "no such file", "(also on line 3)")
    assert err.startswith(f"{d}/wav.scp:2:")
    (tmp_path / "x").mkdir()
    d2 = make_dir(tmp_path / "x")
    write(d2, "utt2dur", "s1-a 0.1\ns1-b 0.5\ns2-a 0.1\n")
    rep = check(d2, check_audio=True)
    assert rep.ok and any("utt2dur:2:" in w and "audio is 0.10 s" in w for w in rep.warnings)


def test_text_rules(tmp_path):
    d = make_dir(tmp_path)
    write(d, "text", "s1-a hello </s>\ns1-b #0 x\ns2-a <s>\n")
    rep = check(d)
    assert len(rep.errors) == 3 and all("reserved" in e for e in rep.errors)
    write(d, "text", "s1-a hello\x07 world\ns1-b ok\ns2-a ok\n")
    only_error(check(d), "text:1:", "non-printable character U+0007", "--non-print")
    assert check(d, non_print=True).ok
    write(d, "text", "s1-a hello\u00a0world\ns1-b \u0928\u094d\u200d\u0928 ok\ns2-a ok\n")  # NBSP bad, ZWJ fine
    only_error(check(d, non_print=True), "text:1:", "U+00A0", "replace it with a space")


def test_empty_transcripts_are_counted(tmp_path):
    d = make_dir(tmp_path)
    write(d, "text", "s1-a\ns1-b   \ns2-a ok\n")
    rep = check(d)
    assert rep.ok and rep.counts["empty_text"] == 2
    assert len(rep.warnings) == 1 and "2 utterance(s) have an empty transcript" in rep.warnings[0]
    only_error(check(d, no_empty_text=True), "text:1:", "(also on line 2)", "--drop-empty-text")


def test_format_rules_in_any_file(tmp_path):
    d = make_dir(tmp_path)
    write(d, "utt2spk", b"\xef\xbb\xbfs1-a s1\ns1-b s1\ns2-a s2\n")
    only_error(check(d), "utt2spk:1:", "byte-order mark")
    write(d, "utt2spk", "s1-a s1\n\ns1-b s1\ns2-a s2\n")
    only_error(check(d), "utt2spk:2: empty line")
    write(d, "utt2spk", "s1-a s1\ns1-b s1\ns2-a s2\n")
    write(d, "wav.scp", "".join(f"{u} {tmp_path}/wav/{u}.wav\r\n" for u, _, _ in UTTS))
    err = only_error(check(d), "wav.scp:1: carriage return", "(also on lines 2, 3)", "sed -i")
    assert err.count("wav.scp") == 2  # one message for the whole file


def test_free_files(tmp_path):
    d = make_dir(tmp_path)
    write(d, "keywords", "s1-a hello\ns2-a\n")  # a subset, with an empty value
    write(d, "utt2category", "s1-b read\n")
    write(d, "spk2age", "s2 40\n")
    write(d, "notes.md", "whatever\n")  # not a table: ignored
    assert check(d).ok
    write(d, "keywords", "s2-a x\ns1-a y\n")
    only_error(check(d), "keywords:2: not sorted")
    write(d, "keywords", "s1-a x\ns1-a y\n")
    only_error(check(d), "keywords:2: duplicate key 's1-a'")
    write(d, "keywords", "s1-a x\nzz y\n")
    only_error(check(d), "keywords:2: utterance ids must be a subset", "+zz")
    (tmp_path / "data" / "keywords").unlink()
    write(d, "spk2age", "s9 40\n")
    only_error(check(d), "spk2age:1: speaker ids must be a subset", "+s9")


def test_file_kind_and_scan():
    assert file_kind("text") == ("utt", True) and file_kind("wav.scp") == ("reco", True)
    assert file_kind("keywords") == ("utt", False) and file_kind("spk1.scp") == ("utt", False)
    assert file_kind("spk2age") == ("spk", False) and file_kind("reco2vol") == ("reco", False)
    assert file_kind("text~") is None and file_kind(".backup") is None and file_kind("frame_shift") is None


def test_scan_table_records_problems(tmp_path):
    p = tmp_path / "t"
    p.write_bytes(b"a  x y\r\nb\t\xe9\n\nc z")
    st = scan_table(str(p))
    assert [(x.key, x.value, x.lineno) for x in st.lines][::2] == [("a", "x y", 1), ("c", "z", 4)]
    assert st.cr_lines == [1] and st.empty_lines == [3] and st.no_final_newline and st.bad_utf8[0][0] == 2
