"""Train the token-to-text reward model of DiffRO (speech tokens -> CTC text, + attribute heads).

    python -m audiorl.bin.token2text_train --exp_dir exp/token2text --config conf/train_token2text.yaml
        [--train.max_steps 100 ...]

Rerunning the same command resumes from the last checkpoint (train.resume=auto). ``--print_config``
shows the resolved config; ``--help`` lists every field.
"""

from __future__ import annotations

import sys

from audiorl.tasks.token2text import Token2TextTask, Token2TextTrainConfig
from audiorl.train.cli import train_main


def main(argv: list[str] | None = None) -> int:
    return train_main(Token2TextTrainConfig, Token2TextTask, "token2text_train", argv)


if __name__ == "__main__":
    sys.exit(main())
