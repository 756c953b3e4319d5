"""AISHELL-1 (openslr.org/33) in its official layout, once data_aishell.tgz and the per-speaker archives
inside it (data_aishell/wav/S*.tar.gz) are extracted:

    data_aishell/wav/{train,dev,test}/<speaker>/<utt>.wav        e.g. train/S0002/BAC009S0002W0122.wav
    data_aishell/transcript/aishell_transcript_v0.8.txt          one file for all subsets:
                                                                 '<utt> 而 对 楼市 成交 抑制 ...' (word-segmented)

Text is normalised for Mandarin CER: NFKC (full-width letters, digits and punctuation to half-width),
punctuation removed, embedded Latin letters lower-cased (the 'zh' scoring preset of audiorl.eval.normalize,
so references and hypotheses can be normalised alike), then every space removed: the word segmentation is
not part of the transcript (ESPnet's aishell recipe does the same), and CER scoring splits into characters.

The official release has wavs without a transcript line (Kaldi's recipe keeps only the transcribed
ones); the recipe's local/data.sh therefore passes --on_mismatch skip, and the count is logged.
"""

from __future__ import annotations

import glob
import os

from audiorl.data.corpora.common import (CorpusError, Problems, Utterance, files_with_suffix, read_text_lines,
                                         require_dir, speaker_prefixed, subdirs)
from audiorl.eval.normalize import PRESETS, Normalizer

TOP = "data_aishell"
SUBSETS = ("train", "dev", "test")
DEFAULTS = {"train": "train", "dev": "dev", "test": "test"}
TRANSCRIPT = os.path.join("transcript", "aishell_transcript_v0.8.txt")
_normalize = Normalizer(PRESETS["zh"])
# (path, mtime, size) -> {utt: normalised text}: the one transcript serves train, dev and test, read once
_transcripts: dict[tuple[str, int, int], dict[str, str]] = {}


def normalize_text(text: str) -> str:
    """'而 对 楼市，ＡＢＣ。' -> '而对楼市abc' (see the module docstring)."""
    return "".join(_normalize(text).split())


def read_transcript(path: str) -> dict[str, str]:
    """{utterance: normalised text} of the single AISHELL transcript file (errors name the line)."""
    if not os.path.isfile(path):
        raise CorpusError(f"{path}: no such file (the AISHELL-1 transcript); extract data_aishell.tgz "
                          f"(local/download.sh) or fix --datadir")
    st = os.stat(path)
    cache_key = (os.path.abspath(path), st.st_mtime_ns, st.st_size)
    if cache_key in _transcripts:
        return _transcripts[cache_key]
    texts: dict[str, str] = {}
    lines: dict[str, int] = {}
    for lineno, line in enumerate(read_text_lines(path), start=1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2:
            raise CorpusError(f"{path}:{lineno}: malformed line '{line[:80]}'; expected '<utterance-id> <text>'. "
                              f"Delete the line or re-extract the file from data_aishell.tgz")
        key, text = parts
        if key in texts:
            raise CorpusError(f"{path}:{lineno}: utterance {key} is transcribed twice (first on line {lines[key]}); "
                              f"delete one of the lines")
        texts[key], lines[key] = normalize_text(text), lineno
    _transcripts[cache_key] = texts
    return texts


def read_subset(root: str, subset: str, problems: Problems) -> list[Utterance]:
    """Every transcribed utterance of data_aishell/wav/<subset>, in sorted order."""
    texts = read_transcript(os.path.join(root, TRANSCRIPT))
    wav_root = os.path.join(root, "wav")
    if not os.path.isdir(os.path.join(wav_root, subset)) and glob.glob(os.path.join(wav_root, "*.tar.gz")):
        raise CorpusError(f"{os.path.join(wav_root, subset)}: no such directory, but {wav_root} holds the "
                          f"per-speaker archives: extract them first (`for f in {wav_root}/*.tar.gz; do tar xzf "
                          f"$f -C {wav_root}; done`; local/download.sh does this)")
    sub = require_dir(os.path.join(wav_root, subset), f"AISHELL-1 subset '{subset}'",
                      "extract data_aishell.tgz and its per-speaker archives (local/download.sh) or fix --datadir")
    out: list[Utterance] = []
    for spk in subdirs(sub):
        wavs = files_with_suffix(os.path.join(sub, spk), ".wav")
        for key in sorted(wavs):
            if key not in texts:
                problems.report("audio without a transcript line", wavs[key],
                                f"{os.path.join(root, TRANSCRIPT)} has no line for {key}")
            elif not texts[key]:
                problems.report("empty transcript after normalisation", wavs[key],
                                f"its line in {os.path.join(root, TRANSCRIPT)} holds only punctuation or spaces")
            else:
                out.append(Utterance(speaker_prefixed(spk, key, wavs[key]), spk, wavs[key], texts[key]))
    return out
