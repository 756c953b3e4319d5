"""Bad audio in a data dir: each error names the wav.scp/segments file and line, the cause and the fix."""

import shutil

import numpy as np
import pytest
import soundfile as sf

from audiorl.data.audio import AudioError, DataDirAudio, load_wav_scp_entry, recording_num_samples, write_wav

WHERE = "data/x/wav.scp:12"


def good_wav(path, seconds=0.5, sr=16000):
    write_wav(str(path), 0.3 * np.sin(np.arange(int(sr * seconds)) * 0.1), sr)
    return str(path)


def err(value, **kw):
    with pytest.raises(AudioError) as e:
        load_wav_scp_entry(value, where=WHERE, **kw)
    return str(e.value)


def test_missing_file(tmp_path):
    m = err(str(tmp_path / "nope.wav"))
    assert m.startswith(WHERE + ": ") and "nope.wav" in m and "no such file" in m and "fix the path" in m


def test_missing_file_num_samples(tmp_path):
    with pytest.raises(AudioError, match=r"data/x/wav.scp:12: .*nope.wav: no such file"):
        recording_num_samples(str(tmp_path / "nope.wav"), where=WHERE)


def test_truncated_wav(tmp_path):
    p = good_wav(tmp_path / "t.wav")
    data = open(p, "rb").read()
    open(p, "wb").write(data[: len(data) // 2])
    m = err(p)
    assert WHERE in m and "t.wav" in m and "truncated" in m and "re-create" in m
    with pytest.raises(AudioError, match="truncated"):
        recording_num_samples(p, where=WHERE)  # the cheap path checks it too


def test_corrupt_file(tmp_path):
    p = tmp_path / "junk.wav"
    p.write_bytes(b"this is not audio at all " * 40)
    m = err(str(p))
    assert WHERE in m and "junk.wav" in m and "cannot decode" in m and "sox --i" in m


def test_empty_file(tmp_path):
    p = tmp_path / "empty.wav"
    p.write_bytes(b"")
    m = err(str(p))
    assert WHERE in m and "empty.wav" in m and "cannot decode" in m


def test_zero_length_audio(tmp_path):
    p = str(tmp_path / "zero.wav")
    sf.write(p, np.zeros(0, dtype=np.float32), 16000, subtype="PCM_16")
    m = err(p)
    assert WHERE in m and "zero.wav" in m and "zero-length" in m and "remove it from wav.scp" in m


def test_failing_pipe_reports_status_and_stderr(tmp_path):
    m = err("echo 'sox FAIL: cannot open missing.wav' >&2; exit 3 |")
    assert WHERE in m and "exit status 3" in m and "cannot open missing.wav" in m and "run the command by hand" in m


@pytest.mark.skipif(shutil.which("sox") is None, reason="sox not installed (Debian package sox)")
def test_failing_sox_pipe(tmp_path):
    m = err(f"sox {tmp_path}/missing.wav -t wav - |")
    assert WHERE in m and "exit status" in m and "missing.wav" in m


def test_pipe_failure_inside_pipeline_is_caught(tmp_path):
    # pipefail: the failing first command must not hide behind a succeeding `cat`.
    m = err(f"cat {tmp_path}/missing.wav | cat |")
    assert "exit status 1" in m and "missing.wav" in m


def test_pipe_without_output(tmp_path):
    m = err("true |")
    assert WHERE in m and "wrote no audio" in m


def test_ark_offset_pointing_at_garbage(tmp_path):
    p = tmp_path / "x.ark"
    p.write_bytes(b"utt1 \0BFM garbage garbage garbage")
    m = err(f"{p}:5")
    assert WHERE in m and "x.ark:5" in m and "regenerate the archive" in m


def test_ark_missing(tmp_path):
    m = err(f"{tmp_path}/gone.ark:17")
    assert WHERE in m and "gone.ark" in m and "no such archive" in m


def test_ark_matrix_is_not_audio(tmp_path):
    import kaldiio

    ark, scp = tmp_path / "f.ark", tmp_path / "f.scp"
    with kaldiio.WriteHelper(f"ark,scp:{ark},{scp}") as w:
        w("u", np.zeros((3, 4), dtype=np.float32))
    value = scp.read_text().split()[1]
    m = err(value)
    assert "matrix, not audio" in m


def make_dir(tmp_path, segments):
    d = tmp_path / "data"
    d.mkdir()
    good_wav(tmp_path / "r1.wav", seconds=2.0)
    (d / "wav.scp").write_text(f"r1 {tmp_path}/r1.wav\nr2 {tmp_path}/missing.wav\n")
    (d / "segments").write_text(segments)
    return str(d)


def test_segment_past_end_of_audio(tmp_path):
    d = make_dir(tmp_path, "u1 r1 0.0 1.0\nu2 r1 1.5 2.7\n")
    a = DataDirAudio(d)
    assert len(a["u1"]) == 16000
    with pytest.raises(AudioError) as e:
        a["u2"]
    m = str(e.value)
    assert f"{d}/segments:2" in m and "u2" in m and "2.700" in m and "2.000 s long" in m and "fix the end time" in m
    assert f"{d}/wav.scp:1" in m


def test_segment_of_missing_recording_file_names_wav_scp_line(tmp_path):
    d = make_dir(tmp_path, "u1 r2 0.0 1.0\n")
    with pytest.raises(AudioError, match=rf"{d}/wav.scp:2: .*missing.wav: no such file"):
        DataDirAudio(d)["u1"]


def test_segment_unknown_recording(tmp_path):
    d = make_dir(tmp_path, "u1 r9 0.0 1.0\n")
    with pytest.raises(AudioError, match=rf"{d}/segments:1: recording 'r9' .* not in wav.scp"):
        DataDirAudio(d)


@pytest.mark.parametrize("line,msg", [("u1 r1 1.0 0.5", "start < end"), ("u1 r1 a b", "must be numbers"),
                                      ("u1 r1 0.0", "expected '<utt> <recording> <start> <end>'")])
def test_segment_bad_times(tmp_path, line, msg):
    d = make_dir(tmp_path, line + "\n")
    with pytest.raises(AudioError, match=msg) as e:
        DataDirAudio(d)
    assert f"{d}/segments:1" in str(e.value)


def test_duplicate_recording_id(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    (d / "wav.scp").write_text("r1 a.wav\nr1 b.wav\n")
    with pytest.raises(AudioError, match=r"wav.scp:2: duplicate recording id 'r1'"):
        DataDirAudio(str(d))


def test_missing_wav_scp(tmp_path):
    with pytest.raises(AudioError, match="no such file; a data dir needs a wav.scp"):
        DataDirAudio(str(tmp_path))
