"""audiorl.data.audio: every wav.scp form, resampling, channel mixing, segments, write_wav."""

import os
import shutil

import numpy as np
import pytest
import soundfile as sf

from audiorl.data.audio import DataDirAudio, load_wav_scp_entry, recording_num_samples, write_wav

needs_sox = pytest.mark.skipif(shutil.which("sox") is None, reason="sox not installed (Debian package sox)")


def sine(freq, sr, seconds, amp=0.5):
    t = np.arange(int(round(sr * seconds))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(x, sr):
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.argmax(spec) * sr / len(x)


@pytest.fixture
def wav16(tmp_path):
    x = sine(440, 16000, 0.5)
    p = str(tmp_path / "a.wav")
    write_wav(p, x, 16000)
    return p, x


def test_plain_path_is_float32_mono(wav16):
    p, x = wav16
    y, sr = load_wav_scp_entry(p)
    assert sr == 16000 and y.dtype == np.float32 and y.shape == x.shape
    assert np.max(np.abs(y - x)) < 1.5 / 32768  # PCM16 quantisation only


def test_flac_path(tmp_path):
    x = sine(300, 16000, 0.3)
    p = str(tmp_path / "a.flac")
    sf.write(p, x, 16000, subtype="PCM_16")
    y, sr = load_wav_scp_entry(p)
    assert sr == 16000 and len(y) == len(x)


@needs_sox
def test_sox_pipe_equals_file(wav16):
    p, _ = wav16
    ref, _ = load_wav_scp_entry(p)
    y, sr = load_wav_scp_entry(f"sox {p} -t wav - |")
    assert sr == 16000 and np.array_equal(y, ref)
    y2, _ = load_wav_scp_entry(f"cat {p} |  ")  # trailing blanks after '|' are fine
    assert np.array_equal(y2, ref)


@needs_sox
def test_sox_pipe_with_effects_and_resample(wav16):
    p, _ = wav16
    y, sr = load_wav_scp_entry(f"sox {p} -r 8000 -t wav - |", target_sr=16000)
    assert sr == 16000 and abs(len(y) - 8000) <= 2
    assert abs(peak_hz(y, sr) - 440) < 5


def test_kaldiio_ark_and_slice(tmp_path, wav16):
    import kaldiio

    p, _ = wav16
    ref, _ = load_wav_scp_entry(p)
    pcm = (ref * 32768).round().astype(np.int16)
    ark, scp = tmp_path / "wav.ark", tmp_path / "wav.scp"
    with kaldiio.WriteHelper(f"ark,scp:{ark},{scp}") as w:
        w("dummy", (16000, pcm[:100]))
        w("rec1", (16000, pcm))
    value = dict(line.split(maxsplit=1) for line in scp.read_text().splitlines())["rec1"]
    assert value.startswith(str(ark) + ":")
    y, sr = load_wav_scp_entry(value)
    assert sr == 16000 and np.array_equal(y, ref)
    ys, _ = load_wav_scp_entry(value + "[10:109]")  # kaldiio ranges are inclusive
    assert np.array_equal(ys, ref[10:110])
    n, sr2 = recording_num_samples(value)
    assert (n, sr2) == (len(ref), 16000)


@pytest.mark.parametrize("sr", [8000, 22050, 44100, 48000])
def test_resample_length_and_pitch(tmp_path, sr):
    x = sine(1000, sr, 0.5)
    p = str(tmp_path / f"s{sr}.wav")
    write_wav(p, x, sr)
    y, out_sr = load_wav_scp_entry(p, target_sr=16000)
    assert out_sr == 16000
    assert len(y) == int(np.ceil(len(x) * 16000 / sr))
    assert abs(peak_hz(y, 16000) - 1000) < 4
    assert 0.3 < np.sqrt(np.mean(y[200:-200] ** 2)) < 0.4  # rms of a 0.5 sine: 0.354, kept


def test_stereo_is_channel_average(tmp_path):
    left, right = sine(440, 16000, 0.2), sine(880, 16000, 0.2, amp=0.25)
    p = str(tmp_path / "st.wav")
    sf.write(p, np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    y, _ = load_wav_scp_entry(p)
    assert y.ndim == 1 and np.allclose(y, (left + right) / 2, atol=1e-6)


def test_uint8_wav_is_centred(tmp_path):
    x = sine(440, 8000, 0.1)
    p = str(tmp_path / "u8.wav")
    sf.write(p, x, 8000, subtype="PCM_U8")
    y, _ = load_wav_scp_entry(p)
    assert np.max(np.abs(y - x)) < 2 / 128


def test_recording_num_samples_plain_and_pipe(wav16):
    p, x = wav16
    assert recording_num_samples(p) == (len(x), 16000)
    assert recording_num_samples(f"cat {p} |") == (len(x), 16000)


def make_data_dir(tmp_path, with_segments=True):
    d = tmp_path / "data"
    d.mkdir()
    r1, r2 = sine(440, 16000, 2.0), sine(660, 8000, 1.0)
    write_wav(str(tmp_path / "r1.wav"), r1, 16000)
    write_wav(str(tmp_path / "r2.wav"), r2, 8000)
    (d / "wav.scp").write_text(f"r1 {tmp_path}/r1.wav\nr2 cat {tmp_path}/r2.wav |\n")
    if with_segments:
        (d / "segments").write_text("r1-a r1 0.00 0.50\nr1-b r1 0.50 1.25\nr1-c r1 1.50 -1\nr2-a r2 0.10 0.60\n")
    return str(d), r1, r2


def test_data_dir_segments(tmp_path):
    d, r1, r2 = make_data_dir(tmp_path)
    a = DataDirAudio(d)
    assert len(a) == 4 and list(a) == ["r1-a", "r1-b", "r1-c", "r2-a"]
    assert "r1-b" in a and "r1" not in a
    assert np.allclose(a["r1-b"], r1[8000:20000], atol=2 / 32768)  # PCM16 quantisation only
    assert len(a["r1-c"]) == 32000 - 24000  # end -1: to the end of the recording
    x, sr = a.load("r2-a")
    assert sr == 8000 and len(x) == 4000
    assert a.recording_of("r2-a") == ("r2", f"cat {tmp_path}/r2.wav |")
    assert a.where("r1-b").endswith("segments:2")


def test_data_dir_target_sr_and_no_segments(tmp_path):
    d, r1, r2 = make_data_dir(tmp_path, with_segments=False)
    a = DataDirAudio(d, target_sr=16000)
    assert list(a) == ["r1", "r2"]
    x, sr = a.load("r2")
    assert sr == 16000 and len(x) == 16000
    assert len(a["r1"]) == 32000


def test_data_dir_caches_last_recording(tmp_path, monkeypatch):
    import audiorl.data.audio as audio

    d, _, _ = make_data_dir(tmp_path)
    calls = []
    real = audio._load_native
    monkeypatch.setattr(audio, "_load_native", lambda v, w: calls.append(v) or real(v, w))
    a = DataDirAudio(d)
    for utt in a:
        a[utt]
    assert len(calls) == 2  # r1 once for its three segments, r2 once


def test_overshoot_within_tolerance_is_cut(tmp_path):
    d, r1, _ = make_data_dir(tmp_path)
    with open(os.path.join(d, "segments"), "a") as f:
        f.write("r1-z r1 1.90 2.10\n")
    a = DataDirAudio(d, max_overshoot=0.5)
    assert len(a["r1-z"]) == 32000 - 30400


def test_write_wav_is_pcm16_atomic_and_clips(tmp_path):
    p = str(tmp_path / "sub" / "o.wav")
    write_wav(p, np.array([0.0, 0.5, 1.5, -2.0], dtype=np.float32), 16000)
    info = sf.info(p)
    assert info.subtype == "PCM_16" and info.samplerate == 16000
    y, _ = sf.read(p, dtype="float32")
    assert y[2] > 0.99 and y[3] == -1.0  # clipped, not wrapped around
    assert os.listdir(tmp_path / "sub") == ["o.wav"]  # no temporary file left
