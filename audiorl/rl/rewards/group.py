"""Group-relative rewards (PAPER.md s4, TTS): a sample's score depends on the other members of its group.

Groups are the samples sharing ``RewardInput.group_index`` (no layout assumption). Both rewards work on
``hyp_tokens`` (the sampled speech tokens) unless told otherwise, so they need no ASR or vocoder.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Literal

from rapidfuzz.distance import Levenshtein

from audiorl.rl.rewards.base import RewardInput, register_reward


def _groups(samples: list[RewardInput]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = defaultdict(list)
    for i, s in enumerate(samples):
        out[s.group_index].append(i)
    return out


def _length(s: RewardInput, length: str) -> float:
    if length == "tokens":
        return float(len(s.hyp_tokens))
    if length == "duration":
        if "duration" not in s.meta:
            raise KeyError("duration reward with length='duration' needs meta['duration'] (seconds) on every sample")
        return float(s.meta["duration"])
    raise ValueError(f"length={length!r}: choose 'tokens' or 'duration'")


@register_reward("duration")
def duration(samples: list[RewardInput], length: Literal["tokens", "duration"] = "tokens") -> list[float]:
    """R2 (PAPER.md s4): -|(len_i - T_m) / T_m|, T_m the median length of i's group.

    Stops RL from slowing speech down (longer outputs are not rewarded by the ASR judge any more).
    length: 'tokens' = len(hyp_tokens) (25 tokens/s in CosyVoice2), 'duration' = meta['duration'].
    The median of an even-sized group is the mean of the two middle values (statistics.median). If
    T_m == 0 (half the group is empty), empty samples score 0 and the others -1.
    """
    lens = [_length(s, length) for s in samples]
    out = [0.0] * len(samples)
    for idx in _groups(samples).values():
        t_m = statistics.median(lens[i] for i in idx)
        for i in idx:
            out[i] = -abs(lens[i] - t_m) / t_m if t_m > 0 else (0.0 if lens[i] == 0 else -1.0)
    return out


def normalized_token_distance(a: list[int], b: list[int]) -> float:
    """Levenshtein(a, b) / max(len(a), len(b)), in [0, 1]; 0 for two empty sequences."""
    m = max(len(a), len(b))
    return Levenshtein.distance(a, b) / m if m else 0.0


@register_reward("diversity")
def diversity(samples: list[RewardInput], f0_weight: float = 0.0, f0_scale: float = 50.0) -> list[float]:
    """R3 (PAPER.md s4): mean normalised token edit distance to the other members of the group
    (normalized_token_distance; a group of one scores 0), plus f0_weight * meta['f0_std'] / f0_scale
    when f0_weight > 0 (pitch diversity; f0_std in Hz, f0_scale ~ a typical F0 std so the term is O(1)).
    """
    if f0_weight and any("f0_std" not in s.meta for s in samples):
        raise KeyError("diversity with f0_weight > 0 needs meta['f0_std'] (Hz) on every sample")
    out = [0.0] * len(samples)
    for idx in _groups(samples).values():
        for i in idx:
            others = [j for j in idx if j != i]
            if others:
                out[i] = sum(normalized_token_distance(samples[i].hyp_tokens, samples[j].hyp_tokens)
                             for j in others) / len(others)
            if f0_weight:
                out[i] += f0_weight * float(samples[i].meta["f0_std"]) / f0_scale
    return out
