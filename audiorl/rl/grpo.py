"""The GRPO objective (PAPER.md section 2) as pure tensor functions.

Nothing here knows about audio, text or models: inputs are rewards, token log-probs, masks and
advantages. Shapes: N = B * G completions (group-major: rows g*G .. g*G+G-1 are one prompt's group),
L = padded completion length, V = vocabulary size.

    adv, zero_std, adv_stats = group_advantages(rewards, cfg.num_generations, cfg.scale_rewards, cfg.advantage_eps)
    loss, stats = grpo_loss(logp, old_logp, adv, mask, ref_logp, cfg=cfg,
                            truncated=truncated, zero_std_mask=zero_std)

Stats are detached 0-dim tensors (no device sync here); call ``.item()`` when logging.
"""

from __future__ import annotations

from typing import Literal

import torch

from audiorl.rl.config import GRPOConfig

__all__ = ["group_advantages", "kl_penalty", "grpo_loss", "selective_log_softmax", "token_entropy"]


# ------------------------------------------------------------------------------------------ advantages
def group_advantages(
    rewards: torch.Tensor,
    num_generations: int,
    scale: Literal["group", "batch", "none"] = "group",
    eps: float = 1e-4,
    baseline: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """A_i = (r_i - mean(group)) / (std + eps), PAPER.md s2; ``scale`` picks which std (GRPOConfig help).

    ``baseline`` (B,): one reward per prompt to centre its group on instead of the group mean (GRPOConfig.baseline
    'greedy': the greedy completion's reward); 'group' scaling then takes the std of the group's G rewards together
    with the baseline's, and 'batch' the std of all N sampled rewards as before.

    Returns (advantages (N,), zero_std_mask (N,) bool, stats). Rows of a group whose rewards are all
    exactly equal (and, with a baseline, equal to it) get advantage 0 exactly (not ~1e-13 from float round-off)
    and zero_std_mask True.
    """
    assert rewards.dim() == 1, f"rewards must be 1-D (N,), got shape {tuple(rewards.shape)}"
    n, g = rewards.numel(), num_generations
    assert g >= 1 and n % g == 0, f"{n} rewards are not a whole number of groups of {g} (group-major layout)"
    r = rewards.detach()
    r = (r if r.is_floating_point() else r.float()).view(n // g, g)  # (B, G)
    if baseline is None:
        centre = r.mean(dim=1, keepdim=True)  # (B, 1)
        # unbiased (n-1) std like TRL; a group of 1 has no spread: define its std as 0
        group_std = r.std(dim=1, keepdim=True) if g > 1 else torch.zeros_like(centre)  # (B, 1)
        zero_std = (r == r[:, :1]).all(dim=1, keepdim=True)  # (B, 1): exact ties, robust to round-off
    else:
        b = baseline.detach().to(r.dtype).reshape(-1, 1)  # (B, 1)
        assert b.shape[0] == n // g, f"baseline has {b.shape[0]} rewards for {n // g} groups"
        centre = b
        group_std = torch.cat([r, b], dim=1).std(dim=1, keepdim=True)  # (B, 1): G samples + the baseline
        zero_std = (r == b).all(dim=1, keepdim=True)  # every sample scores exactly the baseline
    centred = r - centre  # (B, G)
    if scale == "group":
        adv = centred / (group_std + eps)
    elif scale == "batch":
        batch_std = r.std() if n > 1 else r.new_zeros(())
        adv = centred / (batch_std + eps)
    elif scale == "none":
        adv = centred
    else:
        raise ValueError(f"scale={scale!r}: choose one of 'group', 'batch', 'none'")
    adv = torch.where(zero_std, torch.zeros_like(adv), adv)
    zero_std_rows = zero_std.expand_as(r).reshape(n)
    stats = {
        "reward_mean": r.mean(),
        "reward_std": r.std() if n > 1 else r.new_zeros(()),
        "group_std_mean": group_std.mean(),
        "frac_zero_std": zero_std.float().mean(),
        "n_zero_std_groups": zero_std.sum(),
        "adv_abs_mean": adv.abs().mean(),
    }
    return adv.reshape(n), zero_std_rows, stats


# ------------------------------------------------------------------------------------------ KL
def kl_penalty(
    logp: torch.Tensor, ref_logp: torch.Tensor, estimator: Literal["k3", "k1", "k2"] = "k3"
) -> torch.Tensor:
    """Per-token KL(pi_theta || pi_ref) estimate from sampled-token log-probs (same shape in and out).

    With d = ref_logp - logp: k3 = exp(d) - d - 1 (PAPER.md s2), k1 = -d, k2 = d^2 / 2 (Schulman's
    estimators). Gradients flow into ``logp`` only if it requires them; ``ref_logp`` is a constant.
    """
    d = ref_logp.detach() - logp
    if estimator == "k3":
        return torch.exp(d) - d - 1.0
    if estimator == "k1":
        return -d
    if estimator == "k2":
        return 0.5 * d * d
    raise ValueError(f"estimator={estimator!r}: choose one of 'k3', 'k1', 'k2'")


# ------------------------------------------------------------------------------------------ loss
def _masked_mean(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Mean of x over m's True entries; 0 when there are none (no NaN)."""
    return (x * m).sum() / m.sum().clamp(min=1)


def grpo_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor | None,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    ref_logp: torch.Tensor | None = None,
    *,
    cfg: GRPOConfig,
    truncated: torch.Tensor | None = None,
    zero_std_mask: torch.Tensor | None = None,
    entropy: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The clipped GRPO objective with KL penalty, aggregated per ``cfg.loss_aggregation``.

    logp (N, L): current policy's log-prob of each sampled token (requires grad).
    old_logp (N, L) or None: the rollout policy's log-probs; None means on-policy (mu = 1) and uses
        logp.detach(), so the ratio is 1 in value while its gradient is grad(logp).
    advantages (N,); mask (N, L), 1/True on completion tokens (the end token included), 0 on padding.
    ref_logp (N, L): frozen reference log-probs; required iff cfg.beta > 0.
    truncated (N,) bool: completions that hit max_new_tokens without an end token; used only when
        cfg.mask_truncated_completions. zero_std_mask (N,) bool from group_advantages; used only when
        cfg.skip_zero_std_groups. entropy (N, L): token entropies, only reported in stats.

    Per token: -min(ratio * A, clip(ratio, 1 - eps_low, 1 + eps_high) * A) + beta * KL_t.
    If every row is excluded the loss is an exact 0 still attached to logp's graph (backward is a no-op).
    """
    n, length = logp.shape
    assert mask.shape == (n, length), f"mask {tuple(mask.shape)} != logp {tuple(logp.shape)}"
    assert advantages.shape == (n,), f"advantages {tuple(advantages.shape)} != ({n},)"
    if old_logp is None:
        old_logp = logp.detach()
    assert old_logp.shape == (n, length), f"old_logp {tuple(old_logp.shape)} != logp {tuple(logp.shape)}"
    if cfg.beta > 0:
        if ref_logp is None:
            raise ValueError(f"beta={cfg.beta} > 0 needs ref_logp (the frozen reference model's log-probs); "
                             "pass it or set beta=0.")
        assert ref_logp.shape == (n, length), f"ref_logp {tuple(ref_logp.shape)} != logp {tuple(logp.shape)}"

    # rows kept in the loss: exclusions act on whole completions
    keep = torch.ones(n, dtype=torch.bool, device=logp.device)  # (N,)
    if cfg.mask_truncated_completions and truncated is not None:
        keep &= ~truncated.to(torch.bool)
    if cfg.skip_zero_std_groups and zero_std_mask is not None:
        keep &= ~zero_std_mask.to(torch.bool)
    m = mask.to(torch.bool) & keep[:, None]  # (N, L)
    mf = m.to(logp.dtype)

    # zero out padding BEFORE exp(): padded log-probs may be -inf/garbage, and NaN * 0 is NaN in
    # both the forward and the backward pass
    zero = torch.zeros((), dtype=logp.dtype, device=logp.device)
    lp = torch.where(m, logp, zero)
    old = torch.where(m, old_logp.detach().to(logp.dtype), zero)
    adv = advantages.detach().to(logp.dtype)[:, None]  # (N, 1): same advantage for every token (s2)

    log_ratio = lp - old  # (N, L)
    ratio = torch.exp(log_ratio)
    surr1 = ratio * adv
    surr2 = torch.clamp(ratio, 1.0 - cfg.epsilon_low, 1.0 + cfg.epsilon_high) * adv
    per_token = -torch.min(surr1, surr2)  # (N, L)

    kl = None
    if ref_logp is not None:
        ref = torch.where(m, ref_logp.detach().to(logp.dtype), zero)
        kl = kl_penalty(lp, ref, cfg.kl_estimator)  # (N, L)
        if cfg.beta > 0:
            per_token = per_token + cfg.beta * kl

    loss = _aggregate(per_token, mf, cfg)

    with torch.no_grad():
        n_tok = mf.sum()
        seq_len = mf.sum(dim=1)
        a = adv.expand_as(ratio)
        clip_low = (ratio < 1.0 - cfg.epsilon_low) & (a < 0) & m  # gradient is zero there
        clip_high = (ratio > 1.0 + cfg.epsilon_high) & (a > 0) & m
        stats: dict[str, torch.Tensor] = {
            "loss": loss.detach(),
            "pg_loss": _aggregate(-torch.min(surr1, surr2), mf, cfg),
            "clip_frac_low": _masked_mean(clip_low.to(logp.dtype), mf),
            "clip_frac_high": _masked_mean(clip_high.to(logp.dtype), mf),
            "clip_frac": _masked_mean((clip_low | clip_high).to(logp.dtype), mf),
            "ratio_mean": _masked_mean(ratio, mf),
            # k3 estimate of KL(old || new): how far the policy moved within this rollout batch
            "approx_kl": _masked_mean(ratio - 1.0 - log_ratio, mf),
            "n_tokens": n_tok,
            "n_seqs": (seq_len > 0).sum(),
            "mean_seq_len": seq_len.sum() / (seq_len > 0).sum().clamp(min=1),
            "frac_excluded": 1.0 - keep.to(logp.dtype).mean(),
            "frac_zero_std": (zero_std_mask.to(logp.dtype).mean() if zero_std_mask is not None else zero),
            "frac_truncated": (truncated.to(logp.dtype).mean() if truncated is not None else zero),
        }
        if kl is not None:
            stats["kl_mean"] = _masked_mean(kl, mf)
        if entropy is not None:
            stats["entropy"] = _masked_mean(torch.where(m, entropy.detach().to(logp.dtype), zero), mf)
    return loss, stats


def _aggregate(per_token: torch.Tensor, mf: torch.Tensor, cfg: GRPOConfig) -> torch.Tensor:
    """Token losses (N, L) -> scalar, over the tokens where mf == 1 (see GRPOConfig.loss_aggregation)."""
    masked = per_token * mf  # padding is already finite, so this is exact
    if cfg.loss_aggregation == "token-mean":
        return masked.sum() / mf.sum().clamp(min=1)
    if cfg.loss_aggregation == "seq-mean-token-mean":
        seq_len = mf.sum(dim=1)  # (N,)
        seq_mean = masked.sum(dim=1) / seq_len.clamp(min=1)  # (N,)
        n_valid = (seq_len > 0).to(mf.dtype).sum()  # rows with no kept token do not count
        return seq_mean.sum() / n_valid.clamp(min=1)
    if cfg.loss_aggregation == "dr-grpo":
        n, length = mf.shape
        if length > cfg.max_new_tokens:
            raise ValueError(
                f"dr-grpo normalises by max_new_tokens={cfg.max_new_tokens}, but completions have length "
                f"{length}; raise max_new_tokens to the rollout's real limit."
            )
        return masked.sum() / (n * cfg.max_new_tokens)
    raise ValueError(f"loss_aggregation={cfg.loss_aggregation!r}: choose token-mean, seq-mean-token-mean, dr-grpo")


# ------------------------------------------------------------------------------------------ log-probs
def selective_log_softmax(logits: torch.Tensor, ids: torch.Tensor, chunk_rows: int = 8) -> torch.Tensor:
    """log_softmax(logits)[..., ids] without materialising a full (..., V) log-softmax at once.

    logits (..., V), ids (...) -> (...). float32/64: gather the chosen logit and subtract a row-chunked
    logsumexp. Half types: per-chunk log_softmax in the logits' dtype (logsumexp loses precision there).
    """
    assert logits.shape[:-1] == ids.shape, f"logits {tuple(logits.shape)} vs ids {tuple(ids.shape)}"
    flat = logits.reshape(-1, logits.shape[-1])  # (R, V)
    flat_ids = ids.reshape(-1, 1).long()  # (R, 1)
    step = max(1, chunk_rows * (logits.shape[-2] if logits.dim() > 1 else 1))
    out = []
    for s in range(0, flat.shape[0], step):
        rows, rid = flat[s:s + step], flat_ids[s:s + step]
        if rows.dtype in (torch.float32, torch.float64):
            out.append(rows.gather(-1, rid).squeeze(-1) - torch.logsumexp(rows, dim=-1))
        else:
            out.append(torch.log_softmax(rows, dim=-1).gather(-1, rid).squeeze(-1))
    return torch.cat(out).reshape(ids.shape) if out else flat.new_zeros(ids.shape)


def token_entropy(logits: torch.Tensor, chunk_rows: int = 8) -> torch.Tensor:
    """Entropy of softmax(logits) over the last dim: (..., V) -> (...), row-chunked like above.

    H = logsumexp(z) - sum_k softmax(z)_k z_k (avoids 0 * -inf for masked-out logits). Keeps the graph;
    wrap in torch.no_grad() when it is only logged.
    """
    flat = logits.reshape(-1, logits.shape[-1])
    step = max(1, chunk_rows * (logits.shape[-2] if logits.dim() > 1 else 1))
    out = []
    for s in range(0, flat.shape[0], step):
        z = flat[s:s + step]
        z = z if z.dtype in (torch.float32, torch.float64) else z.float()  # half: compute in fp32
        p = torch.softmax(z, dim=-1)
        zs = torch.where(p > 0, z, torch.zeros_like(z))  # -inf logits have p == 0: drop them
        out.append((torch.logsumexp(z, dim=-1) - (p * zs).sum(-1)).to(logits.dtype))
    return torch.cat(out).reshape(logits.shape[:-1]) if out else flat.new_zeros(logits.shape[:-1])
