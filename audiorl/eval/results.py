"""RESULTS.md in the ESPnet layout: an environment header, then one table per experiment and unit.

Numbers come from ``result.json`` files (never from parsing result.txt), found under
``<exp>/<experiment>/decode*/**/score*/result.json``; the row name is the score directory relative to
the experiment (``decode_test/score_wer``). Each row gets a bootstrap 95% CI, optional extra columns
(keyword P/R/F, missing hypotheses), and, when a baseline experiment is named, the paired-test verdict
against the baseline's row for the same data set. Everything except ``write_results`` and
``environment_info`` is a pure function returning markdown.
"""

from __future__ import annotations

import datetime
import glob
import json
import importlib.metadata
import os
import platform
import subprocess
import sys
from typing import Callable, Mapping

import numpy as np

from audiorl.eval.sclite import ScoreFile, write_text_atomic, read_result
from audiorl.eval.stats import bootstrap_wer_ci, compare
from audiorl.log import get_logger

logger = get_logger(__name__)

Experiments = Mapping[str, Mapping[str, ScoreFile]]  # experiment -> dataset -> scores


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


# Optional columns by name (CLI --extra): header and how to compute the cell from a ScoreFile.
EXTRA_COLUMNS: dict[str, tuple[str, Callable[[ScoreFile], str]]] = {
    "kw_p": ("KW-P", lambda s: _pct(s.keywords.precision) if s.keywords else "-"),
    "kw_r": ("KW-R", lambda s: _pct(s.keywords.recall) if s.keywords else "-"),
    "kw_f": ("KW-F", lambda s: _pct(s.keywords.f1) if s.keywords else "-"),
    "missing": ("Missing hyps", lambda s: str(len(s.missing))),
    "rtf": ("RTF", lambda s: _rtf(s)),
}


def _rtf(s: ScoreFile) -> str:
    """Decoding real-time factor from the rtf.json that asr_decode/merge_decode write beside score_*/."""
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(s.path))), "rtf.json")
    try:
        with open(path) as f:
            return f"{json.load(f)['rtf']:.4f}"
    except (OSError, KeyError, ValueError):
        return "-"


def _git(args: list[str], cwd: str) -> str | None:
    try:
        r = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout.strip() if r.returncode == 0 else None


def _version(dist: str) -> str:
    # Read the installed metadata instead of importing torch (seconds of start-up for a version string).
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def environment_info(command: str | None = None, repo_dir: str = ".") -> dict[str, str]:
    """Facts for the header: date, OS, versions, git hash with dirty flag, and the producing command."""
    info = {
        "date": datetime.datetime.now().astimezone().strftime("%a %b %d %H:%M:%S %Z %Y"),
        "system": platform.platform(),
        "python version": sys.version.replace("\n", " "),
        "torch version": _version("torch"),
        "torchaudio version": _version("torchaudio"),
    }
    head = _git(["rev-parse", "HEAD"], repo_dir)
    if head:
        dirty = _git(["status", "--porcelain", "--untracked-files=no"], repo_dir)
        info["Git hash"] = head + (" (dirty: uncommitted changes)" if dirty else "")
        info["Commit date"] = _git(["log", "-1", "--format=%cd"], repo_dir) or "?"
    else:
        info["Git hash"] = "not a git checkout"
    if command is None:
        command = " ".join([os.path.basename(sys.executable), *sys.argv])
    info["command"] = command
    return info


def environment_md(info: Mapping[str, str]) -> str:
    lines = ["## Environments"]
    for k, v in info.items():
        lines.append(f"{'  ' if k == 'Commit date' else ''}- {k}: `{v}`")
    return "\n".join(lines) + "\n"


def find_scores(exp_root: str) -> dict[str, dict[str, ScoreFile]]:
    """Scan ``exp_root/*/decode*/**/score*/result.json`` (Kaldi flat and ESPnet2 nested layouts)."""
    out: dict[str, dict[str, ScoreFile]] = {}
    pattern = os.path.join(glob.escape(exp_root), "*", "decode*", "**", "score*", "result.json")
    for path in sorted(glob.glob(pattern, recursive=True)):
        rel = os.path.relpath(os.path.dirname(path), exp_root).split(os.sep)
        out.setdefault(rel[0], {})["/".join(rel[1:])] = read_result(path)
    if not out:
        logger.warning("no result.json under %s/*/decode*/**/score*/", exp_root)
    return out


def _match(dataset: str, base: Mapping[str, ScoreFile]) -> ScoreFile | None:
    """The baseline's row for a data set: same path, else same path below the decode dir if unique
    (decode dir names often carry the inference config, which may differ between experiments)."""
    if dataset in base:
        return base[dataset]
    tail = dataset.split("/", 1)[-1]
    cand = [k for k in base if k.split("/", 1)[-1] == tail]
    return base[cand[0]] if len(cand) == 1 else None


def _ci(s: ScoreFile, n_boot: int, seed: int) -> str:
    utts = list(s.utts.values())
    if not utts or s.totals.wrd == 0:
        return "-"
    _, lo, hi = bootstrap_wer_ci(np.array([c.err for c in utts]), np.array([c.wrd for c in utts]),
                                 n_boot=n_boot, seed=seed)
    return f"[{_pct(lo)}, {_pct(hi)}]"


def _versus(s: ScoreFile, b: ScoreFile | None, n_boot: int, seed: int) -> str:
    if b is None:
        return "n/a (not scored in baseline)"
    try:
        v = compare(b, s, n_boot=n_boot, seed=seed).verdict
    except ValueError as e:
        logger.warning("cannot compare %s with baseline: %s", s.path, e)
        return "n/a (different utterances or references)"
    return v[2:] if v.startswith("B ") else v  # 'B better, ...' -> 'better, ...'


def experiment_table_md(name: str, scores: Mapping[str, ScoreFile], *, extra: tuple[str, ...] = (),
                        baseline: Mapping[str, ScoreFile] | None = None, baseline_name: str | None = None,
                        n_boot: int = 1000, seed: int = 0) -> str:
    """``## name`` then one table per scoring unit (### WER / ### CER), rows sorted by data set."""
    unknown = [e for e in extra if e not in EXTRA_COLUMNS]
    if unknown:
        raise ValueError(f"unknown extra column(s) {unknown}; choose from {sorted(EXTRA_COLUMNS)}")
    parts = [f"## {name}"]
    for unit in sorted({s.unit for s in scores.values()}, key=lambda u: u != "word"):
        label = "WER" if unit == "word" else "CER"
        head = ["dataset", "Snt", "Wrd", "Corr", "Sub", "Del", "Ins", f"Err ({label})", "S.Err", "95% CI"]
        head += [EXTRA_COLUMNS[e][0] for e in extra]
        if baseline is not None:
            head.append(f"vs {baseline_name or 'baseline'}")
        rows = []
        for ds in sorted(d for d, s in scores.items() if s.unit == unit):
            s, t = scores[ds], scores[ds].totals
            row = [ds, str(t.snt), str(t.wrd)] + [f"{t.pct(k):.1f}" for k in ("corr", "sub", "del", "ins", "err", "serr")]
            row.append(_ci(s, n_boot, seed))
            row += [EXTRA_COLUMNS[e][1](s) for e in extra]
            if baseline is not None:
                row.append("(baseline)" if name == baseline_name else _versus(s, _match(ds, baseline), n_boot, seed))
            rows.append(row)
        parts += ["", f"### {label}", "", "|" + "|".join(head) + "|", "|" + "|".join("---" for _ in head) + "|"]
        parts += ["|" + "|".join(r) + "|" for r in rows]
    return "\n".join(parts) + "\n"


def results_md(experiments: Experiments, *, title: str = "RESULTS", env: Mapping[str, str] | None = None,
               extra: tuple[str, ...] = (), baseline: str | None = None, n_boot: int = 1000, seed: int = 0) -> str:
    """The whole document; ``env`` from ``environment_info`` (None leaves the header out)."""
    if baseline is not None and baseline not in experiments:
        raise ValueError(f"baseline experiment {baseline!r} not found; have {sorted(experiments)}")
    parts = ["<!-- Generated by audiorl.eval.results; edit the producing command, not this file -->",
             f"# {title}", ""]
    if env is not None:
        parts.append(environment_md(env))
    # The baseline's table first: the reader sees the reference numbers before the comparisons.
    order = sorted(experiments, key=lambda n: (n != baseline, n))
    for name in order:
        parts.append(experiment_table_md(name, experiments[name], extra=extra,
                                         baseline=experiments[baseline] if baseline else None,
                                         baseline_name=baseline, n_boot=n_boot, seed=seed))
    return "\n".join(parts)


def write_results(path: str, *, exp_root: str | None = None, experiments: Experiments | None = None,
                  command: str | None = None, repo_dir: str = ".", **kw) -> str:
    """Scan ``exp_root`` (or take ``experiments``), write the markdown atomically, return it."""
    if (exp_root is None) == (experiments is None):
        raise ValueError("give exactly one of exp_root or experiments")
    exps = find_scores(exp_root) if exp_root is not None else experiments
    md = results_md(exps, env=environment_info(command, repo_dir), **kw)
    write_text_atomic(path, md)
    return md
