"""Speakers of the synthetic corpus: engine + voice + pitch/speed setting, and how to synthesise.

A speaker id names all three, e.g. ``espk-usm3-p40s160`` (espeak-ng, voice ``en-us+m3``, pitch 40,
160 words/min), ``flt-awb-d100`` (flite voice awb, duration stretch 1.00) or ``fest-ked-t100``
(festival ked diphone voice, tempo 1.00). Utterance ids start with the speaker id.

Two pools (see ``SEEN_VOICES`` / ``UNSEEN_VOICES``): train, rl_pool, dev and test use the seen pool;
test_unseen_spk uses only held-out voices, which differ from every seen one in engine voice
(flite slt, festival ked and slt-hts) or in espeak-ng accent AND variant. Festival ``kal`` is
left out of both pools: it is the same diphone voice as flite ``kal16``, which is seen.

Synthesis of one utterance (``synthesize``): the engine writes a wav at its own rate (espeak-ng
22.05 kHz, festival HTS 32 kHz, flite/diphones 16 kHz), ``sox`` converts it to 16 kHz mono 16-bit
(with tempo change for festival and a peak normalisation) and the samples come back as float32.
Per-utterance perturbation (speed, pitch) is drawn by the caller within the speaker's ranges.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Literal

import numpy as np

SAMPLE_RATE = 16000
Engine = Literal["espeak-ng", "flite", "festival"]
ENGINE_BINARIES = {"espeak-ng": "espeak-ng", "flite": "flite", "festival": "text2wave"}


class SynthesisError(RuntimeError):
    """An engine or sox failed; the message holds the command and its stderr."""


@dataclass(frozen=True)
class Voice:
    """One speaker.

    ``speed`` is espeak-ng words per minute, or a percentage for flite (duration stretch 100/speed)
    and festival (sox tempo speed/100). ``pitch`` is espeak-ng's 0-99 scale, or for flite the mean
    F0 in Hz (0 keeps the voice's own); festival ignores it. ``speed_jitter`` (relative) and
    ``pitch_jitter`` (same units as pitch) bound the per-utterance random perturbation.
    """

    spk: str
    engine: Engine
    voice: str
    gender: Literal["m", "f"]
    speed: int = 100
    pitch: int = 0
    speed_jitter: float = 0.08
    pitch_jitter: int = 0

    def __post_init__(self) -> None:
        if not self.spk or any(c.isspace() for c in self.spk):
            raise ValueError(f"Voice: speaker id {self.spk!r} must be non-empty without whitespace")


def _espk(accent: str, tag: str, variant: str, gender: str, pitch: int, speed: int) -> Voice:
    return Voice(f"espk-{tag}{variant}-p{pitch}s{speed}", "espeak-ng", f"{accent}+{variant}", gender,  # type: ignore[arg-type]
                 speed=speed, pitch=pitch, speed_jitter=0.08, pitch_jitter=8)


def _flite(voice: str, gender: str, speed: int = 100, f0: int = 0) -> Voice:
    tag = f"d{speed}" + (f"f{f0}" if f0 else "")
    return Voice(f"flt-{voice}-{tag}", "flite", voice, gender, speed=speed, pitch=f0,  # type: ignore[arg-type]
                 speed_jitter=0.08, pitch_jitter=(f0 // 10 if f0 else 0))


def _festival(voice: str, tag: str, gender: str, speed: int = 100) -> Voice:
    return Voice(f"fest-{tag}-t{speed}", "festival", voice, gender, speed=speed, pitch=0,  # type: ignore[arg-type]
                 speed_jitter=0.06)


# Seen pool: 10 espeak-ng speakers (4 accents, several variants and settings) and 4 flite speakers.
SEEN_VOICES: tuple[Voice, ...] = (
    _espk("en-us", "us", "m3", "m", 40, 160),
    _espk("en-us", "us", "m1", "m", 55, 175),
    _espk("en-us", "us", "f3", "f", 60, 150),
    _espk("en-us", "us", "f1", "f", 70, 165),
    _espk("en-gb", "gb", "m5", "m", 45, 155),
    _espk("en-gb", "gb", "f4", "f", 65, 170),
    _espk("en-gb", "gb", "m3", "m", 60, 140),
    _espk("en-gb-scotland", "sc", "m4", "m", 35, 150),
    _espk("en-029", "cb", "f1", "f", 55, 160),
    _espk("en-us", "us", "m6", "m", 50, 185),
    _flite("kal16", "m"),
    _flite("awb", "m"),
    _flite("rms", "m"),
    _flite("rms", "m", speed=88, f0=125),
)

# Held-out pool for test_unseen_spk: voices and accent+variant pairs never used in the seen pool.
UNSEEN_VOICES: tuple[Voice, ...] = (
    _flite("slt", "f"),
    _festival("voice_ked_diphone", "ked", "m"),
    _festival("voice_cmu_us_slt_arctic_hts", "slthts", "f"),
    _espk("en-us-nyc", "nyc", "f5", "f", 60, 165),
    _espk("en-gb-x-rp", "rp", "m7", "m", 45, 150),
    _espk("en-gb-x-gbcwmd", "wm", "f2", "f", 70, 160),
    _espk("en-gb-x-gbclan", "lc", "m2", "m", 40, 170),
)

ALL_VOICES: tuple[Voice, ...] = SEEN_VOICES + UNSEEN_VOICES


def check_voice_ids(voices: tuple[Voice, ...] = ALL_VOICES) -> None:
    """Speaker ids must be unique and none a prefix of another (so that utterance ids
    ``<spk>-<set>-<n>`` sort in the same order as their speakers, as Kaldi requires)."""
    ids = [v.spk for v in voices]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate speaker ids in {ids}")
    for a in ids:
        for b in ids:
            if a != b and b.startswith(a):
                raise ValueError(f"speaker id {a!r} is a prefix of {b!r}; utterance ids would mis-sort")


check_voice_ids()


def voice_by_id(spk: str) -> Voice:
    for v in ALL_VOICES:
        if v.spk == spk:
            return v
    raise KeyError(f"unknown speaker id {spk!r}; known: {[v.spk for v in ALL_VOICES]}")


def missing_tools(voices: tuple[Voice, ...] = ALL_VOICES) -> list[str]:
    """Binaries needed by ``voices`` (and sox) that are not on PATH."""
    need = {"sox"} | {ENGINE_BINARIES[v.engine] for v in voices}
    return sorted(b for b in need if shutil.which(b) is None)


@dataclass(frozen=True)
class Perturbation:
    """Per-utterance settings drawn within a speaker's ranges (kept in the wav's content hash)."""

    speed: float  # espeak-ng wpm, or percent for flite/festival
    pitch: float  # espeak-ng 0-99, flite F0 Hz (0 = voice default), unused by festival
    gain_db: float  # peak level after normalisation, dBFS (<= 0)

    def key(self) -> str:
        return f"s{self.speed:.1f}_p{self.pitch:.1f}_g{self.gain_db:.1f}"


def draw_perturbation(voice: Voice, rng: np.random.Generator) -> Perturbation:
    speed = voice.speed * (1.0 + rng.uniform(-voice.speed_jitter, voice.speed_jitter))
    pitch = voice.pitch + (rng.uniform(-voice.pitch_jitter, voice.pitch_jitter) if voice.pitch_jitter else 0.0)
    if voice.engine == "espeak-ng":
        pitch = min(max(pitch, 0.0), 99.0)
    gain = rng.uniform(-6.0, -1.0)
    return Perturbation(round(speed, 1), round(pitch, 1), round(gain, 1))


def engine_command(voice: Voice, p: Perturbation, text_file: str, out_wav: str) -> list[str]:
    """The engine command that writes ``out_wav`` (engine's own rate) for the text in ``text_file``."""
    if voice.engine == "espeak-ng":
        return ["espeak-ng", "-v", voice.voice, "-p", str(int(round(p.pitch))), "-s", str(int(round(p.speed))),
                "-w", out_wav, "-f", text_file]
    if voice.engine == "flite":
        cmd = ["flite", "-voice", voice.voice, "--setf", f"duration_stretch={100.0 / p.speed:.3f}"]
        if p.pitch:
            cmd += ["--setf", f"int_f0_target_mean={p.pitch:.1f}"]
        return cmd + ["-f", text_file, "-o", out_wav]
    if voice.engine == "festival":
        return ["text2wave", "-eval", f"({voice.voice})", "-o", out_wav, text_file]
    raise ValueError(f"unknown engine {voice.engine!r}")


def sox_command(voice: Voice, p: Perturbation, in_wav: str) -> list[str]:
    """sox: engine wav -> raw 16 kHz mono s16le on stdout (tempo for festival, peak normalisation)."""
    cmd = ["sox", "-V1", in_wav, "-t", "raw", "-e", "signed-integer", "-b", "16", "-c", "1", "-r", str(SAMPLE_RATE), "-"]
    if voice.engine == "festival" and abs(p.speed - 100.0) > 0.05:
        cmd += ["tempo", "-s", f"{p.speed / 100.0:.3f}"]
    return cmd + ["gain", "-n", f"{p.gain_db:.1f}"]


def _run(cmd: list[str], timeout: float) -> bytes:
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise SynthesisError(f"timed out after {timeout:.0f} s: {' '.join(cmd)}") from None
    except FileNotFoundError:
        raise SynthesisError(f"{cmd[0]}: not found on PATH; install it (tools/install.sh installs the voices)") from None
    if r.returncode != 0:
        raise SynthesisError(f"exit {r.returncode}: {' '.join(cmd)}\n{r.stderr.decode(errors='replace').strip()}")
    return r.stdout


def synthesize(voice: Voice, text: str, p: Perturbation, tmp_dir: str | None = None, timeout: float = 120.0) -> np.ndarray:
    """Synthesise ``text`` with ``voice``; returns float32 samples in [-1, 1] at 16 kHz."""
    with tempfile.TemporaryDirectory(prefix="synth.", dir=tmp_dir) as d:
        text_file = os.path.join(d, "text.txt")
        with open(text_file, "w", encoding="utf-8") as f:
            f.write(text + "\n")
        engine_wav = os.path.join(d, "engine.wav")
        _run(engine_command(voice, p, text_file, engine_wav), timeout)
        if not os.path.isfile(engine_wav) or os.path.getsize(engine_wav) <= 44:
            raise SynthesisError(f"{voice.engine} wrote no audio for {voice.spk}: {text!r}")
        raw = _run(sox_command(voice, p, engine_wav), timeout)
    samples = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    if samples.size < SAMPLE_RATE // 10:
        raise SynthesisError(f"{voice.spk}: only {samples.size} samples for {text!r}")
    return samples
