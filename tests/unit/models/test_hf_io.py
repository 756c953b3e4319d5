"""Pretrained LLM initialisation (model.init_llm) and export to Hugging Face format (audiorl.bin.export_hf), on a
tiny random Qwen2 + WordLevel tokenizer.json written with transformers / tokenizers (tests/hf_tiny.py; nothing is
downloaded)."""

import json
import pickle
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from audiorl.config import load_config, save_config  # noqa: E402
from audiorl.data.features import compute_cmvn_stats, load_cmvn  # noqa: E402
from audiorl.data.hf_tokenizer import HFTokenizer  # noqa: E402
from audiorl.data.kaldi import write_table  # noqa: E402
from audiorl.data.tokenizer import load_tokenizer, train_tokenizer  # noqa: E402
from audiorl.models.hf_init import (load_pretrained_llm, pretrained_llm_config, pretrained_tokenizer,  # noqa: E402
                                    resize_vocab)
from audiorl.models.llm import build_llm  # noqa: E402
from audiorl.models.tts_lm import SpeechSamplingConfig  # noqa: E402
from audiorl.tasks import tts as T  # noqa: E402
from audiorl.tasks.asr import ASRTask, ASRTokens, ASRTrainConfig, FeatsData, load_asr_model  # noqa: E402
from audiorl.tasks.hf_export import export_experiment, load_hf_export  # noqa: E402
from audiorl.train.trainer import Trainer  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from hf_tiny import WORDS, write_hf_dir  # noqa: E402

LOOP = ["--train.max_steps", "2", "--train.log_interval", "1", "--train.valid_interval", "2", "--train.save_interval",
        "2", "--train.progress_bar", "false", "--train.tensorboard", "false", "--train.scheduler.warmup_steps", "1",
        "--train.batch_size", "3"]


@pytest.fixture(scope="module")
def hf(tmp_path_factory):
    d = tmp_path_factory.mktemp("qwen_tiny")
    model, n_text = write_hf_dir(d)
    return d, model, n_text


def hf_logits(model, ids):
    with torch.no_grad():
        return model(ids).logits


# ------------------------------------------------------------------------------------------------ tokenizer
def test_hf_tokenizer_has_the_sentencepiece_interface(hf, tmp_path):
    d, _, n_text = hf
    tok = load_tokenizer(str(d))
    assert isinstance(tok, HFTokenizer) and tok.vocab_size == len(tok) == n_text
    ids = tok.encode("the cat sat")
    assert len(ids) == 3 and tok.decode(ids) == "the cat sat"
    assert tok.decode(ids + [tok.piece_to_id("<|endoftext|>")]) == "the cat sat"  # specials never reach the text
    assert tok.id_to_piece(ids[1]) == "cat" and tok.piece_to_id("zebra") == tok.unk_id == 0
    assert pickle.loads(pickle.dumps(tok)).encode("big red barn") == tok.encode("big red barn")
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.decode([n_text])
    t = ASRTokens(str(d / "tokenizer.json"))  # a file works as well as the directory
    assert (t.text_vocab_size, t.eos_id, t.vocab_size) == (n_text, n_text, n_text + 2)
    assert t.decode(ids + [t.eos_id, t.transcribe_id]) == "the cat sat"
    with pytest.raises(FileNotFoundError, match="tokenizer.json"):
        load_tokenizer(str(tmp_path))


# ------------------------------------------------------------------------------------------------ init
@pytest.mark.parametrize("tie", [True, False])
def test_pretrained_llm_logits_and_new_rows(tmp_path, tie):
    ref, n_text = write_hf_dir(tmp_path, tie=tie, seed=1)
    V = n_text + 5
    cfg = pretrained_llm_config(str(tmp_path), V, max_seq_len=128)
    assert (cfg.dim, cfg.n_layers, cfg.n_kv_heads, cfg.tie_embeddings, cfg.max_seq_len) == (32, 2, 2, tie, 128)
    llm = load_pretrained_llm(str(tmp_path), cfg, n_text).eval()
    assert llm.config == cfg and llm.output.weight.shape == (V, 32)
    ids = torch.randint(0, n_text, (2, 9))
    with torch.no_grad():  # text logits are transformers' (its padding rows are dropped)
        torch.testing.assert_close(llm(ids)[..., :n_text], hf_logits(ref, ids)[..., :n_text], atol=1e-5, rtol=1e-5)
    for w, src in ((llm.tok_embeddings.weight, ref.model.embed_tokens.weight), (llm.output.weight, ref.lm_head.weight)):
        new, old = w[n_text:].detach(), src[:n_text].detach()
        assert ((new - old.mean(0)).abs() <= 0.1 * old.std(0)).all()  # mean + a little noise
        assert not torch.equal(new[0], new[1])
    assert (llm.output.weight is llm.tok_embeddings.weight) == tie


def test_resize_vocab_keeps_rows_in_place():
    llm = build_llm("tiny", vocab_size=20, tie_embeddings=False)
    emb, out = llm.tok_embeddings.weight.detach().clone(), llm.output.weight.detach().clone()
    resize_vocab(llm, 12, 15)
    assert llm.config.vocab_size == 15 and llm.tok_embeddings.num_embeddings == 15
    assert torch.equal(llm.tok_embeddings.weight[:12], emb[:12]) and torch.equal(llm.output.weight[:12], out[:12])
    assert llm(torch.tensor([[1, 14]])).shape == (1, 2, 15)


# ------------------------------------------------------------------------------------------------ ASR
@pytest.fixture(scope="module")
def feats_dir(tmp_path_factory):
    rng = np.random.default_rng(0)
    d = tmp_path_factory.mktemp("asr") / "train"
    d.mkdir()
    text, frames = {}, {}
    with kaldiio.WriteHelper(f"ark,scp:{d}/feats.ark,{d}/feats.scp") as w:
        for i in range(6):
            utt, n = f"spk{i % 2}-utt{i:02d}", 40 + 10 * i
            w(utt, rng.standard_normal((n, 80)).astype(np.float32))
            text[utt], frames[utt] = " ".join(rng.choice(WORDS, size=2 + i % 3)), n
    write_table(str(d / "text"), text)
    write_table(str(d / "utt2num_frames"), frames)
    return d


def _asr_cfg(d, *extra):
    return load_config(ASRTrainConfig, overrides=[
        "--data.train_dir", str(d), "--data.valid_dir", str(d), "--data.valid_decode_utts", "2",
        "--model.encoder.dim", "16", "--model.encoder.n_layers", "1", "--model.encoder.n_heads", "2",
        "--model.encoder.ffn_dim", "32", "--model.encoder.subsample_channels", "4", "--model.encoder.block",
        "transformer", "--model.adaptor.hidden_dim", "16", "--model.llm.max_seq_len", "256", *LOOP, *extra])


def _asr_batch(data_dir, tokens, cmvn=""):
    data = FeatsData(str(data_dir), tokens, cmvn)
    return data, data.collate(data.utt_ids()[:3])


def test_asr_from_pretrained_train_export_reload(hf, feats_dir, tmp_path):
    d, ref, n_text = hf
    compute_cmvn_stats(str(feats_dir / "feats.scp"), str(tmp_path / "cmvn.ark"))
    task = ASRTask(_asr_cfg(feats_dir, "--model.init_llm", str(d), "--data.cmvn", str(tmp_path / "cmvn.ark")))
    # data.token_model is the (missing) BPE default: init_llm's tokenizer replaces it
    m = task.cfg.model
    assert task.cfg.data.token_model == str(d) and isinstance(task.tokens.sp, HFTokenizer)
    assert (m.text_vocab_size, m.vocab_size, m.llm.dim, m.llm.n_layers) == (n_text, n_text + 2, 32, 2)
    text = task.train_data.text[task.train_data.utt_ids()[0]]
    assert task.train_data.ids[task.train_data.utt_ids()[0]] == task.tokens.sp.encode(text)  # HF ids, not BPE
    llm = task.build_model().llm.eval()
    ids = torch.tensor([task.tokens.encode("the big red barn near old town")])
    with torch.no_grad():
        torch.testing.assert_close(llm(ids)[..., :n_text], hf_logits(ref, ids)[..., :n_text], atol=1e-5, rtol=1e-5)

    exp = tmp_path / "exp"
    out = Trainer(task, task.cfg.train, exp, config=task.cfg).fit()
    assert out["step"] == 2 and "wer" in out["valid"]
    model, cfg, tokens, _ = load_asr_model(str(exp))  # config.yaml alone rebuilds it (tokenizer = the HF dir)
    assert cfg.model.llm == m.llm and isinstance(tokens.sp, HFTokenizer)

    info = export_experiment(str(exp), str(tmp_path / "hf_out"))
    assert info["kind"] == "asr" and info["tokenizer"] == "tokenizer.json"
    back = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "hf_out").eval()
    all_ids = torch.arange(m.vocab_size)[None]  # every id: text and the two new ones
    with torch.no_grad():
        torch.testing.assert_close(hf_logits(back, all_ids), model.llm(all_ids), atol=1e-5, rtol=1e-5)
    assert (tmp_path / "hf_out" / "tokenizer.json").read_text() == (d / "tokenizer.json").read_text()

    ex = load_hf_export(str(tmp_path / "hf_out"))
    assert ex.kind == "asr" and ex.tokens.vocab_size == tokens.vocab_size
    assert [a.tolist() for a in load_cmvn(ex.cmvn)] == [a.tolist() for a in load_cmvn(str(tmp_path / "cmvn.ark"))]
    _, b = _asr_batch(feats_dir, ex.tokens, ex.cmvn)
    with torch.no_grad():
        args = (b["feats"], b["feat_lens"], None, b["target_ids"], b["target_lens"])
        torch.testing.assert_close(ex.model(*args)["loss"], model(*args)["loss"])
        assert ex.model.transcribe(b["feats"], b["feat_lens"], max_new_tokens=5) == \
            model.transcribe(b["feats"], b["feat_lens"], max_new_tokens=5)


def test_sentencepiece_asr_with_lora_exports(feats_dir, tmp_path):
    """A model trained with the recipe's own BPE: the LLM still exports (LoRA merged), the tokenizer as a .model."""
    bpe = train_tokenizer(WORDS * 4, str(tmp_path / "bpe"), 30, "bpe")
    task = ASRTask(_asr_cfg(feats_dir, "--data.token_model", bpe.model_path, "--model.llm.dim", "32",
                            "--model.llm.n_layers", "1", "--model.llm.n_heads", "2", "--model.llm.n_kv_heads", "1",
                            "--model.llm.intermediate_size", "64", "--model.lora", "{rank: 2}"))
    model = task.build_model()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_b" in name:
                p.normal_(std=0.1)  # B = 0 at init: make the merge change something
    exp = tmp_path / "exp"
    exp.mkdir()
    save_config(task.cfg, exp / "config.yaml")
    from safetensors.torch import save_model
    save_model(model, str(exp / "w.safetensors"))
    from audiorl.bin import export_hf
    assert export_hf.main(["--exp_dir", str(exp), "--out_dir", str(tmp_path / "out"),
                           "--checkpoint", str(exp / "w.safetensors")]) == 0
    assert (tmp_path / "out" / "text_tokenizer.model").is_file() and not (tmp_path / "out" / "tokenizer.json").exists()
    ex = load_hf_export(str(tmp_path / "out"))
    assert ex.model.config.lora is None and ex.tokens.encode("the cat") == bpe.encode("the cat")
    back = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "out").eval()
    _, b = _asr_batch(feats_dir, ex.tokens)
    model.eval()
    with torch.no_grad():
        ids = torch.arange(task.cfg.model.vocab_size)[None]
        torch.testing.assert_close(hf_logits(back, ids), model.llm(ids), atol=1e-5, rtol=1e-5)
        args = (b["feats"], b["feat_lens"], None, b["target_ids"], b["target_lens"])
        torch.testing.assert_close(ex.model(*args)["loss"], model(*args)["loss"], atol=1e-5, rtol=1e-5)
    export_experiment(str(exp), str(tmp_path / "bf16"), str(exp / "w.safetensors"), dtype=torch.bfloat16)
    from safetensors.torch import load_file
    assert {v.dtype for v in load_file(tmp_path / "bf16" / "model.safetensors").values()} == {torch.bfloat16}
    assert load_hf_export(str(tmp_path / "bf16")).model.llm.output.weight.dtype == torch.float32


# ------------------------------------------------------------------------------------------------ TTS LM
def _tts_data(root, codebook: int, spk_dim: int):
    rng = np.random.default_rng(1)
    d = root / "data"
    d.mkdir(parents=True)
    texts = {f"u{i}": " ".join(rng.choice(WORDS, size=2 + i % 3)) for i in range(6)}
    write_table(str(d / "text"), texts)
    with kaldiio.WriteHelper(f"ark,scp:{d}/tokens.ark,{d}/tokens.scp") as w:
        for u in texts:
            w(u, rng.integers(0, codebook, size=int(rng.integers(5, 12))).astype(np.int32))
    with kaldiio.WriteHelper(f"ark,scp:{d}/spk.ark,{d}/spk.scp") as w:
        for u in texts:
            w(u, rng.standard_normal(spk_dim).astype(np.float32))
    return d


def test_tts_lm_from_pretrained_train_export_reload(hf, tmp_path):
    d, ref, n_text = hf
    data = _tts_data(tmp_path, codebook=12, spk_dim=4)
    cfg = load_config(T.TTSLMTrainConfig, overrides=[
        "--data.train_dir", str(data), "--data.valid_dir", str(data), "--data.tokenizer_exp", "",
        "--data.codebook_size", "12", "--data.train_tokens", str(data / "tokens.scp"),
        "--data.valid_tokens", str(data / "tokens.scp"), "--data.train_spk_embed", str(data / "spk.scp"),
        "--data.valid_spk_embed", str(data / "spk.scp"), "--model.spk_embed_dim", "4", "--model.init_llm", str(d),
        "--model.llm.max_seq_len", "128", *LOOP])
    task = T.TTSLMTask(cfg)
    m = task.cfg.model
    assert task.cfg.data.token_model == str(d) and (m.text_vocab_size, m.vocab_size) == (n_text, n_text + 12 + 3)
    llm = task.build_model().llm.eval()
    ids = torch.tensor([task.text.encode("the cat sat on a mat")])
    with torch.no_grad():
        torch.testing.assert_close(llm(ids)[..., :n_text], hf_logits(ref, ids)[..., :n_text], atol=1e-5, rtol=1e-5)

    exp = tmp_path / "exp"
    assert Trainer(task, task.cfg.train, exp, config=task.cfg).fit()["step"] == 2
    lm = T.load_tts_lm(str(exp)).model
    info = export_experiment(str(exp), str(tmp_path / "out"), dtype=None)
    assert info["kind"] == "tts_lm"
    back = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "out").eval()
    all_ids = torch.arange(m.vocab_size)[None]
    with torch.no_grad():
        torch.testing.assert_close(hf_logits(back, all_ids), lm.llm(all_ids), atol=1e-5, rtol=1e-5)
    ex = load_hf_export(str(tmp_path / "out"))
    b = task.train_data.collate(sorted(task.train_data.lengths)[:3])
    with torch.no_grad():
        args = (b["text_ids"], b["text_lens"], b["speech_ids"], b["speech_lens"], b["spk"])
        torch.testing.assert_close(ex.model(*args)["loss"], lm(*args)["loss"])
        greedy = SpeechSamplingConfig(max_new_tokens=6, temperature=0.0, loop_window=0)
        assert ex.model.generate(*args[:2], b["spk"], greedy).speech_ids() == \
            lm.generate(*args[:2], b["spk"], greedy).speech_ids()


# ------------------------------------------------------------------------------------------------ bad input
def test_bad_pretrained_dirs_name_the_file_and_fix(hf, tmp_path):
    d, _, n_text = hf
    with pytest.raises(FileNotFoundError, match=r"config.json: no such file; model.init_llm must be"):
        pretrained_llm_config(str(tmp_path), 50, 128)
    bad = tmp_path / "llama"
    shutil.copytree(d, bad)
    cfg = json.loads((bad / "config.json").read_text())
    (bad / "config.json").write_text(json.dumps({**cfg, "model_type": "llama", "architectures": ["LlamaForCausalLM"]}))
    with pytest.raises(ValueError, match=r"llama/config.json: model_type 'llama' .* is not Qwen2"):
        pretrained_llm_config(str(bad), 50, 128)
    (bad / "config.json").write_text(json.dumps({**cfg, "intermediate_size": 48}))  # weights are 64 wide
    c = pretrained_llm_config(str(bad), n_text + 2, 128)
    with pytest.raises(ValueError, match=r"has shape .* config.json implies .* download or save the directory again"):
        load_pretrained_llm(str(bad), c, n_text)
    with pytest.raises(ValueError, match=r"model.llm differs from .*config.json in \{'dim'"):
        load_pretrained_llm(str(d), replace(pretrained_llm_config(str(d), n_text + 2, 128), dim=64), n_text)
    with pytest.raises(FileNotFoundError, match=r"config.json: no such file"):  # checked before the tokenizer
        pretrained_tokenizer(str(tmp_path), "data/token_list/bpe/bpe.model")
    notok = tmp_path / "notok"
    shutil.copytree(d, notok)
    (notok / "tokenizer.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"notok/tokenizer.json: no such file; .*save_pretrained"):
        ASRTokens(pretrained_tokenizer(str(notok), "data/token_list/bpe/bpe.model"))
    with pytest.raises(FileNotFoundError, match="audiorl_config.yaml: no such file; not an audiorl export"):
        load_hf_export(str(d))
    from audiorl.bin import export_hf
    assert export_hf.main(["--exp_dir", str(tmp_path / "nope"), "--out_dir", str(tmp_path / "o")]) == 1
