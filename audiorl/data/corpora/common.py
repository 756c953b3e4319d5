"""What the corpus readers (librispeech.py, aishell.py, libritts.py) share: the utterance record, the
problem policy, and writing the Kaldi data dirs of a recipe (train minus a held-out RL pool, dev, tests).

A reader turns one official subset directory into a list of ``Utterance``; everything after that is
corpus-independent and lives here (``prepare``). Rules every reader follows:

* utterance ids are speaker-prefixed (``speaker_prefixed``), so sorting by utterance also sorts by
  speaker, as Kaldi's utt2spk/spk2utt require;
* a problem with the input is a ``CorpusError`` whose message names the file (and line), what is wrong
  and the fix. The problems a real copy of a corpus can have in numbers (audio without transcript,
  transcript without audio, an empty transcript) go through ``Problems``: an error by default, or with
  ``on_mismatch=skip`` a logged count per kind with the first example. Nothing is dropped silently.
"""

from __future__ import annotations

import os
import random
import re
import shutil
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterable, Literal

from audiorl.data.audio import AudioError, recording_num_samples
from audiorl.data.kaldi import c_sort_key, utt2spk_to_spk2utt, write_table
from audiorl.log import get_logger

logger = get_logger(__name__)

OnMismatch = Literal["error", "skip"]
TRAIN, DEV, RL_POOL = "train", "dev", "rl_pool"  # the set names every recipe's run.sh uses

# Speaker ids may not contain '-' or any byte below it: '<spk>-<rest>' then sorts exactly like <spk>
# (the separator sorts before every character a speaker id can continue with).
_SPK_ID = re.compile(r"[A-Za-z0-9._]+")
_UTT_ID = re.compile(r"[A-Za-z0-9._-]+")


class CorpusError(Exception):
    """Input that cannot be prepared as given; the message names the file (and line) and the fix."""


@dataclass(frozen=True)
class Utterance:
    utt: str   # speaker-prefixed utterance id
    spk: str
    wav: str   # wav.scp value: a path to any file libsndfile reads (wav, flac)
    text: str


def speaker_prefixed(spk: str, official_id: str, where: str) -> str:
    """The utterance id: the official id if it already starts with '<spk>-', else '<spk>-<official id>'.

    LibriSpeech ids (103-1240-0000) are kept; AISHELL (BAC009S0002W0122) and LibriTTS (19_198_000000_000002)
    ids get the prefix: their own speaker part would not sort consistently ('_' sorts after digits).
    """
    if not _SPK_ID.fullmatch(spk):
        raise CorpusError(f"{where}: speaker id '{spk}' has characters other than letters, digits, '.' and '_'; "
                          f"rename the speaker directory (a '-' or a space would break Kaldi's sorting rules)")
    if not _UTT_ID.fullmatch(official_id):
        raise CorpusError(f"{where}: utterance id '{official_id}' has characters other than letters, digits, "
                          f"'.', '_' and '-'; rename the file (Kaldi ids cannot hold spaces)")
    return official_id if official_id.startswith(spk + "-") else f"{spk}-{official_id}"


class Problems:
    """The input problems of a corpus that a user may choose to skip: raise on the first one under
    policy 'error' (the message says how to fix it or to skip), else count them per kind."""

    def __init__(self, policy: OnMismatch):
        if policy not in ("error", "skip"):
            raise ValueError(f"on_mismatch must be 'error' or 'skip', got {policy!r}")
        self.policy = policy
        self.counts: Counter[str] = Counter()
        self.first: dict[str, str] = {}

    def report(self, kind: str, where: str, fix: str) -> None:
        if self.policy == "error":
            raise CorpusError(f"{where}: {kind}; {fix}, or pass --on_mismatch skip to skip such utterances "
                              f"(they are counted and logged)")
        self.counts[kind] += 1
        self.first.setdefault(kind, where)

    def log_summary(self, what: str) -> None:
        for kind, n in sorted(self.counts.items()):
            logger.warning("%s: skipped %d utterance(s): %s (first: %s)", what, n, kind, self.first[kind])


def split_list(value: str) -> list[str]:
    """'a,b , c' -> ['a', 'b', 'c'] (the recipes' comma-separated subset lists)."""
    return [x.strip() for x in value.split(",") if x.strip()]


def set_name(subset: str) -> str:
    """Official subset name -> data dir name: 'test-clean' -> 'test_clean' (Kaldi/ESPnet convention)."""
    return subset.replace("-", "_")


def corpus_root(datadir: str, top: str) -> str:
    """<datadir>/<top> (the directory an official archive extracts to) if it exists, else <datadir>:
    --datadir may name either the download directory or the corpus directory inside it."""
    inner = os.path.join(datadir, top)
    if os.path.isdir(inner):
        return inner
    if not os.path.isdir(datadir):
        raise CorpusError(f"{datadir}: no such directory; download the corpus there (local/download.sh) "
                          f"or pass --datadir with the directory that holds {top}/")
    return datadir


def require_dir(path: str, what: str, fix: str) -> str:
    if not os.path.isdir(path):
        raise CorpusError(f"{path}: no such directory ({what}); {fix}")
    return path


def subdirs(path: str) -> list[str]:
    """Names of the subdirectories of path, sorted (directory order differs between file systems)."""
    return sorted(e.name for e in os.scandir(path) if e.is_dir())


def files_with_suffix(path: str, suffix: str) -> dict[str, str]:
    """{name without suffix: full path} of the files in path that end in suffix."""
    return {e.name[:-len(suffix)]: e.path for e in os.scandir(path) if e.is_file() and e.name.endswith(suffix)}


def read_text_lines(path: str) -> list[str]:
    """Lines of a UTF-8 text file (without line ends); a file that is not UTF-8 is a CorpusError."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().splitlines()
    except UnicodeDecodeError as e:
        raise CorpusError(f"{path}: not valid UTF-8 ({e.reason} at byte {e.start}); the file is damaged: "
                          f"re-extract it from the official archive") from None


def hold_out(utts: list[Utterance], n: int, seed: int) -> tuple[list[Utterance], list[Utterance]]:
    """(kept, held out): n utterances drawn at random (reproducibly for a seed) from utts.

    Drawn by utterance, not by speaker: the RL pool then has the training speakers, as the paper's RL
    data does; what matters is that no RL utterance was seen in SFT.
    """
    if n < 0:
        raise ValueError(f"rl_pool_utts must be >= 0, got {n}")
    if n >= len(utts):
        raise CorpusError(f"rl_pool_utts={n} would leave no training data: the training subsets have only "
                          f"{len(utts)} utterances; pass a smaller --rl_pool_utts")
    ordered = sorted(utts, key=lambda u: c_sort_key(u.utt))  # independent of the readers' order
    held = set(random.Random(seed).sample(range(len(ordered)), n))
    return ([u for i, u in enumerate(ordered) if i not in held], [u for i, u in enumerate(ordered) if i in held])


def durations(utts: list[Utterance], nj: int) -> dict[str, float]:
    """utt -> seconds, from the audio headers (cheap: soundfile.info; nj threads for network file systems).
    Also proves every file is readable audio before any training starts."""

    def one(u: Utterance) -> float:
        n, sr = recording_num_samples(u.wav, where=f"utterance {u.utt}")
        if n == 0:
            raise AudioError(f"utterance {u.utt}: {u.wav}: zero-length audio; re-extract it from the official archive")
        return n / sr

    try:
        with ThreadPoolExecutor(max(1, nj)) as pool:
            return dict(zip((u.utt for u in utts), pool.map(one, utts)))
    except AudioError as e:
        raise CorpusError(str(e)) from None


def write_data_dir(path: str, utts: list[Utterance], nj: int = 1) -> float:
    """Write a fresh data dir (wav.scp, text, utt2spk, spk2utt, utt2dur); returns its hours.

    The directory is removed first: files of an earlier, different preparation must not survive.
    """
    seen: dict[str, Utterance] = {}
    for u in utts:
        if u.utt in seen:
            raise CorpusError(f"utterance id '{u.utt}' occurs twice ({seen[u.utt].wav} and {u.wav}); "
                              f"a subset is probably listed twice, or two subsets overlap")
        seen[u.utt] = u
    if not utts:
        raise CorpusError(f"{path}: no utterances to write; check the subsets given and the skipped counts above")
    dur = durations(utts, nj)
    if os.path.isdir(path):
        shutil.rmtree(path)
    os.makedirs(path)
    write_table(os.path.join(path, "wav.scp"), {u.utt: u.wav for u in utts})
    write_table(os.path.join(path, "text"), {u.utt: u.text for u in utts})
    utt2spk = {u.utt: u.spk for u in utts}
    write_table(os.path.join(path, "utt2spk"), utt2spk)
    write_table(os.path.join(path, "spk2utt"), utt2spk_to_spk2utt(utt2spk))
    write_table(os.path.join(path, "utt2dur"), {u: f"{d:.3f}" for u, d in dur.items()})
    hours = sum(dur.values()) / 3600
    logger.info("%s: %d utterances, %d speakers, %.2f h", path, len(utts), len(set(utt2spk.values())), hours)
    return hours


Reader = Callable[[str, str, Problems], list[Utterance]]  # (corpus root, subset, problems) -> utterances


def prepare(read_subset: Reader, root: str, out: str, *, train: Iterable[str], dev: Iterable[str],
            test: Iterable[str], rl_pool_utts: int, seed: int, on_mismatch: OnMismatch, nj: int = 1) -> list[str]:
    """Write <out>/{train, rl_pool, dev, <test set>...}; returns the set names written.

    train = the training subsets minus ``rl_pool_utts`` random utterances (rl_pool); dev = the dev
    subsets combined (the validation set); each test subset is its own set, named by ``set_name``.
    """
    train, dev, test = list(train), list(dev), list(test)
    if not train or not dev:
        raise CorpusError("at least one training subset and one dev subset are needed; check --train_subsets "
                          "and --dev_subsets")
    names = [TRAIN, RL_POOL, DEV] + [set_name(s) for s in test]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise CorpusError(f"test subsets {test} give data dir name(s) {clash} that another set already uses; "
                          f"drop them from --test_subsets (the dev subsets are the validation set '{DEV}')")
    problems = Problems(on_mismatch)
    cache: dict[str, list[Utterance]] = {}

    def read(subsets: list[str]) -> list[Utterance]:
        for s in subsets:
            if s not in cache:
                cache[s] = read_subset(root, s, problems)
                logger.info("%s/%s: %d utterances", root, s, len(cache[s]))
        return [u for s in subsets for u in cache[s]]

    train_utts, rl_utts = hold_out(read(train), rl_pool_utts, seed)
    sets = {TRAIN: train_utts, RL_POOL: rl_utts, DEV: read(dev)}
    sets.update({set_name(s): read([s]) for s in test})
    problems.log_summary(root)
    if rl_pool_utts == 0:
        del sets[RL_POOL]  # an empty data dir is not valid; the recipe then runs without RL stages
    for name, utts in sets.items():
        write_data_dir(os.path.join(out, name), utts, nj)
    return list(sets)
