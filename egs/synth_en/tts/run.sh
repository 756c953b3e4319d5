#!/usr/bin/env bash
# synth_en TTS: the same offline corpus as ../asr (local/data.sh shares its audio), a CosyVoice-style pipeline sized
# for 2 CPU cores: supervised speech tokens -> text-to-token LM -> flow-matching token-to-mel -> Griffin-Lim, judged
# by the ../asr SFT model; then RL of the LM on the rl_pool texts (GRPO, DiffRO, GRPO + DiffRO: the paper's Table 2).
# All stage logic is in tts.sh; options go through "$@", e.g.
#   ./run.sh --stage 7 --stop_stage 7 --lm_args "--train.max_steps 100"
#   ./run.sh --stage 12 --asr_exp ../asr/exp/asr_train_asr_noreg      # another judge
#   ./run.sh --stage 10 --rl_variants "grpo_r1:conf/rl/grpo_r1.yaml"   # one RL variant
set -euo pipefail

train_set=train
valid_set=dev
test_sets="test"
rl_set=rl_pool

# The paper's Table 2 rows (name:config); names starting with comb_filter are the filtered combination (tts.sh 13).
rl_variants="grpo_r1:conf/rl/grpo_r1.yaml diffro:conf/rl/diffro.yaml comb_nofilter_r1:conf/rl/comb_nofilter_r1.yaml"
rl_variants+=" comb_filter_r1:conf/rl/comb_filter_r1.yaml comb_filter_r12:conf/rl/comb_filter_r12.yaml"
rl_variants+=" comb_filter_r123:conf/rl/comb_filter_r123.yaml"

./tts.sh \
    --train_set "${train_set}" \
    --valid_set "${valid_set}" \
    --test_sets "${test_sets}" \
    --rl_set "${rl_set}" \
    --fbank_conf conf/fbank.conf \
    --tokenizer_config conf/train_tokenizer.yaml \
    --tokenizer_init_asr ../asr/exp/asr_train_asr \
    --lm_config conf/train_tts_lm.yaml \
    --t2m_config conf/train_token2mel.yaml \
    --rm_config conf/train_token2text.yaml \
    --rl_variants "${rl_variants}" \
    --synth_config conf/synth.yaml \
    --synth_draws 3 \
    --nbpe 400 \
    "$@"
