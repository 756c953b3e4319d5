"""Speaker similarity (SIM) of synthesised speech with resemblyzer's GE2E speaker encoder.

resemblyzer ships its 17 MB weights inside the package, so nothing is downloaded at run time (the
WavLM-TDNN encoder of seed-tts-eval is not available offline here). GE2E separates different voices
and engines well but is blind to small pitch/speed changes of one voice (see shared/ENV.md), so SIM is
a coarse "is it still the target speaker" check, not a fine-grained one. GE2E embeddings are ReLU
outputs, so cosines lie in [0, 1]; unrelated voices typically score 0.5-0.75, same voice 0.8-0.95.

The optional dependency is imported lazily: ``pip install -r tools/requirements-tts.txt``.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np

from audiorl.data.audio import DataDirAudio, load_wav_scp_entry
from audiorl.data.kaldi import read_entries, read_table
from audiorl.eval.mcd import SR, resample
from audiorl.log import get_logger

logger = get_logger(__name__)

INSTALL_HINT = "install the TTS scoring extras: tools/venv/bin/pip install -r tools/requirements-tts.txt"


def _import_resemblyzer():
    try:
        with warnings.catch_warnings():
            # webrtcvad imports pkg_resources (hence setuptools<81 in requirements-tts.txt) and warns.
            warnings.filterwarnings("ignore", message=".*pkg_resources.*")
            warnings.filterwarnings("ignore", message=".*scipy.ndimage.morphology.*")  # resemblyzer 0.1.4
            from resemblyzer import VoiceEncoder
            from resemblyzer import audio as ra
    except ImportError as e:
        raise ImportError(f"speaker similarity needs resemblyzer and webrtcvad ({e}); {INSTALL_HINT}") from e
    return VoiceEncoder, ra


def _slaney_mel_fb(sr: int = SR, n_fft: int = 400, n_mels: int = 40) -> np.ndarray:
    """librosa.filters.mel(sr, n_fft, n_mels) (Slaney scale and area norm), re-done in numpy."""
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0

    def hz2mel(f):
        f = np.asarray(f, dtype=np.float64)
        return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, f / f_sp)

    def mel2hz(m):
        return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)

    mel_f = mel2hz(np.linspace(hz2mel(0.0), hz2mel(sr / 2.0), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - np.fft.rfftfreq(n_fft, 1.0 / sr)[None, :]
    w = np.maximum(0.0, np.minimum(-ramps[:-2] / fdiff[:-1, None], ramps[2:] / fdiff[1:, None]))
    return (w * (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]).astype(np.float32)


_GE2E_FB = None


def ge2e_mel(x: np.ndarray) -> np.ndarray:
    """(frames, 40) power mel spectrogram identical (to float32 rounding) to resemblyzer's
    ``wav_to_mel_spectrogram`` (librosa, 25 ms / 10 ms, centred, zero-padded, periodic Hann).

    Re-implemented because librosa's first call imports scipy pieces and JIT-compiles numba kernels
    (5-50 s on a busy machine) for what is one FFT and one matrix product.
    """
    global _GE2E_FB
    if _GE2E_FB is None:
        _GE2E_FB = _slaney_mel_fb()
    n_fft, hop = 400, 160
    xp = np.pad(np.asarray(x, dtype=np.float32), (n_fft // 2, n_fft // 2))
    frames = np.lib.stride_tricks.sliding_window_view(xp, n_fft)[::hop]
    win = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)
    spec = np.fft.rfft(frames * win, axis=1)
    power = (spec.real ** 2 + spec.imag ** 2).astype(np.float32)
    return power @ _GE2E_FB.T


class SpeakerEncoder:
    """GE2E (resemblyzer) utterance embeddings, batched over utterances.

    Each utterance is cut into 1.6 s partial windows exactly as ``VoiceEncoder.embed_utterance`` does
    (rate 1.3/s, last window kept if 75% covered); the partials of many utterances go through the LSTM
    together in batches of ``batch_size`` and are averaged back per utterance, which gives the same
    embeddings as resemblyzer's one-at-a-time loop with far fewer forward calls.
    """

    dim = 256

    def __init__(self, device: str | None = None, batch_size: int = 64, vad_trim: bool = True):
        import torch

        VoiceEncoder, self._ra = _import_resemblyzer()
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = device
        self.batch_size = batch_size
        self.vad_trim = vad_trim
        self.model = VoiceEncoder(device, verbose=False).eval()
        self._VE = VoiceEncoder

    def _preprocess(self, wave: np.ndarray, sr: int) -> np.ndarray:
        """16 kHz, resemblyzer's volume normalisation and (webrtcvad) long-silence trimming."""
        x = resample(wave, sr, SR)
        x = self._ra.normalize_volume(x, -30, increase_only=True)
        if self.vad_trim and len(x) >= SR // 10:
            t = self._ra.trim_long_silences(x)
            # The VAD can drop nearly everything from noise or very short clips: keep the original then.
            if len(t) >= SR // 4:
                x = t
        return x.astype(np.float32)

    def embed_batch(self, waves: Sequence[np.ndarray], sr: int | Sequence[int] = SR) -> np.ndarray:
        """(n, 256) L2-normalised embeddings; ``sr`` is one rate or one rate per wave."""
        import torch

        srs = [int(sr)] * len(waves) if np.isscalar(sr) else [int(s) for s in sr]
        mels, owner = [], []
        for k, (w, s) in enumerate(zip(waves, srs)):
            x = self._preprocess(w, s)
            wav_slices, mel_slices = self._VE.compute_partial_slices(len(x), rate=1.3, min_coverage=0.75)
            if wav_slices[-1].stop >= len(x):
                x = np.pad(x, (0, wav_slices[-1].stop - len(x)))
            mel = ge2e_mel(x)
            for sl in mel_slices:
                mels.append(mel[sl])
                owner.append(k)
        parts = []
        with torch.inference_mode():
            for i in range(0, len(mels), self.batch_size):
                batch = torch.from_numpy(np.stack(mels[i:i + self.batch_size])).to(self.device)
                parts.append(self.model(batch).float().cpu().numpy())
        partial = np.concatenate(parts) if parts else np.zeros((0, self.dim), np.float32)
        out = np.zeros((len(waves), self.dim), dtype=np.float64)
        np.add.at(out, np.asarray(owner, dtype=np.int64), partial)
        return (out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    def embed(self, wave: np.ndarray, sr: int = SR) -> np.ndarray:
        """(256,) L2-normalised embedding of one utterance at sample rate ``sr``."""
        return self.embed_batch([wave], sr)[0]


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine of (n, d) arrays (or of two vectors)."""
    a, b = np.atleast_2d(a).astype(np.float64), np.atleast_2d(b).astype(np.float64)
    num = (a * b).sum(1)
    return num / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)


def speaker_similarity(synth_waves: Sequence[np.ndarray], ref_waves: Sequence[np.ndarray],
                       sr: int | Sequence[int] = SR, ref_sr: int | Sequence[int] | None = None,
                       encoder: SpeakerEncoder | None = None) -> np.ndarray:
    """Per-pair cosine between the embeddings of synth_waves[i] and ref_waves[i].

    ``sr``/``ref_sr``: one rate per list or one per wave (``ref_sr`` defaults to ``sr``).
    """
    n = len(synth_waves)
    if n != len(ref_waves):
        raise ValueError(f"speaker_similarity: {n} synthesised vs {len(ref_waves)} reference waves")
    ref_sr = sr if ref_sr is None else ref_sr
    srs = ([sr] * n if np.isscalar(sr) else list(sr)) + ([ref_sr] * n if np.isscalar(ref_sr) else list(ref_sr))
    enc = encoder or SpeakerEncoder()
    e = enc.embed_batch(list(synth_waves) + list(ref_waves), srs)
    return cosine(e[:n], e[n:])


class ScpAudio:
    """``DataDirAudio``-like access to a bare wav.scp file (no segments)."""

    def __init__(self, wav_scp: str):
        self._wav = {e.key: (e.value, f"{e.path}:{e.lineno}") for e in read_entries(wav_scp)}

    def __iter__(self):
        return iter(self._wav)

    def __len__(self):
        return len(self._wav)

    def __contains__(self, utt):
        return utt in self._wav

    def load(self, utt: str) -> tuple[np.ndarray, int]:
        value, where = self._wav[utt]
        return load_wav_scp_entry(value, where=where)


def open_audio(path: str):
    """A data dir (wav.scp + optional segments) or a bare wav.scp file -> object with load(utt)."""
    return DataDirAudio(path) if os.path.isdir(path) else ScpAudio(path)


@dataclass
class SimResult:
    """Per-utterance SIM values and their means.

    sim_ref: cosine to the paired real reference utterance; sim_spk: cosine to the speaker's centroid
    (mean embedding of the speaker's real utterances, leaving out the paired one when the speaker
    has others, so the same recording is not counted twice).
    """

    sim_ref: dict[str, float] = field(default_factory=dict)
    sim_spk: dict[str, float] = field(default_factory=dict)

    @property
    def mean_sim_ref(self) -> float:
        return float(np.mean(list(self.sim_ref.values()))) if self.sim_ref else float("nan")

    @property
    def mean_sim_spk(self) -> float:
        return float(np.mean(list(self.sim_spk.values()))) if self.sim_spk else float("nan")


def _embed_table(enc: SpeakerEncoder, audio, utts: Iterable[str], chunk: int = 32, desc: str = "") -> dict[str, np.ndarray]:
    """Embed utterances in chunks (bounded memory), with a progress bar."""
    from tqdm import tqdm

    utts = list(utts)
    out: dict[str, np.ndarray] = {}
    with tqdm(total=len(utts), desc=desc, unit="utt", leave=False, disable=len(utts) < 8) as bar:
        for i in range(0, len(utts), chunk):
            part = utts[i:i + chunk]
            loaded = [audio.load(u) for u in part]
            e = enc.embed_batch([w for w, _ in loaded], [s for _, s in loaded])
            out.update(zip(part, e))
            bar.update(len(part))
    return out


def corpus_similarity(synth: str | Mapping, ref_dir: str, utt2ref: Mapping[str, str] | None = None,
                      encoder: SpeakerEncoder | None = None, utts: Sequence[str] | None = None) -> SimResult:
    """SIM of every synthesised utterance against the real recordings of its target speaker.

    ``synth``: a wav.scp file or data dir (or an object with ``load(utt)`` and iteration);
    ``ref_dir``: the real data dir (wav.scp, utt2spk). A synthesised utterance is paired with the
    reference utterance of the same id, or ``utt2ref[utt]`` (e.g. the zero-shot prompt). Its speaker
    is the paired reference's speaker in utt2spk. Without utt2spk only sim_ref is computed.
    """
    enc = encoder or SpeakerEncoder()
    syn = open_audio(synth) if isinstance(synth, str) else synth
    ref = open_audio(ref_dir)
    utts = list(utts) if utts is not None else list(syn)
    pair = {u: (utt2ref or {}).get(u, u) for u in utts}
    missing = [u for u, r in pair.items() if r not in ref]
    if missing:
        raise KeyError(f"{len(missing)} synthesised utterances have no reference in {ref_dir} (first: "
                       f"'{missing[0]}' -> '{pair[missing[0]]}'); keep ids equal or pass utt2ref")
    u2s_path = os.path.join(ref_dir, "utt2spk")
    utt2spk = read_table(u2s_path) if os.path.isfile(u2s_path) else None
    if utt2spk is None:
        logger.warning("%s has no utt2spk: computing SIM to the paired utterance only", ref_dir)
    needed = set(pair.values())
    spk_utts: dict[str, list[str]] = {}
    if utt2spk is not None:
        spks = {utt2spk[r] for r in needed if r in utt2spk}
        for u, s in utt2spk.items():
            if s in spks and u in ref:
                spk_utts.setdefault(s, []).append(u)
                needed.add(u)
    e_syn = _embed_table(enc, syn, utts, desc="SIM synth")
    e_ref = _embed_table(enc, ref, sorted(needed), desc="SIM ref")
    spk_sum = {s: np.sum([e_ref[u] for u in us], axis=0) for s, us in spk_utts.items()}
    res = SimResult()
    for u in utts:
        r = pair[u]
        res.sim_ref[u] = float(cosine(e_syn[u], e_ref[r])[0])
        s = utt2spk.get(r) if utt2spk is not None else None
        if s in spk_sum:
            n = len(spk_utts[s])
            centroid = spk_sum[s] - e_ref[r] if n > 1 else spk_sum[s]  # leave the paired recording out
            res.sim_spk[u] = float(cosine(e_syn[u], centroid)[0])
    return res
