#!/usr/bin/env bash
# Shared ASR stage script (the ESPnet egs2/TEMPLATE/asr1/asr.sh pattern). A corpus recipe symlinks it
# as egs/<corpus>/asr/asr.sh and calls it from a ~10-line run.sh that names the sets and configs; a new
# corpus only needs local/data.sh, db.sh and conf/ changes. Run from the recipe dir; all paths are
# relative to it. Every stage checks its outputs first, so rerunning a finished stage is cheap.
#
# Stages:
#   1  data preparation   local/data.sh ${local_data_opts}        -> data/<set> for every set
#   2  fbank features     data/<set> -> ${dumpdir}/fbank/<set>/feats.scp (+ utt2num_frames);
#                         global CMVN stats of the train set -> ${dumpdir}/fbank/<train_set>/cmvn.ark
#   3  validation         data/<set> (no feats) and ${dumpdir}/fbank/<set> (with feats)
#   4  tokenizer          sentencepiece on data/<train_set>/text -> data/token_list/<token_type><nbpe>/bpe.model
#                         (skipped with --init_llm DIR: the pretrained LLM's DIR/tokenizer.json is the text tokenizer)
#   5  SFT                LLM-based ASR training -> <expdir>/asr_<tag>/ (rerun = resume)
#   6  decoding           <valid_set> and <test_sets> in <inference_nj> jobs -> <asr_exp>/decode_<set>_<inference_tag>/text
#   7  scoring            WER/CER + keyword recall -> .../score_<unit>/result.{txt,json}
#   8  RESULTS.md         every scored decode dir under <expdir>, with 95% intervals, written to ./RESULTS.md
#   9  RL pool decoding   <rl_set> with the SFT model: greedy 1-best + <rl_sample_k> samples at T=1
#                         -> <asr_exp>/decode_<rl_set>_rl/{text,samples.jsonl}
#   10 RL data            equal-size subsets D0 random, D1 hard, D2 short, D3 keyword-heavy (PAPER.md s3)
#                         -> data/<rl_set>[_<rl_data_tag>]_D{0..3} (+ <dumpdir>/fbank/...), .../decode_<rl_set>_rl/rl_subsets[_<tag>].json
#   11 GRPO               one run per <rl_variants> entry name:data:config -> <expdir>/grpo_<name>/ (rerun = resume)
#   12 RL decoding        <valid_set> and <test_sets> with every GRPO model -> <expdir>/grpo_<name>/decode_<set>_<inference_tag>/text
#   13 RL scoring         -> .../score_<unit>/result.{txt,json}
#   14 RESULTS.md         stage 8's tables (SFT as the baseline) + the RL ablation tables (rewards on D1; data D0-D3; rewards
#                         on any other data with 2+ reward configs), keyword recall pooled over the test sets
set -euo pipefail
export LC_ALL=C

# The command line as given (quoted), recorded in exp/run_<date>.sh once the options are valid.
printf -v run_args '%q ' "$0" "$@"

# ---- General -----------------------------------------------------------------------------------
stage=1                # first stage to run
stop_stage=10000       # last stage to run
nj=2                   # parallel jobs for feature extraction (and anything else run through $train_cmd)
python=python3         # Python interpreter (path.sh puts tools/venv/bin first on PATH)
expdir=exp             # experiment dir: logs, models, decoding results

# ---- Data preparation (stage 1) -------------------------------------------------------------------
local_data_opts=       # options passed to local/data.sh, e.g. "--smoke true --nj 2" (quote them)

# ---- Features (stages 2-3) ----------------------------------------------------------------------
feats_type=fbank       # feature type; only fbank (log-mel filterbank) is implemented
fbank_conf=            # Kaldi-style fbank config (e.g. conf/fbank.conf); empty: 80 bins, 16 kHz
dumpdir=dump           # feature copies of the data dirs go to <dumpdir>/<feats_type>/<set>

# ---- Data sets ----------------------------------------------------------------------------------
train_set=             # training set: data/<train_set>
valid_set=             # validation set: data/<valid_set>
test_sets=             # evaluation sets, space separated in one quoted argument
rl_set=                # prompt pool for the RL stages (e.g. rl_pool); empty: none

# ---- Tokenizer (stage 4) -------------------------------------------------------------------------
token_type=bpe         # sentencepiece model type: bpe, unigram or char
nbpe=400               # vocabulary size (text pieces; the LLM adds 2 special ids)

# ---- SFT (stage 5) ------------------------------------------------------------------------------
asr_config=            # training config (YAML), e.g. conf/train_asr.yaml
asr_args=              # extra config overrides for audiorl.bin.asr_train, e.g. "--train.max_steps 100"
asr_tag=               # experiment name: exp/asr_<asr_tag>; default: the config file name without .yaml
init_llm=              # Hugging Face Qwen2 dir (config.json, *.safetensors, tokenizer.json) to start the LLM from (--model.init_llm); its tokenizer replaces stage 4's
ngpu=0                 # GPUs per node for training, SFT and GRPO (0 = CPU): the job runner's --gpu, one process per GPU (utils/launch_train.sh)
num_nodes=1            # nodes for training; > 1: torchrun on each (slurm.pl --num-nodes, or MASTER_ADDR/MASTER_PORT set on every node)
train_nproc=0          # training processes per node; 0 = max(1, ngpu); e.g. --ngpu 0 --train_nproc 2: two CPU (gloo) processes
train_threads=2        # torch CPU threads of the training job (the other stages run nj one-thread jobs)

# ---- Decoding and scoring (stages 6-8) ----------------------------------------------------------
inference_nj=2         # parallel decoding jobs
inference_mode=llm     # llm: the LLM decoder; ctc: best path of the encoder's CTC head (fast, encoder only)
beam_size=1            # 1 = greedy search (inference_mode llm)
inference_args=        # extra options for audiorl.bin.asr_decode, e.g. "--length_penalty 1.2"
inference_tag=         # decode dirs are decode_<set>_<tag>; default beam<beam_size> (ctc with --inference_mode ctc),
                       # e.g. --inference_tag beam1_nobias --inference_args "--biasing off" for a biasing model without lists
decode_valid=true      # also decode and score the valid set
score_unit=word        # word (WER) or char (CER)
results_title="synth_en ASR"  # heading of RESULTS.md

# ---- RL: GRPO from the SFT model (stages 9-14; PAPER.md s2-s3) -----------------------------------------
rl_sample_k=4          # stage 9: transcripts sampled per <rl_set> utterance (D1's disagreement rule); 0 = greedy only
rl_sample_temperature=1.0  # stage 9: temperature of those samples
rl_data_size=1000      # stage 10: utterances in each of D0-D3 (equal sizes; 0 = a third of the pool)
rl_data_tag=           # stages 10-11: D0-D3 live in data/<rl_set>_<tag>_D*; empty: data/<rl_set>_D*. Give one when D0-D3 are
                       # built from another SFT model (--asr_tag), so the first model's subsets (and runs on them) stay
rl_select_args=        # stage 10: extra options for audiorl.bin.select_rl_data, e.g. "--select.short_max_seconds 3"
rl_variants=           # stage 11: GRPO runs "name:data:config ...", data one of D0-D3, e.g. "d1_r1:D1:conf/grpo_r1.yaml"
rl_args=               # stage 11: extra overrides for audiorl.bin.asr_grpo (every variant), e.g. "--train.max_steps 50"
rl_valid_set=          # stage 11: GRPO validation set (greedy WER = valid loss); empty: <valid_set>
rl_best_config=        # stage 14: reward config whose D0-D3 variants form the data table; empty: the last D1 variant's

help_message="Usage: $0 --train_set <name> --valid_set <name> --test_sets \"<name> ...\" [options]
Runs stages \${stage}..\${stop_stage} of the ASR recipe (see the header of this file for the list).
e.g.: $0 --train_set train --valid_set dev --test_sets \"test test_unseen_spk\" --rl_set rl_pool --stop_stage 3"

. utils/parse_options.sh
# log, the set-up and the data/feature stage bodies shared with tts.sh
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../common/stages.sh"

if [ $# -ne 0 ]; then
    echo "$0: unexpected arguments: $*" >&2
    echo "$help_message" >&2
    exit 2
fi

. ./path.sh
. ./cmd.sh

SECONDS=0
check_common_options
[ "${feats_type}" = fbank ] || { echo "$0: --feats_type ${feats_type}: only 'fbank' is implemented" >&2; exit 2; }
set_train_launch

# Every set that gets features, in order; the RL pool needs them too (its audio is the RL prompt).
# shellcheck disable=SC2206  # test_sets is a space-separated list by design
all_sets=("${train_set}" "${valid_set}" ${test_sets} ${rl_set})
feats_dir=${dumpdir}/${feats_type}

record_run

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
    log "Stage 1: data preparation: local/data.sh ${local_data_opts} -> data/{$(IFS=,; echo "${all_sets[*]}")}"
    prepare_data "${all_sets[@]}"
fi

if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
    log "Stage 2: ${feats_type} features: data/<set> -> ${feats_dir}/<set>/feats.scp; CMVN -> ${feats_dir}/${train_set}/cmvn.ark"
    make_fbank_sets "${feats_dir}" "${all_sets[@]}"
    cmvn=${feats_dir}/${train_set}/cmvn.ark
    if [ -s "${cmvn}" ] && [ "${cmvn}" -nt "${feats_dir}/${train_set}/feats.scp" ]; then
        log "  ${cmvn}: up to date, skipping"
    else
        # Global CMVN: statistics of the training set only, applied to every set by later stages.
        utils/compute_cmvn_stats.sh "${feats_dir}/${train_set}"
    fi
fi

if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ]; then
    log "Stage 3: validation of data/<set> (--no-feats) and ${feats_dir}/<set> for: ${all_sets[*]}"
    validate_sets "${feats_dir}" "${all_sets[@]}"
    [ -s "${feats_dir}/${train_set}/cmvn.ark" ] || { echo "$0: stage 3: ${feats_dir}/${train_set}/cmvn.ark missing; run stage 2" >&2; exit 1; }
fi

bpedir=data/token_list/${token_type}${nbpe}
bpemodel=${bpedir}/bpe.model
asr_exp=${expdir}/asr_$(tag_of "${asr_tag}" "${asr_config}")
if [ -z "${inference_tag}" ]; then
    inference_tag=beam${beam_size}
    [ "${inference_mode}" = ctc ] && inference_tag=ctc
fi
decode_sets=(${test_sets})
[ "${decode_valid}" = true ] && decode_sets=("${valid_set}" "${decode_sets[@]}")

# ---- RL set-up (stages 9-14)
rl_decode_dir=${asr_exp}/decode_${rl_set}_rl
rl_suffix=${rl_data_tag:+_${rl_data_tag}}   # "" or _<tag>
rl_data=${rl_set}${rl_suffix}                 # D0-D3 are ${rl_data}_D0 .. _D3
rl_valid_set=${rl_valid_set:-${valid_set}}
# Parse and check every variant before training starts: a typo must not surface after hours of training.
rl_names=(); rl_datas=(); rl_confs=()
for _v in ${rl_variants}; do
    IFS=: read -r _n _d _c <<< "${_v}"
    case "${_d}" in D0|D1|D2|D3) ;; *) echo "$0: --rl_variants '${_v}': data must be D0, D1, D2 or D3 (name:data:config)" >&2; exit 2;; esac
    [ -n "${_n}" ] && [ -f "${_c}" ] || { echo "$0: --rl_variants '${_v}': expected name:data:config with an existing config file" >&2; exit 2; }
    rl_names+=("${_n}"); rl_datas+=("${_d}"); rl_confs+=("${_c}")
done

# What the RL curve PNGs show (train: rollout rewards and stats; valid: dev greedy WER and error types).
rl_curve_metrics=reward,reward_accuracy,reward_hallucination,reward_keywords,frac_reward_zero_std,kl,entropy,completion_len,wer,ins,del,sub

# True when <dir>/<file> has one line per utterance of <data>/feats.scp and is newer than <model>.
rl_up_to_date() { same_count "$1/$2" "$3/feats.scp" && newer_than "$1/$2" "$4"; }

sft_opts=()
[ -n "${init_llm}" ] && sft_opts=(--model.init_llm "${init_llm}")

if [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 4 ]; then
    log "Stage 4: ${token_type} tokenizer (${nbpe}) on data/${train_set}/text -> ${bpemodel}"
    if [ -n "${init_llm}" ]; then
        log "  skipped: --init_llm ${init_llm}: its tokenizer.json is the text tokenizer of the SFT stage"
    elif [ -s "${bpemodel}" ] && [ "${bpemodel}" -nt "data/${train_set}/text" ]; then
        log "  ${bpemodel}: up to date, skipping"
    else
        mkdir -p "${bpedir}"
        ${python} -m audiorl.bin.train_tokenizer --text "data/${train_set}/text" --model_type "${token_type}" \
            --vocab_size "${nbpe}" --out "${bpedir}/bpe"
    fi
fi

if [ "${stage}" -le 5 ] && [ "${stop_stage}" -ge 5 ]; then
    [ -n "${asr_config}" ] || { echo "$0: stage 5 needs --asr_config" >&2; exit 2; }
    [ -f "${asr_config}" ] || { echo "$0: --asr_config ${asr_config}: no such file" >&2; exit 2; }
    log "Stage 5: SFT: ${asr_config} on ${feats_dir}/${train_set} -> ${asr_exp} (log: ${asr_exp}/train.log)"
    # Paths come from this script, so one config serves every corpus; a rerun resumes from the last checkpoint.
    # With --init_llm the Task takes DIR/tokenizer.json instead of data.token_model (recorded in config.yaml).
    # shellcheck disable=SC2086  # asr_args is a list of overrides
    OMP_NUM_THREADS=${train_threads} ${train_cmd} "${train_job_opts[@]}" \
        "${asr_exp}/log/asr_train.log" "${train_launch[@]}" audiorl.bin.asr_train --config "${asr_config}" --exp_dir "${asr_exp}" \
            --data.train_dir "${feats_dir}/${train_set}" --data.valid_dir "${feats_dir}/${valid_set}" \
            --data.token_model "${bpemodel}" --data.cmvn "${feats_dir}/${train_set}/cmvn.ark" "${sft_opts[@]}" ${asr_args}
    tail -n 3 "${asr_exp}/train.log" >&2 || true
fi

# True when <decode-dir>/text has a line per utterance of <data-dir> and is newer than the model it came from.
decode_up_to_date() {
    same_count "$1/text" "$2/feats.scp" && newer_than "$1/text" "${asr_exp}/config.yaml" \
        "${asr_exp}"/valid.loss.ave*_best.safetensors "${asr_exp}/checkpoints/latest"
}

# decode_into <dir> <feats-dir> <asr_decode options>...: <dir>/text (+ rtf.json) from ${inference_nj} jobs of
# audiorl.bin.asr_decode with ${asr_exp}'s model config and CMVN (logs: <dir>/log/decode.JOB.log).
decode_into() {
    local dir=$1 data=$2
    shift 2
    rm -rf "${dir}/split"
    ${decode_cmd} JOB=1:"${inference_nj}" "${dir}/log/decode.JOB.log" \
        ${python} -m audiorl.bin.asr_decode --exp_dir "${asr_exp}" --data_dir "${data}" \
            --out_dir "${dir}/split/JOB" --split "JOB/${inference_nj}" "$@"
    ${python} -m audiorl.bin.merge_decode "${dir}" --nj "${inference_nj}" --data_dir "${data}"
}
# score_decode_dir <set> <dir>: WER/CER (${score_unit}) and keyword recall of <dir>/text against data/<set>
# (and, when <dir> was decoded with biasing lists, the list words written but not spoken)
# -> <dir>/score_<unit>/result.{txt,json}.
score_decode_dir() {
    local opts=()
    [ -f "data/$1/keywords" ] && opts+=(--keywords "data/$1/keywords")
    [ -f "$2/bias_lists" ] && opts+=(--bias_lists "$2/bias_lists")  # decoded with biasing lists
    ${python} -m audiorl.bin.score --ref "data/$1/text" --hyp "$2/text" --unit "${score_unit}" \
        --utt2spk "data/$1/utt2spk" "${opts[@]}" --out "$2/score_${score_unit}"
}

if [ "${stage}" -le 6 ] && [ "${stop_stage}" -ge 6 ]; then
    log "Stage 6: decoding (${inference_tag}) of ${decode_sets[*]} with ${asr_exp} in ${inference_nj} jobs"
    for dset in "${decode_sets[@]}"; do
        _dir=${asr_exp}/decode_${dset}_${inference_tag}
        if decode_up_to_date "${_dir}" "${feats_dir}/${dset}"; then
            log "  ${_dir}/text: complete, skipping"
            continue
        fi
        # shellcheck disable=SC2086  # inference_args is a list of options
        decode_into "${_dir}" "${feats_dir}/${dset}" --mode "${inference_mode}" --beam_size "${beam_size}" ${inference_args}
    done
fi

if [ "${stage}" -le 7 ] && [ "${stop_stage}" -ge 7 ]; then
    log "Stage 7: scoring (${score_unit}) of ${decode_sets[*]}"
    for dset in "${decode_sets[@]}"; do
        _dir=${asr_exp}/decode_${dset}_${inference_tag}
        [ -s "${_dir}/text" ] || { echo "$0: stage 7: ${_dir}/text missing; run stage 6" >&2; exit 1; }
        score_decode_dir "${dset}" "${_dir}"
    done
fi

if [ "${stage}" -le 8 ] && [ "${stop_stage}" -ge 8 ]; then
    log "Stage 8: RESULTS.md from ${expdir}/*/decode_*/score_*"
    ${python} -m audiorl.bin.make_results --exp "${expdir}" --out RESULTS.md --title "${results_title}" --extra kw_r,rtf
fi

# ---- Stages 9-14: RL (GRPO) on ${rl_set} -----------------------------------------------------------
if [ "${stage}" -le 9 ] && [ "${stop_stage}" -ge 9 ]; then
    [ -n "${rl_set}" ] || { echo "$0: stage 9 needs --rl_set (the RL prompt pool)" >&2; exit 2; }
    _model=$(final_weights "${asr_exp}")
    [ -n "${_model}" ] || { echo "$0: stage 9: ${asr_exp} has no model; run stage 5" >&2; exit 1; }
    log "Stage 9: decoding ${feats_dir}/${rl_set} with ${_model}: greedy + ${rl_sample_k} samples at T=${rl_sample_temperature} -> ${rl_decode_dir}"
    if rl_up_to_date "${rl_decode_dir}" text "${feats_dir}/${rl_set}" "${_model}"; then
        log "  ${rl_decode_dir}/text: complete, skipping"
    else
        decode_into "${rl_decode_dir}" "${feats_dir}/${rl_set}" --beam_size 1
    fi
    if [ "${rl_sample_k}" -gt 0 ]; then
        if rl_up_to_date "${rl_decode_dir}" samples.jsonl "${feats_dir}/${rl_set}" "${_model}"; then
            log "  ${rl_decode_dir}/samples.jsonl: complete, skipping"
        else
            rm -rf "${rl_decode_dir}/sample_split"
            ${decode_cmd} JOB=1:"${inference_nj}" "${rl_decode_dir}/log/sample.JOB.log" \
                ${python} -m audiorl.bin.asr_sample --exp_dir "${asr_exp}" --data_dir "${feats_dir}/${rl_set}" \
                    --out_dir "${rl_decode_dir}/sample_split/JOB" --split "JOB/${inference_nj}" \
                    --num_samples "${rl_sample_k}" --temperature "${rl_sample_temperature}"
            cat "${rl_decode_dir}"/sample_split/*/samples.jsonl | sort > "${rl_decode_dir}/samples.jsonl.tmp"
            mv "${rl_decode_dir}/samples.jsonl.tmp" "${rl_decode_dir}/samples.jsonl"
        fi
    fi
fi

if [ "${stage}" -le 10 ] && [ "${stop_stage}" -ge 10 ]; then
    [ -n "${rl_set}" ] || { echo "$0: stage 10 needs --rl_set" >&2; exit 2; }
    [ -s "${rl_decode_dir}/text" ] || { echo "$0: stage 10: ${rl_decode_dir}/text missing; run stage 9" >&2; exit 1; }
    log "Stage 10: RL data D0-D3 (${rl_data_size} utterances each) from ${rl_decode_dir} -> data/${rl_data}_D*, ${feats_dir}/${rl_data}_D*"
    _stats=${rl_decode_dir}/rl_subsets${rl_suffix}.json
    if [ -s "${_stats}" ] && [ "${_stats}" -nt "${rl_decode_dir}/text" ] && [ -s "${feats_dir}/${rl_data}_D3/feats.scp" ] \
        && { [ ! -f "${rl_decode_dir}/samples.jsonl" ] || [ "${_stats}" -nt "${rl_decode_dir}/samples.jsonl" ]; }; then
        log "  ${_stats}: up to date, skipping"
    else
        # shellcheck disable=SC2086  # rl_select_args is a list of options
        ${python} -m audiorl.bin.select_rl_data --data_dir "data/${rl_set}" --decode_dir "${rl_decode_dir}" \
            --feats_dir "${feats_dir}/${rl_set}" --suffix "${rl_suffix}_" --stats "${_stats}" \
            --select.size "${rl_data_size}" ${rl_select_args}
        for _d in D0 D1 D2 D3; do
            utils/validate_data_dir.sh "${feats_dir}/${rl_data}_${_d}"
        done
    fi
fi

if [ "${stage}" -le 11 ] && [ "${stop_stage}" -ge 11 ]; then
    [ ${#rl_names[@]} -gt 0 ] || { echo "$0: stage 11 needs --rl_variants \"name:data:config ...\"" >&2; exit 2; }
    for i in "${!rl_names[@]}"; do
        _exp=${expdir}/grpo_${rl_names[i]}
        log "Stage 11: GRPO ${rl_names[i]}: ${rl_confs[i]} on ${feats_dir}/${rl_data}_${rl_datas[i]} from ${asr_exp} -> ${_exp} (log: ${_exp}/train.log)"
        # shellcheck disable=SC2086  # rl_args is a list of overrides
        OMP_NUM_THREADS=${train_threads} ${train_cmd} "${train_job_opts[@]}" "${_exp}/log/asr_grpo.log" \
            "${train_launch[@]}" audiorl.bin.asr_grpo --config "${rl_confs[i]}" --exp_dir "${_exp}" --data.sft_exp "${asr_exp}" \
                --data.rl_dir "${feats_dir}/${rl_data}_${rl_datas[i]}" --data.valid_dir "${feats_dir}/${rl_valid_set}" ${rl_args}
        tail -n 3 "${_exp}/train.log" >&2 || true
        # The RL curves (the trainer's curves.png shows only the first few stats).
        ${python} -m audiorl.bin.plot_metrics "${_exp}/metrics.jsonl" --out "${_exp}/rl_curves.png" --smooth 0.6 \
            --metrics "${rl_curve_metrics}"
    done
fi

if [ "${stage}" -le 12 ] && [ "${stop_stage}" -ge 12 ]; then
    log "Stage 12: decoding (${inference_tag}) of ${decode_sets[*]} with ${#rl_names[@]} GRPO models"
    for _n in "${rl_names[@]}"; do
        _exp=${expdir}/grpo_${_n}
        _model=$(final_weights "${_exp}")
        [ -n "${_model}" ] || { echo "$0: stage 12: ${_exp} has no model; run stage 11" >&2; exit 1; }
        for dset in "${decode_sets[@]}"; do
            _dir=${_exp}/decode_${dset}_${inference_tag}
            if rl_up_to_date "${_dir}" text "${feats_dir}/${dset}" "${_model}"; then
                log "  ${_dir}/text: complete, skipping"
                continue
            fi
            # The SFT experiment gives the model config and CMVN; the GRPO run only changed the weights.
            # shellcheck disable=SC2086  # inference_args is a list of options
            decode_into "${_dir}" "${feats_dir}/${dset}" --checkpoint "${_model}" --beam_size "${beam_size}" ${inference_args}
        done
    done
fi

if [ "${stage}" -le 13 ] && [ "${stop_stage}" -ge 13 ]; then
    log "Stage 13: scoring (${score_unit}) of ${decode_sets[*]} for ${#rl_names[@]} GRPO models"
    for _n in "${rl_names[@]}"; do
        for dset in "${decode_sets[@]}"; do
            _dir=${expdir}/grpo_${_n}/decode_${dset}_${inference_tag}
            [ -s "${_dir}/text" ] || { echo "$0: stage 13: ${_dir}/text missing; run stage 12" >&2; exit 1; }
            score_decode_dir "${dset}" "${_dir}"
        done
    done
fi

if [ "${stage}" -le 14 ] && [ "${stop_stage}" -ge 14 ]; then
    log "Stage 14: RESULTS.md: every experiment against ${asr_exp##*/}, then the RL ablation tables"
    ${python} -m audiorl.bin.make_results --exp "${expdir}" --out RESULTS.md --title "${results_title}" --extra kw_r \
        --baseline "${asr_exp##*/}"
    _sft="SFT=${asr_exp##*/}"
    _t_rew="${_sft}"; _t_data="${_sft}"
    _best=${rl_best_config}
    for i in "${!rl_names[@]}"; do
        if [ "${rl_datas[i]}" = D1 ]; then
            _t_rew+=" ${rl_names[i]}=grpo_${rl_names[i]}"
            [ -n "${rl_best_config}" ] || _best=${rl_confs[i]}
        fi
    done
    for i in "${!rl_names[@]}"; do
        if [ "${rl_confs[i]}" = "${_best}" ]; then _t_data+=" ${rl_datas[i]}=grpo_${rl_names[i]}"; fi
    done
    _tables=(--table "Rewards (RL data D1)|${_t_rew}" --table "RL data (rewards: ${_best:-none})|${_t_data}")
    # a rewards table for any other RL data with two or more reward configs (e.g. R3 on and off on keyword-heavy D3)
    for _d in D0 D2 D3; do
        _t="${_sft}"; _k=0
        for i in "${!rl_names[@]}"; do
            if [ "${rl_datas[i]}" = "${_d}" ]; then _t+=" ${rl_names[i]}=grpo_${rl_names[i]}"; _k=$((_k + 1)); fi
        done
        [ "${_k}" -lt 2 ] || _tables+=(--table "Rewards (RL data ${_d})|${_t}")
    done
    ${python} -m audiorl.bin.make_rl_results --exp "${expdir}" --out RESULTS.md --sets "${test_sets}" "${_tables[@]}"
    if [ ${#rl_names[@]} -gt 0 ]; then
        _runs=(); _labels=
        for _n in "${rl_names[@]}"; do _runs+=("${expdir}/grpo_${_n}/metrics.jsonl"); _labels+="${_labels:+,}${_n}"; done
        ${python} -m audiorl.bin.plot_metrics "${_runs[@]}" --labels "${_labels}" --smooth 0.6 \
            --metrics "${rl_curve_metrics}" --out "${expdir}/grpo_curves.png"
    fi
fi

log "Successfully finished stages ${stage}-${stop_stage} in ${SECONDS} s"
