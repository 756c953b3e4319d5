"""Train the neural vocoder (Vocos-style, reconstruction losses) on a data dir's recordings: log-mel -> waveform.

    python -m audiorl.bin.tts_vocoder_train --exp_dir exp/vocoder_x --config conf/train_vocoder.yaml \
        --data.train_dir data/train --data.valid_dir data/dev [--train.max_steps 100 ...]

Rerunning the same command resumes from the last checkpoint (train.resume=auto). ``--print_config`` shows the
resolved config; ``--help`` lists every field. Synthesis uses the result with ``python -m audiorl.bin.tts_synth
--vocoder.kind neural --vocoder.exp exp/vocoder_x``.
"""

from __future__ import annotations

import sys

from audiorl.tasks.vocoder import VocoderTask, VocoderTrainConfig
from audiorl.train.cli import train_main


def main(argv: list[str] | None = None) -> int:
    return train_main(VocoderTrainConfig, VocoderTask, "tts_vocoder_train", argv)


if __name__ == "__main__":
    sys.exit(main())
