"""Merge the per-job outputs of ``asr_decode --split JOB/NJ`` into one decode dir.

    python -m audiorl.bin.merge_decode exp/asr_x/decode_test_beam1 [--nj 2] [--data_dir dump/fbank/test]

Concatenates ``split/*/text`` into ``text`` (C-sorted), likewise ``split/*/bias_lists`` (decoding with biasing lists;
all jobs or none), sums ``split/*/rtf.json`` into ``rtf.json``, and
with ``--data_dir`` checks that every utterance of its feats.scp got a hypothesis (exit 1 naming the
missing ones otherwise).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from audiorl.data.kaldi import read_table, write_table


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="merge_decode", description=__doc__.split("\n\n")[0])
    p.add_argument("decode_dir")
    p.add_argument("--nj", type=int, default=0, help="expected number of split dirs (0 = whatever is there)")
    p.add_argument("--data_dir", default="", help="check coverage against <data_dir>/feats.scp")
    a = p.parse_args(argv)
    split = os.path.join(a.decode_dir, "split")
    jobs = sorted(os.listdir(split), key=lambda s: int(s) if s.isdigit() else 0) if os.path.isdir(split) else []
    if not jobs or (a.nj and len(jobs) != a.nj):
        print(f"merge_decode: {split}: found {len(jobs)} job dirs, expected {a.nj or '>= 1'}; rerun the decoding",
              file=sys.stderr)
        return 1
    have = [j for j in jobs if os.path.isfile(os.path.join(split, j, "bias_lists"))]
    lists_out = os.path.join(a.decode_dir, "bias_lists")
    if have and len(have) != len(jobs):
        print(f"merge_decode: {split}: bias_lists in {len(have)} of {len(jobs)} job dirs (jobs decoded with and "
              "without biasing lists); rerun the decoding", file=sys.stderr)
        return 1
    hyps: dict[str, str] = {}
    rtf = {"utts": 0, "decode_seconds": 0.0, "audio_seconds": 0.0}
    extra: dict = {}
    for j in jobs:
        hyps.update(read_table(os.path.join(split, j, "text"), allow_empty_value=True)
                    if os.path.getsize(os.path.join(split, j, "text")) else {})
        with open(os.path.join(split, j, "rtf.json")) as f:
            r = json.load(f)
        for k in rtf:
            rtf[k] += r[k]
        extra = {k: v for k, v in r.items() if k not in rtf}
    if a.data_dir:
        want = read_table(os.path.join(a.data_dir, "feats.scp"))
        missing = [u for u in want if u not in hyps]
        if missing:
            print(f"merge_decode: {len(missing)} utterances of {a.data_dir}/feats.scp have no hypothesis "
                  f"(first: {missing[:5]}); see {a.decode_dir}/log/", file=sys.stderr)
            return 1
    write_table(os.path.join(a.decode_dir, "text"), hyps)
    if have:
        lists: dict[str, str] = {}
        for j in jobs:
            lists.update(read_table(os.path.join(split, j, "bias_lists"), allow_empty_value=True))
        write_table(lists_out, lists)
    elif os.path.exists(lists_out):
        os.remove(lists_out)
    rtf["rtf"] = round(rtf["decode_seconds"] / max(rtf["audio_seconds"], 1e-9), 5)
    rtf.update(extra, jobs=len(jobs))
    with open(os.path.join(a.decode_dir, "rtf.json"), "w") as f:
        json.dump(rtf, f, indent=1)
    print(f"{a.decode_dir}: {len(hyps)} hypotheses, RTF {rtf['rtf']:.4f} per job "
          f"({rtf['decode_seconds']:.1f} s for {rtf['audio_seconds']:.1f} s of audio)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
