#!/usr/bin/env bash
# Download and extract LibriTTS subsets (openslr.org/60) into <datadir>/LibriTTS/<subset>.
# Each archive goes through utils/download_and_untar.sh: resumable (wget -c or curl -C -), checked against the md5
# in --md5_file before extraction (that file ships without values, see it: fill it in or pass --check_md5 false),
# and skipped on a rerun once extracted (<datadir>/LibriTTS/<subset>/.complete). The tests run it with a fake wget.
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

# Check every md5 first: a missing value must not surface after hours of downloading.
for subset in ${subsets//,/ }; do
    [[ " ${known} " == *" ${subset} "* ]] || { echo "$0: unknown subset '${subset}'; choose from: ${known}" >&2; exit 2; }
    if [ "${check_md5}" = true ] && [ -z "$(expected_md5 "${subset}.tar.gz")" ]; then
        echo "$0: ${md5_file} has no md5 for ${subset}.tar.gz; add its line from https://www.openslr.org/60/" \
             "('<md5>  ${subset}.tar.gz'), or pass --check_md5 false to extract unchecked" >&2
        exit 1
    fi
done

for subset in ${subsets//,/ }; do
    utils/download_and_untar.sh --md5 "$(expected_md5 "${subset}.tar.gz")" --check_md5 "${check_md5}" \
        --remove_archive "${remove_archive}" --done_mark "${datadir}/LibriTTS/${subset}/.complete" \
        "${url_base}/${subset}.tar.gz" "${datadir}/${subset}.tar.gz" "${datadir}"
done
log "Done: ${subsets} in ${datadir}/LibriTTS"
