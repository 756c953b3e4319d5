"""Score a hypothesis text file against a reference: sclite-style result.txt plus result.json.

    python -m audiorl.bin.score --ref data/test/text --hyp exp/x/decode_test/text --out exp/x/decode_test/score_wer
    python -m audiorl.bin.score --ref data/test/text --hyp hyp.txt --unit char --norm zh --out .../score_cer

Both files are Kaldi tables '<utt> <text>'. Prints the Kaldi-style summary line ('%WER 5.23 [ 41 / 784, ...'),
and reports reference utterances with no hypothesis (scored as all deletions).
"""

from __future__ import annotations

import argparse
import sys

from audiorl.data.kaldi import DataDirError, read_list_table, read_table
from audiorl.eval.normalize import str2bool, add_norm_args, norm_from_args
from audiorl.eval.sclite import write_result
from audiorl.eval.wer import ScoreError, score
from audiorl.log import get_logger, setup_logging

logger = get_logger("audiorl.bin.score")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m audiorl.bin.score", description=__doc__.split("\n")[0])
    p.add_argument("--ref", required=True, help="reference text table, e.g. data/test/text")
    p.add_argument("--hyp", required=True, help="hypothesis text table, e.g. exp/x/decode_test/text")
    p.add_argument("--out", required=True, help="output directory for result.txt and result.json")
    p.add_argument("--unit", choices=("word", "char"), default="word", help="word (WER) or char (CER, spaces dropped)")
    p.add_argument("--keep-space", type=str2bool, default=False, metavar="true|false",
                   help="with --unit char, score word boundaries as a <space> token (ESPnet's CER convention)")
    p.add_argument("--keywords", help="keywords table '<utt> <kw1> <kw2> ...' for keyword precision/recall")
    p.add_argument("--bias_lists", help="the biasing lists decoding used, '<utt> <w1> <w2> ...' (asr_decode writes "
                                        "<decode dir>/bias_lists): counts list words written but not spoken")
    p.add_argument("--utt2spk", help="utt2spk table: adds per-speaker rows to the summary")
    p.add_argument("--ignore-extra", type=str2bool, default=False, metavar="true|false",
                   help="allow hypotheses whose utterance is not in the reference (otherwise an error)")
    add_norm_args(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging()
    try:
        norm = norm_from_args(args)
        refs = read_table(args.ref, allow_empty_value=True)  # an empty reference is legal (silence)
        hyps = read_table(args.hyp, allow_empty_value=True)  # so is an empty hypothesis
        kws = read_list_table(args.keywords) if args.keywords else None
        lists = read_list_table(args.bias_lists) if args.bias_lists else None
        utt2spk = read_table(args.utt2spk) if args.utt2spk else None
        res = score(refs, hyps, unit=args.unit, norm=norm, keep_space=args.keep_space, keywords=kws,
                    ignore_extra=args.ignore_extra, bias_lists=lists)
        txt, _ = write_result(args.out, res, utt2spk=utt2spk, ref_path=args.ref, hyp_path=args.hyp)
    except (DataDirError, ScoreError, ValueError, OSError) as e:
        logger.error("%s", e)
        return 1
    print(res.summary_line(txt))
    t = res.totals
    print(f"%SER {t.pct('serr'):.2f} [ {t.serr} / {t.snt} ]")
    if res.missing:
        print(f"Scored {len(res.missing)} missing hypotheses as all deletions: {' '.join(res.missing[:10])}"
              f"{' ...' if len(res.missing) > 10 else ''}")
    kt = res.keyword_totals
    if kt is not None:
        print(f"%KW P {100 * kt.precision:.2f} R {100 * kt.recall:.2f} F {100 * kt.f1:.2f} "
              f"[ {kt.hits} hits / {kt.expected} listed, {kt.found} found ]")
    bt = res.bias_totals
    if bt is not None:
        print(f"%BIAS FA {bt.false_alarms} [ list words written beyond the reference, "
              f"{res.bias_false_alarm_utts} utterances ] R {100 * bt.recall:.2f} "
              f"[ {bt.hits} / {bt.expected} spoken list words ]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
