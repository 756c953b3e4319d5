"""sclite-style ``result.txt`` plus a machine-readable ``result.json`` sidecar, and a reader for both.

``result.txt`` is for people and for the ESPnet habit of ``grep -e Avg -e SPKR result.txt``: the
"SYSTEM SUMMARY PERCENTAGES by SPEAKER" box (one row per speaker when utt2spk is given, then the Sum/Avg
row) followed by one ``id:/Scores:/REF:/HYP:/Eval:`` block per utterance, as sclite's ``-o all`` prints.
``result.json`` holds the same numbers as integers, per utterance, so that significance tests and
RESULTS.md never parse text. ``read_result`` prefers the JSON and falls back to the per-utterance
``Scores:`` lines of a text file, so ESPnet/sclite result.txt files can be compared too.
"""

from __future__ import annotations

import json
import os
import re
import statistics
from dataclasses import dataclass, field
from typing import Mapping

from audiorl.eval.wer import Counts, KeywordCounts, ScoreResult, sum_counts
from audiorl.fileio import atomic_write_text
from audiorl.log import get_logger

logger = get_logger(__name__)

FORMAT = "audiorl.eval.result/1"  # bump when the JSON layout changes incompatibly
_PCT = ("corr", "sub", "del", "ins", "err", "serr")


def write_text_atomic(path: str, text: str) -> None:
    # A crash mid-write must not leave a truncated result that later looks like a finished score.
    atomic_write_text(path, text)


def _fmt_pct(x: float) -> str:
    return f"{x:.1f}"


def summary_table(rows: Mapping[str, Counts], total: Counts, title: str = "hyp") -> str:
    """The sclite summary box; ``rows`` are per-speaker counts (may be empty)."""
    def fmt_counts(c: Counts) -> tuple[str, str, list[str]]:
        return str(c.snt), str(c.wrd), [_fmt_pct(c.pct(k)) for k in _PCT]

    body = [(name, *fmt_counts(c)) for name, c in rows.items()]
    sumrow = ("Sum/Avg", *fmt_counts(total))
    stats_rows = []
    if len(rows) > 1:
        # sclite's Mean/S.D./Median are over speakers, of counts and of per-speaker percentages.
        cols = [[float(c.snt) for c in rows.values()], [float(c.wrd) for c in rows.values()]]
        cols += [[c.pct(k) for c in rows.values()] for k in _PCT]
        for name, fn in (("Mean", statistics.fmean), ("S.D.", statistics.stdev), ("Median", statistics.median)):
            v = [fn(col) for col in cols]
            stats_rows.append((name, f"{v[0]:.1f}", f"{v[1]:.1f}", [_fmt_pct(x) for x in v[2:]]))

    all_rows = body + [sumrow] + stats_rows
    w_spk = max(7, *(len(r[0]) for r in all_rows))
    w_snt = max(5, *(len(r[1]) for r in all_rows))
    w_wrd = max(5, *(len(r[2]) for r in all_rows))
    w_pct = max(5, *(len(x) for r in all_rows for x in r[3]))

    def line(r) -> str:
        return (f"| {r[0]:<{w_spk}} | {r[1]:>{w_snt}} {r[2]:>{w_wrd}} | "
                + " ".join(f"{x:>{w_pct}}" for x in r[3]) + " |")

    header = (f"| {'SPKR':<{w_spk}} | {'# Snt':>{w_snt}} {'# Wrd':>{w_wrd}} | "
              + " ".join(f"{h:>{w_pct}}" for h in ("Corr", "Sub", "Del", "Ins", "Err", "S.Err")) + " |")
    width = len(header)
    out = [" " * max(0, (width - 36) // 2) + "SYSTEM SUMMARY PERCENTAGES by SPEAKER", "",
           "," + "-" * (width - 2) + ".", "|" + title[: width - 4].center(width - 2) + "|",
           "|" + "-" * (width - 2) + "|", header,
           "|" + "-" * (w_spk + 2) + "+" + "-" * (w_snt + w_wrd + 3) + "+" + "-" * (width - w_spk - w_snt - w_wrd - 9)
           + "|"]
    out += [line(r) for r in body]
    if body:
        out.append("|" + "=" * (width - 2) + "|")
    out.append(line(sumrow))
    if stats_rows:
        out.append("|" + "=" * (width - 2) + "|")
        out += [line(r) for r in stats_rows]
    out.append("`" + "-" * (width - 2) + "'")
    return "\n".join(out) + "\n"


def format_result_txt(res: ScoreResult, *, utt2spk: Mapping[str, str] | None = None, title: str = "hyp",
                      ref_path: str | None = None, hyp_path: str | None = None) -> str:
    t = res.totals
    head = [f"audiorl.eval scoring, unit={res.unit}, norm={json.dumps(res.norm.to_dict(), ensure_ascii=False)}"]
    if ref_path:
        head.append(f"REF file: {ref_path}")
    if hyp_path:
        head.append(f"HYP file: {hyp_path}")
    head.append(res.summary_line())
    if res.missing:
        head.append(f"WARNING: {len(res.missing)} reference utterance(s) had no hypothesis and were scored as "
                    f"all deletions: {' '.join(res.missing[:20])}{' ...' if len(res.missing) > 20 else ''}")
    if res.extra:
        head.append(f"WARNING: {len(res.extra)} hypothesis utterance(s) had no reference and were ignored: "
                    f"{' '.join(res.extra[:20])}{' ...' if len(res.extra) > 20 else ''}")
    kt = res.keyword_totals
    if kt is not None:
        head.append(f"Keywords: expected {kt.expected}, found {kt.found}, hits {kt.hits}; P {100 * kt.precision:.1f} "
                    f"R {100 * kt.recall:.1f} F {100 * kt.f1:.1f}")
    bt = res.bias_totals
    if bt is not None:
        head.append(f"Biasing lists: {bt.expected} listed words spoken, {bt.hits} of them written; "
                    f"{bt.false_alarms} false alarms (list words written beyond the reference) in "
                    f"{res.bias_false_alarm_utts} utterances")
    rows = res.by_group(utt2spk) if utt2spk is not None else {}
    parts = ["\n".join(head), "", summary_table(rows, t, title), ""]
    for u, s in res.utts.items():
        c = s.counts
        ref, hyp, ev = s.pra()
        parts.append(f"id: ({u})\nScores: (#C #S #D #I) {c.corr} {c.sub} {c.dels} {c.ins}\n{ref}\n{hyp}\n{ev}\n")
    return "\n".join(parts)


def result_json(res: ScoreResult, *, utt2spk: Mapping[str, str] | None = None, ref_path: str | None = None,
                hyp_path: str | None = None) -> dict:
    t = res.totals
    d = {
        "format": FORMAT,
        "unit": res.unit,
        "norm": res.norm.to_dict(),
        "ref": ref_path,
        "hyp": hyp_path,
        # wer is a fraction; None when there are errors but no reference units (not JSON-representable).
        "totals": {**t.to_dict(), "wer": t.wer if t.wrd or not t.err else None},
        "missing": res.missing,
        "extra": res.extra,
        "utts": {u: {"corr": c.corr, "sub": c.sub, "del": c.dels, "ins": c.ins, **({"missing": True} if s.missing else {})}
                 for u, s in res.utts.items() for c in (s.counts,)},
    }
    if utt2spk is not None:
        d["speakers"] = {k: v.to_dict() for k, v in res.by_group(utt2spk).items()}
    if res.keywords is not None:
        d["keywords"] = {"totals": res.keyword_totals.to_dict(),
                         "utts": {u: [k.expected, k.found, k.hits] for u, k in res.keywords.items()}}
    if res.bias is not None:
        bt = res.bias_totals
        d["bias_lists"] = {"totals": {**bt.to_dict(), "false_alarms": bt.false_alarms},
                           "utts": {u: [k.expected, k.found, k.hits] for u, k in res.bias.items()}}
    return d


def write_result(out_dir: str, res: ScoreResult, *, utt2spk: Mapping[str, str] | None = None,
                 ref_path: str | None = None, hyp_path: str | None = None, title: str | None = None) -> tuple[str, str]:
    """Write ``out_dir/result.txt`` and ``out_dir/result.json``; returns both paths."""
    os.makedirs(out_dir, exist_ok=True)
    txt = os.path.join(out_dir, "result.txt")
    js = os.path.join(out_dir, "result.json")
    title = title or (hyp_path or "hyp")
    write_text_atomic(txt, format_result_txt(res, utt2spk=utt2spk, title=title, ref_path=ref_path, hyp_path=hyp_path))
    write_text_atomic(js, json.dumps(result_json(res, utt2spk=utt2spk, ref_path=ref_path, hyp_path=hyp_path),
                                 ensure_ascii=False, indent=1) + "\n")
    return txt, js


@dataclass
class ScoreFile:
    """What ``read_result`` returns: totals and per-utterance counts (in file order)."""

    path: str
    totals: Counts
    utts: dict[str, Counts]
    unit: str = "word"
    norm: dict = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    speakers: dict[str, Counts] = field(default_factory=dict)
    keywords: KeywordCounts | None = None
    keywords_utts: dict[str, KeywordCounts] = field(default_factory=dict)


_ID = re.compile(r"^id:\s*\((.*)\)\s*$")
_SCORES = re.compile(r"^Scores:\s*\(#C #S #D #I\)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*$")


def _read_txt(path: str) -> ScoreFile:
    utts: dict[str, Counts] = {}
    cur = None
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            m = _ID.match(line)
            if m:
                cur = m.group(1)
                continue
            m = _SCORES.match(line)
            if m:
                if cur is None:
                    raise ValueError(f"{path}:{lineno}: 'Scores:' line without a preceding 'id: (...)' line")
                c, s, d, i = map(int, m.groups())
                utts[cur] = Counts(1, c, s, d, i, int(s + d + i > 0))
                cur = None
    if not utts:
        raise ValueError(f"{path}: no per-utterance 'id:'/'Scores:' blocks; rescore with audiorl.bin.score, or run "
                         f"sclite with '-o all' (pralign) so that per-utterance counts are available")
    return ScoreFile(path, sum_counts(utts.values()), utts)


def read_result(path: str) -> ScoreFile:
    """Read a score directory, a result.json, or a result.txt (sidecar JSON preferred when present)."""
    if os.path.isdir(path):
        cand = [os.path.join(path, n) for n in ("result.json", "result.txt")]
        found = [p for p in cand if os.path.isfile(p)]
        if not found:
            raise FileNotFoundError(f"{path}: no result.json or result.txt; score it with `python -m audiorl.bin.score`")
        path = found[0]
    elif path.endswith(".txt"):
        side = os.path.join(os.path.dirname(path), "result.json")
        if os.path.isfile(side):
            path = side
    if not path.endswith(".json"):
        return _read_txt(path)
    with open(path, encoding="utf-8") as f:
        d = json.load(f)
    if d.get("format") != FORMAT:
        raise ValueError(f"{path}: format {d.get('format')!r}, expected {FORMAT!r}; rescore with audiorl.bin.score")
    utts = {u: Counts.from_dict(c) for u, c in d["utts"].items()}
    sf = ScoreFile(path, sum_counts(utts.values()), utts, d.get("unit", "word"), d.get("norm", {}),
                   d.get("missing", []), {k: Counts.from_dict(v) for k, v in d.get("speakers", {}).items()})
    if sf.totals.to_dict() != {k: d["totals"][k] for k in sf.totals.to_dict()}:
        # Totals are derived data; a mismatch means the file was edited or merged by hand.
        logger.warning("%s: stored totals differ from the sum of per-utterance counts; using the sum", path)
    if "keywords" in d:
        sf.keywords_utts = {u: KeywordCounts(*v) for u, v in d["keywords"]["utts"].items()}
        sf.keywords = sum(sf.keywords_utts.values(), KeywordCounts())
    return sf


def pool_draws(scores: list[ScoreFile]) -> ScoreFile:
    """One score of K scorings of the same utterances (e.g. K synthesis draws of a sampled system): each utterance's
    counts summed over the draws. The utterance stays the unit the bootstrap and the paired tests resample (the draws
    of one sentence are not independent of each other), while the sampling noise of a single draw averages out. Two
    pooled systems pair only when both pool the same number of draws (their reference counts must match). Keyword
    counts are pooled too when every draw has them."""
    if not scores:
        raise ValueError("pool_draws: no scores to pool")
    first = scores[0]
    for s in scores[1:]:
        if s.utts.keys() != first.utts.keys():
            only = sorted(set(first.utts) ^ set(s.utts))
            raise ValueError(f"{s.path} and {first.path} scored different utterances ({len(only)} in one only, e.g. "
                             f"{only[:3]}); every draw must be synthesised and scored on the same data dir")
        for u, c in s.utts.items():
            if c.wrd != first.utts[u].wrd:
                raise ValueError(f"{s.path}: utterance {u!r} has {c.wrd} reference units but {first.utts[u].wrd} in "
                                 f"{first.path}; score every draw against the same reference and normalisation")
    utts = {u: sum_counts(s.utts[u] for s in scores) for u in first.utts}
    speakers: dict[str, Counts] = {}
    for s in scores:
        for k, v in s.speakers.items():
            speakers[k] = speakers.get(k, Counts()) + v
    out = ScoreFile(" + ".join(s.path for s in scores), sum_counts(utts.values()), utts, first.unit, first.norm,
                    sorted({m for s in scores for m in s.missing}), speakers)
    if all(s.keywords_utts for s in scores):  # keyword hits pool like errors (expected counts scale with the draws)
        out.keywords_utts = {u: sum((s.keywords_utts.get(u, KeywordCounts()) for s in scores), KeywordCounts())
                             for u in first.keywords_utts}
        out.keywords = sum(out.keywords_utts.values(), KeywordCounts())
    return out
