"""LibriTTS (openslr.org/60) in its official layout, as the archives extract:

    LibriTTS/<subset>/<speaker>/<chapter>/<speaker>_<chapter>_<paragraph>_<sentence>.wav        (24 kHz)
    LibriTTS/<subset>/<speaker>/<chapter>/<speaker>_<chapter>_<paragraph>_<sentence>.normalized.txt
    LibriTTS/<subset>/<speaker>/<chapter>/<speaker>_<chapter>_<paragraph>_<sentence>.original.txt

Each text file holds one sentence. ``text_form`` picks what goes into data/<set>/text:
* ``asr`` (default): the normalized text in LibriSpeech's convention, upper case with punctuation removed
  (in-word apostrophes kept). The TTS recipe's judge is the LibriSpeech ASR model, which writes that
  form, and tts.sh scores its transcripts against data/<set>/text without normalisation;
* ``normalized`` / ``original``: that file as it is (case and punctuation kept), for a judge that
  normalises, or a TTS front end that wants punctuation.
The audio stays at 24 kHz in wav.scp; the pipeline resamples on load to its configured rate.
"""

from __future__ import annotations

import os
import re
from typing import Literal

from audiorl.data.corpora.common import (CorpusError, Problems, Utterance, files_with_suffix, read_text_lines,
                                         require_dir, speaker_prefixed, subdirs)
from audiorl.eval.normalize import NormConfig, Normalizer

TOP = "LibriTTS"
SUBSETS = ("train-clean-100", "train-clean-360", "train-other-500", "dev-clean", "dev-other", "test-clean",
           "test-other")
DEFAULTS = {"train": "train-clean-100", "dev": "dev-clean", "test": "test-clean"}
TextForm = Literal["asr", "normalized", "original"]
_asr_normalize = Normalizer(NormConfig(nfkc=True, strip_punct=True))


def asr_text(text: str) -> str:
    """'"Mr. Smith's twenty-one cats," she said.' -> "MR SMITH'S TWENTY ONE CATS SHE SAID"."""
    return _asr_normalize(text).upper()


def make_reader(text_form: TextForm = "asr"):
    """A read_subset for common.prepare with the given text form."""
    if text_form not in ("asr", "normalized", "original"):
        raise ValueError(f"text_form must be asr, normalized or original, got {text_form!r}")
    suffix = ".original.txt" if text_form == "original" else ".normalized.txt"

    def read_subset(root: str, subset: str, problems: Problems) -> list[Utterance]:
        """Every utterance of <root>/<subset> with a non-empty text, in sorted order."""
        sub = require_dir(os.path.join(root, subset), f"LibriTTS subset '{subset}'",
                          f"download and extract it (local/download.sh --subsets {subset}) or fix --datadir")
        out: list[Utterance] = []
        for spk in subdirs(sub):
            for chapter in subdirs(os.path.join(sub, spk)):
                out += _read_chapter(os.path.join(sub, spk, chapter), spk, chapter, suffix, text_form, problems)
        return out

    return read_subset


def _read_chapter(d: str, spk: str, chapter: str, suffix: str, text_form: TextForm,
                  problems: Problems) -> list[Utterance]:
    wavs = files_with_suffix(d, ".wav")
    texts = files_with_suffix(d, suffix)
    name = re.compile(rf"{re.escape(spk)}_{re.escape(chapter)}_\d+_\d+")
    keys = sorted(set(wavs) | set(texts))
    for key in keys:  # names first: a renamed file would otherwise show up as two mismatches
        if not name.fullmatch(key):
            raise CorpusError(f"{wavs.get(key) or texts[key]}: malformed file name: expected {spk}_{chapter}_"
                              f"<paragraph>_<sentence>{'.wav' if key in wavs else suffix} in {spk}/{chapter}; the "
                              f"file was moved or renamed: move it back or delete it")
    out = []
    for key in keys:
        if key not in texts:
            problems.report(f"audio without {suffix}", wavs[key], f"restore {key}{suffix} from the official archive")
            continue
        if key not in wavs:
            problems.report(f"{suffix} without audio", texts[key], f"restore {key}.wav from the official archive")
            continue
        lines = [x.strip() for x in read_text_lines(texts[key]) if x.strip()]
        if len(lines) > 1:
            raise CorpusError(f"{texts[key]}: {len(lines)} lines of text; a LibriTTS text file holds one sentence "
                              f"on one line: join the lines or re-extract the file")
        text = (asr_text(lines[0]) if text_form == "asr" else lines[0]) if lines else ""
        if not text:
            problems.report("empty text", texts[key], "write the sentence into the file or delete the utterance")
            continue
        out.append(Utterance(speaker_prefixed(spk, key, wavs[key]), spk, wavs[key], text))
    return out
