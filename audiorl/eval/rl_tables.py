"""The RL ablation tables of RESULTS.md (issue 4; in the spirit of the paper's Table 1, PAPER.md s3).

One markdown table per (ablation, test set): rows are systems (the SFT baseline first, then RL variants),
columns WER, Sub/Del/Ins, keyword recall and the paired-test verdict against the baseline (Wilcoxon on
per-utterance errors, bootstrap CI of the WER difference: ``audiorl.eval.stats.compare``); then keyword recall pooled
over the sets with its own paired test (``keyword_table_md``). Scores come from
``result.json`` files found by ``audiorl.eval.results.find_scores``.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from audiorl.eval.results import _versus
from audiorl.eval.sclite import ScoreFile
from audiorl.eval.stats import format_p, wilcoxon_signed_rank

MARKER = "<!-- audiorl.eval.rl_tables: everything below is generated -->"


def find_set(scores: Mapping[str, ScoreFile], dset: str, unit: str = "word") -> ScoreFile | None:
    """The score of data set ``dset`` in one experiment ({'decode_test_beam1/score_word': ...}): the decode dir
    is decode_<dset>_<inference tag>, the tag without '_' (so 'test' does not match decode_test_unseen_spk_*)."""
    prefix = f"decode_{dset}_"
    hits = [k for k, s in scores.items() if s.unit == unit and k.split("/", 1)[0].startswith(prefix)
            and "_" not in k.split("/", 1)[0][len(prefix):]]
    return scores[sorted(hits)[0]] if hits else None


def rl_table_md(title: str, systems: Sequence[tuple[str, str]], experiments: Mapping[str, Mapping[str, ScoreFile]],
                sets: Sequence[str], *, n_boot: int = 1000, seed: int = 0) -> str:
    """``### title`` and one table per data set; systems = [(label, experiment name)], the first is the baseline."""
    parts = [f"### {title}"]
    base_label, base_exp = systems[0]
    for dset in sets:
        head = ["system", "WER", "Sub", "Del", "Ins", "KW-R", f"vs {base_label}"]
        rows = []
        base = find_set(experiments.get(base_exp, {}), dset)
        for label, exp in systems:
            s = find_set(experiments.get(exp, {}), dset)
            if s is None:
                rows.append([label] + ["-"] * 5 + ["(not scored)"])
                continue
            t = s.totals
            kw = f"{100 * s.keywords.recall:.1f}" if s.keywords else "-"
            vs = "(baseline)" if exp == base_exp else _versus(s, base, n_boot, seed)
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
    def hits(exp: str) -> dict[tuple[str, str], tuple[int, int]] | None:
        out = {}
        for dset in sets:
            s = find_set(experiments.get(exp, {}), dset)
            if s is None or not s.keywords_utts:
                return None
            out.update({(dset, u): (k.expected, k.hits) for u, k in s.keywords_utts.items() if k.expected})
        return out

    base = hits(systems[0][1])
    if not base:
        return ""
    head = ["system", "keywords", "hits", "KW-R", f"vs {systems[0][0]} (utterances +/-, Wilcoxon)"]
    rows = []
    for label, exp in systems:
        h = hits(exp)
        if h is None:
            rows.append([label, "-", "-", "-", "(not scored)"])
            continue
        n, k = sum(e for e, _ in h.values()), sum(x for _, x in h.values())
        if exp == systems[0][1]:
            vs = "(baseline)"
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
