"""Validation of a Kaldi data directory: the rules of Kaldi's ``utils/validate_data_dir.sh``, and more.

Kaldi stops at the first problem; this collects them all. Each message names the file and line, what is
wrong and the fix; a rule broken on many lines is one message listing the other lines. Rules:

* every table file: UTF-8, no byte-order mark, no CR, no empty line, ends in a newline, keys unique and
  sorted as ``LC_ALL=C sort`` sorts them;
* ``utt2spk`` (required): exactly 2 fields; sorted by speaker too (speaker ids prefix utterance ids)
  unless ``no_spk_sort``; ``spk2utt`` (required) is its exact inverse;
* utterance ids of text, segments (or wav.scp), feats.scp, utt2dur, utt2num_frames, utt2lang, utt2uniq,
  vad.scp, utt2warp equal those of utt2spk; speaker ids of cmvn.scp, spk2gender, spk2warp equal
  spk2utt's; with segments, recording ids of segments, wav.scp, reco2file_and_channel, reco2dur agree;
* values: segments ``<utt> <reco> <start> <end>`` with 0 <= start < end; positive durations; positive
  integer frame counts; spk2gender m/f; warp factors in (0.5, 1.5); reco2file_and_channel channel A/B;
  no ``~`` in wav.scp; text without CR, non-printable characters (unless ``non_print``), non-ASCII
  whitespace, or the reserved ``<s> </s> #0``; empty transcripts are counted (error if ``no_empty_text``);
* free per-utterance/speaker/recording files (keywords, utt2category, ...; see ``file_kind``): sorted,
  unique, keys a subset of the utterances/speakers/recordings, empty values allowed;
* ``check_audio``: every recording loads, is non-empty, and contains its segments (0.1 s tolerance).
"""

from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass, field
from typing import NamedTuple

from audiorl.data.kaldi import DataDirError, c_sort_key

# Files whose keys must be exactly the utterances ("utt"), speakers ("spk") or recordings ("reco": the
# utterances themselves when there is no segments file), as validate_data_dir.sh requires.
EXACT_FILES: dict[str, str] = {
    "utt2spk": "utt", "text": "utt", "segments": "utt", "feats.scp": "utt", "utt2dur": "utt",
    "utt2num_frames": "utt", "utt2lang": "utt", "utt2uniq": "utt", "vad.scp": "utt", "utt2warp": "utt",
    "spk2utt": "spk", "cmvn.scp": "spk", "spk2gender": "spk", "spk2warp": "spk",
    "wav.scp": "reco", "reco2file_and_channel": "reco", "reco2dur": "reco",
}
SCALAR_FILES = ("frame_shift",)  # non-table files of a data dir, copied along verbatim
RESERVED_TOKENS = ("<s>", "</s>", "#0")  # used inside Kaldi LMs/lexicon FSTs: never in transcripts
SEGMENT_TOLERANCE = 0.1  # seconds a segment may run past its recording (Kaldi's rounding slack)
_MAX_DIFF = 5  # ids shown in a partial diff
_MAX_LINES = 5  # extra line numbers listed for a rule broken on many lines
_OK_FORMAT_CHARS = {"\u200c", "\u200d"}  # ZWNJ/ZWJ: needed to spell Persian, Hindi, ...


def file_kind(name: str) -> tuple[str, bool] | None:
    """(level, exact) of a data-dir file from its name, or None for files that are not tables.

    ``exact`` files must hold every id of their level; the others ("free" files, e.g. ``keywords``,
    ``utt2category``, ``text.phn``, ``xvector.scp``, ``spk2age``, ``reco2vol``) may cover some ids only.
    Hidden files, editor backups (``*~``) and names with other extensions are not tables.
    """
    if name in EXACT_FILES:
        return EXACT_FILES[name], True
    if name.startswith(".") or name.endswith("~") or name in SCALAR_FILES:
        return None
    if re.fullmatch(r"spk\d+\.scp", name):  # ESPnet's per-utterance spk1.scp (reference of speaker 1)
        return "utt", False
    if name.startswith("spk2") or (name.startswith("spk_") and name.endswith(".scp")):
        return "spk", False
    if name.startswith("reco2"):
        return "reco", False
    if name.startswith("utt2") or name == "keywords" or re.fullmatch(r"text([._].+)?|.+\.scp", name):
        return "utt", False
    return None


def table_files(data_dir: str, extra: dict[str, str] | None = None) -> dict[str, tuple[str, bool]]:
    """Table files present in ``data_dir`` -> (level, exact); ``extra`` adds free files: name -> level."""
    extra = extra or {}
    kinds = {n: (extra[n], False) if n in extra else file_kind(n) for n in sorted(os.listdir(data_dir))
             if os.path.isfile(os.path.join(data_dir, n))}
    return {n: k for n, k in kinds.items() if k is not None}


class Line(NamedTuple):
    key: str
    value: str  # the rest of the line, stripped of surrounding blanks and trailing CRs
    lineno: int


@dataclass
class ScannedTable:
    """A table file read leniently: its lines, and the format problems met while reading them."""

    path: str
    lines: list[Line] = field(default_factory=list)
    bad_utf8: list[tuple[int, str]] = field(default_factory=list)  # (line, detail); decoded with surrogateescape
    cr_lines: list[int] = field(default_factory=list)
    empty_lines: list[int] = field(default_factory=list)
    no_final_newline: bool = False
    bom: bool = False
    num_lines: int = 0

    def first(self) -> dict[str, Line]:
        """key -> first line with that key, in file order."""
        out: dict[str, Line] = {}
        for line in self.lines:
            out.setdefault(line.key, line)
        return out


def scan_table(path: str) -> ScannedTable:
    """Read ``<key> <value>`` lines, recording (not raising on) encoding and format problems.

    Fields are separated by spaces and tabs only, as Kaldi's readers and awk split them.
    """
    if not os.path.isfile(path):
        raise DataDirError(f"{path}: no such file")
    with open(path, "rb") as f:
        data = f.read()
    st = ScannedTable(path)
    raws = data.split(b"\n")
    if raws[-1] == b"":
        raws.pop()
    else:
        st.no_final_newline = True
    st.num_lines = len(raws)
    for lineno, raw in enumerate(raws, start=1):
        if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
            st.bom, raw = True, raw[3:]
        if b"\r" in raw:
            st.cr_lines.append(lineno)
            raw = raw.rstrip(b"\r")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            st.bad_utf8.append((lineno, f"byte {raw[e.start]:#04x} at column {e.start + 1}"))
            text = raw.decode("utf-8", "surrogateescape")
        parts = re.split(r"[ \t]+", text.strip(" \t"), maxsplit=1)
        if not parts[0]:
            st.empty_lines.append(lineno)
        else:
            st.lines.append(Line(parts[0], parts[1] if len(parts) > 1 else "", lineno))
    return st


@dataclass
class ValidationReport:
    """What validate_data_dir found: ``errors`` and ``warnings`` (one message each) and ``counts``."""

    data_dir: str
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    def raise_if_invalid(self) -> None:
        if self.errors:
            raise DataDirError(f"{self.data_dir}: {len(self.errors)} error(s):\n" + "\n".join(self.errors))


@dataclass
class _Issue:
    path: str
    lineno: int | None
    what: str
    fix: str
    warning: bool
    more: list[int] = field(default_factory=list)
    raw: str = ""  # a complete message (id diffs), rendered as is

    def render(self) -> str:
        if self.raw:
            return self.raw
        loc = f"{self.path}:{self.lineno}" if self.lineno else self.path
        also = ""
        if self.more:
            rest = len(self.more) - _MAX_LINES
            also = (f" (also on line{'s' if len(self.more) > 1 else ''} {', '.join(map(str, self.more[:_MAX_LINES]))}"
                    + (f" and {rest} more)" if rest > 0 else ")"))
        return f"{loc}: {self.what}{also}; fix: {self.fix}"


def _number(s: str) -> float | None:
    """float(s) if s is a finite number, else None."""
    return float(s) if re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", s) else None


def value_problem(name: str, value: str) -> str | None:
    """What is wrong with the value of a line of an exact file, or None (text and spk2utt: elsewhere)."""
    f = value.split()
    if name in ("utt2spk", "utt2lang", "utt2uniq"):
        what = {"utt2spk": "<spk>", "utt2lang": "<language>", "utt2uniq": "<original-utt>"}[name]
        return None if len(f) == 1 else f"expected 2 fields '<utt> {what}', got {len(f) + 1}"
    if name in ("utt2dur", "reco2dur"):
        if len(f) != 1 or (_number(f[0]) or 0) <= 0:
            return f"expected '<id> <duration in seconds>' with a duration > 0, got '{value}'"
    elif name == "utt2num_frames":
        if len(f) != 1 or not re.fullmatch(r"\+?\d+", f[0]) or int(f[0]) <= 0:
            return f"expected '<utt> <number of frames>' with an integer > 0, got '{value}'"
    elif name == "segments":
        if len(f) != 3:
            return f"expected 4 fields '<utt> <recording> <start> <end>', got {len(f) + 1}"
        start, end = _number(f[1]), _number(f[2])
        if start is None or end is None:
            return f"start and end must be numbers of seconds, got '{f[1]}' '{f[2]}'"
        if start < 0 or end <= start:
            return f"need 0 <= start < end, got start {f[1]} end {f[2]} (write the real end time, not -1)"
    elif name == "spk2gender":
        if len(f) != 1 or f[0] not in ("m", "f"):
            return f"expected '<spk> m' or '<spk> f', got '{value}'"
    elif name in ("spk2warp", "utt2warp"):
        if len(f) != 1 or not 0.5 < (_number(f[0]) or 0) < 1.5:
            return f"expected a warp factor between 0.5 and 1.5, got '{value}'"
    elif name == "reco2file_and_channel":
        if len(f) != 2 or f[1] not in ("A", "B", "1"):
            return f"expected '<recording> <file> <channel>' with channel A or B, got '{value}'"
    elif not value:
        return "no value"
    return None


class _Validator:
    def __init__(self, data_dir: str, **opts: bool) -> None:
        self.d = os.fspath(data_dir).rstrip("/") or "/"
        self.o = opts
        self.issues: dict[tuple[str, str], _Issue] = {}
        self.report = ValidationReport(self.d)
        self.tables: dict[str, ScannedTable] = {}
        self.fix_dir = f"utils/fix_data_dir.sh {self.d}"

    def add(self, path: str, lineno: int | None, rule: str, what: str, fix: str, *, warning: bool = False) -> None:
        """One message per (file, rule): later lines breaking the same rule are listed in the first."""
        issue = self.issues.get((path, rule))
        if issue is None:
            self.issues[(path, rule)] = _Issue(path, lineno, what, fix, warning)
        elif lineno is not None:
            issue.more.append(lineno)

    def p(self, name: str) -> str:
        return os.path.join(self.d, name)

    def load(self, name: str, *, allow_empty: bool = False) -> ScannedTable | None:
        """Read a table (None if absent) and check the rules every table file follows."""
        path = self.p(name)
        if not os.path.isfile(path):
            return None
        try:
            st = self.tables[name] = scan_table(path)
        except OSError as e:
            self.add(path, None, "unreadable", f"cannot read it ({e.strerror})", "check the file's permissions")
            return None
        if st.bom:
            self.add(path, 1, "bom", "starts with a UTF-8 byte-order mark",
                     f"remove it: sed -i '1s/^\\xEF\\xBB\\xBF//' {path}")
        for lineno, detail in st.bad_utf8:
            self.add(path, lineno, "utf8", f"not valid UTF-8 ({detail})", f"convert the file to UTF-8, e.g. "
                     f"iconv -f latin1 -t utf-8 {path} > {path}.new && mv {path}.new {path}")
        for lineno in st.cr_lines:
            self.add(path, lineno, "cr", "carriage return (Windows CRLF line ending)",
                     f"strip it: sed -i 's/\\r$//' {path}")
        for lineno in st.empty_lines:
            self.add(path, lineno, "empty", "empty line", f"delete empty lines: sed -i '/^[[:space:]]*$/d' {path}")
        if st.no_final_newline:
            self.add(path, st.num_lines, "newline", "the last line does not end in a newline",
                     f"append one: echo >> {path}")
        seen: dict[str, int] = {}
        prev: Line | None = None
        for line in st.lines:
            if line.key in seen:
                self.add(path, line.lineno, "dup", f"duplicate key '{line.key}' (first on line {seen[line.key]})",
                         f"keep one line per key ({self.fix_dir} keeps the first)")
                continue
            seen[line.key] = line.lineno
            if prev is not None and c_sort_key(line.key) < c_sort_key(prev.key):
                self.add(path, line.lineno, "sort",
                         f"not sorted: key '{line.key}' comes after '{prev.key}' (line {prev.lineno})",
                         f"sort it: LC_ALL=C sort -k1,1 {path} -o {path} (or run {self.fix_dir})")
            prev = line
            if not line.value and not allow_empty:
                self.add(path, line.lineno, "novalue", f"key '{line.key}' has no value", "complete or delete the line")
        return st

    def compare(self, ref_path: str, ref: dict[str, int], st: ScannedTable, what: str, *, exact: bool,
                fix: str) -> None:
        """Kaldi's "ids differ" check, with a partial diff of the first differing ids and their lines."""
        got = {k: v.lineno for k, v in st.first().items()}
        missing = [k for k in ref if k not in got] if exact else []
        extra = [k for k in got if k not in ref]
        if not missing and not extra:
            return
        name, rname = os.path.basename(st.path), os.path.basename(ref_path)
        counts = ([f"{len(missing)} of {rname} missing here"] if missing else []) + (
            [f"{len(extra)} not in {rname}"] if extra else [])
        diff = [f"  -{k}  ({ref_path}:{ref[k]})" for k in missing[:_MAX_DIFF]]
        diff += [f"  +{k}  ({st.path}:{got[k]})" for k in extra[:_MAX_DIFF]]
        if len(missing) > _MAX_DIFF or len(extra) > _MAX_DIFF:
            diff.append("  ...")
        loc = f"{st.path}:{got[extra[0]]}" if extra else st.path
        rule = "must equal" if exact else "must be a subset of"
        msg = (f"{loc}: {what} ids {rule} those of {ref_path} ({len(ref)} vs {len(got)}): {', '.join(counts)}; "
               f"partial diff (- only in {rname}, + only in {name}):\n" + "\n".join(diff) + f"\n  fix: {fix}")
        self.issues[(st.path, f"ids:{ref_path}")] = _Issue(st.path, None, "", "", False, raw=msg)

    def run(self) -> ValidationReport:
        if not os.path.isdir(self.d):
            self.report.errors.append(f"{self.d}: no such directory; give the path of a Kaldi data dir")
            return self.report
        utts = self.check_utt2spk()
        spks = self.check_spk2utt()
        if not self.o["no_text"] and not os.path.isfile(self.p("text")):
            self.add(self.p("text"), None, "missing", "no such file",
                     "create it, or pass --no-text if the data has no transcripts")
        self.check_text()
        recos = self.check_recordings(utts)
        if not self.o["no_feats"] and not os.path.isfile(self.p("feats.scp")):
            self.add(self.p("feats.scp"), None, "missing", "no such file",
                     "compute features (utils/make_fbank.sh), or pass --no-feats if this data dir has none")
        refs = {"utt": utts, "spk": spks, "reco": recos}
        for name, (level, exact) in table_files(self.d).items():
            if name in ("utt2spk", "spk2utt", "wav.scp", "segments"):
                continue  # compared above, by their own rules
            st = self.tables.get(name)
            if st is None:  # (text was loaded by check_text)
                st = self.load(name, allow_empty=True)
                if st is not None and exact:
                    self.check_values(name, st)
            ref_path, ref = refs[level]
            if ref is not None and st is not None:
                what = {"utt": "utterance", "spk": "speaker", "reco": "recording"}[level]
                fix = (f"run {self.fix_dir} to keep only the {what}s present in every file" if exact else
                       f"delete the lines of unknown {what}s (utils/fix_data_dir.sh does)")
                self.compare(ref_path, ref, st, what, exact=exact, fix=fix)
        if self.o["check_audio"] and "wav.scp" in self.tables:
            self.check_audio()
        c = self.report.counts
        c["utterances"], c["speakers"] = len(utts[1] or {}), len(spks[1] or {})
        c["recordings"] = len(self.tables["wav.scp"].first()) if "wav.scp" in self.tables else 0
        c.setdefault("empty_text", 0)
        for issue in self.issues.values():
            (self.report.warnings if issue.warning else self.report.errors).append(issue.render())
        return self.report

    def check_values(self, name: str, st: ScannedTable) -> None:
        for line in st.lines:
            problem = value_problem(name, line.value)
            if problem:  # one message per kind of problem: the rule is the message without its values
                rule = "value:" + re.sub(r"'[^']*'|\S*\d\S*", "", problem)
                self.add(st.path, line.lineno, rule, problem, "correct or delete the line (then run fix_data_dir.sh)")
            elif name == "reco2file_and_channel" and line.value.split()[1] == "1":  # Kaldi: only a warning
                self.add(st.path, line.lineno, "chan1", "channel is '1'; it should be A or B",
                         f"replace the channel by A (sed -i 's/ 1$/ A/' {st.path})", warning=True)

    def check_utt2spk(self) -> tuple[str, dict[str, int] | None]:
        path = self.p("utt2spk")
        own_spk = f"awk '{{print $1, $1}}' {self.p('text')} > {path}"
        st = self.load("utt2spk", allow_empty=True)
        if st is None:
            self.add(path, None, "missing", "no such file: every data dir needs one",
                     f"create it; if speakers are unknown, make each utterance its own speaker: {own_spk}")
            return path, None
        if not st.lines:
            self.add(path, None, "nolines", "no utterances (the file is empty)", "fill it, or remove the data dir")
        self.check_values("utt2spk", st)
        first = st.first()
        if not self.o["no_spk_sort"]:
            # Kaldi's `sort -k2 -C utt2spk`: in utterance order, speakers must not decrease, so that each
            # speaker's utterances are contiguous (split_data.sh and spk2utt rely on it).
            prev = None
            for line in sorted(first.values(), key=lambda x: c_sort_key(x.key)):
                if prev is not None and c_sort_key(line.value) < c_sort_key(prev.value):
                    self.add(path, line.lineno, "spksort",
                             f"not sorted by speaker: utterance '{line.key}' of speaker '{line.value}' sorts after "
                             f"'{prev.key}' of speaker '{prev.value}' (line {prev.lineno})",
                             "make speaker ids prefixes of utterance ids (<spk>-<utt>), or pass --no-spk-sort")
                    break
                prev = line
        spks = {line.value for line in first.values()}
        if len(spks) == 1 and len(first) > 1:
            self.add(path, None, "onespk", f"all {len(first)} utterances belong to one speaker "
                     f"'{next(iter(spks))}': per-speaker normalisation and speaker-balanced splits see one speaker",
                     f"if speakers are unknown, make each utterance its own speaker: {own_spk}", warning=True)
        return path, {k: v.lineno for k, v in first.items()}

    def check_spk2utt(self) -> tuple[str, dict[str, int] | None]:
        path, u2s = self.p("spk2utt"), self.tables.get("utt2spk")
        regen = f"regenerate it: utils/utt2spk_to_spk2utt.pl {self.p('utt2spk')} > {path}"
        st = self.load("spk2utt")
        if st is None:
            self.add(path, None, "missing", "no such file", regen)
            return (u2s.path, {v.value: v.lineno for v in u2s.first().values()}) if u2s else (path, None)
        spk_of: dict[str, tuple[str, int]] = {}
        for line in st.lines:
            ulist = line.value.split()
            if ulist != sorted(ulist, key=c_sort_key):
                self.add(path, line.lineno, "uttorder", f"utterances of speaker '{line.key}' are not sorted", regen)
            for u in ulist:
                if u in spk_of:
                    self.add(path, line.lineno, "twice", f"utterance '{u}' listed twice (first under speaker "
                             f"'{spk_of[u][0]}', line {spk_of[u][1]})", regen)
                spk_of.setdefault(u, (line.key, line.lineno))
        if u2s is not None:  # Kaldi: spk2utt_to_utt2spk.pl spk2utt must reproduce utt2spk
            u2s_first = u2s.first()
            bad = [(k, v) for k, v in u2s_first.items() if spk_of.get(k, ("",))[0] != (v.value.split() or [""])[0]]
            bad += [(u, None) for u in spk_of if u not in u2s_first]
            for u, line in bad[:_MAX_DIFF]:
                what = (f"utterance '{u}' is not in {u2s.path}" if line is None else
                        f"utterance '{u}' is under speaker '{spk_of[u][0]}' but {u2s.path}:{line.lineno} says "
                        f"'{line.value}'" if u in spk_of else
                        f"utterance '{u}' of speaker '{line.value}' ({u2s.path}:{line.lineno}) is missing")
                self.add(path, spk_of[u][1] if u in spk_of else None, f"match:{u}", f"does not match utt2spk: {what}",
                         regen)
            if len(bad) > _MAX_DIFF:
                self.add(path, None, "match:more", f"does not match utt2spk in {len(bad) - _MAX_DIFF} more "
                         f"utterances", regen)
        return path, {k: v.lineno for k, v in st.first().items()}

    def check_text(self) -> None:
        st = self.load("text", allow_empty=True)
        if st is None:
            return
        empty = []
        for line in st.lines:
            v = line.value
            if not v:
                empty.append(line)
            if v.isprintable() and not any(t in v for t in RESERVED_TOKENS):
                continue  # the common case, checked at C speed: nothing below can fire
            for tok in v.split():
                if tok in RESERVED_TOKENS:
                    self.add(st.path, line.lineno, f"reserved{tok}", f"transcript of '{line.key}' contains '{tok}', "
                             f"reserved for Kaldi language models and lexicons", f"remove or rename '{tok}'")
            for col, ch in enumerate(v, start=1):
                if ch in " \t\r" or unicodedata.category(ch) == "Cs":  # CR and bad UTF-8: reported already
                    continue
                where = f"at character {col} of the transcript of '{line.key}'"
                if ch.isspace():
                    self.add(st.path, line.lineno, "uspace", f"whitespace U+{ord(ch):04X} "
                             f"({unicodedata.name(ch, 'control')}) {where}: Kaldi splits words on space and tab "
                             f"only", "replace it with a space")
                elif (not self.o["non_print"] and not ch.isprintable() and unicodedata.category(ch) != "Cn"
                      and ch not in _OK_FORMAT_CHARS):
                    self.add(st.path, line.lineno, "nonprint", f"non-printable character U+{ord(ch):04X} {where}",
                             "remove it, or pass --non-print to allow non-printable characters")
        self.report.counts["empty_text"] = len(empty)
        if empty:
            strict = self.o["no_empty_text"]
            self.add(st.path, empty[0].lineno, "emptytext",
                     f"{len(empty)} utterance(s) have an empty transcript (first '{empty[0].key}')",
                     f"drop them with utils/fix_data_dir.sh --drop-empty-text true {self.d}, or keep them on purpose"
                     + ("" if strict else " (with --no-empty-text this is an error)"), warning=not strict)
            self.issues[(st.path, "emptytext")].more = [line.lineno for line in empty[1:]]

    def check_recordings(self, utts: tuple[str, dict[str, int] | None]) -> tuple[str, dict[str, int] | None]:
        """wav.scp and segments; returns the reference for recording-keyed files (path, ids)."""
        wav_path, seg_path = self.p("wav.scp"), self.p("segments")
        wav = self.load("wav.scp")
        seg = self.load("segments", allow_empty=True)
        if seg is not None and wav is None:
            self.add(seg_path, None, "nowav", "segments exists but wav.scp does not",
                     f"create {wav_path} with the recordings")
        elif wav is None and not self.o["no_wav"]:
            self.add(wav_path, None, "missing", "no such file", "create it, or pass --no-wav if there is no audio")
        for line in wav.lines if wav else []:
            if "~" in line.key or "~" in line.value:
                self.add(wav.path, line.lineno, "tilde", "contains '~': fopen does not expand ~ (home directory), "
                         "and names ending in ~ are editor backups", "write the absolute path of the real audio file")
        if seg is not None:
            self.check_values("segments", seg)
        if utts[1] is None:
            return wav_path, None
        fix = f"run {self.fix_dir} to keep only the utterances present in every file"
        if seg is None:
            if wav is not None:
                self.compare(*utts, wav, "utterance", exact=True, fix=fix)
            return utts
        self.compare(*utts, seg, "utterance", exact=True, fix=fix)
        recos: dict[str, int] = {}
        for line in seg.lines:
            if line.value:
                recos.setdefault(line.value.split()[0], line.lineno)
        if wav is not None:
            self.compare(seg_path, recos, wav, "recording", exact=True,
                         fix=f"every recording of segments must be in wav.scp and vice versa: run {self.fix_dir}")
        return seg_path, recos

    def check_audio(self) -> None:
        from audiorl.data.audio import AudioError, load_wav_scp_entry  # numpy/soundfile: only needed here

        wav, seg = self.tables["wav.scp"], self.tables.get("segments")
        dur: dict[str, tuple[float, int]] = {}  # recording -> (seconds, wav.scp line)
        for key, line in wav.first().items():
            try:
                x, sr = load_wav_scp_entry(line.value, where="")
            except AudioError as e:
                self.add(wav.path, line.lineno, "audio", f"cannot read recording '{key}': {e}",
                         f"fix the path or command, or delete the recording and run {self.fix_dir}")
                continue
            if x.size == 0:
                self.add(wav.path, line.lineno, "noaudio", f"recording '{key}' has no samples",
                         f"re-create it, or delete it and run {self.fix_dir}")
            dur[key] = (x.size / sr, line.lineno)
        self.report.counts["recordings_read"] = len(dur)
        for line in seg.lines if seg else []:
            f = line.value.split()
            end = _number(f[2]) if len(f) == 3 else None
            if end is not None and f[0] in dur and end > dur[f[0]][0] + SEGMENT_TOLERANCE:
                self.add(seg.path, line.lineno, "pastend", f"segment '{line.key}' ends at {end:.2f} s, past the end "
                         f"of recording '{f[0]}' ({dur[f[0]][0]:.2f} s long, {wav.path}:{dur[f[0]][1]})",
                         f"correct the end time (at most the recording length), or delete the segment and run "
                         f"{self.fix_dir}")
        for name in ("reco2dur",) if seg else ("utt2dur", "reco2dur"):  # stale durations: Kaldi does not look
            for line in self.tables[name].lines if name in self.tables else []:
                d = _number(line.value)
                if d is not None and line.key in dur and abs(d - dur[line.key][0]) > SEGMENT_TOLERANCE:
                    self.add(self.p(name), line.lineno, "staledur", f"'{line.key}' is {d:.2f} s here but the audio "
                             f"is {dur[line.key][0]:.2f} s", f"delete {self.p(name)} and regenerate it", warning=True)


def validate_data_dir(path: str, *, no_feats: bool = False, no_wav: bool = False, no_text: bool = False,
                      check_audio: bool = False, non_print: bool = False, no_spk_sort: bool = False,
                      no_empty_text: bool = False) -> ValidationReport:
    """Check a data dir against every rule of Kaldi's validate_data_dir.sh (and the module's extras).

    ``no_feats``/``no_wav``/``no_text``: feats.scp/wav.scp/text may be absent (they are checked when
    present). ``check_audio``: load every recording. ``non_print``: allow non-printable characters in
    text. ``no_spk_sort``: do not require utt2spk to be sorted by speaker. ``no_empty_text``: empty
    transcripts are errors rather than warnings. Never raises for a bad data dir: see ``report.errors``.
    """
    opts = dict(no_feats=no_feats, no_wav=no_wav, no_text=no_text, check_audio=check_audio,
                non_print=non_print, no_spk_sort=no_spk_sort, no_empty_text=no_empty_text)
    return _Validator(path, **opts).run()
