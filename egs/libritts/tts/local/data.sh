#!/usr/bin/env bash
# Data preparation for LibriTTS (stage 1 of tts.sh): reads a local copy in the official layout
# (<datadir>/LibriTTS/<subset>/<speaker>/<chapter>/<utt>.{wav,normalized.txt,original.txt}; --download true fetches
# it first) and writes data/{train,rl_pool,dev,<test sets>}/{wav.scp,text,utt2spk,spk2utt,utt2dur}:
#   train    the training subsets minus rl_pool            dev         the dev subsets combined (validation)
#   rl_pool  --rl_pool_utts random training utterances     test_clean  (each test subset; dashes -> underscores)
# Text (--text_form): by default the .normalized.txt upper-cased without punctuation, LibriSpeech's form, because
# the judge is the LibriSpeech ASR model and tts.sh scores its transcripts against data/<set>/text as they are.
# Utterance ids are '<speaker>-<official id>' (19-19_198_000000_000000). The 24 kHz audio stays as it is: every
# stage resamples on load. Python side: audiorl/data/corpora/libritts.py via python -m audiorl.bin.prepare_corpus.
set -euo pipefail

log() {
    local fname=${BASH_SOURCE[1]##*/}
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}) $*" >&2
}

datadir=                 # directory holding LibriTTS/; empty: ${LIBRITTS} from db.sh
download=false           # true: first run local/download.sh for every subset named below (resumable, md5-checked)
train_subsets=train-clean-100  # comma-separated: any of train-clean-100, train-clean-360, train-other-500
dev_subsets=dev-clean    # combined into data/dev, the validation set
test_subsets=test-clean  # one data dir each: test-clean -> data/test_clean
rl_pool_utts=3000        # training utterances held out into data/rl_pool (RL texts, never in SFT); 0 = none
seed=0                   # seed of the rl_pool draw
text_form=asr            # asr (upper case, no punctuation: the judge's form), normalized or original (the file as is)
on_mismatch=error        # error or skip: audio without its text file (or the reverse), empty text; skip logs counts
nj=4                     # threads reading audio headers (utt2dur)
check_audio=false        # true: validate_data_dir.sh --check-audio decodes every file (slow on the full corpus)

help_message="Usage: $0 [options]
Writes data/<set> for the LibriTTS TTS recipe from a local copy of the corpus (see the header of this file)."

. utils/parse_options.sh

if [ $# -ne 0 ]; then
    echo "$help_message" >&2
    echo "$0: unexpected arguments: $*" >&2
    exit 2
fi

. ./path.sh
. ./db.sh
datadir=${datadir:-${LIBRITTS}}

if [ "${download}" = true ]; then
    _all=$(echo "${train_subsets},${dev_subsets},${test_subsets}" | tr ',' '\n' | sed '/^$/d' | sort -u | paste -sd, -)
    log "Downloading ${_all} into ${datadir}"
    local/download.sh --datadir "${datadir}" --subsets "${_all}"
fi

log "Preparing and validating data/ from ${datadir} (train: ${train_subsets}; dev: ${dev_subsets}; test: ${test_subsets}; rl_pool: ${rl_pool_utts})"
python -m audiorl.bin.prepare_corpus --corpus libritts --datadir "${datadir}" --out data \
    --train_subsets "${train_subsets}" --dev_subsets "${dev_subsets}" --test_subsets "${test_subsets}" \
    --rl_pool_utts "${rl_pool_utts}" --seed "${seed}" --text_form "${text_form}" --on_mismatch "${on_mismatch}" \
    --check_audio "${check_audio}" --nj "${nj}"
