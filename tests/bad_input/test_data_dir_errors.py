"""Bad data dirs through utils/validate_data_dir.sh: one test per bad input, each checking the exit status
and that the message names the file, the line, and a fix (the contract recipes copied from Kaldi rely on)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import soundfile

VALIDATE = Path(__file__).resolve().parents[2] / "utils" / "validate_data_dir.sh"
UTTS = [("s1-a", "s1", "hello world"), ("s1-b", "s1", "good morning"), ("s2-a", "s2", "foo bar")]


def make_dir(tmp_path: Path) -> Path:
    """A valid dir: 3 utterances of 2 speakers, 0.1 s of audio each."""
    d = tmp_path / "data"
    d.mkdir()
    for u, _, _ in UTTS:
        soundfile.write(tmp_path / f"{u}.wav", np.zeros(1600, dtype="float32"), 16000)
    (d / "text").write_text("".join(f"{u} {t}\n" for u, _, t in UTTS))
    (d / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s, _ in UTTS))
    (d / "spk2utt").write_text("s1 s1-a s1-b\ns2 s2-a\n")
    (d / "wav.scp").write_text("".join(f"{u} {tmp_path}/{u}.wav\n" for u, _, _ in UTTS))
    return d


def validate(d: Path, *opts: str, rc: int) -> str:
    """Run the tool; check the exit status; return stderr (where every problem goes, prefixed with $0)."""
    r = subprocess.run([str(VALIDATE), "--no-feats", *opts, str(d)], capture_output=True, text=True)
    assert r.returncode == rc, (r.returncode, r.stdout, r.stderr)
    if rc == 1:
        assert r.stderr.startswith(f"{VALIDATE}: ERROR: ") or f"{VALIDATE}: ERROR: " in r.stderr, r.stderr
    return r.stderr


def assert_names(msg: str, location: str, *fix: str) -> None:
    assert location in msg, (location, msg)
    for f in fix:
        assert f in msg, (f, msg)


def test_valid_dir_exits_0(tmp_path):
    r = subprocess.run([str(VALIDATE), "--no-feats", "--check-audio", str(make_dir(tmp_path))],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "Successfully validated data-directory" in r.stdout and r.stderr == ""


def test_unsorted_file(tmp_path):
    d = make_dir(tmp_path)
    (d / "text").write_text("s1-b good morning\ns1-a hello world\ns2-a foo bar\n")
    msg = validate(d, rc=1)
    assert_names(msg, f"{d}/text:2: not sorted: key 's1-a' comes after 's1-b' (line 1)",
                 f"LC_ALL=C sort -k1,1 {d}/text -o {d}/text", "utils/fix_data_dir.sh")


def test_duplicate_id(tmp_path):
    d = make_dir(tmp_path)
    (d / "wav.scp").write_text((d / "wav.scp").read_text().replace("s1-b", "s1-a"))
    assert_names(validate(d, rc=1), f"{d}/wav.scp:2: duplicate key 's1-a' (first on line 1)", "utils/fix_data_dir.sh")


def test_utterance_in_text_but_not_in_wav_scp(tmp_path):
    d = make_dir(tmp_path)
    (d / "wav.scp").write_text("".join(f"{u} {tmp_path}/{u}.wav\n" for u, _, _ in UTTS[:2]))
    msg = validate(d, rc=1)
    assert_names(msg, f"{d}/wav.scp: utterance ids must equal those of {d}/utt2spk", f"-s2-a  ({d}/utt2spk:3)",
                 "1 of utt2spk missing here", f"run utils/fix_data_dir.sh {d}")
    (d / "text").write_text((d / "text").read_text() + "s3-a extra\n")  # and one in text only
    assert_names(validate(d, rc=1), f"{d}/text:4: utterance ids must equal", f"+s3-a  ({d}/text:4)")


def test_crlf_line_endings(tmp_path):
    d = make_dir(tmp_path)
    (d / "text").write_bytes((d / "text").read_bytes().replace(b"\n", b"\r\n"))
    msg = validate(d, rc=1)
    assert_names(msg, f"{d}/text:1: carriage return (Windows CRLF line ending) (also on lines 2, 3)",
                 f"sed -i 's/\\r$//' {d}/text")
    assert msg.count("ERROR") == 1  # one message for the file, not one per line


def test_non_utf8_text(tmp_path):
    d = make_dir(tmp_path)
    (d / "text").write_bytes(b"s1-a hello world\ns1-b caf\xe9\ns2-a foo bar\n")
    assert_names(validate(d, rc=1), f"{d}/text:2: not valid UTF-8 (byte 0xe9 at column 9)", "iconv -f latin1 -t utf-8")


def test_empty_transcripts_are_counted(tmp_path):
    d = make_dir(tmp_path)
    (d / "text").write_text("s1-a\ns1-b   \ns2-a foo bar\n")
    msg = validate(d, rc=0)
    assert_names(msg, f"WARNING: {d}/text:1: 2 utterance(s) have an empty transcript (first 's1-a') (also on line 2)",
                 "--drop-empty-text")
    assert_names(validate(d, "--no-empty-text", rc=1), f"ERROR: {d}/text:1: 2 utterance(s) have an empty transcript")


def test_segment_past_end_of_audio(tmp_path):
    d = make_dir(tmp_path)
    (d / "segments").write_text("s1-a s1-a 0 0.1\ns1-b s1-b 0.05 0.25\ns2-a s2-a 0 0.1\n")
    msg = validate(d, "--check-audio", rc=1)
    assert_names(msg, f"{d}/segments:2: segment 's1-b' ends at 0.25 s, past the end of recording 's1-b' "
                      f"(0.10 s long, {d}/wav.scp:2)", "correct the end time")
    validate(d, rc=0)  # without --check-audio the audio is not opened


def test_missing_audio_file(tmp_path):
    d = make_dir(tmp_path)
    (tmp_path / "s1-b.wav").unlink()
    msg = validate(d, "--check-audio", rc=1)
    assert_names(msg, f"{d}/wav.scp:2: cannot read recording 's1-b'", f"{tmp_path}/s1-b.wav", "no such file",
                 "utils/fix_data_dir.sh")


def test_tilde_in_wav_scp(tmp_path):
    d = make_dir(tmp_path)
    (d / "wav.scp").write_text(f"s1-a ~/s1-a.wav\ns1-b {tmp_path}/s1-b.wav\ns2-a {tmp_path}/s2-a.wav~\n")
    assert_names(validate(d, rc=1), f"{d}/wav.scp:1: contains '~'", "(also on line 3)", "absolute path")


def test_utt2spk_with_three_fields(tmp_path):
    d = make_dir(tmp_path)
    (d / "utt2spk").write_text("s1-a s1\ns1-b s1 extra\ns2-a s2\n")
    assert_names(validate(d, rc=1), f"{d}/utt2spk:2: expected 2 fields '<utt> <spk>', got 3",
                 "correct or delete the line")


def test_spk2utt_not_matching(tmp_path):
    d = make_dir(tmp_path)
    (d / "spk2utt").write_text("s1 s1-a\ns2 s1-b s2-a\n")
    msg = validate(d, rc=1)
    assert_names(msg, f"{d}/spk2utt:2: does not match utt2spk: utterance 's1-b' is under speaker 's2' but "
                      f"{d}/utt2spk:2 says 's1'", f"utils/utt2spk_to_spk2utt.pl {d}/utt2spk > {d}/spk2utt")


def test_segment_end_not_after_start(tmp_path):
    d = make_dir(tmp_path)
    (d / "segments").write_text("s1-a s1-a 0 0.1\ns1-b s1-b 0.05 0.05\ns2-a s2-a 0.08 0.02\n")
    assert_names(validate(d, rc=1), f"{d}/segments:2: need 0 <= start < end, got start 0.05 end 0.05",
                 "(also on line 3)", "correct or delete the line")


def test_reserved_symbol_in_text(tmp_path):
    d = make_dir(tmp_path)
    (d / "text").write_text("s1-a <s> hello world\ns1-b good morning\ns2-a foo bar\n")
    assert_names(validate(d, rc=1), f"{d}/text:1: transcript of 's1-a' contains '<s>'", "remove or rename '<s>'")


def test_missing_trailing_newline(tmp_path):
    d = make_dir(tmp_path)
    (d / "utt2spk").write_text("s1-a s1\ns1-b s1\ns2-a s2")
    assert_names(validate(d, rc=1), f"{d}/utt2spk:3: the last line does not end in a newline", f"echo >> {d}/utt2spk")


def test_missing_utt2spk(tmp_path):
    d = make_dir(tmp_path)
    (d / "utt2spk").unlink()
    assert_names(validate(d, rc=1), f"{d}/utt2spk: no such file", "awk '{print $1, $1}'")


def test_non_printable_character(tmp_path):
    d = make_dir(tmp_path)
    (d / "text").write_text("s1-a hello\x01 world\ns1-b good morning\ns2-a foo bar\n")
    assert_names(validate(d, rc=1), f"{d}/text:1: non-printable character U+0001", "--non-print")
    validate(d, "--non-print", rc=0)


def test_usage_errors_exit_2(tmp_path):
    for args in ([], ["--bogus", str(tmp_path)], [str(tmp_path), "extra"]):
        r = subprocess.run([str(VALIDATE), *args], capture_output=True, text=True)
        assert r.returncode == 2 and re.search(rf"^{re.escape(str(VALIDATE))}: error: ", r.stderr, re.M), r.stderr
