"""GRPO fine-tuning of an SFT LLM-based ASR model (PAPER.md s2-s3).

    python -m audiorl.bin.asr_grpo --exp_dir exp/grpo_d1_r1 --config conf/grpo_r1.yaml \
        --data.sft_exp exp/asr_train_asr --data.rl_dir dump/fbank/rl_pool_D1 [--grpo.beta 0.05 ...]

Rerunning the same command resumes from the last checkpoint (train.resume=auto). ``--print_config``
shows the resolved config; ``--help`` lists every field.
"""

from __future__ import annotations

import sys

from audiorl.train.cli import train_main
from audiorl.tasks.asr_grpo import ASRGRPOConfig, ASRGRPOTask


def main(argv: list[str] | None = None) -> int:
    return train_main(ASRGRPOConfig, ASRGRPOTask, "asr_grpo", argv)


if __name__ == "__main__":
    sys.exit(main())
