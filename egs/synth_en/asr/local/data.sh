#!/usr/bin/env bash
# Data preparation for synth_en (stage 1 of asr.sh and tts.sh): synthesise the corpus into ${SYNTH_EN}
# (db.sh) if it is not there yet, then write data/<set> for train, rl_pool, dev, test, test_unseen_spk
# (and, on demand, rl_pool_extra, a larger RL prompt pool, with --rl_pool_extra_utts N, and test_extra, a larger test
# set drawn like test, with --test_extra_utts N; the other sets stay as they are).
# Resumable and idempotent: existing valid audio is kept, so a rerun only checks files.
#   db:   ${SYNTH_EN}/wav/<set>/<spk>/<utt>_<hash>.wav, ${SYNTH_EN}/data/<set> (wav.scp relative to the db)
#   out:  data/<set>/{wav.scp,text,utt2spk,spk2utt,utt2dur,spk2gender,keywords}, wav.scp paths prefixed
#         with ${SYNTH_EN}/ (relative to the recipe dir for the default ../db)
set -euo pipefail

log() {
    local fname=${BASH_SOURCE[1]##*/}
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}) $*" >&2
}

nj=2                   # parallel synthesis processes
seed=0                 # corpus seed: text, speaker order, perturbation, noise
smoke=false            # true: a few dozen utterances per set (tests, quick checks)
train_utts=            # utterances in train; empty: 8000 (smoke: 48)
rl_pool_utts=          # utterances in rl_pool; empty: 3000 (smoke: 24)
dev_utts=              # utterances in dev; empty: 500 (smoke: 16)
test_utts=             # utterances in test; empty: 800 (smoke: 24)
test_unseen_spk_utts=  # utterances in test_unseen_spk (held-out voices); empty: 800 (smoke: 24)
rl_pool_extra_utts=    # utterances in rl_pool_extra (fresh RL prompts drawn after every other set); empty/0: none
test_extra_utts=       # utterances in test_extra (like test: seen speakers, fresh sentences, never in rl_pool_extra); empty/0: none
noise_frac=            # fraction of utterances with additive white/pink noise; empty: 0.1
check_audio=true       # true: validate_data_dir.sh --check-audio (reads every wav header)

help_message="Usage: $0 [options]
Synthesises the synth_en corpus into \${SYNTH_EN} (db.sh) if needed and writes data/<set>."

. utils/parse_options.sh

if [ $# -ne 0 ]; then
    echo "$help_message" >&2
    echo "$0: unexpected arguments: $*" >&2
    exit 2
fi

. ./path.sh
. ./db.sh

sets="train rl_pool dev test test_unseen_spk"
[ "${rl_pool_extra_utts:-0}" -gt 0 ] && sets+=" rl_pool_extra"
[ "${test_extra_utts:-0}" -gt 0 ] && sets+=" test_extra"

opts=()
for name in seed train_utts rl_pool_utts dev_utts test_utts test_unseen_spk_utts rl_pool_extra_utts test_extra_utts \
        noise_frac; do
    [ -n "${!name}" ] && opts+=(--"${name}" "${!name}")
done
progress=false
[ -t 2 ] && progress=true

log "Synthesising the corpus into ${SYNTH_EN} (nj=${nj}, smoke=${smoke}; existing valid audio is kept)"
python -m audiorl.bin.synth_corpus --db "${SYNTH_EN}" --nj "${nj}" --smoke "${smoke}" \
    --progress "${progress}" "${opts[@]}"

validate_opts=(--no-feats)
[ "${check_audio}" = true ] && validate_opts+=(--check-audio)
for x in ${sets}; do
    src=${SYNTH_EN}/data/${x}
    dst=data/${x}
    # A fresh copy: files of an older, different build must not survive.
    rm -rf "${dst}"
    mkdir -p "${dst}"
    for f in text utt2spk spk2utt utt2dur spk2gender keywords; do
        cp "${src}/${f}" "${dst}/${f}"
    done
    awk -v prefix="${SYNTH_EN%/}/" '{ print $1, prefix $2 }' "${src}/wav.scp" > "${dst}/wav.scp"
    utils/validate_data_dir.sh "${validate_opts[@]}" "${dst}"
    log "  ${dst}: $(wc -l < "${dst}/text") utterances, $(wc -l < "${dst}/spk2utt") speakers"
done
log "Successfully prepared data/{${sets// /,}}"
