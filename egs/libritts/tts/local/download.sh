#!/usr/bin/env bash
# Download and extract LibriTTS subsets (openslr.org/60) into <datadir>/LibriTTS/<subset>.
# Resumable: wget -c (or curl -C -) continues a partial archive. Every archive is checked against the md5 in
# --md5_file before extraction; that file ships without values (see it), so fill it in or pass --check_md5 false.
# Idempotent: an extracted subset gets <datadir>/LibriTTS/<subset>/.complete and is skipped on a rerun.
# Not run by the tests (no network there).
set -euo pipefail

log() {
    local fname=${BASH_SOURCE[1]##*/}
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}) $*" >&2
}

datadir=                 # download and extraction directory; empty: ${LIBRITTS} from db.sh
subsets=train-clean-100,dev-clean,test-clean  # comma-separated subsets (archive names without .tar.gz)
url_base=https://www.openslr.org/resources/60  # download site; mirrors: https://us.openslr.org/resources/60, https://openslr.elda.org/resources/60
md5_file=local/md5sum.txt  # '<md5>  <archive>' lines; an archive without a line is an error unless --check_md5 false
check_md5=true           # false: extract without an md5 check (not recommended)
remove_archive=false     # true: delete each archive once extracted (the training archives are tens of GB)

help_message="Usage: $0 [options]
Downloads, md5-checks and extracts LibriTTS subsets (24 kHz wav; roughly: train-clean-100 8 GB, train-clean-360
27 GB, train-other-500 40 GB, each dev/test subset 1.2 GB)."

. utils/parse_options.sh

if [ $# -ne 0 ]; then
    echo "$help_message" >&2
    echo "$0: unexpected arguments: $*" >&2
    exit 2
fi

. ./db.sh
datadir=${datadir:-${LIBRITTS}}
known="train-clean-100 train-clean-360 train-other-500 dev-clean dev-other test-clean test-other"

# expected_md5 <archive>: its md5 from ${md5_file} (empty if it has no line).
expected_md5() {
    [ -f "${md5_file}" ] || return 0
    awk -v a="$1" '!/^#/ && NF == 2 && ($2 == a || $2 == "*" a) { print $1; exit }' "${md5_file}"
}

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

# Check every md5 first: a missing value must not surface after hours of downloading.
for subset in ${subsets//,/ }; do
    [[ " ${known} " == *" ${subset} "* ]] || { echo "$0: unknown subset '${subset}'; choose from: ${known}" >&2; exit 2; }
    if [ "${check_md5}" = true ] && [ -z "$(expected_md5 "${subset}.tar.gz")" ]; then
        echo "$0: ${md5_file} has no md5 for ${subset}.tar.gz; add its line from https://www.openslr.org/60/" \
             "('<md5>  ${subset}.tar.gz'), or pass --check_md5 false to extract unchecked" >&2
        exit 1
    fi
done

mkdir -p "${datadir}"
for subset in ${subsets//,/ }; do
    done_mark=${datadir}/LibriTTS/${subset}/.complete
    if [ -f "${done_mark}" ]; then
        log "${subset}: already extracted (${done_mark}), skipping"
        continue
    fi
    archive=${datadir}/${subset}.tar.gz
    want=$(expected_md5 "${subset}.tar.gz")
    # A complete archive is not fetched again (curl fails on a range past the end of the file).
    if [ ! -f "${archive}" ] || [ -z "${want}" ] || [ "$(md5sum "${archive}" | cut -d' ' -f1)" != "${want}" ]; then
        log "${subset}: downloading ${url_base}/${subset}.tar.gz -> ${archive}"
        fetch "${url_base}/${subset}.tar.gz" "${archive}"
    fi
    if [ "${check_md5}" = true ]; then
        sum=$(md5sum "${archive}" | cut -d' ' -f1)
        if [ "${sum}" != "${want}" ]; then
            echo "$0: ${archive}: md5 ${sum}, expected ${want} (${md5_file}): the file is corrupt or was cut short by" \
                 "the server; delete it and rerun (a rerun resumes a partial file but cannot repair a corrupt one)" >&2
            exit 1
        fi
        log "${subset}: md5 OK"
    fi
    log "${subset}: extracting into ${datadir}"
    tar -xzf "${archive}" -C "${datadir}"
    touch "${done_mark}"
    [ "${remove_archive}" = true ] && rm -f "${archive}"
done
log "Done: ${subsets} in ${datadir}/LibriTTS"
