"""audiorl.eval.judge: the ASR judge sees exactly the features the ASR recipe computes (fbank conf + global CMVN),
decodes in memory as decode_utts does on dumped features, resolves the ASR experiment's relative paths against the
ASR recipe dir (not the caller's cwd), and scores a wav.scp into result.{txt,json} with per-utterance WERs."""

import json
import os

import numpy as np
import pytest
import torch

from audiorl.config import load_config
from audiorl.data.audio import write_wav
from audiorl.data.features import compute_cmvn_stats, compute_fbank_dir, load_cmvn, read_fbank_conf
from audiorl.data.kaldi import DataDirError, read_table, write_table
from audiorl.data.tokenizer import train_tokenizer
from audiorl.eval.judge import ASRJudge, judge_wer
from audiorl.tasks.asr import ASRTask, ASRTrainConfig, FeatsData, decode_utts
from audiorl.train.trainer import Trainer

WORDS = "the cat sat on a mat and then it ran to the big red barn".split()


@pytest.fixture(scope="module")
def asr_recipe(tmp_path_factory):
    """A tiny ASR recipe dir: data, fbank dump + CMVN, BPE, conf/fbank.conf and a 2-step SFT experiment whose
    config.yaml holds paths relative to the recipe dir (as asr.sh writes them)."""
    root = tmp_path_factory.mktemp("asr")
    rng = np.random.default_rng(0)
    (root / "conf").mkdir()
    (root / "conf/fbank.conf").write_text("--sample-frequency=16000\n--num-mel-bins=40\n--dither=0.0\n")
    data = root / "data/train"
    data.mkdir(parents=True)
    wav, text, u2s = {}, {}, {}
    for i in range(6):
        u = f"s{i % 2}-u{i}"
        path = root / "wav" / f"{u}.wav"
        write_wav(str(path), (0.2 * rng.standard_normal(int(16000 * (0.5 + 0.1 * i)))).astype(np.float32), 16000)
        wav[u], text[u], u2s[u] = str(path), " ".join(rng.choice(WORDS, size=3)), f"s{i % 2}"
    for name, table in (("wav.scp", wav), ("text", text), ("utt2spk", u2s)):
        write_table(str(data / name), table)
    dump = root / "dump/fbank/train"
    dump.mkdir(parents=True)
    for name in ("wav.scp", "text", "utt2spk"):
        (dump / name).write_bytes((data / name).read_bytes())
    compute_fbank_dir(str(data), str(dump / "raw"), fbank_opts=read_fbank_conf(str(root / "conf/fbank.conf")))
    os.replace(dump / "raw.scp", dump / "feats.scp")
    os.replace(dump / "raw.utt2num_frames", dump / "utt2num_frames")
    compute_cmvn_stats(str(dump / "feats.scp"), str(dump / "cmvn.ark"))
    (root / "data/token_list").mkdir()
    train_tokenizer(list(text.values()) * 5, str(root / "data/token_list/bpe"), 30, "bpe")
    cwd = os.getcwd()
    os.chdir(root)
    try:
        cfg = load_config(ASRTrainConfig, overrides=[
            "--data.train_dir", "dump/fbank/train", "--data.valid_dir", "", "--data.token_model",
            "data/token_list/bpe.model", "--data.cmvn", "dump/fbank/train/cmvn.ark",
            "--model.encoder.n_mels", "40", "--model.encoder.input_norm", "none",
            "--model.encoder.dim", "32", "--model.encoder.n_layers", "1", "--model.encoder.n_heads", "2",
            "--model.encoder.ffn_dim", "64", "--model.encoder.subsample_channels", "8", "--model.encoder.block",
            "transformer", "--model.adaptor.hidden_dim", "32", "--model.llm.dim", "32", "--model.llm.n_layers", "1",
            "--model.llm.n_heads", "2", "--model.llm.n_kv_heads", "1", "--model.llm.intermediate_size", "64",
            "--model.llm.max_seq_len", "256", "--train.max_steps", "2", "--train.batch_size", "3",
            "--train.save_interval", "2", "--train.progress_bar", "false", "--train.tensorboard", "false",
            "--train.scheduler.warmup_steps", "1"])
        task = ASRTask(cfg)
        Trainer(task, task.cfg.train, "exp/asr_tiny", config=task.cfg).fit()
    finally:
        os.chdir(cwd)
    return root


def test_judge_matches_the_asr_recipe_features_and_decoding(asr_recipe, tmp_path, monkeypatch):
    # A TTS-like cwd with a tokenizer of its own at the same relative path: the judge must not pick it up.
    (tmp_path / "data/token_list").mkdir(parents=True)
    (tmp_path / "data/token_list/bpe.model").write_bytes(b"not a model")
    monkeypatch.chdir(tmp_path)
    judge = ASRJudge.load(os.path.relpath(asr_recipe / "exp/asr_tiny"))
    assert judge.fbank_opts["num_mel_bins"] == 40  # from <asr_dir>/conf/fbank.conf
    dump = asr_recipe / "dump/fbank/train"
    mean, std = load_cmvn(str(dump / "cmvn.ark"))
    data = FeatsData(str(dump), judge.tokens, str(dump / "cmvn.ark"))
    wavs = read_table(str(asr_recipe / "data/train/wav.scp"))
    from audiorl.data.audio import load_wav_scp_entry

    utts = sorted(wavs)
    waves = [load_wav_scp_entry(wavs[u])[0] for u in utts]
    for u, w in zip(utts, waves):
        assert np.allclose(judge.features(w, 16000), data.load(u), atol=1e-4)
    hyps = judge.transcribe(waves, 16000)
    ref = decode_utts(judge.model, data, judge.tokens, utts, torch.device("cpu"))
    assert hyps == [ref[u] for u in utts]
    # a torch tensor at another rate is resampled; a clip shorter than one frame gives ''
    assert judge.transcribe([torch.from_numpy(waves[0]), np.zeros(100, np.float32)], [16000, 16000])[1] == ""

    texts = read_table(str(asr_recipe / "data/train/text"))
    wers, hyps2 = judge_wer(judge, waves, [texts[u] for u in utts])
    assert hyps2 == hyps and len(wers) == len(utts) and all(w >= 0 for w in wers)

    out = tmp_path / "judge"
    res = judge.score_scp(str(asr_recipe / "data/train/wav.scp"), str(asr_recipe / "data/train/text"), str(out),
                          utt2spk=str(asr_recipe / "data/train/utt2spk"))
    assert read_table(str(out / "text"), allow_empty_value=True) == dict(zip(utts, hyps))
    js = json.loads((out / "score_word/result.json").read_text())
    assert js["totals"]["wrd"] == res.totals.wrd > 0
    assert "SPKR" in (out / "score_word/result.txt").read_text()
    per = {u: (c["sub"] + c["del"] + c["ins"]) / (c["corr"] + c["sub"] + c["del"]) for u, c in js["utts"].items()}
    assert [per[u] for u in utts] == pytest.approx(wers)
    assert json.loads((out / "rtf.json").read_text())["utts"] == len(utts)


def test_judge_bad_input(asr_recipe, tmp_path):
    with pytest.raises(FileNotFoundError, match="train the ASR judge"):
        ASRJudge.load(str(tmp_path / "exp/nothing"))
    with pytest.raises(FileNotFoundError, match="--asr_dir"):
        ASRJudge.load(str(asr_recipe / "exp/asr_tiny"), asr_dir=str(tmp_path))
    judge = ASRJudge.load(str(asr_recipe / "exp/asr_tiny"))
    bad = tmp_path / "wav.scp"
    bad.write_text(f"stranger {read_table(str(asr_recipe / 'data/train/wav.scp'))['s0-u0']}\n")
    with pytest.raises(DataDirError, match="no reference"):
        judge.score_scp(str(bad), str(asr_recipe / "data/train/text"), str(tmp_path / "out"))
    with pytest.raises(ValueError, match="fbank bins"):
        ASRJudge.load(str(asr_recipe / "exp/asr_tiny"), fbank_conf="")  # 80-bin defaults vs a 40-bin model
