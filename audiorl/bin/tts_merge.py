"""Merge the per-job outputs of ``tts_synth --split JOB/NJ`` (``<dir>/split/<JOB>/``) into ``<dir>``.

    python -m audiorl.bin.tts_merge exp/tts_lm_x/synth_test --nj 2 --data_dir data/test

Concatenates wav.scp, tokens.scp and gen_stats (C-sorted; the wav files and token arks stay in the job dirs), sums
the times of rtf.json and recomputes its real-time factors, and checks that every utterance of ``<data_dir>/text``
was synthesised (exit 1 naming the missing ones otherwise).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from audiorl.data.kaldi import DataDirError, read_table, write_table

SUMMED = ("utts", "audio_seconds", "total_seconds", "lm_seconds", "token2mel_seconds", "vocoder_seconds", "empty",
          "eos_chosen", "looped")


def merge(out_dir: str, nj: int, data_dir: str = "") -> dict:
    split = os.path.join(out_dir, "split")
    tables: dict[str, dict[str, str]] = {"wav.scp": {}, "tokens.scp": {}, "gen_stats": {}}
    rtf: dict = {}
    for j in range(1, nj + 1):
        d = os.path.join(split, str(j))
        if not os.path.isfile(os.path.join(d, "rtf.json")):
            raise DataDirError(f"{d}/rtf.json: missing: synthesis job {j} of {nj} did not finish; see "
                               f"{out_dir}/log/synth.{j}.log and rerun the stage")
        for name, table in tables.items():
            path = os.path.join(d, name)
            if os.path.getsize(path):
                table.update(read_table(path))
        with open(os.path.join(d, "rtf.json")) as f:
            r = json.load(f)
        for k, v in r.items():
            rtf[k] = rtf.get(k, 0) + v if k in SUMMED else v
    if data_dir:
        want = read_table(os.path.join(data_dir, "text"), allow_empty_value=True)
        missing = [u for u in want if u not in tables["wav.scp"]]
        if missing:
            raise DataDirError(f"{out_dir}: {len(missing)} utterances of {data_dir}/text were not synthesised (first: "
                               f"{missing[:5]}); see {out_dir}/log/")
    for name, table in tables.items():
        write_table(os.path.join(out_dir, name), table)
    audio = max(rtf.get("audio_seconds", 0.0), 1e-9)
    rtf["rtf"] = round(rtf.get("total_seconds", 0.0) / audio, 5)
    for part in ("lm", "token2mel", "vocoder"):
        rtf[f"rtf_{part}"] = round(rtf.get(f"{part}_seconds", 0.0) / audio, 5)
    rtf["jobs"] = nj
    with open(os.path.join(out_dir, "rtf.json"), "w") as f:
        json.dump(rtf, f, indent=1)
    return rtf


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="tts_merge", description=__doc__.split("\n\n")[0])
    p.add_argument("synth_dir")
    p.add_argument("--nj", type=int, required=True, help="number of job dirs split/1 .. split/NJ")
    p.add_argument("--data_dir", default="", help="check coverage against <data_dir>/text")
    a = p.parse_args(argv)
    try:
        r = merge(a.synth_dir, a.nj, a.data_dir)
    except (DataDirError, OSError) as e:
        print(f"tts_merge: {e}", file=sys.stderr)
        return 1
    print(f"{a.synth_dir}: {r['utts']} utterances, {r['audio_seconds']:.1f} s of audio, RTF {r['rtf']:.3f} per job "
          f"(LM {r['rtf_lm']:.3f}, token-to-mel {r['rtf_token2mel']:.3f}, vocoder {r['rtf_vocoder']:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
