"""egs/synth_en/tts stage 8's neural-vocoder part on the session's smoke data (conftest.smoke_recipe): --voc_config
trains exp/vocoder_<tag> from the recordings alone (--t2m_config '' skips token-to-mel, so no tokens are needed) and a
rerun resumes into a no-op. Bad --vocoder options are in test_synth_en_tts.py's bad-options test. Kept apart from
that file's smoke run: stage 11 with --vocoder neural would re-synthesise every system there (the neural path of
tts_synth is covered by tests/unit/tasks/test_vocoder_task.py)."""

import json
import sys
from pathlib import Path

import pytest

from audiorl.data.synth.voices import missing_tools

sys.path.insert(0, str(Path(__file__).parent))
from recipe_util import run  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(bool(missing_tools()), reason=f"synthesis tools missing: {missing_tools()}"),
]
EXP = "exp/vocoder_train_vocoder_smoke"
VOC = ["--stage", "8", "--stop_stage", "8", "--t2m_config", "", "--voc_config", "conf/train_vocoder_smoke.yaml",
       "--train_threads", "1"]


def test_vocoder_stage(smoke_recipe):
    tts = smoke_recipe[0] / "tts"
    run(["./run.sh", "--stage", "1", "--stop_stage", "1", "--local_data_opts", "--smoke true --nj 2"], tts)
    before = sorted(tts.glob("exp/token2mel_*"))  # the session's other TTS smoke test may have trained one already
    out, seconds = run(["./run.sh", *VOC], tts)
    assert "token-to-mel skipped" in out and sorted(tts.glob("exp/token2mel_*")) == before
    for f in ("config.yaml", "train.log", "metrics.jsonl", "checkpoints/latest", "log/vocoder_train.log"):
        assert (tts / EXP / f).is_file(), f
    rows = [json.loads(x) for x in (tts / EXP / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["split"] == "train"] == [2, 4]
    assert {"loss", "mel_l1", "mcd"} <= set([r for r in rows if r["split"] == "valid"][-1])
    assert "train_dir: data/train" in (tts / EXP / "config.yaml").read_text()

    out2, _ = run(["./run.sh", *VOC], tts)  # rerun: resumes at step 4 = max_steps, nothing more to train
    rows2 = (tts / EXP / "metrics.jsonl").read_text().splitlines()
    assert len(rows2) == len(rows), out2[-2000:]
    print(f"vocoder stage 8 at smoke size: {seconds:.0f} s")

