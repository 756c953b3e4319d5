"""DiffRO (audiorl/rl/diffro.py, PAPER.md s5-s6): Gumbel-Softmax, exact KL, the loss against hand-computed math, the
reward's gradient reaching the TTS LM, the GRPO advantage filter, sequence helpers, and a toy run where DiffRO raises
the reward model's log P(text). Tiny models, CPU."""

import copy
import math

import pytest
import torch

from audiorl.models.llm import LLMConfig
from audiorl.models.token2text import Token2Text, Token2TextConfig
from audiorl.models.tts_lm import SpeechSamplingConfig, TTSLM, TTSLMConfig
from audiorl.rl.diffro import (DiffROConfig, diffro_loss, diffro_objective, diffro_on_rollouts, diffro_sequences,
                               gather_logprobs, gumbel_softmax, kl_divergence, sample_sequences, strip_eos,
                               teacher_forced_logits)

VT, VS = 10, 12


def tiny_policy(seed=0) -> TTSLM:
    torch.manual_seed(seed)
    return TTSLM(TTSLMConfig(text_vocab_size=VT, speech_vocab_size=VS, spk_embed_dim=4,
                             llm=LLMConfig.from_preset("tiny", vocab_size=0, dim=32, intermediate_size=64)))


def tiny_rm(seed=1, **kw) -> Token2Text:
    torch.manual_seed(seed)
    m = Token2Text(Token2TextConfig.from_preset("tiny", speech_vocab_size=VS, text_vocab_size=VT, **kw))
    return m.eval().requires_grad_(False)


def data(B=2, G=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    text = torch.randint(0, VT, (B, 4), generator=g)
    text_lens = torch.tensor([4, 3, 4, 2][:B])
    speech = torch.randint(0, VS, (B * G, 10), generator=g)
    speech_lens = torch.tensor([10, 7, 9, 8, 6, 10, 5, 9][: B * G])
    spk = torch.randn(B, 4, generator=g)
    return text, text_lens, speech, speech_lens, spk


class RecordingRM:
    """A reward model whose log P(text) is sum_t y_t[0] (a known function of the soft tokens); records its inputs."""

    def __init__(self):
        self.calls = []

    def log_likelihoods(self, tokens, lens, text_ids, text_lens, attributes=None):
        self.calls.append(dict(lens=lens.clone(), text_lens=text_lens.clone(), attributes=attributes))
        mask = torch.arange(tokens.shape[1])[None] < lens[:, None]
        out = {"text": (tokens[..., 0] * mask).sum(1)}
        for k, v in (attributes or {}).items():
            out[k] = -v.float()
        return out


# ---- pieces -------------------------------------------------------------------------------------------------------
def test_gumbel_straight_through_forward_is_one_hot_and_backward_nonzero():
    z = torch.randn(5, 7, 9, requires_grad=True)
    y = gumbel_softmax(z, tau=0.7, hard=True, generator=torch.Generator().manual_seed(0))
    assert torch.equal(y.detach().sum(-1), torch.ones(5, 7))
    assert set(y.detach().unique().tolist()) == {0.0, 1.0}
    (y * torch.randn(9)).sum().backward()
    assert z.grad.abs().sum() > 0
    soft = gumbel_softmax(z.detach(), tau=0.7, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(soft.sum(-1), torch.ones(5, 7)) and (soft < 1).all()
    assert torch.equal(soft.argmax(-1), y.detach().argmax(-1))  # same noise: the hard sample is the soft argmax


def test_gumbel_argmax_follows_the_softmax():
    p = torch.tensor([0.1, 0.2, 0.3, 0.4])
    y = gumbel_softmax(p.log().expand(40000, 4), hard=True, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(y.mean(0), p, atol=0.01)


def test_kl_exact_by_hand_zero_for_equal_and_positive_otherwise():
    z = torch.tensor([0.0, math.log(2.0), 0.0])  # p = [1/4, 1/2, 1/4]
    q = torch.zeros(3)  # uniform
    expected = 0.25 * math.log(0.75) + 0.5 * math.log(1.5) + 0.25 * math.log(0.75)  # = 0.5 ln 1.125
    assert abs(kl_divergence(z, q).item() - expected) < 1e-6
    r = torch.randn(4, 6, 13)
    assert kl_divergence(r, r).abs().max() < 1e-6
    assert (kl_divergence(r, r + torch.randn(4, 6, 13)) > 0).all()


def test_kl_zero_when_policy_equals_reference_and_positive_otherwise():
    pol = tiny_policy()
    ref = copy.deepcopy(pol).requires_grad_(False)
    text, tl, speech, sl, spk = data()
    cfg = DiffROConfig(beta=0.1)
    _, st = diffro_loss(pol, RecordingRM(), text, tl, speech, sl, text, tl, cfg=cfg, ref_policy=ref, spk_embed=spk)
    assert abs(float(st["kl"])) < 1e-6
    with torch.no_grad():
        w = pol.llm.layers[0].mlp.w_down.weight
        w.add_(0.5 * torch.randn_like(w))
    _, st = diffro_loss(pol, RecordingRM(), text, tl, speech, sl, text, tl, cfg=cfg, ref_policy=ref, spk_embed=spk)
    assert float(st["kl"]) > 1e-6


def test_objective_matches_hand_math():
    """One row, two speech tokens (Vs = 2, eos = local id 2), soft samples; the RecordingRM reward is sum_t y_t[0]."""
    z = torch.tensor([[[0.5, -0.5, 0.0], [1.0, 0.0, -1.0], [0.0, 0.0, 2.0]]], requires_grad=True)  # (1, L+1=3, 3)
    zr = torch.tensor([[[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]])
    lens, tgt, tgt_lens = torch.tensor([2]), torch.tensor([[1, 2, 3]]), torch.tensor([3])
    cfg = DiffROConfig(tau=0.5, beta=0.3, reward_norm="text_len", attribute_weights={"rate": 2.0})
    attrs = {"rate": torch.tensor([1])}  # RecordingRM: log P(rate) = -1
    loss, st = diffro_objective(z, zr, lens, RecordingRM(), tgt, tgt_lens, attrs, cfg=cfg,
                                generator=torch.Generator().manual_seed(3))
    # the same Gumbel noise, by hand
    u = torch.rand((1, 2, 2), generator=torch.Generator().manual_seed(3))
    g = -torch.log(-torch.log(u))
    y = torch.softmax((z.detach()[:, :2, :2] + g) / 0.5, -1)
    reward = (y[0, 0, 0] + y[0, 1, 0]).item() / 3 + 2.0 * -1.0

    def kl(a, b):
        p, q = [math.exp(x) for x in a], [math.exp(x) for x in b]
        p, q = [x / sum(p) for x in p], [x / sum(q) for x in q]
        return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))

    kl_mean = sum(kl(z[0, t].tolist(), zr[0, t].tolist()) for t in range(3)) / 3  # positions 0, 1 and the eos
    assert abs(loss.item() - (-reward + 0.3 * kl_mean)) < 1e-5
    assert abs(float(st["kl"]) - kl_mean) < 1e-6 and abs(float(st["reward"]) - reward) < 1e-5
    loss.backward()
    assert z.grad[0, :2, :2].abs().sum() > 0  # reward + KL
    assert z.grad[0, 2].abs().sum() > 0  # the eos position gets the KL gradient only


def test_policy_temperature_relaxes_the_tempered_policy_and_keeps_the_kl_untempered():
    """policy_temperature T: the reward sees Gumbel-Softmax samples of logits / T (the same noise gives the same
    reward as T = 1 on logits / T), the KL stays that of the untempered logits, and a cool T sharpens the samples."""
    g = torch.Generator().manual_seed(0)
    z = torch.randn(3, 8, 6, generator=g)  # (N, L + 1, Vs + 1)
    zr = torch.randn(3, 8, 6, generator=g)
    lens, tgt, tgt_lens = torch.tensor([7, 5, 6]), torch.tensor([[1, 2], [3, 4], [5, 6]]), torch.tensor([2, 2, 2])

    def run(logits, T):
        return diffro_objective(logits, zr, lens, RecordingRM(), tgt, tgt_lens, cfg=DiffROConfig(
            beta=0.1, policy_temperature=T), generator=torch.Generator().manual_seed(5))[1]

    cool, plain, scaled = run(z, 0.4), run(z, 1.0), run(z / 0.4, 1.0)
    assert abs(float(cool["reward"]) - float(scaled["reward"])) < 1e-6
    assert abs(float(cool["kl"]) - float(plain["kl"])) < 1e-6
    assert abs(float(cool["kl"]) - float(scaled["kl"])) > 1e-4  # the scaled logits are another policy
    assert float(cool["sample_max_prob"]) > float(plain["sample_max_prob"])
    with pytest.raises(ValueError, match="policy_temperature"):
        DiffROConfig(policy_temperature=0.0)


def test_reward_gradient_reaches_the_tts_llm():
    pol = tiny_policy()
    rm = tiny_rm(attribute_classes={"rate": 3})
    text, tl, speech, sl, spk = data()
    for hard in (False, True):
        pol.zero_grad(set_to_none=True)
        cfg = DiffROConfig(beta=0.0, hard=hard, attribute_weights={"rate": 0.5})
        loss, st = diffro_loss(pol, rm, text, tl, speech, sl, text, tl, cfg=cfg, spk_embed=spk,
                               attributes={"rate": torch.tensor([0, 2])})
        loss.backward()
        assert torch.isfinite(loss) and float(st["frac_infeasible"]) == 0.0
        for name, p in pol.llm.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient on llm.{name} (hard={hard})"
        assert pol.spk_proj.weight.grad.abs().sum() > 0
        assert all(p.grad is None for p in rm.parameters())  # the reward model stays frozen


def test_errors_name_the_fix():
    pol = tiny_policy()
    text, tl, speech, sl, spk = data()
    with pytest.raises(ValueError, match="ref_policy"):
        diffro_loss(pol, RecordingRM(), text, tl, speech, sl, text, tl, cfg=DiffROConfig(beta=0.1))
    with pytest.raises(ValueError, match="no targets"):
        diffro_loss(pol, RecordingRM(), text, tl, speech, sl, text, tl,
                    cfg=DiffROConfig(beta=0.0, attribute_weights={"speaker": 1.0}))
    with pytest.raises(ValueError, match="tau"):
        DiffROConfig(tau=0.0)
    with pytest.raises(AssertionError, match="local speech ids"):
        diffro_loss(pol, RecordingRM(), text, tl, speech + VS, sl, text, tl, cfg=DiffROConfig(beta=0.0))


# ---- GRPO + DiffRO ------------------------------------------------------------------------------------------------
def test_advantage_filter_selects_exactly_the_positive_rollouts():
    pol = tiny_policy()
    text, tl, speech, sl, spk = data(B=2, G=4)
    adv = torch.tensor([0.5, -0.2, 0.0, 1.3, -1.0, 2.0, 0.0, 0.1])
    rm = RecordingRM()
    cfg = DiffROConfig(beta=0.0, combine_weight=0.5)
    loss, st = diffro_on_rollouts(pol, rm, text, tl, speech, sl, text, tl, adv, cfg=cfg, spk_embed=spk)
    keep = [0, 3, 5, 7]
    assert rm.calls[-1]["lens"].tolist() == sl[keep].tolist()
    assert rm.calls[-1]["text_lens"].tolist() == tl.repeat_interleave(4)[keep].tolist()
    assert float(st["frac_selected"]) == 0.5 and float(st["n_rows"]) == 4
    assert torch.isfinite(loss) and loss.requires_grad
    # off-switch: every row
    diffro_on_rollouts(pol, rm, text, tl, speech, sl, text, tl, adv, cfg=DiffROConfig(beta=0.0, advantage_filter=False),
                       spk_embed=spk)
    assert rm.calls[-1]["lens"].tolist() == sl.tolist()
    # no positive advantage: a constant 0
    n_calls = len(rm.calls)
    loss, st = diffro_on_rollouts(pol, rm, text, tl, speech, sl, text, tl, -adv.abs(), cfg=cfg, spk_embed=spk)
    assert float(loss) == 0.0 and float(st["frac_selected"]) == 0.0 and len(rm.calls) == n_calls


def test_filtered_loss_equals_diffro_on_the_kept_rows_and_shared_logits_agree():
    pol = tiny_policy()
    text, tl, speech, sl, spk = data(B=2, G=3)
    adv = torch.tensor([1.0, -1.0, 0.5, -0.5, 2.0, -2.0])
    keep = [0, 2, 4]
    cfg = DiffROConfig(beta=0.0, combine_weight=0.7)
    g = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    loss, _ = diffro_on_rollouts(pol, RecordingRM(), text, tl, speech, sl, text, tl, adv, cfg=cfg, spk_embed=spk,
                                 generator=g())
    rows = lambda x: x.repeat_interleave(3, 0)[keep]  # noqa: E731
    ref, _ = diffro_loss(pol, RecordingRM(), rows(text), rows(tl), speech[keep], sl[keep], rows(text), rows(tl),
                         cfg=cfg, spk_embed=rows(spk), generator=g())
    assert torch.allclose(loss, 0.7 * ref, atol=1e-6)
    logits = teacher_forced_logits(pol, text, tl, speech, sl, spk)  # one forward for GRPO and DiffRO
    shared, _ = diffro_on_rollouts(pol, RecordingRM(), text, tl, speech, sl, text, tl, adv, cfg=cfg, logits=logits,
                                   generator=g())
    assert torch.allclose(shared, loss, atol=1e-5)
    half, st = diffro_on_rollouts(pol, RecordingRM(), text, tl, speech, sl, text, tl, adv, spk_embed=spk,
                                  cfg=DiffROConfig(beta=0.0, combine_weight=0.7, filter_normalize="all"), generator=g())
    assert torch.allclose(half, 0.5 * loss, atol=1e-6) and float(st["frac_selected"]) == 0.5


def test_gather_logprobs_equals_sequence_logprobs_and_strip_eos():
    pol = tiny_policy().eval()
    text, tl, _, _, spk = data()
    out = pol.generate(text, tl, spk, SpeechSamplingConfig(max_new_tokens=12, top_k=0, top_p=1.0, loop_window=0),
                       num_samples=3, generator=torch.Generator().manual_seed(0))
    speech, sl = strip_eos(out.tokens, out.lengths, out.eos_id)
    assert (sl == out.lengths - out.finished.long()).all() and (speech < VS).all()
    logits = teacher_forced_logits(pol, text, tl, speech, sl, spk)
    p, plens = pol.prompt(text, tl, spk)
    want = pol.sequence_logprobs(p, plens, out.tokens, out.lengths)
    assert torch.allclose(gather_logprobs(logits, out.tokens, out.lengths), want, atol=1e-5)
    # full-vocabulary ids: subtract the offset, eos = Vt + Vs
    full = torch.where(out.tokens == VS, VT + VS, out.tokens + VT)
    s2, l2 = strip_eos(full, out.lengths, VT + VS, offset=VT)
    assert torch.equal(s2, speech) and torch.equal(l2, sl)
    cfg = DiffROConfig(sequences="sample")
    s3, l3 = diffro_sequences(cfg, pol, text, tl, speech[:2], sl[:2], spk,
                              SpeechSamplingConfig(max_new_tokens=8, loop_window=0), torch.Generator().manual_seed(1))
    assert s3.shape[0] == 2 and (l3 <= 8).all()
    assert diffro_sequences(DiffROConfig(), pol, text, tl, speech, sl)[0] is speech
    s4, _ = sample_sequences(pol, text, tl, spk, SpeechSamplingConfig(max_new_tokens=5, loop_window=0), 2)
    assert s4.shape[0] == 4


# ---- toy run ------------------------------------------------------------------------------------------------------
@torch.no_grad()
def hard_reward(pol, rm, text, tl, speech, sl, spk, n=8):
    """Mean over n straight-through samples of log P(text | discrete tokens) per text id (what decoded tokens get)."""
    logits = teacher_forced_logits(pol, text, tl, speech, sl, spk)[:, :-1, :VS]
    g = torch.Generator().manual_seed(123)
    vals = [rm.log_likelihoods(gumbel_softmax(logits, hard=True, generator=g).argmax(-1), sl, text, tl)["text"] / tl
            for _ in range(n)]
    return torch.stack(vals).mean().item()


def test_toy_diffro_raises_the_reward_models_log_prob_of_the_text():
    pol = tiny_policy(seed=2)
    ref = copy.deepcopy(pol).eval().requires_grad_(False)
    rm = tiny_rm(seed=3)
    text, tl, speech, sl, spk = data(B=4, seed=7)
    cfg = DiffROConfig(tau=1.0, beta=0.01)
    before = hard_reward(pol, rm, text, tl, speech, sl, spk)
    opt = torch.optim.Adam(pol.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(30):
        loss, st = diffro_loss(pol, rm, text, tl, speech, sl, text, tl, cfg=cfg, ref_policy=ref, spk_embed=spk,
                               generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = hard_reward(pol, rm, text, tl, speech, sl, spk)
    assert after > before + 0.5, (before, after)
    assert float(st["kl"]) > 0


def test_config_loads_from_yaml_style_overrides():
    from audiorl.config import load_config

    cfg = load_config(DiffROConfig, overrides=["--tau", "0.5", "--hard", "true", "--attribute_weights", "{rate: 0.5}",
                                               "--sequences", "sample", "--advantage_filter", "false"])
    assert (cfg.tau, cfg.hard, cfg.attribute_weights, cfg.sequences, cfg.advantage_filter) == \
        (0.5, True, {"rate": 0.5}, "sample", False)
    assert not DiffROConfig(beta=0.0).needs_reference
    with pytest.raises(Exception, match="sequences"):
        load_config(DiffROConfig, overrides=["--sequences", "greedy"])
