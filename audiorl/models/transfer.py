"""Starting one model from the trained layers of another: ASR encoder -> speech tokenizer -> token-to-text reward
model (each stage reads what the one before it learned, so it need not learn it again from scratch)."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import torch.nn as nn


def shape_mismatch(config: Any, want: Mapping[str, Any]) -> list[str]:
    """``"key: mine vs theirs"`` for every field of ``config`` that differs from ``want``; empty when all match."""
    return [f"{k}: {getattr(config, k)} vs {v}" for k, v in want.items() if getattr(config, k) != v]


def copy_layers(pairs: Iterable[tuple[str, nn.Module, nn.Module]]) -> list[str]:
    """For each ``(name, dst, src)`` load ``src``'s weights into ``dst`` (strict: same parameter names and shapes).
    Returns the copied tensor names as ``name.<param>``, for the log and the tests."""
    copied = []
    for name, dst, src in pairs:
        state = src.state_dict()
        dst.load_state_dict(state)
        copied.extend(f"{name}.{n}" for n in state)
    return copied
