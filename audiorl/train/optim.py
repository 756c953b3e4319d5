"""AdamW with decay on matrices only, and the warm-up + decay learning-rate schedules."""

from __future__ import annotations

import math

import torch
from torch import nn

from audiorl.train.config import OptimConfig, SchedulerConfig


def build_optimizer(model: nn.Module, cfg: OptimConfig, fused: bool = False) -> torch.optim.AdamW:
    """AdamW over trainable parameters; weight decay only on tensors with >= 2 dims (nanoGPT habit)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters (all requires_grad=False)")
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps,
                             **({"fused": True} if fused else {}))


def lr_factor(step: int, cfg: SchedulerConfig, max_steps: int) -> float:
    """Multiplier of the peak lr at optimizer step ``step`` (0-based: the step about to be taken)."""
    s = step + 1  # the first update already gets a non-zero lr
    w = cfg.warmup_steps
    if cfg.decay == "noam":
        # ESPnet WarmupLR: lr * w^0.5 * min(s^-0.5, s * w^-1.5); equals lr at s == w.
        return w ** 0.5 * min(s ** -0.5, s * w ** -1.5)
    if w > 0 and s <= w:
        return s / w
    if cfg.decay == "constant":
        return 1.0
    progress = min(1.0, (s - w) / max(1, max_steps - w))
    floor = cfg.min_lr_ratio
    if cfg.decay == "linear":
        return floor + (1.0 - floor) * (1.0 - progress)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))  # cosine


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: SchedulerConfig,
                    max_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """LambdaLR stepping once per optimizer step. Its state_dict holds only numbers (weights_only-safe)."""
    def fn(step: int) -> float:
        return lr_factor(step, cfg, max_steps)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, fn)
