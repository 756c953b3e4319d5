#!/usr/bin/env bash
# LibriTTS TTS (openslr.org/60): the CosyVoice-style pipeline of egs/synth_en/tts (supervised speech tokens ->
# text-to-token LM -> flow-matching token-to-mel -> Griffin-Lim), then RL of the LM on a held-out pool of training
# texts (GRPO, DiffRO). The judge is the LibriSpeech ASR recipe's SFT model (train it first: ../../librispeech/asr,
# ./run.sh --stop_stage 5). Configs are sized for one 80 GB GPU (README.md). All stage logic is in tts.sh; options
# go through "$@", e.g.
#   ./run.sh --stage 1 --stop_stage 1 --local_data_opts "--download true"
#   ./run.sh --local_data_opts "--train_subsets train-clean-100,train-clean-360"
set -euo pipefail

train_set=train
valid_set=dev
test_sets="test_clean"
rl_set=rl_pool
asr_exp=../../librispeech/asr/exp/asr_train_asr   # the judge (stage 12) and the asr_judge reward

rl_variants="grpo_r1:conf/rl/grpo_r1.yaml diffro:conf/rl/diffro.yaml"

./tts.sh \
    --train_set "${train_set}" \
    --valid_set "${valid_set}" \
    --test_sets "${test_sets}" \
    --rl_set "${rl_set}" \
    --asr_exp "${asr_exp}" \
    --fbank_conf conf/fbank.conf \
    --tokenizer_config conf/train_tokenizer.yaml \
    --lm_config conf/train_tts_lm.yaml \
    --t2m_config conf/train_token2mel.yaml \
    --rm_config conf/train_token2text.yaml \
    --rl_variants "${rl_variants}" \
    --synth_config conf/synth.yaml \
    --nbpe 1000 \
    --results_title "LibriTTS TTS" \
    "$@"
