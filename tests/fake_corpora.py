"""Miniature copies of LibriSpeech, AISHELL-1 and LibriTTS in their official layouts and file formats, for the
offline tests of audiorl/data/corpora and the egs/{librispeech,aishell,libritts} recipes.

Audio is a short tone plus noise (a different pitch per speaker), so features and training run on it; the
trees keep the official naming, transcript formats and quirks (LibriSpeech's per-chapter .trans.txt and flac,
AISHELL's single word-segmented transcript with full-width characters and punctuation and a wav without a
transcript line, LibriTTS's .normalized.txt / .original.txt at 24 kHz). Speaker ids include ones that are
string prefixes of others (103, 1034) to exercise the sorting rules.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import soundfile as sf

from audiorl.data.audio import write_wav

WORDS = ("THE", "CAT", "SAT", "ON", "A", "MAT", "AND", "DOG", "RAN", "HOME", "QUICKLY", "TODAY", "HE'S", "HER")
HANZI = "而对楼市成交抑制作用最大的限购也会影响消费者购房意愿"


def tone(seed: int, sr: int, seconds: float = 0.6) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    return (0.3 * np.sin(2 * np.pi * (120 + 15 * (seed % 13)) * t) + 0.02 * rng.standard_normal(t.size)).astype(np.float32)


def _words(rng: random.Random, n: int = 4) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


LIBRISPEECH_SPEAKERS = {  # subset -> {reader: [chapters]}
    "train-clean-100": {"103": ["1240"], "1034": ["121119"], "19": ["198", "227"]},
    "dev-clean": {"84": ["121123"], "174": ["50561"]},
    "dev-other": {"116": ["288045"], "1255": ["138279"]},
    "test-clean": {"121": ["121726"], "1089": ["134686"]},
    "test-other": {"1688": ["142285"], "1998": ["15444"]},
}


def make_librispeech(root: Path, utts_per_chapter: int = 3, subsets=None) -> Path:
    """<root>/LibriSpeech/<subset>/<reader>/<chapter>/{<r>-<c>-<nnnn>.flac, <r>-<c>.trans.txt}; returns root."""
    rng = random.Random(0)
    for subset, readers in LIBRISPEECH_SPEAKERS.items():
        if subsets is not None and subset not in subsets:
            continue
        for reader, chapters in readers.items():
            for chapter in chapters:
                d = root / "LibriSpeech" / subset / reader / chapter
                d.mkdir(parents=True)
                lines = []
                for i in range(utts_per_chapter):
                    utt = f"{reader}-{chapter}-{i:04d}"
                    sf.write(d / f"{utt}.flac", tone(int(reader) + i, 16000), 16000, format="FLAC")
                    lines.append(f"{utt} {_words(rng)}\n")
                (d / f"{reader}-{chapter}.trans.txt").write_text("".join(lines))
    return root


AISHELL_SPEAKERS = {"train": ["S0002", "S0003", "S0004"], "dev": ["S0724"], "test": ["S0764", "S0765"]}


def make_aishell(root: Path, utts_per_speaker: int = 4, untranscribed: bool = True) -> Path:
    """<root>/data_aishell/{wav/<subset>/<spk>/BAC009<spk>W<nnnn>.wav, transcript/aishell_transcript_v0.8.txt}.

    The first transcript line mixes full-width Latin letters and punctuation into the word-segmented text;
    with ``untranscribed`` the first training speaker has one extra wav that has no transcript line, as in
    the official release."""
    rng = random.Random(1)
    lines = []
    for subset, speakers in AISHELL_SPEAKERS.items():
        for spk in speakers:
            d = root / "data_aishell" / "wav" / subset / spk
            for i in range(utts_per_speaker):
                utt = f"BAC009{spk}W{i + 121:04d}"
                write_wav(str(d / f"{utt}.wav"), tone(int(spk[1:]) + i, 16000), 16000)
                chars = [rng.choice(HANZI) for _ in range(6)]
                lines.append(f"{utt} {''.join(chars[:2])} {''.join(chars[2:4])} {''.join(chars[4:])}\n")
    lines[0] = lines[0].rstrip("\n") + " ＡＢＣ，好。\n"
    if untranscribed:
        spk = AISHELL_SPEAKERS["train"][0]
        write_wav(str(root / "data_aishell" / "wav" / "train" / spk / f"BAC009{spk}W0999.wav"), tone(7, 16000), 16000)
    t = root / "data_aishell" / "transcript" / "aishell_transcript_v0.8.txt"
    t.parent.mkdir(parents=True)
    t.write_text("".join(sorted(lines)), encoding="utf-8")
    return root


LIBRITTS_SPEAKERS = {
    "train-clean-100": {"103": ["1241"], "1034": ["121119"], "19": ["198"]},
    "dev-clean": {"84": ["121123"], "174": ["50561"]},
    "test-clean": {"121": ["121726"], "1089": ["134686"]},
}


def make_libritts(root: Path, utts_per_chapter: int = 4) -> Path:
    """<root>/LibriTTS/<subset>/<spk>/<chapter>/<spk>_<chapter>_<para>_<sent>.{wav,normalized.txt,original.txt}
    (24 kHz audio), plus the per-chapter .trans.tsv the official release has."""
    rng = random.Random(2)
    for subset, speakers in LIBRITTS_SPEAKERS.items():
        for spk, chapters in speakers.items():
            for chapter in chapters:
                d = root / "LibriTTS" / subset / spk / chapter
                d.mkdir(parents=True)
                rows = []
                for i in range(utts_per_chapter):
                    utt = f"{spk}_{chapter}_{i // 2:06d}_{i % 2:06d}"
                    write_wav(str(d / f"{utt}.wav"), tone(int(spk) + i, 24000), 24000)
                    words = _words(rng).lower().capitalize()
                    normalized = f"\u201c{words}, Mr. Smith,\u201d he said."
                    original = f"\u201c{words}, Mr. Smith,\u201d he said (1894)."
                    (d / f"{utt}.normalized.txt").write_text(normalized + "\n", encoding="utf-8")
                    (d / f"{utt}.original.txt").write_text(original + "\n", encoding="utf-8")
                    rows.append(f"{utt}\t{original}\t{normalized}\n")
                (d / f"{spk}_{chapter}.trans.tsv").write_text("".join(rows), encoding="utf-8")
    return root
