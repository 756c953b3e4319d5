"""audiorl.rl.rollout: shapes, group-major layout, old log-probs == teacher-forced log-probs at the sampling
temperature."""

import pytest
import torch

from audiorl.models.llm import LLM, LLMConfig
from audiorl.models.sampling import sequence_logprobs
from audiorl.rl.config import GRPOConfig
from audiorl.rl.rollout import Rollout, policy_logprobs, sample_rollouts

EOS = 7


def tiny_llm(seed=0):
    torch.manual_seed(seed)
    return LLM(LLMConfig(vocab_size=8, dim=16, n_layers=2, n_heads=2, n_kv_heads=1, intermediate_size=32,
                         max_seq_len=64, init_std=0.5)).eval()


def prompts(llm, lens=(3, 5, 2)):
    B, T = len(lens), max(lens)
    ids = torch.randint(0, 7, (B, T), generator=torch.Generator().manual_seed(1))
    x = llm.embed(ids).detach()
    lens = torch.tensor(lens)
    x = x.masked_fill(torch.arange(T)[None, :, None] >= lens[:, None, None], 0.0)  # right padding
    return x, lens


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_rollout_shapes_groups_and_old_logprobs(temperature):
    llm = tiny_llm()
    x, lens = prompts(llm)
    cfg = GRPOConfig(num_generations=4, temperature=temperature, max_new_tokens=6)
    r = sample_rollouts(llm, x, lens, cfg, EOS, generator=torch.Generator().manual_seed(0))
    N, L = r.tokens.shape
    assert N == 12 and L <= 6 and r.num_prompts == 3
    assert r.group_index.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert r.mask.sum(1).tolist() == r.lengths.tolist()
    assert (r.old_logp[~r.mask] == 0).all() and (r.old_logp[r.mask] < 0).all()
    ends_with_eos = r.tokens.gather(1, (r.lengths - 1)[:, None]).squeeze(1) == EOS
    assert (ends_with_eos == ~r.truncated).all()
    assert (r.truncated == (r.lengths == 6) & ~ends_with_eos).all()
    # the sampler's log-probs are the teacher-forced ones at the sampling temperature (top-k/top-p off)
    tf, ent = policy_logprobs(llm, x, lens, r.tokens, r.lengths, temperature, with_entropy=True)
    assert torch.allclose(tf, r.old_logp, atol=1e-5), (tf - r.old_logp).abs().max()
    assert torch.allclose(tf, sequence_logprobs(llm, x, lens, r.tokens, r.lengths, temperature), atol=1e-6)
    assert (ent[r.mask] > 0).all() and (ent[~r.mask] == 0).all()
    # the ids without their end token, per row
    ids = r.completion_ids(EOS)
    assert [len(s) for s in ids] == (r.lengths - (~r.truncated).long()).tolist()
    assert all(EOS not in s for s in ids)


def test_rollouts_are_reproducible_and_checkpointable():
    llm = tiny_llm()
    x, lens = prompts(llm)
    cfg = GRPOConfig(num_generations=3, max_new_tokens=5)
    a = sample_rollouts(llm, x, lens, cfg, EOS, generator=torch.Generator().manual_seed(5))
    b = sample_rollouts(llm, x, lens, cfg, EOS, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a.tokens, b.tokens)
    c = Rollout.from_state(a.state())
    assert torch.equal(c.tokens, a.tokens) and c.num_generations == 3


def test_policy_logprobs_gradient_reaches_prompt_and_weights():
    llm = tiny_llm().train()
    x, lens = prompts(llm)
    x.requires_grad_(True)
    cfg = GRPOConfig(num_generations=2, max_new_tokens=4)
    r = sample_rollouts(llm, x.detach(), lens, cfg, EOS, generator=torch.Generator().manual_seed(0))
    logp, _ = policy_logprobs(llm, x, lens, r.tokens, r.lengths)
    logp.sum().backward()
    assert x.grad.abs().sum() > 0 and llm.tok_embeddings.weight.grad.abs().sum() > 0
    # padded prompt positions get no gradient: they never reach the LLM
    assert (x.grad[2, 2:] == 0).all()
