"""egs/synth_en/asr RL stages 9-14 at smoke size (after the smoke SFT): RL pool decoding (greedy + sampled),
D0-D3, two GRPO variants, their decoding and scoring, and RESULTS.md with the RL ablation tables."""

import json
import sys
from pathlib import Path

import pytest

from audiorl.data.kaldi import read_table
from audiorl.data.synth.voices import missing_tools

sys.path.insert(0, str(Path(__file__).parent))
from recipe_util import run  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(bool(missing_tools()), reason=f"synthesis tools missing: {missing_tools()}"),
]
VARIANTS = "d1_smoke:D1:conf/grpo_smoke.yaml d0_smoke:D0:conf/grpo_smoke.yaml"
COMMON = ["--asr_config", "conf/train_asr_smoke.yaml", "--inference_nj", "2", "--rl_data_size", "6",
          "--rl_sample_k", "2", "--rl_variants", VARIANTS, "--rl_best_config", "conf/grpo_smoke.yaml"]


def test_rl_stages(smoke_recipe):
    recipe, _, _ = smoke_recipe
    asr = recipe / "asr"
    run(["./run.sh", "--stage", "4", "--stop_stage", "8", *COMMON], asr)  # the SFT smoke model (a no-op if done)
    out, _ = run(["./run.sh", "--stage", "9", "--stop_stage", "14", *COMMON], asr)

    dec = asr / "exp/asr_train_asr_smoke/decode_rl_pool_rl"
    pool = set(read_table(str(asr / "data/rl_pool/text")))
    assert set(read_table(str(dec / "text"), allow_empty_value=True)) == pool
    samples = [json.loads(x) for x in (dec / "samples.jsonl").read_text().splitlines()]
    assert {s["utt"] for s in samples} == pool and all(len(s["hyps"]) == 2 for s in samples)
    stats = json.loads((dec / "rl_subsets.json").read_text())["subsets"]
    for d in ("D0", "D1", "D2", "D3"):
        assert stats[d]["utts"] == 6
        assert len(read_table(str(asr / f"dump/fbank/rl_pool_{d}/feats.scp"))) == 6

    for name in ("d1_smoke", "d0_smoke"):
        exp = asr / "exp" / f"grpo_{name}"
        rows = [json.loads(x) for x in (exp / "metrics.jsonl").read_text().splitlines()]
        train = [r for r in rows if r["split"] == "train"]
        assert train and {"reward", "reward_accuracy", "reward_hallucination", "reward_keywords", "kl",
                          "frac_reward_zero_std", "time_rollout", "time_update"} <= set(train[-1])
        assert any(r["split"] == "valid" and "wer" in r for r in rows)
        assert list(exp.glob("valid.loss.ave1_best.safetensors"))
        for dset in ("dev", "test", "test_unseen_spk"):
            assert (exp / f"decode_{dset}_beam1" / "score_word" / "result.json").is_file()

    results = (asr / "RESULTS.md").read_text()
    assert "## RL ablations" in results and "Rewards (RL data D1)" in results and "RL data (rewards" in results
    assert "|d1_smoke|" in results and "|D0|" in results and "vs SFT" in results

    # Rerun: everything is found complete; GRPO resumes into a no-op.
    out2, _ = run(["./run.sh", "--stage", "9", "--stop_stage", "13", *COMMON], asr)
    assert out2.count("complete, skipping") >= 2 + 2 * 3 and "up to date, skipping" in out2, out2[-3000:]

    # --rl_data_tag: subsets of another size (or SFT model) go to rl_pool_<tag>_D*, the first ones stay.
    run(["./run.sh", "--stage", "10", "--stop_stage", "10", *COMMON, "--rl_data_size", "4", "--rl_data_tag", "t4"], asr)
    for d in ("D0", "D1", "D2", "D3"):
        assert len(read_table(str(asr / f"dump/fbank/rl_pool_t4_{d}/feats.scp"))) == 4
        assert len(read_table(str(asr / f"data/rl_pool_t4_{d}/text"))) == 4
        assert len(read_table(str(asr / f"dump/fbank/rl_pool_{d}/feats.scp"))) == 6
    assert json.loads((dec / "rl_subsets_t4.json").read_text())["subsets"]["D1"]["utts"] == 4
    assert json.loads((dec / "rl_subsets.json").read_text())["subsets"]["D1"]["utts"] == 6

    # local/sampled_wer.sh: sampled transcripts of SFT and a GRPO model, each draw scored, draws pooled, paired.
    run(["local/sampled_wer.sh", "--test_set", "test", "--num_samples", "2", "--out_dir", "exp/sampled_wer_smoke",
         "sft:exp/asr_train_asr_smoke", "grpo:exp/grpo_d1_smoke"], asr)
    table = (asr / "exp/sampled_wer_smoke/RESULTS.md").read_text()
    rows = [r.split("|") for r in table.splitlines() if r.startswith("| sft ") or r.startswith("| grpo ")]
    assert len(rows) == 2, table
    for r in rows:
        pooled, per_draw = float(r[4]), [float(x) for x in r[5].split(" / ")]
        assert len(per_draw) == 2 and abs(pooled - sum(per_draw) / 2) < 0.011, r  # same refs: pooled = mean
    assert rows[0][3].strip() != "-" and ("p=" in rows[1][6] or "p<" in rows[1][6]), table
    for d in ("sft", "grpo"):
        texts = [read_table(str(asr / f"exp/sampled_wer_smoke/{d}/draw{k}/text"), allow_empty_value=True)
                 for k in (1, 2)]
        assert all(set(t) == set(read_table(str(asr / "data/test/text"))) for t in texts)


def test_biasing_through_the_recipe(smoke_recipe):
    """Contextual biasing end to end: an SFT with keyword lists, its decoding with lists (as trained) and without
    (--inference_tag/--inference_args), and a GRPO variant on D3 whose prompts carry lists."""
    recipe, _, _ = smoke_recipe
    asr = recipe / "asr"
    run(["./run.sh", "--stage", "4", "--stop_stage", "10", *COMMON], asr)  # the smoke SFT model and D0-D3
    bias = ["--asr_config", "conf/train_asr_smoke.yaml", "--asr_tag", "smoke_bias", "--test_sets", "test",
            "--inference_nj", "1", "--asr_args", "--data.biasing.enabled true --data.biasing.eval_distractors 2"]
    run(["./run.sh", "--stage", "5", "--stop_stage", "7", *bias], asr)
    exp = asr / "exp/asr_smoke_bias"
    assert "enabled: true" in (exp / "config.yaml").read_text()
    run(["./run.sh", "--stage", "6", "--stop_stage", "7", *bias, "--inference_tag", "beam1_nobias",
         "--inference_args", "--biasing off"], asr)
    for tag, want in (("beam1", 2), ("beam1_nobias", None)):
        rtf = json.loads((exp / f"decode_test_{tag}/rtf.json").read_text())
        assert rtf["biasing_distractors"] == want
        res = json.loads((exp / f"decode_test_{tag}/score_word/result.json").read_text())
        # with lists, the merged bias_lists reach scoring (distractor false alarms); without, none is left behind
        assert ("bias_lists" in res) == (want is not None) == (exp / f"decode_test_{tag}/bias_lists").is_file()
    run(["./run.sh", "--stage", "11", "--stop_stage", "13", *bias,
         "--rl_variants", "bias_smoke:D3:conf/grpo_smoke.yaml"], asr)
    g = asr / "exp/grpo_bias_smoke"
    assert "biasing lists from" in (g / "log/asr_grpo.log").read_text()  # the task set-up, before train.log
    assert "bias_lists" in json.loads((g / "decode_test_beam1/score_word/result.json").read_text())
