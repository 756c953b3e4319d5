"""Temperature-sampled transcripts of a feature data dir (K per utterance), for RL data selection.

    python -m audiorl.bin.asr_sample --exp_dir exp/asr_train_asr --data_dir dump/fbank/rl_pool \
        --out_dir exp/asr_train_asr/decode_rl_pool_sample4/split/1 --num_samples 4 [--split 1/2]

Writes ``<out_dir>/samples.jsonl``: one line {"utt": id, "hyps": [K texts]} per utterance, sorted by id.
``--split JOB/NJ`` samples every NJ-th utterance starting at JOB; each job seeds with --seed + JOB.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from audiorl.log import get_logger, setup_logging
from audiorl.tasks.asr import prepare_inference
from audiorl.tasks.asr_grpo import sample_hypotheses

logger = get_logger("asr_sample")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="asr_sample", description=__doc__.split("\n\n")[0])
    p.add_argument("--exp_dir", required=True, help="experiment dir with config.yaml and checkpoints")
    p.add_argument("--checkpoint", default="", help="weights; default: the averaged model, else the latest")
    p.add_argument("--data_dir", required=True, help="data dir with feats.scp")
    p.add_argument("--out_dir", required=True)
    p.add_argument("--num_samples", type=int, default=4, help="K transcripts per utterance")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--batch_frames", type=int, default=20000, help="padded frames x K per batch")
    p.add_argument("--split", default="1/1", help="JOB/NJ: sample this share of the utterances")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    a = p.parse_args(argv)
    setup_logging()
    if a.num_samples < 1 or a.temperature <= 0:
        p.error(f"--num_samples {a.num_samples} must be >= 1 and --temperature {a.temperature} > 0")
    try:
        j = prepare_inference(a.exp_dir, a.checkpoint, a.data_dir, a.split, a.device)
    except ValueError as e:
        p.error(str(e))
    model, tokens, data, utts, device, ckpt, job = j.model, j.tokens, j.data, j.utts, j.device, j.checkpoint, j.job
    t0 = time.perf_counter()
    hyps = sample_hypotheses(model, data, tokens, utts, device, a.num_samples, a.temperature,
                             max_frames=a.batch_frames, seed=a.seed + job)
    os.makedirs(a.out_dir, exist_ok=True)
    with open(os.path.join(a.out_dir, "samples.jsonl"), "w", encoding="utf-8") as f:
        for u in sorted(hyps):
            f.write(json.dumps({"utt": u, "hyps": hyps[u]}, ensure_ascii=False) + "\n")
    logger.info("sampled %d x %d transcripts with %s in %.1f s", len(utts), a.num_samples, ckpt,
                time.perf_counter() - t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
