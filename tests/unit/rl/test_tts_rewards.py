"""TTS rewards (PAPER.md s4): R2 duration and R3 diversity (group.py) on hand-computed groups, the pitch term from
waveforms, SIM from injected embeddings or an injected encoder, R1 through an injected ASR judge and through the
token-to-text reward model (audiorl/rl/rewards/tts.py)."""

import math

import numpy as np
import pytest
import torch

from audiorl.eval.mcd import f0_std
from audiorl.models.token2text import Token2Text, Token2TextConfig
from audiorl.rl.rewards import RewardConfig, RewardInput, compute_rewards, known_rewards, register_reward
from audiorl.rl.rewards import base
from audiorl.rl.rewards.text import error_rate
from audiorl.rl.rewards.tts import (attach_f0_std, make_asr_judge_reward, make_sim_reward, make_token2text_reward,
                                    pitch_std, speaker_sim)

SR = 16000


def S(tokens=(), group=0, ref="", **meta):
    return RewardInput(ref_text=ref, hyp_tokens=list(tokens), group_index=group, meta=dict(meta))


@pytest.fixture
def registered():
    """Register test closures under private names; removed afterwards (the registry is process-wide)."""
    names = []

    def reg(name, fn):
        names.append(name)
        register_reward(name)(fn)

    yield reg
    for n in names:
        base._REGISTRY.pop(n, None)


def tone(f0, seconds=0.6, vibrato=0.0):
    t = np.arange(int(SR * seconds)) / SR
    phase = 2 * np.pi * np.cumsum(f0 * (1 + vibrato * np.sin(2 * np.pi * 4 * t))) / SR
    return (0.5 * np.sin(phase)).astype(np.float32)


def test_tts_rewards_are_registered():
    assert {"duration", "diversity", "pitch_std", "speaker_sim"} <= set(known_rewards())


# ---- R2 / R3 on hand-computed groups -------------------------------------------------------------------------------
def test_duration_by_hand():
    samples = [S([0] * 10, 0), S([0] * 12, 0), S([0] * 14, 0), S([0] * 10, 1), S([0] * 20, 1)]
    total, per = compute_rewards(RewardConfig([{"name": "duration"}]), samples)
    # group 0: median 12 -> -2/12, 0, -2/12; group 1: median 15 (mean of the middle two) -> -5/15 each
    assert torch.allclose(total, torch.tensor([-1 / 6, 0.0, -1 / 6, -1 / 3, -1 / 3]))


def test_diversity_tokens_and_pitch_by_hand():
    a, b, c = [1, 2, 3], [1, 2, 4], [5, 6, 7]
    samples = [S(a), S(b), S(c), S([9], group=1)]
    total, _ = compute_rewards(RewardConfig([{"name": "diversity"}]), samples)
    # d(a,b) = 1/3, d(a,c) = d(b,c) = 1: a, b -> (1/3 + 1) / 2, c -> 1; a group of one -> 0
    assert torch.allclose(total, torch.tensor([2 / 3, 2 / 3, 1.0, 0.0]))
    # plus the pitch term: f0_std in meta from the waveform
    waves = [tone(150), tone(150, vibrato=0.1), tone(200), tone(120)]
    samples = [S(t, g, waveform=w, sr=SR) for t, g, w in zip([a, b, c, [9]], [0, 0, 0, 1], waves)]
    assert attach_f0_std(samples) == 4
    total, per = compute_rewards(RewardConfig([{"name": "diversity", "kwargs": {"f0_weight": 1.0}},
                                               {"name": "pitch_std", "weight": 0.0}]), samples)
    f0s = [f0_std(w, SR) for w in waves]
    assert torch.allclose(total, torch.tensor([2 / 3, 2 / 3, 1.0, 0.0]) + torch.tensor(f0s) / 50.0, atol=1e-5)
    assert torch.allclose(per["pitch_std"], torch.tensor(f0s) / 50.0, atol=1e-6)


def test_pitch_std_from_waveforms():
    steady, wobbly = S(waveform=tone(150), sr=SR), S(waveform=torch.from_numpy(tone(150, vibrato=0.15)), sr=SR)
    r = pitch_std([steady, wobbly], f0_scale=10.0)
    assert r[0] < 0.2 and r[1] > 1.0  # a steady tone has ~0 F0 spread, 4 Hz vibrato of +-15% a lot
    assert wobbly.meta["f0_std"] == pytest.approx(r[1] * 10.0)  # cached for diversity(f0_weight)
    assert pitch_std([S()]) == [0.0]  # no waveform: 0 (logged)
    with pytest.raises(KeyError, match="sr"):
        pitch_std([S(waveform=tone(150))])


# ---- SIM ----------------------------------------------------------------------------------------------------------
def test_speaker_sim_injected_embeddings_and_encoder(registered):
    s = [S(spk_embed=[1.0, 0.0], ref_spk_embed=[1.0, 1.0]), S(spk_embed=[0.0, 2.0], ref_spk_embed=[0.0, -1.0])]
    assert speaker_sim(s) == pytest.approx([1 / math.sqrt(2), -1.0])
    with pytest.raises(KeyError, match="ref_spk_embed"):
        speaker_sim([S(spk_embed=[1.0])])
    seen = []

    def embed(waves):
        seen.append(len(waves))
        return np.stack([[w.mean(), 1.0] for w in waves])

    registered("_test_sim", make_sim_reward(embed))
    samples = [S(waveform=np.zeros(100), sr=SR, ref_spk_embed=[0.0, 1.0]),
               S(spk_embed=[1.0, 0.0], ref_spk_embed=[0.0, 1.0])]
    total, _ = compute_rewards(RewardConfig([{"name": "_test_sim"}]), samples)
    assert torch.allclose(total, torch.tensor([1.0, 0.0])) and seen == [1]  # only the sample without an embedding


# ---- R1 -----------------------------------------------------------------------------------------------------------
def test_asr_judge_reward_accepts_wers_or_transcripts(registered):
    calls = []

    def judge_wer(waves, refs):
        calls.append((len(waves), list(refs)))
        return [0.0, 0.5, 3.0]

    registered("_test_judge", make_asr_judge_reward(judge_wer))
    samples = [S(ref="a b", waveform=np.zeros(160), sr=SR) for _ in range(3)]
    total, _ = compute_rewards(RewardConfig([{"name": "_test_judge", "kwargs": {"floor": -1.0}}]), samples)
    assert torch.allclose(total, torch.tensor([1.0, 0.5, -1.0])) and calls == [(3, ["a b"] * 3)]
    registered("_test_judge_text", make_asr_judge_reward(lambda waves, refs: ["a b", "a c", "x y z w"]))
    total, _ = compute_rewards(RewardConfig([{"name": "_test_judge_text", "kwargs": {"floor": 0.0}}]), samples)
    assert torch.allclose(total, torch.tensor([1.0, 0.5, 0.0]))
    with pytest.raises(KeyError, match="waveform"):
        make_asr_judge_reward(judge_wer)([S(ref="a")])
    with pytest.raises(ValueError, match="2 results for 3"):
        make_asr_judge_reward(lambda w, r: [0.0, 0.0])(samples)


class CharTokenizer:
    """Text ids <-> letters a.. (id k = chr(97 + k)); words are single letters joined by spaces."""

    def encode(self, text):
        return [ord(ch) - 97 for ch in text.replace(" ", "")]

    def decode(self, ids):
        return " ".join(chr(97 + i) for i in ids)


def test_token2text_reward_modes(registered):
    torch.manual_seed(0)
    rm = Token2Text(Token2TextConfig.from_preset("tiny", speech_vocab_size=12, text_vocab_size=6)).eval()
    tok = CharTokenizer()
    g = torch.Generator().manual_seed(0)
    samples = [S(torch.randint(0, 12, (n,), generator=g).tolist(), ref="a b c") for n in (9, 14, 2)]
    registered("_test_t2t", make_token2text_reward(rm, tok, batch_size=2))
    total, _ = compute_rewards(RewardConfig([{"name": "_test_t2t", "kwargs": {"mode": "wer", "floor": -5.0}}]),
                               samples)
    for s, r in zip(samples, total):
        x = torch.tensor([s.hyp_tokens])
        hyp = tok.decode(rm.ctc_greedy(x, torch.tensor([x.shape[1]]))[0])
        assert r.item() == pytest.approx(max(-5.0, 1.0 - error_rate("a b c", hyp)))
    total, _ = compute_rewards(RewardConfig([{"name": "_test_t2t",
                                              "kwargs": {"mode": "logprob", "infeasible": -7.0}}]), samples)
    for s, r in zip(samples[:2], total[:2]):
        x = torch.tensor([s.hyp_tokens])
        ll = rm.log_likelihoods(x, torch.tensor([x.shape[1]]), torch.tensor([[0, 1, 2]]), torch.tensor([3]))["text"]
        assert r.item() == pytest.approx(ll.item() / 3, abs=1e-4)
    assert total[2].item() == -7.0  # 2 tokens cannot carry 3 text ids
    empty = make_token2text_reward(rm, tok)([S([], ref="a")], mode="logprob")
    assert len(empty) == 1 and math.isfinite(empty[0])
    with pytest.raises(ValueError, match="mode"):
        make_token2text_reward(rm, tok)(samples, mode="bleu")
