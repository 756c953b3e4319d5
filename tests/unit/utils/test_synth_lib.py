"""egs/TEMPLATE/tts/synth_lib.sh, the synthesis/scoring steps tts.sh stages 11-12 and local/score_t2m.sh share: when a
system dir is redone and when it is kept. The Python steps are stubs (a fake interpreter that logs each call and
writes what the real one would), so this checks only the shell's rules, fast."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
LIB = ROOT / "egs/TEMPLATE/tts/synth_lib.sh"
STAGES = ROOT / "egs/TEMPLATE/common/stages.sh"

# A stand-in for `python -m audiorl.bin.<tool> ...`: appends the tool to calls.log and writes its output files.
FAKE_PY = r"""#!/usr/bin/env bash
tool=$2; shift 2
echo "${tool} $*" >> "${CALLS}"
case "${tool}" in
  audiorl.bin.tts_synth)
    while [ $# -gt 0 ]; do case "$1" in --out_dir) out=$2; shift;; --data_dir) data=$2; shift;; --split) split=$2; shift;; esac; shift; done
    mkdir -p "${out}"
    awk -v j="${split%/*}" -v n="${split#*/}" '(NR - 1) % n == j - 1 {print $1, "x.wav"}' "${data}/text" > "${out}/wav.scp";;
  audiorl.bin.tts_merge) cat "$1"/split/*/wav.scp > "$1/wav.scp";;
  audiorl.bin.tts_judge)
    while [ $# -gt 0 ]; do case "$1" in --out_dir) out=$2; shift;; esac; shift; done
    mkdir -p "${out}/score_word"; echo '{"wer": 0.1}' > "${out}/score_word/result.json";;
  audiorl.bin.score_tts)
    while [ $# -gt 0 ]; do case "$1" in --out) out=$2; shift;; esac; shift; done
    mkdir -p "${out}"; echo '{}' > "${out}/tts_metrics.json";;
  audiorl.bin.final_weights) echo "$1/model.safetensors";;
esac
"""


@pytest.fixture
def env(tmp_path):
    (tmp_path / "data/test").mkdir(parents=True)
    (tmp_path / "data/test/text").write_text("u1 hello\nu2 world\n")
    (tmp_path / "data/test/utt2spk").write_text("u1 s\nu2 s\n")
    (tmp_path / "data/test/wav.scp").write_text("u1 a.wav\nu2 b.wav\n")
    (tmp_path / "model.pt").write_text("m")
    py = tmp_path / "fakepy"
    py.write_text(FAKE_PY)
    py.chmod(0o755)
    os.utime(tmp_path / "model.pt", (time.time() - 100, time.time() - 100))
    return tmp_path


def sh(env: Path, body: str, vocoder: str = "griffin_lim") -> list[str]:
    """Run body after sourcing the library; return the stub calls it made (tool names)."""
    calls = env / "calls.log"
    calls.unlink(missing_ok=True)
    script = f"""set -euo pipefail
python={env}/fakepy; decode_cmd={ROOT}/utils/run.pl; judge_mode=llm; score_tts_args=
. {STAGES}; . {LIB}
set_vocoder {vocoder} {env}/voc_exp
{body}"""
    r = subprocess.run(["bash", "-c", script], cwd=env, capture_output=True, text=True,
                       env={**os.environ, "CALLS": str(calls)})
    assert r.returncode == 0, r.stderr
    return [line.split()[0] for line in calls.read_text().splitlines()] if calls.exists() else []


SYNTH = 'synth_if_stale sys data/test 2 "model.pt" --mode tts --batch_size 16'


def test_synthesises_then_skips(env):
    calls = sh(env, SYNTH)
    assert calls.count("audiorl.bin.tts_synth") == 2 and "audiorl.bin.tts_merge" in calls
    assert (env / "sys/wav.scp").read_text().split() == ["u1", "x.wav", "u2", "x.wav"]
    assert (env / "sys/synth_opts").read_text().strip() == "--mode tts --batch_size 16"
    assert (env / "sys/vocoder").read_text().strip() == "griffin_lim"
    assert sh(env, SYNTH) == []  # everything the same: kept


@pytest.mark.parametrize("change", ["options", "text", "utt2spk", "wav.scp", "model", "interrupted", "vocoder"])
def test_redone_when_an_input_changes(env, change):
    sh(env, SYNTH)
    cmd, vocoder = SYNTH, "griffin_lim"
    if change == "options":
        cmd = SYNTH + " --sampling.top_k 5"
    elif change in ("text", "utt2spk", "wav.scp"):  # compared by content (data.sh rewrites data/, mtimes say nothing)
        p = env / "data/test" / change
        p.write_text(p.read_text().replace("u2", "u3"))
    elif change == "model":
        (env / "model.pt").touch()
    elif change == "interrupted":  # synth_opts is written last: its absence means the run did not finish
        (env / "sys/synth_opts").unlink()
    elif change == "vocoder":
        (env / "voc_exp").mkdir()
        vocoder = "neural"
    calls = sh(env, cmd, vocoder)
    assert calls.count("audiorl.bin.tts_synth") == 2, (change, calls)
    if change == "vocoder":
        assert (env / "sys/vocoder").read_text().strip() == f"neural {env}/voc_exp/model.safetensors"


def test_draws_inside_draw_one_are_redone_with_it(env):
    sh(env, 'draw_dir sys 1 > d1; draw_dir sys 2 > d2')
    assert [(env / f).read_text().strip() for f in ("d1", "d2")] == ["sys", "sys/draw2"]
    sh(env, SYNTH + "; " + SYNTH.replace("sys ", "sys/draw2 ", 1))
    (env / "model.pt").touch()
    sh(env, SYNTH)
    assert not (env / "sys/draw2").exists()


def test_score_system_runs_once(env):
    sh(env, SYNTH)
    calls = sh(env, "score_system sys data/test model.pt --asr_exp judge")
    assert calls == ["audiorl.bin.tts_judge", "audiorl.bin.score_tts"]
    assert sh(env, "score_system sys data/test model.pt --asr_exp judge") == []
    (env / "sys/wav.scp").touch()  # new waves: both rescored
    os.utime(env / "sys/wav.scp", (time.time() + 5, time.time() + 5))
    assert len(sh(env, "score_system sys data/test model.pt --asr_exp judge")) == 2


def test_unknown_vocoder_and_missing_waves_fail(env):
    r = subprocess.run(["bash", "-c", f". {STAGES}; . {LIB}; set_vocoder hifigan x"], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown" in r.stderr
    r = subprocess.run(["bash", "-c", f"python=true; . {STAGES}; . {LIB}; score_system nowhere data/test m"],
                       cwd=env, capture_output=True, text=True)
    assert r.returncode == 1 and "nowhere/wav.scp missing" in r.stderr


def test_score_mos_runs_once_on_n_utts(env):
    sh(env, SYNTH)
    assert sh(env, "score_mos sys data/test 200") == ["audiorl.bin.score_tts"]
    line = (env / "calls.log").read_text()
    assert "--out sys/score_mos" in line and "--no-sim --no-mcd --max-utts 200" in line, line
    assert (env / "sys/score_mos/tts_metrics.json").is_file()
    assert sh(env, "score_mos sys data/test 200") == []  # up to date
    os.utime(env / "sys/wav.scp", (time.time() + 5, time.time() + 5))  # new waves: rescored, here on every utterance
    assert sh(env, "score_mos sys data/test 0") == ["audiorl.bin.score_tts"]
    assert "--max-utts" not in (env / "calls.log").read_text()
