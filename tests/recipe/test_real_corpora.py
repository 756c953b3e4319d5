"""egs/{librispeech/asr, aishell/asr, libritts/tts} on miniature corpora in the official layouts (tests/fake_corpora.py),
offline, each in a copy of the recipe tree that mirrors the repository (as recipe_util does for synth_en):

* every conf/*.yaml loads into its config class (fast);
* local/download.sh: syntax, --help, and (with a fake wget serving local archives) the md5 check, extraction and the
  rerun skip (fast);
* the data and feature stages of each recipe, with the data dirs validated, plus one training stage at smoke size:
  LibriSpeech SFT; AISHELL-1 SFT + decoding + CER scoring; LibriTTS text BPE + speech tokenizer (slow).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from audiorl.config import load_config
from audiorl.data.kaldi import read_table

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from fake_corpora import make_aishell, make_librispeech, make_libritts  # noqa: E402

RECIPES = (("librispeech", "asr"), ("aishell", "asr"), ("libritts", "tts"))
OUTPUTS = ("data", "dump", "exp", "downloads", "RESULTS.md")
DB_VARS = ("LIBRISPEECH", "AISHELL", "LIBRITTS", "PYTHONPATH")


def copy_recipe(tmp: Path, corpus: str, task: str) -> Path:
    """tmp/egs/<corpus>/<task>, with utils, tools, audiorl and egs/TEMPLATE reachable as in the repository."""
    (tmp / "egs").mkdir(parents=True, exist_ok=True)
    for name in ("utils", "tools", "audiorl"):
        if not (tmp / name).exists():
            (tmp / name).symlink_to(ROOT / name)
    if not (tmp / "egs" / "TEMPLATE").exists():
        (tmp / "egs" / "TEMPLATE").symlink_to(ROOT / "egs" / "TEMPLATE")
    dst = tmp / "egs" / corpus / task
    shutil.copytree(ROOT / "egs" / corpus / task, dst, symlinks=True, ignore=shutil.ignore_patterns(*OUTPUTS))
    return dst


def run(cmd: list[str], cwd: Path, env: dict | None = None, check: bool = True) -> tuple[str, float]:
    env = {**{k: v for k, v in os.environ.items() if k not in DB_VARS}, **(env or {})}
    t = time.time()
    r = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)
    if check:
        assert r.returncode == 0, f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout[-4000:]}"
    return r.stdout, time.time() - t


def validate(recipe: Path, d: str) -> None:
    subprocess.run(["utils/validate_data_dir.sh", d], cwd=recipe, check=True, stdout=subprocess.DEVNULL)


# ---- configs ---------------------------------------------------------------------------------------------

def _config_class(path: Path):
    name = path.name
    if "rl" in (path.parent.name, path.parent.parent.name):  # conf/rl/ (and a conf/rl/tuning/ a recipe may add)
        from audiorl.tasks.tts_rl import TTSRLConfig
        return TTSRLConfig
    if name.startswith("train_asr"):
        from audiorl.tasks.asr import ASRTrainConfig
        return ASRTrainConfig
    if name.startswith("grpo"):
        from audiorl.tasks.asr_grpo import ASRGRPOConfig
        return ASRGRPOConfig
    if name.startswith("train_tokenizer"):
        from audiorl.tasks.tts import SpeechTokenizerTrainConfig
        return SpeechTokenizerTrainConfig
    if name.startswith("train_tts_lm"):
        from audiorl.tasks.tts import TTSLMTrainConfig
        return TTSLMTrainConfig
    if name.startswith("train_token2mel"):
        from audiorl.tasks.tts import Token2MelTrainConfig
        return Token2MelTrainConfig
    if name.startswith("train_token2text"):
        from audiorl.tasks.token2text import Token2TextTrainConfig
        return Token2TextTrainConfig
    if name.startswith("train_vocoder"):
        from audiorl.tasks.vocoder import VocoderTrainConfig
        return VocoderTrainConfig
    if name.startswith("synth"):
        from audiorl.bin.tts_synth import SynthConfig
        return SynthConfig
    raise AssertionError(f"{path}: no config class known for this file name; extend _config_class")


CONFS = sorted(p for c, t in RECIPES for p in (ROOT / "egs" / c / t / "conf").rglob("*.yaml"))
# ... and every synth_en config: the smoke recipe tests run only the *_smoke ones, so a typo in a full-scale config
# (or an ablation variant) would otherwise surface only in a 30-minute run
CONFS += sorted(p for t in ("asr", "tts") for p in (ROOT / "egs" / "synth_en" / t / "conf").rglob("*.yaml"))


@pytest.mark.parametrize("conf", CONFS, ids=lambda p: str(p.relative_to(ROOT / "egs")))
def test_recipe_configs_load(conf):
    # tts.sh gives tts_synth its paths on the command line; the config file holds the sampling settings only.
    paths = ["--t2m_exp", "exp/t2m", "--lm_exp", "exp/lm", "--out_dir", "out"] if conf.name.startswith("synth") else []
    load_config(_config_class(conf), conf, paths)


# ---- download scripts ------------------------------------------------------------------------------------

FAKE_WGET = """#!/usr/bin/env bash
# wget stand-in for the tests: '... -O FILE URL' copies $FAKE_SERVER/<basename of URL> to FILE.
out=; url=
while [ $# -gt 0 ]; do case "$1" in -O) out=$2; shift 2;; *) url=$1; shift;; esac; done
cp "$FAKE_SERVER/${url##*/}" "$out"
"""


def _fake_server(tmp: Path, make, top: str, subset: str, archive: str) -> tuple[dict, str]:
    """An archive <server>/<archive> of <top>/<subset> as make() writes it; (env with the fake wget, its md5)."""
    src = make(tmp / "src")
    (tmp / "server").mkdir()
    with tarfile.open(tmp / "server" / archive, "w:gz") as tar:
        tar.add(src / top / subset, arcname=f"{top}/{subset}")
    (tmp / "bin").mkdir()
    (tmp / "bin" / "wget").write_text(FAKE_WGET)
    (tmp / "bin" / "wget").chmod(0o755)
    env = {"PATH": f"{tmp / 'bin'}:{os.environ['PATH']}", "FAKE_SERVER": str(tmp / "server")}
    return env, hashlib.md5((tmp / "server" / archive).read_bytes()).hexdigest()


@pytest.mark.parametrize("corpus,task", RECIPES)
def test_download_script_syntax_and_help(corpus, task):
    d = ROOT / "egs" / corpus / task
    for script in ("local/download.sh", "local/data.sh", "run.sh"):
        subprocess.run(["bash", "-n", script], cwd=d, check=True)
    for script in ("local/download.sh", "local/data.sh"):
        out = subprocess.run([script, "--help"], cwd=d, check=True, stdout=subprocess.PIPE, text=True).stdout
        assert "--datadir" in out


def test_libritts_download_checks_md5_extracts_and_skips(tmp_path):
    recipe = copy_recipe(tmp_path / "tree", "libritts", "tts")
    env, md5 = _fake_server(tmp_path, make_libritts, "LibriTTS", "dev-clean", "dev-clean.tar.gz")
    cmd = ["local/download.sh", "--subsets", "dev-clean", "--md5_file", str(tmp_path / "md5sum.txt")]
    # The shipped md5 list is empty on purpose: no value, no extraction.
    out, _ = run(cmd[:3], recipe, env, check=False)
    assert "has no md5 for dev-clean.tar.gz; add its line from https://www.openslr.org/60/" in out
    (tmp_path / "md5sum.txt").write_text(f"{'0' * 32}  dev-clean.tar.gz\n")
    out, _ = run(cmd, recipe, env, check=False)
    assert f"md5 {md5}, expected {'0' * 32}" in out and "delete it and rerun" in out
    (tmp_path / "md5sum.txt").write_text(f"# comment\n{md5}  dev-clean.tar.gz\n")
    run(cmd, recipe, env)
    assert (recipe / "downloads/LibriTTS/dev-clean/84/121123/84_121123_000000_000000.wav").is_file()
    out, _ = run(cmd, recipe, env)
    assert "dev-clean: already extracted" in out


@pytest.mark.parametrize("corpus,make,top,subset,archive", [
    ("librispeech", make_librispeech, "LibriSpeech", "dev-clean", "dev-clean.tar.gz"),
    ("aishell", make_aishell, "data_aishell", "wav", "data_aishell.tgz")])
def test_download_rejects_a_wrong_md5(tmp_path, corpus, make, top, subset, archive):
    """The official md5s are built in: a fabricated archive must be refused before extraction."""
    recipe = copy_recipe(tmp_path / "tree", corpus, "asr")
    env, md5 = _fake_server(tmp_path, make, top, subset, archive)
    opts = ["--subsets", "dev-clean"] if corpus == "librispeech" else []
    out, _ = run(["local/download.sh", *opts], recipe, env, check=False)
    assert f"{archive}: md5 {md5}, expected " in out and not (recipe / "downloads" / top).exists()


# ---- recipe stages (slow) --------------------------------------------------------------------------------

@pytest.mark.slow
def test_librispeech_recipe(tmp_path):
    recipe = copy_recipe(tmp_path, "librispeech", "asr")
    make_librispeech(recipe / "downloads")  # db.sh's default location
    sets = ("train", "rl_pool", "dev", "dev_clean", "dev_other", "test_clean", "test_other")
    out, t_data = run(["./run.sh", "--stage", "1", "--stop_stage", "3", "--nj", "1",
                       "--local_data_opts", "--rl_pool_utts 4 --nj 1"], recipe)
    for s in sets:
        feats = read_table(str(recipe / "dump/fbank" / s / "feats.scp"))
        assert set(feats) == set(read_table(str(recipe / "data" / s / "text")))
        validate(recipe, f"dump/fbank/{s}")
    train, pool = read_table(str(recipe / "data/train/text")), read_table(str(recipe / "data/rl_pool/text"))
    assert len(pool) == 4 and not set(train) & set(pool)
    assert all(p.startswith("downloads/LibriSpeech/") and p.endswith(".flac")
               for p in read_table(str(recipe / "data/train/wav.scp")).values()), "relative flac paths"

    out, t_sft = run(["./run.sh", "--stage", "4", "--stop_stage", "5", "--asr_config", "conf/train_asr_smoke.yaml"],
                     recipe)
    exp = recipe / "exp/asr_train_asr_smoke"
    assert (recipe / "data/token_list/bpe5000/bpe.model").is_file()
    assert list(exp.glob("valid.loss.ave*_best.safetensors")), out[-3000:]
    # The same SFT stage in 2 CPU processes: asr.sh -> run.pl -> utils/launch_train.sh -> torchrun (gloo DDP).
    out, t_ddp = run(["./run.sh", "--stage", "5", "--stop_stage", "5", "--asr_config", "conf/train_asr_smoke.yaml",
                      "--asr_tag", "smoke_2proc", "--train_nproc", "2", "--train_threads", "1"], recipe)
    log = (recipe / "exp/asr_smoke_2proc/train.log").read_text()
    assert "world size 2 (ddp)" in log and "torch.distributed.run --standalone" in \
        (recipe / "exp/asr_smoke_2proc/log/asr_train.log").read_text(), out[-3000:]
    assert (recipe / "exp/asr_smoke_2proc/checkpoints/latest").is_file()
    print(f"librispeech: data stages 1-3 {t_data:.0f} s, tokenizer + SFT stages 4-5 {t_sft:.0f} s, "
          f"2-process SFT {t_ddp:.0f} s")


@pytest.mark.slow
def test_aishell_recipe(tmp_path):
    recipe = copy_recipe(tmp_path, "aishell", "asr")
    make_aishell(recipe / "downloads")
    out, t_data = run(["./run.sh", "--stage", "1", "--stop_stage", "3", "--nj", "1",
                       "--local_data_opts", "--rl_pool_utts 2 --nj 1"], recipe)
    assert "skipped 1 utterance(s): audio without a transcript line" in out, "the official quirk is counted"
    for s in ("train", "rl_pool", "dev", "test"):
        validate(recipe, f"dump/fbank/{s}")
    text = read_table(str(recipe / "data/train/text")) | read_table(str(recipe / "data/rl_pool/text"))
    assert text["S0002-BAC009S0002W0121"].endswith("abc好"), "NFKC, punctuation and spaces removed"

    out, t_rest = run(["./run.sh", "--stage", "4", "--stop_stage", "7", "--asr_config", "conf/train_asr_smoke.yaml",
                       "--inference_nj", "1"], recipe)
    assert (recipe / "data/token_list/char5000/bpe.model").is_file()
    for s in ("dev", "test"):
        res = json.loads((recipe / f"exp/asr_train_asr_smoke/decode_{s}_beam1/score_char/result.json").read_text())
        assert res["unit"] == "char" if "unit" in res else True
        assert "%CER" in (recipe / f"exp/asr_train_asr_smoke/decode_{s}_beam1/score_char/result.txt").read_text()
    print(f"aishell: data stages 1-3 {t_data:.0f} s, tokenizer + SFT + decoding + CER stages 4-7 {t_rest:.0f} s")


@pytest.mark.slow
def test_libritts_recipe(tmp_path):
    recipe = copy_recipe(tmp_path, "libritts", "tts")
    make_libritts(recipe / "downloads")
    out, t_data = run(["./run.sh", "--stage", "1", "--stop_stage", "2", "--nj", "1",
                       "--local_data_opts", "--rl_pool_utts 2 --nj 1"], recipe)
    for s in ("train", "rl_pool", "dev", "test_clean"):
        validate(recipe, f"dump/fbank/{s}")
    text = read_table(str(recipe / "data/dev/text"))
    assert text["84-84_121123_000000_000000"].endswith("MR SMITH HE SAID")

    out, t_tok = run(["./run.sh", "--stage", "3", "--stop_stage", "4", "--nj", "1",
                      "--tokenizer_config", "conf/train_tokenizer_smoke.yaml"], recipe)
    assert (recipe / "data/token_list/bpe1000/bpe.model").is_file()
    assert (recipe / "exp/tokenizer_train_tokenizer_smoke/checkpoints/latest").exists(), out[-3000:]
    print(f"libritts: data stages 1-2 {t_data:.0f} s, text BPE + speech tokenizer stages 3-4 {t_tok:.0f} s")
