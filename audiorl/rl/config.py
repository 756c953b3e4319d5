"""GRPO configuration (PAPER.md section 2), in TRL's ``GRPOConfig`` style (STYLE.md section 4).

One dataclass, fields grouped by theme; every field is typed, has a default and a ``metadata`` help
string that is the single source of the documentation. Reward weights are NOT here: they live in
``audiorl.rl.rewards.RewardConfig`` (one list of ``{name, weight, kwargs}``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ScaleRewards = Literal["group", "batch", "none"]
KLEstimator = Literal["k3", "k1", "k2"]
LossAggregation = Literal["token-mean", "seq-mean-token-mean", "dr-grpo"]
Baseline = Literal["group_mean", "greedy"]

_SCALES = ("group", "batch", "none")
_ESTIMATORS = ("k3", "k1", "k2")
_AGGREGATIONS = ("token-mean", "seq-mean-token-mean", "dr-grpo")
_BASELINES = ("group_mean", "greedy")


@dataclass
class GRPOConfig:
    # ---------------------------------------------------------------- rollout / sampling
    num_generations: int = field(
        default=8,
        metadata={
            "help": "G, completions sampled per prompt (one group). Paper: ASR 12, TTS 8 (PAPER.md s2). "
            "Larger G gives better baselines and fewer all-equal groups but costs G x sampling time. "
            "The rollout batch must be laid out group-major: rows g*G .. g*G+G-1 are one prompt's group."
        },
    )
    temperature: float = field(
        default=1.0,
        metadata={
            "help": "Sampling temperature (> 0). Paper: 1.0 for TTS. Higher explores more but, for TTS, "
            "produces degenerate rollouts (loops, no end token; PAPER.md s6). Log-probs in the loss are "
            "taken from logits / temperature so that ratio and KL refer to the sampling distribution."
        },
    )
    top_k: int = field(
        default=0,
        metadata={"help": "Top-k filter when sampling; 0 disables it. Left open by the paper (s7)."},
    )
    top_p: float = field(
        default=1.0,
        metadata={"help": "Nucleus (top-p) filter in (0, 1]; 1.0 disables it. Left open by the paper (s7)."},
    )
    max_new_tokens: int = field(
        default=256,
        metadata={
            "help": "Longest completion sampled; a completion that hits it without an end token is "
            "'truncated'. Also the constant normaliser of loss_aggregation='dr-grpo'. ASR: a bit above "
            "the longest transcript in tokens; TTS: 25 tokens/s x the longest utterance in seconds."
        },
    )

    # ---------------------------------------------------------------- advantages
    baseline: Baseline = field(
        default="group_mean",
        metadata={
            "help": "What a completion's reward is measured against. 'group_mean': the mean reward of its group "
            "(GRPO, PAPER.md s2). 'greedy': the reward of the policy's own greedy completion of the same prompt, "
            "decoded (no grad) with every rollout (self-critical sequence training, Rennie et al. 2017): only "
            "samples that beat the greedy output are reinforced, so the update moves the greedy output that "
            "ASR is scored by. With group_mean at temperature 1 the samples are on average worse than greedy "
            "(synth_en: 12.6% sampled vs 9.5% greedy test WER), so a sample that repeats the greedy output "
            "gets a positive advantage and the update mostly sharpens the distribution around it. The group "
            "std of scale_rewards='group' then includes the greedy reward; a group is 'zero-std' (skipped) "
            "when every sample scores exactly the greedy reward. Costs one greedy decoding per prompt (~1/G "
            "of the rollout). Only for tasks that sample the LLM's vocabulary (ASR)."
        },
    )
    scale_rewards: ScaleRewards = field(
        default="group",
        metadata={
            "help": "Which std divides the (reward - group mean) advantage. 'group': each group's own "
            "std, as in the paper's A_i = (r_i - mean) / (std + eps) (s2). 'batch': one std over the "
            "whole rollout batch (keeps the relative size of groups with different spreads). 'none': no "
            "scaling (Dr. GRPO; removes the bias towards groups with tiny spreads). Std is the unbiased "
            "(n-1) estimator, like TRL."
        },
    )
    advantage_eps: float = field(
        default=1e-4,
        metadata={"help": "eps added to the std before dividing (>= 0). Ignored when scale_rewards='none'."},
    )
    skip_zero_std_groups: bool = field(
        default=True,
        metadata={
            "help": "Drop groups whose rewards are all equal from the loss (policy term, KL term and "
            "normaliser) and count them in stats['frac_zero_std']. Their advantage is zero, so they only "
            "dilute the token-mean normaliser and cost backward compute (PAPER.md s2; the ENV.md trial had "
            "25% such groups). Set False to keep the KL anchor on those groups' tokens."
        },
    )
    mask_truncated_completions: bool = field(
        default=False,
        metadata={
            "help": "Exclude completions that hit max_new_tokens without an end token from the loss "
            "(DAPO). Default False: in ASR/TTS a truncated output is almost always a repetition loop, "
            "and the hallucination reward needs its negative advantage to reach the policy. Turn on "
            "only when long outputs are legitimate and max_new_tokens is merely too small."
        },
    )

    # ---------------------------------------------------------------- clipped objective
    epsilon_low: float = field(
        default=0.2,
        metadata={
            "help": "Lower clip: the ratio is clipped at 1 - epsilon_low (gradient stops there for "
            "negative advantages). In (0, 1). Left open by the paper (s7); 0.2 is PPO's value."
        },
    )
    epsilon_high: float = field(
        default=0.2,
        metadata={
            "help": "Upper clip: the ratio is clipped at 1 + epsilon_high (gradient stops there for "
            "positive advantages). > 0. DAPO's 'clip-higher' uses 0.28 with epsilon_low 0.2 to keep "
            "entropy up; only matters when num_iterations > 1 (with mu = 1 the ratio is exactly 1)."
        },
    )
    num_iterations: int = field(
        default=1,
        metadata={
            "help": "mu, optimiser passes over one rollout batch. 1 = the paper's strictly on-policy "
            "step (s1): the ratio is 1 in value but gradients still flow through it. > 1 reuses the "
            "batch; the trainer must then keep the rollout-time log-probs as old_logp."
        },
    )

    # ---------------------------------------------------------------- KL to the reference
    beta: float = field(
        default=0.1,
        metadata={
            "help": "KL coefficient (>= 0); 0 loads no reference model (see needs_reference). Default "
            "0.1 is the paper's (s2). ENV.md's CPU trials used 0.04 and 0.02 and drifted (test WER got "
            "worse at KL 0.1-0.25 on ~1k utterances), so we do not go lower by default; lower it only "
            "with much more RL data."
        },
    )
    kl_estimator: KLEstimator = field(
        default="k3",
        metadata={
            "help": "Per-token KL estimator, with d = ref_logp - logp: 'k3' exp(d) - d - 1 (paper s2; "
            "unbiased, always >= 0); 'k1' -d (unbiased, can be negative, high variance); 'k2' d^2 / 2 "
            "(biased, low variance). Ignored when beta = 0."
        },
    )

    # ---------------------------------------------------------------- loss aggregation
    loss_aggregation: LossAggregation = field(
        default="token-mean",
        metadata={
            "help": "How token losses become one scalar (PAPER.md s2: 'the choice matters for length "
            "bias'). 'token-mean': sum over all kept tokens / their count (DAPO): each token weighs the "
            "same, so a long looping hypothesis is penalised in full. 'seq-mean-token-mean': mean per "
            "sequence, then mean over kept sequences (original GRPO): long wrong outputs are diluted per "
            "token, a bias towards long bad outputs. 'dr-grpo': sum / (N rows x max_new_tokens), a "
            "constant normaliser independent of lengths and of how many rows are excluded."
        },
    )

    def __post_init__(self) -> None:
        if self.num_generations < 2:
            raise ValueError(
                f"num_generations={self.num_generations}: GRPO needs at least 2 completions per prompt "
                "for a group baseline; use 8 (TTS) or 12 (ASR) as in the paper."
            )
        if self.temperature <= 0:
            raise ValueError(f"temperature={self.temperature} must be > 0 (use 1.0; greedy is not RL sampling).")
        if self.top_k < 0:
            raise ValueError(f"top_k={self.top_k} must be >= 0 (0 disables the filter).")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p={self.top_p} must be in (0, 1] (1.0 disables the filter).")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens={self.max_new_tokens} must be >= 1.")
        if self.baseline not in _BASELINES:
            raise ValueError(f"baseline={self.baseline!r}: choose one of {_BASELINES}.")
        if self.scale_rewards not in _SCALES:
            raise ValueError(f"scale_rewards={self.scale_rewards!r}: choose one of {_SCALES}.")
        if self.advantage_eps < 0:
            raise ValueError(f"advantage_eps={self.advantage_eps} must be >= 0 (default 1e-4).")
        if not 0.0 < self.epsilon_low < 1.0:
            raise ValueError(
                f"epsilon_low={self.epsilon_low} must be in (0, 1): the ratio is clipped at "
                f"1 - epsilon_low = {1 - self.epsilon_low}, which must stay positive. Use 0.2."
            )
        if self.epsilon_high <= 0:
            raise ValueError(f"epsilon_high={self.epsilon_high} must be > 0 (0.2, or 0.28 for DAPO clip-higher).")
        if self.num_iterations < 1:
            raise ValueError(f"num_iterations={self.num_iterations} must be >= 1 (1 = on-policy, the paper's).")
        if self.beta < 0:
            raise ValueError(f"beta={self.beta} must be >= 0 (0 disables the KL term and the reference model).")
        if self.kl_estimator not in _ESTIMATORS:
            raise ValueError(f"kl_estimator={self.kl_estimator!r}: choose one of {_ESTIMATORS}.")
        if self.loss_aggregation not in _AGGREGATIONS:
            raise ValueError(f"loss_aggregation={self.loss_aggregation!r}: choose one of {_AGGREGATIONS}.")

    @property
    def needs_reference(self) -> bool:
        """Whether a frozen reference model must be loaded (only for the KL term, i.e. beta > 0)."""
        return self.beta > 0.0
