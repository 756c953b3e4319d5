#!/usr/bin/env bash
# AISHELL-1 Mandarin ASR (openslr.org/33): LLM-based ASR on characters (SFT on train, then GRPO on a held-out RL
# pool), scored by CER on dev and test. Transcripts are normalised in local/data.sh (full-width -> half-width,
# punctuation and word-segmentation spaces removed). Configs are sized for one 80 GB GPU (README.md). All stage
# logic is in asr.sh; options go through "$@", e.g.
#   ./run.sh --stage 1 --stop_stage 1 --local_data_opts "--download true"
set -euo pipefail

train_set=train
valid_set=dev
test_sets="test"             # dev is decoded and scored too (asr.sh --decode_valid true)
rl_set=rl_pool
asr_config=conf/train_asr.yaml
# No keyword lists in AISHELL-1: R1 accuracy + R2 hallucination, both on characters (conf/grpo_r12.yaml).
rl_variants="d1_r12:D1:conf/grpo_r12.yaml"
# --nbpe is only an upper bound with --token_type char: AISHELL-1's training text has ~4,200 distinct characters.

./asr.sh \
    --train_set "${train_set}" \
    --valid_set "${valid_set}" \
    --test_sets "${test_sets}" \
    --rl_set "${rl_set}" \
    --fbank_conf conf/fbank.conf \
    --asr_config "${asr_config}" \
    --token_type char \
    --nbpe 5000 \
    --score_unit char \
    --rl_variants "${rl_variants}" \
    --results_title "AISHELL-1 ASR" \
    "$@"
