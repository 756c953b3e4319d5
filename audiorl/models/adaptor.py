"""Adaptor: encoder frames -> LLM input embeddings. Stack k consecutive frames into one (25 Hz -> 12.5 Hz for k=2),
then a 2-layer MLP, or a linear projection + small Transformer (the paper's FunAudio-ASR uses a 2-layer transformer).

Padded frames are zeroed before stacking, so the last partial group of a row does not depend on its batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn as nn

from audiorl.config import option


@dataclass
class AdaptorConfig:
    """Encoder frames -> LLM embeddings (input/output widths come from the encoder and the LLM)."""

    stack: int = option(2, "Consecutive encoder frames merged into one LLM position; the 4x-subsampled encoder "
                           "runs at 25 Hz, so 2 gives 12.5 Hz.")
    kind: Literal["mlp", "transformer"] = option("mlp", "'mlp': Linear-GELU-Linear; 'transformer': linear "
                                                        "projection + n_layers pre-LN Transformer layers (paper).")
    hidden_dim: int = option(1024, "MLP hidden width, or the transformer's width.")
    n_layers: int = option(2, "Transformer layers (kind=transformer only).")
    n_heads: int = option(4, "Attention heads (kind=transformer only).")
    dropout: float = option(0.0, "Dropout inside the adaptor.")

    def __post_init__(self):
        if self.stack < 1:
            raise ValueError(f"adaptor.stack={self.stack} must be >= 1")
        if self.kind == "transformer" and self.hidden_dim % self.n_heads:
            raise ValueError(f"adaptor.hidden_dim={self.hidden_dim} must be divisible by n_heads={self.n_heads}")


def stacked_lengths(lens: torch.Tensor, k: int) -> torch.Tensor:
    return torch.div(lens + k - 1, k, rounding_mode="floor")  # ceil(lens / k)


class Adaptor(nn.Module):
    def __init__(self, config: AdaptorConfig, in_dim: int, out_dim: int):
        super().__init__()
        self.config = c = config
        self.in_dim, self.out_dim = in_dim, out_dim
        if c.kind == "mlp":
            self.net = nn.Sequential(nn.Linear(c.stack * in_dim, c.hidden_dim), nn.GELU(), nn.Dropout(c.dropout),
                                     nn.Linear(c.hidden_dim, out_dim))
        else:
            self.proj_in = nn.Linear(c.stack * in_dim, c.hidden_dim)
            layer = nn.TransformerEncoderLayer(c.hidden_dim, c.n_heads, 4 * c.hidden_dim, c.dropout,
                                               activation="gelu", batch_first=True, norm_first=True)
            self.transformer = nn.TransformerEncoder(layer, c.n_layers, enable_nested_tensor=False)
            self.proj_out = nn.Sequential(nn.LayerNorm(c.hidden_dim), nn.Linear(c.hidden_dim, out_dim))

    def forward(self, x: torch.Tensor, lens: torch.Tensor):
        """x (B, T, in_dim), lens (B,) -> (y (B, ceil(T/k), out_dim), ceil(lens/k))."""
        k = self.config.stack
        B, T, D = x.shape
        assert D == self.in_dim, f"adaptor expects {self.in_dim}-dim frames, got {D}"
        mask = torch.arange(T, device=x.device)[None] < lens[:, None]  # (B, T)
        x = x.masked_fill(~mask[..., None], 0.0)
        pad = (-T) % k
        if pad:
            x = torch.cat([x, x.new_zeros(B, pad, D)], dim=1)  # (B, k * T', D)
        x = x.reshape(B, (T + pad) // k, k * D)  # (B, T', k*D)
        out_lens = stacked_lengths(lens, k)
        if self.config.kind == "mlp":
            return self.net(x), out_lens  # (B, T', out_dim)
        key_pad = torch.arange(x.shape[1], device=x.device)[None] >= out_lens[:, None]  # (B, T') True = padding
        h = self.transformer(self.proj_in(x), src_key_padding_mask=key_pad)  # (B, T', H)
        return self.proj_out(h), out_lens  # (B, T', out_dim)
