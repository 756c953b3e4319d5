"""GRPO fine-tuning of an SFT LLM-based ASR model (PAPER.md s2-s3).

    python -m audiorl.bin.asr_grpo --exp_dir exp/grpo_d1_r1 --config conf/grpo_r1.yaml \
        --data.sft_exp exp/asr_train_asr --data.rl_dir dump/fbank/rl_pool_D1 [--grpo.beta 0.05 ...]

Rerunning the same command resumes from the last checkpoint (train.resume=auto). ``--print_config``
shows the resolved config; ``--help`` lists every field.
"""

from __future__ import annotations

import sys

from audiorl.config import parse_cli
from audiorl.log import setup_logging
from audiorl.tasks.asr_grpo import ASRGRPOConfig, ASRGRPOTask
from audiorl.train.trainer import Trainer


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--exp_dir" not in argv and not {"--help", "-h", "--print_config"} & set(argv):
        sys.stderr.write("asr_grpo: error: --exp_dir DIR is required\n")
        return 2
    exp_dir = None
    if "--exp_dir" in argv:
        i = argv.index("--exp_dir")
        exp_dir = argv[i + 1]
        del argv[i: i + 2]
    cfg = parse_cli(ASRGRPOConfig, argv, prog="asr_grpo")
    setup_logging()
    task = ASRGRPOTask(cfg)
    result = Trainer(task, task.cfg.train, exp_dir, config=task.cfg).fit()
    return 0 if result["step"] > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
