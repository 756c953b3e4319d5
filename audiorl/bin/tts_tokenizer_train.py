"""Train the supervised semantic speech tokenizer (ASR encoder + FSQ/VQ, CTC on the transcript).

    python -m audiorl.bin.tts_tokenizer_train --exp_dir exp/tokenizer_x --config conf/train_tokenizer.yaml \
        [--data.train_dir dump/fbank/train ...] [--train.max_steps 100 ...]

Rerunning the same command resumes from the last checkpoint (train.resume=auto). ``--print_config`` shows the
resolved config; ``--help`` lists every field.
"""

from __future__ import annotations

import sys

from audiorl.tasks.tts import SpeechTokenizerTask, SpeechTokenizerTrainConfig
from audiorl.train.cli import train_main


def main(argv: list[str] | None = None) -> int:
    return train_main(SpeechTokenizerTrainConfig, SpeechTokenizerTask, "tts_tokenizer_train", argv)


if __name__ == "__main__":
    sys.exit(main())
