"""GRPO rollouts over any policy that turns its input into prompt embeddings (PAPER.md s1-s2).

Nothing here knows about audio or text: a task encodes its batch into right-padded prompt embeddings
(B, T, D) with lengths (B,) (``ASRModel.encode`` does exactly that), and this module

* samples G completions per prompt with the batched KV-cached sampler (``sample_rollouts``), group-major:
  rows b*G .. b*G+G-1 are prompt b's group, the layout ``group_advantages`` expects;
* recomputes teacher-forced log-probs of those completions under the policy (with grad) or the frozen
  reference (without): ``policy_logprobs``.

Old-policy log-probs. ``Rollout.old_logp`` are the log-probs the sampler drew each token with (``generate``'s
``logprobs``: logits / temperature, after top-k/top-p). We keep them instead of running one more forward pass:
with top_k = 0 and top_p = 1 they equal ``policy_logprobs`` at the sampling temperature on the weights that
sampled (tests/unit/rl/test_rollout.py), so they are the exact pi_old of the clipped ratio for num_iterations
> 1 at no cost. With top-k/top-p on they are log-probs of the *filtered* distribution (>= the unfiltered
ones), which biases the ratio low; GRPOStepConfig.old_logprobs='recompute' then recomputes them. For
num_iterations = 1 the GRPO step does not use them at all (on-policy: ratio exactly 1, see grpo_loss).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from audiorl.models.llm import LLM
from audiorl.models.sampling import GenerationOutput, generate, pack_right
from audiorl.rl.config import GRPOConfig
from audiorl.rl.grpo import selective_log_softmax, token_entropy

__all__ = ["Rollout", "sample_rollouts", "greedy_rollouts", "policy_logprobs"]


@dataclass
class Rollout:
    """G sampled completions per prompt; N = B * G rows, group-major. Everything is on the policy's device."""

    tokens: torch.Tensor  # (N, L) long; the end token is kept (a policy must learn to stop); pad_id after it
    lengths: torch.Tensor  # (N,) long, completion tokens incl. the end token
    old_logp: torch.Tensor  # (N, L) float32, log-prob under the sampling distribution (docstring); 0 past lengths
    mask: torch.Tensor  # (N, L) bool, True on completion tokens (end token included)
    truncated: torch.Tensor  # (N,) bool, hit max_new_tokens without an end token
    num_generations: int  # G

    @property
    def num_prompts(self) -> int:
        return self.tokens.shape[0] // self.num_generations

    @property
    def group_index(self) -> torch.Tensor:
        """(N,) the prompt each row belongs to."""
        n = self.tokens.shape[0]
        return torch.arange(n, device=self.tokens.device) // self.num_generations

    def completion_ids(self, eos_id: int | None) -> list[list[int]]:
        """Per row, the sampled ids without the end token (what a task decodes into text); one host sync."""
        n_keep = self.lengths - (~self.truncated).long() if eos_id is not None else self.lengths
        return [row[:k].tolist() for row, k in zip(self.tokens.cpu(), n_keep.cpu())]

    def to(self, device) -> "Rollout":
        return Rollout(**{f.name: (getattr(self, f.name).to(device) if isinstance(getattr(self, f.name), torch.Tensor)
                                   else getattr(self, f.name)) for f in fields(self)})

    def state(self) -> dict[str, torch.Tensor | int]:
        """Plain tensors on CPU (checkpointable with weights_only=True)."""
        return {f.name: (v.cpu() if isinstance(v := getattr(self, f.name), torch.Tensor) else v) for f in fields(self)}

    @classmethod
    def from_state(cls, state: dict, device=None) -> "Rollout":
        r = cls(**state)
        return r.to(device) if device is not None else r


@torch.no_grad()
def sample_rollouts(llm: LLM, prompt_embeds: torch.Tensor, prompt_lens: torch.Tensor, cfg: GRPOConfig,
                    eos_id: int | None, pad_id: int | None = None, generator: torch.Generator | None = None,
                    max_new_tokens: int | None = None) -> Rollout:
    """Sample cfg.num_generations completions per prompt at cfg.temperature / top_k / top_p.

    prompt_embeds (B, T, D) right-padded, prompt_lens (B,) >= 1. ``max_new_tokens`` (<= cfg.max_new_tokens)
    lets a task cap a batch's budget below the config's, e.g. by audio length, so that one looping sample does
    not run every row to the global limit. The KV caches stay allocated: call ``llm.clear_caches()`` before
    the update when memory matters (the GRPO step does).
    """
    limit = cfg.max_new_tokens if max_new_tokens is None else min(max_new_tokens, cfg.max_new_tokens)
    out = generate(llm, prompt_embeds, prompt_lens, limit, eos_id, temperature=cfg.temperature, top_k=cfg.top_k,
                   top_p=cfg.top_p, num_samples=cfg.num_generations, generator=generator, pad_id=pad_id)
    return _as_rollout(out, eos_id, cfg.num_generations)


@torch.no_grad()
def greedy_rollouts(llm: LLM, prompt_embeds: torch.Tensor, prompt_lens: torch.Tensor, cfg: GRPOConfig,
                    eos_id: int | None, pad_id: int | None = None, max_new_tokens: int | None = None) -> Rollout:
    """One greedy completion per prompt (a Rollout with groups of one) under the same length budget as
    ``sample_rollouts``: the reward baseline of ``GRPOConfig.baseline = 'greedy'``."""
    limit = cfg.max_new_tokens if max_new_tokens is None else min(max_new_tokens, cfg.max_new_tokens)
    out = generate(llm, prompt_embeds, prompt_lens, limit, eos_id, temperature=0.0, pad_id=pad_id)
    return _as_rollout(out, eos_id, 1)


def _as_rollout(out: GenerationOutput, eos_id: int | None, num_generations: int) -> Rollout:
    """A Rollout of ``generate``'s output: the mask of each row's tokens, and truncation (no eos within budget)."""
    L = out.tokens.shape[1]
    mask = torch.arange(L, device=out.tokens.device)[None] < out.lengths[:, None]  # (N, L)
    truncated = ~out.finished if eos_id is not None else torch.zeros_like(out.finished)
    return Rollout(out.tokens, out.lengths, out.logprobs.float(), mask, truncated, num_generations)


def policy_logprobs(llm: LLM, prompt_embeds: torch.Tensor, prompt_lens: torch.Tensor, tokens: torch.Tensor,
                    lengths: torch.Tensor, temperature: float = 1.0, with_entropy: bool = False
                    ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Teacher-forced log p(token_t | prompt, tokens_<t) at ``temperature``: (N, L), 0 past lengths.

    The same computation as ``audiorl.models.sampling.sequence_logprobs`` (prompts (B, T, D) are repeated G =
    N / B times to match the group-major rows), plus the per-token entropy (N, L) of the tempered distribution
    when ``with_entropy`` (detached, for logging; costs one softmax over the vocabulary). Differentiable in
    the LLM's weights and in ``prompt_embeds``; wrap in ``torch.no_grad()`` for the reference model.
    """
    N, L = tokens.shape
    B = prompt_embeds.shape[0]
    if B != N:
        assert N % B == 0, f"{N} completion rows is not a multiple of {B} prompts"
        prompt_embeds = prompt_embeds.repeat_interleave(N // B, 0)  # (N, T, D)
        prompt_lens = prompt_lens.repeat_interleave(N // B, 0)
    x, _ = pack_right([(prompt_embeds, prompt_lens), (llm.embed(tokens), lengths)])  # (N, T', D)
    h = llm.hidden_states(inputs_embeds=x)  # (N, T', D): right padding, causal attention is exact
    at = (prompt_lens[:, None] - 1 + torch.arange(L, device=x.device)).clamp(max=x.shape[1] - 1)  # (N, L)
    h = h.gather(1, at[..., None].expand(N, L, h.shape[-1]))  # (N, L, D): the state that predicts token t
    logits = llm.output(h).float() / temperature  # (N, L, V)
    past = torch.arange(L, device=x.device)[None] >= lengths[:, None]  # (N, L)
    logp = selective_log_softmax(logits, tokens).masked_fill(past, 0.0)
    ent = None
    if with_entropy:
        with torch.no_grad():
            ent = token_entropy(logits.detach()).masked_fill(past, 0.0)
    return logp, ent
