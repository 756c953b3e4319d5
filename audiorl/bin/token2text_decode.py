"""WER of the token-to-text reward model on a speech-token scp (greedy CTC), scored like the ASR recipes.

    python -m audiorl.bin.token2text_decode --exp_dir exp/token2text_x --tokens dump/tokens/test/tokens.scp \
        --ref data/test/text --utt2spk data/test/utt2spk --out_dir exp/token2text_x/decode_test

Writes ``<out_dir>/text`` (hypotheses) and ``<out_dir>/result.{txt,json}`` (sclite-style). On ground-truth tokens this
is how well the reward model reads text from speech tokens: the ceiling of what DiffRO's reward can tell apart.
"""

from __future__ import annotations

import argparse
import sys

from audiorl.log import setup_logging


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="token2text_decode", description=__doc__.split("\n\n")[0])
    p.add_argument("--exp_dir", required=True, help="token-to-text experiment (tts.sh stage 9)")
    p.add_argument("--checkpoint", default="", help="weights; default: what its training ended with")
    p.add_argument("--tokens", required=True, help="speech-token scp to transcribe")
    p.add_argument("--ref", required=True, help="reference Kaldi text file")
    p.add_argument("--utt2spk", default="", help="utt2spk for per-speaker totals in result.txt")
    p.add_argument("--out_dir", required=True, help="where text and result.{txt,json} go")
    p.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    a = p.parse_args(argv)
    setup_logging()
    from audiorl.tasks.token2text import load_token2text, token2text_wer
    from audiorl.tasks.tts_data import pick_device

    device = pick_device(a.device)
    exp, text = load_token2text(a.exp_dir, a.checkpoint, device)
    res = token2text_wer(exp.model, a.tokens, a.ref, text, device, out_dir=a.out_dir, utt2spk=a.utt2spk or None)
    print(res.summary_line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
