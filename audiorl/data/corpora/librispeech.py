"""LibriSpeech (openslr.org/12) in its official layout, as the archives extract:

    LibriSpeech/<subset>/<reader>/<chapter>/<reader>-<chapter>-<nnnn>.flac
    LibriSpeech/<subset>/<reader>/<chapter>/<reader>-<chapter>.trans.txt   lines '<reader>-<chapter>-<nnnn> TEXT'

Transcripts are used as they are (upper case, apostrophes, no other punctuation): LibriSpeech's own
scoring convention. wav.scp points at the .flac files: audiorl reads flac directly (soundfile), so there
is no conversion and no `flac -d |` pipe. The speaker is the reader (not reader-chapter as in Kaldi's
recipe): the TTS and speaker metrics want one speaker per voice.
"""

from __future__ import annotations

import os
import re

from audiorl.data.corpora.common import (CorpusError, Problems, Utterance, files_with_suffix, read_text_lines,
                                         require_dir, speaker_prefixed, subdirs)

TOP = "LibriSpeech"
SUBSETS = ("train-clean-100", "train-clean-360", "train-other-500", "dev-clean", "dev-other", "test-clean",
           "test-other")
DEFAULTS = {"train": "train-clean-100", "dev": "dev-clean,dev-other",
            "test": "dev-clean,dev-other,test-clean,test-other"}
_LINE = re.compile(r"(\d+)-(\d+)-(\d+)\s+(\S.*)")


def read_subset(root: str, subset: str, problems: Problems) -> list[Utterance]:
    """Every transcribed utterance of <root>/<subset>, in sorted order."""
    sub = require_dir(os.path.join(root, subset), f"LibriSpeech subset '{subset}'",
                      f"download and extract it (local/download.sh --subsets {subset}) or fix --datadir")
    out: list[Utterance] = []
    for reader in subdirs(sub):
        for chapter in subdirs(os.path.join(sub, reader)):
            out += _read_chapter(os.path.join(sub, reader, chapter), reader, chapter, problems)
    return out


def _read_chapter(d: str, reader: str, chapter: str, problems: Problems) -> list[Utterance]:
    flacs = files_with_suffix(d, ".flac")
    trans = os.path.join(d, f"{reader}-{chapter}.trans.txt")
    texts: dict[str, str] = {}
    if os.path.isfile(trans):
        for lineno, line in enumerate(read_text_lines(trans), start=1):
            if not line.strip():
                continue
            m = _LINE.fullmatch(line.strip())
            if not m:
                raise CorpusError(f"{trans}:{lineno}: malformed line '{line[:80]}'; expected "
                                  f"'{reader}-{chapter}-<nnnn> TRANSCRIPT'. Fix or delete the line, or "
                                  f"re-extract the file from the official archive")
            if (m[1], m[2]) != (reader, chapter):
                raise CorpusError(f"{trans}:{lineno}: utterance {m[1]}-{m[2]}-{m[3]} does not belong in "
                                  f"{reader}/{chapter}; the file was moved or edited: re-extract the chapter")
            key = f"{m[1]}-{m[2]}-{m[3]}"
            if key in texts:
                raise CorpusError(f"{trans}:{lineno}: utterance {key} is transcribed twice; delete one line")
            texts[key] = m[4].strip()
    elif flacs:
        where = trans
        problems.report("missing transcript file", where,
                        f"the {len(flacs)} .flac files of this chapter have no transcripts: re-extract the chapter")
        return []
    out = []
    for key in sorted(set(flacs) | set(texts)):
        if key not in texts:
            problems.report("audio without a transcript line", flacs[key],
                            f"add its line to {trans} or re-extract the chapter")
        elif key not in flacs:
            problems.report("transcript line without audio", f"{trans} ({key})",
                            f"the file {key}.flac is missing: re-extract the chapter")
        else:
            out.append(Utterance(speaker_prefixed(reader, key, flacs[key]), reader, flacs[key], texts[key]))
    return out
