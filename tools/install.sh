#!/usr/bin/env bash
# Install what audiorl needs, idempotently: Debian voices/audio tools, then a venv under tools/venv
# with the pinned set of tools/requirements.txt and audiorl itself in editable mode.
# Fast (a few checks) when everything is already in place.
#   tools/install.sh [--no-apt]
set -euo pipefail
cd "$(dirname "$0")"
tools_dir=$(pwd)
repo_dir=$(cd .. && pwd)

do_apt=true
[ "${1:-}" = "--no-apt" ] && do_apt=false

log() { echo "$(date +'%Y-%m-%dT%H:%M:%S') (tools/install.sh) $*" >&2; }

# --- Debian packages: voices for the synthetic corpus, sox, real recordings for robustness tests.
apt_pkgs=(espeak-ng sox flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts
          pocketsphinx-testdata alsa-utils)
if $do_apt; then
    missing=()
    for p in "${apt_pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        if [ "$(id -u)" -eq 0 ]; then
            log "installing Debian packages: ${missing[*]}"
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
        else
            log "missing Debian packages: ${missing[*]}; run as root: apt-get install -y ${missing[*]}"
            exit 1
        fi
    fi
fi

# --- Python venv with the pinned set. A stamp holds the hash of the inputs, so a change re-installs.
venv=${tools_dir}/venv
stamp=${venv}/.audiorl-installed
want=$(cat "${tools_dir}/requirements.txt" "${tools_dir}/requirements-tts.txt" "${repo_dir}/setup.py" | sha256sum | cut -d' ' -f1)
if [ -f "${stamp}" ] && [ "$(cat "${stamp}")" = "${want}" ] && [ -x "${venv}/bin/python" ]; then
    exit 0
fi
python=${PYTHON:-python3}
if [ ! -x "${venv}/bin/python" ]; then
    log "creating venv ${venv}"
    "${python}" -m venv "${venv}"
fi
log "installing tools/requirements.txt into ${venv} (torch is large: about a minute from the local cache)"
# pip, not uv: only pip sees the machine's local torch wheels (../shared/ENV.md).
pip_quiet() {  # pip's warnings about the machine's empty local index dirs are noise; keep the rest
    "${venv}/bin/pip" install -q --disable-pip-version-check "$@" 2>&1 \
        | { grep -v "is ignored: it is neither a file nor a directory" || true; }
    return "${PIPESTATUS[0]}"
}
pip_quiet -r "${tools_dir}/requirements.txt"
# TTS scoring: resemblyzer (speaker similarity) and speechmos (DNSMOS), weights bundled, offline.
pip_quiet -r "${tools_dir}/requirements-tts.txt"
pip_quiet --no-deps -e "${repo_dir}"
"${venv}/bin/python" -c "import torch, torchaudio, audiorl" || { log "venv check failed"; exit 1; }
echo "${want}" > "${stamp}"
log "done: $(${venv}/bin/python -c 'import torch,torchaudio;print("torch",torch.__version__,"torchaudio",torchaudio.__version__)')"
