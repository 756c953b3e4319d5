"""Batched KV-cached sampling from an LLM given prompt embeddings: pure functions shared by decoding and RL rollouts.

Layout. Callers hand over RIGHT-padded prompts, ``prompt_embeds`` (B, T, D) with ``prompt_lens`` (B,): row b holds
its prompt in [0, len_b), the layout ASRModel.encode produces. ``generate`` left-aligns them (row b moves to
[T - len_b, T)) so that every row's next token goes to the same cache slot T + step; RoPE positions stay per row
(len_b + step), and a key mask over cache slots hides the left padding. So one ``input_pos`` serves the batch and
the decode loop has static shapes.

Output of ``generate`` (N = B * num_samples rows; each prompt's samples are adjacent rows b*G .. b*G+G-1):
* tokens (N, L): sampled ids, ``pad_id`` after the end; the eos token itself is kept and counted in ``lengths``
  (a policy must learn to stop, so RL scores it too). ``finished`` tells eos-reached from truncated rows.
* logprobs (N, L): log-prob of each sampled token under the distribution it was drawn from (temperature, top-k,
  top-p applied; 0 for greedy, which is deterministic); raw_logprobs (N, L): under the plain model (temperature 1,
  no filtering), i.e. what ``sequence_logprobs`` recomputes teacher-forced. Both are 0 past ``lengths``.
Syncs: none per step, except the all-finished check every ``check_every`` steps, and one at the end.
Memory: the KV caches (n_layers x 2 x N x n_kv_heads x cache_len x head_dim) stay allocated for the next call with
the same rounded length; ``llm.clear_caches()`` frees them (e.g. before the RL update on a GPU).
Every prompt needs prompt_lens >= 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from audiorl.models.llm import LLM


@dataclass
class GenerationOutput:
    tokens: torch.Tensor  # (N, L) long, pad_id past lengths
    lengths: torch.Tensor  # (N,) long, generated tokens incl. eos
    logprobs: torch.Tensor  # (N, L) float32, under the sampling distribution
    raw_logprobs: torch.Tensor  # (N, L) float32, under the temperature-1 model
    finished: torch.Tensor  # (N,) bool, True = eos reached, False = truncated at max_new_tokens


# ---- layout helpers ------------------------------------------------------------------------------------------------
def pack_right(segments: list[tuple[torch.Tensor, torch.Tensor]], pad_value: float = 0):
    """Concatenate ragged segments row by row, right-padded: [seg1_b][seg2_b]...[pad].

    segments: (x (B, S_j, ...), lens (B,)); returns (packed (B, max total, ...), total lens (B,)). Differentiable
    (a gather). One host sync to size the output.
    """
    xs, lens = [x for x, _ in segments], [n for _, n in segments]
    B, device = xs[0].shape[0], xs[0].device
    cat = torch.cat(xs, dim=1)  # (B, sum S_j, ...)
    total = torch.stack(lens).sum(0)  # (B,)
    T = int(total.max())
    p = torch.arange(T, device=device).expand(B, T)  # (B, T)
    src = torch.zeros_like(p)
    start, col0 = torch.zeros_like(total), 0
    for x, n in segments:
        inside = (p >= start[:, None]) & (p < (start + n)[:, None])  # (B, T)
        src = torch.where(inside, col0 + p - start[:, None], src)
        start, col0 = start + n, col0 + x.shape[1]
    trail = cat.shape[2:]
    out = cat.gather(1, src.view(B, T, *[1] * len(trail)).expand(B, T, *trail))  # (B, T, ...)
    valid = (p < total[:, None]).view(B, T, *[1] * len(trail))
    return out.masked_fill(~valid, pad_value), total


def left_align(x: torch.Tensor, lens: torch.Tensor):
    """Right-padded (B, T, ...) -> left-padded (B, T, ...) and its mask (B, T) (True = real)."""
    B, T = x.shape[:2]
    p = torch.arange(T, device=x.device)
    shift = (T - lens)[:, None]  # (B, 1)
    src = (p[None] - shift).clamp(min=0)  # (B, T)
    trail = x.shape[2:]
    out = x.gather(1, src.view(B, T, *[1] * len(trail)).expand(B, T, *trail))
    mask = p[None] >= shift  # (B, T)
    return out.masked_fill(~mask.view(B, T, *[1] * len(trail)), 0), mask


def cache_length(llm: LLM, needed: int, multiple: int = 64) -> int:
    """Round the cache length up so that batches of similar size reuse the buffers (capped at max_seq_len)."""
    assert needed <= llm.config.max_seq_len, f"prompt + new tokens = {needed} > max_seq_len {llm.config.max_seq_len}"
    return min(-(-needed // multiple) * multiple, llm.config.max_seq_len)


# ---- one step at a time ----------------------------------------------------------------------------------------------
def prefill(llm: LLM, x: torch.Tensor, positions: torch.Tensor, input_pos: torch.Tensor, key_mask: torch.Tensor):
    """Run left-aligned prompts (B, T, D) through the cache; returns the next-token logits (B, V) in fp32."""
    h = llm.hidden_states(inputs_embeds=x, positions=positions, attention_mask=key_mask, input_pos=input_pos)
    return llm.output(h[:, -1]).float()  # left alignment: the last column is every row's last prompt token


def decode_one_token(llm: LLM, tok: torch.Tensor, positions: torch.Tensor, input_pos: torch.Tensor,
                     key_mask: torch.Tensor):
    """tok (N, 1) at RoPE positions (N, 1), written to cache slot input_pos (1,); returns logits (N, V) fp32.
    key_mask (N, S_cache) must already mark slot input_pos: with left-aligned rows it then is the whole causal mask
    (later slots are still empty), so it goes in as a ready (N, 1, 1, S) mask."""
    h = llm.hidden_states(tok, positions=positions, attention_mask=key_mask[:, None, None, :], input_pos=input_pos)
    return llm.output(h[:, -1]).float()


def process_logits(logits: torch.Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0):
    """Temperature, then top-k (0 = off), then top-p / nucleus (1.0 = off); removed entries become -inf."""
    assert temperature > 0, "process_logits needs temperature > 0 (temperature 0 means greedy: use argmax)"
    logits = logits / temperature  # (N, V)
    if top_k > 0 and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # (N, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)  # (N, V)
        probs = sorted_logits.softmax(-1)
        drop = probs.cumsum(-1) - probs >= top_p  # smallest set with mass >= p; the top token always stays
        logits = logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
    return logits


def sample(logits: torch.Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
           generator: torch.Generator | None = None):
    """Draw one token per row from logits (N, V). Returns (tokens (N,), log-probs (N,) under the sampling
    distribution). temperature 0 = greedy (log-prob 0). No host sync: the exponential race argmax(p / E), E ~ Exp(1),
    draws from p without torch.multinomial."""
    if temperature == 0:
        return logits.argmax(-1), torch.zeros(logits.shape[0], device=logits.device)
    logp = process_logits(logits.float(), temperature, top_k, top_p).log_softmax(-1)  # (N, V)
    race = torch.empty_like(logp).exponential_(1, generator=generator)
    tok = (logp.exp() / race).argmax(-1)  # (N,)
    return tok, logp.gather(-1, tok[:, None]).squeeze(-1)


# ---- the loop ----------------------------------------------------------------------------------------------------
@torch.no_grad()
def generate(llm: LLM, prompt_embeds: torch.Tensor, prompt_lens: torch.Tensor, max_new_tokens: int,
             eos_id: int | None, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, num_samples: int = 1,
             generator: torch.Generator | None = None, pad_id: int | None = None,
             check_every: int = 8) -> GenerationOutput:
    """Sample up to max_new_tokens per row after right-padded prompts (B, T, D); see the module docstring.

    num_samples G: each prompt is prefilled once and its cache rows fanned out G times. eos_id None: never stop
    early (fixed-length benchmarks). pad_id defaults to eos_id (0 if that is None). generator: on the prompt's device.
    """
    B, T, _ = prompt_embeds.shape
    G, device = num_samples, prompt_embeds.device
    assert prompt_lens.shape == (B,), f"prompt_lens must be ({B},), got {tuple(prompt_lens.shape)}"
    assert max_new_tokens >= 1 and G >= 1, f"need max_new_tokens >= 1 and num_samples >= 1, got {max_new_tokens}, {G}"
    pad_id = pad_id if pad_id is not None else (eos_id if eos_id is not None else 0)
    N = B * G
    llm.setup_caches(N, cache_length(llm, T + max_new_tokens), device=device)
    lens = prompt_lens.to(device=device, dtype=torch.long)

    x, mask = left_align(prompt_embeds.to(llm.output.weight.dtype), lens)  # (B, T, D), (B, T)
    key_mask = torch.zeros(B, llm.cache_len, dtype=torch.bool, device=device)  # (B, S_cache) slot holds a token
    key_mask[:, :T] = mask
    positions = (torch.arange(T, device=device)[None] - (T - lens)[:, None]).clamp(min=0)  # (B, T)
    logits = prefill(llm, x, positions, torch.arange(T, device=device), key_mask)  # (B, V)
    if G > 1:
        rows = torch.arange(B, device=device).repeat_interleave(G)  # (N,)
        llm.reorder_caches(rows)
        key_mask, logits, lens = key_mask[rows], logits[rows], lens[rows]

    input_pos = torch.tensor([T], device=device)  # (1,) cache slot of the token being fed
    pos = lens[:, None].clone()  # (N, 1) its RoPE position
    toks, lps, raws = [], [], []  # per step (N,); rows keep sampling after their eos, masked at the end
    for step in range(max_new_tokens):
        if step > 0:
            if eos_id is not None and step % check_every == 0 and bool(torch.stack(toks, 1).eq(eos_id).any(1).all()):
                break
            key_mask[:, T + step - 1] = True
            logits = decode_one_token(llm, toks[-1][:, None], pos, input_pos, key_mask)  # (N, V)
            input_pos += 1
            pos += 1
        tok, lp = sample(logits, temperature, top_k, top_p, generator)  # (N,), (N,)
        toks.append(tok)
        lps.append(lp)
        raws.append(logits.log_softmax(-1).gather(-1, tok[:, None]).squeeze(-1))

    tokens = torch.stack(toks, 1)  # (N, L)
    L = tokens.shape[1]
    if eos_id is None:
        finished = torch.zeros(N, dtype=torch.bool, device=device)
        lengths = torch.full((N,), L, dtype=torch.long, device=device)
    else:
        is_eos = tokens == eos_id  # (N, L)
        finished = is_eos.any(1)
        lengths = torch.where(finished, is_eos.int().argmax(1) + 1, L)  # argmax: the first eos
    past = torch.arange(L, device=device)[None] >= lengths[:, None]  # (N, L)
    L = max(int(lengths.max()), 1)
    return GenerationOutput(tokens.masked_fill(past, pad_id)[:, :L], lengths,
                            torch.stack(lps, 1).masked_fill(past, 0.0)[:, :L],
                            torch.stack(raws, 1).masked_fill(past, 0.0)[:, :L], finished)


def sequence_logprobs(llm: LLM, prompt_embeds: torch.Tensor, prompt_lens: torch.Tensor, tokens: torch.Tensor,
                      lengths: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Teacher-forced log p(tokens | prompt) per token (N, L), 0 past lengths; differentiable (policy/reference
    forward in RL). Prompts (B, T, D) right-padded; if N = B * G they are repeated to match generate's row order."""
    N, L = tokens.shape
    B = prompt_embeds.shape[0]
    if B != N:
        assert N % B == 0, f"{N} token rows is not a multiple of {B} prompts"
        prompt_embeds, prompt_lens = prompt_embeds.repeat_interleave(N // B, 0), prompt_lens.repeat_interleave(N // B, 0)
    x, _ = pack_right([(prompt_embeds, prompt_lens), (llm.embed(tokens), lengths)])  # (N, T', D)
    h = llm.hidden_states(inputs_embeds=x)  # (N, T', D) right padding: causal attention is exact
    at = (prompt_lens[:, None] - 1 + torch.arange(L, device=x.device)).clamp(max=x.shape[1] - 1)  # (N, L)
    h = h.gather(1, at[..., None].expand(N, L, h.shape[-1]))  # (N, L, D) state that predicts token t
    logits = llm.output(h).float() / temperature  # (N, L, V)
    lp = logits.gather(-1, tokens[..., None]).squeeze(-1) - logits.logsumexp(-1)  # (N, L)
    return lp.masked_fill(torch.arange(L, device=x.device)[None] >= lengths[:, None], 0.0)
