"""Speaker embeddings (resemblyzer GE2E, 256-d) of a data dir, in parallel jobs, Kaldi style.

    python -m audiorl.bin.tts_spk_embed --data_dir data/train --out_dir dump/spk_embed/train --split 1/2   # job 1 of 2
    python -m audiorl.bin.tts_spk_embed --data_dir data/train --out_dir dump/spk_embed/train --merge 2     # then merge

A job writes ``<out_dir>/split/JOB/spk_embed.{ark,scp}`` for every NJ-th utterance. ``--merge NJ`` checks that the
jobs cover every utterance of the data dir and writes ``<out_dir>/spk_embed.{ark,scp}`` (utterance -> embedding) and
``<out_dir>/spk2embed.{ark,scp}`` (speaker -> mean of its utterances' embeddings, re-normalised; the condition for
synthesising a seen voice). scp files are renamed into place last (present = complete).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from audiorl.data.audio import DataDirAudio
from audiorl.data.kaldi import DataDirError, read_table
from audiorl.log import get_logger, setup_logging
from audiorl.tasks.asr import parse_split

logger = get_logger("tts_spk_embed")


def _write(out_dir: str, name: str, table: dict[str, np.ndarray]) -> None:
    import kaldiio

    scp = os.path.join(out_dir, f"{name}.scp")
    if os.path.exists(scp):
        os.unlink(scp)
    with kaldiio.WriteHelper(f"ark,scp:{os.path.join(out_dir, name + '.ark')},{scp}.tmp") as w:
        for k in sorted(table):
            w(k, np.asarray(table[k], dtype=np.float32))
    os.replace(scp + ".tmp", scp)


def merge(data_dir: str, out_dir: str, nj: int) -> tuple[int, int]:
    from audiorl.models.speaker import load_embeds

    utts = list(DataDirAudio(data_dir))
    emb: dict[str, np.ndarray] = {}
    for j in range(1, nj + 1):
        scp = os.path.join(out_dir, "split", str(j), "spk_embed.scp")
        if not os.path.isfile(scp):
            raise DataDirError(f"{scp}: missing: job {j} of {nj} did not finish; see its log and rerun the stage")
        emb.update(load_embeds(scp))
    missing = [u for u in utts if u not in emb]
    if missing:
        raise DataDirError(f"{out_dir}/split: no embedding for {len(missing)} utterances of {data_dir} (first: "
                           f"'{missing[0]}'); rerun the stage")
    u2s_path = os.path.join(data_dir, "utt2spk")
    utt2spk = read_table(u2s_path) if os.path.isfile(u2s_path) else {u: u for u in utts}
    sums: dict[str, np.ndarray] = {}
    for u in utts:
        s = utt2spk.get(u, u)
        sums[s] = sums.get(s, 0) + emb[u].astype(np.float64)
    spk = {s: v / max(np.linalg.norm(v), 1e-12) for s, v in sums.items()}  # mean direction = normalised sum
    _write(out_dir, "spk_embed", {u: emb[u] for u in utts})
    _write(out_dir, "spk2embed", spk)
    return len(utts), len(spk)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="tts_spk_embed", description=__doc__.split("\n\n")[0])
    p.add_argument("--data_dir", required=True, help="data dir with wav.scp (+ segments) and utt2spk")
    p.add_argument("--out_dir", required=True)
    p.add_argument("--split", default="1/1", help="JOB/NJ: embed this job's share into <out_dir>/split/JOB")
    p.add_argument("--merge", type=int, default=0, metavar="NJ", help="merge the NJ job outputs (no embedding)")
    p.add_argument("--device", default="cpu", help="device of the speaker encoder")
    a = p.parse_args(argv)
    setup_logging()
    try:
        if a.merge:
            n_utt, n_spk = merge(a.data_dir, a.out_dir, a.merge)
            logger.info("%s: %d utterance and %d speaker embeddings -> %s", a.data_dir, n_utt, n_spk, a.out_dir)
            return 0
        job, nj = parse_split(a.split)
        from audiorl.eval.sim import SpeakerEncoder
        from audiorl.models.speaker import compute_spk_embeds

        utts = sorted(DataDirAudio(a.data_dir))[job - 1::nj]
        compute_spk_embeds(a.data_dir, os.path.join(a.out_dir, "split", str(job)), SpeakerEncoder(device=a.device),
                           utts=utts)
    except (DataDirError, ImportError, ValueError) as e:
        logger.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
