"""Score synthesised speech against the real recordings: SIM, MCD-DTW, duration ratio, DNSMOS.

    python -m audiorl.bin.score_tts --synth exp/x/synth_test/wav.scp --ref data/test --out exp/x/synth_test/score_tts
    python -m audiorl.bin.score_tts --synth exp/x/synth_test --ref data/test --out ... --no-mos --no-sim

Synthesised utterance ids must match the reference data dir's (or be mapped with --utt2ref). Writes
one Kaldi table per metric under --out (sim_ref, sim_spk, mcd, dur_ratio, dnsmos_{ovrl,sig,bak,p808}),
per_utt.tsv with all of them, tts_metrics.json (mean, std, 95% bootstrap CI of the mean, n) and prints
a one-line summary. Intelligibility (judge-ASR WER) is scored separately by the ASR decoder. Score the
real recordings themselves (--synth data/test/wav.scp --ref data/test) for the DNSMOS ceiling.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

import numpy as np

from audiorl.data.audio import AudioError
from audiorl.data.kaldi import DataDirError, read_table, write_table
from audiorl.log import get_logger, setup_logging

logger = get_logger("audiorl.bin.score_tts")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m audiorl.bin.score_tts", description=__doc__.split("\n")[0])
    p.add_argument("--synth", required=True, help="synthesised audio: a wav.scp file or a data dir")
    p.add_argument("--ref", required=True, help="real data dir of the same utterances (wav.scp, utt2spk)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--utt2ref", help="table '<synth-utt> <ref-utt>' pairing each synthesised utterance with a "
                                     "reference (e.g. its prompt); default: the same id")
    p.add_argument("--no-mos", action="store_true", help="skip DNSMOS (the slow part: ~1 s/utt on CPU)")
    p.add_argument("--no-sim", action="store_true", help="skip speaker similarity")
    p.add_argument("--no-mcd", action="store_true", help="skip MCD and the duration ratio")
    p.add_argument("--device", default=None, help="device for the speaker encoder (default: cuda if available)")
    p.add_argument("--mos-exact", action="store_true",
                   help="score short clips as speechmos does (doubled to >= 9 s, every window; 1-9x slower)")
    p.add_argument("--mos-threads", type=int, default=1, help="ONNX threads for DNSMOS")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for the CIs")
    p.add_argument("--max-utts", type=int, default=None, help="score only the first N utterances (smoke tests)")
    return p


def summarise(values: dict[str, float], n_boot: int = 1000) -> dict[str, float]:
    """mean, std, 95% bootstrap CI of the mean (utterances resampled), n; NaNs are dropped."""
    from audiorl.eval.stats import bootstrap_wer_ci

    v = np.array([x for x in values.values() if x is not None and math.isfinite(x)], dtype=np.float64)
    if len(v) == 0:
        return {"n": 0}
    out = {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "n": int(len(v))}
    if len(v) > 1:
        # A mean is a ratio of sums with unit denominators: the WER bootstrap applies as is.
        _, lo, hi = bootstrap_wer_ci(v, np.ones_like(v), n_boot=n_boot)
        out["ci95"] = [float(lo), float(hi)]
    return out


def run(args) -> dict:
    from tqdm import tqdm

    from audiorl.eval.sim import open_audio

    syn = open_audio(args.synth)
    ref = open_audio(args.ref)
    utts = list(syn)[: args.max_utts] if args.max_utts else list(syn)
    utt2ref = read_table(args.utt2ref) if args.utt2ref else {}
    missing = [u for u in utts if utt2ref.get(u, u) not in ref]
    if missing:
        raise DataDirError(f"{len(missing)} of {len(utts)} synthesised utterances have no reference in {args.ref} "
                           f"(first: '{missing[0]}'); keep ids equal or pass --utt2ref")
    per: dict[str, dict[str, float]] = {}
    failed: dict[str, str] = {}
    if not args.no_mcd or not args.no_mos:
        from audiorl.eval.mcd import duration_ratio, mcd

        mos = None
        if not args.no_mos:
            from audiorl.eval.mos import load_dnsmos, dnsmos_one

            load_dnsmos(args.mos_threads)  # fail early (missing package) before the long loop
            mos = dnsmos_one
        for u in tqdm(utts, desc="MCD/DNSMOS" if mos else "MCD", unit="utt", leave=False):
            try:
                x, sr = syn.load(u)
                row = {}
                if not args.no_mcd:
                    y, sr_ref = ref.load(utt2ref.get(u, u))
                    row["mcd"] = mcd(x, y, sr, sr_ref)
                    row["dur_ratio"] = duration_ratio(x, y, sr, sr_ref)
                    row["_dur_synth"], row["_dur_ref"] = len(x) / sr, len(y) / sr_ref
                if mos is not None:
                    row.update({f"dnsmos_{k}": v for k, v in mos(x, sr, args.mos_threads, args.mos_exact).items()})
                per[u] = row
            except (AudioError, ValueError) as e:
                # An empty or broken synthesis is a result, not a crash: report it and score the rest.
                failed[u] = str(e).replace("\n", " ")
                logger.warning("utterance %s not scored: %s", u, failed[u])
    if not args.no_sim:
        from audiorl.eval.sim import SpeakerEncoder, corpus_similarity

        ok = [u for u in utts if u not in failed]
        enc = SpeakerEncoder(device=args.device)
        sim = corpus_similarity(syn, args.ref, utt2ref=utt2ref or None, encoder=enc, utts=ok)
        for u in ok:
            per.setdefault(u, {})["sim_ref"] = sim.sim_ref[u]
            if u in sim.sim_spk:
                per[u]["sim_spk"] = sim.sim_spk[u]
    return write_outputs(args, utts, per, failed)


def write_outputs(args, utts, per, failed) -> dict:
    os.makedirs(args.out, exist_ok=True)
    names = ["sim_ref", "sim_spk", "mcd", "dur_ratio"] + [f"dnsmos_{k}" for k in ("ovrl", "sig", "bak", "p808")]
    names = [n for n in names if any(n in r for r in per.values())]
    metrics: dict = {"synth": args.synth, "ref": args.ref, "n_utts": len(utts), "n_failed": len(failed)}
    for n in names:
        col = {u: r[n] for u, r in per.items() if n in r}
        write_table(os.path.join(args.out, n), {u: f"{v:.4f}" for u, v in col.items()})
        metrics[n] = summarise(col, args.n_boot)
    if "mcd" in names:
        # Total-time ratio: long utterances weigh more, the usual "speaking-rate drift" number.
        ds = sum(r["_dur_synth"] for r in per.values() if "_dur_synth" in r)
        dr = sum(r["_dur_ref"] for r in per.values() if "_dur_ref" in r)
        metrics["dur_ratio_total_untrimmed"] = ds / dr if dr else None
    with open(os.path.join(args.out, "per_utt.tsv"), "w", encoding="utf-8") as f:
        f.write("\t".join(["utt"] + names) + "\n")
        for u in sorted(per):
            f.write("\t".join([u] + [f"{per[u][n]:.4f}" if n in per[u] else "nan" for n in names]) + "\n")
    if failed:
        write_table(os.path.join(args.out, "failed"), failed)
    with open(os.path.join(args.out, "tts_metrics.json"), "w", encoding="utf-8") as f:
        json.dump(metrics, f, indent=2)
        f.write("\n")
    return metrics


def summary_line(m: dict) -> str:
    def g(k, fmt="{:.3f}"):
        return fmt.format(m[k]["mean"]) if k in m and "mean" in m[k] else "-"

    s = f"TTS {m['synth']}: n={m['n_utts']}"
    if m["n_failed"]:
        s += f" (failed {m['n_failed']})"
    s += f" | SIM {g('sim_ref')} (spk {g('sim_spk')}) | MCD {g('mcd', '{:.2f}')} dB | dur {g('dur_ratio')}"
    s += f" | DNSMOS ovrl {g('dnsmos_ovrl', '{:.2f}')} sig {g('dnsmos_sig', '{:.2f}')} bak {g('dnsmos_bak', '{:.2f}')}"
    return s + f" p808 {g('dnsmos_p808', '{:.2f}')}"


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging()
    try:
        m = run(args)
    except (DataDirError, AudioError, KeyError, ImportError) as e:
        logger.error("%s", e)
        return 1
    print(summary_line(m))
    return 0


if __name__ == "__main__":
    sys.exit(main())
