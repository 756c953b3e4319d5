"""A GRPO ``Task`` for the one Trainer (audiorl/train/trainer.py): the paper's RL step (PAPER.md s1-s2).

One optimizer step = one ``train_step``:
  1. encode the batch once into prompt embeddings (no grad, eval mode)        -> time_encode
  2. sample G completions per prompt with the KV-cached sampler (and, with    -> time_rollout
     grpo.baseline='greedy', one greedy completion per prompt: ``greedy``)
  3. score them with the configured rewards (task hook ``reward_inputs``)     -> time_reward
  4. advantages against the group mean (or the greedy completion's reward);
     frozen-reference log-probs when beta > 0                                 -> time_reference
  5. recompute the policy's log-probs with grad and return the GRPO loss      -> time_update (forward only)
The Trainer then does backward + clipping + AdamW; that time is logged as ``time_backward`` one step late
(it happens after train_step returns). The new weights sample the next batch: on-policy, as in the paper.

num_iterations = mu > 1 reuses one rollout batch for mu optimizer steps: ``train_batches`` yields every
prompt batch mu times as (batch, k), and steps k > 0 reuse the cached rollout, advantages and reference
log-probs with the rollout's log-probs as pi_old (see audiorl/rl/rollout.py for that choice).

Subclasses supply the model and its data (``build_model``, ``prompt_batches``, ``encode_prompts``,
``policy_llm``, ``eos_id``/``pad_id``) and turn completions into ``RewardInput``s (``reward_inputs``); the
rewards themselves come from ``RewardConfig``. A policy with its own output space overrides ``sample`` and
``completion_logprobs`` (the TTS LM samples speech ids + eos only), and ``extra_loss`` adds a term on the same
rollouts (GRPO + DiffRO, PAPER.md s6). Nothing here is ASR- or TTS-specific (audiorl/tasks/asr_grpo.py, tts_rl.py).

Several processes (torchrun, DDP or FSDP): each rank draws its own prompt batches (``prompt_batches(epoch, rank,
world_size)``: the sampler shards the data), samples all G completions of each of its prompts itself with its own
generator (seeded + 1000003 x rank), so every group stays whole on one rank and advantages are group-local exactly
as in one process (``scale_rewards: batch`` uses the rank's batch). The update's loss is computed inside the
wrapper's forward (``distributed.forward_through``), so DDP all-reduces its gradients like any SFT loss; the
logged stats are averaged over ranks by the Trainer. Rollouts and the reference run on the bare module (no
gradient, nothing to synchronise); under FSDP inside ``fsdp.full_params`` so ranks may decode different lengths.

Exact resume: the rollout generator's state, a cached mid-reuse rollout and the KL stop counter are saved
with every checkpoint (``extra_state``). The reference model is not saved: it is rebuilt in ``setup`` from
the same initial weights (the Trainer applies ``train.init_from`` before setup also when resuming), and a
checksum saved with the checkpoint proves it is the same model.
"""

from __future__ import annotations

import copy
import itertools
import math
import time
from abc import abstractmethod
from dataclasses import dataclass
from typing import Any, Iterable, Literal

import torch
from torch import nn

from audiorl.config import option
from audiorl.log import get_logger
from audiorl.models.llm import LLM
from audiorl.rl.config import GRPOConfig
from audiorl.rl.grpo import group_advantages, grpo_loss, kl_penalty
from audiorl.rl.rewards import RewardConfig, RewardInput, compute_rewards
from audiorl.rl.rollout import Rollout, greedy_rollouts, policy_logprobs, sample_rollouts
from audiorl.train import distributed as dist_lib
from audiorl.train import fsdp as fsdp_lib
from audiorl.train.checkpoint import unwrap
from audiorl.train.trainer import Task

logger = get_logger(__name__)

__all__ = ["GRPOStepConfig", "GRPOTask", "RepeatBatches"]


@dataclass
class GRPOStepConfig:
    """How the GRPO step runs (what the loss is: GRPOConfig; what is rewarded: RewardConfig)."""

    prompt_grad: bool = option(
        True, "Recompute the prompt embeddings WITH grad in the update, so the policy gradient also trains the "
              "encoder, adaptor and prompt embeddings (unless the model freezes them). false: reuse the "
              "rollout's detached embeddings; only the LLM learns, and the update skips the encoder's forward "
              "and backward (cheaper; the paper's 'encode the batch once', PAPER.md s1).")
    disable_dropout: bool = option(
        True, "Run the update forward in eval mode (no dropout, no SpecAugment), like the rollout, so that "
              "logp, pi_old and the reference see the same deterministic model and input (TRL does the same). "
              "Gradients flow either way.")
    old_logprobs: Literal["sampling", "recompute"] = option(
        "sampling", "pi_old for num_iterations > 1: 'sampling' = the sampler's own log-probs (free; exact when "
                    "top_k = 0 and top_p = 1), 'recompute' = one more no-grad teacher-forced pass (use it with "
                    "top-k/top-p filtering, whose log-probs are of the truncated distribution). Unused for mu = 1.")
    log_entropy: bool = option(True, "Log the mean token entropy of the policy (one softmax over the vocabulary).")
    rollout_seed: int = option(0, "Added to train.seed (and 1000003 x rank) to seed the rollout sampler's own "
                                  "generator; its state is checkpointed, so a resumed run samples the same.")
    stop_kl: float = option(
        0.0, "Stop training (cleanly, with a checkpoint) when the mean per-token KL to the reference exceeds "
             "this for stop_kl_patience consecutive steps; 0 disables. ENV.md: test WER degraded once KL reached "
             "0.1-0.25, so ~0.3 is a sensible alarm on this corpus. Needs beta > 0 (KL is only measured then).")
    stop_kl_patience: int = option(3, "Consecutive steps over stop_kl before stopping (one noisy batch is not "
                                      "a divergence).")

    def __post_init__(self) -> None:
        if self.old_logprobs not in ("sampling", "recompute"):
            raise ValueError(f"old_logprobs={self.old_logprobs!r}: choose 'sampling' or 'recompute'")
        if self.stop_kl < 0 or self.stop_kl_patience < 1:
            raise ValueError(f"stop_kl={self.stop_kl} must be >= 0 (0 = off) and stop_kl_patience="
                             f"{self.stop_kl_patience} >= 1")


class RepeatBatches:
    """Each batch of ``base`` ``times`` times in a row, as (batch, k); ``skip`` for the Trainer's exact resume."""

    def __init__(self, base: Iterable[Any], times: int, start: int = 0):
        self.base, self.times, self.start = base, times, start

    def __len__(self) -> int:
        return len(self.base) * self.times - self.start  # type: ignore[arg-type]

    def skip(self, n: int) -> "RepeatBatches":
        return RepeatBatches(self.base, self.times, self.start + n)

    def __iter__(self):
        n_base, first = divmod(self.start, self.times)
        base = self.base.skip(n_base) if hasattr(self.base, "skip") else itertools.islice(self.base, n_base, None)
        for i, b in enumerate(base):
            for k in range(first if i == 0 else 0, self.times):
                yield b, k


def _now(device: torch.device) -> float:
    if device.type == "cuda":  # time the work, not the kernel launches
        torch.cuda.synchronize(device)
    return time.perf_counter()


def _checksum(model: nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return torch.stack([p.detach().double().sum() for p in model.parameters()]).sum().cpu()


class GRPOTask(Task):
    """The GRPO step on top of subclass hooks; see the module docstring."""

    # The RL loss reaches only the policy's path (not e.g. the ASR encoder's CTC head, nor the encoder when
    # step.prompt_grad=false): DDP must not wait for gradients of the other parameters.
    ddp_find_unused_parameters = True

    def __init__(self, grpo: GRPOConfig, step: GRPOStepConfig, rewards: RewardConfig, seed: int = 0):
        self.grpo, self.step_cfg, self.rewards = grpo, step, rewards
        self.seed = seed + step.rollout_seed
        self.ref_model: nn.Module | None = None
        self.generator: torch.Generator | None = None
        self._cache: dict[str, Any] | None = None  # one rollout batch, reused for num_iterations steps
        self._cache_state: dict[str, Any] | None = None  # from a checkpoint, restored at the first train_step
        self._ref_sum: torch.Tensor | None = None
        self._kl_strikes = 0
        self._t_end: float | None = None
        self._t_backward = 0.0

    # ------------------------------------------------------------------------------------- subclass hooks
    @abstractmethod
    def prompt_batches(self, epoch: int, rank: int, world_size: int) -> Iterable[Any]:
        """Batches of prompts (deterministic in the arguments, like Task.train_batches)."""

    @abstractmethod
    def encode_prompts(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded prompt embeddings (B, T, D) and lengths (B,); differentiable (no_grad is the caller's)."""

    @abstractmethod
    def policy_llm(self, model: nn.Module) -> LLM:
        """The LLM inside ``model`` that samples completions (also called on the reference model)."""

    @abstractmethod
    def reward_inputs(self, batch: Any, rollout: Rollout) -> list[RewardInput]:
        """One RewardInput per completion row (group_index = row // G), in the rollout's order."""

    @property
    @abstractmethod
    def eos_id(self) -> int | None: ...

    @property
    def pad_id(self) -> int | None:
        return self.eos_id

    def rollout_budget(self, batch: Any) -> int | None:
        """Optional per-batch max_new_tokens (<= grpo.max_new_tokens), e.g. from the audio length."""
        return None

    # Overridable: how completions are sampled and scored by a policy. The defaults sample the LLM's whole
    # vocabulary (ASR); a policy with its own output space (the TTS LM: speech ids + eos only) overrides both.
    def sample(self, policy: nn.Module, embeds: torch.Tensor, lens: torch.Tensor, batch: Any) -> Rollout:
        """G completions per prompt (no grad) with the task's generator."""
        return sample_rollouts(self.policy_llm(policy), embeds, lens, self.grpo, self.eos_id, self.pad_id,
                               self.generator, self.rollout_budget(batch))

    def greedy(self, policy: nn.Module, embeds: torch.Tensor, lens: torch.Tensor, batch: Any) -> Rollout:
        """One greedy completion per prompt (no grad): the reward baseline of grpo.baseline='greedy'. The default
        decodes the LLM's whole vocabulary, so a task that overrides ``sample`` must override this too."""
        if type(self).sample is not GRPOTask.sample:
            raise NotImplementedError(f"{type(self).__name__} samples its own output space: grpo.baseline='greedy' "
                                      f"needs its greedy() too; use grpo.baseline='group_mean'")
        return greedy_rollouts(self.policy_llm(policy), embeds, lens, self.grpo, self.eos_id, self.pad_id,
                               self.rollout_budget(batch))

    def completion_logprobs(self, model: nn.Module, embeds: torch.Tensor, lens: torch.Tensor, rollout: Rollout,
                            with_entropy: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Teacher-forced log-probs (N, L) of the rollout's tokens at grpo.temperature under ``model`` (the policy
        with grad, or the reference / pi_old under no_grad), and optionally the per-token entropy (detached)."""
        return policy_logprobs(self.policy_llm(model), embeds, lens, rollout.tokens, rollout.lengths,
                               self.grpo.temperature, with_entropy=with_entropy)

    def extra_loss(self, model: nn.Module, batch: Any, cache: dict[str, Any]) -> tuple[torch.Tensor, dict] | None:
        """An optional term added to the GRPO loss of this step (e.g. DiffRO on the rollouts, PAPER.md s6), given the
        rollout batch's ``cache`` (rollout, adv, ...). Called after the policy's forward; None = nothing to add."""
        return None

    # ------------------------------------------------------------------------------------- Task contract
    def setup(self, model: nn.Module, device: torch.device) -> None:
        self.device = device
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(self.seed + 1000003 * dist_lib.rank())
        if self.grpo.needs_reference:  # beta = 0: no reference model at all (GRPOConfig.needs_reference)
            self.policy_llm(model).clear_caches()
            self.ref_model = copy.deepcopy(model).eval().requires_grad_(False)
            self._ref_sum = _checksum(self.ref_model)
            logger.info("GRPO: frozen reference model = the initial weights (beta %g)", self.grpo.beta)

    def train_batches(self, epoch: int, rank: int, world_size: int):
        return RepeatBatches(self.prompt_batches(epoch, rank, world_size), self.grpo.num_iterations)

    def train_step(self, model: nn.Module, item: Any, step: int) -> tuple[torch.Tensor, dict[str, Any]]:
        batch, k = item
        policy, cfg = unwrap(model), self.grpo
        # every step logs the same keys (the Trainer averages over steps): 0 s on a reused batch
        times = dict.fromkeys(("encode", "rollout", "reward") + (("reference",) if self.ref_model else ()), 0.0)
        if self._cache is None and self._cache_state is not None and k > 0:
            self._cache = self._restore_cache(self._cache_state)
        self._cache_state = None
        if k == 0 or self._cache is None:
            if k > 0:
                logger.warning("step %d: iteration %d of a reused batch but no cached rollout: sampling anew", step, k)
            with fsdp_lib.full_params(policy):
                self._cache = self._rollout(policy, batch, times)
        c, r = self._cache, self._cache["rollout"]

        t = _now(self.device)
        policy.train(not self.step_cfg.disable_dropout)
        try:
            # Through the DDP/FSDP wrapper's forward: that is what synchronises the gradients (module docstring).
            loss, st, logp, ent, extra = dist_lib.forward_through(model, lambda m: self._update_loss(m, batch, c))
        finally:
            policy.train()  # the Trainer's mode; the graph is already built
        times["update"] = _now(self.device) - t

        stats: dict[str, Any] = dict(c["stats"])  # the rollout batch's rewards, also on its reuse steps
        if extra is not None:
            loss = loss + extra[0]
            stats.update(extra[1])
        for key in ("pg_loss", "clip_frac", "clip_frac_low", "clip_frac_high", "ratio_mean", "approx_kl",
                    "frac_excluded"):
            stats[key] = st[key]
        if ent is not None:  # over every sampled token, not only the rows the loss keeps (zero-std groups too)
            stats["entropy"] = (ent * r.mask).sum() / r.mask.sum().clamp(min=1)
        if c["ref_logp"] is not None:  # KL to the reference over every sampled token (the stop rule reads it)
            with torch.no_grad():
                kl = kl_penalty(logp.detach(), c["ref_logp"], cfg.kl_estimator)
                stats["kl"] = (kl * r.mask).sum() / r.mask.sum().clamp(min=1)
        stats.update({f"time_{name}": v for name, v in times.items()})
        stats["time_backward"] = self._t_backward  # the previous step's backward + optimizer (module docstring)
        if k == cfg.num_iterations - 1:
            self._cache = None
        self._t_end = time.perf_counter()
        return loss, stats

    def _update_loss(self, policy: nn.Module, batch: Any, c: dict[str, Any]):
        """Step 5: the policy's log-probs with grad, the GRPO loss and the optional extra term."""
        cfg, r = self.grpo, c["rollout"]
        if self.step_cfg.prompt_grad:
            embeds, lens = self.encode_prompts(policy, batch)
        else:
            embeds, lens = c["prompt_embeds"], c["prompt_lens"]
        logp, ent = self.completion_logprobs(policy, embeds, lens, r, with_entropy=self.step_cfg.log_entropy)
        old = c["old_logp"] if cfg.num_iterations > 1 else None  # None: on-policy, ratio exactly 1 (grpo_loss)
        loss, st = grpo_loss(logp, old, c["adv"], r.mask, c["ref_logp"], cfg=cfg, truncated=r.truncated,
                             zero_std_mask=c["zero_std"])
        return loss, st, logp, ent, self.extra_loss(policy, batch, c)

    def on_step_end(self, model: nn.Module, step: int, stats: dict[str, float]) -> bool | None:
        if self._t_end is not None:
            self._t_backward = _now(self.device) - self._t_end
        if not math.isfinite(stats.get("loss", 0.0)):
            logger.error("step %d: GRPO loss is %s: stopping", step, stats.get("loss"))
            return True
        kl = stats.get("kl")
        if self.step_cfg.stop_kl > 0 and kl is not None:
            kl = dist_lib.all_reduce_mean({"kl": kl})["kl"]  # every rank judges the same (global) KL
            self._kl_strikes = self._kl_strikes + 1 if kl > self.step_cfg.stop_kl else 0
            if self._kl_strikes >= self.step_cfg.stop_kl_patience:
                logger.warning("step %d: KL to the reference %.3f > stop_kl %.3f for %d steps: stopping (the policy "
                               "is drifting away from the SFT model; lower the lr or raise beta)", step, kl,
                               self.step_cfg.stop_kl, self._kl_strikes)
                return True
        return None

    def extra_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"kl_strikes": self._kl_strikes}
        if self.generator is not None:
            state["rollout_rng"] = self.generator.get_state()
        if self._ref_sum is not None:
            state["ref_checksum"] = self._ref_sum
        if self._cache is not None:  # saved mid-reuse (num_iterations > 1): the next steps need this rollout
            c = self._cache
            state["cache"] = {"rollout": c["rollout"].state(), "stats": {k: float(v) for k, v in c["stats"].items()},
                              **{k: c[k].detach().cpu() for k in ("adv", "zero_std", "old_logp", "ref_logp",
                                                                  "prompt_embeds", "prompt_lens")
                                 if c.get(k) is not None}}
        return state

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self._kl_strikes = int(state.get("kl_strikes", 0))
        if "rollout_rng" in state and self.generator is not None:
            self.generator.set_state(state["rollout_rng"])
        if self._ref_sum is not None and "ref_checksum" in state:
            if not torch.allclose(self._ref_sum, state["ref_checksum"], rtol=1e-9, atol=1e-6):
                raise RuntimeError("the rebuilt reference model differs from the one this run started with (did "
                                   "train.init_from change?); resume with the original initial weights")
        self._cache_state = state.get("cache")

    # ------------------------------------------------------------------------------------- internals
    def _restore_cache(self, s: dict[str, Any]) -> dict[str, Any]:
        c = {k: (v.to(self.device) if isinstance(v, torch.Tensor) else v) for k, v in s.items()}
        c["rollout"] = Rollout.from_state(s["rollout"], self.device)
        for k in ("old_logp", "ref_logp", "prompt_embeds", "prompt_lens"):
            c.setdefault(k, None)
        return c

    def _rollout(self, policy: nn.Module, batch: Any, times: dict[str, float]) -> dict[str, Any]:
        """Steps 1-4 of the module docstring: everything computed once per rollout batch."""
        cfg, dev = self.grpo, self.device
        llm = self.policy_llm(policy)
        policy.eval()  # sample from the deterministic model (no dropout / SpecAugment)
        try:
            t = _now(dev)
            with torch.no_grad():
                embeds, lens = self.encode_prompts(policy, batch)
            times["encode"] = (t1 := _now(dev)) - t
            rollout = self.sample(policy, embeds, lens, batch)
            greedy = self.greedy(policy, embeds, lens, batch) if cfg.baseline == "greedy" else None
            llm.clear_caches()  # free the KV cache before the update's activations
            times["rollout"] = (t2 := _now(dev)) - t1
            old_logp = None
            if cfg.num_iterations > 1:
                if self.step_cfg.old_logprobs == "recompute":
                    with torch.no_grad():
                        old_logp, _ = self.completion_logprobs(policy, embeds, lens, rollout)
                else:
                    old_logp = rollout.old_logp
        finally:
            policy.train()
        total, per = compute_rewards(self.rewards, self.reward_inputs(batch, rollout))
        base = None
        if greedy is not None:  # the same weighted rewards of each prompt's greedy completion (a group of one)
            base, _ = compute_rewards(self.rewards, self.reward_inputs(batch, greedy))
        adv, zero_std, adv_stats = group_advantages(total, cfg.num_generations, cfg.scale_rewards, cfg.advantage_eps,
                                                    baseline=base)
        times["reward"] = (t3 := _now(dev)) - t2
        ref_logp = None
        if self.ref_model is not None:
            with torch.no_grad():
                r_embeds, r_lens = self.encode_prompts(self.ref_model, batch)
                ref_logp, _ = self.completion_logprobs(self.ref_model, r_embeds, r_lens, rollout)
            times["reference"] = _now(dev) - t3
        lengths = rollout.lengths.float()
        stats = {"reward": float(adv_stats["reward_mean"]), "reward_std": float(adv_stats["reward_std"]),
                 "frac_reward_zero_std": float(adv_stats["frac_zero_std"]),
                 "completion_len": float(lengths.mean()), "completion_len_max": float(lengths.max()),
                 "frac_truncated": float(rollout.truncated.float().mean())}
        if base is not None:  # the training prompts' greedy reward: what the recipe's greedy decoding would score
            stats["reward_greedy"] = float(base.mean())
        for name, v in per.items():
            stats[f"reward_{name}"] = float(v.mean())
            stats[f"reward_{name}_std"] = float(v.std()) if v.numel() > 1 else 0.0
        return {"rollout": rollout, "adv": adv.to(dev), "zero_std": zero_std.to(dev), "old_logp": old_logp,
                "ref_logp": ref_logp, "stats": stats,
                "prompt_embeds": None if self.step_cfg.prompt_grad else embeds.detach(),
                "prompt_lens": None if self.step_cfg.prompt_grad else lens}
