#!/usr/bin/env bash
# Data preparation for AISHELL-1 (stage 1 of asr.sh): reads a local copy in the official layout
# (<datadir>/data_aishell/wav/{train,dev,test}/<speaker>/<utt>.wav + transcript/aishell_transcript_v0.8.txt;
# --download true fetches it first) and writes data/{train,rl_pool,dev,test}/{wav.scp,text,utt2spk,spk2utt,utt2dur}:
#   train    the train subset minus rl_pool      dev    the dev subset (validation; also scored)
#   rl_pool  --rl_pool_utts random train utts    test   the test subset
# Text: NFKC (full-width -> half-width), punctuation removed, Latin letters lower-cased, spaces removed (the
# transcript's word segmentation is not part of the reference): CER scoring splits into characters.
# Utterance ids are '<speaker>-<official id>' (S0002-BAC009S0002W0122). Python side: audiorl/data/corpora/aishell.py.
set -euo pipefail

log() {
    local fname=${BASH_SOURCE[1]##*/}
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}) $*" >&2
}

datadir=                 # directory holding data_aishell/; empty: ${AISHELL} from db.sh
download=false           # true: first run local/download.sh (resumable, md5-checked, extracts the per-speaker archives)
rl_pool_utts=3000        # train utterances held out into data/rl_pool (RL prompts, never in SFT); 0 = none
seed=0                   # seed of the rl_pool draw
on_mismatch=skip         # skip (logged count) or error: the official release has wavs without a transcript line
nj=4                     # threads reading audio headers (utt2dur)
check_audio=false        # true: validate_data_dir.sh --check-audio decodes every file (slow on the full corpus)

help_message="Usage: $0 [options]
Writes data/<set> for the AISHELL-1 ASR recipe from a local copy of the corpus (see the header of this file)."

. utils/parse_options.sh

if [ $# -ne 0 ]; then
    echo "$help_message" >&2
    echo "$0: unexpected arguments: $*" >&2
    exit 2
fi

. ./path.sh
. ./db.sh
datadir=${datadir:-${AISHELL}}

if [ "${download}" = true ]; then
    log "Downloading AISHELL-1 into ${datadir}"
    local/download.sh --datadir "${datadir}"
fi

log "Preparing and validating data/ from ${datadir} (rl_pool: ${rl_pool_utts} train utterances)"
python -m audiorl.bin.prepare_corpus --corpus aishell --datadir "${datadir}" --out data \
    --train_subsets train --dev_subsets dev --test_subsets test \
    --rl_pool_utts "${rl_pool_utts}" --seed "${seed}" --on_mismatch "${on_mismatch}" \
    --check_audio "${check_audio}" --nj "${nj}"
