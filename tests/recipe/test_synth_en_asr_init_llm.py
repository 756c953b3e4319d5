"""egs/synth_en/asr with --init_llm: a (tiny, random) Hugging Face Qwen2 directory as the LLM, through the recipe:
stage 4 is skipped, stage 5 SFT (smoke config) starts from it with its tokenizer.json as the text tokenizer, stages 6-7
decode and score with that tokenizer (read back from config.yaml), and audiorl.bin.export_hf turns the experiment into a
directory transformers loads. On the session's smoke data (conftest.smoke_recipe)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from audiorl.data.kaldi import read_table
from audiorl.data.synth.voices import missing_tools

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hf_tiny import write_hf_dir  # noqa: E402
from recipe_util import run  # noqa: E402

transformers = pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(bool(missing_tools()), reason=f"synthesis tools missing: {missing_tools()}"),
]
EXP = "exp/asr_init_llm"


def test_init_llm_sft_decode_and_export(smoke_recipe, tmp_path):
    recipe, _, _ = smoke_recipe
    asr = recipe / "asr"
    words = sorted({w for t in read_table(str(asr / "data/train/text")).values() for w in t.split()})
    hf = tmp_path / "qwen_tiny"
    _, n_text = write_hf_dir(hf, words=words)

    out, seconds = run(["./run.sh", "--stage", "4", "--stop_stage", "7", "--init_llm", str(hf),
                        "--asr_config", "conf/train_asr_smoke.yaml", "--asr_tag", "init_llm", "--test_sets", "test",
                        "--decode_valid", "false", "--inference_nj", "1"], asr)
    assert f"skipped: --init_llm {hf}" in out, out[-3000:]
    exp = asr / EXP
    cfg = yaml.safe_load((exp / "config.yaml").read_text())
    assert cfg["model"]["init_llm"] == str(hf)
    assert cfg["data"]["token_model"] == str(hf), "the HF tokenizer replaces the BPE model"
    assert cfg["model"]["llm"]["dim"] == 32 and cfg["model"]["vocab_size"] == n_text + 2, cfg["model"]

    dec = exp / "decode_test_beam1"
    hyp = read_table(str(dec / "text"), allow_empty_value=True)
    assert set(hyp) == set(read_table(str(asr / "data/test/text")))
    vocab = set(json.loads((hf / "tokenizer.json").read_text())["model"]["vocab"])
    assert all(set(h.split()) <= vocab for h in hyp.values()), "hypotheses are words of the HF tokenizer"
    res = json.loads((dec / "score_word/result.json").read_text())
    assert res["totals"]["corr"] + res["totals"]["sub"] + res["totals"]["del"] > 0

    export = tmp_path / "export"
    subprocess.run([sys.executable, "-m", "audiorl.bin.export_hf", "--exp_dir", EXP, "--out_dir", str(export)],
                   cwd=asr, check=True)
    assert (export / "tokenizer.json").is_file()
    model = transformers.AutoModelForCausalLM.from_pretrained(str(export))
    assert model.config.vocab_size == n_text + 2 and model.config.hidden_size == 32
    print(f"init_llm recipe stages 4-7: {seconds:.0f} s")
