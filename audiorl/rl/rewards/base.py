"""Reward registry: named, batched reward functions combined with YAML weights (DESIGN.md 'seams').

A reward is one function plus one decorator line::

    @register_reward("my_reward")
    def my_reward(samples: list[RewardInput], some_option: float = 1.0) -> list[float]:
        return [...]  # one float per sample, or a (N,) tensor

YAML (parsed into RewardConfig)::

    rewards:
      - {name: accuracy, weight: 1.0, kwargs: {unit: word}}
      - {name: hallucination, weight: 1.0, kwargs: {max_repeats: 3}}

Rewards that need a model (an ASR judge, a speaker encoder) are declared with ``register_model_reward``
(a placeholder carrying the options, so YAML is checked before any model loads) and bound at run time by
the task to a closure over the loaded model: ``bind_reward("asr_judge", make_asr_judge_reward(judge))``.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch

RewardFn = Callable[..., "torch.Tensor | Sequence[float]"]
_REGISTRY: dict[str, RewardFn] = {}


@dataclass
class RewardInput:
    """One completion to score. The GRPO core never sees this; tasks build it from their outputs."""

    hyp_text: str = field(
        default="", metadata={"help": "Decoded hypothesis (ASR output, or the ASR judge's transcript of TTS audio)."}
    )
    ref_text: str = field(default="", metadata={"help": "Reference transcript (ASR) or input text (TTS)."})
    hyp_tokens: list[int] = field(default_factory=list, metadata={"help": "Sampled token ids, end token excluded."})
    group_index: int = field(default=0, metadata={"help": "Which prompt's group this completion belongs to."})
    keywords: list[str] | None = field(
        default=None, metadata={"help": "The utterance's keyword list (R3); None or [] = no keywords."}
    )
    meta: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "Extra data: duration (s), f0_std (Hz), waveform, ..."}
    )


def register_reward(name: str) -> Callable[[RewardFn], RewardFn]:
    """Decorator: make ``fn(samples, **kwargs)`` available under ``name`` in RewardConfig."""

    def deco(fn: RewardFn) -> RewardFn:
        old = _REGISTRY.get(name)
        reloaded = old is not None and (old.__module__, old.__qualname__) == (fn.__module__, fn.__qualname__)
        if old is not None and old is not fn and not reloaded:  # a module reload may re-register itself
            owner = old.__module__
            raise ValueError(f"reward {name!r} is already registered (by {owner}); pick another name")
        _REGISTRY[name] = fn
        return fn

    return deco


_PLACEHOLDERS: dict[str, RewardFn] = {}


def register_model_reward(name: str) -> Callable[[RewardFn], RewardFn]:
    """Declare a reward that needs a model loaded at run time (an ASR judge, a reward model). The decorated function
    is a placeholder with the real reward's options (so YAML is checked at config time) that raises until a task
    calls ``bind_reward(name, closure)`` with the closure over its loaded model."""

    def deco(fn: RewardFn) -> RewardFn:
        register_reward(name)(fn)
        _PLACEHOLDERS[name] = fn
        return fn

    return deco


def bind_reward(name: str, fn: RewardFn) -> None:
    """Replace the placeholder of a model-backed reward (``register_model_reward``) by ``fn``; binding again (a new
    model, another test) replaces the previous binding. Only declared model rewards can be bound."""
    if name not in _PLACEHOLDERS:
        raise KeyError(f"reward {name!r} is not a model-backed reward; model rewards: {sorted(_PLACEHOLDERS)}")
    _REGISTRY[name] = fn


def unbind_reward(name: str) -> None:
    """Put the placeholder back (the model is gone)."""
    if name in _PLACEHOLDERS:
        _REGISTRY[name] = _PLACEHOLDERS[name]


def known_rewards() -> list[str]:
    return sorted(_REGISTRY)


def get_reward(name: str) -> RewardFn:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown reward {name!r}; known rewards: {', '.join(known_rewards())}") from None


def _check_kwargs(name: str, fn: RewardFn, kwargs: dict[str, Any]) -> None:
    """Unknown options are errors at config time, not after the first rollout."""
    params = inspect.signature(fn).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    allowed = [p for p in params if p != "samples"]
    bad = sorted(set(kwargs) - set(allowed))
    if bad:
        raise ValueError(f"reward {name!r} has no option(s) {bad}; its options are {allowed}")


@dataclass
class RewardSpec:
    name: str = field(default="accuracy", metadata={"help": "A registered reward name (see known_rewards())."})
    weight: float = field(
        default=1.0,
        metadata={"help": "Multiplier in the total reward. 0 = computed and logged but not optimised."},
    )
    kwargs: dict[str, Any] = field(default_factory=dict, metadata={"help": "Options passed to the reward function."})
    alias: str = field(
        default="",
        metadata={"help": "Key in the per-reward outputs/logs; defaults to name. Needed to use one reward twice."},
    )

    def __post_init__(self) -> None:
        fn = get_reward(self.name)  # KeyError listing the known names
        _check_kwargs(self.name, fn, dict(self.kwargs))

    @property
    def key(self) -> str:
        return self.alias or self.name


def _default_rewards() -> list[RewardSpec]:
    return [RewardSpec("accuracy", 1.0)]


@dataclass
class RewardConfig:
    rewards: list[RewardSpec] = field(
        default_factory=_default_rewards,
        metadata={
            "help": "Rewards summed with weights into the scalar GRPO reward: a list of {name, weight, "
            "kwargs, alias}. The paper's ASR set (s3) is accuracy + hallucination + keywords; its TTS set "
            "(s4) is accuracy (on the ASR-judge transcript) + duration + diversity. The paper does not say "
            "how it weights them (s7); 1.0 each is our default."
        },
    )

    def __post_init__(self) -> None:
        # YAML gives dicts; accept both dicts and RewardSpec objects
        specs = []
        for i, r in enumerate(self.rewards):
            if isinstance(r, RewardSpec):
                specs.append(r)
            elif isinstance(r, dict):
                extra = sorted(set(r) - {"name", "weight", "kwargs", "alias"})
                if extra:
                    raise ValueError(f"rewards[{i}] has unknown key(s) {extra}; allowed: name, weight, kwargs, alias")
                if "name" not in r:
                    raise ValueError(f"rewards[{i}] = {r} has no 'name'; known rewards: {', '.join(known_rewards())}")
                specs.append(RewardSpec(**r))
            else:
                raise TypeError(f"rewards[{i}] must be a mapping or RewardSpec, got {type(r).__name__}")
        if not specs:
            raise ValueError("rewards is empty: GRPO needs at least one reward, e.g. [{name: accuracy, weight: 1.0}]")
        keys = [s.key for s in specs]
        dup = sorted({k for k in keys if keys.count(k) > 1})
        if dup:
            raise ValueError(f"reward(s) {dup} listed twice; give each use a distinct 'alias'")
        self.rewards = specs


def compute_rewards(cfg: RewardConfig, samples: list[RewardInput]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Score ``samples`` with every configured reward -> (total (N,), {key: (N,)}), float32 on CPU.

    total = sum_k weight_k * reward_k. A reward returning the wrong length or a non-finite value is an
    error naming the reward (a NaN would silently poison every advantage of its group).
    """
    n = len(samples)
    total = torch.zeros(n, dtype=torch.float32)
    per: dict[str, torch.Tensor] = {}
    for spec in cfg.rewards:
        vals = get_reward(spec.name)(samples, **spec.kwargs)
        t = torch.as_tensor(vals, dtype=torch.float32).detach().cpu().reshape(-1)
        if t.numel() != n:
            raise ValueError(f"reward {spec.key!r} returned {t.numel()} values for {n} samples")
        if not torch.isfinite(t).all():
            bad = torch.nonzero(~torch.isfinite(t)).flatten()[:5].tolist()
            raise ValueError(f"reward {spec.key!r} returned non-finite values at samples {bad}")
        per[spec.key] = t
        total += spec.weight * t
    return total, per
