"""Train the LLM-based ASR model by SFT.

    python -m audiorl.bin.asr_train --exp_dir exp/asr_sft --config conf/train_asr.yaml [--train.max_steps 100 ...]

Rerunning the same command resumes from the last checkpoint (train.resume=auto). ``--print_config``
shows the resolved config; ``--help`` lists every field.
"""

from __future__ import annotations

import sys

from audiorl.config import parse_cli
from audiorl.log import setup_logging
from audiorl.tasks.asr import ASRTask, ASRTrainConfig
from audiorl.train.trainer import Trainer


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--exp_dir" not in argv and not {"--help", "-h", "--print_config"} & set(argv):
        sys.stderr.write("asr_train: error: --exp_dir DIR is required\n")
        return 2
    exp_dir = None
    if "--exp_dir" in argv:
        i = argv.index("--exp_dir")
        exp_dir = argv[i + 1]
        del argv[i: i + 2]
    cfg = parse_cli(ASRTrainConfig, argv, prog="asr_train")
    setup_logging()
    task = ASRTask(cfg)
    result = Trainer(task, task.cfg.train, exp_dir, config=task.cfg).fit()
    return 0 if result["step"] > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
