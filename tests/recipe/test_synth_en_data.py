"""egs/synth_en data stages (asr.sh stages 1-3) at smoke size, in a copy of the recipe tree.

The copy mirrors the repository layout (egs/TEMPLATE, egs/synth_en/{asr,tts}, with utils, tools and
audiorl reachable through the same relative paths) so that the recipe is shown to depend on the
repository only through its relative symlinks and path.sh, and nothing is written into the real tree.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from audiorl.data.kaldi import read_list_table, read_table
from audiorl.data.synth.voices import missing_tools

sys.path.insert(0, str(Path(__file__).parent))
from recipe_util import DATA_CMD, run as _run  # noqa: E402

SETS = ("train", "rl_pool", "dev", "test", "test_unseen_spk")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(bool(missing_tools()), reason=f"synthesis tools missing: {missing_tools()}"),
]


def test_synth_en_data_stages(smoke_recipe):
    recipe, out1, t1 = smoke_recipe
    asr = recipe / "asr"
    cmd = DATA_CMD

    db = recipe / "db"
    assert (db / "corpus.json").is_file(), "audio goes to ../db (db.sh)"
    for s in SETS:
        d = asr / "data" / s
        wav = read_table(str(d / "wav.scp"))
        text = read_table(str(d / "text"))
        kw = read_list_table(str(d / "keywords"))
        assert len(wav) >= 16 and set(wav) == set(text) == set(kw)
        assert all(p.startswith("../db/wav/") for p in wav.values()), "wav.scp paths stay relative"
        assert all((asr / p).is_file() for p in wav.values())
        f = asr / "dump" / "fbank" / s
        feats = read_table(str(f / "feats.scp"))
        assert set(feats) == set(wav)
        subprocess.run(["utils/validate_data_dir.sh", str(f.relative_to(asr))], cwd=asr, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert (asr / "dump" / "fbank" / "train" / "cmvn.ark").stat().st_size > 0
    spk_train = set(read_table(str(asr / "data" / "train" / "utt2spk")).values())
    spk_unseen = set(read_table(str(asr / "data" / "test_unseen_spk" / "utt2spk")).values())
    assert spk_train and spk_unseen and not spk_train & spk_unseen
    runs = list((asr / "exp").glob("run_*.sh"))
    assert any("--stop_stage 3" in r.read_text() for r in runs), runs

    # Rerun: nothing is synthesised or recomputed.
    feats_mtime = (asr / "dump" / "fbank" / "test" / "feats.scp").stat().st_mtime
    out2, t2 = _run(cmd, asr)
    assert re.search(r"\b0 synthesised\b", out2), out2[-3000:]
    assert out2.count("features up to date, skipping") == len(SETS), out2[-3000:]
    assert (asr / "dump" / "fbank" / "test" / "feats.scp").stat().st_mtime == feats_mtime
    assert t2 < t1, (t1, t2)

    # The TTS recipe prepares the same data from the same db: no second synthesis.
    out3, _ = _run(["local/data.sh", "--smoke", "true"], recipe / "tts")
    assert re.search(r"\b0 synthesised\b", out3), out3[-3000:]
    for s in SETS:
        assert (recipe / "tts" / "data" / s / "text").read_text() == (asr / "data" / s / "text").read_text()
