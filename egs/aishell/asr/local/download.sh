#!/usr/bin/env bash
# Download and extract AISHELL-1 (openslr.org/33) into <datadir>/data_aishell (and resource_aishell).
# data_aishell.tgz holds one archive per speaker (data_aishell/wav/S*.tar.gz); they are extracted too, into
# data_aishell/wav/{train,dev,test}/<speaker>/, and deleted once extracted (the Kaldi recipe's way).
# Each .tgz goes through utils/download_and_untar.sh: resumable (wget -c or curl -C -), checked against its
# official md5 before extraction, and skipped on a rerun once extracted (<datadir>/.<name>.complete).
# The tests run it with a fake wget (no network there).
set -euo pipefail

log() {
    local fname=${BASH_SOURCE[1]##*/}
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}) $*" >&2
}

datadir=                 # download and extraction directory; empty: ${AISHELL} from db.sh
archives=data_aishell    # comma-separated: data_aishell (15 GB, audio + transcript), resource_aishell (1.2 MB, lexicon + speaker info)
url_base=https://www.openslr.org/resources/33  # download site; mirrors: https://us.openslr.org/resources/33, https://openslr.elda.org/resources/33
remove_archive=false     # true: delete each .tgz once extracted

help_message="Usage: $0 [options]
Downloads, md5-checks and extracts AISHELL-1 (data_aishell.tgz, 15 GB; ~170 h, 400 speakers)."

. utils/parse_options.sh

if [ $# -ne 0 ]; then
    echo "$help_message" >&2
    echo "$0: unexpected arguments: $*" >&2
    exit 2
fi

. ./db.sh
datadir=${datadir:-${AISHELL}}

# md5 sums of the official archives: the values in PaddleSpeech's AISHELL download script (repeated by other
# public downloaders); not re-checked against a download from this project (no network here).
declare -A md5=(
    [data_aishell]=2f494334227864a8a8fec932999db9d8
    [resource_aishell]=957d480a0fcac85fc18e550756f624e5
)

for name in ${archives//,/ }; do
    [ -n "${md5[${name}]:-}" ] || { echo "$0: unknown archive '${name}'; choose from: ${!md5[*]}" >&2; exit 2; }
done
for name in ${archives//,/ }; do
    utils/download_and_untar.sh --md5 "${md5[${name}]}" --remove_archive "${remove_archive}" \
        "${url_base}/${name}.tgz" "${datadir}/${name}.tgz" "${datadir}"
    if [ "${name}" = data_aishell ]; then
        # One archive per speaker; each unpacks to {train,dev,test}/<speaker>/ and is deleted once extracted, so a
        # rerun after a crash extracts only the ones left.
        for spk_archive in "${datadir}"/data_aishell/wav/*.tar.gz; do
            [ -e "${spk_archive}" ] || continue
            tar -xzf "${spk_archive}" -C "${datadir}/data_aishell/wav"
            rm -f "${spk_archive}"
        done
    fi
done
log "Done: ${archives} in ${datadir}"
