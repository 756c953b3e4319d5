"""Append the RL ablation tables (audiorl/eval/rl_tables.py) to RESULTS.md.

    python -m audiorl.bin.make_rl_results --exp exp --out RESULTS.md --sets "test test_unseen_spk" \
        --table "Rewards (data D1)|SFT=asr_train_asr R1=grpo_d1_r1 R1+R2=grpo_d1_r12" \
        --table "RL data (rewards R1+R2+R3)|SFT=asr_train_asr D0=grpo_d0_r123 D1=grpo_d1_r123"

Each --table is 'TITLE|LABEL=EXPERIMENT ...' (experiment = a directory under --exp; the first is the baseline).
EXPERIMENT may pool runs of one config, e.g. seeds: 'enc=grpo_enc+grpo_enc_s2+grpo_enc_s3' (each utterance's errors
summed over the runs: the row is their mean, tested against the baseline counted once per run).
A previous RL section of --out is replaced; the rest of the file is kept.
"""

from __future__ import annotations

import argparse
import os
import sys

from audiorl.eval.results import find_scores
from audiorl.eval.rl_tables import replace_section, rl_section_md
from audiorl.eval.sclite import write_text_atomic
from audiorl.log import get_logger, setup_logging

logger = get_logger("make_rl_results")


def parse_table(spec: str) -> tuple[str, list[tuple[str, str]]]:
    title, _, body = spec.partition("|")
    systems = [tuple(x.split("=", 1)) for x in body.split()]
    if not title or not systems or any(len(s) != 2 or not all(s) for s in systems):
        raise ValueError(f"--table {spec!r}: expected 'TITLE|LABEL=EXPERIMENT LABEL=EXPERIMENT ...'")
    return title, systems  # type: ignore[return-value]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="make_rl_results", description=__doc__.split("\n\n")[0])
    p.add_argument("--exp", default="exp", help="experiment root to scan")
    p.add_argument("--out", default="RESULTS.md", help="markdown file to update")
    p.add_argument("--sets", required=True, help="data sets, space separated (one table each)")
    p.add_argument("--table", action="append", default=[],
                   help="'TITLE|LABEL=EXPERIMENT ...' (repeatable); EXPERIMENT may be 'a+b+c' (runs pooled)")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples")
    a = p.parse_args(argv)
    setup_logging()
    try:
        tables = [parse_table(t) for t in a.table]
    except ValueError as e:
        p.error(str(e))
    if not tables:
        p.error("give at least one --table")
    section = rl_section_md(tables, find_scores(a.exp), a.sets.split(), n_boot=a.n_boot)
    old = open(a.out, encoding="utf-8").read() if os.path.isfile(a.out) else ""
    write_text_atomic(a.out, replace_section(old, section))
    logger.info("wrote %d RL tables to %s", len(tables), a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
