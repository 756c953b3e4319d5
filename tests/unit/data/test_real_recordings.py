"""Real human recordings (Debian packages) through the loader and fbank: shapes, finite values.

Synthetic sine/noise tests cannot show problems specific to real files (headers, levels, silence).
"""

import glob
import os
import shutil

import numpy as np
import pytest
import torch

from audiorl.data.audio import DataDirAudio, load_wav_scp_entry, recording_num_samples
from audiorl.data.features import fbank, num_frames

LIBRIVOX = "/usr/share/pocketsphinx/test/data/librivox"
ALSA = "/usr/share/sounds/alsa/Front_Center.wav"

needs_pocketsphinx = pytest.mark.skipif(
    not glob.glob(f"{LIBRIVOX}/*.wav"),
    reason="needs Debian package pocketsphinx-testdata (apt-get install pocketsphinx-testdata)")
needs_alsa = pytest.mark.skipif(
    not os.path.isfile(ALSA), reason="needs Debian package alsa-utils (/usr/share/sounds/alsa/*.wav)")


def check_speech(x, sr, seconds):
    assert x.dtype == np.float32 and x.ndim == 1 and np.isfinite(x).all()
    assert abs(len(x) / sr - seconds) < 0.01
    assert np.abs(x).max() <= 1.0 and np.sqrt(np.mean(x ** 2)) > 0.005  # real signal, not silence
    f = fbank(x, sr=sr)
    assert f.shape == (num_frames(len(x), sr=sr), 80) and torch.isfinite(f).all()
    # Speech varies over time: loud frames well above quiet ones (log energy per frame).
    energy = f.exp().sum(1).log()
    assert float(energy.max() - energy.min()) > 3.0
    return f


@needs_pocketsphinx
def test_librivox_data_dir():
    wavs = sorted(glob.glob(f"{LIBRIVOX}/*.wav"))
    assert len(wavs) == 5
    n, sr = recording_num_samples(wavs[0])
    assert sr == 16000 and n > 16000
    x, sr2 = load_wav_scp_entry(wavs[0])
    assert sr2 == 16000 and len(x) == n
    check_speech(x, sr2, n / 16000)


@needs_pocketsphinx
def test_librivox_via_data_dir_with_segments(tmp_path):
    wavs = sorted(glob.glob(f"{LIBRIVOX}/*.wav"))
    d = tmp_path / "data"
    d.mkdir()
    (d / "wav.scp").write_text("".join(f"rec{i} {w}\n" for i, w in enumerate(wavs)))
    (d / "segments").write_text("rec0-a rec0 0.0 1.5\nrec0-b rec0 1.5 3.0\nrec1-a rec1 0.2 -1\n")
    a = DataDirAudio(str(d), target_sr=8000)  # downsampling a real recording
    assert [len(a[u]) for u in ("rec0-a", "rec0-b")] == [12000, 12000]
    x, sr = a.load("rec1-a")
    n1, _ = recording_num_samples(wavs[1])
    assert sr == 8000 and abs(len(x) - (n1 - 3200) / 2) <= 1
    assert torch.isfinite(fbank(x, sr=8000)).all()


@needs_alsa
def test_alsa_48k_resampled_to_16k():
    n48, sr = recording_num_samples(ALSA)
    assert sr == 48000
    x, sr16 = load_wav_scp_entry(ALSA, target_sr=16000)
    assert sr16 == 16000 and len(x) == -(-n48 // 3)
    check_speech(x, 16000, n48 / 48000)


@needs_alsa
@pytest.mark.skipif(shutil.which("sox") is None, reason="needs Debian package sox")
def test_alsa_resampling_agrees_with_sox():
    # Two independent resamplers on real speech: torchaudio's sinc vs sox's; they should nearly agree.
    ours, _ = load_wav_scp_entry(ALSA, target_sr=16000)
    theirs, sr = load_wav_scp_entry(f"sox {ALSA} -r 16000 -b 16 -t wav - |")
    assert sr == 16000 and abs(len(ours) - len(theirs)) <= 1
    n = min(len(ours), len(theirs))
    corr = np.corrcoef(ours[:n], theirs[:n])[0, 1]
    assert corr > 0.99, corr
