"""The token-to-text reward model (audiorl/models/token2text.py) and its task (audiorl/tasks/token2text.py): soft
input path = hard path on one-hots, -CTC per utterance, infeasible rows, attribute heads, padding invariance, a few
trainer steps on a tiny token corpus, reload and WER scoring. Tiny sizes, CPU."""

import kaldiio
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from audiorl.data.kaldi import read_table, write_table
from audiorl.data.tokenizer import train_tokenizer
from audiorl.models.token2text import Token2Text, Token2TextConfig, ctc_feasible
from audiorl.tasks import token2text as T
from audiorl.train.cli import train_main

VS, VT = 20, 9


def tiny(seed=0, **kw) -> Token2Text:
    torch.manual_seed(seed)
    return Token2Text(Token2TextConfig.from_preset("tiny", speech_vocab_size=VS, text_vocab_size=VT, **kw)).eval()


def batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, VS, (3, 14), generator=g)
    lens = torch.tensor([14, 9, 11])
    text = torch.randint(0, VT, (3, 5), generator=g)
    text_lens = torch.tensor([5, 3, 4])
    return tokens, lens, text, text_lens


def test_soft_input_equals_hard_input_on_one_hots():
    m = tiny(attribute_classes={"rate": 3})
    tokens, lens, text, tl = batch()
    attrs = {"rate": torch.tensor([0, 2, 1])}
    hard = m.log_likelihoods(tokens, lens, text, tl, attrs)
    soft = m.log_likelihoods(F.one_hot(tokens, VS).float(), lens, text, tl, attrs)
    for k in ("text", "rate"):
        assert torch.allclose(hard[k], soft[k], atol=1e-5), k
    assert torch.equal(m.embed_tokens(F.one_hot(tokens, VS).float()), m.embed_tokens(tokens))


def test_text_logprob_is_minus_ctc_per_utterance_and_infeasible_is_minus_inf():
    m = tiny()
    tokens, lens, text, tl = batch()
    enc = m.encode(tokens, lens)
    lp = m.ctc_head(enc).float().log_softmax(-1)
    for i in range(3):
        ref = F.ctc_loss(lp[i: i + 1, : lens[i]].transpose(0, 1), text[i: i + 1, : tl[i]], lens[i: i + 1],
                         tl[i: i + 1], blank=VT, reduction="sum")
        assert torch.allclose(m.text_logprob(enc, lens, text, tl)[i], -ref, atol=1e-4)
    # 'a a b' needs 4 frames (a blank between the repeats): 3 is infeasible
    rep = torch.tensor([[1, 1, 2]])
    assert ctc_feasible(rep, torch.tensor([3]), torch.tensor([4])).item()
    assert not ctc_feasible(rep, torch.tensor([3]), torch.tensor([3])).item()
    x = torch.randn(1, 3, VS, requires_grad=True)
    ll = m.log_likelihoods(x.softmax(-1), torch.tensor([3]), rep, torch.tensor([3]))["text"]
    assert ll.item() == float("-inf")
    torch.where(torch.isfinite(ll), ll, torch.zeros_like(ll)).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() == 0


def test_gradient_reaches_soft_inputs_and_padding_does_not_leak():
    m = tiny(attribute_classes={"speaker": 4})
    tokens, lens, text, tl = batch()
    x = F.one_hot(tokens, VS).float().requires_grad_()
    ll = m.log_likelihoods(x, lens, text, tl, {"speaker": torch.tensor([1, 0, 3])})
    (ll["text"].sum() + ll["speaker"].sum()).backward()
    assert x.grad[:, :9].abs().sum() > 0
    assert x.grad[1, 9:].abs().sum() == 0  # padding of row 1 never reaches the outputs
    alone = m.log_likelihoods(tokens[1:2, :9], lens[1:2], text[1:2, :3], tl[1:2])["text"]
    padded = m.log_likelihoods(tokens, lens, text, tl)["text"][1]
    assert torch.allclose(alone[0], padded, atol=1e-4)
    with pytest.raises(KeyError, match="no attribute head"):
        m.log_likelihoods(tokens, lens, text, tl, {"emotion": torch.zeros(3, dtype=torch.long)})


def test_forward_loss_ignores_missing_attribute_targets():
    m = tiny(attribute_classes={"speaker": 3}).train()
    tokens, lens, text, tl = batch()
    out = m(tokens, lens, text, tl, {"speaker": torch.tensor([-100, 2, -100])})
    assert torch.isfinite(out["loss"]) and out["speaker_ce"] > 0
    out = m(tokens, lens, text, tl, {"speaker": torch.full((3,), -100)})
    assert float(out["speaker_ce"].detach()) == 0.0 and torch.isfinite(out["loss"])


def test_config_checks():
    with pytest.raises(ValueError, match="2 classes"):
        Token2TextConfig(attribute_classes={"rate": 1})
    with pytest.raises(ValueError, match="unset"):
        Token2Text(Token2TextConfig())


# ---- the task ----------------------------------------------------------------------------------------------------
WORDS = ["ab", "ba", "abc", "cab", "bc"]


def _write_set(root, name, n, seed):
    """Text of 'words' over {a, b, c}; tokens: each letter -> 3 fixed speech ids (+ a silence id 0 between words)."""
    rng = np.random.default_rng(seed)
    code = {"a": [1, 2, 3], "b": [4, 5, 6], "c": [7, 8, 9]}
    d = root / "data" / name
    d.mkdir(parents=True)
    text, u2s, toks = {}, {}, {}
    for i in range(n):
        words = list(rng.choice(WORDS, size=2 + i % 2))
        utt = f"spk{i % 2}-{name}-{i:02d}"
        text[utt], u2s[utt] = " ".join(words), f"spk{i % 2}"
        ids = []
        for w in words:
            ids += [c for ch in w for c in code[ch]] + [0] * (1 + i % 3)
        toks[utt] = np.asarray(ids, dtype=np.int32)
    write_table(str(d / "text"), text)
    write_table(str(d / "utt2spk"), u2s)
    tdir = root / "dump" / "tokens" / name
    tdir.mkdir(parents=True)
    with kaldiio.WriteHelper(f"ark,scp:{tdir / 'tokens.ark'},{tdir / 'tokens.scp'}") as w:
        for u in sorted(toks):
            w(u, toks[u])
    return d, tdir / "tokens.scp"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("t2t")
    tr, tr_tok = _write_set(root, "train", 12, 0)
    dv, dv_tok = _write_set(root, "dev", 4, 1)
    train_tokenizer([" ".join(WORDS)] * 3, str(root / "char"), 8, "char")
    return dict(root=root, args=["--data.train_dir", str(tr), "--data.train_tokens", str(tr_tok),
                                 "--data.valid_dir", str(dv), "--data.valid_tokens", str(dv_tok),
                                 "--data.token_model", str(root / "char.model"), "--data.codebook_size", "10"],
                dev=dv, dev_tokens=dv_tok)


LOOP = ["--train.max_steps", "3", "--train.log_interval", "1", "--train.valid_interval", "3", "--train.save_interval",
        "3", "--train.progress_bar", "false", "--train.tensorboard", "false", "--train.scheduler.warmup_steps", "1",
        "--train.batch_size", "4", "--model.n_layers", "1", "--model.dim", "32", "--model.n_heads", "2",
        "--model.ffn_dim", "32", "--model.conv_kernel", "3"]


def test_task_trains_reloads_and_scores(corpus, tmp_path):
    exp = tmp_path / "exp"
    rc = train_main(T.Token2TextTrainConfig, T.Token2TextTask, "token2text_train",
                    ["--exp_dir", str(exp), *corpus["args"], *LOOP, "--data.attributes", "[speaker, rate]"])
    assert rc == 0
    loaded, tok = T.load_token2text(str(exp))
    cfg = loaded.config
    assert cfg.data.speakers == ["spk0", "spk1"] and len(cfg.data.rate_edges) == 2
    assert cfg.model.attribute_classes == {"speaker": 2, "rate": 3} and cfg.model.speech_vocab_size == 10
    assert sorted(loaded.model.heads) == ["rate", "speaker"]
    res = T.token2text_wer(loaded.model, str(corpus["dev_tokens"]), str(corpus["dev"] / "text"), tok,
                           out_dir=str(tmp_path / "score"), utt2spk=str(corpus["dev"] / "utt2spk"))
    assert res.totals.snt == 4 and res.totals.wer >= 0
    assert (tmp_path / "score" / "result.txt").is_file()
    assert set(read_table(str(tmp_path / "score" / "text"), allow_empty_value=True)) == \
        set(read_table(str(corpus["dev"] / "text")))
    assert T.rate_class(30, 10, [2.0, 4.0]) == 1 and T.rate_class(5, 10, [2.0, 4.0]) == 0
    targets = T.attribute_targets(cfg.data, [30, 5], [10, 10], ["spk1", "spk9"])
    assert targets["speaker"].tolist() == [1, -100] and targets["rate"].tolist()[1] == 0


# ---- starting from the speech tokenizer --------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["fsq", "vq"])
def test_init_from_tokenizer_reads_tokens_as_the_tokenizer_does(kind):
    """After init_from_tokenizer, the reward model's CTC log-probs on the tokenizer's ids equal the tokenizer's own
    (the blocks above its quantiser on the quantised vectors): the same function, re-entered from the ids."""
    from audiorl.models.encoder import EncoderConfig
    from audiorl.models.quantizer import QuantizerConfig
    from audiorl.models.speech_tokenizer import SpeechTokenizer, SpeechTokenizerConfig

    torch.manual_seed(0)
    enc = EncoderConfig(n_mels=12, dim=16, n_layers=3, n_heads=2, ffn_dim=32, subsample_channels=4, block="conformer",
                        conv_kernel=5, dropout=0.0, specaug=False, input_norm="utterance")
    q = QuantizerConfig(kind=kind, levels=(3, 3, 2), codebook_size=12, code_dim=4)
    tok = SpeechTokenizer(SpeechTokenizerConfig(text_vocab_size=7, encoder=enc, quantize_after=1, quantizer=q)).eval()
    cfg = Token2TextConfig(speech_vocab_size=tok.codebook_size, text_vocab_size=7, dim=16, n_layers=2, n_heads=2,
                           ffn_dim=32, block="conformer", conv_kernel=5, dropout=0.0)
    model = Token2Text(cfg).eval()
    copied = model.init_from_tokenizer(tok, copy_ctc_head=True)
    assert "embed.weight" in copied and any(k.startswith("ctc_head.") for k in copied)
    feats, flens = torch.randn(2, 60, 12), torch.tensor([60, 41])
    targets, tlens = torch.tensor([[1, 2, 3], [4, 5, 0]]), torch.tensor([3, 2])
    with torch.no_grad():
        ref = tok(feats, flens, targets, tlens)
        ids, lens = tok.tokenize(feats, flens)
        got = model.ctc_logprobs(model.encode(ids, lens))
        soft = model.ctc_logprobs(model.encode(F.one_hot(ids, tok.codebook_size).float(), lens))
    for b in range(2):
        n = int(lens[b])
        assert torch.allclose(got[b, :n], ref["logp"][b, :n], atol=1e-4)
        assert torch.allclose(soft[b, :n], ref["logp"][b, :n], atol=1e-4)
    with pytest.raises(ValueError, match="n_layers: 3 vs 2"):
        Token2Text(Token2TextConfig(**{**cfg.__dict__, "n_layers": 3})).init_from_tokenizer(tok, copy_ctc_head=True)
    with pytest.raises(ValueError, match="other text units"):
        Token2Text(Token2TextConfig(**{**cfg.__dict__, "text_vocab_size": 9})).init_from_tokenizer(tok, True)
    fresh = Token2Text(Token2TextConfig(**{**cfg.__dict__, "text_vocab_size": 9}))
    head0 = fresh.ctc_head.weight.clone()
    fresh.init_from_tokenizer(tok, copy_ctc_head=False)
    assert torch.equal(fresh.ctc_head.weight, head0) and torch.equal(fresh.norm.weight, tok.norm.weight)
