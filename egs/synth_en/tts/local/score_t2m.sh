#!/usr/bin/env bash
# Score a candidate token-to-mel experiment beside the recipe's systems without touching their dirs: resynthesis from
# ground-truth tokens and TTS with the SFT LM (and any RL LM weights) through it, synthesised, judged and scored as
# tts.sh stages 11-12 do (same synthesis config, voices, batch seeds: the LM's tokens of draw k are the recipe's
# draw k, so each row differs from the recipe's only by token-to-mel), into <t2m_exp>/eval_<set>/, then a
# tts_results table paired against the recipe's rows: <t2m_exp>/eval_<set>/RESULTS.md.
set -euo pipefail
export LC_ALL=C

test_set=test
lms="sft:exp/tts_lm_train_tts_lm"   # "name:exp ...": LM experiments to synthesise with (the SFT LM, RL runs exp/tts_rl_*)
lm_exp=exp/tts_lm_train_tts_lm      # the SFT LM experiment whose config (text tokens, sizes) every LM row uses
draws=3                 # synthesis draws per LM (tts.sh --synth_draws)
nj=2                    # synthesis jobs
batch_size=16           # utterances per synthesis batch: must equal tts.sh --synth_batch_size (each batch has its seed)
judge_mode=llm          # as tts.sh --judge_mode
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
python=${python:-python3}
tokens=${tokens:-dump/tokens/${test_set}/tokens.scp}
out=${out_dir:-${t2m}/eval_${test_set}}
for f in "${tokens}" "${spk_embed}" "data/${test_set}/text" "${synth_config}"; do
    [ -s "${f}" ] || { echo "$0: ${f}: missing or empty (run the recipe's stages 1-9 first)" >&2; exit 1; }
done
[ -n "$(${python} -m audiorl.bin.final_weights "${t2m}" 2>/dev/null)" ] || { echo "$0: ${t2m} has no trained model" >&2; exit 1; }

synth() {  # mode dir [tts_synth options]: a system dir with wav.scp, judge/ and score_tts/ (skipped when judged)
    local mode=$1 dir=$2; shift 2
    local sig="--t2m_exp ${t2m} --config ${synth_config} --mode ${mode} $* --spk_embed ${spk_embed}"
    sig+=" --batch_size ${batch_size} ${synth_args}"
    if [ -s "${dir}/judge/score_word/result.json" ] && [ "$(cat "${dir}/synth_opts" 2>/dev/null)" = "${sig}" ]; then
        echo "${dir}: scored with these options, skipping"; return 0
    fi
    rm -rf "${dir}"  # a draw k > 1 lives inside draw 1's dir and is redone with it
    # shellcheck disable=SC2086  # synth_args is a list of options
    utils/run.pl JOB=1:"${nj}" "${dir}/log/synth.JOB.log" \
        ${python} -m audiorl.bin.tts_synth --config "${synth_config}" --mode "${mode}" --t2m_exp "${t2m}" "$@" \
            --data_dir "data/${test_set}" --spk_embed "${spk_embed}" --out_dir "${dir}/split/JOB" --split "JOB/${nj}" \
            --batch_size "${batch_size}" ${synth_args}
    ${python} -m audiorl.bin.tts_merge "${dir}" --nj "${nj}" --data_dir "data/${test_set}"
    ${python} -m audiorl.bin.tts_judge --asr_exp "${asr_exp}" --mode "${judge_mode}" --wavs "${dir}/wav.scp" \
        --ref "data/${test_set}/text" --utt2spk "data/${test_set}/utt2spk" --out_dir "${dir}/judge" > "${dir}/log/judge.log" 2>&1
    ${python} -m audiorl.bin.score_tts --synth "${dir}/wav.scp" --ref "data/${test_set}" --out "${dir}/score_tts" \
        --no-mos > "${dir}/log/score_tts.log" 2>&1
    echo "${sig}" > "${dir}/synth_opts"  # written last: a dir without it is redone
    echo "${dir}: $(grep -o '"wer": [0-9.]*' "${dir}/judge/score_word/result.json" | head -1)"
}

synth resyn "${out}/resyn" --tokens "${tokens}"
# tts_results: the resynthesis rows, then one table per LM whose first row is the recipe's synthesis of that LM. It is
# labelled SFT because tts_results pools draws (and pairs them) only in tables that start with SFT: there 'SFT' means
# 'through the recipe's token-to-mel', also for an RL LM.
rows=(--system "${test_set}: resynthesis|recipe token-to-mel|${recipe_t2m}/resyn_${test_set}"
      --system "${test_set}: resynthesis|${t2m##*/}|${out}/resyn")
for lm in ${lms}; do
    name=${lm%%:*}; exp=${lm#*:}
    w=$(${python} -m audiorl.bin.final_weights "${exp}") || { echo "$0: --lms '${lm}': ${exp} has no model" >&2; exit 1; }
    base=${exp}/synth_${test_set}   # the recipe's synthesis of this LM (tts.sh stage 11), the paired baseline
    for k in $(seq 1 "${draws}"); do
        d=${out}/${name}; [ "${k}" -gt 1 ] && d=${d}/draw${k}
        synth tts "${d}" --lm_exp "${lm_exp}" --lm_checkpoint "${w}" --draw "${k}"
    done
    rows+=(--system "${test_set}: ${name}|SFT|${base}" --system "${test_set}: ${name}|${name} + ${t2m##*/}|${out}/${name}")
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
