"""Train the token-to-mel model (conditional flow matching, speaker-conditioned) on the recordings' log-mels.

    python -m audiorl.bin.tts_token2mel_train --exp_dir exp/token2mel_x --config conf/train_token2mel.yaml \
        --data.tokenizer_exp exp/tokenizer_x [--train.max_steps 100 ...]

Rerunning the same command resumes from the last checkpoint (train.resume=auto). ``--print_config`` shows the
resolved config; ``--help`` lists every field.
"""

from __future__ import annotations

import sys

from audiorl.tasks.tts import Token2MelTask, Token2MelTrainConfig
from audiorl.train.cli import train_main


def main(argv: list[str] | None = None) -> int:
    return train_main(Token2MelTrainConfig, Token2MelTask, "tts_token2mel_train", argv)


if __name__ == "__main__":
    sys.exit(main())
