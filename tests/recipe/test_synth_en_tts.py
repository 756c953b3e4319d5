"""egs/synth_en/tts at smoke size, every stage: data (shared corpus) -> fbank -> text BPE -> speech tokenizer + token
dump -> speaker embeddings -> text-to-token LM -> token-to-mel -> token-to-text reward model -> RL of the LM (GRPO,
DiffRO, filtered GRPO + DiffRO with R1+R2+R3) -> synthesis (real / resynthesis / TTS / RL) -> judge WER, SIM, MCD,
DNSMOS -> RESULTS.md (+ Table 2) + mel PNG + RL curves. The judge is the ASR recipe's smoke SFT model (../asr stages
4-5, a no-op when test_synth_en_asr.py already trained it). Then a rerun skips everything, and bad options fail fast."""

import json
import sys
from pathlib import Path

import kaldiio
import pytest

from audiorl.data.kaldi import read_table
from audiorl.data.synth.voices import missing_tools

sys.path.insert(0, str(Path(__file__).parent))
from recipe_util import run  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(bool(missing_tools()), reason=f"synthesis tools missing: {missing_tools()}"),
]
SMOKE = ["--local_data_opts", "--smoke true --nj 2", "--nj", "2", "--inference_nj", "2",
         "--tokenizer_config", "conf/train_tokenizer_smoke.yaml", "--lm_config", "conf/train_tts_lm_smoke.yaml",
         "--t2m_config", "conf/train_token2mel_smoke.yaml", "--synth_config", "conf/synth_smoke.yaml",
         "--asr_exp", "../asr/exp/asr_train_asr_smoke", "--tokenizer_init_asr", "../asr/exp/asr_train_asr_smoke",
         "--mos_utts", "2", "--png_utts", "2", "--synth_draws", "2",
         "--rm_config", "conf/train_token2text_smoke.yaml", "--rl_parallel", "2", "--train_threads", "1",
         # three of the recipe's own RL configs (GRPO, DiffRO, filtered GRPO + DiffRO with R1+R2+R3), shrunk to 2 steps
         # of 2 texts x 2 samples; every conf/rl/*.yaml is loaded in tests/unit/tasks/test_tts_rl.py
         "--rl_variants", "grpo_r1:conf/rl/grpo_r1.yaml diffro:conf/rl/diffro.yaml comb_filter_r123:conf/rl/comb_filter_r123.yaml",
         "--rl_args", "--train.max_steps 2 --train.max_time_minutes 0 --train.valid_interval 2 --train.save_interval 2 "
                      "--train.log_interval 1 "
                      "--train.batch_size 2 --grpo.num_generations 2 --grpo.max_new_tokens 20 --sampling.max_new_tokens 20 "
                      "--valid_sampling.max_new_tokens 20 --data.valid_utts 2 --data.max_rl_utts 8 "
                      "--train.progress_bar false"]
SETS = ("train", "dev", "test", "rl_pool")
RL = ("grpo_r1", "diffro", "comb_filter_r123")


def test_tts_recipe(smoke_recipe):
    recipe, _, _ = smoke_recipe
    run(["./run.sh", "--stage", "4", "--stop_stage", "5", "--asr_config", "conf/train_asr_smoke.yaml"],
        recipe / "asr")  # the judge
    tts = recipe / "tts"
    out, seconds = run(["./run.sh", *SMOKE], tts, timeout=2400)

    test_utts = set(read_table(str(tts / "data/test/text")))
    for dset in SETS:
        utts = set(read_table(str(tts / "data" / dset / "text")))
        assert set(kaldiio.load_scp(str(tts / "dump/tokens" / dset / "tokens.scp"))) == utts
        assert set(read_table(str(tts / "dump/spk_embed" / dset / "spk_embed.scp"))) == utts
        assert (tts / "dump/spk_embed" / dset / "spk2embed.scp").stat().st_size > 0
    assert (tts / "data/token_list/bpe400/bpe.model").is_file()
    for exp in ("tokenizer_train_tokenizer_smoke", "tts_lm_train_tts_lm_smoke", "token2mel_train_token2mel_smoke"):
        for f in ("config.yaml", "train.log", "metrics.jsonl", "checkpoints/latest"):
            assert (tts / "exp" / exp / f).is_file(), (exp, f)
    tok_cfg = (tts / "exp/tokenizer_train_tokenizer_smoke/config.yaml").read_text()  # started from the judge's encoder
    assert "asr_exp: ../asr/exp/asr_train_asr_smoke" in tok_cfg and "input_norm: global" in tok_cfg, tok_cfg

    systems = {"real": tts / "exp/real_test", "vocoded": tts / "exp/vocoded_test", "resynthesis": tts / "exp/token2mel_train_token2mel_smoke/resyn_test",
               "TTS": tts / "exp/tts_lm_train_tts_lm_smoke/synth_test"}
    for label, d in systems.items():
        assert set(read_table(str(d / "wav.scp"))) == test_utts, label
        res = json.loads((d / "judge/score_word/result.json").read_text())
        assert set(res["utts"]) == test_utts and res["totals"]["corr"] + res["totals"]["sub"] + res["totals"]["del"] > 0
        m = json.loads((d / "score_tts/tts_metrics.json").read_text())
        assert m["n_utts"] == len(test_utts) and {"sim_ref", "sim_spk", "mcd", "dur_ratio"} <= set(m)
        mos = json.loads((d / "score_mos/tts_metrics.json").read_text())
        assert mos["dnsmos_ovrl"]["n"] == 2
        if label != "real":
            rtf = json.loads((d / "rtf.json").read_text())
            assert rtf["utts"] == len(test_utts) and rtf["jobs"] == 2 and rtf["rtf_vocoder"] > 0
    mcd = {k: json.loads((systems[k] / "score_tts/tts_metrics.json").read_text())["mcd"]["mean"] for k in systems}
    assert mcd["real"] == pytest.approx(0, abs=1e-3) and mcd["vocoded"] < mcd["resynthesis"], mcd

    # reward model and RL (stages 9-10), their synthesis and scoring (11-12)
    rm = tts / "exp/token2text_train_token2text_smoke"
    rm_cfg = (rm / "config.yaml").read_text()  # started from the tokenizer, in its (the ASR's) text units
    assert "from_tokenizer: true" in rm_cfg and "asr/data/token_list" in rm_cfg, rm_cfg
    assert json.loads((rm / "decode_test/result.json").read_text())["totals"]["snt"] == len(test_utts)
    for name in RL:
        exp = tts / "exp" / f"tts_rl_{name}"
        rows = [json.loads(x) for x in (exp / "metrics.jsonl").read_text().splitlines()]
        train = [r for r in rows if r["split"] == "train"]
        valid = [r for r in rows if r["split"] == "valid"]
        assert [r["step"] for r in train] == [1, 2] and {r["step"] for r in valid} == {0, 2}, name
        assert "judge_wer" in valid[-1] and "rm_wer" in valid[-1], name
        rl_cfg = (exp / "config.yaml").read_text()  # token-to-mel as stage 11 runs it (conf/synth_smoke.yaml)
        assert "synth_config: conf/synth_smoke.yaml" in rl_cfg and "n_steps: 2" in rl_cfg, name
        key = "text_logprob" if name == "diffro" else "reward_token2text"
        assert key in train[0], (name, sorted(train[0]))
        if name.startswith("comb"):
            assert "diffro_frac_selected" in train[0]
        assert set(read_table(str(exp / "synth_test/wav.scp"))) == test_utts
        assert (exp / "synth_test/judge/score_word/result.json").is_file()
        # the second draw (--synth_draws 2): another sample of the same weights, scored like the first
        assert set(read_table(str(exp / "synth_test/draw2/wav.scp"))) == test_utts, name
        assert (exp / "synth_test/draw2/judge/score_word/result.json").is_file()
        assert (exp / "synth_test/draw2/score_tts/tts_metrics.json").is_file()
    assert (systems["TTS"] / "draw2/judge/score_word/result.json").is_file()
    assert not (systems["resynthesis"] / "draw2").exists()

    results = (tts / "RESULTS.md").read_text()
    for label in systems:
        assert f"|{label}|" in results
    assert "## test: RL vs SFT" in results and "Targets (issue 6)" in results
    assert "pooled over 2 synthesis draws" in results and f"|{len(test_utts)} x 2|" in results
    for name in RL:
        assert f"|{name}|" in results
    assert "Token-to-text reward model" in results
    assert (tts / "exp/rl_curves.png").stat().st_size > 10000
    assert "95% CI" in results and "torch version" in results and "resynthesis WER / real WER" in results
    assert "mel + vocoder alone (vocoded)" in results
    assert (tts / "exp/mels_test.png").stat().st_size > 10000

    # Rerun: every stage finds its outputs; training resumes into a no-op.
    out2, seconds2 = run(["./run.sh", *SMOKE], tts, timeout=2400)
    # tokens, speaker embeddings (4 sets each), synthesis (vocoded, resynthesis, 2 draws of SFT and the RL variants)
    assert out2.count("complete, skipping") >= 4 + 4 + 2 + 2 * (1 + len(RL)), out2[-3000:]
    # fbank (4 sets), bpe, judge/score_tts/score_mos of 4 systems + the RL variants, judge/score_tts of the draws 2
    assert out2.count("up to date, skipping") >= 4 + 1 + 3 * (4 + len(RL)) + 2 * (1 + len(RL)), out2[-3000:]
    # local/score_t2m.sh scores a candidate token-to-mel beside the recipe's rows, in its own dir. Given the recipe's
    # own model it must reproduce stage 11-12 exactly (same settings, voices and batch seeds), so the rows agree.
    smoke_t2m = "exp/token2mel_train_token2mel_smoke"
    run(["local/score_t2m.sh", "--recipe_t2m", smoke_t2m, "--lm_exp", "exp/tts_lm_train_tts_lm_smoke",
         "--lms", "sft:exp/tts_lm_train_tts_lm_smoke", "--synth_config", "conf/synth_smoke.yaml",
         "--asr_exp", "../asr/exp/asr_train_asr_smoke", "--draws", "2", smoke_t2m], tts)
    ev = tts / smoke_t2m / "eval_test"
    res = (ev / "RESULTS.md").read_text()
    assert "|recipe token-to-mel|" in res and "|sft + token2mel_train_token2mel_smoke|" in res, res
    assert f"|{len(test_utts)} x 2|" in res
    # DNSMOS on draw 1 of each system, as stage 12 does (tts_results reads it from score_mos/)
    assert (ev / "resyn/score_mos/tts_metrics.json").is_file() and (ev / "sft/score_mos/tts_metrics.json").is_file()
    assert not (ev / "sft/draw2/score_mos").exists()
    for mine, recipe in ((ev / "resyn", systems["resynthesis"]), (ev / "sft/draw2", systems["TTS"] / "draw2")):
        assert (json.loads((mine / "judge/score_word/result.json").read_text())["totals"]
                == json.loads((recipe / "judge/score_word/result.json").read_text())["totals"]), mine
    # On dev (where settings are chosen; stage 11 synthesises no dev rows) the table has the candidate's rows alone.
    out_dev, _ = run(["local/score_t2m.sh", "--recipe_t2m", smoke_t2m, "--lm_exp", "exp/tts_lm_train_tts_lm_smoke",
                      "--lms", "sft:exp/tts_lm_train_tts_lm_smoke", "--synth_config", "conf/synth_smoke.yaml",
                      "--asr_exp", "../asr/exp/asr_train_asr_smoke", "--draws", "1", "--test_set", "dev", smoke_t2m], tts)
    res_dev = (tts / smoke_t2m / "eval_dev/RESULTS.md").read_text()
    assert "no recipe rows in" in out_dev and "|recipe token-to-mel|" not in res_dev, res_dev
    assert "|sft + token2mel_train_token2mel_smoke|" in res_dev, res_dev
    # Other synthesis options (here --synth_args) redo the synthesis they change instead of keeping stale waves.
    out3, _ = run(["./run.sh", *SMOKE, "--stage", "11", "--stop_stage", "11", "--rl_variants", "", "--synth_draws", "1",
                   "--synth_args", "--sampling.top_k 5"], tts)
    assert "synth_test/wav.scp: complete, skipping" not in out3, out3[-3000:]
    assert "--sampling.top_k 5" in (systems["TTS"] / "synth_opts").read_text()
    print(f"TTS smoke recipe: {seconds:.0f} s; rerun {seconds2:.0f} s")


def test_tts_recipe_bad_options(smoke_recipe):
    tts = smoke_recipe[0] / "tts"
    out, _ = run(["./run.sh", "--stage", "5", "--stop_stage", "5", "--token_dir", "elsewhere"], tts, check=False)
    assert "needs --codebook_size" in out
    out, _ = run(["./run.sh", "--stage", "12", "--stop_stage", "12", "--asr_exp", "no/such/exp"], tts, check=False)
    assert "is not a trained ASR experiment" in out
    out, _ = run(["./run.sh", "--stage", "10", "--stop_stage", "10", "--rl_variants", "x:no/such.yaml"], tts, check=False)
    assert "expected name:config" in out
    out, _ = run(["./run.sh", "--no_such_option", "1"], tts, check=False)
    assert "no_such_option" in out
    out, _ = run(["./run.sh", "--stage", "11", "--stop_stage", "11", "--vocoder", "neural"], tts, check=False)
    assert "--vocoder neural needs --voc_config" in out
    out, _ = run(["./run.sh", "--stage", "11", "--stop_stage", "11", "--vocoder", "hifigan"], tts, check=False)
    assert "expected griffin_lim or neural" in out
    out, _ = run(["./run.sh", "--stage", "11", "--stop_stage", "11", "--synth_draws", "0"], tts, check=False)
    assert "--synth_draws 0: expected a positive integer" in out
    out, _ = run(["./run.sh", "--stage", "8", "--stop_stage", "8", "--t2m_config", "", "--voc_config", "no/such.yaml"],
                 tts, check=False)
    assert "--voc_config no/such.yaml: no such file" in out
