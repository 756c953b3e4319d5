"""RL of the TTS LM: GRPO, DiffRO or GRPO + DiffRO (``--method``), starting from the SFT LM (tts.sh stage 10).

    python -m audiorl.bin.tts_rl_train --exp_dir exp/tts_rl_grpo_r1 --config conf/rl/grpo_r1.yaml \
        --data.sft_exp exp/tts_lm_train_tts_lm --models.reward_model_exp exp/token2text_train_token2text \
        --models.t2m_exp exp/token2mel_train_token2mel --models.asr_exp ../asr/exp/asr_train_asr

Rerunning the same command resumes from the last checkpoint (train.resume=auto). ``--print_config`` shows the
resolved config; ``--help`` lists every field (audiorl/tasks/tts_rl.py explains the methods).
"""

from __future__ import annotations

import sys

from audiorl.tasks.tts_rl import TTSRLConfig, make_tts_rl_task
from audiorl.train.cli import train_main


def main(argv: list[str] | None = None) -> int:
    return train_main(TTSRLConfig, make_tts_rl_task, "tts_rl_train", argv)


if __name__ == "__main__":
    sys.exit(main())
