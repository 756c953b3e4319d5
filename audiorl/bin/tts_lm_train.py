"""Train the text-to-speech-token LM by SFT (CosyVoice's LLM stage).

    python -m audiorl.bin.tts_lm_train --exp_dir exp/tts_lm_x --config conf/train_tts_lm.yaml \
        --data.tokenizer_exp exp/tokenizer_x [--data.train_tokens my_tokens/train.scp --data.codebook_size 4096 ...]

Rerunning the same command resumes from the last checkpoint (train.resume=auto). ``--print_config`` shows the
resolved config; ``--help`` lists every field.
"""

from __future__ import annotations

import sys

from audiorl.tasks.tts import TTSLMTask, TTSLMTrainConfig
from audiorl.train.cli import train_main


def main(argv: list[str] | None = None) -> int:
    return train_main(TTSLMTrainConfig, TTSLMTask, "tts_lm_train", argv)


if __name__ == "__main__":
    sys.exit(main())
