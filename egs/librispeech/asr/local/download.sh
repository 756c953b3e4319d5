#!/usr/bin/env bash
# Download and extract LibriSpeech subsets (openslr.org/12) into <datadir>/LibriSpeech/<subset>.
# Resumable: wget -c (or curl -C -) continues a partial archive. Every archive is checked against its
# official md5 before extraction. Idempotent: an extracted subset gets <datadir>/LibriSpeech/<subset>/.complete
# and is skipped on a rerun. Not run by the tests (no network there).
set -euo pipefail

log() {
    local fname=${BASH_SOURCE[1]##*/}
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}) $*" >&2
}

datadir=                 # download and extraction directory; empty: ${LIBRISPEECH} from db.sh
subsets=train-clean-100,dev-clean,dev-other,test-clean,test-other  # comma-separated subsets (archive names without .tar.gz)
url_base=https://www.openslr.org/resources/12  # download site; mirrors: https://us.openslr.org/resources/12, https://openslr.elda.org/resources/12
remove_archive=false     # true: delete each archive once extracted (train-other-500 alone is 30 GB)

help_message="Usage: $0 [options]
Downloads, md5-checks and extracts LibriSpeech subsets (sizes: train-clean-100 6.3G, train-clean-360 23G,
train-other-500 30G, dev/test-{clean,other} ~0.3G each)."

. utils/parse_options.sh

if [ $# -ne 0 ]; then
    echo "$help_message" >&2
    echo "$0: unexpected arguments: $*" >&2
    exit 2
fi

. ./db.sh
datadir=${datadir:-${LIBRISPEECH}}

# md5 sums of the official archives: the values in PaddleSpeech's LibriSpeech download script, which several
# other public downloaders repeat; not re-checked against a download from this project (no network here).
declare -A md5=(
    [dev-clean]=42e2234ba48799c1f50f24a7926300a1
    [dev-other]=c8d0bcc9cca99d4f8b62fcc847357931
    [test-clean]=32fa31d27d2e1cad72775fee3f4849a9
    [test-other]=fb5a50374b501bb3bac4815ee91d3135
    [train-clean-100]=2a93770f6d5c6c964bc36631d331a522
    [train-clean-360]=c0e676e450a7ff2f54aeade5171606fa
    [train-other-500]=d1a0fd59409feb2c614ce4d30c387708
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
for subset in ${subsets//,/ }; do
    [ -n "${md5[${subset}]:-}" ] || { echo "$0: unknown subset '${subset}'; choose from: ${!md5[*]}" >&2; exit 2; }
    done_mark=${datadir}/LibriSpeech/${subset}/.complete
    if [ -f "${done_mark}" ]; then
        log "${subset}: already extracted (${done_mark}), skipping"
        continue
    fi
    archive=${datadir}/${subset}.tar.gz
    # A complete archive is not fetched again (curl fails on a range past the end of the file).
    if [ ! -f "${archive}" ] || [ "$(md5sum "${archive}" | cut -d' ' -f1)" != "${md5[${subset}]}" ]; then
        log "${subset}: downloading ${url_base}/${subset}.tar.gz -> ${archive}"
        fetch "${url_base}/${subset}.tar.gz" "${archive}"
    fi
    sum=$(md5sum "${archive}" | cut -d' ' -f1)
    if [ "${sum}" != "${md5[${subset}]}" ]; then
        echo "$0: ${archive}: md5 ${sum}, expected ${md5[${subset}]}: the file is corrupt or was cut short by the" \
             "server; delete it and rerun (a rerun resumes a partial file but cannot repair a corrupt one)" >&2
        exit 1
    fi
    log "${subset}: md5 OK, extracting into ${datadir}"
    tar -xzf "${archive}" -C "${datadir}"
    touch "${done_mark}"
    [ "${remove_archive}" = true ] && rm -f "${archive}"
done
log "Done: ${subsets} in ${datadir}/LibriSpeech"
