# Functions shared by the stage scripts egs/TEMPLATE/asr/asr.sh and egs/TEMPLATE/tts/tts.sh: the common set-up, the
# data / fbank / validation stage bodies, and the up-to-date tests. Sourced (not run) by them right after option
# parsing, so a function may read the caller's options; each comment names the ones it reads. Run from the recipe dir.

# log <message>: to stderr, stamped with the time and the caller's file:line (ESPnet's format).
log() {
    local fname=${BASH_SOURCE[1]##*/}
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}) $*" >&2
}

# check_common_options: the options both scripts require or check (exit 2 with the fix).
# Reads train_set, valid_set, test_sets, fbank_conf, init_llm.
check_common_options() {
    [ -n "${train_set}" ] || { echo "$0: --train_set is required" >&2; exit 2; }
    [ -n "${valid_set}" ] || { echo "$0: --valid_set is required" >&2; exit 2; }
    [ -n "${test_sets}" ] || { echo "$0: --test_sets is required" >&2; exit 2; }
    [ -z "${fbank_conf}" ] || [ -f "${fbank_conf}" ] || { echo "$0: --fbank_conf ${fbank_conf}: no such file" >&2; exit 2; }
    [ -z "${init_llm}" ] || [ -f "${init_llm}/config.json" ] || { echo "$0: --init_llm ${init_llm}: no config.json there; give a Hugging Face model directory" >&2; exit 2; }
}

# set_train_launch: how every training stage runs, in two arrays: train_job_opts (the job runner's resources) and
# train_launch (one process or torchrun, utils/launch_train.sh). Reads ngpu, num_nodes, train_threads, train_nproc, python.
set_train_launch() {
    train_job_opts=(--gpu "${ngpu}" --num-nodes "${num_nodes}" --num-threads "${train_threads}")
    train_launch=(utils/launch_train.sh --python "${python}" --ngpu "${ngpu}" --num_nodes "${num_nodes}" --nproc "${train_nproc}")
}

# record_run: the invocation, ESPnet style: <expdir>/run_<date>.sh reruns it from this dir (extra args are appended,
# e.g. `bash exp/run_<date>.sh --stage 5`). Reads expdir and run_args (the quoted command line, taken before parsing).
record_run() {
    mkdir -p "${expdir}"
    local run_log
    run_log=${expdir}/run_$(date '+%Y%m%dT%H%M%S').sh
    {
        echo "#!/usr/bin/env bash"
        echo "# $(date '+%Y-%m-%dT%H:%M:%S') on $(hostname): the command that ran; extra arguments are appended."
        echo "cd \"\$(dirname \"\$0\")/..\" && ${run_args}\"\$@\""
    } > "${run_log}"
    chmod +x "${run_log}"
    log "$0 ${run_args#* } (recorded in ${run_log})"
}

# tag_of <tag> <config>: an experiment name: <tag> if given, else the config file name without .yaml (ESPnet naming:
# conf/train_asr.yaml -> exp/asr_train_asr), else 'default'.
tag_of() { [ -n "$1" ] && echo "$1" || basename "${2:-default}" .yaml; }

# final_weights <exp>: the weights a training stage ended with (the best-N average its config.yaml asks for, else its
# latest checkpoint); empty, and a line on stderr saying why, when there are none.
final_weights() { ${python} -m audiorl.bin.final_weights "$1" || true; }

# newer_than <file> <x>...: true when <file> is non-empty and no existing <x> is newer than it.
newer_than() {
    local f=$1 x
    shift
    [ -s "${f}" ] || return 1
    for x in "$@"; do
        [ -e "${x}" ] && [ "${x}" -nt "${f}" ] && return 1
    done
    return 0
}

# same_count <a> <b>: both tables non-empty with the same number of lines.
same_count() { [ -s "$1" ] && [ -s "$2" ] && [ "$(wc -l < "$1")" -eq "$(wc -l < "$2")" ]; }

# prepare_data <set>...: stage 1: local/data.sh ${local_data_opts}, then check it wrote data/<set> for every set.
prepare_data() {
    local dset
    # shellcheck disable=SC2086  # local_data_opts is a list of options
    local/data.sh ${local_data_opts}
    for dset in "$@"; do
        [ -f "data/${dset}/wav.scp" ] || { echo "$0: stage 1: local/data.sh did not write data/${dset}/wav.scp" >&2; exit 1; }
    done
}

# feats_up_to_date <src> <dst>: true when <dst> holds feats for exactly what <src> describes: the data files are
# identical copies and make_fbank.sh finished (feats.scp and utt2num_frames cover every utterance).
feats_up_to_date() {
    local src=$1 dst=$2 f
    [ -s "${dst}/feats.scp" ] && [ -s "${dst}/utt2num_frames" ] || return 1
    for f in wav.scp text utt2spk spk2utt segments; do
        if [ -f "${src}/${f}" ] || [ -f "${dst}/${f}" ]; then
            cmp -s "${src}/${f}" "${dst}/${f}" || return 1
        fi
    done
    cmp -s <(cut -d' ' -f1 "${dst}/feats.scp") <(cut -d' ' -f1 "${src}/wav.scp")
}

# make_fbank_sets <feats_dir> <set>...: fbank of data/<set> into a fresh copy <feats_dir>/<set> (feats.scp, ark files
# under its data/), skipping a set whose copy is up to date. Reads nj, train_cmd, fbank_conf, expdir (job logs go
# to <expdir>/make_fbank/<set>).
make_fbank_sets() {
    local feats_dir=$1 dset src dst f
    shift
    local fbank_opts=()
    [ -n "${fbank_conf}" ] && fbank_opts=(--fbank_conf "${fbank_conf}")
    for dset in "$@"; do
        src=data/${dset}
        dst=${feats_dir}/${dset}
        [ -f "${src}/wav.scp" ] || { echo "$0: stage 2: ${src}/wav.scp: no such file; run stage 1" >&2; exit 1; }
        if feats_up_to_date "${src}" "${dst}"; then
            log "  ${dst}: features up to date, skipping"
            continue
        fi
        # A fresh copy of the data dir (Kaldi's copy_data_dir.sh): old features must not survive a change.
        rm -rf "${dst}"
        mkdir -p "${dst}"
        for f in "${src}"/*; do
            [ -f "${f}" ] && cp "${f}" "${dst}/"
        done
        utils/make_fbank.sh --nj "${nj}" --cmd "${train_cmd}" "${fbank_opts[@]}" \
            "${dst}" "${expdir}/make_fbank/${dset}" "${dst}/data"
    done
}

# validate_sets <feats_dir> <set>...: utils/validate_data_dir.sh on data/<set> (--no-feats) and <feats_dir>/<set>.
validate_sets() {
    local feats_dir=$1 dset
    shift
    for dset in "$@"; do
        utils/validate_data_dir.sh --no-feats "data/${dset}"
        utils/validate_data_dir.sh "${feats_dir}/${dset}"
    done
}
