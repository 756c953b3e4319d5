"""Train the LLM-based ASR model by SFT.

    python -m audiorl.bin.asr_train --exp_dir exp/asr_sft --config conf/train_asr.yaml [--train.max_steps 100 ...]

Rerunning the same command resumes from the last checkpoint (train.resume=auto). ``--print_config``
shows the resolved config; ``--help`` lists every field.
"""

from __future__ import annotations

import sys

from audiorl.train.cli import train_main
from audiorl.tasks.asr import ASRTrainConfig, ASRTask


def main(argv: list[str] | None = None) -> int:
    return train_main(ASRTrainConfig, ASRTask, "asr_train", argv)


if __name__ == "__main__":
    sys.exit(main())
