#!/usr/bin/env bash
# Download one corpus archive, check its md5 and extract it (Kaldi's local/download_and_untar.sh, for any corpus):
# the recipes' local/download.sh call it once per archive with their corpus's URL and official md5.
# Resumable: wget --continue (or curl --continue-at -) carries on with a partial archive; a complete one (md5 right) is
# not fetched again. The md5 is checked before extraction. Idempotent: a finished extraction touches <done-mark>, and
# a rerun with it present does nothing. Exit status: 0 success (or already extracted), 1 failure, 2 usage error.
set -euo pipefail

md5=                   # expected md5sum of the archive (32 hex digits); required unless --check_md5 false
check_md5=true         # false: extract without an md5 check (not recommended)
done_mark=             # file touched once extracted; default: <extract-dir>/.<name>.complete (<name>: archive name without .tar.gz/.tgz)
remove_archive=false   # true: delete the archive once extracted
help_message="Usage: $0 [options] <url> <archive> <extract-dir>
e.g.: $0 --md5 42e2234ba48799c1f50f24a7926300a1 --done_mark downloads/LibriSpeech/dev-clean/.complete \\
        https://www.openslr.org/resources/12/dev-clean.tar.gz downloads/dev-clean.tar.gz downloads
Downloads <url> to <archive> (a .tar.gz / .tgz), checks its md5 and extracts it into <extract-dir>."

. "$(dirname "${BASH_SOURCE[0]}")/parse_options.sh"

log() { echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${0##*/}:${BASH_LINENO[0]}) $*" >&2; }

if [ $# -ne 3 ]; then
    echo "$help_message" >&2
    echo "$0: expected 3 arguments, got $#" >&2
    exit 2
fi
url=$1
archive=$2
dir=$3
name=${archive##*/}
name=${name%.tar.gz}
name=${name%.tgz}
done_mark=${done_mark:-${dir}/.${name}.complete}
if [ "${check_md5}" = true ] && ! [[ "${md5}" =~ ^[0-9a-f]{32}$ ]]; then
    echo "$0: ${name}: --md5 '${md5}' is not an md5 sum (32 hex digits); give the archive's official one, or" \
         "--check_md5 false to extract it unchecked" >&2
    exit 2
fi

if [ -f "${done_mark}" ]; then
    log "${name}: already extracted (${done_mark}), skipping"
    exit 0
fi

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

mkdir -p "$(dirname "${archive}")" "${dir}"
sum=
[ -f "${archive}" ] && [ -n "${md5}" ] && sum=$(md5sum "${archive}" | cut -d' ' -f1)
# A complete archive is not fetched again (curl fails on a range past the end of the file).
if [ -z "${sum}" ] || [ "${sum}" != "${md5}" ]; then
    log "${name}: downloading ${url} -> ${archive}"
    fetch "${url}" "${archive}" || { echo "$0: ${name}: downloading ${url} failed; rerun to resume it (or try a mirror)" >&2; exit 1; }
    sum=
fi
if [ "${check_md5}" = true ]; then
    [ -n "${sum}" ] || sum=$(md5sum "${archive}" | cut -d' ' -f1)
    if [ "${sum}" != "${md5}" ]; then
        echo "$0: ${archive}: md5 ${sum}, expected ${md5}: the file is corrupt or was cut short by the server;" \
             "delete it and rerun (a rerun resumes a partial file but cannot repair a corrupt one)" >&2
        exit 1
    fi
    log "${name}: md5 OK"
fi
log "${name}: extracting into ${dir}"
tar -xzf "${archive}" -C "${dir}"
touch "${done_mark}"
if [ "${remove_archive}" = true ]; then
    rm -f "${archive}"
fi
exit 0
