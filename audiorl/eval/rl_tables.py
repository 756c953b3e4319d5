"""The RL ablation tables of RESULTS.md (issue 4; in the spirit of the paper's Table 1, PAPER.md s3).

One markdown table per (ablation, test set): rows are systems (the SFT baseline first, then RL variants),
columns WER, Sub/Del/Ins, keyword recall and the paired-test verdict against the baseline (Wilcoxon on
per-utterance errors, bootstrap CI of the WER difference: ``audiorl.eval.stats.compare``); then keyword recall pooled
over the sets with its own paired test (``keyword_table_md``). Scores come from
``result.json`` files found by ``audiorl.eval.results.find_scores``.

A row may pool several runs of one config ("grpo_a+grpo_a_s2+grpo_a_s3", e.g. seeds): each utterance's errors (and
keyword hits) are summed over the runs (``pool_draws``), so the row's WER is the runs' mean and its paired test asks
whether the config, not one lucky run, beats the baseline. A single baseline run is then counted once per pooled run
(it is one deterministic decoding, so this is exact); a pooled baseline pairs only with rows pooling as many runs.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from audiorl.eval.results import _versus
from audiorl.eval.sclite import ScoreFile, pool_draws
from audiorl.eval.stats import format_p, wilcoxon_signed_rank

MARKER = "<!-- audiorl.eval.rl_tables: everything below is generated -->"


def find_set(scores: Mapping[str, ScoreFile], dset: str, unit: str = "word") -> ScoreFile | None:
    """The score of data set ``dset`` in one experiment ({'decode_test_beam1/score_word': ...}): the decode dir
    is decode_<dset>_<inference tag>, the tag without '_' (so 'test' does not match decode_test_unseen_spk_*)."""
    prefix = f"decode_{dset}_"
    hits = [k for k, s in scores.items() if s.unit == unit and k.split("/", 1)[0].startswith(prefix)
            and "_" not in k.split("/", 1)[0][len(prefix):]]
    return scores[sorted(hits)[0]] if hits else None


def runs_of(exp: str) -> list[str]:
    """The experiment names a row pools: 'a+b+c' -> ['a', 'b', 'c']."""
    return [e for e in exp.split("+") if e]


def pooled_set(experiments: Mapping[str, Mapping[str, ScoreFile]], exp: str, dset: str,
               repeat: int = 1) -> ScoreFile | None:
    """``find_set`` of every run of ``exp`` pooled per utterance (None when any run lacks the set); a single run is
    repeated ``repeat`` times (a deterministic baseline set against a row that pools that many runs)."""
    scores = [find_set(experiments.get(e, {}), dset) for e in runs_of(exp)]
    if not scores or any(s is None for s in scores):
        return None
    if len(scores) == 1 and repeat > 1:
        scores = scores * repeat
    return scores[0] if len(scores) == 1 else pool_draws(scores)  # type: ignore[arg-type]


def _baseline_for(n_runs: int, n_base: int) -> int | None:
    """How many times the baseline is counted against a row pooling ``n_runs`` runs; None when they cannot pair."""
    if n_runs == n_base:
        return 1
    return n_runs if n_base == 1 else None


def rl_table_md(title: str, systems: Sequence[tuple[str, str]], experiments: Mapping[str, Mapping[str, ScoreFile]],
                sets: Sequence[str], *, n_boot: int = 1000, seed: int = 0) -> str:
    """``### title`` and one table per data set; systems = [(label, experiment name or 'a+b+...' pooled runs)], the
    first is the baseline."""
    parts = [f"### {title}"]
    base_label, base_exp = systems[0]
    for dset in sets:
        head = ["system", "WER", "Sub", "Del", "Ins", "KW-R", f"vs {base_label}"]
        rows = []
        n_base = len(runs_of(base_exp))
        for label, exp in systems:
            s = pooled_set(experiments, exp, dset)
            if s is None:
                rows.append([label] + ["-"] * 5 + ["(not scored)"])
                continue
            t = s.totals
            kw = f"{100 * s.keywords.recall:.1f}" if s.keywords else "-"
            rep = _baseline_for(len(runs_of(exp)), n_base)
            if exp == base_exp:
                vs = "(baseline)"
            elif rep is None:
                vs = f"n/a (pools {len(runs_of(exp))} runs, the baseline {n_base})"
            else:
                vs = _versus(s, pooled_set(experiments, base_exp, dset, rep), n_boot, seed)
            rows.append([label] + [f"{t.pct(k):.2f}" for k in ("err", "sub", "del", "ins")] + [kw, vs])
        parts += ["", f"{dset}:", "", "|" + "|".join(head) + "|", "|" + "|".join("---" for _ in head) + "|"]
        parts += ["|" + "|".join(r) + "|" for r in rows]
    kw_table = keyword_table_md(systems, experiments, sets) if len(sets) > 1 else ""
    return "\n".join(parts + (["", kw_table] if kw_table else [])) + "\n"


def keyword_table_md(systems: Sequence[tuple[str, str]], experiments: Mapping[str, Mapping[str, ScoreFile]],
                     sets: Sequence[str]) -> str:
    """Keyword recall pooled over ``sets`` (one test set rarely holds enough keywords to show a change), each system
    against the first: Wilcoxon signed-rank on per-utterance keyword hits over the utterances with keywords (the
    expected counts are the same for both, so a hit difference is a recall difference). '' when nothing has keywords."""
    def hits(exp: str, repeat: int = 1) -> dict[tuple[str, str], tuple[int, int]] | None:
        out = {}
        for dset in sets:
            s = pooled_set(experiments, exp, dset, repeat)
            if s is None or not s.keywords_utts:
                return None
            out.update({(dset, u): (k.expected, k.hits) for u, k in s.keywords_utts.items() if k.expected})
        return out

    base_exp = systems[0][1]
    if not hits(base_exp):
        return ""
    head = ["system", "keywords", "hits", "KW-R", f"vs {systems[0][0]} (utterances +/-, Wilcoxon)"]
    rows = []
    for label, exp in systems:
        h = hits(exp)
        if h is None:
            rows.append([label, "-", "-", "-", "(not scored)"])
            continue
        n, k = sum(e for e, _ in h.values()), sum(x for _, x in h.values())
        rep = _baseline_for(len(runs_of(exp)), len(runs_of(base_exp)))
        base = hits(base_exp, rep) if rep else None
        if exp == base_exp:
            vs = "(baseline)"
        elif base is None:
            vs = "n/a (pools a different number of runs)"
        elif set(h) != set(base):
            vs = "n/a (other utterances or keywords)"
        else:
            d = [h[u][1] - base[u][1] for u in sorted(base)]
            _, p = wilcoxon_signed_rank(d)
            pos, neg = sum(x > 0 for x in d), sum(x < 0 for x in d)
            vs = f"+{pos}/-{neg}, {format_p(p)}"
        rows.append([label, str(n), str(k), f"{100 * k / n:.1f}" if n else "-", vs])
    parts = [f"keywords pooled over {', '.join(sets)}:", "", "|" + "|".join(head) + "|",
             "|" + "|".join("---" for _ in head) + "|"]
    return "\n".join(parts + ["|" + "|".join(r) + "|" for r in rows]) + "\n"


def rl_section_md(tables: Sequence[tuple[str, Sequence[tuple[str, str]]]],
                  experiments: Mapping[str, Mapping[str, ScoreFile]], sets: Sequence[str], **kw) -> str:
    parts = [MARKER, "## RL ablations (GRPO from the SFT model)", "",
             "WER/Sub/Del/Ins in % of reference words; KW-R = keyword recall (%); the last column is the paired "
             "test against the first row (Wilcoxon signed-rank on per-utterance errors, 95% bootstrap CI of the "
             "WER difference in points).", ""]
    parts += [rl_table_md(title, systems, experiments, sets, **kw) for title, systems in tables]
    return "\n".join(parts)


def replace_section(doc: str, section: str) -> str:
    """``doc`` with everything from MARKER on replaced by ``section`` (appended when absent)."""
    head = doc.split(MARKER, 1)[0].rstrip("\n")
    return (head + "\n\n" if head else "") + section
