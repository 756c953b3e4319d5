"""Unit tests of the TTS components: quantizers, speech tokenizer (+ token ark/scp), text-to-token LM (sampling mask,
loop guard), token-to-mel (CFM and regression), Griffin-Lim vocoder, speaker embedding storage. Tiny sizes, CPU."""

import math
import os
from dataclasses import replace

import kaldiio
import numpy as np
import pytest
import torch

from audiorl.models.encoder import EncoderConfig
from audiorl.models.llm import LLMConfig
from audiorl.models.quantizer import FSQ, EMAVQ, QuantizerConfig
from audiorl.models.speaker import compute_spk_embeds, load_embeds, utt_condition
from audiorl.models.speech_tokenizer import SpeechTokenizer, SpeechTokenizerConfig, dump_tokens, read_tokens
from audiorl.models.token2mel import Token2Mel, Token2MelConfig, code_mel_means
from audiorl.models.tts_lm import SpeechSamplingConfig, TTSLM, TTSLMConfig, loop_continuation
from audiorl.models.vocoder import GriffinLimVocoder, MelConfig, mel_spectrogram, num_mel_frames

NMEL = 20


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# ---- quantizers --------------------------------------------------------------------------------------------------
def test_fsq_codebook_bijection():
    q = FSQ((8, 5, 5, 3))
    assert q.codebook_size == 600
    ids = torch.arange(600)
    codes = q.ids_to_codes(ids)  # (600, 4)
    assert torch.equal(q.codes_to_ids(codes), ids)
    assert len({tuple(c) for c in codes.tolist()}) == 600  # distinct grid points
    assert codes.min() >= -1 and codes.max() <= 1


def test_fsq_round_trip_and_straight_through():
    torch.manual_seed(0)
    q = FSQ((5, 5, 5, 5), in_dim=16)
    x = (torch.randn(3, 7, 16) * 3).requires_grad_()
    x_q, ids, aux = q(x)
    assert x_q.shape == x.shape and ids.shape == (3, 7) and float(aux) == 0.0
    assert ids.min() >= 0 and ids.max() < 625
    assert torch.equal(q.encode(x), ids)
    assert torch.allclose(q.decode(ids), x_q, atol=1e-6)  # ids carry everything the quantised output has
    # straight-through: the gradient is that of the un-rounded bound / half-width
    x_q.sum().backward()
    g_ste = x.grad.clone()
    x.grad = None
    z = q.bound(q.proj_in(x)) / (q.levels // 2)
    q.proj_out(z).sum().backward()
    assert g_ste.abs().sum() > 0 and torch.allclose(g_ste, x.grad, atol=1e-6)


def test_ema_vq():
    torch.manual_seed(0)
    vq = EMAVQ(32, 8, in_dim=16)
    x = torch.randn(4, 10, 16)
    before = vq.embed.clone()
    x_q, ids, loss = vq.train()(x)
    assert ids.shape == (4, 10) and float(loss.detach()) > 0
    assert not torch.equal(before, vq.embed)  # EMA moved the codewords
    vq.eval()
    x_q, ids, _ = vq(x)
    assert torch.allclose(vq.decode(ids), x_q, atol=1e-5) and torch.equal(vq.encode(x), ids)
    assert QuantizerConfig(kind="vq", codebook_size=32).size == 32
    assert QuantizerConfig(levels=(8, 8, 8, 5, 5)).size == 12800


# ---- speech tokenizer --------------------------------------------------------------------------------------------
def tiny_tokenizer(seed=0) -> SpeechTokenizer:
    torch.manual_seed(seed)
    c = SpeechTokenizerConfig(text_vocab_size=12, quantize_after=1,
                              encoder=EncoderConfig.from_preset("tiny", n_mels=NMEL, specaug=False),
                              quantizer=QuantizerConfig(levels=(5, 5, 3)))
    return SpeechTokenizer(c)


def test_speech_tokenizer_shapes_rate_and_loss():
    tok = tiny_tokenizer()
    feats, lens = torch.randn(2, 500, NMEL), torch.tensor([500, 300])  # 5 s and 3 s at 100 Hz
    out = tok(feats, lens, torch.randint(0, 12, (2, 6)), torch.tensor([6, 4]))
    out["loss"].backward()
    assert tok.encoder.subsample.out.weight.grad.abs().sum() > 0  # CTC reaches the blocks below the quantiser
    tok.eval()
    ids, n = tok.tokenize(feats, lens)
    assert n.tolist() == [124, 74] and ids.shape == (2, 124)  # ((T-1)//2-1)//2: ~25 tokens/s
    assert ids.max() < tok.codebook_size == 75 and (ids[1, 74:] == 0).all()
    alone, _ = tok.tokenize(feats[1:, :300], lens[1:])
    assert torch.equal(alone[0], ids[1, :74])  # same ids alone or in a padded batch


def test_token_dump_round_trip_and_user_scp(tmp_path):
    tok = tiny_tokenizer().eval()
    g = torch.Generator().manual_seed(0)
    feats = {f"u{i}": torch.randn(n, NMEL, generator=g).numpy() for i, n in enumerate((90, 40, 130))}
    with kaldiio.WriteHelper(f"ark,scp:{tmp_path}/feats.ark,{tmp_path}/feats.scp") as w:
        for u, f in feats.items():
            w(u, f)
    assert dump_tokens(tok, f"{tmp_path}/feats.scp", f"{tmp_path}/tokens", batch_frames=150) == 3
    got = read_tokens(f"{tmp_path}/tokens.scp", codebook_size=tok.codebook_size)
    for u, f in feats.items():
        ids, n = tok.tokenize(torch.from_numpy(f)[None], torch.tensor([len(f)]))
        assert got[u].tolist() == ids[0, : int(n)].tolist()
    assert open(f"{tmp_path}/tokens.utt2num_tokens").read().split() == ["u0", "21", "u1", "9", "u2", "31"]
    # a user-given scp of precomputed tokens: accepted when in range, rejected otherwise
    with kaldiio.WriteHelper(f"ark,scp:{tmp_path}/user.ark,{tmp_path}/user.scp") as w:
        w("a", np.array([3, 1, 4], dtype=np.int32))
    assert read_tokens(f"{tmp_path}/user.scp", codebook_size=5)["a"].tolist() == [3, 1, 4]
    with pytest.raises(ValueError, match="outside"):
        read_tokens(f"{tmp_path}/user.scp", codebook_size=4)


# ---- text-to-token LM --------------------------------------------------------------------------------------------
VT, VS = 20, 30


def tiny_tts(seed=0, **kw) -> TTSLM:
    torch.manual_seed(seed)
    return TTSLM(TTSLMConfig(text_vocab_size=VT, speech_vocab_size=VS, spk_embed_dim=8,
                             llm=LLMConfig.from_preset("tiny", vocab_size=0, **kw)))


def tts_batch():
    g = torch.Generator().manual_seed(1)
    text = torch.randint(0, VT, (2, 5), generator=g)
    speech = torch.randint(0, VS, (2, 12), generator=g)
    return text, torch.tensor([5, 3]), speech, torch.tensor([12, 7]), torch.randn(2, 8, generator=g)


def test_tts_lm_overfits_and_logprobs_match():
    m = tiny_tts()
    assert m.config.vocab_size == VT + VS + 3 and m.config.eos_id == VT + VS
    batch = tts_batch()
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    losses = []
    for _ in range(150):
        out = m(*batch)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(float(out["loss"].detach()))
        if losses[-1] < 0.05:
            break
    assert int(out["n_tokens"]) == 12 + 7 + 2
    assert losses[-1] < 0.05, losses  # from ~log(31) = 3.4
    m.eval()
    text, tl, speech, sl, spk = batch
    res = m.generate(text, tl, spk, SpeechSamplingConfig(temperature=0.0, max_new_tokens=20, loop_window=0))
    assert res.speech_ids()[0] == speech[0].tolist() and res.speech_ids()[1] == speech[1, :7].tolist()  # memorised
    assert res.finished.all() and res.lengths.tolist() == [13, 8]
    p, pl = m.prompt(text, tl, spk)
    lp = m.sequence_logprobs(p, pl, res.tokens, res.lengths)
    assert torch.allclose(lp, res.raw_logprobs, atol=1e-4)


def test_tts_sampling_emits_only_speech_or_eos():
    m = tiny_tts(init_std=0.3).eval()
    text, tl, _, _, spk = tts_batch()
    cfg = SpeechSamplingConfig(temperature=1.5, top_k=0, top_p=1.0, max_new_tokens=40, loop_window=0,
                               min_tokens_per_text=2.0)
    res = m.generate(text, tl, spk, cfg, num_samples=4, generator=torch.Generator().manual_seed(0))
    assert res.tokens.shape[0] == 8 and res.tokens.min() >= 0 and res.tokens.max() <= VS
    for row, n, t in zip(res.tokens, res.lengths, tl.repeat_interleave(4)):
        body = row[: int(n)]
        assert (body[:-1] < VS).all() and int(n) > 2 * int(t)  # eos only last, never before min length
    p, pl = m.prompt(text, tl, spk)
    assert torch.allclose(m.sequence_logprobs(p, pl, res.tokens, res.lengths), res.raw_logprobs, atol=1e-4)
    cfg.min_tokens_per_text, cfg.max_tokens_per_text = 0.0, 1.0  # eos forced as token number text length
    res = m.generate(text, tl, spk, cfg, num_samples=4, generator=torch.Generator().manual_seed(0))
    assert (res.lengths <= tl.repeat_interleave(4)).all()
    assert (res.tokens.gather(1, res.lengths[:, None] - 1) == VS).all()


def test_loop_guard():
    h = torch.tensor([[5, 1, 2, 1, 2, 1, 2, 1], [3, 3, 3, 3, 3, 3, 3, 3], [1, 2, 3, 4, 5, 6, 7, 8]])
    assert loop_continuation(h, window=5, max_period=3).tolist() == [2, 3, -1]
    assert loop_continuation(h, window=6, max_period=3).tolist() == [-1, 3, -1]
    m = tiny_tts().eval()
    with torch.no_grad():
        m.llm.norm.weight.zero_()  # all logits 0: greedy decoding repeats speech id 0 forever
    text, tl, _, _, spk = tts_batch()
    W = 6
    stop = m.generate(text, tl, spk, SpeechSamplingConfig(temperature=0.0, max_new_tokens=50, loop_window=W))
    assert stop.looped.all() and not stop.finished.any() and stop.lengths.tolist() == [W + 2] * 2
    assert stop.speech_ids() == [[0] * (W + 1)] * 2
    pen = m.generate(text, tl, spk, SpeechSamplingConfig(temperature=0.0, max_new_tokens=50, loop_window=W,
                                                         loop_action="penalize", loop_max_period=3))
    assert pen.looped.all() and pen.lengths.tolist() == [50, 50]
    for s in range(W + 1, 50):  # the guard's promise: a detected cycle is never continued
        cont = loop_continuation(pen.tokens[:, :s], W, 3)
        assert not ((cont >= 0) & (cont == pen.tokens[:, s])).any()


# ---- token-to-mel ------------------------------------------------------------------------------------------------
def tiny_t2m(mode="cfm") -> Token2Mel:
    torch.manual_seed(0)
    return Token2Mel(Token2MelConfig.from_preset("tiny", vocab_size=16, n_mels=NMEL, spk_embed_dim=8, mode=mode))


def off_zero_init(m: Token2Mel) -> Token2Mel:
    """With code_mel the network part of mu (mu_proj) starts at exactly 0, so no gradient reaches the token encoder
    until a step has moved it: give it the small random weights a trained model has."""
    with torch.no_grad():
        torch.nn.init.normal_(m.mu_proj.weight, std=0.05, generator=torch.Generator().manual_seed(3))
    return m


def t2m_batch():
    g = torch.Generator().manual_seed(2)
    tokens, tl = torch.randint(0, 16, (2, 10), generator=g), torch.tensor([10, 6])
    mel = torch.randn(2, 44, NMEL, generator=g) - 5  # longer than 4 x 10: cut
    return tokens, tl, mel, torch.tensor([44, 26]), torch.randn(2, 8, generator=g)


@pytest.mark.parametrize("mode", ["cfm", "regression"])
def test_token2mel_overfits_and_sample_shape(mode):
    m = tiny_t2m(mode)
    tokens, tl, mel, ml, spk = t2m_batch()
    m.set_mel_stats(mel.mean((0, 1)), mel.std((0, 1)))
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    losses = []
    for step in range(60):
        torch.manual_seed(100 + step % 4)  # a few fixed (t, noise) draws: a tiny overfit, not a noisy estimate
        out = m(tokens, tl, mel, ml, spk)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(float(out["loss"].detach()))
    assert np.mean(losses[-4:]) < 0.5 * np.mean(losses[:4]), losses
    m.eval()
    x, n = m.sample(tokens, tl, spk, solver="midpoint", generator=torch.Generator().manual_seed(0))
    assert x.shape == (2, 40, NMEL) and n.tolist() == [40, 24]
    assert torch.isfinite(x).all() and (x[1, 24:] == math.log(1e-5)).all()


def test_token2mel_prior_loss_is_mse_of_mu_and_weighted():
    """loss = fm + prior_weight * MSE(mu, normalised mel) over real frames; prior_weight 0 = the plain CFM loss."""
    tokens, tl, mel, ml, spk = t2m_batch()
    ml = torch.tensor([44, 20])  # the second row's mel is shorter than its 24 token frames: those frames are masked
    m = off_zero_init(tiny_t2m())
    m.set_mel_stats(mel.mean((0, 1)), mel.std((0, 1)))
    m.eval()  # no condition dropout
    torch.manual_seed(5)
    out = m(tokens, tl, mel, ml, spk)
    mu, mask = m.encode_tokens(tokens, tl, spk)
    o = m.config.mel_offset  # token i is trained on frames [4i + o, 4i + 4 + o)
    assert o == 2
    mask = mask & (torch.arange(mu.shape[1])[None] < (ml - o)[:, None])
    x1 = (mel[:, o: o + mu.shape[1]] - m.mel_mean) / m.mel_std
    want = ((mu - x1)[mask] ** 2).mean()
    assert torch.allclose(out["prior"], want, atol=1e-6)
    assert torch.allclose(out["loss"], out["fm"] + m.config.prior_weight * out["prior"])
    m2 = Token2Mel(replace(m.config, prior_weight=0.0))
    m2.load_state_dict(m.state_dict())
    m2.eval()
    torch.manual_seed(5)
    out2 = m2(tokens, tl, mel, ml, spk)
    assert torch.allclose(out2["loss"], out["fm"]) and torch.allclose(out2["fm"], out["fm"])
    out["prior"].backward()  # the prior trains the token encoder, not the estimator
    assert m.token_embed.weight.grad.abs().sum() > 0 and m.out_proj.weight.grad is None
    assert m.spk_token_proj.weight.grad.abs().sum() > 0  # the prior is of the speaker's voice (spk_in_encoder)
    with pytest.raises(ValueError, match="prior_weight"):
        replace(m.config, prior_weight=-1.0)


def test_token2mel_prior_depends_on_the_speaker_only_with_spk_in_encoder():
    tokens, tl, _, _, spk = t2m_batch()
    m = off_zero_init(tiny_t2m()).eval()
    a, _ = m.encode_tokens(tokens, tl, spk)
    b, _ = m.encode_tokens(tokens, tl, spk.flip(0))
    assert not torch.allclose(a, b)
    torch.manual_seed(0)
    m0 = off_zero_init(Token2Mel(replace(m.config, spk_in_encoder=False))).eval()
    assert m0.spk_token_proj is None
    assert torch.equal(m0.encode_tokens(tokens, tl, spk)[0], m0.encode_tokens(tokens, tl, spk.flip(0))[0])


def test_token2mel_code_mel_starts_mu_at_the_code_means():
    """code_mel_means averages each code's U normalised mel frames (from mel_offset on); set_code_mel puts them in the
    direct code -> frames embedding, so a model whose network part outputs 0 has mu = that lookup."""
    g = torch.Generator().manual_seed(3)
    mel = torch.randn(30, NMEL, generator=g)
    tokens = torch.tensor([1, 2, 1, 5, 2, 1, 0])  # 7 tokens; (30 - 2) // 4 = 7 have all 4 frames
    mean, std = torch.zeros(NMEL), torch.ones(NMEL) * 2
    table = code_mel_means([(tokens.numpy(), mel)], 16, 4, 2, mean, std)
    frames = (mel[2:30] / 2).view(7, 4, NMEL)
    assert torch.allclose(table[1], frames[[0, 2, 5]].mean(0)) and torch.allclose(table[5], frames[3])
    assert (table[7] == 0).all()  # never seen: the mean mel
    m = tiny_t2m().eval()
    m.set_code_mel(table)
    torch.nn.init.zeros_(m.mu_proj.weight), torch.nn.init.zeros_(m.mu_proj.bias)
    mu, _ = m.encode_tokens(tokens[None], torch.tensor([7]))
    assert torch.allclose(mu[0], table[tokens].reshape(28, NMEL))
    with pytest.raises(ValueError, match="linear"):
        replace(m.config, length_regulator="repeat")
    assert replace(m.config, length_regulator="repeat", code_mel=False).length_regulator == "repeat"


def test_token2mel_shallow_sampling_starts_from_the_prior():
    """t_start 1 returns the prior mu (denormalised) with no estimator call; 0 < t_start < 1 integrates only over
    [t_start, 1] (n_steps estimator calls, so CFG 0 -> exactly n_steps); models without a trained prior refuse it."""
    tokens, tl, mel, ml, spk = t2m_batch()
    m = tiny_t2m().eval()
    m.set_mel_stats(mel.mean((0, 1)), mel.std((0, 1)))
    mu, mask = m.encode_tokens(tokens, tl, spk)
    calls = []
    m.estimator = (lambda f: lambda *a: calls.append(a[-1]) or f(*a))(m.estimator)
    x, n = m.sample(tokens, tl, spk, t_start=1.0)
    assert not calls and n.tolist() == [40, 24]
    want = (mu * m.mel_std + m.mel_mean).masked_fill(~mask[..., None], math.log(1e-5))
    assert torch.allclose(x, want)
    x, _ = m.sample(tokens, tl, spk, t_start=0.6, n_steps=3, cfg_strength=0.0, generator=torch.Generator().manual_seed(0))
    assert len(calls) == 3 and all(float(t.min()) >= 0.6 - 1e-6 for t in calls) and float(calls[0][0]) == pytest.approx(0.6)
    assert torch.isfinite(x).all()
    with pytest.raises(ValueError, match="t_start"):
        m.sample(tokens, tl, spk, t_start=1.5)
    with pytest.raises(ValueError, match="prior"):
        tiny_t2m("regression").eval().sample(tokens, tl, spk, t_start=0.5)
    no_prior = tiny_t2m().eval()
    no_prior.config = replace(no_prior.config, prior_weight=0.0)
    with pytest.raises(ValueError, match="prior"):
        no_prior.sample(tokens, tl, spk, t_start=0.5)


# ---- vocoder -----------------------------------------------------------------------------------------------------
def test_griffin_lim_sine_round_trip():
    c = MelConfig()
    t = torch.arange(8000) / c.sample_rate  # 0.5 s
    wave = 0.5 * torch.sin(2 * math.pi * 440 * t) + 0.2 * torch.sin(2 * math.pi * 1250 * t)
    mel = mel_spectrogram(wave, c)
    assert mel.shape == (num_mel_frames(8000, c), 80) == (51, 80)
    voc = GriffinLimVocoder(c, n_iter=32)
    y = voc(mel)
    assert y.shape == (51 * 160,)
    a, b = mel.exp(), mel_spectrogram(y[:8000], c).exp()
    sc = float(torch.linalg.norm(a - b) / torch.linalg.norm(a))  # spectral convergence of the mel magnitudes
    assert sc < 0.15, sc
    yb = voc(torch.stack([mel, mel]), torch.tensor([51, 20]))
    assert yb.shape == (2, 51 * 160) and (yb[1, 20 * 160:] == 0).all() and torch.allclose(yb[0], y, atol=1e-4)


# ---- speaker embeddings --------------------------------------------------------------------------------------------
class FakeEncoder:
    def embed_batch(self, waves, srs):
        e = np.stack([[w.mean() + 1, w.std(), len(w) / 1000.0] for w in waves]).astype(np.float32)
        return e / np.linalg.norm(e, axis=1, keepdims=True)


def test_speaker_embedding_storage(tmp_path):
    import soundfile as sf

    d = tmp_path / "data"
    d.mkdir()
    rng = np.random.default_rng(0)
    lines, u2s = [], []
    for i, spk in enumerate(["a", "a", "b"]):
        p = tmp_path / f"{spk}{i}.wav"
        sf.write(p, rng.standard_normal(800 * (i + 1)).astype(np.float32) * 0.1, 16000)
        lines.append(f"{spk}-u{i} {p}")
        u2s.append(f"{spk}-u{i} {spk}")
    (d / "wav.scp").write_text("\n".join(lines) + "\n")
    (d / "utt2spk").write_text("\n".join(u2s) + "\n")
    assert compute_spk_embeds(str(d), str(tmp_path / "emb"), encoder=FakeEncoder(), chunk=2) == (3, 2)
    utt = load_embeds(str(tmp_path / "emb" / "spk_embed.scp"))
    spk = load_embeds(str(tmp_path / "emb" / "spk2embed.scp"))
    assert sorted(utt) == ["a-u0", "a-u1", "b-u2"] and sorted(spk) == ["a", "b"]
    m = utt["a-u0"] + utt["a-u1"]
    assert np.allclose(spk["a"], m / np.linalg.norm(m), atol=1e-6) and np.allclose(spk["b"], utt["b-u2"], atol=1e-6)
    rows = utt_condition(["b-u2", "a-u1"], utt, spk, {"b-u2": "b", "a-u1": "a"})
    assert rows.shape == (2, 3) and np.allclose(rows[1], spk["a"])
    assert os.path.isfile(tmp_path / "emb" / "spk_embed.ark")
