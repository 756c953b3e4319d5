"""Reward registry and the built-in rewards (PAPER.md s3 ASR, s4 TTS). See base.py for how to add one."""

from audiorl.rl.rewards.base import (
    RewardConfig,
    RewardInput,
    RewardSpec,
    bind_reward,
    compute_rewards,
    get_reward,
    known_rewards,
    register_model_reward,
    register_reward,
    unbind_reward,
)

# importing the modules registers their rewards
from audiorl.rl.rewards import group, text, tts  # noqa: E402,F401  isort: skip

__all__ = [
    "RewardConfig",
    "RewardInput",
    "RewardSpec",
    "bind_reward",
    "compute_rewards",
    "get_reward",
    "known_rewards",
    "register_model_reward",
    "register_reward",
    "unbind_reward",
]
