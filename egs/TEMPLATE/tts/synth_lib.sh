# Synthesis and scoring of one system dir, shared by tts.sh (stages 11-12) and recipe scripts that score a candidate
# model the same way (egs/synth_en/tts/local/score_t2m.sh): one copy of the steps, so a candidate's rows differ from the
# recipe's only by what the caller changes. Sourced after common/stages.sh (uses log, newer_than, final_weights); the
# functions read the caller's python and decode_cmd, and the comments name any other option they read.

# draw_dir <system dir> <k>: where draw k of a sampled system lives: draw 1 is the system dir itself, draw k > 1 its
# draw<k>/ (inside draw 1's dir, so redoing draw 1 redoes them all; audiorl.bin.tts_results reads the same layout).
draw_dir() { if [ "$2" -eq 1 ]; then echo "$1"; else echo "$1/draw$2"; fi; }

# set_vocoder <griffin_lim|neural> <voc_exp>: sets voc_opts (audiorl.bin.tts_synth options), voc_models (the files a
# synthesis depends on) and voc_id (kept in each system dir, so a rerun with another vocoder redoes it).
set_vocoder() {
    voc_opts=(); voc_models=(); voc_id=griffin_lim
    case "$1" in
        griffin_lim) ;;
        neural)
            local w
            w=$(final_weights "$2")
            [ -n "${w}" ] || { echo "$0: --vocoder neural but $2 has no model; run tts.sh stage 8 with --voc_config" >&2; exit 1; }
            voc_opts=(--vocoder.kind neural --vocoder.exp "$2" --vocoder.checkpoint "${w}")
            voc_models=("${w}"); voc_id="neural ${w}";;
        *) echo "$0: --vocoder $1: unknown (griffin_lim or neural)" >&2; exit 2;;
    esac
}

# synth_if_stale <dir> <data_dir> <nj> "<file> ..." <tts_synth option>...: synthesise <data_dir> into <dir> with
# audiorl.bin.tts_synth <options> in <nj> jobs of ${decode_cmd} (parts in <dir>/split/JOB, then merged), unless <dir>
# already holds that synthesis: the same text, utt2spk and wav.scp (compared by content: local/data.sh rewrites data/
# on every run, so mtimes say nothing), the same options and vocoder (voc_id; set_vocoder first), and newer than every
# <file> (the models and configs it read). A draw k > 1 lives inside draw 1's dir and is redone with it.
synth_if_stale() {
    local dir=$1 data=$2 nj=$3 files
    read -ra files <<< "$4"
    shift 4
    local sig="$*"
    if newer_than "${dir}/wav.scp" "${files[@]}" "${voc_models[@]}" \
        && cmp -s "${data}/text" "${dir}/text" && cmp -s "${data}/utt2spk" "${dir}/utt2spk" \
        && cmp -s "${data}/wav.scp" "${dir}/real_wav.scp" \
        && [ "$(cat "${dir}/vocoder" 2>/dev/null)" = "${voc_id}" ] \
        && [ "$(cat "${dir}/synth_opts" 2>/dev/null)" = "${sig}" ]; then
        log "  ${dir}/wav.scp: complete, skipping"
        return 0
    fi
    rm -rf "${dir}"
    ${decode_cmd} JOB=1:"${nj}" "${dir}/log/synth.JOB.log" \
        ${python} -m audiorl.bin.tts_synth "${voc_opts[@]}" "$@" \
            --data_dir "${data}" --out_dir "${dir}/split/JOB" --split "JOB/${nj}"
    ${python} -m audiorl.bin.tts_merge "${dir}" --nj "${nj}" --data_dir "${data}"
    cp "${data}/text" "${data}/utt2spk" "${dir}/"   # what was synthesised
    cp "${data}/wav.scp" "${dir}/real_wav.scp"
    echo "${voc_id}" > "${dir}/vocoder"
    echo "${sig}" > "${dir}/synth_opts"   # written last: a dir without it (an interrupted run) is redone
}

# score_system <dir> <data_dir> <judge weights> <tts_judge option>...: the ASR judge's WER on <dir>'s waves
# (<dir>/judge) and SIM / MCD / duration ratio against <data_dir>'s recordings (<dir>/score_tts), each skipped when
# newer than its inputs. Reads judge_mode and score_tts_args.
score_system() {
    local dir=$1 data=$2 judge=$3
    shift 3
    [ -s "${dir}/wav.scp" ] || { echo "$0: ${dir}/wav.scp missing; synthesise it first (tts.sh stage 11)" >&2; exit 1; }
    if newer_than "${dir}/judge/score_word/result.json" "${dir}/wav.scp" "${judge}"; then
        log "  ${dir}/judge: up to date, skipping"
    else
        ${python} -m audiorl.bin.tts_judge "$@" --mode "${judge_mode}" --wavs "${dir}/wav.scp" \
            --ref "${data}/text" --utt2spk "${data}/utt2spk" --out_dir "${dir}/judge"
    fi
    if newer_than "${dir}/score_tts/tts_metrics.json" "${dir}/wav.scp"; then
        log "  ${dir}/score_tts: up to date, skipping"
    else
        # shellcheck disable=SC2086  # score_tts_args is a list of options
        ${python} -m audiorl.bin.score_tts --synth "${dir}/wav.scp" --ref "${data}" --out "${dir}/score_tts" \
            --no-mos ${score_tts_args}
    fi
}

# score_mos <dir> <data_dir> <n_utts>: DNSMOS (OVRL, SIG, BAK, P808) of <dir>'s waves on the first <n_utts>
# utterances (0 = all; ~0.7 s each on one core) into <dir>/score_mos, skipped when newer than <dir>/wav.scp. Draw 1
# only: tts_results reports a sampled system's DNSMOS from it.
score_mos() {
    local dir=$1 data=$2 n=$3 opts=()
    if newer_than "${dir}/score_mos/tts_metrics.json" "${dir}/wav.scp"; then
        log "  ${dir}/score_mos: up to date, skipping"
        return 0
    fi
    [ "${n}" -gt 0 ] && opts=(--max-utts "${n}")
    ${python} -m audiorl.bin.score_tts --synth "${dir}/wav.scp" --ref "${data}" --out "${dir}/score_mos" \
        --no-sim --no-mcd "${opts[@]}"
}
