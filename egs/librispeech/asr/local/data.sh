#!/usr/bin/env bash
# Data preparation for LibriSpeech (stage 1 of asr.sh): reads a local copy in the official layout
# (<datadir>/LibriSpeech/<subset>/<reader>/<chapter>/*.flac + *.trans.txt; --download true fetches it first)
# and writes data/{train,rl_pool,dev,<test sets>}/{wav.scp,text,utt2spk,spk2utt,utt2dur}:
#   train    the training subsets minus rl_pool           dev       the dev subsets combined (validation)
#   rl_pool  --rl_pool_utts random training utterances    dev_clean, dev_other, test_clean, test_other: test sets
# wav.scp points at the .flac files (read directly; relative --datadir paths stay relative to this dir).
# Python side: audiorl/data/corpora/librispeech.py via python -m audiorl.bin.prepare_corpus.
set -euo pipefail

log() {
    local fname=${BASH_SOURCE[1]##*/}
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}) $*" >&2
}

datadir=                 # directory holding LibriSpeech/ (the archives' top dir); empty: ${LIBRISPEECH} from db.sh
download=false           # true: first run local/download.sh for every subset named below (resumable, md5-checked)
train_subsets=train-clean-100  # comma-separated: any of train-clean-100, train-clean-360, train-other-500
dev_subsets=dev-clean,dev-other  # combined into data/dev, the validation set
test_subsets=dev-clean,dev-other,test-clean,test-other  # one data dir each: dev-clean -> data/dev_clean
rl_pool_utts=3000        # training utterances held out into data/rl_pool (RL prompts, never in SFT); 0 = none
seed=0                   # seed of the rl_pool draw
on_mismatch=error        # error or skip: audio without transcript (or the reverse); skip logs a count per kind
nj=4                     # threads reading audio headers (utt2dur)
check_audio=false        # true: validate_data_dir.sh --check-audio decodes every file (~minutes per 100 h)

help_message="Usage: $0 [options]
Writes data/<set> for the LibriSpeech ASR recipe from a local copy of the corpus (see the header of this file)."

. utils/parse_options.sh

if [ $# -ne 0 ]; then
    echo "$help_message" >&2
    echo "$0: unexpected arguments: $*" >&2
    exit 2
fi

. ./path.sh
. ./db.sh
datadir=${datadir:-${LIBRISPEECH}}

if [ "${download}" = true ]; then
    _all=$(echo "${train_subsets},${dev_subsets},${test_subsets}" | tr ',' '\n' | sed '/^$/d' | sort -u | paste -sd, -)
    log "Downloading ${_all} into ${datadir}"
    local/download.sh --datadir "${datadir}" --subsets "${_all}"
fi

log "Preparing and validating data/ from ${datadir} (train: ${train_subsets}; dev: ${dev_subsets}; test: ${test_subsets}; rl_pool: ${rl_pool_utts})"
python -m audiorl.bin.prepare_corpus --corpus librispeech --datadir "${datadir}" --out data \
    --train_subsets "${train_subsets}" --dev_subsets "${dev_subsets}" --test_subsets "${test_subsets}" \
    --rl_pool_utts "${rl_pool_utts}" --seed "${seed}" --on_mismatch "${on_mismatch}" \
    --check_audio "${check_audio}" --nj "${nj}"
