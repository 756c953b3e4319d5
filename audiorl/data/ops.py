"""Operations on whole Kaldi data directories, with the behaviour of Kaldi's utils/ scripts.

* ``fix_data_dir``   (fix_data_dir.sh): keep the utterances present in every file, sort, dedupe,
  regenerate spk2utt; originals go to ``<dir>/.backup/``.
* ``subset_data_dir`` (subset_data_dir.sh): N utterances (evenly spaced, first, last, random, shortest),
  N speakers, N per speaker, or those of an utterance or speaker list.
* ``combine_data``   (combine_data.sh): several dirs into one; an utterance id in two sources is an error.
* ``copy_data_dir``  (copy_data_dir.sh): copy with utterance/speaker prefixes and suffixes.
* ``split_data``     (split_data.sh): nj parts in ``<dir>/split<nj>/<n>`` (speakers kept together) or
  ``<dir>/split<nj>utt/<n>``, using the algorithm of split_scp.pl (``split_scp_keys``).

Every operation works on every table file the data dir has (see ``validate.file_kind``): files keyed by
utterance are filtered by utterance, speaker files by speaker, recording files (wav.scp, reco2dur,
reco2file_and_channel with a segments file) by the recordings still used. Outputs are written sorted,
atomically, file by file; table files of an earlier run that the new dir does not have are deleted.
"""

from __future__ import annotations

import os
import random
import shutil
from dataclasses import dataclass, field
from typing import Iterable, Literal, Mapping, Sequence

from audiorl.data.kaldi import DataDirError, c_sort_key, utt2spk_to_spk2utt, write_table
from audiorl.data.validate import SCALAR_FILES, value_problem, scan_table, table_files
from audiorl.log import get_logger

logger = get_logger(__name__)

_SHOW = 5  # ids shown in a log line or message


def _ids(ids: Sequence[str]) -> str:
    return ", ".join(ids[:_SHOW]) + (f", ... ({len(ids)} in all)" if len(ids) > _SHOW else "")


def _csorted(keys: Iterable[str]) -> list[str]:
    return sorted(keys, key=c_sort_key)


@dataclass
class DataDir:
    """A data dir in memory: for each table file, {key: value} in file order, and each key's line."""

    path: str
    tables: dict[str, dict[str, str]]
    lines: dict[str, dict[str, int]]
    kinds: dict[str, tuple[str, bool]]  # name -> (level, exact), see validate.file_kind
    duplicates: dict[str, list[str]] = field(default_factory=dict)

    @property
    def has_segments(self) -> bool:
        return "segments" in self.tables

    @property
    def utt2spk(self) -> dict[str, str]:
        return self.tables["utt2spk"]

    def level(self, name: str) -> str:
        """utt, spk or reco; recording files are keyed by utterance when there is no segments file."""
        lvl = self.kinds[name][0]
        return "utt" if lvl == "reco" and not self.has_segments else lvl

    def where(self, name: str, key: str) -> str:
        return f"{os.path.join(self.path, name)}:{self.lines[name][key]}"


def load_data_dir(path: str, *, lenient: bool = False, extra: Mapping[str, str] | None = None) -> DataDir:
    """Read every table file of a data dir. ``extra``: more free files, name -> level (utt/spk/reco).

    Always an error: a missing directory or utt2spk, non-UTF-8 bytes, a utt2spk line without exactly
    2 fields. Duplicate keys are an error unless ``lenient`` (then the first line of a key is kept).
    CRs, a byte-order mark, empty lines and a missing final newline are dropped silently.
    """
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise DataDirError(f"{path}: no such directory")
    if not os.path.isfile(os.path.join(path, "utt2spk")):
        raise DataDirError(f"{path}/utt2spk: no such file; every data dir needs one "
                           f"(use the utterance id as speaker id if speakers are unknown)")
    d = DataDir(path, {}, {}, table_files(path, dict(extra or {})))
    for name in d.kinds:
        st = scan_table(os.path.join(path, name))
        if st.bad_utf8:
            lineno, detail = st.bad_utf8[0]
            raise DataDirError(f"{st.path}:{lineno}: not valid UTF-8 ({detail}); convert the file to UTF-8, "
                               f"e.g. with iconv -f latin1 -t utf-8")
        table, lines = d.tables.setdefault(name, {}), d.lines.setdefault(name, {})
        for line in st.lines:
            if line.key in table:
                if not lenient:
                    raise DataDirError(f"{st.path}:{line.lineno}: duplicate key '{line.key}' (first on line "
                                       f"{lines[line.key]}); run utils/fix_data_dir.sh {path} first")
                d.duplicates.setdefault(name, []).append(line.key)
                continue
            table[line.key], lines[line.key] = line.value, line.lineno
    for utt, spk in d.utt2spk.items():
        if len(spk.split()) != 1:
            raise DataDirError(f"{d.where('utt2spk', utt)}: expected 2 fields '<utt> <spk>', got "
                               f"'{utt} {spk}'; correct the line by hand")
    return d


def _filtered(d: DataDir, utts: Iterable[str]) -> dict[str, dict[str, str]]:
    """Every table of ``d`` restricted to ``utts``, their speakers and their recordings; new spk2utt."""
    keep_utts = set(utts)
    seg = d.tables.get("segments", {})
    keep = {"utt": keep_utts, "spk": {d.utt2spk[u] for u in keep_utts},
            "reco": {seg[u].split()[0] for u in keep_utts} if d.has_segments else keep_utts}
    out = {name: {k: v for k, v in t.items() if k in keep[d.level(name)]}
           for name, t in d.tables.items() if name != "spk2utt"}
    out["spk2utt"] = {s: " ".join(us) for s, us in utt2spk_to_spk2utt(out["utt2spk"]).items()}
    return out


def _write_dir(dest: str, tables: Mapping[str, Mapping[str, str]], src: str | None = None) -> None:
    """Write the tables (sorted, atomically) and the scalar files of ``src``; delete stale tables."""
    os.makedirs(dest, exist_ok=True)
    for name in table_files(dest):
        if name not in tables:
            logger.info("%s: deleting %s, left from an earlier run", dest, name)
            os.remove(os.path.join(dest, name))
    for name, table in tables.items():
        write_table(os.path.join(dest, name), table)
    for name in SCALAR_FILES if src else ():
        if os.path.isfile(os.path.join(src, name)):
            shutil.copyfile(os.path.join(src, name), os.path.join(dest, name))


# ---------------------------------------------------------------------------------------------------
@dataclass
class FixReport:
    """What fix_data_dir did. ``lacking``: file -> utterances dropped because that file lacks them (or
    their speaker, or their recording); ``empty_text``: utterances dropped for an empty transcript;
    ``removed``: file -> ids deleted from it; ``duplicates``: file -> keys of duplicate lines deleted."""

    data_dir: str
    kept: int
    total: int
    lacking: dict[str, list[str]] = field(default_factory=dict)
    empty_text: list[str] = field(default_factory=list)
    removed: dict[str, list[str]] = field(default_factory=dict)
    duplicates: dict[str, list[str]] = field(default_factory=dict)

    def summary(self) -> str:
        return f"{self.data_dir}: kept {self.kept} of {self.total} utterances"


def fix_data_dir(data_dir: str, *, utt_extra_files: Sequence[str] = (), spk_extra_files: Sequence[str] = (),
                 drop_empty_text: bool = False) -> FixReport:
    """Make a data dir valid where that is mechanical, like Kaldi's fix_data_dir.sh.

    Keeps the utterances present in every per-utterance file (text, segments or wav.scp, feats.scp,
    utt2dur, ...) whose speaker is in every per-speaker file (cmvn.scp, spk2gender, spk2warp) and whose
    recording is in every recording file; drops malformed segments, duplicate lines (keeping the first)
    and, with ``drop_empty_text``, empty transcripts. Free files (keywords, ``*_extra_files``, ...) are
    filtered, not intersected. Rewrites every table sorted, regenerates spk2utt, and first copies the
    originals to ``<dir>/.backup/``. Raises DataDirError, writing nothing, if no utterance would remain.
    """
    extra = {**{f: "utt" for f in utt_extra_files}, **{f: "spk" for f in spk_extra_files}}
    data_dir = os.fspath(data_dir)
    d = load_data_dir(data_dir, lenient=True, extra=extra)
    rep = FixReport(data_dir, 0, len(d.utt2spk), duplicates=dict(d.duplicates))
    exact = [n for n, (_, ex) in d.kinds.items() if ex and n not in ("utt2spk", "spk2utt")]
    seg = d.tables.get("segments", {})
    bad = [u for u, v in seg.items() if value_problem("segments", v)]
    if bad:
        logger.warning("%s/segments: dropping %d malformed line(s) (need '<utt> <reco> <start> <end>', "
                       "0 <= start < end): %s", data_dir, len(bad), _ids(bad))
        for u in bad:
            del seg[u]
    # An utterance stays if it is in every utterance file, its speaker in every speaker file and (with
    # segments) its recording in every recording file; each drop is put down to the first file lacking it.
    utts = list(d.utt2spk)
    for name in sorted(exact, key=lambda n: ["utt", "spk", "reco"].index(d.level(n))):
        table, level = d.tables[name], d.level(name)
        if level == "utt":
            keep, why = table.__contains__, f"not in {name}"
        elif level == "spk":
            keep, why = (lambda u, t=table: d.utt2spk[u] in t), f"their speaker is not in {name}"
        else:
            keep, why = (lambda u, t=table: u in seg and seg[u].split()[0] in t), f"their recording is not in {name}"
        lost = [u for u in utts if not keep(u)]
        if lost:
            rep.lacking[name], utts = lost, [u for u in utts if keep(u)]
            logger.info("%s: dropping %d utterance(s) %s: %s", data_dir, len(lost), why, _ids(lost))
    if drop_empty_text and "text" in d.tables:
        rep.empty_text = [u for u in utts if not d.tables["text"][u].strip()]
        utts = [u for u in utts if d.tables["text"][u].strip()]
        if rep.empty_text:
            logger.info("%s: dropping %d utterance(s) with an empty transcript: %s", data_dir,
                        len(rep.empty_text), _ids(rep.empty_text))
    rep.kept = len(utts)
    if not utts:
        raise DataDirError(f"{data_dir}: no utterance is in every file, nothing written; dropped: "
                           + ", ".join(f"{len(v)} for {k}" for k, v in rep.lacking.items())
                           + (f", {len(rep.empty_text)} for empty text" if rep.empty_text else ""))
    out = _filtered(d, utts)
    backup = os.path.join(data_dir, ".backup")
    os.makedirs(backup, exist_ok=True)
    for name, table in d.tables.items():
        shutil.copyfile(os.path.join(data_dir, name), os.path.join(backup, name))
        gone = [k for k in table if k not in out[name]]
        if gone:
            rep.removed[name] = gone
            logger.info("%s/%s: removed %d line(s): %s", data_dir, name, len(gone), _ids(gone))
    for name, keys in d.duplicates.items():
        logger.info("%s/%s: removed %d duplicate line(s) (kept the first): %s", data_dir, name, len(keys), _ids(keys))
    _write_dir(data_dir, out)
    logger.info("%s (originals in %s)", rep.summary(), backup)
    return rep


# ---------------------------------------------------------------------------------------------------
def _select_even(items: Sequence[str], n: int) -> list[str]:
    """n of items spread evenly, by recursive halving (Kaldi's subset_scp.pl)."""
    out: list[str] = []

    def select(start: int, end: int, need: int) -> None:
        if end - start <= 1:
            out.extend(items[start:end][:need])
        elif need > 0:
            half = (end - start) // 2
            select(start, start + half, need // 2)
            select(start + half, end, need - need // 2)

    select(0, len(items), n)
    return out


def _durations(d: DataDir) -> dict[str, float]:
    """Per-utterance lengths for --shortest: utt2dur, else segments, else utt2num_frames."""
    try:
        if "utt2dur" in d.tables:
            return {u: float(v) for u, v in d.tables["utt2dur"].items()}
        if d.has_segments:
            return {u: float(v.split()[2]) - float(v.split()[1]) for u, v in d.tables["segments"].items()}
        if "utt2num_frames" in d.tables:
            return {u: float(v) for u, v in d.tables["utt2num_frames"].items()}
    except (ValueError, IndexError):
        raise DataDirError(f"{d.path}: bad duration values; run utils/validate_data_dir.sh {d.path}") from None
    raise DataDirError(f"{d.path}: --shortest needs utt2dur, segments or utt2num_frames; none exists "
                       f"(write utt2dur: '<utt> <seconds>' lines)")


SubsetHow = Literal["even", "first", "last", "random", "shortest", "speakers", "per_spk"]


def subset_data_dir(src: str, dest: str, num: int | None = None, *, how: SubsetHow = "even", seed: int = 0,
                    utts: Iterable[str] | None = None, spks: Iterable[str] | None = None) -> list[str]:
    """Copy a subset of ``src`` to ``dest``; return the kept utterances (sorted).

    With ``utts`` or ``spks``: those utterances / the utterances of those speakers (unknown ids are
    logged). Otherwise ``num`` utterances chosen by ``how``: ``even`` (spread evenly, Kaldi's default),
    ``first``, ``last``, ``random`` (reproducible with ``seed``), ``shortest``; or ``speakers``: all
    utterances of ``num`` evenly spread speakers; ``per_spk``: ``num`` evenly spread utterances per speaker.
    """
    if os.path.abspath(src) == os.path.abspath(dest):
        raise DataDirError(f"{dest}: the destination must differ from the source")
    d = load_data_dir(src)
    all_utts = _csorted(d.utt2spk)
    spk2utt = utt2spk_to_spk2utt(d.utt2spk)
    if utts is not None or spks is not None:
        want, pool = (set(utts), all_utts) if utts is not None else (set(spks), list(spk2utt))
        unknown = _csorted(want - set(pool))
        if unknown:
            logger.warning("%s: %d listed id(s) are not in the source: %s", src, len(unknown), _ids(unknown))
        sel = [u for u in all_utts if (u if utts is not None else d.utt2spk[u]) in want]
    else:
        if num is None or num < 1:
            raise DataDirError(f"number to select must be a positive integer, got {num}")
        total = len(spk2utt) if how == "speakers" else len(all_utts)
        if how != "per_spk" and num > total:
            what = "speakers" if how == "speakers" else "utterances"
            raise DataDirError(f"{src}: cannot select {num} {what}: the source has only {total}")
        if how == "even":
            sel = _select_even(all_utts, num)
        elif how == "first":
            sel = all_utts[:num]
        elif how == "last":
            sel = all_utts[-num:]
        elif how == "random":
            sel = random.Random(seed).sample(all_utts, num)
        elif how == "shortest":
            dur = _durations(d)
            sel = sorted(all_utts, key=lambda u: (dur.get(u, float("inf")), c_sort_key(u)))[:num]
        elif how == "speakers":
            sel = [u for s in _select_even(list(spk2utt), num) for u in spk2utt[s]]
        elif how == "per_spk":  # Kaldi: every skip-th utterance, skip as large as still gives num
            sel = []
            for us in spk2utt.values():
                skip = 1
                while num * (skip + 1) <= len(us):
                    skip += 1
                sel += us[: num * skip : skip]
        else:
            raise ValueError(f"unknown subset mode {how!r}")
    if not sel:
        raise DataDirError(f"{src}: the subset is empty; nothing written to {dest}")
    _write_dir(dest, _filtered(d, sel), src)
    logger.info("%s: %d of %d utterances of %s", dest, len(sel), len(all_utts), src)
    return _csorted(sel)


# ---------------------------------------------------------------------------------------------------
def _segments_for(d: DataDir) -> dict[str, str]:
    """Whole-recording segments ``<utt> <utt> 0 <dur>`` for a dir without segments (combine_data)."""
    if "utt2dur" in d.tables:
        return {u: f"{u} 0 {d.tables['utt2dur'][u]}" for u in d.utt2spk if u in d.tables["utt2dur"]}
    if "wav.scp" not in d.tables:
        raise DataDirError(f"{d.path}: has neither segments, utt2dur nor wav.scp, so its utterances cannot get "
                           f"segments like the other sources; write its utt2dur or segments")
    from audiorl.data.audio import AudioError, recording_num_samples

    out = {}
    for u, value in d.tables.get("wav.scp", {}).items():
        try:
            n, sr = recording_num_samples(value, where=d.where("wav.scp", u))
        except AudioError as e:
            raise DataDirError(f"{e}; (needed to make segments for {d.path}: or write its utt2dur)") from None
        out[u] = f"{u} 0 {n / sr:.3f}"
    return out


def combine_data(dest: str, srcs: Sequence[str], *, extra_files: Sequence[str] = (),
                 skip_fix: bool = False) -> FixReport | None:
    """Combine data dirs into ``dest`` like Kaldi's combine_data.sh; return fix_data_dir's report.

    Utterance ids must be unique across the sources (use copy_data_dir with prefixes otherwise);
    speakers and recordings may be shared when their values agree. A per-utterance/speaker/recording
    file that only some sources have is not created (warning), except segments: sources without one
    get whole-recording segments (from utt2dur, else the audio length). Free files and ``extra_files``
    (which every source must have) are merged over the sources that have them. Then, unless
    ``skip_fix``, fix_data_dir runs on ``dest``.
    """
    if not srcs:
        raise DataDirError("combine_data: no source data dirs given")
    if os.path.abspath(dest) in {os.path.abspath(s) for s in srcs}:
        raise DataDirError(f"{dest}: the destination must not be one of the sources")
    dirs = [load_data_dir(s, extra={f: "utt" for f in extra_files}) for s in srcs]
    for d in dirs:
        for f in extra_files:
            if f not in d.tables:
                raise DataDirError(f"{d.path}/{f}: no such file (given in --extra-files, so every source needs it)")
    first_of: dict[str, DataDir] = {}
    clashes = []
    for d in dirs:
        for u in d.utt2spk:
            if u in first_of:
                clashes.append(f"'{u}' ({first_of[u].where('utt2spk', u)} and {d.where('utt2spk', u)})")
            first_of.setdefault(u, d)
    if clashes:
        raise DataDirError(f"{len(clashes)} utterance id(s) occur in more than one source: {_ids(clashes)}; make "
                           f"them unique, e.g. utils/copy_data_dir.sh --utt-prefix A- --spk-prefix A- <src> <new-src>")
    if any(d.has_segments for d in dirs):
        for d in dirs:
            if not d.has_segments:
                logger.info("%s has no segments: using whole recordings as segments", d.path)
                d.tables["segments"], d.kinds["segments"] = _segments_for(d), ("utt", True)
                d.lines["segments"] = {u: 0 for u in d.tables["segments"]}
    out: dict[str, dict[str, str]] = {}
    owner: dict[tuple[str, str], DataDir] = {}
    for name in sorted({n for d in dirs for n in d.tables} - {"spk2utt"}):
        have = [d for d in dirs if name in d.tables]
        exact = any(d.kinds[name][1] for d in have)
        if exact and len(have) < len(dirs):
            lacking = [d.path for d in dirs if name not in d.tables]
            logger.warning("%s is not in every source (not in %s): not creating %s/%s", name, _ids(lacking), dest, name)
            continue
        table = out.setdefault(name, {})
        for d in have:
            for k, v in d.tables[name].items():
                if k in table and (table[k] != v or d.level(name) == "utt"):
                    raise DataDirError(f"{d.where(name, k)}: '{k} {v}' conflicts with "
                                       f"{owner[(name, k)].where(name, k)}: '{k} {table[k]}'; make the ids unique "
                                       f"(utils/copy_data_dir.sh --utt-prefix/--spk-prefix) or the values agree")
                table[k], owner[(name, k)] = v, d
    out["spk2utt"] = {s: " ".join(us) for s, us in utt2spk_to_spk2utt(out["utt2spk"]).items()}
    _write_dir(dest, out, srcs[0])
    logger.info("%s: combined %d utterances from %d data dirs", dest, len(out["utt2spk"]), len(srcs))
    if skip_fix:
        return None
    return fix_data_dir(dest, utt_extra_files=extra_files)


# ---------------------------------------------------------------------------------------------------
def copy_data_dir(src: str, dest: str, *, utt_prefix: str = "", utt_suffix: str = "", spk_prefix: str = "",
                  spk_suffix: str = "") -> None:
    """Copy a data dir, renaming utterances to <utt_prefix><utt><utt_suffix> and speakers likewise.

    Recording ids are kept when there is a segments file (wav.scp is then keyed by recording), and
    renamed with the utterances otherwise, as Kaldi's copy_data_dir.sh does.
    """
    for opt, val in (("utt-prefix", utt_prefix), ("utt-suffix", utt_suffix), ("spk-prefix", spk_prefix),
                     ("spk-suffix", spk_suffix)):
        if any(c.isspace() for c in val):
            raise DataDirError(f"--{opt} '{val}' contains whitespace; ids cannot")
    if os.path.abspath(src) == os.path.abspath(dest):
        raise DataDirError(f"{dest}: the destination must differ from the source")
    d = load_data_dir(src)
    rename = {"utt": lambda k: f"{utt_prefix}{k}{utt_suffix}", "spk": lambda k: f"{spk_prefix}{k}{spk_suffix}",
              "reco": lambda k: k}
    out = {}
    for name, table in d.tables.items():
        if name != "spk2utt":
            new = rename[d.level(name)]
            out[name] = {new(k): v for k, v in table.items()}
    out["utt2spk"] = {k: rename["spk"](v) for k, v in out["utt2spk"].items()}
    out["spk2utt"] = {s: " ".join(us) for s, us in utt2spk_to_spk2utt(out["utt2spk"]).items()}
    _write_dir(dest, out, src)
    logger.info("copied %s to %s (%d utterances)", src, dest, len(out["utt2spk"]))


# ---------------------------------------------------------------------------------------------------
def split_scp_keys(keys: Sequence[str], num_parts: int, utt2spk: Mapping[str, str] | None = None) -> list[list[str]]:
    """Split keys into ``num_parts`` contiguous parts the way Kaldi's split_scp.pl does.

    Without ``utt2spk``: sizes differ by at most one, the first parts taking the remainder. With it:
    each speaker's keys stay in one part; speakers are dealt out evenly, then boundary speakers move to
    the neighbouring part while that makes the two parts' sizes closer. More parts than keys (or than
    speakers) is an error, as in Kaldi.
    """
    if num_parts < 1:
        raise ValueError(f"number of parts must be >= 1, got {num_parts}")
    if not keys:
        raise DataDirError("nothing to split: no utterances")
    if utt2spk is None:
        if num_parts > len(keys):
            raise DataDirError(f"cannot split {len(keys)} utterances into {num_parts} parts: "
                               f"use at most {len(keys)} jobs")
        per, rem = divmod(len(keys), num_parts)
        bounds = [j * per + min(j, rem) for j in range(num_parts + 1)]
        return [list(keys[bounds[j]:bounds[j + 1]]) for j in range(num_parts)]
    groups: dict[str, list[str]] = {}
    for k in keys:
        if k not in utt2spk:
            raise DataDirError(f"utterance '{k}' is not in utt2spk")
        groups.setdefault(utt2spk[k], []).append(k)
    spks, n = list(groups), len(groups)
    if n < num_parts:
        raise DataDirError(f"cannot split {n} speakers into {num_parts} parts keeping speakers together: "
                           f"use at most {n} jobs, or split per utterance (--per-utt)")
    parts: list[list[str]] = [[] for _ in range(num_parts)]
    for i, s in enumerate(spks):
        parts[i * num_parts // n].append(s)
    size = [sum(len(groups[s]) for s in p) for p in parts]
    changed = True
    while changed:  # each move strictly reduces the sum of squared part sizes, so this ends
        changed = False
        for j in range(num_parts):
            if j < num_parts - 1 and parts[j]:
                c = len(groups[parts[j][-1]])
                if abs((size[j + 1] + c) - (size[j] - c)) < abs(size[j + 1] - size[j]):
                    parts[j + 1].insert(0, parts[j].pop())
                    size[j + 1], size[j], changed = size[j + 1] + c, size[j] - c, True
            if j > 0 and parts[j]:
                c = len(groups[parts[j][0]])
                if abs((size[j] - c) - (size[j - 1] + c)) < abs(size[j] - size[j - 1]):
                    parts[j - 1].append(parts[j].pop(0))
                    size[j - 1], size[j], changed = size[j - 1] + c, size[j] - c, True
    if any(not p for p in parts):
        raise DataDirError(f"splitting {n} speakers into {num_parts} parts left a part empty: use fewer jobs")
    return [[k for s in p for k in groups[s]] for p in parts]


def split_data(data_dir: str, nj: int, *, per_utt: bool = False) -> list[str]:
    """Split a data dir into ``nj`` data dirs, ``<dir>/split<nj>[utt]/<1..nj>``; return their paths.

    Like Kaldi's split_data.sh: by default each speaker's utterances stay in one part (so per-speaker
    CMVN works on the parts); ``per_utt`` balances utterances instead and writes ``split<nj>utt``.
    Nothing is rewritten when the parts are newer than every file of the data dir.
    """
    if nj < 1:
        raise DataDirError(f"number of jobs must be >= 1, got {nj}")
    data_dir = os.fspath(data_dir)
    base = os.path.join(data_dir, f"split{nj}{'utt' if per_utt else ''}")
    parts_dirs = [os.path.join(base, str(n)) for n in range(1, nj + 1)]
    names = table_files(data_dir) if os.path.isdir(data_dir) else {}

    def current(part: str) -> bool:
        return os.path.isdir(part) and set(table_files(part)) == set(names) and all(
            os.path.getmtime(os.path.join(part, n)) >= os.path.getmtime(os.path.join(data_dir, n)) for n in names)

    if names and all(current(p) for p in parts_dirs):
        logger.info("%s: up to date, not splitting again", base)
        return parts_dirs
    d = load_data_dir(data_dir)
    keys = _csorted(d.utt2spk)
    for part, utts in zip(parts_dirs, split_scp_keys(keys, nj, None if per_utt else d.utt2spk)):
        _write_dir(part, _filtered(d, utts), data_dir)
    logger.info("%s: split %d utterances into %d parts%s", base, len(keys), nj, "" if per_utt else " by speaker")
    return parts_dirs
