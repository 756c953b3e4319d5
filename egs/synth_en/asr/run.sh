#!/usr/bin/env bash
# synth_en ASR: an embedded offline English corpus synthesised with espeak-ng, flite and festival
# (local/data.sh; ~7 h of train audio by default), LLM-based ASR trained by SFT then GRPO, decoded and scored.
# All stage logic is in asr.sh; options go through "$@", e.g.
#   ./run.sh --stage 1 --stop_stage 3 --local_data_opts "--smoke true"
set -euo pipefail

train_set=train
valid_set=dev
test_sets="test test_unseen_spk"
rl_set=rl_pool
asr_config=conf/train_asr.yaml
# GRPO variants name:data:config (stage 11). `make demo` runs this one; the paper's ablation is one --stage away:
#   ./run.sh --stage 9 --rl_variants "d1_r1:D1:conf/grpo_r1.yaml d1_r12:D1:conf/grpo_r12.yaml \
#       d1_r123:D1:conf/grpo_r123.yaml d0_r123:D0:conf/grpo_r123.yaml d2_r123:D2:conf/grpo_r123.yaml d3_r123:D3:conf/grpo_r123.yaml \
#       d3_r12:D3:conf/grpo_r12.yaml"   (the last: R3 off on keyword-heavy data)
rl_variants="d1_r123:D1:conf/grpo_r123.yaml"

./asr.sh \
    --train_set "${train_set}" \
    --valid_set "${valid_set}" \
    --test_sets "${test_sets}" \
    --rl_set "${rl_set}" \
    --fbank_conf conf/fbank.conf \
    --asr_config "${asr_config}" \
    --nbpe 150 \
    --rl_variants "${rl_variants}" \
    "$@"
