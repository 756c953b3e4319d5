"""RESULTS.md of the TTS recipe (one table per test set: real audio, resynthesis, TTS) and a PNG of their mels.

    python -m audiorl.bin.tts_results --out RESULTS.md --title "synth_en TTS" \
        --system "test|real|exp/real_test" --system "test|resynthesis|exp/token2mel_x/resyn_test" \
        --system "test|TTS|exp/tts_lm_x/synth_test" --png exp/mels_test.png --png_set test

A system dir holds ``wav.scp``, ``judge/score_word/result.json`` (tts.sh stage 12: judge WER), ``score_tts/
tts_metrics.json`` (SIM, MCD, duration ratio[, DNSMOS]), optionally ``score_mos/tts_metrics.json`` (DNSMOS on a
subset) and ``rtf.json`` (synthesis speed). The first system of a set is the baseline of the paired WER test
(Wilcoxon signed-rank on per-utterance errors, audiorl.eval.stats.compare). Missing files leave '-' cells.
A set whose first row is labelled SFT is an RL table (the paper's Table 2): each row is compared with SFT and checked
against issue 6's targets (rl_targets). With ``--draws K`` the rows of a table pool K synthesis draws each (draw k of
a system dir in ``<dir>/draw<k>/``, draw 1 the dir itself) wherever every row of it has them, e.g. an RL table or a
table of RL variants against each other; a table with a deterministic row (real, resynthesis) stays on draw 1. One
draw of a sampled TTS system moves the judge WER by up to ~2 points here, as much as the differences between RL rows.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys


from audiorl.log import get_logger, setup_logging

logger = get_logger("tts_results")


def _json(path: str) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def _mean(m: dict, key: str, fmt: str = "{:.3f}", ci: bool = False) -> str:
    v = m.get(key) or {}
    if "mean" not in v:
        return "-"
    s = fmt.format(v["mean"])
    if ci and "ci95" in v:
        s += " [" + ", ".join(fmt.format(x) for x in v["ci95"]) + "]"
    return s


def draw_dirs(d: str, draws: int) -> list[str]:
    """The dirs of draws 1..K of a system: draw 1 is the system dir itself, draw k its ``draw<k>/`` (tts.sh stage 11
    --synth_draws K)."""
    return [d] + [os.path.join(d, f"draw{k}") for k in range(2, draws + 1)]


def _result(d: str) -> str:
    return os.path.join(d, "judge", "score_word", "result.json")


def scored_draws(d: str, draws: int) -> int:
    """How many of draws 1..K of system dir d are scored, counted from draw 1 up to the first missing one."""
    n = 0
    for x in draw_dirs(d, draws):
        if not os.path.isfile(_result(x)):
            break
        n += 1
    return n


def scored(dirs: list[str]):
    """The judge's score of a system over the draw dirs given (pooled per utterance when more than one), or None
    while any of them is unscored."""
    from audiorl.eval.sclite import pool_draws, read_result

    if not all(os.path.isfile(_result(x)) for x in dirs):
        return None
    return read_result(_result(dirs[0])) if len(dirs) == 1 else pool_draws([read_result(_result(x)) for x in dirs])


def _pooled_metrics(ms: list[dict]) -> dict:
    """Per-metric mean over draws (each draw's own mean; n summed) of score_tts's tts_metrics.json dicts."""
    ms = [m for m in ms if m]
    out: dict = {}
    for k in {k for m in ms for k in m}:
        vals = [m[k] for m in ms if isinstance(m.get(k), dict) and "mean" in m[k]]
        if vals:
            out[k] = {"mean": sum(v["mean"] for v in vals) / len(vals), "n": sum(v.get("n", 0) for v in vals)}
    return out


def system_row(label: str, d: str, base, n_boot: int, is_base: bool = False,
               draws: int = 1) -> tuple[list[str], dict]:
    """A table row of system dir d. With draws K > 1 the judge WER pools draws 1..K per utterance (pool_draws) and
    SIM / duration ratio / MCD are the mean over the draws; DNSMOS and RTF stay draw 1's."""
    from audiorl.eval.results import _ci
    from audiorl.eval.stats import compare

    dirs = draw_dirs(d, draws)
    sf = scored(dirs)
    per_draw = [_json(os.path.join(x, "score_tts", "tts_metrics.json")) for x in dirs]
    tts = per_draw[0] if draws == 1 else _pooled_metrics(per_draw)
    mos = _json(os.path.join(d, "score_mos", "tts_metrics.json")) or per_draw[0]
    rtf = _json(os.path.join(d, "rtf.json"))
    wer = sf.totals.wer if sf is not None else None
    vs = "(baseline)" if is_base else "-"
    if sf is not None and base is not None and not is_base:
        try:
            vs = compare(base, sf, n_boot=n_boot).verdict.removeprefix("B ")
        except ValueError as e:
            vs = f"n/a ({e})"[:60]
    speed = "-"
    if "rtf" in rtf:
        speed = f"{rtf['rtf']:.3f} ({rtf.get('rtf_lm', 0):.3f} / {rtf.get('rtf_token2mel', 0):.3f} / " \
                f"{rtf.get('rtf_vocoder', 0):.3f})"
    snt = "-" if sf is None else str(len(sf.utts)) + (f" x {draws}" if draws > 1 else "")
    row = [label, f"`{d}`", snt,
           f"{100 * wer:.1f}" if wer is not None else "-", _ci(sf, n_boot, 0) if sf else "-", vs,
           _mean(tts, "sim_ref"), _mean(tts, "sim_spk"), _mean(mos, "dnsmos_ovrl", "{:.2f}"),
           _mean(mos, "dnsmos_sig", "{:.2f}"), _mean(mos, "dnsmos_bak", "{:.2f}"), _mean(mos, "dnsmos_p808", "{:.2f}"),
           str((mos.get("dnsmos_ovrl") or {}).get("n", "-")), _mean(tts, "dur_ratio"), _mean(tts, "mcd", "{:.2f}"),
           speed]
    mean = lambda m, k: (m.get(k) or {}).get("mean")  # noqa: E731
    return row, {"wer": wer, "sim": mean(tts, "sim_ref"), "dur": mean(tts, "dur_ratio"), "verdict": vs, "scored": sf}


HEAD = ["system", "dir", "Snt", "judge WER %", "95% CI", "vs first row (paired)", "SIM ref", "SIM spk", "DNSMOS OVRL",
        "SIG", "BAK", "P808", "MOS n", "dur ratio", "MCD dB", "RTF (LM / t2m / vocoder)"]


def set_table(dset: str, systems: list[tuple[str, str]], n_boot: int, draws: int = 1) -> str:
    """One set's table. With ``draws`` > 1 every row pools the same number of synthesis draws, the most that all rows
    have scored (at most ``draws``), so that the rows stay paired; a row with draw 1 only (a deterministic system such
    as real or resynthesis, or a sampled one not yet redrawn) keeps the whole table on draw 1."""
    rl = systems[0][0] == "SFT"
    k = min(scored_draws(d, draws) for _, d in systems) if draws > 1 else 1
    if k < draws and (rl or k > 1):  # an RL table, or sampled rows some of which lack draws: say what is pooled
        logger.warning("%s: only %d of %d synthesis draws are scored in every row; pooling %d (run tts.sh stages "
                       "11-12 with --synth_draws %d)", dset, k, draws, max(k, 1), draws)
    k = max(k, 1)
    base = scored(draw_dirs(systems[0][1], k))
    rows, metrics = [], {}
    for i, (label, d) in enumerate(systems):
        row, m = system_row(label, d, base, n_boot, is_base=i == 0, draws=k)
        rows.append(row)
        metrics[label] = m
    lines = [f"## {dset}", ""]
    if k > 1:
        lines += [f"Judge WER pooled over {k} synthesis draws of every system (each utterance's errors summed over "
                  f"its draws; the tests and intervals resample utterances); SIM, duration ratio and MCD: mean over "
                  f"the draws; DNSMOS and RTF: draw 1.", ""]
    lines += ["|" + "|".join(HEAD) + "|", "|" + "|".join("---" for _ in HEAD) + "|"]
    lines += ["|" + "|".join(r) + "|" for r in rows]
    if rl:
        return "\n".join(lines + [""] + rl_targets(metrics, n_boot)) + "\n"
    wers = {k: m["wer"] for k, m in metrics.items()}
    lines += ["", "Targets (issue 5), measured with this judge:"]
    real, res, tts = wers.get("real"), wers.get("resynthesis"), wers.get("TTS")
    if real is not None and res is not None:
        ratio = res / real if real > 0 else float("inf")
        lines.append(f"- resynthesis WER / real WER = {ratio:.2f} (target <= 2: {'met' if ratio <= 2 else 'NOT met'})")
    voc = wers.get("vocoded")
    if real is not None and voc is not None and res is not None:  # where resynthesis loses its words
        lines.append(f"- of the {100 * (res - real):+.1f} points resynthesis adds to real: mel + vocoder alone "
                     f"(vocoded) {100 * (voc - real):+.1f}, speech tokens + token-to-mel {100 * (res - voc):+.1f}")
    if tts is not None:
        ok = 0.05 <= tts <= 0.30
        lines.append(f"- TTS WER = {100 * tts:.1f}% (target roughly 5-30%: {'met' if ok else 'NOT met'})")
    return "\n".join(lines) + "\n"


def rl_targets(metrics: dict[str, dict], n_boot: int = 1000) -> list[str]:
    """Each RL row against SFT (the first row), then issue 6's targets. Row names follow the recipe's variants:
    'diffro' = DiffRO alone, 'comb_filter*' = GRPO + DiffRO with the advantage filter, '*r12*' / '*r123*' = with R2.
    A combined row against DiffRO also gets their paired test (when both rows carry their ``scored`` results): two
    synthesis draws of one model differ by up to ~2 points here, so a point estimate alone does not decide it."""
    sft = metrics["SFT"]
    out = ["Against SFT (judge WER relative change; paired test; SIM and duration-ratio changes):"]
    if sft["wer"] is None:
        return out + ["- SFT is not scored yet"]
    for label, m in metrics.items():
        if label == "SFT" or m["wer"] is None:
            continue
        rel = (m["wer"] - sft["wer"]) / sft["wer"] if sft["wer"] > 0 else float("nan")
        sim = f"{m['sim'] - sft['sim']:+.3f}" if m["sim"] is not None and sft["sim"] is not None else "-"
        dur = f"{100 * (m['dur'] / sft['dur'] - 1):+.1f}%" if m["dur"] and sft["dur"] else "-"
        out.append(f"- {label}: WER {100 * m['wer']:.1f}% ({100 * rel:+.1f}% rel., {m['verdict']}); SIM {sim}; "
                   f"duration ratio {dur}")
    targets: list[str] = []  # DiffRO / combined / R2 lines for rows with Table 2's names; SIM drops for any row
    d = metrics.get("diffro")
    if d and d["wer"] is not None and sft["wer"] > 0:
        rel = 1 - d["wer"] / sft["wer"]
        targets.append(f"- DiffRO lowers judge WER by {100 * rel:.1f}% relative (target >= 20%: "
                      f"{'met' if rel >= 0.2 else 'NOT met'})")
    for label, m in metrics.items():
        if label.startswith("comb_filter") and m["wer"] is not None and d and d["wer"] is not None:
            paired = ""
            if m.get("scored") is not None and d.get("scored") is not None:
                from audiorl.eval.stats import compare

                try:
                    paired = compare(d["scored"], m["scored"], n_boot=n_boot).verdict.removeprefix("B ")
                except ValueError as e:  # not the same utterances
                    paired = f"n/a ({e})"[:60]
            if m["wer"] <= d["wer"]:
                ok = "met"
            elif paired and not paired.startswith(("worse", "n/a")):
                ok = "NOT met by the point estimate, but not significantly worse"
            else:
                ok = "NOT met"
            vs = f"; paired against DiffRO: {paired}" if paired else ""
            targets.append(f"- {label} WER {100 * m['wer']:.1f}% vs DiffRO {100 * d['wer']:.1f}% (target: at least as "
                          f"good: {ok}{vs})")
    for label, m in metrics.items():
        if label != "SFT" and m["sim"] is not None and sft["sim"] is not None:
            drop = sft["sim"] - m["sim"]
            if drop > 0.01:
                targets.append(f"- {label}: SIM drops by {drop:.3f} (target <= 0.01: NOT met)")
        if ("r12" in label) and m["dur"] and sft["dur"]:
            dev = abs(m["dur"] / sft["dur"] - 1)
            targets.append(f"- {label} (with R2): duration ratio within {100 * dev:.1f}% of SFT's (target <= 5%: "
                          f"{'met' if dev <= 0.05 else 'NOT met'})")
    if targets:  # a tuning comparison with other labels and no SIM drop has none to report
        out += ["", "Targets (issue 6):", *targets]
    return out


def mel_png(path: str, systems: list[tuple[str, str]], n_utts: int, title: str) -> list[str]:
    """Log-mel spectrograms (rows: utterances, columns: systems) of the first ``n_utts`` common utterances."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from audiorl.eval.mcd import resample
    from audiorl.eval.sim import open_audio
    from audiorl.fileio import atomic_write_bytes
    from audiorl.models.vocoder import MelConfig, mel_spectrogram

    audios = [open_audio(os.path.join(d, "wav.scp")) for _, d in systems]
    common = sorted(set.intersection(*(set(a) for a in audios)))[:n_utts]
    if not common:
        raise ValueError(f"no utterance is in every system's wav.scp ({[d for _, d in systems]})")
    mc = MelConfig()
    fig = Figure(figsize=(4.2 * len(systems), 2.6 * len(common)), constrained_layout=True)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(common), len(systems), squeeze=False)

    for r, u in enumerate(common):
        mels = []
        for audio in audios:
            w, sr = audio.load(u)
            mels.append(mel_spectrogram(resample(w, sr, mc.sample_rate), mc).numpy())  # (T, M)
        seconds = max(m.shape[0] for m in mels) / mc.frames_per_second  # one time axis per row
        for c, ((label, _), mel) in enumerate(zip(systems, mels)):
            ax = axes[r][c]
            ax.imshow(mel.T, origin="lower", aspect="auto", vmin=-11.5, vmax=max(2.0, float(mel.max())),
                      extent=(0, mel.shape[0] / mc.frames_per_second, 0, mel.shape[1]))
            ax.set_xlim(0, seconds)
            ax.set_title(f"{label}: {u}", fontsize=8)
            ax.set_xlabel("s", fontsize=7)
            ax.set_ylabel("mel bin", fontsize=7)
            ax.tick_params(labelsize=6)
    fig.suptitle(title, fontsize=10)
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    atomic_write_bytes(path, buf.getvalue())
    return common


def main(argv: list[str] | None = None) -> int:
    raw = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="tts_results", description=__doc__.split("\n\n")[0])
    p.add_argument("--system", action="append", default=[], metavar="SET|LABEL|DIR",
                   help="a row: data set, label (real, resynthesis, TTS, ...) and system dir; repeat, in row order")
    p.add_argument("--out", default="RESULTS.md")
    p.add_argument("--title", default="TTS RESULTS")
    p.add_argument("--png", default="", help="write the mel-spectrogram figure of --png_set's systems here")
    p.add_argument("--png_set", default="", help="data set of the figure (default: the first one)")
    p.add_argument("--png_utts", type=int, default=3, help="utterances (rows) in the figure")
    p.add_argument("--n_boot", type=int, default=1000, help="bootstrap resamples of the WER intervals")
    p.add_argument("--draws", type=int, default=1,
                   help="pool the judge WER over synthesis draws 1..K of every row (draw k of DIR in DIR/draw<k>; "
                        "tts.sh --synth_draws) in each table whose rows all have them (a table with real or resynthesis "
                        "stays on draw 1)")
    p.add_argument("--reward_model", action="append", default=[], metavar="SET|DIR",
                   help="a token-to-text decode dir (result.json) of SET's ground-truth tokens: its WER is reported")
    a = p.parse_args(argv)
    setup_logging()
    from audiorl.eval.results import environment_info, environment_md
    from audiorl.fileio import atomic_write_text

    sets: dict[str, list[tuple[str, str]]] = {}
    for spec in a.system:
        parts = spec.split("|")
        if len(parts) != 3 or not all(parts):
            p.error(f"--system {spec!r}: expected SET|LABEL|DIR")
        sets.setdefault(parts[0], []).append((parts[1], parts[2]))
    if not sets:
        p.error("give at least one --system SET|LABEL|DIR")
    if a.draws < 1:
        p.error(f"--draws {a.draws}: must be >= 1")
    command = shlex.join(["python", "-m", "audiorl.bin.tts_results", *raw])
    parts = ["<!-- Generated by audiorl.bin.tts_results; edit the producing command, not this file -->",
             f"# {a.title}", "", environment_md(environment_info(command)),
             "Judge WER: the ASR recipe's SFT model on each system's audio (greedy), 95% bootstrap interval over "
             "utterances; 'vs first row': paired test against the first system of the set. SIM: resemblyzer cosine "
             "to the real recording (ref) and to the speaker's other real recordings (spk). DNSMOS: speechmos, on "
             "'MOS n' utterances. dur ratio: synthesised / real duration (silence-trimmed). MCD: mel cepstral "
             "distortion with DTW (audiorl.eval.mcd; compare systems scored here only). RTF: synthesis seconds per "
             "second of audio of one job.", ""]
    for dset, systems in sets.items():
        parts.append(set_table(dset, systems, a.n_boot, a.draws))
    if a.reward_model:
        from audiorl.eval.results import _ci
        from audiorl.eval.sclite import read_result

        parts.append("## Token-to-text reward model (DiffRO's R) on ground-truth speech tokens\n")
        for spec in a.reward_model:
            dset, _, d = spec.partition("|")
            res = read_result(os.path.join(d, "result.json"))
            parts.append(f"- {dset}: WER {100 * res.totals.wer:.1f}% {_ci(res, a.n_boot, 0)} on {res.totals.snt} "
                         f"utterances (`{d}`)")
        parts.append("")
    if a.png:
        dset = a.png_set or next(iter(sets))
        if dset not in sets:
            p.error(f"--png_set {dset}: no --system of that set")
        try:
            utts = mel_png(a.png, sets[dset], a.png_utts, f"{a.title}: log-mel, {dset}")
            parts.append(f"Mel spectrograms ({', '.join(lbl for lbl, _ in sets[dset])}) of {', '.join(utts)}: "
                         f"`{a.png}`\n")
        except (ValueError, OSError) as e:
            logger.error("no figure: %s", e)
            return 1
    atomic_write_text(a.out, "\n".join(parts))
    logger.info("wrote %s", a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
