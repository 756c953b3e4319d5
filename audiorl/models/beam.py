"""Batched beam search over the preallocated KV cache (B prompts x K beams = B*K cache rows).

Each step scores all K*V continuations of a row's K beams and keeps the top 2K. Candidates that end in eos and rank
among the top K are moved to the row's pool of finished hypotheses (fairseq's rule, so beam 1 == greedy); the best K
non-eos candidates stay alive, and the cache rows are reordered to follow their parent beams.
Scores are length-normalised: sum log p / length ** length_penalty (length counts eos; length_penalty 0 = raw sum).
A row is done once its pool holds K hypotheses and the worst of them beats the best alive beam normalised at the
current length (the Hugging Face heuristic; exact for length_penalty 0). Rows still running at max_new_tokens add
their alive beams to the pool, marked unfinished. Prompts are right-padded (B, T, D) as in sampling.generate.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from audiorl.models.llm import LLM
from audiorl.models.sampling import cache_length, decode_one_token, left_align, prefill


@dataclass
class BeamOutput:
    tokens: torch.Tensor  # (B, nbest, L) long, best first, eos kept, pad_id after
    lengths: torch.Tensor  # (B, nbest) long, incl. eos
    scores: torch.Tensor  # (B, nbest) float32, length-normalised (the ranking score)
    logprob_sums: torch.Tensor  # (B, nbest) float32, sum of token log-probs
    finished: torch.Tensor  # (B, nbest) bool, False = truncated at max_new_tokens


@torch.no_grad()
def beam_search(llm: LLM, prompt_embeds: torch.Tensor, prompt_lens: torch.Tensor, max_new_tokens: int, eos_id: int,
                beam_size: int = 4, length_penalty: float = 1.0, nbest: int | None = None, pad_id: int | None = None,
                check_every: int = 4) -> BeamOutput:
    B, T, _ = prompt_embeds.shape
    K, device = beam_size, prompt_embeds.device
    nbest = nbest or K
    pad_id = eos_id if pad_id is None else pad_id
    V = llm.config.vocab_size
    assert 1 <= nbest <= K, f"nbest {nbest} must be in [1, beam_size {K}]"
    assert 2 * K <= V, f"beam_size {K} too large for vocab {V} (needs 2 * beam_size <= vocab)"
    N = B * K
    llm.setup_caches(N, cache_length(llm, T + max_new_tokens), device=device)
    lens = prompt_lens.to(device=device, dtype=torch.long)

    x, mask = left_align(prompt_embeds.to(llm.output.weight.dtype), lens)  # (B, T, D), (B, T)
    key_mask = torch.zeros(B, llm.cache_len, dtype=torch.bool, device=device)  # (B, S_cache)
    key_mask[:, :T] = mask
    positions = (torch.arange(T, device=device)[None] - (T - lens)[:, None]).clamp(min=0)  # (B, T)
    logits = prefill(llm, x, positions, torch.arange(T, device=device), key_mask)  # (B, V)
    rows = torch.arange(B, device=device).repeat_interleave(K)  # (N,)
    llm.reorder_caches(rows)
    key_mask, logits, lens = key_mask[rows], logits[rows], lens[rows]

    neg_inf = float("-inf")
    L = max_new_tokens
    alive_tok = torch.full((B, K, L), pad_id, dtype=torch.long, device=device)
    alive_sum = torch.full((B, K), neg_inf, device=device)
    alive_sum[:, 0] = 0.0  # all K beams start identical: keep only one
    pool_tok = torch.full((B, K, L), pad_id, dtype=torch.long, device=device)
    pool_score = torch.full((B, K), neg_inf, device=device)  # normalised, sorted best first
    pool_sum = torch.zeros(B, K, device=device)
    pool_len = torch.zeros(B, K, dtype=torch.long, device=device)
    done = torch.zeros(B, dtype=torch.bool, device=device)
    top2k = torch.arange(2 * K, device=device)
    input_pos = torch.tensor([T], device=device)
    steps_run = 0
    for step in range(L):
        if step > 0:
            if step % check_every == 0 and bool(done.all()):
                break
            key_mask[:, T + step - 1] = True
            logits = decode_one_token(llm, tok[:, None], (lens + step - 1)[:, None], input_pos, key_mask)  # (N, V)
            input_pos += 1
        steps_run, length = step + 1, float(step + 1)
        cand = alive_sum[:, :, None] + logits.log_softmax(-1).view(B, K, V)  # (B, K, V)
        top_sum, top_idx = cand.view(B, K * V).topk(2 * K, dim=-1)  # (B, 2K)
        parent, tok2k = top_idx // V, top_idx % V  # (B, 2K)
        cand_tok = alive_tok.gather(1, parent[..., None].expand(B, 2 * K, L)).clone()  # (B, 2K, L)
        cand_tok[:, :, step] = tok2k
        is_eos = tok2k == eos_id

        # finished candidates: eos within the top K, rows not done
        fin = is_eos & (top2k[None] < K) & ~done[:, None] & torch.isfinite(top_sum)  # (B, 2K)
        fin_score = torch.where(fin, top_sum / length ** length_penalty, neg_inf)
        pool_score, pool_sum, pool_len, pool_tok = _merge_pool(
            pool_score, pool_sum, pool_len, pool_tok, fin_score, top_sum, torch.full_like(top_sum, step + 1,
                                                                                         dtype=torch.long), cand_tok, K)

        # alive: the best K non-eos candidates (at most K of the 2K end in eos, one per parent beam)
        alive_sum, j = torch.where(is_eos, neg_inf, top_sum).topk(K, dim=-1)  # (B, K)
        src = parent.gather(1, j)  # (B, K) parent beam of each survivor
        alive_tok = cand_tok.gather(1, j[..., None].expand(B, K, L))
        tok = tok2k.gather(1, j).view(N)
        llm.reorder_caches((torch.arange(B, device=device)[:, None] * K + src).view(N))

        best_alive = alive_sum.max(-1).values / length ** length_penalty  # (B,)
        done |= torch.isfinite(pool_score[:, -1]) & (pool_score[:, -1] >= best_alive)

    # rows still running: alive beams join the pool as unfinished hypotheses
    alive_score = torch.where(done[:, None], neg_inf, alive_sum / float(steps_run) ** length_penalty)
    pool_fin = torch.isfinite(pool_score)
    score, order = torch.cat([pool_score, alive_score], 1).topk(nbest, dim=-1)  # (B, nbest)
    tok_all = torch.cat([pool_tok, alive_tok], 1).gather(1, order[..., None].expand(B, nbest, L))
    sums = torch.cat([pool_sum, alive_sum], 1).gather(1, order)
    lengths = torch.cat([pool_len, torch.full_like(pool_len, steps_run)], 1).gather(1, order)
    finished = torch.cat([pool_fin, torch.zeros_like(pool_fin)], 1).gather(1, order)
    Lmax = max(int(lengths.max()), 1)
    return BeamOutput(tok_all[:, :, :Lmax], lengths, score, sums, finished)


def _merge_pool(score, sums, lens, toks, new_score, new_sums, new_lens, new_toks, K):
    """Keep the K best of the pool (B, K) and new finished candidates (B, M) (-inf = empty/not finished)."""
    all_score, i = torch.cat([score, new_score], 1).topk(K, dim=-1)  # (B, K)
    L = toks.shape[-1]
    return (all_score, torch.cat([sums, new_sums], 1).gather(1, i), torch.cat([lens, new_lens], 1).gather(1, i),
            torch.cat([toks, new_toks], 1).gather(1, i[..., None].expand(-1, -1, L)))
