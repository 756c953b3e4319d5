#!/usr/bin/env bash
# Download and extract AISHELL-1 (openslr.org/33) into <datadir>/data_aishell (and resource_aishell).
# data_aishell.tgz holds one archive per speaker (data_aishell/wav/S*.tar.gz); they are extracted too, into
# data_aishell/wav/{train,dev,test}/<speaker>/, and deleted once extracted (the Kaldi recipe's way).
# Resumable: wget -c (or curl -C -) continues a partial download. Every archive is checked against its
# official md5 before extraction. Idempotent: an extracted archive gets <datadir>/.<name>.complete and is
# skipped on a rerun. Not run by the tests (no network there).
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

# fetch <url> <file>: resumes a partial file; wget if installed, else curl.
fetch() {
    if command -v wget > /dev/null; then
        wget --continue --tries 5 --progress=dot:giga -O "$2" "$1"
    elif command -v curl > /dev/null; then
        curl --fail --location --retry 5 --continue-at - -o "$2" "$1"
    else
        echo "$0: neither wget nor curl is installed; install one (apt-get install wget)" >&2
        exit 1
    fi
}

mkdir -p "${datadir}"
for name in ${archives//,/ }; do
    [ -n "${md5[${name}]:-}" ] || { echo "$0: unknown archive '${name}'; choose from: ${!md5[*]}" >&2; exit 2; }
    done_mark=${datadir}/.${name}.complete
    if [ -f "${done_mark}" ]; then
        log "${name}: already extracted (${done_mark}), skipping"
        continue
    fi
    archive=${datadir}/${name}.tgz
    # A complete archive is not fetched again (curl fails on a range past the end of the file).
    if [ ! -f "${archive}" ] || [ "$(md5sum "${archive}" | cut -d' ' -f1)" != "${md5[${name}]}" ]; then
        log "${name}: downloading ${url_base}/${name}.tgz -> ${archive}"
        fetch "${url_base}/${name}.tgz" "${archive}"
    fi
    sum=$(md5sum "${archive}" | cut -d' ' -f1)
    if [ "${sum}" != "${md5[${name}]}" ]; then
        echo "$0: ${archive}: md5 ${sum}, expected ${md5[${name}]}: the file is corrupt or was cut short by the" \
             "server; delete it and rerun (a rerun resumes a partial file but cannot repair a corrupt one)" >&2
        exit 1
    fi
    log "${name}: md5 OK, extracting into ${datadir}"
    tar -xzf "${archive}" -C "${datadir}"
    if [ "${name}" = data_aishell ]; then
        # One archive per speaker; each unpacks to {train,dev,test}/<speaker>/ (a rerun after a crash redoes them all).
        for spk_archive in "${datadir}"/data_aishell/wav/*.tar.gz; do
            [ -e "${spk_archive}" ] || continue
            tar -xzf "${spk_archive}" -C "${datadir}/data_aishell/wav"
            rm -f "${spk_archive}"
        done
    fi
    touch "${done_mark}"
    [ "${remove_archive}" = true ] && rm -f "${archive}"
done
log "Done: ${archives} in ${datadir}"
