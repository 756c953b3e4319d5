#!/usr/bin/env bash
# Download and extract LibriSpeech subsets (openslr.org/12) into <datadir>/LibriSpeech/<subset>.
# Each archive goes through utils/download_and_untar.sh: resumable (wget -c or curl -C -), checked against its
# official md5 before extraction, and skipped on a rerun once extracted (<datadir>/LibriSpeech/<subset>/.complete).
# The tests run it with a fake wget (no network there).
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

for subset in ${subsets//,/ }; do
    [ -n "${md5[${subset}]:-}" ] || { echo "$0: unknown subset '${subset}'; choose from: ${!md5[*]}" >&2; exit 2; }
done
for subset in ${subsets//,/ }; do
    utils/download_and_untar.sh --md5 "${md5[${subset}]}" --remove_archive "${remove_archive}" \
        --done_mark "${datadir}/LibriSpeech/${subset}/.complete" \
        "${url_base}/${subset}.tar.gz" "${datadir}/${subset}.tar.gz" "${datadir}"
done
log "Done: ${subsets} in ${datadir}/LibriSpeech"
