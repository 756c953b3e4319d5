"""audiorl.tasks.asr: token layout, feature batches (with counted skips), decoding batches, model loading."""

import kaldiio
import numpy as np
import pytest
import torch

from audiorl.config import load_config
from audiorl.data.kaldi import DataDirError, write_table
from audiorl.data.tokenizer import train_tokenizer
from audiorl.tasks import asr as asr_task
from audiorl.tasks.asr import ASRTask, ASRTokens, ASRTrainConfig, FeatsData, decode_utts, load_asr_model
from audiorl.train.trainer import Trainer

WORDS = "the cat sat on a mat and then it ran to the big red barn near old town".split()


@pytest.fixture()
def feats_dir(tmp_path):
    rng = np.random.default_rng(0)
    d = tmp_path / "dump" / "train"
    d.mkdir(parents=True)
    text, frames = {}, {}
    with kaldiio.WriteHelper(f"ark,scp:{d}/feats.ark,{d}/feats.scp") as w:
        for i in range(12):
            utt = f"spk{i % 2}-utt{i:02d}"
            n = 40 + 10 * i
            w(utt, rng.standard_normal((n, 80)).astype(np.float32))
            text[utt] = " ".join(rng.choice(WORDS, size=3 + i % 4))
            frames[utt] = n
    write_table(str(d / "text"), text)
    write_table(str(d / "utt2num_frames"), frames)
    tok = train_tokenizer(list(text.values()) * 5, str(tmp_path / "bpe"), 40, "bpe")
    return d, tmp_path / "bpe.model", tok


def test_token_layout(feats_dir):
    _, model_path, tok = feats_dir
    t = ASRTokens(str(model_path))
    assert (t.eos_id, t.transcribe_id, t.vocab_size) == (tok.vocab_size, tok.vocab_size + 1, tok.vocab_size + 2)
    ids = t.encode("the cat sat")
    assert t.decode(ids + [t.eos_id, t.transcribe_id]) == "the cat sat"  # specials never reach the text
    cfg = t.fill(ASRTrainConfig().model)
    assert cfg.prompt_ids == (t.transcribe_id,) and cfg.pad_id == t.eos_id
    with pytest.raises(ValueError, match="vocab_size"):
        t.fill(load_config(ASRTrainConfig, overrides=["--model.vocab_size", "7"]).model)
    with pytest.raises(FileNotFoundError, match="tokenizer"):
        ASRTokens(str(model_path) + ".missing")


def test_feats_data_skips_are_counted_not_silent(feats_dir, caplog):
    d, model_path, _ = feats_dir
    t = ASRTokens(str(model_path))
    data = FeatsData(str(d), t, max_frames=100)
    assert len(data.frames) == 7 and max(data.frames.values()) <= 100
    assert "skipped 5 (too many frames)" in caplog.text
    b = data.collate(data.utt_ids()[:3])
    assert b["feats"].shape == (3, max(b["feat_lens"]), 80)
    assert b["target_ids"].shape[0] == 3 and int(b["target_lens"].min()) > 0
    with pytest.raises(DataDirError, match="make_fbank"):
        FeatsData(str(d.parent / "nope"), t)


def _tiny_cfg(d, model_path, exp_overrides=()):
    return load_config(ASRTrainConfig, overrides=[
        "--data.train_dir", str(d), "--data.valid_dir", str(d), "--data.token_model", str(model_path),
        "--data.valid_decode_utts", "4",
        "--model.encoder.dim", "32", "--model.encoder.n_layers", "1", "--model.encoder.n_heads", "2",
        "--model.encoder.ffn_dim", "64", "--model.encoder.subsample_channels", "8",
        "--model.encoder.block", "transformer", "--model.adaptor.hidden_dim", "32",
        "--model.llm.dim", "32", "--model.llm.n_layers", "1", "--model.llm.n_heads", "2",
        "--model.llm.n_kv_heads", "1", "--model.llm.intermediate_size", "64", "--model.llm.max_seq_len", "256",
        "--train.max_steps", "4", "--train.batch_size", "4", "--train.log_interval", "2",
        "--train.valid_interval", "4", "--train.save_interval", "4", "--train.progress_bar", "false",
        "--train.tensorboard", "false", "--train.scheduler.warmup_steps", "1", *exp_overrides])


def test_train_then_decode_both_modes(feats_dir, tmp_path, monkeypatch):
    d, model_path, _ = feats_dir
    cfg = _tiny_cfg(d, model_path)
    task = ASRTask(cfg)
    out = Trainer(task, task.cfg.train, tmp_path / "exp", config=task.cfg).fit()
    assert out["step"] == 4 and "wer" in out["valid"]
    model, cfg2, tokens, ckpt = load_asr_model(str(tmp_path / "exp"))
    assert cfg2.model.vocab_size == tokens.vocab_size and ckpt.endswith("checkpoints/step_4") or "ave" in ckpt
    data = FeatsData(str(d), tokens, need_text=False)
    utts = data.utt_ids()
    # Every decoding batch respects the padded-frame bound (the longest item x the count).
    seen = []
    real = asr_task.FeatsData.collate
    monkeypatch.setattr(asr_task.FeatsData, "collate", lambda self, us: seen.append(us) or real(self, us))
    hyps = decode_utts(model, data, tokens, utts, torch.device("cpu"), max_frames=300)
    assert set(hyps) == set(utts)
    assert all(max(data.frames[u] for u in b) * len(b) <= 300 or len(b) == 1 for b in seen)
    ctc = decode_utts(model, data, tokens, utts, torch.device("cpu"), mode="ctc")
    assert set(ctc) == set(utts)
    with pytest.raises(ValueError, match="mode"):
        decode_utts(model, data, tokens, utts, torch.device("cpu"), mode="rnnt")


def test_load_asr_model_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.yaml"):
        load_asr_model(str(tmp_path))
