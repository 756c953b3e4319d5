"""One feature-extraction job: a data dir (or the utterances of one split) -> ark/scp.

    python -m audiorl.bin.compute_fbank [--fbank_conf conf/fbank.conf] [--utt_list split/keys.1] \
        [--skip_bad true|false] <data-dir> <out-prefix>

writes <out-prefix>.ark, <out-prefix>.scp, <out-prefix>.utt2num_frames (and <out-prefix>.skipped with
--skip_bad true). utils/make_fbank.sh runs one of these per job and merges the results.
"""

from __future__ import annotations

import argparse
import sys

from audiorl.data.audio import AudioError
from audiorl.data.features import compute_fbank_dir, read_fbank_conf
from audiorl.data.kaldi import DataDirError
from audiorl.log import get_logger, setup_logging

logger = get_logger("audiorl.bin.compute_fbank")


def str2bool(s: str) -> bool:
    if s not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"expected 'true' or 'false', got '{s}'")
    return s == "true"


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m audiorl.bin.compute_fbank", description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("data_dir", help="Kaldi data dir with wav.scp (and optionally segments)")
    p.add_argument("out_prefix", help="output prefix: writes <prefix>.ark/.scp/.utt2num_frames")
    p.add_argument("--fbank_conf", default=None,
                   help="Kaldi-style config (--num-mel-bins=80, --sample-frequency=16000, ...); "
                        "defaults: 80 bins, 16 kHz (audio resampled to it), 25/10 ms frames, dither 0")
    p.add_argument("--utt_list", default=None, help="only these utterances (first column of the file)")
    p.add_argument("--skip_bad", type=str2bool, default=False,
                   help="skip utterances whose audio fails to load, listing them in <prefix>.skipped")
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging()
    try:
        opts = read_fbank_conf(args.fbank_conf) if args.fbank_conf else {}
        compute_fbank_dir(args.data_dir, args.out_prefix, fbank_opts=opts, utt_list=args.utt_list,
                          skip_bad=args.skip_bad)
    except (AudioError, DataDirError, ValueError, OSError) as e:
        logger.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
