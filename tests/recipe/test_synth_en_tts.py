"""egs/synth_en/tts at smoke size, every stage: data (shared corpus) -> fbank -> text BPE -> speech tokenizer + token
dump -> speaker embeddings -> text-to-token LM -> token-to-mel -> synthesis (real / resynthesis / TTS) -> judge WER,
SIM, MCD, DNSMOS -> RESULTS.md + mel PNG. The judge is the ASR recipe's smoke SFT model (../asr stages 4-5, a no-op
when test_synth_en_asr.py already trained it). Then a rerun skips everything, and bad options fail fast."""

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
         "--asr_exp", "../asr/exp/asr_train_asr_smoke", "--mos_utts", "2", "--png_utts", "2"]
SETS = ("train", "dev", "test")


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

    systems = {"real": tts / "exp/real_test", "resynthesis": tts / "exp/token2mel_train_token2mel_smoke/resyn_test",
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
    assert json.loads((systems["real"] / "score_tts/tts_metrics.json").read_text())["mcd"]["mean"] == pytest.approx(0, abs=1e-3)

    results = (tts / "RESULTS.md").read_text()
    for label in systems:
        assert f"|{label}|" in results
    assert "95% CI" in results and "torch version" in results and "resynthesis WER / real WER" in results
    assert (tts / "exp/mels_test.png").stat().st_size > 10000

    # Rerun: every stage finds its outputs; training resumes into a no-op.
    out2, seconds2 = run(["./run.sh", *SMOKE], tts, timeout=2400)
    assert out2.count("complete, skipping") >= 3 + 3 + 2, out2[-3000:]  # tokens, speaker embeddings, synthesis
    assert out2.count("up to date, skipping") >= 3 + 1 + 3 * 3, out2[-3000:]  # fbank, bpe, judge/score_tts/score_mos
    print(f"TTS smoke recipe: {seconds:.0f} s; rerun {seconds2:.0f} s")


def test_tts_recipe_bad_options(smoke_recipe):
    tts = smoke_recipe[0] / "tts"
    out, _ = run(["./run.sh", "--stage", "5", "--stop_stage", "5", "--token_dir", "elsewhere"], tts, check=False)
    assert "needs --codebook_size" in out
    out, _ = run(["./run.sh", "--stage", "10", "--stop_stage", "10", "--asr_exp", "no/such/exp"], tts, check=False)
    assert "is not a trained ASR experiment" in out
    out, _ = run(["./run.sh", "--no_such_option", "1"], tts, check=False)
    assert "no_such_option" in out
