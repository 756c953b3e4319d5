"""Dump the speech tokens of a feature data dir with a trained speech tokenizer (kaldiio int32 ark/scp).

    python -m audiorl.bin.tts_dump_tokens --exp_dir exp/tokenizer_x --data_dir dump/fbank/test \
        --out_prefix dump/tokens/test/tokens.1 [--split 1/2]

Writes ``<out_prefix>.ark``, ``<out_prefix>.scp`` (renamed into place last: present = complete) and
``<out_prefix>.utt2num_tokens``. ``--split JOB/NJ`` takes every NJ-th utterance from JOB on (run.pl jobs); the stage
script concatenates the parts into ``tokens.scp``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from audiorl.data.kaldi import read_table
from audiorl.log import get_logger, setup_logging
from audiorl.tasks.asr import parse_split
from audiorl.tasks.tts import load_speech_tokenizer
from audiorl.tasks.tts_data import pick_device

logger = get_logger("tts_dump_tokens")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="tts_dump_tokens", description=__doc__.split("\n\n")[0])
    p.add_argument("--exp_dir", required=True, help="speech-tokenizer experiment dir (config.yaml + checkpoints)")
    p.add_argument("--checkpoint", default="", help="weights; default: what its training stage ended with")
    p.add_argument("--data_dir", required=True, help="data dir with feats.scp")
    p.add_argument("--out_prefix", required=True, help="output prefix: <out_prefix>.{ark,scp,utt2num_tokens}")
    p.add_argument("--split", default="1/1", help="JOB/NJ: this job's share of the utterances")
    p.add_argument("--batch_frames", type=int, default=20000, help="padded feature frames per batch")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    a = p.parse_args(argv)
    setup_logging()
    try:
        job, nj = parse_split(a.split)
    except ValueError as e:
        p.error(str(e))
    scp = os.path.join(a.data_dir, "feats.scp")
    if not os.path.isfile(scp):
        logger.error("%s: no such file; compute features first (tts.sh stage 2)", scp)
        return 1
    from audiorl.models.speech_tokenizer import dump_tokens

    utts = sorted(read_table(scp))[job - 1::nj]
    exp = load_speech_tokenizer(a.exp_dir, a.checkpoint, pick_device(a.device))
    t0 = time.perf_counter()
    n = dump_tokens(exp.model, scp, a.out_prefix, a.batch_frames, str(next(exp.model.parameters()).device), utts)
    logger.info("%d utterances tokenized with %s in %.1f s", n, exp.weights, time.perf_counter() - t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
