#!/usr/bin/env bash
# synth_en TTS: the same offline corpus as ../asr (local/data.sh shares its audio), a CosyVoice-style pipeline sized
# for 2 CPU cores: supervised speech tokens -> text-to-token LM -> flow-matching token-to-mel -> Griffin-Lim, judged
# by the ../asr SFT model. All stage logic is in tts.sh; options go through "$@", e.g.
#   ./run.sh --stage 7 --stop_stage 7 --lm_args "--train.max_steps 100"
#   ./run.sh --stage 10 --asr_exp ../asr/exp/asr_train_asr_noreg      # another judge
set -euo pipefail

train_set=train
valid_set=dev
test_sets="test"

./tts.sh \
    --train_set "${train_set}" \
    --valid_set "${valid_set}" \
    --test_sets "${test_sets}" \
    --fbank_conf conf/fbank.conf \
    --tokenizer_config conf/train_tokenizer.yaml \
    --lm_config conf/train_tts_lm.yaml \
    --t2m_config conf/train_token2mel.yaml \
    --synth_config conf/synth.yaml \
    --nbpe 400 \
    "$@"
