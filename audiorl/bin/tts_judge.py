"""Intelligibility of a wav.scp: transcribe it with the ASR judge (the ASR recipe's SFT model) and score the WER.

    python -m audiorl.bin.tts_judge --asr_exp ../asr/exp/asr_train_asr --wavs exp/tts_lm_x/synth_test/wav.scp \
        --ref data/test/text --out_dir exp/tts_lm_x/synth_test/judge [--utt2spk data/test/utt2spk]

Writes ``<out_dir>/text``, ``<out_dir>/score_word/result.{txt,json}`` (sclite style; RESULTS.md gives the WER a 95%
bootstrap interval from result.json) and ``<out_dir>/rtf.json``, and prints the %WER line. See audiorl.eval.judge.
"""

from __future__ import annotations

import argparse
import sys

import torch

from audiorl.data.audio import AudioError
from audiorl.data.kaldi import DataDirError
from audiorl.eval.wer import ScoreError
from audiorl.log import get_logger, setup_logging

logger = get_logger("tts_judge")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="tts_judge", description=__doc__.split("\n\n")[0])
    p.add_argument("--asr_exp", required=True, help="the judge: an ASR SFT experiment dir (config.yaml + weights)")
    p.add_argument("--asr_dir", default=None, help="the ASR recipe dir its config's relative paths refer to "
                                                   "(default: two levels above --asr_exp)")
    p.add_argument("--fbank_conf", default=None, help="the judge's feature config (default: <asr_dir>/conf/fbank.conf)")
    p.add_argument("--checkpoint", default="", help="judge weights; default: what its training stage ended with")
    p.add_argument("--wavs", required=True, help="wav.scp (or data dir) of the audio to judge")
    p.add_argument("--ref", required=True, help="reference text table (the input text of the synthesis)")
    p.add_argument("--out_dir", required=True)
    p.add_argument("--utt2spk", default=None, help="utt2spk: per-speaker rows in result.txt")
    p.add_argument("--keywords", default=None, help="keywords table: keyword recall in result.txt")
    p.add_argument("--mode", default="llm", choices=["llm", "ctc"], help="LLM decoder or the encoder's CTC head")
    p.add_argument("--beam_size", type=int, default=1, help="1 = greedy (mode llm)")
    p.add_argument("--batch_frames", type=int, default=20000, help="padded feature frames per decoding batch")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    a = p.parse_args(argv)
    setup_logging()
    from audiorl.eval.judge import ASRJudge
    from audiorl.tasks.tts_data import pick_device

    try:
        judge = ASRJudge.load(a.asr_exp, a.asr_dir, a.fbank_conf, a.checkpoint, pick_device(a.device), a.mode,
                              a.beam_size, a.batch_frames)
        res = judge.score_scp(a.wavs, a.ref, a.out_dir, a.utt2spk, a.keywords, progress=sys.stderr.isatty())
    except (DataDirError, AudioError, ScoreError, FileNotFoundError, ValueError) as e:
        logger.error("%s", e)
        return 1
    print(res.summary_line(a.wavs), f"(judge {a.asr_exp}, {torch.get_num_threads()} threads)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
