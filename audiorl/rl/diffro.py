"""DiffRO, differentiable reward optimisation of a text -> speech-token LM (PAPER.md s5), and its filtered
combination with GRPO (s6).

No sampling loop and no policy gradient: the reward is a differentiable function of the policy's logits.

    speech (N, L) local ids, teacher-forced (reference tokens or the policy's samples: DiffROConfig.sequences)
    z = policy logits (N, L + 1, Vs + 1)        position t < L_i predicts speech token t, position L_i the eos
    y_t = softmax((z_t[:Vs] / T + g_t) / tau)   g ~ Gumbel(0, 1), (N, L, Vs): a relaxed sample of token t from the
                                                policy at sampling temperature T (policy_temperature; 1 = its own)
          hard: onehot(argmax y_t) + y_t - sg(y_t)      forward one-hot, backward through the soft y_t
    R_i = log P(text_i | y_i) [/ |text_i|] + sum_k w_k log P(attr_k,i | y_i)      the frozen reward model
    KL_t = sum_k p_t(k) (log p_t(k) - log q_t(k))      p = softmax(z_t), q = the frozen reference's, over Vs + 1
    loss = -mean_i R_i + beta * mean_t KL_t

Choices (PAPER.md s7 leaves them open; each is a DiffROConfig field or documented here):
* The Gumbel sample is over speech ids only (z[:Vs], eos dropped): at t < L_i the teacher-forced sequence holds a
  speech token and the reward model reads speech tokens, so we relax the policy's distribution given "not eos".
* KL is the exact token-level KL(policy || reference) of s5, summed analytically over the Vs + 1 local ids (not a
  sampled estimator like GRPO's k3), at every valid position 0..L_i, the eos position included so that the
  stopping behaviour stays anchored too. Aggregated as a mean over those positions of the included rows.
* The reward term is a mean over rows; rows whose text CTC cannot align (too few tokens for the text, see
  ``ctc_feasible``) contribute no reward gradient and are counted in stats['frac_infeasible'].

The policy is a ``TTSLM`` (audiorl/models/tts_lm.py; speech ids are its *local* ids: speech k, eos = Vs). The reward
model is anything with ``log_likelihoods(tokens, lens, text_ids, text_lens, attributes) -> {'text': (N,), name:
(N,)}`` accepting soft tokens (N, L, Vs), e.g. ``audiorl.models.token2text.Token2Text``; keep it in eval mode and
frozen (``.eval().requires_grad_(False)``): gradients still flow through its inputs. Rows are group-major as in
GRPO: N = B * G, rows b*G .. b*G+G-1 belong to prompt b (G = 1 for plain DiffRO on reference tokens).

    loss, stats = diffro_loss(policy, rm, text_ids, text_lens, speech, speech_lens, rm_text_ids, rm_text_lens,
                              cfg=cfg, ref_policy=ref)                                # DiffRO alone
    speech, speech_lens = strip_eos(tokens, lengths, eos_id=Vs)                       # GRPO + DiffRO, one forward
    logits = teacher_forced_logits(policy, text_ids, text_lens, speech, speech_lens)  # (+ ref_logits, no grad)
    logp = gather_logprobs(logits, tokens, lengths)                                   # -> grpo_loss
    d_loss, d_stats = diffro_on_rollouts(policy, rm, ..., advantages, cfg=cfg, logits=logits, ref_logits=ref_logits)
    loss = grpo_loss + d_loss                                                         # d_loss has combine_weight
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

import torch

from audiorl.config import option

if TYPE_CHECKING:  # the policy type only; nothing here builds one
    from audiorl.models.tts_lm import SpeechSamplingConfig, TTSLM

__all__ = ["DiffROConfig", "RewardModel", "gumbel_softmax", "kl_divergence", "teacher_forced_logits",
           "gather_logprobs", "diffro_objective", "diffro_loss", "diffro_on_rollouts", "strip_eos",
           "sample_sequences", "diffro_sequences"]

_SEQUENCES = ("reference", "sample")
_NORMS = ("text_len", "none")
_FILTER_NORMS = ("selected", "all")


@dataclass
class DiffROConfig:
    # ---------------------------------------------------------------- relaxation
    tau: float = option(1.0, (
        "Gumbel-Softmax temperature (> 0). Lower = samples closer to one-hot (what the reward "
        "model was trained on) but higher-variance gradients; higher = smoother, biased. Left open "
        "by the paper (s7); 1.0 is the standard starting point."))
    hard: bool = option(False, (
        "Straight-through Gumbel: the reward model sees one-hot tokens (exactly its training "
        "input) and the gradient is that of the soft sample. false = it sees the soft samples."))
    policy_temperature: float = option(1.0, (
        "T: relax samples of softmax(logits / T), the policy at sampling temperature T, not of the LM's own "
        "distribution (> 0; the KL term always uses the untempered logits). 1.0 = the paper's. Setting it to "
        "the synthesis temperature (conf/synth.yaml sampling.temperature) aims DiffRO at the tokens synthesis "
        "draws and sharpens the relaxed samples toward the reward model's one-hot training input; on synth_en "
        "at T 0.4 it did not lower the judge WER (README, 'What moves DiffRO at T 0.4')."))
    # ---------------------------------------------------------------- what is teacher-forced
    sequences: Literal["reference", "sample"] = option("reference", (
        "Token sequences the policy is teacher-forced on: 'reference' = the data's ground-truth "
        "tokens (no sampling at all; the paper's main setting), 'sample' = the policy's own "
        "samples (no grad, the task's sampling config), closer to what it will generate. Read by "
        "diffro_sequences; the GRPO combination always uses the rollouts."))
    # ---------------------------------------------------------------- reward
    reward_norm: Literal["text_len", "none"] = option("text_len", (
        "'text_len': log P(text | tokens) divided by the text's length in reward-model ids, so "
        "long and short utterances weigh the same and the scale is a per-token CTC loss; 'none': "
        "the paper's R = log P(Y | U) (s5), which weights long texts more."))
    attribute_weights: dict[str, float] = option(default_factory=dict, help=(
        "Multi-task reward (s5 MTR): head name -> weight w_k of log P(target attribute | tokens) "
        "in R (e.g. {rate: 0.5}); each needs a head on the reward model and a target per row. "
        "{} = text only."))
    # ---------------------------------------------------------------- KL to the reference
    beta: float = option(0.1, (
        "Weight of the token-level KL(policy || reference) (>= 0). Paper: 0.1 (s5). 0 = no "
        "reference model is needed (needs_reference)."))
    # ---------------------------------------------------------------- combination with GRPO (s6)
    combine_weight: float = option(1.0, (
        "lambda in loss = GRPO + lambda x DiffRO (diffro_on_rollouts multiplies it in). The paper "
        "adds the two losses unweighted (s6)."))
    advantage_filter: bool = option(True, (
        "DiffRO only on rollouts with advantage > advantage_threshold (the paper's filter, s6: "
        "degenerate rollouts, loops or no eos, get negative advantages and DiffRO on them hurt). "
        "false = every rollout: the naive combination the paper found worse."))
    advantage_threshold: float = option(0.0, (
        "The filter keeps rows with advantage strictly greater than this (paper: 0)."))
    filter_normalize: Literal["selected", "all"] = option("selected", (
        "How the filtered DiffRO loss is averaged: 'selected' = over the kept rows (each kept "
        "row weighs as in plain DiffRO; fewer rows = larger per-row weight), 'all' = scaled by "
        "kept/total rows (filter on and off differ only in which rows count)."))

    def __post_init__(self) -> None:
        if not self.tau > 0:
            raise ValueError(f"tau={self.tau} must be > 0 (Gumbel-Softmax temperature; try 1.0 or 0.5)")
        if not self.policy_temperature > 0:
            raise ValueError(f"policy_temperature={self.policy_temperature} must be > 0 (1.0 = the LM's own "
                             "distribution; e.g. the synthesis sampling temperature)")
        if self.sequences not in _SEQUENCES:
            raise ValueError(f"sequences={self.sequences!r}: choose one of {_SEQUENCES}")
        if self.reward_norm not in _NORMS:
            raise ValueError(f"reward_norm={self.reward_norm!r}: choose one of {_NORMS}")
        if self.filter_normalize not in _FILTER_NORMS:
            raise ValueError(f"filter_normalize={self.filter_normalize!r}: choose one of {_FILTER_NORMS}")
        if self.beta < 0:
            raise ValueError(f"beta={self.beta} must be >= 0 (0 disables the KL term and the reference model)")
        if self.combine_weight < 0:
            raise ValueError(f"combine_weight={self.combine_weight} must be >= 0 (0 = GRPO only)")
        if "text" in self.attribute_weights:
            raise ValueError("attribute_weights may not contain 'text': the text term always has weight 1")

    @property
    def needs_reference(self) -> bool:
        return self.beta > 0.0


class RewardModel(Protocol):
    def log_likelihoods(self, tokens: torch.Tensor, lens: torch.Tensor, text_ids: torch.Tensor,
                        text_lens: torch.Tensor, attributes: dict[str, torch.Tensor] | None = None
                        ) -> dict[str, torch.Tensor]: ...


# ------------------------------------------------------------------------------------------ pieces
def gumbel_softmax(logits: torch.Tensor, tau: float = 1.0, hard: bool = False,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Relaxed categorical sample over the last dim: softmax((logits + g) / tau), g ~ Gumbel(0, 1).

    hard: forward = one-hot of the argmax, backward = the soft sample's gradient (straight-through). Computed in
    fp32; ``generator`` (on the logits' device) makes it reproducible (F.gumbel_softmax takes none)."""
    z = logits.float()
    u = torch.rand(z.shape, generator=generator, device=z.device, dtype=z.dtype)
    g = -torch.log((-torch.log(u.clamp(min=1e-20))).clamp(min=1e-20))  # (.., V) Gumbel(0, 1)
    y = torch.softmax((z + g) / tau, dim=-1)
    if not hard:
        return y
    one_hot = torch.zeros_like(y).scatter_(-1, y.argmax(-1, keepdim=True), 1.0)
    return one_hot - y.detach() + y


def kl_divergence(logits: torch.Tensor, ref_logits: torch.Tensor) -> torch.Tensor:
    """Exact KL(softmax(logits) || softmax(ref_logits)) over the last dim: (..., V) -> (...), fp32, >= 0.
    The reference is a constant (detached)."""
    lp = logits.float().log_softmax(-1)
    lq = ref_logits.detach().float().log_softmax(-1)
    return (lp.exp() * (lp - lq)).sum(-1)


def _rows(x: torch.Tensor | None, n: int) -> torch.Tensor | None:
    """Per-prompt (B, ...) -> per-row (N, ...) by repeating each prompt N / B times (group-major)."""
    if x is None or x.shape[0] == n:
        return x
    assert n % x.shape[0] == 0, f"{n} rows is not a multiple of {x.shape[0]} prompts"
    return x.repeat_interleave(n // x.shape[0], 0)


def teacher_forced_logits(policy: "TTSLM", text_ids: torch.Tensor, text_lens: torch.Tensor, speech: torch.Tensor,
                          speech_lens: torch.Tensor, spk_embed: torch.Tensor | None = None) -> torch.Tensor:
    """The TTS LM's fp32 logits over local ids (N, L + 1, Vs + 1), teacher-forced on speech (N, L) local speech ids
    (eos excluded), speech_lens (N,). Prompts (text_ids (B, Lt), text_lens, spk_embed (B, S)) repeat to N rows.
    Position t < speech_lens[i] predicts speech token t, position speech_lens[i] the eos; later ones are padding."""
    N = speech.shape[0]
    Vs = policy.config.speech_vocab_size
    real = torch.arange(speech.shape[1], device=speech.device)[None] < speech_lens.to(speech.device)[:, None]
    assert not bool(((speech < 0) | (speech >= Vs))[real].any()), f"speech must hold local speech ids in [0, {Vs})"
    p, plens = policy.prompt(text_ids, text_lens, spk_embed)
    h = policy.states(_rows(p, N), _rows(plens, N), speech, speech_lens.to(speech.device))  # (N, L+1, D)
    return policy.speech_logits(h)  # (N, L+1, Vs+1)


def gather_logprobs(logits: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """log p(tokens) from teacher-forced logits (N, >= L, V): tokens (N, L) local ids with the eos included (as
    TTSLM.generate returns them), lengths (N,) incl. the eos -> (N, L), 0 past lengths. Equals
    TTSLM.sequence_logprobs at temperature 1, so GRPO and DiffRO can share one forward."""
    L = tokens.shape[1]
    z = logits[:, :L]
    lp = z.gather(-1, tokens[..., None]).squeeze(-1) - z.logsumexp(-1)
    return lp.masked_fill(torch.arange(L, device=tokens.device)[None] >= lengths[:, None], 0.0)


# ------------------------------------------------------------------------------------------ objective
def diffro_objective(logits: torch.Tensor, ref_logits: torch.Tensor | None, speech_lens: torch.Tensor,
                     reward_model: RewardModel, target_ids: torch.Tensor, target_lens: torch.Tensor,
                     attributes: dict[str, torch.Tensor] | None = None, *, cfg: DiffROConfig,
                     generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The DiffRO loss from teacher-forced logits (see the module docstring for the math).

    logits (N, L + 1, Vs + 1) local-id logits (``teacher_forced_logits``; only rows to train on); ref_logits the
    same from the frozen reference (required iff cfg.beta > 0); speech_lens (N,); target_ids (N, Lr) the reward
    model's text ids, target_lens (N,); attributes: name -> (N,) target class per row, needed for every name in
    cfg.attribute_weights. Returns (loss, stats); stats are detached 0-dim tensors.
    """
    N, L1, V1 = logits.shape
    L, Vs, dev = L1 - 1, V1 - 1, logits.device
    speech_lens = speech_lens.to(dev)
    if cfg.beta > 0 and ref_logits is None:
        raise ValueError(f"beta={cfg.beta} > 0 needs the frozen reference's logits; pass ref_logits or set beta=0")
    missing = sorted(set(cfg.attribute_weights) - set(attributes or {}))
    if missing:
        raise ValueError(f"attribute_weights names {missing} but no targets were given for them (attributes=...)")
    attrs = {k: v for k, v in (attributes or {}).items() if k in cfg.attribute_weights}

    # relaxed samples of the speech tokens, zero past each row's length (the reward model masks them anyway)
    j = torch.arange(L, device=dev)[None]
    y = gumbel_softmax(logits[:, :L, :Vs] / cfg.policy_temperature, cfg.tau, cfg.hard, generator)  # (N, L, Vs)
    y = y * (j < speech_lens[:, None])[..., None]
    ll = reward_model.log_likelihoods(y, speech_lens, target_ids, target_lens, attrs or None)
    text_ll = ll["text"]  # (N,), -inf where CTC cannot align
    ok = torch.isfinite(text_ll)
    text_r = torch.where(ok, text_ll, torch.zeros_like(text_ll))
    if cfg.reward_norm == "text_len":
        text_r = text_r / target_lens.to(dev).clamp(min=1)
    reward = text_r + sum((w * ll[k] for k, w in cfg.attribute_weights.items()), torch.zeros_like(text_r))
    okf = ok.float()
    reward_term = -(reward * okf).sum() / okf.sum().clamp(min=1)

    pos = torch.arange(L1, device=dev)[None] <= speech_lens[:, None]  # (N, L+1): speech positions + eos
    posf = pos.float()
    loss = reward_term
    kl_mean = None
    if ref_logits is not None:
        kl = kl_divergence(logits, ref_logits) * posf  # (N, L+1)
        kl_mean = kl.sum() / posf.sum().clamp(min=1)
        if cfg.beta > 0:
            loss = loss + cfg.beta * kl_mean

    with torch.no_grad():
        n_ok = okf.sum().clamp(min=1)
        ll_ok = torch.where(ok, text_ll, torch.zeros_like(text_ll)).detach()  # (N,)
        real = (j < speech_lens[:, None]).float()  # (N, L)
        stats = {"loss": loss.detach(), "reward": (reward.detach() * okf).sum() / n_ok,
                 "text_logprob": ll_ok.sum() / n_ok,
                 "text_logprob_per_token": (ll_ok / target_lens.to(dev).clamp(min=1)).sum() / n_ok,
                 "frac_infeasible": 1.0 - okf.mean(),
                 # how close the relaxed samples are to one-hot (1 = exactly): for tuning tau
                 "sample_max_prob": (y.detach().max(-1).values * real).sum() / real.sum().clamp(min=1),
                 "n_rows": torch.tensor(float(N), device=dev)}
        for k in attrs:
            stats[f"attr_{k}_logprob"] = ll[k].detach().mean()
        if kl_mean is not None:
            stats["kl"] = kl_mean.detach()
    return loss, stats


def diffro_loss(policy: "TTSLM", reward_model: RewardModel, text_ids: torch.Tensor, text_lens: torch.Tensor,
                speech: torch.Tensor, speech_lens: torch.Tensor, target_ids: torch.Tensor, target_lens: torch.Tensor,
                *, cfg: DiffROConfig, ref_policy: "TTSLM | None" = None, spk_embed: torch.Tensor | None = None,
                attributes: dict[str, torch.Tensor] | None = None, generator: torch.Generator | None = None,
                logits: torch.Tensor | None = None, ref_logits: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """DiffRO on N = B x G teacher-forced sequences: policy forward (unless ``logits`` are given), reference
    forward (no grad, when cfg.beta > 0, unless ``ref_logits`` are given), then ``diffro_objective``.

    text_ids (B, Lt) / text_lens (B,) / spk_embed (B, S): the TTS prompts; speech (N, L) local speech ids, eos
    excluded, speech_lens (N,); target_ids (B or N, Lr) / target_lens: the texts in the reward model's ids;
    attributes: name -> (B or N,) class targets. Per-prompt tensors repeat to the N rows."""
    N = speech.shape[0]
    if logits is None:
        logits = teacher_forced_logits(policy, text_ids, text_lens, speech, speech_lens, spk_embed)
    if cfg.beta > 0 and ref_logits is None:
        if ref_policy is None:
            raise ValueError(f"beta={cfg.beta} > 0 needs ref_policy (the frozen initial TTS LM); pass it or set beta=0")
        with torch.no_grad():
            ref_logits = teacher_forced_logits(ref_policy, text_ids, text_lens, speech, speech_lens, spk_embed)
    attrs = {k: _rows(v, N) for k, v in (attributes or {}).items()}
    return diffro_objective(logits, ref_logits, speech_lens, reward_model, _rows(target_ids, N),
                            _rows(target_lens, N), attrs, cfg=cfg, generator=generator)


def diffro_on_rollouts(policy: "TTSLM", reward_model: RewardModel, text_ids: torch.Tensor, text_lens: torch.Tensor,
                       speech: torch.Tensor, speech_lens: torch.Tensor, target_ids: torch.Tensor,
                       target_lens: torch.Tensor, advantages: torch.Tensor, *, cfg: DiffROConfig,
                       ref_policy: "TTSLM | None" = None, spk_embed: torch.Tensor | None = None,
                       attributes: dict[str, torch.Tensor] | None = None, generator: torch.Generator | None = None,
                       logits: torch.Tensor | None = None, ref_logits: torch.Tensor | None = None
                       ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The DiffRO part of GRPO + DiffRO (PAPER.md s6), already multiplied by cfg.combine_weight: add it to the
    GRPO loss. Rows are the GRPO rollouts (N = B x G, group-major; ``strip_eos`` turns rollout tokens into speech,
    speech_lens); advantages (N,) from ``group_advantages``.

    With cfg.advantage_filter only rows with advantage > cfg.advantage_threshold enter DiffRO (the forward runs on
    those rows only, unless the full ``logits`` (N, L + 1, Vs + 1) of a shared forward, and likewise ``ref_logits``,
    are given: then they are indexed); without it every row does. No row kept: the loss is a constant 0 (no graph)
    and stats say so."""
    N, dev = speech.shape[0], speech.device
    assert advantages.shape == (N,), f"advantages {tuple(advantages.shape)} != ({N},)"
    keep = advantages.to(dev) > cfg.advantage_threshold if cfg.advantage_filter else \
        torch.ones(N, dtype=torch.bool, device=dev)
    idx = keep.nonzero().flatten()
    frac = keep.float().mean()
    if idx.numel() == 0:
        z = torch.zeros((), device=dev)
        return z, {"loss": z, "frac_selected": frac, "n_rows": z}
    sel = lambda x: None if x is None else _rows(x, N)[idx]  # noqa: E731  per-prompt or per-row -> kept rows
    loss, stats = diffro_loss(
        policy, reward_model, sel(text_ids), sel(text_lens), speech[idx], speech_lens[idx], sel(target_ids),
        sel(target_lens), cfg=cfg, ref_policy=ref_policy, spk_embed=sel(spk_embed),
        attributes={k: sel(v) for k, v in (attributes or {}).items()}, generator=generator,
        logits=None if logits is None else logits[idx, : speech.shape[1] + 1],
        ref_logits=None if ref_logits is None else ref_logits[idx, : speech.shape[1] + 1])
    if cfg.filter_normalize == "all":
        loss = loss * frac
    stats["frac_selected"] = frac
    return cfg.combine_weight * loss, stats


# ------------------------------------------------------------------------------------------ sequences
def strip_eos(tokens: torch.Tensor, lengths: torch.Tensor, eos_id: int, offset: int = 0
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Sampled rows (N, L) with lengths incl. the end token -> local speech ids (N, L) (``tokens - offset``, 0 from
    the end token on) and speech_lens (N,) without it. offset = 0 for TTSLM.generate's local ids (eos_id = Vs);
    offset = Vt for full LLM ids (eos_id = Vt + Vs). A row without an end token (truncated) keeps all its tokens."""
    L = tokens.shape[1]
    j = torch.arange(L, device=tokens.device)[None]
    real = j < lengths[:, None]
    has_eos = ((tokens == eos_id) & real).any(1)
    speech_lens = lengths - has_eos.long()
    keep = j < speech_lens[:, None]
    return (tokens - offset).masked_fill(~keep, 0), speech_lens


@torch.no_grad()
def sample_sequences(policy: "TTSLM", text_ids: torch.Tensor, text_lens: torch.Tensor,
                     spk_embed: torch.Tensor | None = None, sampling: "SpeechSamplingConfig | None" = None,
                     num_samples: int = 1, generator: torch.Generator | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """The policy's own samples (eval mode, no grad) as (speech (N, L), speech_lens (N,)), N = B x num_samples."""
    was = policy.training
    policy.eval()
    try:
        out = policy.generate(text_ids, text_lens, spk_embed, sampling, num_samples, generator)
    finally:
        policy.train(was)
        policy.llm.clear_caches()
    return strip_eos(out.tokens, out.lengths, out.eos_id)


def diffro_sequences(cfg: DiffROConfig, policy: "TTSLM", text_ids: torch.Tensor, text_lens: torch.Tensor,
                     speech: torch.Tensor, speech_lens: torch.Tensor, spk_embed: torch.Tensor | None = None,
                     sampling: "SpeechSamplingConfig | None" = None, generator: torch.Generator | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """What to teacher-force per cfg.sequences: the given reference speech, or one policy sample per text."""
    if cfg.sequences == "reference":
        return speech, speech_lens
    return sample_sequences(policy, text_ids, text_lens, spk_embed, sampling, 1, generator)
