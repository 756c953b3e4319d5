"""Decode a feature data dir with a trained LLM-based ASR model.

    python -m audiorl.bin.asr_decode --exp_dir exp/asr_sft --data_dir dump/fbank/test \
        --out_dir exp/asr_sft/decode_test_beam1 [--beam_size 4] [--split 1/4] [--biasing off]

Writes ``<out_dir>/text`` (hypotheses, Kaldi table), with biasing lists ``<out_dir>/bias_lists`` (each utterance's
list, as in its prompt), and ``<out_dir>/rtf.json`` (decoding time, audio
time, real-time factor). ``--split JOB/NJ`` decodes every NJ-th utterance starting at JOB (1-based),
for run.pl/slurm.pl parallel jobs; the stage script merges the pieces.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

from audiorl.data.kaldi import write_table
from audiorl.log import get_logger, setup_logging
from audiorl.tasks.asr import DEFAULT_TOKENS_PER_SECOND, decode_utts, prepare_inference

logger = get_logger("asr_decode")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="asr_decode", description=__doc__.split("\n\n")[0])
    p.add_argument("--exp_dir", required=True, help="experiment dir with config.yaml and checkpoints")
    p.add_argument("--checkpoint", default="", help="weights (.safetensors or a checkpoint dir); default: the "
                                                    "averaged model, else the latest checkpoint")
    p.add_argument("--data_dir", required=True, help="data dir with feats.scp (text optional)")
    p.add_argument("--out_dir", required=True)
    p.add_argument("--mode", default="llm", choices=["llm", "ctc"],
                   help="llm: the LLM decoder (greedy or beam); ctc: best path of the encoder's CTC head")
    p.add_argument("--beam_size", type=int, default=1, help="1 = greedy (mode llm)")
    p.add_argument("--length_penalty", type=float, default=1.0)
    p.add_argument("--max_new_tokens", type=int, default=0, help="0 = from the utterance length (--tokens_per_second)")
    p.add_argument("--tokens_per_second", type=float, default=DEFAULT_TOKENS_PER_SECOND,
                   help="budget per second of audio when --max_new_tokens is 0: a cap that ends loops")
    p.add_argument("--batch_frames", type=int, default=20000, help="padded feature frames per batch")
    p.add_argument("--biasing", default="auto", choices=["auto", "on", "off"],
                   help="keyword biasing lists in the prompt (audiorl/data/biasing.py): auto = as the model was "
                        "trained (data.biasing.enabled in its config.yaml)")
    p.add_argument("--bias_distractors", type=int, default=-1,
                   help="distractors per biasing list; -1 = the model config's biasing.eval_distractors")
    p.add_argument("--bias_keywords", default="", help="keywords table of the lists; default <data_dir>/keywords")
    p.add_argument("--split", default="1/1", help="JOB/NJ: decode this share of the utterances")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    a = p.parse_args(argv)
    setup_logging()
    try:
        j = prepare_inference(a.exp_dir, a.checkpoint, a.data_dir, a.split, a.device, a.biasing, a.bias_distractors,
                              a.bias_keywords)
    except ValueError as e:
        p.error(str(e))
    model, tokens, data, utts, device, ckpt = j.model, j.tokens, j.data, j.utts, j.device, j.checkpoint
    logger.info("decoding %d utterances of %s with %s (beam %d)", len(utts), a.data_dir, ckpt, a.beam_size)
    t0 = time.perf_counter()
    hyps = decode_utts(model, data, tokens, utts, device, beam_size=a.beam_size, max_new_tokens=a.max_new_tokens,
                       max_frames=a.batch_frames, length_penalty=a.length_penalty, mode=a.mode,
                       tokens_per_second=a.tokens_per_second)
    dt = time.perf_counter() - t0
    audio_s = sum(data.frames[u] for u in utts) / 100.0  # 10 ms frame shift
    os.makedirs(a.out_dir, exist_ok=True)
    write_table(os.path.join(a.out_dir, "text"), hyps)
    lists = os.path.join(a.out_dir, "bias_lists")  # what each prompt held, for scoring (score.py --bias_lists)
    if data.biasing is not None:
        write_table(lists, {u: data.biasing.words(u) for u in utts})
    elif os.path.exists(lists):
        os.remove(lists)  # a stale one from an earlier decoding with lists
    rtf = {"utts": len(utts), "decode_seconds": round(dt, 3), "audio_seconds": round(audio_s, 2),
           "rtf": round(dt / max(audio_s, 1e-9), 5), "mode": a.mode, "beam_size": a.beam_size, "checkpoint": ckpt,
           "device": str(device), "threads": torch.get_num_threads(),
           "biasing_distractors": data.biasing.cfg.eval_distractors if data.biasing is not None else None}
    with open(os.path.join(a.out_dir, "rtf.json"), "w") as f:
        json.dump(rtf, f, indent=1)
    logger.info("decoded %d utterances in %.1f s (RTF %.4f)", len(utts), dt, rtf["rtf"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
