"""Discrete bottlenecks for speech tokens: FSQ (finite scalar quantisation) and an EMA vector quantiser.

FSQ (Mentzer et al. 2023, "Finite Scalar Quantization: VQ-VAE Made Simple"): project the input to d = len(levels)
dims, bound dim i with tanh to L_i values, round with a straight-through estimator. The codebook is implicit: the
product grid of levels, so there is nothing to learn, collapse or restart, and ids are mixed-radix numbers
    id = sum_i digit_i * prod_{j<i} L_j,   digit_i in [0, L_i)
(codebook size prod(levels): (8, 8, 8, 5, 5) = 12800, (5, 5, 5, 5) = 625 for the CPU recipe).

VQ (van den Oord et al. 2017 with EMA codebook updates, as in SoundStream/Encodec): nearest codeword, straight-through
gradient, commitment loss; codewords follow an exponential moving average of the vectors assigned to them and dead
codewords (EMA usage below a threshold) restart from random inputs of the batch.

Both share one interface: ``forward(x) -> (x_q, ids, aux_loss)``, ``encode(x) -> ids``, ``decode(ids) -> x_q``,
``codebook_size``; x (..., in_dim) in any leading shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from audiorl.config import option


@dataclass
class QuantizerConfig:
    kind: Literal["fsq", "vq"] = option("fsq", "'fsq': implicit product-grid codebook (no codebook loss, no "
                                               "collapse); 'vq': learned codebook with EMA updates.")
    levels: tuple[int, ...] = option((5, 5, 5, 5), "FSQ levels per dim; codebook size = their product "
                                                   "(625 here; (3,)*8 = 6561 as CosyVoice2; (8, 8, 8, 5, 5) = 12800).")
    codebook_size: int = option(512, "VQ codewords (FSQ derives its size from levels).")
    code_dim: int = option(64, "VQ codeword width (the input is projected to it and back).")
    ema_decay: float = option(0.99, "VQ: EMA decay of codeword statistics.")
    commitment: float = option(0.25, "VQ: weight of ||x - sg(q)||^2 in aux_loss.")
    dead_threshold: float = option(1e-2, "VQ: codewords whose EMA count falls below this restart from batch inputs "
                                         "(0 = never).")

    def __post_init__(self):
        self.levels = tuple(int(v) for v in self.levels)
        if self.kind == "fsq" and (not self.levels or min(self.levels) < 2):
            raise ValueError(f"quantizer.levels={self.levels}: need at least one dim, each with >= 2 levels")
        if self.kind == "vq" and (self.codebook_size < 2 or self.code_dim < 1):
            raise ValueError("quantizer.codebook_size must be >= 2 and code_dim >= 1")
        if not 0.0 < self.ema_decay < 1.0:
            raise ValueError(f"quantizer.ema_decay={self.ema_decay} must be in (0, 1)")

    @property
    def size(self) -> int:
        """Number of distinct ids."""
        if self.kind == "vq":
            return self.codebook_size
        n = 1
        for v in self.levels:
            n *= v
        return n


def round_ste(z: torch.Tensor) -> torch.Tensor:
    """Round in the forward pass, identity gradient in the backward pass."""
    return z + (z.round() - z).detach()


class FSQ(nn.Module):
    def __init__(self, levels: tuple[int, ...], in_dim: int = 0):
        """in_dim 0: no projections (x already has len(levels) dims)."""
        super().__init__()
        lv = torch.tensor(levels, dtype=torch.long)
        self.register_buffer("levels", lv, persistent=False)  # (d,)
        self.register_buffer("basis", torch.cumprod(torch.cat([lv.new_ones(1), lv[:-1]]), 0), persistent=False)
        self.d = len(levels)
        self.codebook_size = int(lv.prod())
        self.proj_in = nn.Linear(in_dim, self.d) if in_dim else nn.Identity()
        self.proj_out = nn.Linear(self.d, in_dim) if in_dim else nn.Identity()

    def bound(self, z: torch.Tensor) -> torch.Tensor:
        """(..., d) -> values whose rounding gives L_i integers per dim: [-(L-1)/2, (L-1)/2] for odd L,
        [-L/2, L/2 - 1] for even L (the shifted tanh keeps 0 at 0 for odd L)."""
        L = self.levels.to(z.dtype)
        half_l = (L - 1) * (1 + 1e-3) / 2
        offset = torch.where(self.levels % 2 == 0, 0.5, 0.0).to(z.dtype)
        shift = torch.atanh(offset / half_l)
        return torch.tanh(z + shift) * half_l - offset

    def quantize(self, z: torch.Tensor) -> torch.Tensor:
        """(..., d) unbounded -> grid codes normalised to about [-1, 1] (straight-through gradient)."""
        return round_ste(self.bound(z)) / (self.levels // 2).to(z.dtype)

    def codes_to_ids(self, codes: torch.Tensor) -> torch.Tensor:
        half = self.levels // 2
        digits = (codes * half + half).round().long()  # (..., d) in [0, L_i)
        return (digits * self.basis).sum(-1)  # (...,)

    def ids_to_codes(self, ids: torch.Tensor) -> torch.Tensor:
        assert ids.dtype in (torch.int32, torch.int64), f"ids must be integers, got {ids.dtype}"
        digits = (ids.long()[..., None] // self.basis) % self.levels  # (..., d)
        half = self.levels // 2
        return (digits - half).float() / half  # (..., d)

    def forward(self, x: torch.Tensor):
        """x (..., in_dim) -> (x_q (..., in_dim), ids (...,), aux_loss 0)."""
        codes = self.quantize(self.proj_in(x).float())  # (..., d)
        return self.proj_out(codes.to(x.dtype)), self.codes_to_ids(codes.detach()), x.new_zeros(())

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.codes_to_ids(self.quantize(self.proj_in(x).float()))  # (...,)

    def decode(self, ids: torch.Tensor) -> torch.Tensor:
        codes = self.ids_to_codes(ids)  # (..., d)
        return self.proj_out(codes.to(self._dtype()))  # (..., in_dim)

    def _dtype(self):
        return self.proj_out.weight.dtype if isinstance(self.proj_out, nn.Linear) else torch.float32


class EMAVQ(nn.Module):
    def __init__(self, codebook_size: int, code_dim: int, in_dim: int = 0, decay: float = 0.99,
                 commitment: float = 0.25, dead_threshold: float = 1e-2, eps: float = 1e-5):
        super().__init__()
        self.codebook_size, self.decay, self.commitment, self.dead_threshold, self.eps = \
            codebook_size, decay, commitment, dead_threshold, eps
        self.proj_in = nn.Linear(in_dim, code_dim) if in_dim else nn.Identity()
        self.proj_out = nn.Linear(code_dim, in_dim) if in_dim else nn.Identity()
        embed = torch.randn(codebook_size, code_dim)
        self.register_buffer("embed", embed)  # (K, c) the codebook = embed_sum / count
        self.register_buffer("count", torch.ones(codebook_size))  # (K,) EMA of assignments
        self.register_buffer("embed_sum", embed.clone())  # (K, c) EMA of the sum of assigned vectors

    def _nearest(self, z: torch.Tensor) -> torch.Tensor:
        d = z.pow(2).sum(-1, keepdim=True) - 2 * z @ self.embed.t() + self.embed.pow(2).sum(-1)  # (N, K)
        return d.argmin(-1)  # (N,)

    @torch.no_grad()
    def _ema_update(self, z: torch.Tensor, ids: torch.Tensor) -> None:
        onehot = F.one_hot(ids, self.codebook_size).type_as(z)  # (N, K)
        self.count.mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
        self.embed_sum.mul_(self.decay).add_(onehot.t() @ z, alpha=1 - self.decay)
        n = self.count.sum()
        count = (self.count + self.eps) / (n + self.codebook_size * self.eps) * n  # Laplace smoothing
        self.embed.copy_(self.embed_sum / count[:, None])
        dead = self.count < self.dead_threshold
        if self.dead_threshold > 0 and bool(dead.any()):  # restart dead codewords from random inputs
            pick = z[torch.randint(0, z.shape[0], (int(dead.sum()),), device=z.device)]
            self.embed[dead], self.embed_sum[dead], self.count[dead] = pick, pick, 1.0

    def forward(self, x: torch.Tensor):
        """x (..., in_dim) -> (x_q (..., in_dim), ids (...,), aux_loss = commitment * ||z - sg(q)||^2)."""
        z = self.proj_in(x).float()  # (..., c)
        flat = z.reshape(-1, z.shape[-1])  # (N, c)
        ids = self._nearest(flat.detach())  # (N,)
        if self.training:
            self._ema_update(flat.detach(), ids)
        q = self.embed[ids].view_as(z)
        loss = self.commitment * F.mse_loss(z, q.detach())
        q = z + (q - z).detach()  # straight-through
        return self.proj_out(q.to(x.dtype)), ids.view(z.shape[:-1]), loss

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        z = self.proj_in(x).float()
        return self._nearest(z.reshape(-1, z.shape[-1])).view(z.shape[:-1])

    def decode(self, ids: torch.Tensor) -> torch.Tensor:
        q = self.embed[ids.long()]  # (..., c)
        w = self.proj_out.weight if isinstance(self.proj_out, nn.Linear) else q
        return self.proj_out(q.to(w.dtype))


def build_quantizer(c: QuantizerConfig, in_dim: int) -> nn.Module:
    if c.kind == "fsq":
        return FSQ(c.levels, in_dim)
    return EMAVQ(c.codebook_size, c.code_dim, in_dim, c.ema_decay, c.commitment, c.dead_threshold)
