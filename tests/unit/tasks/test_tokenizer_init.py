"""Speech tokenizer started from a trained ASR encoder (init.asr_exp): shape, CMVN, weights, text units, freezing."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from audiorl.config import load_config
from audiorl.data.audio import write_wav
from audiorl.data.features import apply_cmvn, compute_cmvn_stats, compute_fbank_dir, load_cmvn
from audiorl.data.kaldi import write_table
from audiorl.data.tokenizer import train_tokenizer
from audiorl.models.encoder import AudioEncoder, EncoderConfig
from audiorl.tasks import tts as T
from audiorl.tasks.asr import ASRTask, ASRTrainConfig, load_asr_model
from audiorl.train.trainer import Trainer

WORDS = "the cat sat on a mat and then it ran to the big red barn".split()
QUIET = ["--train.progress_bar", "false", "--train.tensorboard", "false", "--train.scheduler.warmup_steps", "1"]


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    """<root>/asr: a 2-step conformer ASR SFT (global CMVN, CTC head) with recipe-relative paths in its config.yaml;
    <root>/tts/dump/fbank/{train,dev}: the same features without CMVN, as tts.sh stage 2 writes them."""
    root = tmp_path_factory.mktemp("tokinit")
    asr = root / "asr"
    rng = np.random.default_rng(0)
    texts = []
    for name, n in (("train", 8), ("dev", 3)):
        data = asr / "data" / name
        data.mkdir(parents=True)
        wav, text, u2s = {}, {}, {}
        for i in range(n):
            u = f"s{i % 2}-{name}-{i}"
            path = root / "wav" / f"{u}.wav"
            write_wav(str(path), (0.2 * rng.standard_normal(int(16000 * (0.5 + 0.1 * i)))).astype(np.float32), 16000)
            wav[u], text[u], u2s[u] = str(path), " ".join(rng.choice(WORDS, size=3)), f"s{i % 2}"
        for t in (("wav.scp", wav), ("text", text), ("utt2spk", u2s)):
            write_table(str(data / t[0]), t[1])
        texts += list(text.values())
        for top in (asr, root / "tts"):
            dump = top / "dump/fbank" / name
            dump.mkdir(parents=True, exist_ok=True)
            for f in ("wav.scp", "text", "utt2spk"):
                (dump / f).write_bytes((data / f).read_bytes())
            compute_fbank_dir(str(data), str(dump / "raw"))
            os.replace(dump / "raw.scp", dump / "feats.scp")
            os.replace(dump / "raw.utt2num_frames", dump / "utt2num_frames")
    compute_cmvn_stats(str(asr / "dump/fbank/train/feats.scp"), str(asr / "dump/fbank/train/cmvn.ark"))
    (asr / "data/token_list").mkdir()
    train_tokenizer(texts * 5, str(asr / "data/token_list/bpe"), 30, "bpe")
    train_tokenizer(texts * 5, str(root / "tts/bpe40"), 40, "bpe")
    cwd = os.getcwd()
    os.chdir(asr)
    try:
        cfg = load_config(ASRTrainConfig, overrides=[
            "--data.train_dir", "dump/fbank/train", "--data.valid_dir", "", "--data.token_model",
            "data/token_list/bpe.model", "--data.cmvn", "dump/fbank/train/cmvn.ark", "--model.ctc_weight", "0.5",
            "--model.encoder.input_norm", "none", "--model.encoder.dim", "32", "--model.encoder.n_layers", "3",
            "--model.encoder.n_heads", "2", "--model.encoder.ffn_dim", "64", "--model.encoder.subsample_channels",
            "8", "--model.encoder.block", "conformer", "--model.encoder.conv_kernel", "5",
            "--model.adaptor.hidden_dim", "32", "--model.llm.dim", "32", "--model.llm.n_layers", "1",
            "--model.llm.n_heads", "2", "--model.llm.n_kv_heads", "1", "--model.llm.intermediate_size", "64",
            "--model.llm.max_seq_len", "256", "--train.max_steps", "2", "--train.batch_size", "4",
            "--train.save_interval", "2", *QUIET])
        task = ASRTask(cfg)
        Trainer(task, task.cfg.train, "exp/asr_tiny", config=task.cfg).fit()
    finally:
        os.chdir(cwd)
    return root


def _cfg(root, *extra):
    t = root / "tts"
    return load_config(T.SpeechTokenizerTrainConfig, overrides=[
        "--data.train_dir", str(t / "dump/fbank/train"), "--data.valid_dir", str(t / "dump/fbank/dev"),
        "--data.token_model", "", "--data.valid_decode_utts", "2", "--init.asr_exp", str(root / "asr/exp/asr_tiny"),
        "--model.quantize_after", "2", "--model.encoder.specaug", "false", "--model.quantizer.levels", "[5, 3, 3]",
        "--train.max_steps", "2", "--train.max_frames", "400", "--train.log_interval", "1", "--train.valid_interval",
        "2", "--train.save_interval", "2", *QUIET, *extra])


def test_global_input_norm_equals_cmvn_in_the_loader():
    torch.manual_seed(0)
    c = EncoderConfig(n_mels=12, dim=16, n_layers=1, n_heads=2, ffn_dim=32, dropout=0.0, specaug=False,
                      input_norm="none")
    plain = AudioEncoder(c).eval()
    held = AudioEncoder(EncoderConfig(**{**c.__dict__, "input_norm": "global"})).eval()
    held.load_state_dict({**plain.state_dict(), "cmvn_mean": held.cmvn_mean, "cmvn_std": held.cmvn_std})
    mean, std = np.linspace(-3, 3, 12).astype(np.float32), np.linspace(0.5, 2, 12).astype(np.float32)
    held.set_cmvn(mean, std)
    x, lens = 2 + 3 * torch.randn(2, 40, 12), torch.tensor([40, 25])
    normed = apply_cmvn(x, mean, std) * (torch.arange(40)[None, :, None] < lens[:, None, None])  # loader: pad = 0
    a, _ = held(x, lens)
    b, _ = plain(normed, lens)
    assert torch.allclose(a, b, atol=1e-5)
    assert {"cmvn_mean", "cmvn_std"} <= set(held.state_dict())  # saved with the weights
    with pytest.raises(AssertionError, match="input_norm='global'"):
        plain.set_cmvn(mean, std)


def test_tokenizer_starts_from_the_asr_encoder(recipe):
    task = T.SpeechTokenizerTask(_cfg(recipe))
    asr, acfg, _, _ = load_asr_model(str(recipe / "asr/exp/asr_tiny"), base_dir=str(recipe / "asr"))
    e = task.cfg.model.encoder
    assert (e.dim, e.n_layers, e.block, e.input_norm) == (32, 3, "conformer", "global")
    assert task.cfg.model.text_vocab_size == 30 and task.cfg.data.token_model.endswith("asr/data/token_list/bpe.model")
    model = task.build_model().eval()
    ref = asr.encoder.state_dict()
    got = model.state_dict()
    for name, v in ref.items():  # every ASR encoder tensor lands in its place
        if name.startswith("blocks."):
            i, rest = name.split(".", 2)[1:]
            dst = f"encoder.blocks.{i}.{rest}" if int(i) < 2 else f"post.{int(i) - 2}.{rest}"
        elif name.startswith(("ctc_head.", "norm.")):
            dst = name
        else:
            dst = f"encoder.{name}"
        assert torch.equal(got[dst], v), dst
    mean, std = load_cmvn(str(recipe / "asr/dump/fbank/train/cmvn.ark"))
    assert np.allclose(got["encoder.cmvn_mean"].numpy(), mean) and np.allclose(got["encoder.cmvn_std"].numpy(), std)
    # Below the quantiser the tokenizer computes what the ASR encoder's first two blocks compute on CMVN'd input.
    import kaldiio

    feats = kaldiio.load_scp(str(recipe / "tts/dump/fbank/train/feats.scp"))
    x = torch.from_numpy(np.array(next(iter(feats.values()))))[None]
    n = torch.tensor([x.shape[1]])
    enc = model.encoder
    h_tok = enc.subsample(((x - enc.cmvn_mean) / enc.cmvn_std), n)[0]
    h_asr = asr.encoder.subsample(apply_cmvn(x, mean, std), n)[0]
    assert torch.allclose(h_tok, h_asr, atol=1e-5)


def test_init_trains_resumes_and_reloads(recipe, tmp_path):
    exp = tmp_path / "tok"
    task = T.SpeechTokenizerTask(_cfg(recipe, "--init.freeze_pre", "true"))
    model0 = task.build_model()
    pre0 = [p.detach().clone() for p in model0.pre_quantizer_parameters()]
    assert all(not p.requires_grad for p in model0.pre_quantizer_parameters())
    res = Trainer(task, task.cfg.train, exp, config=task.cfg).fit()
    assert res["step"] == 2 and "wer" in res["valid"]
    loaded = T.load_speech_tokenizer(str(exp))  # config.yaml alone rebuilds it (no ASR needed); buffers strict-load
    assert loaded.config.model.encoder.input_norm == "global"
    for a, b in zip(pre0, loaded.model.pre_quantizer_parameters()):
        assert torch.equal(a, b)  # frozen
    post0 = dict(model0.named_parameters())
    assert any(not torch.equal(post0[k], v) for k, v in loaded.model.named_parameters() if k.startswith("post."))
    mean, _ = load_cmvn(str(recipe / "asr/dump/fbank/train/cmvn.ark"))
    assert np.allclose(loaded.model.encoder.cmvn_mean.numpy(), mean)


def test_other_text_units_get_a_new_ctc_head(recipe):
    task = T.SpeechTokenizerTask(_cfg(recipe, "--data.token_model", str(recipe / "tts/bpe40.model")))
    assert task.cfg.model.text_vocab_size == 40
    model = task.build_model()
    assert model.ctc_head.out_features == 41  # fresh head over the 40 pieces + blank; the rest still copied
    asr, *_ = load_asr_model(str(recipe / "asr/exp/asr_tiny"), base_dir=str(recipe / "asr"))
    assert torch.equal(model.post[0].ff[0].weight, asr.encoder.blocks[2].ff[0].weight)


@pytest.mark.parametrize("extra,msg", [
    (["--model.quantize_after", "3"], r"quantize_after=3 must be in \[1, 3\)"),
    (["--init.asr_exp", "/nonexistent/exp"], "config.yaml"),
])
def test_init_errors(recipe, extra, msg):
    with pytest.raises((ValueError, FileNotFoundError), match=msg):
        T.SpeechTokenizerTask(_cfg(recipe, *extra))


def test_scratch_tokenizer_still_refuses_unnormalised_input(recipe):
    cfg = _cfg(recipe, "--init.asr_exp", "", "--data.token_model", str(recipe / "tts/bpe40.model"),
               "--model.encoder.input_norm", "none")
    with pytest.raises(ValueError, match="input_norm='none'"):
        T.SpeechTokenizerTask(cfg)
    with pytest.raises(ValueError, match="input_norm='global'"):  # no stats to hold without an ASR model
        T.SpeechTokenizerTask(_cfg(recipe, "--init.asr_exp", "", "--data.token_model", str(recipe / "tts/bpe40.model"),
                                   "--model.encoder.input_norm", "global"))


def test_reward_model_starts_from_the_tokenizer(recipe, tmp_path):
    """token2text init.from_tokenizer: shape and text units from the tokenizer exp, its CTC reading of the dumped
    tokens reproduced exactly; it then trains and reloads from its own config.yaml alone."""
    import kaldiio

    from audiorl.models.speech_tokenizer import dump_tokens
    from audiorl.tasks import token2text as TT

    exp = tmp_path / "tok"
    task = T.SpeechTokenizerTask(_cfg(recipe))
    Trainer(task, task.cfg.train, exp, config=task.cfg).fit()
    tok = T.load_speech_tokenizer(str(exp))
    t = recipe / "tts"
    for name in ("train", "dev"):
        dump_tokens(tok.model, str(t / "dump/fbank" / name / "feats.scp"), str(tmp_path / "tokens" / name / "tokens"))

    def cfg(*extra):
        return load_config(TT.Token2TextTrainConfig, overrides=[
            "--data.train_dir", str(t / "dump/fbank/train"), "--data.train_tokens", str(tmp_path / "tokens/train/tokens.scp"),
            "--data.valid_dir", str(t / "dump/fbank/dev"), "--data.valid_tokens", str(tmp_path / "tokens/dev/tokens.scp"),
            "--data.token_model", str(t / "bpe40.model"), "--data.tokenizer_exp", str(exp), "--data.valid_decode_utts",
            "2", "--init.from_tokenizer", "true", "--model.dropout", "0.0", "--model.n_layers", "4",
            "--train.max_steps", "2", "--train.log_interval", "1", "--train.valid_interval", "2",
            "--train.save_interval", "2", *QUIET, *extra])

    rm_task = TT.Token2TextTask(cfg())
    m = rm_task.cfg.model
    assert (m.dim, m.n_layers, m.block, m.text_vocab_size, m.speech_vocab_size) == (32, 1, "conformer", 30, 45)
    assert rm_task.cfg.data.token_model == tok.config.data.token_model  # the tokenizer's units replaced bpe40
    rm = rm_task.build_model().eval()
    feats = kaldiio.load_scp(str(t / "dump/fbank/dev/feats.scp"))
    toks = kaldiio.load_scp(str(tmp_path / "tokens/dev/tokens.scp"))
    u = sorted(feats)[0]
    x = torch.from_numpy(np.array(feats[u]))[None]
    with torch.no_grad():
        ref = tok.model(x, torch.tensor([x.shape[1]]), torch.tensor([[1, 2]]), torch.tensor([2]))["logp"][0]
        ids = torch.from_numpy(np.array(toks[u], dtype=np.int64))[None]
        got = rm.ctc_logprobs(rm.encode(ids, torch.tensor([ids.shape[1]])))[0]
    assert torch.allclose(got, ref, atol=1e-4)

    res = Trainer(rm_task, rm_task.cfg.train, tmp_path / "rm", config=rm_task.cfg).fit()
    assert res["step"] == 2 and "wer" in res["valid"]
    loaded, text = TT.load_token2text(str(tmp_path / "rm"))  # no tokenizer needed to rebuild it
    assert loaded.config.model.n_layers == 1 and text.vocab_size == 30

    own = TT.Token2TextTask(cfg("--init.tokenizer_units", "false"))  # keep bpe40: new CTC head, the rest copied
    assert own.cfg.model.text_vocab_size == 40 and own.build_model().ctc_head.out_features == 41
    with pytest.raises(ValueError, match="needs data.tokenizer_exp"):
        TT.Token2TextTask(cfg("--data.tokenizer_exp", "", "--data.codebook_size", "45"))
