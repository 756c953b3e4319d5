#!/usr/bin/env bash
# What an RL model changed in the distribution GRPO trains, next to the greedy output the recipe scores: K transcripts
# sampled at --temperature from each model on one set, every draw scored like stage 7 (audiorl.bin.score), the draws
# pooled per utterance and each model compared with the first one (paired Wilcoxon + bootstrap interval, as stage 14).
#   local/sampled_wer.sh [--test_set test] [--num_samples 4] [--temperature 1.0] [--out_dir exp/sampled_wer_test_T1.0] \
#       sft:exp/asr_train_asr grpo:exp/grpo_d1_r123 [name:exp_dir[@checkpoint] ...]
# exp_dir alone means its final weights (the checkpoint stage 12 decodes); exp_dir@path picks another checkpoint.
# GRPO runs keep the SFT model's config, so every model samples through --sft_exp's config.yaml and CMVN (default: the
# first model's exp_dir, which should be the SFT model the others started from).
# Out: <out_dir>/<name>/draw<k>/{text,score_word/}, <out_dir>/RESULTS.md (greedy WER from decode_<set>_beam1 beside).
set -euo pipefail
export LC_ALL=C

test_set=test
num_samples=4
temperature=1.0
seed=0
sft_exp=
out_dir=
help_message="Usage: $0 [options] name:exp_dir[@checkpoint] ...
Options: --test_set ${test_set} --num_samples ${num_samples} --temperature ${temperature} --seed ${seed} --sft_exp DIR (default: the first model's exp_dir)
         --out_dir DIR (default exp/sampled_wer_<set>_T<temperature>)"
. utils/parse_options.sh
[ $# -ge 1 ] || { echo "${help_message}" >&2; exit 2; }
. ./path.sh
out_dir=${out_dir:-exp/sampled_wer_${test_set}_T${temperature}}
feats=dump/fbank/${test_set}
[ -s "${feats}/feats.scp" ] || { echo "$0: ${feats}/feats.scp: no such file; run stages 1-2" >&2; exit 1; }

models=()  # name exp_dir checkpoint has_greedy, one word each, for the summary
mkdir -p "${out_dir}"
for spec in "$@"; do
    name=${spec%%:*}; rest=${spec#*:}
    exp=${rest%%@*}; ckpt=; greedy=true
    if [ "${rest}" != "${exp}" ]; then ckpt=${rest#*@}; greedy=false; fi
    [ -d "${exp}" ] || { echo "$0: ${spec}: ${exp} is not a directory" >&2; exit 1; }
    sft_exp=${sft_exp:-${exp}}
    if [ -z "${ckpt}" ]; then
        ckpt=$(python -c "import sys; from audiorl.train.checkpoint import final_weights; print(final_weights(sys.argv[1]) or '')" "${exp}")
        [ -n "${ckpt}" ] || { echo "$0: ${exp}: no weights (not trained?)" >&2; exit 1; }
    fi
    d=${out_dir}/${name}
    if [ ! -s "${d}/samples.jsonl" ]; then
        echo "$0: ${name}: sampling ${num_samples} transcripts per utterance of ${feats} at T ${temperature} from ${ckpt}" >&2
        python -m audiorl.bin.asr_sample --exp_dir "${sft_exp}" --checkpoint "${ckpt}" --data_dir "${feats}" \
            --out_dir "${d}" --num_samples "${num_samples}" --temperature "${temperature}" --seed "${seed}"
    fi
    # samples.jsonl -> one Kaldi text per draw (an empty transcript stays an empty hypothesis: all deletions)
    python - "${d}" "${num_samples}" <<'EOF'
import json, os, sys
d, k = sys.argv[1], int(sys.argv[2])
rows = [json.loads(line) for line in open(os.path.join(d, "samples.jsonl"), encoding="utf-8")]
for i in range(k):
    os.makedirs(os.path.join(d, f"draw{i + 1}"), exist_ok=True)
    with open(os.path.join(d, f"draw{i + 1}", "text"), "w", encoding="utf-8") as f:
        for r in sorted(rows, key=lambda r: r["utt"]):
            f.write(f"{r['utt']} {r['hyps'][i]}".rstrip() + "\n")
EOF
    for k in $(seq 1 "${num_samples}"); do
        python -m audiorl.bin.score --ref "data/${test_set}/text" --hyp "${d}/draw${k}/text" --unit word \
            --out "${d}/draw${k}/score_word" > /dev/null
    done
    models+=("${name}" "${exp}" "${ckpt}" "${greedy}")
done

python - "${out_dir}" "${test_set}" "${num_samples}" "${temperature}" "${models[@]}" <<'EOF'
import os, sys
from audiorl.eval.sclite import pool_draws, read_result
from audiorl.eval.stats import compare, format_p
out, dset, k, temp, flat = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5:]
lines = [f"# Sampled vs greedy WER on {dset} ({k} draws at T {temp}, pooled per utterance)", "",
         "| model | checkpoint | greedy WER | sampled WER, draws pooled | per draw | sampled vs first (paired) |",
         "|---|---|---|---|---|---|"]
base = None
for n, e, c, g in zip(flat[0::4], flat[1::4], flat[2::4], flat[3::4]):
    has_greedy = g == "true"
    draws = [read_result(os.path.join(out, n, f"draw{i + 1}", "score_word")) for i in range(k)]
    pooled = pool_draws(draws)
    g = os.path.join(e, f"decode_{dset}_beam1", "score_word")
    greedy = f"{100 * read_result(g).totals.wer:.2f}" if has_greedy and os.path.isdir(g) else "-"
    per = " / ".join(f"{100 * x.totals.wer:.2f}" for x in draws)
    cmp = ""
    if base is None:
        base = pooled
    else:
        r = compare(base, pooled)
        cmp = f"{100 * r.delta:+.2f} [{100 * r.lo:+.2f}, {100 * r.hi:+.2f}], {format_p(r.p_value)}"
    lines.append(f"| {n} | `{c}` | {greedy} | {100 * pooled.totals.wer:.2f} | {per} | {cmp} |")
lines += ["", "greedy: the model's decode_<set>_beam1, i.e. its final weights (stage 12); '-' for another checkpoint "
          "(exp_dir@checkpoint) or where there is no such decoding."]
with open(os.path.join(out, "RESULTS.md"), "w", encoding="utf-8") as f:
    f.write("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
