"""egs/synth_en/asr stages 4-8 (tokenizer, SFT, decoding, scoring, RESULTS.md) at smoke size, and the SFT
stage's crash safety: SIGKILL part-way, rerun, it resumes from its last checkpoint and ends where an
uninterrupted run ends."""

import json
import os
import signal
import subprocess
import sys
import time
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
ASR_CMD = ["./run.sh", "--stage", "4", "--stop_stage", "8", "--asr_config", "conf/train_asr_smoke.yaml",
           "--inference_nj", "2"]
EXP = "exp/asr_train_asr_smoke"


def _valid_losses(metrics: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    return {r["step"]: r["loss"] for r in rows if r.get("split") == "valid"}


def test_asr_stages(smoke_recipe):
    recipe, _, _ = smoke_recipe
    asr = recipe / "asr"
    out, _ = run(ASR_CMD, asr)
    exp = asr / EXP
    assert (asr / "data/token_list/bpe150/bpe.model").is_file()
    assert list(exp.glob("valid.loss.ave*_best.safetensors")), "averaged model of the best checkpoints"
    for f in ("config.yaml", "train.log", "metrics.jsonl", "curves.png"):
        assert (exp / f).stat().st_size > 0, f
    assert list((exp / "tb").glob("events.out.tfevents.*")), "TensorBoard scalars"
    for dset in ("dev", "test", "test_unseen_spk"):
        d = exp / f"decode_{dset}_beam1"
        hyp = read_table(str(d / "text"), allow_empty_value=True)
        assert set(hyp) == set(read_table(str(asr / "data" / dset / "text")))
        res = json.loads((d / "score_word" / "result.json").read_text())
        assert res["totals"]["wrd"] > 0 if "wrd" in res["totals"] else res["totals"]
        assert json.loads((d / "rtf.json").read_text())["rtf"] > 0
    results = (asr / "RESULTS.md").read_text()
    for dset in ("dev", "test", "test_unseen_spk"):
        assert f"decode_{dset}_beam1" in results
    assert "95% CI" in results and "torch version" in results

    # Rerun: every stage finds its outputs and skips; training is a no-op.
    out2, _ = run(ASR_CMD, asr)
    assert out2.count("complete, skipping") == 3, out2[-3000:]
    assert "up to date, skipping" in out2


def test_sft_resumes_after_sigkill(smoke_recipe, tmp_path):
    """kill -9 the SFT job after its first checkpoint; the rerun resumes and matches an uninterrupted run."""
    recipe, _, _ = smoke_recipe
    asr = recipe / "asr"
    run(["./run.sh", "--stage", "4", "--stop_stage", "4"], asr)
    common = ["--config", "conf/train_asr_smoke.yaml", "--data.train_dir", "dump/fbank/train",
              "--data.valid_dir", "dump/fbank/dev", "--data.token_model", "data/token_list/bpe150/bpe.model",
              "--data.cmvn", "dump/fbank/train/cmvn.ark", "--train.max_steps", "16", "--train.save_interval", "4",
              "--train.valid_interval", "4", "--train.keep_last_n", "0", "--data.valid_decode_utts", "0"]
    py = str(Path(__file__).resolve().parents[2] / "tools" / "venv" / "bin" / "python")
    py = py if os.path.exists(py) else sys.executable
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}

    def train(exp: str, **kw):
        return subprocess.Popen([py, "-m", "audiorl.bin.asr_train", "--exp_dir", exp, *common], cwd=asr, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)

    ref = train(str(tmp_path / "uninterrupted"))
    assert ref.wait(timeout=300) == 0

    killed = tmp_path / "killed"
    p = train(str(killed), start_new_session=True)
    deadline = time.time() + 300
    while not (killed / "checkpoints" / "step_8").is_dir() and p.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert p.poll() is None, "training finished before it could be killed: raise max_steps"
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    steps_before = sorted(int(d.name.split("_")[1]) for d in (killed / "checkpoints").glob("step_*"))
    assert steps_before and max(steps_before) < 16
    rerun = train(str(killed))
    assert rerun.wait(timeout=300) == 0
    log = (killed / "train.log").read_text()
    assert "resum" in log.lower(), log[-2000:]
    a, b = _valid_losses(tmp_path / "uninterrupted" / "metrics.jsonl"), _valid_losses(killed / "metrics.jsonl")
    assert a[16] == pytest.approx(b[16], rel=0.02, abs=0.02), (a, b)
