#!/usr/bin/env bash
# Shared TTS stage script (the ESPnet egs2/TEMPLATE pattern, CosyVoice's pipeline, small). A corpus recipe symlinks
# it as egs/<corpus>/tts/tts.sh and calls it from a ~10-line run.sh. Run from the recipe dir; all paths are relative
# to it. Every stage checks its outputs first, so rerunning a finished stage is cheap; training stages resume.
#
# Stages:
#   1  data preparation    local/data.sh ${local_data_opts}                      -> data/<set>
#   2  fbank + validation  data/<set> -> ${dumpdir}/fbank/<set>/feats.scp (input of the speech tokenizer)
#   3  text tokenizer      sentencepiece on data/<train_set>/text               -> data/token_list/<token_type><nbpe>/bpe.model
#                          (+ the reward model's, with --rm_config)             -> data/token_list/<rm_token_type><rm_nbpe>/
#   4  speech tokenizer    ASR encoder + FSQ/VQ trained with CTC                 -> <expdir>/tokenizer_<tag>/
#   5  token dump          every set, <nj> jobs                                  -> ${dumpdir}/tokens/<set>/tokens.scp
#                          (skipped with --token_dir DIR --codebook_size N: precomputed DIR/<set>/tokens.scp)
#   6  speaker embeddings  resemblyzer, <nj> jobs                                -> ${dumpdir}/spk_embed/<set>/{spk_embed,spk2embed}.scp
#   7  text-to-token LM    SFT                                                   -> <expdir>/tts_lm_<tag>/
#   8  token-to-mel        conditional flow matching                             -> <expdir>/token2mel_<tag>/
#                          (+ with --voc_config, a neural vocoder on the recordings -> <expdir>/vocoder_<tag>/)
#   9  reward model        token-to-text (speech tokens -> CTC text [+ heads]) on ground-truth tokens, its WER on
#                          <test_sets>' ground-truth tokens                      -> <expdir>/token2text_<tag>/
#  10  RL of the LM        one run per <rl_variants> entry name:config (GRPO, DiffRO or GRPO + DiffRO, audiorl/tasks/
#                          tts_rl.py) on the <rl_set> texts                       -> <expdir>/tts_rl_<name>/ (rerun = resume)
#  11  synthesis of <test_sets>, <inference_nj> jobs, every system through --vocoder (griffin_lim or neural):
#                          real audio (a copy of data/<set>/wav.scp) -> <expdir>/real_<set>/;
#                          the real audio through mel + vocoder only (the pipeline's ceiling) -> <expdir>/vocoded_<set>/;
#                          resynthesis from the ground-truth tokens -> <t2m_exp>/resyn_<set>/; TTS -> <lm_exp>/synth_<set>/;
#                          each RL variant -> <expdir>/tts_rl_<name>/synth_<set>/; with --synth_draws K > 1 the sampled
#                          systems of Table 2 (TTS, RL variants) again with seeds +1 .. +K-1 -> <system>/draw<k>/
#  12  scoring             judge WER (--asr_exp) -> <system>/judge/score_word/result.{txt,json};
#                          SIM, MCD, duration ratio -> <system>/score_tts/; DNSMOS on <mos_utts> -> <system>/score_mos/;
#                          each extra draw: judge WER, SIM, MCD, duration ratio -> <system>/draw<k>/
#  13  RESULTS.md          real / vocoded / resynthesis / TTS per test set, then SFT vs the RL variants (the paper's Table 2)
#                          + mel spectrograms and RL curves -> ./RESULTS.md, <expdir>/mels_<set>.png, <expdir>/rl_curves.png
set -euo pipefail
export LC_ALL=C

# The command line as given (quoted), recorded in exp/run_<date>.sh once the options are valid.
printf -v run_args '%q ' "$0" "$@"

# ---- General -----------------------------------------------------------------------------------
stage=1                # first stage to run
stop_stage=10000       # last stage to run
nj=2                   # parallel jobs for features, token dump and speaker embeddings
inference_nj=2         # parallel synthesis jobs (stage 11)
python=python3         # Python interpreter (path.sh puts tools/venv/bin first on PATH)
expdir=exp             # experiment dir: logs, models, synthesised audio, scores
dumpdir=dump           # features, speech tokens and speaker embeddings go to <dumpdir>/{fbank,tokens,spk_embed}/<set>
ngpu=0                 # GPUs per node for every training stage (0 = CPU): the job runner's --gpu, one process per GPU (utils/launch_train.sh)
num_nodes=1            # nodes for training; > 1: torchrun on each (slurm.pl --num-nodes, or MASTER_ADDR/MASTER_PORT set on every node)
train_nproc=0          # training processes per node; 0 = max(1, ngpu); e.g. --ngpu 0 --train_nproc 2: two CPU (gloo) processes
train_threads=2        # torch CPU threads of a training job (the other stages run nj one-thread jobs)

# ---- Data (stages 1-2) ----------------------------------------------------------------------------
local_data_opts=       # options passed to local/data.sh, e.g. "--smoke true --nj 2" (quote them)
train_set=             # training set: data/<train_set>
valid_set=             # validation set: data/<valid_set>
test_sets=             # sets to synthesise and score, space separated in one quoted argument
rl_set=                # RL texts (stage 10): a set local/data.sh writes, disjoint from train_set (e.g. rl_pool); its
                       # tokens and speaker embeddings are made in stages 2, 5 and 6 too. '' = no RL stages.
fbank_conf=            # Kaldi-style fbank config of the speech tokenizer's input (e.g. conf/fbank.conf)

# ---- Text tokenizer (stage 3) ---------------------------------------------------------------------
token_type=bpe         # sentencepiece model type of the TTS input text: bpe, unigram or char
nbpe=400               # text vocabulary size

# ---- Speech tokenizer (stages 4-5) ----------------------------------------------------------------
tokenizer_config=      # speech-tokenizer training config (YAML), e.g. conf/train_tokenizer.yaml
tokenizer_args=        # extra overrides for audiorl.bin.tts_tokenizer_train, e.g. "--train.max_steps 100"
tokenizer_tag=         # experiment name: exp/tokenizer_<tag>; default: the config file name without .yaml
tokenizer_init_asr=    # ASR SFT exp dir (e.g. ../asr/exp/asr_train_asr) to start the tokenizer from (--init.asr_exp): its encoder,
                       # CMVN and, with the config's data.token_model '', its text units and CTC head. Needs the same fbank config.
token_dir=             # precomputed speech tokens <token_dir>/<set>/tokens.scp (another tokenizer): skips stages 4-5
codebook_size=0        # the codebook size of --token_dir's tokens (ids in [0, N)); required with --token_dir

# ---- Speaker embeddings (stage 6) -----------------------------------------------------------------
spk_embed_device=cpu   # device of the resemblyzer encoder

# ---- Text-to-token LM, token-to-mel and vocoder (stages 7-8) ------------------------------------
lm_config=             # text-to-token LM SFT config (YAML), e.g. conf/train_tts_lm.yaml
lm_args=               # extra overrides for audiorl.bin.tts_lm_train
lm_tag=                # experiment name: exp/tts_lm_<tag>; default: the config file name without .yaml
init_llm=              # Hugging Face Qwen2 dir (config.json, *.safetensors, tokenizer.json) to start the LM from (--model.init_llm); its tokenizer replaces stage 3's for the LM
t2m_config=            # token-to-mel config (YAML), e.g. conf/train_token2mel.yaml
t2m_args=              # extra overrides for audiorl.bin.tts_token2mel_train
t2m_tag=               # experiment name: exp/token2mel_<tag>; default: the config file name without .yaml
voc_config=            # neural vocoder config (YAML), e.g. conf/train_vocoder.yaml: stage 8 also trains it; '' = none (Griffin-Lim needs no training)
voc_args=              # extra overrides for audiorl.bin.tts_vocoder_train, e.g. "--train.max_steps 100"
voc_tag=               # experiment name: exp/vocoder_<tag>; default: the config file name without .yaml

# ---- Reward model and RL (stages 9-10) -----------------------------------------------------------
rm_config=             # token-to-text reward model config (YAML), e.g. conf/train_token2text.yaml
rm_args=               # extra overrides for audiorl.bin.token2text_train
rm_tag=                # experiment name: exp/token2text_<tag>; default: the config file name without .yaml
rm_token_type=bpe      # the reward model's own text units (its CTC output; DiffRO re-encodes the texts with them):
rm_nbpe=100            # a small vocabulary makes CTC align far sooner than the LM's (measured: bpe400 no alignment in 450 steps)
rl_variants=           # RL runs "name:config ...", e.g. "grpo_r1:conf/rl/grpo_r1.yaml diffro:conf/rl/diffro.yaml"
rl_args=               # extra overrides for every RL run (audiorl.bin.tts_rl_train), e.g. "--train.max_steps 50"
rl_parallel=1          # RL runs trained at the same time (each with train_threads threads)
rl_curve_metrics=reward,reward_asr_judge,reward_token2text,reward_duration,reward_diversity,frac_reward_zero_std,kl,diffro_text_logprob,diffro_frac_selected,text_logprob,completion_len,judge_wer,rm_wer,dur_ratio

# ---- Synthesis (stage 11) -------------------------------------------------------------------------
synth_config=          # synthesis config (YAML) of audiorl.bin.tts_synth: LM sampling, token-to-mel ODE, Griffin-Lim
                       # (its token2mel section is also how stage 10's rewards and validation run token-to-mel)
vocoder=griffin_lim    # mel -> wave of every system in stage 11: griffin_lim (no training) or neural (stage 8's exp/vocoder_<tag>, needs --voc_config or --voc_tag)
synth_args=            # extra options for audiorl.bin.tts_synth (TTS and resynthesis), e.g. "--sampling.temperature 0.8"
synth_spk_set=         # set whose per-speaker mean embeddings condition synthesis (seen voices); default: <train_set>
synth_batch_size=16    # utterances per synthesis batch
synth_draws=1          # synthesis draws (independent samples) of TTS and every RL variant, scored and pooled per
                       # utterance in Table 2: one draw moves judge WER by up to ~2 points here, as much as RL rows differ

# ---- Scoring and RESULTS.md (stages 12-13) -------------------------------------------------------
asr_exp=../asr/exp/asr_train_asr  # the judge: the ASR recipe's SFT experiment dir
asr_dir=               # the ASR recipe dir its config's relative paths refer to; default: two levels above asr_exp
judge_mode=llm         # llm: the judge's LLM decoder (greedy); ctc: its encoder's CTC head
mos_utts=200           # DNSMOS on the first N utterances of each system (~0.7 s each on one core); 0 = all
score_tts_args=        # extra options for audiorl.bin.score_tts, e.g. "--no-sim"
results_title="synth_en TTS"  # heading of RESULTS.md
png_utts=3             # utterances in the mel-spectrogram figure

help_message="Usage: $0 --train_set <name> --valid_set <name> --test_sets \"<name> ...\" [options]
Runs stages \${stage}..\${stop_stage} of the TTS recipe (see the header of this file for the list).
e.g.: $0 --train_set train --valid_set dev --test_sets test --stage 7 --lm_args \"--train.max_steps 100\"
      $0 ... --stage 8 --stop_stage 11 --voc_config conf/train_vocoder.yaml --vocoder neural   # a neural vocoder"

. utils/parse_options.sh
# log, the set-up and the data/feature stage bodies shared with asr.sh
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../common/stages.sh"
# the synthesis and scoring of one system dir (stages 11-12), shared with recipe scripts such as local/score_t2m.sh
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/synth_lib.sh"

if [ $# -ne 0 ]; then
    echo "$0: unexpected arguments: $*" >&2
    echo "$help_message" >&2
    exit 2
fi

. ./path.sh
. ./cmd.sh

SECONDS=0
check_common_options
if [ -n "${token_dir}" ] && [ "${codebook_size}" -le 0 ]; then
    echo "$0: --token_dir ${token_dir} needs --codebook_size N (ids of those tokens lie in [0, N))" >&2; exit 2
fi
[[ "${synth_draws}" =~ ^[1-9][0-9]*$ ]] || { echo "$0: --synth_draws ${synth_draws}: expected a positive integer" >&2; exit 2; }
case "${vocoder}" in
    griffin_lim) ;;
    neural) [ -n "${voc_config}${voc_tag}" ] || { echo "$0: --vocoder neural needs --voc_config (or --voc_tag): the vocoder is exp/vocoder_<tag>" >&2; exit 2; } ;;
    *) echo "$0: --vocoder ${vocoder}: expected griffin_lim or neural" >&2; exit 2 ;;
esac
set_train_launch
lm_init_opts=()
[ -n "${init_llm}" ] && lm_init_opts=(--model.init_llm "${init_llm}")

# shellcheck disable=SC2206  # test_sets is a space-separated list by design
test_list=(${test_sets})
all_sets=("${train_set}" "${valid_set}" "${test_list[@]}")
[ -n "${rl_set}" ] && all_sets+=("${rl_set}")
feats_dir=${dumpdir}/fbank
spk_dir=${dumpdir}/spk_embed
synth_spk_set=${synth_spk_set:-${train_set}}

tokenizer_exp=${expdir}/tokenizer_$(tag_of "${tokenizer_tag}" "${tokenizer_config}")
lm_exp=${expdir}/tts_lm_$(tag_of "${lm_tag}" "${lm_config}")
t2m_exp=${expdir}/token2mel_$(tag_of "${t2m_tag}" "${t2m_config}")
voc_exp=${expdir}/vocoder_$(tag_of "${voc_tag}" "${voc_config}")
rm_exp=${expdir}/token2text_$(tag_of "${rm_tag}" "${rm_config}")
rl_names=(); rl_confs=()
for _v in ${rl_variants}; do
    _n=${_v%%:*}; _c=${_v#*:}
    [ -n "${_n}" ] && [ "${_n}" != "${_v}" ] && [ -f "${_c}" ] || { echo "$0: --rl_variants '${_v}': expected name:config with an existing config file" >&2; exit 2; }
    rl_names+=("${_n}"); rl_confs+=("${_c}")
done
bpedir=data/token_list/${token_type}${nbpe}
bpemodel=${bpedir}/bpe.model
rm_bpedir=data/token_list/${rm_token_type}${rm_nbpe}
# Where the speech tokens are, and how the training stages learn their codebook size.
if [ -n "${token_dir}" ]; then
    tokens_root=${token_dir}
    codebook_opts=(--data.codebook_size "${codebook_size}")
else
    tokens_root=${dumpdir}/tokens
    codebook_opts=(--data.tokenizer_exp "${tokenizer_exp}")
fi

record_run

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
    log "Stage 1: data preparation: local/data.sh ${local_data_opts} -> data/{$(IFS=,; echo "${all_sets[*]}")}"
    prepare_data "${all_sets[@]}"
fi

if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
    log "Stage 2: fbank of the speech tokenizer's input: data/<set> -> ${feats_dir}/<set>/feats.scp, then validation"
    make_fbank_sets "${feats_dir}" "${all_sets[@]}"
    validate_sets "${feats_dir}" "${all_sets[@]}"
fi

if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ]; then
    # The LM's text units, and (with --rm_config) the reward model's.
    _toks=("${token_type}|${nbpe}|${bpedir}")
    [ -n "${rm_config}" ] && [ "${rm_bpedir}" != "${bpedir}" ] && _toks+=("${rm_token_type}|${rm_nbpe}|${rm_bpedir}")
    for _t in "${_toks[@]}"; do
        IFS='|' read -r _type _n _dir <<< "${_t}"
        log "Stage 3: ${_type} text tokenizer (${_n}) on data/${train_set}/text -> ${_dir}/bpe.model"
        # Up to date = trained on this very text (a copy is kept beside it: local/data.sh rewrites data/ on every run).
        if [ -s "${_dir}/bpe.model" ] && cmp -s "data/${train_set}/text" "${_dir}/train_text"; then
            log "  ${_dir}/bpe.model: up to date, skipping"
        else
            mkdir -p "${_dir}"
            ${python} -m audiorl.bin.train_tokenizer --text "data/${train_set}/text" --model_type "${_type}" \
                --vocab_size "${_n}" --out "${_dir}/bpe"
            cp "data/${train_set}/text" "${_dir}/train_text"
        fi
    done
fi

if [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 4 ]; then
    if [ -n "${token_dir}" ]; then
        log "Stage 4: skipped: precomputed speech tokens in ${token_dir} (codebook ${codebook_size})"
    else
        [ -f "${tokenizer_config}" ] || { echo "$0: stage 4 needs --tokenizer_config (got '${tokenizer_config}')" >&2; exit 2; }
        _init=(--data.token_model "${bpemodel}")
        if [ -n "${tokenizer_init_asr}" ]; then
            [ -f "${tokenizer_init_asr}/config.yaml" ] || { echo "$0: --tokenizer_init_asr ${tokenizer_init_asr}: no config.yaml; train the ASR recipe's SFT first" >&2; exit 1; }
            # Same input features, or the copied encoder sees another signal.
            _asr_fbank=$(dirname "$(dirname "${tokenizer_init_asr}")")/conf/fbank.conf
            if [ -f "${_asr_fbank}" ] && ! cmp -s <(grep -v '^#' "${_asr_fbank}") <(grep -v '^#' "${fbank_conf}"); then
                echo "$0: --tokenizer_init_asr: ${_asr_fbank} differs from --fbank_conf ${fbank_conf}" >&2; exit 1
            fi
            _init=(--init.asr_exp "${tokenizer_init_asr}")   # CTC targets: the config's data.token_model ('' = the ASR's)
        fi
        log "Stage 4: speech tokenizer: ${tokenizer_config} on ${feats_dir}/${train_set}${tokenizer_init_asr:+ from ${tokenizer_init_asr}} -> ${tokenizer_exp} (log: ${tokenizer_exp}/train.log)"
        # shellcheck disable=SC2086  # tokenizer_args is a list of overrides
        OMP_NUM_THREADS=${train_threads} ${train_cmd} "${train_job_opts[@]}" \
            "${tokenizer_exp}/log/tokenizer_train.log" "${train_launch[@]}" audiorl.bin.tts_tokenizer_train \
                --config "${tokenizer_config}" --exp_dir "${tokenizer_exp}" --data.train_dir "${feats_dir}/${train_set}" \
                --data.valid_dir "${feats_dir}/${valid_set}" "${_init[@]}" ${tokenizer_args}
        tail -n 3 "${tokenizer_exp}/train.log" >&2 || true
    fi
fi

if [ "${stage}" -le 5 ] && [ "${stop_stage}" -ge 5 ]; then
    if [ -n "${token_dir}" ]; then
        log "Stage 5: skipped: precomputed speech tokens in ${token_dir}"
        for dset in "${all_sets[@]}"; do
            [ -s "${token_dir}/${dset}/tokens.scp" ] || { echo "$0: --token_dir: ${token_dir}/${dset}/tokens.scp missing" >&2; exit 1; }
        done
    else
        _model=$(final_weights "${tokenizer_exp}")
        [ -n "${_model}" ] || { echo "$0: stage 5: ${tokenizer_exp} has no model; run stage 4" >&2; exit 1; }
        log "Stage 5: speech tokens of ${all_sets[*]} with ${_model} -> ${tokens_root}/<set>/tokens.scp"
        for dset in "${all_sets[@]}"; do
            _out=${tokens_root}/${dset}
            if newer_than "${_out}/tokens.scp" "${_model}" "${feats_dir}/${dset}/feats.scp" \
                && same_count "${_out}/tokens.scp" "${feats_dir}/${dset}/feats.scp"; then
                log "  ${_out}/tokens.scp: complete, skipping"
                continue
            fi
            rm -rf "${_out}"
            mkdir -p "${_out}"
            ${decode_cmd} JOB=1:"${nj}" "${_out}/log/dump.JOB.log" \
                ${python} -m audiorl.bin.tts_dump_tokens --exp_dir "${tokenizer_exp}" --data_dir "${feats_dir}/${dset}" \
                    --out_prefix "${_out}/tokens.JOB" --split "JOB/${nj}"
            cat "${_out}"/tokens.[0-9]*.utt2num_tokens | sort > "${_out}/utt2num_tokens"
            cat "${_out}"/tokens.[0-9]*.scp | sort > "${_out}/tokens.scp.tmp"
            mv "${_out}/tokens.scp.tmp" "${_out}/tokens.scp"
            log "  ${_out}/tokens.scp: $(wc -l < "${_out}/tokens.scp") utterances, $(awk '{s += $2} END {print s}' "${_out}/utt2num_tokens") tokens"
        done
    fi
fi

if [ "${stage}" -le 6 ] && [ "${stop_stage}" -ge 6 ]; then
    log "Stage 6: speaker embeddings of ${all_sets[*]} -> ${spk_dir}/<set>/{spk_embed,spk2embed}.scp"
    for dset in "${all_sets[@]}"; do
        _out=${spk_dir}/${dset}
        if [ -s "${_out}/spk2embed.scp" ] && cmp -s "data/${dset}/wav.scp" "${_out}/wav.scp" \
            && cmp -s "data/${dset}/utt2spk" "${_out}/utt2spk"; then
            log "  ${_out}: complete, skipping"
            continue
        fi
        rm -rf "${_out}"
        ${decode_cmd} JOB=1:"${nj}" "${_out}/log/spk_embed.JOB.log" \
            ${python} -m audiorl.bin.tts_spk_embed --data_dir "data/${dset}" --out_dir "${_out}" --split "JOB/${nj}" \
                --device "${spk_embed_device}"
        ${python} -m audiorl.bin.tts_spk_embed --data_dir "data/${dset}" --out_dir "${_out}" --merge "${nj}"
        cp "data/${dset}/wav.scp" "data/${dset}/utt2spk" "${_out}/"   # what these embeddings are of
    done
fi

# The data options shared by stages 7 and 8.
tts_data_opts=(--data.train_dir "data/${train_set}" --data.train_tokens "${tokens_root}/${train_set}/tokens.scp"
    --data.train_spk_embed "${spk_dir}/${train_set}/spk_embed.scp" --data.valid_dir "data/${valid_set}"
    --data.valid_tokens "${tokens_root}/${valid_set}/tokens.scp" --data.valid_spk_embed "${spk_dir}/${valid_set}/spk_embed.scp"
    "${codebook_opts[@]}")

if [ "${stage}" -le 7 ] && [ "${stop_stage}" -ge 7 ]; then
    [ -f "${lm_config}" ] || { echo "$0: stage 7 needs --lm_config (got '${lm_config}')" >&2; exit 2; }
    log "Stage 7: text-to-token LM SFT: ${lm_config} on data/${train_set} + ${tokens_root}/${train_set} -> ${lm_exp} (log: ${lm_exp}/train.log)"
    # shellcheck disable=SC2086  # lm_args is a list of overrides
    OMP_NUM_THREADS=${train_threads} ${train_cmd} "${train_job_opts[@]}" \
        "${lm_exp}/log/tts_lm_train.log" "${train_launch[@]}" audiorl.bin.tts_lm_train --config "${lm_config}" \
            --exp_dir "${lm_exp}" "${tts_data_opts[@]}" --data.token_model "${bpemodel}" "${lm_init_opts[@]}" ${lm_args}
    tail -n 3 "${lm_exp}/train.log" >&2 || true
fi

if [ "${stage}" -le 8 ] && [ "${stop_stage}" -ge 8 ]; then
    # --t2m_config '' with --voc_config trains the vocoder alone (it reads only the recordings).
    if [ -n "${t2m_config}" ] || [ -z "${voc_config}" ]; then
        [ -f "${t2m_config}" ] || { echo "$0: stage 8 needs --t2m_config (got '${t2m_config}')" >&2; exit 2; }
        log "Stage 8: token-to-mel: ${t2m_config} on data/${train_set} + ${tokens_root}/${train_set} -> ${t2m_exp} (log: ${t2m_exp}/train.log)"
        # shellcheck disable=SC2086  # t2m_args is a list of overrides
        OMP_NUM_THREADS=${train_threads} ${train_cmd} "${train_job_opts[@]}" \
            "${t2m_exp}/log/token2mel_train.log" "${train_launch[@]}" audiorl.bin.tts_token2mel_train --config "${t2m_config}" \
                --exp_dir "${t2m_exp}" "${tts_data_opts[@]}" ${t2m_args}
        tail -n 3 "${t2m_exp}/train.log" >&2 || true
    else
        log "Stage 8: token-to-mel skipped (--t2m_config '')"
    fi
    if [ -n "${voc_config}" ]; then
        [ -f "${voc_config}" ] || { echo "$0: stage 8: --voc_config ${voc_config}: no such file" >&2; exit 2; }
        log "Stage 8: neural vocoder: ${voc_config} on the recordings of data/${train_set} -> ${voc_exp} (log: ${voc_exp}/train.log)"
        # shellcheck disable=SC2086  # voc_args is a list of overrides
        OMP_NUM_THREADS=${train_threads} ${train_cmd} "${train_job_opts[@]}" \
            "${voc_exp}/log/vocoder_train.log" "${train_launch[@]}" audiorl.bin.tts_vocoder_train --config "${voc_config}" \
                --exp_dir "${voc_exp}" --data.train_dir "data/${train_set}" --data.valid_dir "data/${valid_set}" ${voc_args}
        tail -n 3 "${voc_exp}/train.log" >&2 || true
    fi
fi

if [ "${stage}" -le 9 ] && [ "${stop_stage}" -ge 9 ]; then
    [ -f "${rm_config}" ] || { echo "$0: stage 9 needs --rm_config (got '${rm_config}')" >&2; exit 2; }
    [ -s "${rm_bpedir}/bpe.model" ] || { echo "$0: stage 9: ${rm_bpedir}/bpe.model missing; run stage 3 with --rm_config" >&2; exit 1; }
    log "Stage 9: token-to-text reward model: ${rm_config} on ${tokens_root}/${train_set} -> ${rm_exp} (log: ${rm_exp}/train.log)"
    # shellcheck disable=SC2086  # rm_args is a list of overrides
    OMP_NUM_THREADS=${train_threads} ${train_cmd} "${train_job_opts[@]}" \
        "${rm_exp}/log/token2text_train.log" "${train_launch[@]}" audiorl.bin.token2text_train --config "${rm_config}" \
            --exp_dir "${rm_exp}" --data.train_dir "data/${train_set}" --data.train_tokens "${tokens_root}/${train_set}/tokens.scp" \
            --data.valid_dir "data/${valid_set}" --data.valid_tokens "${tokens_root}/${valid_set}/tokens.scp" \
            --data.token_model "${rm_bpedir}/bpe.model" "${codebook_opts[@]}" ${rm_args}
    tail -n 3 "${rm_exp}/train.log" >&2 || true
    _rm=$(final_weights "${rm_exp}")
    [ -n "${_rm}" ] || { echo "$0: stage 9: ${rm_exp} has no model; see ${rm_exp}/train.log" >&2; exit 1; }
    for dset in "${test_list[@]}"; do
        if newer_than "${rm_exp}/decode_${dset}/result.json" "${_rm}" "${tokens_root}/${dset}/tokens.scp" "data/${dset}/text"; then
            log "  ${rm_exp}/decode_${dset}: up to date, skipping"
            continue
        fi
        log "  reward model WER on the ground-truth tokens of ${dset} -> ${rm_exp}/decode_${dset}/result.txt"
        ${python} -m audiorl.bin.token2text_decode --exp_dir "${rm_exp}" --checkpoint "${_rm}" \
            --tokens "${tokens_root}/${dset}/tokens.scp" --ref "data/${dset}/text" --utt2spk "data/${dset}/utt2spk" \
            --out_dir "${rm_exp}/decode_${dset}"
    done
fi

if [ "${stage}" -le 10 ] && [ "${stop_stage}" -ge 10 ]; then
    [ ${#rl_names[@]} -gt 0 ] || { echo "$0: stage 10 needs --rl_variants \"name:config ...\"" >&2; exit 2; }
    [ -n "${rl_set}" ] || { echo "$0: stage 10 needs --rl_set (the RL texts, e.g. rl_pool)" >&2; exit 2; }
    _model_opts=(--models.asr_exp "${asr_exp}")
    [ -n "${asr_dir}" ] && _model_opts+=(--models.asr_dir "${asr_dir}")
    # the rewards run token-to-mel as stage 11 will (one place for those settings: the synthesis config)
    [ -n "${synth_config}" ] && _model_opts+=(--models.synth_config "${synth_config}")
    _running=0; _failed=0
    for i in "${!rl_names[@]}"; do
        _exp=${expdir}/tts_rl_${rl_names[i]}
        log "Stage 10: RL ${rl_names[i]}: ${rl_confs[i]} on data/${rl_set} from ${lm_exp} -> ${_exp} (log: ${_exp}/train.log)"
        # shellcheck disable=SC2086  # rl_args is a list of overrides
        OMP_NUM_THREADS=${train_threads} ${train_cmd} "${train_job_opts[@]}" \
            "${_exp}/log/tts_rl_train.log" "${train_launch[@]}" audiorl.bin.tts_rl_train --config "${rl_confs[i]}" \
                --exp_dir "${_exp}" --data.sft_exp "${lm_exp}" --data.rl_dir "data/${rl_set}" \
                --data.rl_tokens "${tokens_root}/${rl_set}/tokens.scp" --data.rl_spk_embed "${spk_dir}/${rl_set}/spk_embed.scp" \
                --data.valid_dir "data/${valid_set}" --data.valid_tokens "${tokens_root}/${valid_set}/tokens.scp" \
                --data.valid_spk_embed "${spk_dir}/${valid_set}/spk_embed.scp" --models.reward_model_exp "${rm_exp}" \
                --models.t2m_exp "${t2m_exp}" "${_model_opts[@]}" --models.judge_mode "${judge_mode}" ${rl_args} &
        _running=$((_running + 1))
        # a slot frees as soon as any run ends (GRPO / combined runs take ~3x a DiffRO run)
        if [ "${_running}" -ge "${rl_parallel}" ]; then
            wait -n || _failed=$((_failed + 1))
            _running=$((_running - 1))
        fi
    done
    while [ "${_running}" -gt 0 ]; do
        wait -n || _failed=$((_failed + 1))
        _running=$((_running - 1))
    done
    [ "${_failed}" -eq 0 ] || { echo "$0: stage 10: ${_failed} RL run(s) failed; see ${expdir}/tts_rl_*/log/tts_rl_train.log" >&2; exit 1; }
    for _n in "${rl_names[@]}"; do
        [ -n "$(final_weights "${expdir}/tts_rl_${_n}")" ] || { echo "$0: stage 10: ${expdir}/tts_rl_${_n} has no model; see its train.log" >&2; exit 1; }
    done
fi

# Synthesis system dirs of a test set, in RESULTS.md row order: label|dir (the RL variants last).
systems_of() {
    echo "real|${expdir}/real_$1" "vocoded|${expdir}/vocoded_$1" "resynthesis|${t2m_exp}/resyn_$1" "TTS|${lm_exp}/synth_$1"
    for _n in "${rl_names[@]}"; do echo "${_n}|${expdir}/tts_rl_${_n}/synth_$1"; done
}

if [ "${stage}" -le 11 ] && [ "${stop_stage}" -ge 11 ]; then
    _t2m=$(final_weights "${t2m_exp}")
    _lm=$(final_weights "${lm_exp}")
    [ -n "${_t2m}" ] || { echo "$0: stage 11: ${t2m_exp} has no model; run stage 8" >&2; exit 1; }
    [ -n "${_lm}" ] || { echo "$0: stage 11: ${lm_exp} has no model; run stage 7" >&2; exit 1; }
    _spk=${spk_dir}/${synth_spk_set}/spk2embed.scp
    _synth_conf=()
    [ -n "${synth_config}" ] && _synth_conf=(--config "${synth_config}")
    [ -s "${_spk}" ] || { echo "$0: stage 11: ${_spk} missing; run stage 6 for ${synth_spk_set}" >&2; exit 1; }
    set_vocoder "${vocoder}" "${voc_exp}"  # voc_opts, voc_models, voc_id (synth_lib.sh)
    for dset in "${test_list[@]}"; do
        log "Stage 11: synthesis of data/${dset} (${inference_nj} jobs; voices: ${_spk}; vocoder: ${voc_id}): real, resynthesis (${_t2m}), TTS (${_lm}), ${#rl_names[@]} RL variants"
        mkdir -p "${expdir}/real_${dset}"
        # Copied only when it changed: its mtime tells stage 12 whether the scores are stale.
        cmp -s "data/${dset}/wav.scp" "${expdir}/real_${dset}/wav.scp" || cp "data/${dset}/wav.scp" "${expdir}/real_${dset}/wav.scp"
        # mode|dir|weights|draw; a draw k > 1 of a sampled system lives inside its draw-1 dir (redone with it)
        _jobs=("vocode|${expdir}/vocoded_${dset}||1" "resyn|${t2m_exp}/resyn_${dset}||1")
        for _k in $(seq 1 "${synth_draws}"); do
            _jobs+=("tts|$(draw_dir "${lm_exp}/synth_${dset}" "${_k}")|${_lm}|${_k}")
        done
        for _n in "${rl_names[@]}"; do
            _w=$(final_weights "${expdir}/tts_rl_${_n}")
            [ -n "${_w}" ] || { echo "$0: stage 11: ${expdir}/tts_rl_${_n} has no model; run stage 10" >&2; exit 1; }
            for _k in $(seq 1 "${synth_draws}"); do
                _jobs+=("tts|$(draw_dir "${expdir}/tts_rl_${_n}/synth_${dset}" "${_k}")|${_w}|${_k}")
            done
        done
        for _job in "${_jobs[@]}"; do
            IFS='|' read -r mode _dir _w _k <<< "${_job}"
            _files="${_t2m} ${synth_config} ${_spk}"  # what the waves depend on besides options and data (by mtime)
            if [ "${mode}" = vocode ]; then  # the recordings through the mel analysis and the vocoder alone
                _opts=()
            elif [ "${mode}" = resyn ]; then  # re-dumped tokens (stage 5) redo it
                _opts=(--tokens "${tokens_root}/${dset}/tokens.scp"); _files+=" ${tokens_root}/${dset}/tokens.scp"
            else  # the SFT LM's config with the SFT or an RL run's weights
                _opts=(--lm_exp "${lm_exp}" --lm_checkpoint "${_w}" --draw "${_k}"); _files+=" ${_w}"
            fi
            # shellcheck disable=SC2086  # synth_args is a list of options
            synth_if_stale "${_dir}" "data/${dset}" "${inference_nj}" "${_files}" \
                "${_synth_conf[@]}" --mode "${mode}" --t2m_exp "${t2m_exp}" "${_opts[@]}" --spk_embed "${_spk}" \
                --batch_size "${synth_batch_size}" ${synth_args}
        done
    done
fi

if [ "${stage}" -le 12 ] && [ "${stop_stage}" -ge 12 ]; then
    [ -f "${asr_exp}/config.yaml" ] || { echo "$0: stage 12: the judge ${asr_exp} is not a trained ASR experiment; train it (../asr: ./run.sh --stop_stage 5) or pass --asr_exp" >&2; exit 1; }
    _judge=$(final_weights "${asr_exp}")
    _judge_opts=(--asr_exp "${asr_exp}")
    [ -n "${asr_dir}" ] && _judge_opts+=(--asr_dir "${asr_dir}")
    for dset in "${test_list[@]}"; do
        for _sys in $(systems_of "${dset}"); do
            _label=${_sys%%|*}; _dir=${_sys#*|}
            _draws=1  # the sampled systems of Table 2 have synth_draws draws
            case "${_label}" in real|vocoded|resynthesis) ;; *) _draws=${synth_draws};; esac
            for _k in $(seq 1 "${_draws}"); do
                _d=$(draw_dir "${_dir}" "${_k}")
                [ -s "${_d}/wav.scp" ] || { echo "$0: stage 12: ${_d}/wav.scp missing; run stage 11" >&2; exit 1; }
                log "Stage 12: scoring ${_label} of ${dset} (${_d}): judge ${_judge}, SIM/MCD/duration"
                score_system "${_d}" "data/${dset}" "${_judge}" "${_judge_opts[@]}"
            done
            log "Stage 12: DNSMOS of ${_label} of ${dset} (${_dir}, ${mos_utts:-all} utts)"
            score_mos "${_dir}" "data/${dset}" "${mos_utts}"
        done
    done
fi

if [ "${stage}" -le 13 ] && [ "${stop_stage}" -ge 13 ]; then
    _rows=()
    for dset in "${test_list[@]}"; do
        for _sys in $(systems_of "${dset}"); do
            case "${_sys%%|*}" in real|vocoded|resynthesis|TTS) _rows+=(--system "${dset}|${_sys}");; esac
        done
    done
    if [ ${#rl_names[@]} -gt 0 ]; then  # the paper's Table 2: SFT first, the paired baseline of every RL row
        for dset in "${test_list[@]}"; do
            _rows+=(--system "${dset}: RL vs SFT|SFT|${lm_exp}/synth_${dset}")
            for _n in "${rl_names[@]}"; do _rows+=(--system "${dset}: RL vs SFT|${_n}|${expdir}/tts_rl_${_n}/synth_${dset}"); done
        done
    fi
    _png=${expdir}/mels_${test_list[0]}.png
    log "Stage 13: RESULTS.md (real, resynthesis, TTS${rl_variants:+, RL variants} on ${test_list[*]}) and ${_png}"
    _rm=()
    for dset in "${test_list[@]}"; do
        if [ -s "${rm_exp}/decode_${dset}/result.json" ]; then _rm+=(--reward_model "${dset}|${rm_exp}/decode_${dset}"); fi
    done
    ${python} -m audiorl.bin.tts_results --out RESULTS.md --title "${results_title}" "${_rows[@]}" "${_rm[@]}" --draws "${synth_draws}" \
        --png "${_png}" --png_set "${test_list[0]}" --png_utts "${png_utts}"
    if [ ${#rl_names[@]} -gt 0 ]; then
        _runs=(); _labels=
        for _n in "${rl_names[@]}"; do _runs+=("${expdir}/tts_rl_${_n}/metrics.jsonl"); _labels+="${_labels:+,}${_n}"; done
        ${python} -m audiorl.bin.plot_metrics "${_runs[@]}" --labels "${_labels}" --smooth 0.6 \
            --metrics "${rl_curve_metrics}" --out "${expdir}/rl_curves.png"
    fi
fi

log "Successfully finished stages ${stage}-${stop_stage} in ${SECONDS} s"
