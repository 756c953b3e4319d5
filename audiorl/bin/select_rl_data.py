"""Build the RL data subsets D0-D3 (PAPER.md s3) of an RL prompt pool from the SFT model's decoding of it.

    python -m audiorl.bin.select_rl_data --data_dir data/rl_pool --decode_dir exp/asr_x/decode_rl_pool_rl \
        --feats_dir dump/fbank/rl_pool --select.size 1000

Writes data/rl_pool_D{0,1,2,3} and dump/fbank/rl_pool_D{0,1,2,3} (with features), and
<decode_dir>/rl_subsets.json with each subset's size, hours and the SFT model's WER on it.
Rules and their options: audiorl/rl/data_select.py (``--help`` lists them).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from audiorl.config import option, parse_cli
from audiorl.log import get_logger, setup_logging
from audiorl.rl.data_select import SelectConfig, load_pool, save_stats, select_subsets, subset_stats, write_subsets

logger = get_logger("select_rl_data")


@dataclass
class SelectRLDataConfig:
    """RL data selection stage (asr.sh stage 10)."""

    data_dir: str = option("data/rl_pool", "The pool: text, utt2dur, keywords (optional).")
    decode_dir: str = option("", "SFT decoding of the pool: 'text' (1-best) and 'samples.jsonl' (sampled).")
    feats_dir: str = option("", "The pool's feature copy (e.g. dump/fbank/rl_pool); '' = data dirs only.")
    suffix: str = option("_", "Subset D of <dir> is written to <dir><suffix><D>.")
    stats: str = option("", "JSON of the subsets' statistics; '' = <decode_dir>/rl_subsets.json.")
    select: SelectConfig = option(default_factory=SelectConfig, help="The subset rules.")


def main(argv: list[str] | None = None) -> int:
    cfg = parse_cli(SelectRLDataConfig, argv, prog="select_rl_data")
    setup_logging()
    if not cfg.decode_dir:
        sys.stderr.write("select_rl_data: error: --decode_dir is required\n")
        return 2
    info = load_pool(cfg.data_dir, cfg.decode_dir)
    subsets = select_subsets(info, cfg.select)
    stats = {"pool": subset_stats(info, sorted(info))}
    stats.update({name: subset_stats(info, utts) for name, utts in subsets.items()})
    for name, s in stats.items():
        logger.info("%-4s %s", name, " ".join(f"{k} {v}" for k, v in s.items()))
    write_subsets(subsets, [cfg.data_dir] + ([cfg.feats_dir] if cfg.feats_dir else []), cfg.suffix)
    save_stats(cfg.stats or f"{cfg.decode_dir.rstrip('/')}/rl_subsets.json", cfg.select, stats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
