#!/usr/bin/env bash
# LibriSpeech ASR (openslr.org/12): LLM-based ASR trained by SFT on the training subsets (local/data.sh
# --train_subsets; default train-clean-100), then GRPO on a held-out RL pool, scored by WER on dev-clean,
# dev-other, test-clean and test-other. Configs are sized for one 80 GB GPU (README.md). All stage logic is in
# asr.sh; options go through "$@", e.g.
#   ./run.sh --stage 1 --stop_stage 1 --local_data_opts "--download true"
#   ./run.sh --local_data_opts "--train_subsets train-clean-100,train-clean-360,train-other-500"
set -euo pipefail

train_set=train
valid_set=dev                # dev-clean + dev-other: also scored one by one as test sets, so not decoded again
test_sets="dev_clean dev_other test_clean test_other"
rl_set=rl_pool
asr_config=conf/train_asr.yaml
# No keyword lists in LibriSpeech: R1 accuracy + R2 hallucination (the R3 keyword reward needs data/<set>/keywords).
rl_variants="d1_r12:D1:conf/grpo_r12.yaml"

./asr.sh \
    --train_set "${train_set}" \
    --valid_set "${valid_set}" \
    --test_sets "${test_sets}" \
    --rl_set "${rl_set}" \
    --decode_valid false \
    --fbank_conf conf/fbank.conf \
    --asr_config "${asr_config}" \
    --nbpe 5000 \
    --rl_variants "${rl_variants}" \
    --results_title "LibriSpeech ASR" \
    "$@"
