"""TTS scoring metrics: MCD/DTW, duration ratio, F0 spread, SIM (resemblyzer), DNSMOS (speechmos), CLI.

Speech comes from espeak-ng and flite, synthesised once per module into a temporary directory.
SIM and DNSMOS tests skip (with the install hint) when the optional packages are missing.
"""

import importlib.util
import json
import os
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from audiorl.eval.mcd import dtw, duration_ratio, f0_std, f0_track, mcd, trim_silence

TEXT_A = "the quick brown fox jumps over the lazy dog near the river bank"
TEXT_B = "please call stella and ask her to bring these things with her from the store"
HINT = "pip install -r tools/requirements-tts.txt"


def _have(*mods):
    return all(importlib.util.find_spec(m) is not None for m in mods)


@pytest.fixture(scope="module")
def wavs(tmp_path_factory):
    """{name: path}: espeak-ng (22.05 kHz) and flite slt/kal16 (16 kHz) renderings of two texts."""
    if not (shutil.which("espeak-ng") and shutil.which("flite")):
        pytest.skip("espeak-ng and flite are needed (apt-get install espeak-ng flite)")
    d = tmp_path_factory.mktemp("tts")
    cmds = {
        "eA": ["espeak-ng", "-w", "{o}", TEXT_A], "eB": ["espeak-ng", "-w", "{o}", TEXT_B],
        "eA_slow": ["espeak-ng", "-s", "130", "-w", "{o}", TEXT_A],
        "fA": ["flite", "-voice", "kal16", "-t", TEXT_A, "-o", "{o}"],
        "fB": ["flite", "-voice", "kal16", "-t", TEXT_B, "-o", "{o}"],
    }
    out = {}
    for k, c in cmds.items():
        p = str(d / f"{k}.wav")
        subprocess.run([a.replace("{o}", p) for a in c], check=True, capture_output=True)
        out[k] = p
    return out


def _load(p):
    return sf.read(p, dtype="float32")


# ---------------------------------------------------------------- MCD / DTW / duration / F0

def test_mcd_identical_is_zero_and_grows_with_distortion(wavs):
    x, sr = _load(wavs["eA"])
    assert mcd(x, x, sr) < 1e-3
    rng = np.random.default_rng(0)
    vals = [mcd(x + rng.normal(0, s, len(x)).astype(np.float32), x, sr) for s in (0.002, 0.01, 0.05)]
    assert 0 < vals[0] < vals[1] < vals[2], vals
    # Time-stretch by the same voice (DTW absorbs it) is much closer than another engine/voice.
    slow, sr_s = _load(wavs["eA_slow"])
    other, sr_o = _load(wavs["fA"])
    assert mcd(slow, x, sr_s, sr) + 2.0 < mcd(other, x, sr_o, sr)


def _dtw_slow(a, b):
    n, m = len(a), len(b)
    D = np.full((n + 1, m + 1), np.inf)
    D[0, 0] = 0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            c = np.linalg.norm(a[i - 1] - b[j - 1])
            D[i, j] = c + min(D[i - 1, j - 1], D[i - 1, j], D[i, j - 1])
    return D[n, m]


def test_dtw_matches_reference_and_handles_different_lengths():
    rng = np.random.default_rng(1)
    for n, m in ((7, 11), (13, 4), (1, 5), (9, 9)):
        a, b = rng.normal(size=(n, 3)), rng.normal(size=(m, 3))
        total, pi, pj = dtw(a, b)
        assert total == pytest.approx(_dtw_slow(a, b), rel=1e-9)
        assert (pi[0], pj[0], pi[-1], pj[-1]) == (0, 0, n - 1, m - 1)
        assert np.all(np.diff(pi) >= 0) and np.all(np.diff(pj) >= 0) and np.all(np.diff(pi) + np.diff(pj) >= 1)
        cost = sum(np.linalg.norm(a[i] - b[j]) for i, j in zip(pi, pj))
        assert cost == pytest.approx(total)
    a = rng.normal(size=(40, 5))
    total, pi, pj = dtw(a, np.repeat(a, 3, axis=0))  # every frame held 3x: a zero-cost alignment exists
    assert total == pytest.approx(0, abs=1e-6) and len(pi) == 120


def test_duration_ratio_and_trim():
    sr = 16000
    t = np.arange(sr) / sr
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    padded = np.concatenate([np.zeros(sr // 2, np.float32), tone, np.zeros(sr, np.float32)])
    assert len(trim_silence(padded, sr)) == pytest.approx(sr, abs=sr * 0.03)
    assert duration_ratio(padded, tone, sr) == pytest.approx(1.0, abs=0.03)  # silence does not count
    assert duration_ratio(padded, tone, sr, trim_db=None) == pytest.approx(2.5)
    assert duration_ratio(np.tile(tone, 2), tone, sr) == pytest.approx(2.0, abs=0.05)
    assert duration_ratio(3.0, 2.0) == 1.5
    # 8 kHz synth vs 16 kHz ref of the same length in seconds
    assert duration_ratio(tone[::2], tone, 8000, 16000) == pytest.approx(1.0, abs=0.03)


def test_f0_sweep_vs_constant_tone(wavs):
    sr = 16000
    t = np.arange(2 * sr) / sr
    const = 0.5 * np.sin(2 * np.pi * 200 * t)
    f0, voiced = f0_track(const, sr)
    assert voiced.mean() > 0.9 and np.median(f0[voiced]) == pytest.approx(200, rel=0.01)
    assert f0_std(const, sr) < 1.0
    sweep = 0.5 * np.sin(2 * np.pi * (150 * t + 37.5 * t ** 2))  # 150 -> 300 Hz linearly over 2 s
    assert f0_std(sweep, sr) == pytest.approx(150 / np.sqrt(12), rel=0.1)  # std of a uniform ramp
    assert f0_std(sweep, sr, unit="semitone") > 2.0
    assert f0_std(np.zeros(sr), sr) == 0.0  # silence: no voiced frames, finite result
    x, sr_x = _load(wavs["eA"])
    assert 5 < f0_std(x, sr_x) < 60  # espeak-ng's intonation: some, but not a sweep


# ---------------------------------------------------------------- speaker similarity

needs_sim = pytest.mark.skipif(not _have("resemblyzer", "webrtcvad"), reason=f"resemblyzer not installed ({HINT})")


@pytest.fixture(scope="module")
def encoder():
    import torch

    torch.set_num_threads(1)
    from audiorl.eval.sim import SpeakerEncoder

    return SpeakerEncoder(device="cpu")


@needs_sim
def test_sim_same_voice_beats_other_engine(wavs, encoder):
    from audiorl.eval.sim import cosine, speaker_similarity

    w = {k: _load(p) for k, p in wavs.items()}
    e = encoder.embed(*w["eA"])
    assert e.shape == (256,) and np.linalg.norm(e) == pytest.approx(1, abs=1e-5)
    names = ("eA", "eB", "fA", "fB")
    E = encoder.embed_batch([w[k][0] for k in names], [w[k][1] for k in names])
    s_same = speaker_similarity([w["eA"][0], w["fA"][0]], [w["eB"][0], w["fB"][0]], sr=[w["eA"][1], w["fA"][1]],
                                encoder=encoder)
    assert s_same == pytest.approx([cosine(E[0], E[1])[0], cosine(E[2], E[3])[0]], abs=1e-5)
    s_cross = [cosine(E[i], E[j])[0] for i in (0, 1) for j in (2, 3)]  # espeak-ng vs flite
    assert min(s_same) > max(s_cross) + 0.1, (s_same, s_cross)
    # batched == one at a time (resemblyzer's own embed_utterance path on the same preprocessing)
    x = encoder._preprocess(*w["fA"])
    assert float(np.dot(encoder.model.embed_utterance(x), E[2])) == pytest.approx(1.0, abs=1e-4)


def _data_dir(d, entries, utt2spk=None):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "wav.scp"), "w") as f:
        f.writelines(f"{u} {p}\n" for u, p in sorted(entries.items()))
    if utt2spk:
        with open(os.path.join(d, "utt2spk"), "w") as f:
            f.writelines(f"{u} {s}\n" for u, s in sorted(utt2spk.items()))
    return str(d)


@needs_sim
def test_corpus_similarity_flags_wrong_speaker(wavs, encoder, tmp_path):
    from audiorl.eval.sim import corpus_similarity

    ref = _data_dir(tmp_path / "ref", {"e-1": wavs["eA"], "e-2": wavs["eB"], "f-1": wavs["fA"], "f-2": wavs["fB"]},
                    {"e-1": "e", "e-2": "e", "f-1": "f", "f-2": "f"})
    # "synthesis": right voice for e-1 and f-1, wrong voice for f-2
    syn = _data_dir(tmp_path / "syn", {"e-1": wavs["eA_slow"], "f-1": wavs["fA"], "f-2": wavs["eB"]})
    r = corpus_similarity(os.path.join(syn, "wav.scp"), ref, encoder=encoder)
    assert set(r.sim_ref) == set(r.sim_spk) == {"e-1", "f-1", "f-2"}
    assert r.sim_ref["f-1"] == pytest.approx(1.0, abs=1e-4)  # identical audio
    assert r.sim_spk["f-2"] < min(r.sim_spk["e-1"], r.sim_spk["f-1"]) - 0.1
    assert r.mean_sim_ref == pytest.approx(np.mean(list(r.sim_ref.values())))


@needs_sim
def test_score_tts_cli(wavs, tmp_path, capsys):
    from audiorl.bin import score_tts

    ref = _data_dir(tmp_path / "ref", {"u1": wavs["eA"], "u2": wavs["fB"]}, {"u1": "e", "u2": "f"})
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), 16000)
    syn = _data_dir(tmp_path / "syn", {"u1": wavs["eA_slow"], "u2": wavs["fB"], "u3": str(empty)})
    ref2 = _data_dir(tmp_path / "ref2", {"u1": wavs["eA"], "u2": wavs["fB"], "u3": wavs["fA"]},
                     {"u1": "e", "u2": "f", "u3": "f"})
    out = tmp_path / "score"
    assert score_tts.main(["--synth", os.path.join(syn, "wav.scp"), "--ref", ref2, "--out", str(out), "--no-mos"]) == 0
    line = capsys.readouterr().out
    assert "SIM" in line and "MCD" in line and "failed 1" in line
    m = json.load(open(out / "tts_metrics.json"))
    assert m["n_utts"] == 3 and m["n_failed"] == 1 and m["mcd"]["n"] == 2
    assert m["dur_ratio"]["mean"] > 1.0 and "ci95" in m["sim_ref"]
    assert (out / "mcd").read_text().startswith("u1 ") and (out / "failed").exists()
    # a synthesised utterance with no reference is a clear error, not a silent skip
    assert score_tts.main(["--synth", syn, "--ref", ref, "--out", str(out), "--no-mos", "--no-sim"]) == 1


# ---------------------------------------------------------------- DNSMOS

@pytest.mark.skipif(not _have("speechmos", "onnxruntime"), reason=f"speechmos/onnxruntime not installed ({HINT})")
def test_dnsmos_speech_vs_noise(wavs):
    from audiorl.eval.mos import dnsmos

    x, sr = _load(wavs["fA"])
    noise = np.random.default_rng(0).normal(0, 0.1, 2 * 16000).astype(np.float32)
    speech, white = dnsmos([x, noise], [sr, 16000], progress=False)
    assert set(speech) == {"ovrl", "sig", "bak", "p808"}
    assert all(1.0 <= v <= 5.0 for v in speech.values()), speech
    assert white["ovrl"] < speech["ovrl"] - 0.5 and white["p808"] < speech["p808"]
