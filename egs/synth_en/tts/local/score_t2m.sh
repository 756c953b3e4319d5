#!/usr/bin/env bash
# Score a candidate token-to-mel experiment beside the recipe's systems without touching their dirs: resynthesis from
# ground-truth tokens and TTS with the SFT LM (and any RL LM weights) through it, synthesised, judged and scored as
# tts.sh stages 11-12 do (same synthesis config, voices, batch seeds: the LM's tokens of draw k are the recipe's
# draw k, so each row differs from the recipe's only by token-to-mel), into <t2m_exp>/eval_<set>/, then a
# tts_results table paired against the recipe's rows: <t2m_exp>/eval_<set>/RESULTS.md. On a set stage 11 does not
# synthesise (--test_set dev, where synthesis settings are chosen) the table has the candidate's rows alone.
set -euo pipefail
export LC_ALL=C

test_set=test
lms="sft:exp/tts_lm_train_tts_lm"   # "name:exp ...": LM experiments to synthesise with (the SFT LM, RL runs exp/tts_rl_*)
lm_exp=exp/tts_lm_train_tts_lm      # the SFT LM experiment whose config (text tokens, sizes) every LM row uses
draws=3                 # synthesis draws per LM (tts.sh --synth_draws)
nj=2                    # synthesis jobs
batch_size=16           # utterances per synthesis batch: must equal tts.sh --synth_batch_size (each batch has its seed)
judge_mode=llm          # as tts.sh --judge_mode
score_tts_args=         # as tts.sh --score_tts_args
mos_utts=200            # as tts.sh --mos_utts: DNSMOS on the first N utterances of each system's draw 1; 0 = all
vocoder=griffin_lim     # as tts.sh --vocoder (griffin_lim or neural)
voc_exp=exp/vocoder_train_vocoder  # the neural vocoder's experiment (with --vocoder neural)
synth_config=conf/synth.yaml
synth_args=             # extra options for audiorl.bin.tts_synth, e.g. "--token2mel.t_start 1.0"
spk_embed=dump/spk_embed/train/spk2embed.scp
tokens=                 # ground-truth tokens of the set; default dump/tokens/<test_set>/tokens.scp
recipe_t2m=exp/token2mel_train_token2mel   # the recipe's token-to-mel, whose resynthesis row is the baseline
asr_exp=../asr/exp/asr_train_asr            # the judge
out_dir=                # default <t2m_exp>/eval_<test_set>; another dir keeps one set of --synth_args apart from another
help_message="Usage: $0 [options] <t2m_exp>
  e.g. $0 --lms \"sft:exp/tts_lm_train_tts_lm diffro:exp/tts_rl_diffro\" exp/token2mel_train_token2mel_cont3k"

. utils/parse_options.sh
[ $# -eq 1 ] || { echo "$help_message" >&2; exit 2; }
t2m=$1
. ./path.sh
. ./cmd.sh
python=${python:-python3}
tokens=${tokens:-dump/tokens/${test_set}/tokens.scp}
out=${out_dir:-${t2m}/eval_${test_set}}
for f in "${tokens}" "${spk_embed}" "data/${test_set}/text" "${synth_config}"; do
    [ -s "${f}" ] || { echo "$0: ${f}: missing or empty (run the recipe's stages 1-9 first)" >&2; exit 1; }
done
# The synthesis and scoring steps of tts.sh stages 11-12, from the same file
tts_dir=$(dirname "$(readlink -f tts.sh)")
. "${tts_dir}/../common/stages.sh"
. "${tts_dir}/synth_lib.sh"
set_vocoder "${vocoder}" "${voc_exp}"
judge=$(final_weights "${asr_exp}")
[ -n "${judge}" ] || { echo "$0: --asr_exp ${asr_exp}: no trained judge there" >&2; exit 1; }
t2m_w=$(final_weights "${t2m}")
[ -n "${t2m_w}" ] || { echo "$0: ${t2m} has no trained model" >&2; exit 1; }

synth() {  # mode dir "<model files>" [tts_synth options]: a system dir with wav.scp, judge/, score_tts/ (not DNSMOS)
    local mode=$1 dir=$2 files="${t2m_w} $3 ${synth_config} ${spk_embed}"
    shift 3
    # shellcheck disable=SC2086  # synth_args is a list of options
    synth_if_stale "${dir}" "data/${test_set}" "${nj}" "${files}" --config "${synth_config}" --mode "${mode}" \
        --t2m_exp "${t2m}" "$@" --spk_embed "${spk_embed}" --batch_size "${batch_size}" ${synth_args}
    score_system "${dir}" "data/${test_set}" "${judge}" --asr_exp "${asr_exp}"
    echo "${dir}: $(grep -o '"wer": [0-9.]*' "${dir}/judge/score_word/result.json" | head -1)"
}

synth resyn "${out}/resyn" "${tokens}" --tokens "${tokens}"
score_mos "${out}/resyn" "data/${test_set}" "${mos_utts}"   # DNSMOS: draw 1 of each system, as tts.sh stage 12
# tts_results: the resynthesis rows, then one table per LM whose first row is the recipe's synthesis of that LM. It is
# labelled SFT so that the table is read as an RL table (each row against the first, with its targets): there 'SFT'
# means 'through the recipe's token-to-mel', also for an RL LM.
# A baseline the recipe has not scored (e.g. --test_set dev, which stage 11 does not synthesise) is left out: the
# candidate's rows still get their intervals, only the paired comparison is missing.
scored() { [ -s "$1/judge/score_word/result.json" ] || { echo "$0: no recipe rows in $1 (not scored by tts.sh stage 12): table without that baseline" >&2; return 1; }; }
rows=()
scored "${recipe_t2m}/resyn_${test_set}" && rows+=(--system "${test_set}: resynthesis|recipe token-to-mel|${recipe_t2m}/resyn_${test_set}")
rows+=(--system "${test_set}: resynthesis|${t2m##*/}|${out}/resyn")
for lm in ${lms}; do
    name=${lm%%:*}; exp=${lm#*:}
    w=$(final_weights "${exp}")
    [ -n "${w}" ] || { echo "$0: --lms '${lm}': ${exp} has no model" >&2; exit 1; }
    base=${exp}/synth_${test_set}   # the recipe's synthesis of this LM (tts.sh stage 11), the paired baseline
    for k in $(seq 1 "${draws}"); do
        synth tts "$(draw_dir "${out}/${name}" "${k}")" "${w}" --lm_exp "${lm_exp}" --lm_checkpoint "${w}" --draw "${k}"
    done
    score_mos "${out}/${name}" "data/${test_set}" "${mos_utts}"
    scored "${base}" && rows+=(--system "${test_set}: ${name}|SFT|${base}")
    rows+=(--system "${test_set}: ${name}|${name} + ${t2m##*/}|${out}/${name}")
done
# Table 2 through this token-to-mel: the first --lms entry is the SFT row, the others are compared with it
first=${lms%% *}; first=${first%%:*}
for lm in ${lms}; do
    name=${lm%%:*}; label=${name}; [ "${name}" = "${first}" ] && label=SFT
    rows+=(--system "${test_set}: RL vs SFT through ${t2m##*/}|${label}|${out}/${name}")
done
${python} -m audiorl.bin.tts_results --out "${out}/RESULTS.md" --title "token-to-mel ${t2m} on ${test_set}" \
    --draws "${draws}" "${rows[@]}"
echo "$0: wrote ${out}/RESULTS.md"
