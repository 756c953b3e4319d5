"""Audio encoder over fbank (B, T, n_mels): [utterance CMVN] -> [SpecAugment] -> conv2d 4x subsampling -> sinusoidal
positions -> Conformer (or Transformer) blocks -> LayerNorm, with an optional CTC head.

Padding never leaks into real frames: CMVN uses real frames only, valid subsampled frames never see padded input
frames, attention masks padded keys, and the Conformer convolution zeroes padded frames first and uses LayerNorm
(BatchNorm, as in torchaudio.models.Conformer, would make a row's output depend on its batch). So an utterance
encodes the same alone or in any padded batch (eval mode).
CTC: the head has ``ctc_vocab_size`` outputs = text vocab + 1; blank is the LAST index, so text ids need no shift.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from audiorl.config import option


@dataclass
class EncoderConfig:
    """Audio encoder; defaults are the CPU recipe size ("asr-small"). Named sizes: ``EncoderConfig.from_preset``."""

    n_mels: int = option(80, "Input feature bins (fbank).")
    dim: int = option(192, "Model width.")
    n_layers: int = option(4, "Encoder blocks.")
    n_heads: int = option(4, "Attention heads.")
    ffn_dim: int = option(768, "Feed-forward hidden width.")
    subsample_channels: int = option(0, "Channels of the two stride-2 convolutions of the 4x subsampling; 0 = dim "
                                        "(ESPnet's choice). The second convolution costs ~channels^2 x 9 x T/4 x n_mels/4 "
                                        "MACs and dominates the encoder on CPU at dim 192: 64 is ~9x cheaper.")
    block: Literal["conformer", "transformer"] = option("conformer", "'conformer': macaron FF + MHSA + depthwise "
                                                                     "conv; 'transformer': pre-LN MHSA + FF.")
    conv_kernel: int = option(15, "Conformer depthwise convolution width, odd (frames after subsampling, 40 ms each).")
    dropout: float = option(0.1, "Dropout (attention, feed-forward, convolution, after positions).")
    input_norm: Literal["utterance", "global", "none"] = option(
        "utterance", "'utterance': mean/variance normalisation of each utterance over its real frames; 'global': "
                     "fixed per-bin mean/std held in the model (buffers cmvn_mean/cmvn_std, saved with the weights: "
                     "e.g. a speech tokenizer started from an ASR encoder trained on globally normalised features); "
                     "'none' when the data loader already normalises (global CMVN there).")
    ctc_vocab_size: int = option(0, "CTC output classes = text vocab + 1 (blank = last index); 0 = no CTC head. "
                                    "The ASR config fills it when asr.ctc_weight > 0.")
    specaug: bool = option(True, "SpecAugment in train mode (masks fill with 0 = the mean after utterance CMVN).")
    num_freq_masks: int = option(2, "Frequency masks per utterance.")
    freq_mask_width: int = option(27, "Max bins per frequency mask.")
    num_time_masks: int = option(2, "Time masks per utterance.")
    time_mask_width: int = option(40, "Max frames per time mask ...")
    time_mask_ratio: float = option(0.2, "... and at most this fraction of the utterance.")

    def __post_init__(self):
        if self.dim % self.n_heads:
            raise ValueError(f"encoder.dim={self.dim} must be divisible by encoder.n_heads={self.n_heads}")
        if self.conv_kernel % 2 == 0:
            raise ValueError(f"encoder.conv_kernel={self.conv_kernel} must be odd (same padding)")
        if self.subsample_channels < 0:
            raise ValueError(f"encoder.subsample_channels={self.subsample_channels} must be >= 0 (0 = dim)")
        if self.ctc_vocab_size == 1 or self.ctc_vocab_size < 0:
            raise ValueError(f"encoder.ctc_vocab_size={self.ctc_vocab_size}: 0 (no CTC head) or text vocab + 1")

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "EncoderConfig":
        if name not in PRESETS:
            raise ValueError(f"unknown encoder preset {name!r}; choose one of {sorted(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})


PRESETS: dict[str, dict] = {
    "tiny": dict(dim=64, n_layers=2, n_heads=4, ffn_dim=128, conv_kernel=7, dropout=0.0),  # unit tests
    "asr-small": dict(dim=192, n_layers=4, n_heads=4, ffn_dim=768, conv_kernel=15, dropout=0.1),  # = the defaults
}


def subsampled_lengths(lens: torch.Tensor) -> torch.Tensor:
    """Frames after two conv(k=3, s=2, no padding): ((L - 1) // 2 - 1) // 2."""
    return torch.div(torch.div(lens - 1, 2, rounding_mode="floor") - 1, 2, rounding_mode="floor")


def padding_mask(lens: torch.Tensor, T: int) -> torch.Tensor:
    return torch.arange(T, device=lens.device)[None] < lens[:, None]  # (B, T) True = real frame


def spec_augment(x: torch.Tensor, lens: torch.Tensor, c: EncoderConfig) -> torch.Tensor:
    """Random frequency and time masks per utterance (x (B, T, F)), filled with 0."""
    B, T, nf = x.shape
    rand = lambda: torch.rand(B, 1, device=x.device)  # noqa: E731
    f = torch.arange(nf, device=x.device)[None]  # (1, F)
    for _ in range(c.num_freq_masks):
        w = (rand() * (c.freq_mask_width + 1)).floor().clamp(max=nf)  # (B, 1)
        f0 = (rand() * (nf - w + 1)).floor()
        x = x.masked_fill(((f >= f0) & (f < f0 + w))[:, None, :], 0.0)
    t = torch.arange(T, device=x.device)[None]  # (1, T)
    max_w = torch.minimum(torch.full_like(lens, c.time_mask_width), (lens * c.time_mask_ratio).long())[:, None]
    for _ in range(c.num_time_masks):
        w = (rand() * (max_w + 1)).floor()  # (B, 1)
        t0 = (rand() * (lens[:, None] - w + 1)).floor()
        x = x.masked_fill(((t >= t0) & (t < t0 + w))[:, :, None], 0.0)
    return x


class Conv2dSubsampling(nn.Module):
    """(B, T, F) -> (B, (T-1)//2-1)//2, dim): two 3x3 stride-2 convolutions with ReLU, then a linear projection."""

    def __init__(self, n_mels: int, dim: int, channels: int = 0):
        super().__init__()
        ch = channels or dim
        self.conv = nn.Sequential(nn.Conv2d(1, ch, 3, 2), nn.ReLU(), nn.Conv2d(ch, ch, 3, 2), nn.ReLU())
        self.out = nn.Linear(ch * (((n_mels - 1) // 2 - 1) // 2), dim)

    def forward(self, x, lens):
        x = self.conv(x[:, None])  # (B, C, T', F')
        B, C, T, Fq = x.shape
        return self.out(x.transpose(1, 2).reshape(B, T, C * Fq)), subsampled_lengths(lens)  # (B, T', D)


def sinusoids(T: int, dim: int, device) -> torch.Tensor:
    pos = torch.arange(T, device=device, dtype=torch.float32)[:, None]
    inv = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(T, dim, device=device)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * inv), torch.cos(pos * inv)
    return pe  # (T, D)


class SelfAttention(nn.Module):
    def __init__(self, dim: int, n_heads: int, dropout: float):
        super().__init__()
        self.n_heads, self.dropout = n_heads, dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, key_mask):
        B, T, D = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.n_heads, D // self.n_heads).permute(2, 0, 3, 1, 4)  # (B, nh, T, hs)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask[:, None, None, :],
                                           dropout_p=self.dropout if self.training else 0.0)  # (B, nh, T, hs)
        return self.proj(y.transpose(1, 2).reshape(B, T, D))


def feed_forward(c: EncoderConfig) -> nn.Sequential:
    return nn.Sequential(nn.LayerNorm(c.dim), nn.Linear(c.dim, c.ffn_dim), nn.SiLU(), nn.Dropout(c.dropout),
                         nn.Linear(c.ffn_dim, c.dim), nn.Dropout(c.dropout))


class ConvModule(nn.Module):
    """LN -> pointwise GLU -> depthwise conv (padded frames zeroed first) -> LN -> SiLU -> pointwise."""

    def __init__(self, c: EncoderConfig):
        super().__init__()
        self.norm = nn.LayerNorm(c.dim)
        self.pw1 = nn.Linear(c.dim, 2 * c.dim)
        self.dw = nn.Conv1d(c.dim, c.dim, c.conv_kernel, padding=c.conv_kernel // 2, groups=c.dim)
        self.norm2 = nn.LayerNorm(c.dim)
        self.pw2 = nn.Linear(c.dim, c.dim)
        self.drop = nn.Dropout(c.dropout)

    def forward(self, x, key_mask):
        y = F.glu(self.pw1(self.norm(x)), dim=-1).masked_fill(~key_mask[..., None], 0.0)  # (B, T, D)
        y = self.dw(y.transpose(1, 2)).transpose(1, 2)  # (B, T, D)
        return self.drop(self.pw2(F.silu(self.norm2(y))))


class EncoderBlock(nn.Module):
    """conformer: x + FF/2, + MHSA, + Conv, + FF/2, LN (macaron). transformer: pre-LN x + MHSA, + FF."""

    def __init__(self, c: EncoderConfig):
        super().__init__()
        self.conformer = c.block == "conformer"
        self.attn_norm = nn.LayerNorm(c.dim)
        self.attn = SelfAttention(c.dim, c.n_heads, c.dropout)
        self.drop = nn.Dropout(c.dropout)
        self.ff = feed_forward(c)
        if self.conformer:
            self.ff0, self.conv, self.out_norm = feed_forward(c), ConvModule(c), nn.LayerNorm(c.dim)

    def forward(self, x, key_mask):
        if self.conformer:
            x = x + 0.5 * self.ff0(x)
        x = x + self.drop(self.attn(self.attn_norm(x), key_mask))
        if self.conformer:
            x = x + self.conv(x, key_mask)
            return self.out_norm(x + 0.5 * self.ff(x))
        return x + self.ff(x)


class AudioEncoder(nn.Module):
    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = c = config
        self.subsample = Conv2dSubsampling(c.n_mels, c.dim, c.subsample_channels)
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(EncoderBlock(c) for _ in range(c.n_layers))
        self.norm = nn.LayerNorm(c.dim)
        self.ctc_head = nn.Linear(c.dim, c.ctc_vocab_size) if c.ctc_vocab_size else None
        if c.input_norm == "global":  # identity until set_cmvn; persistent, so a checkpoint carries its stats
            self.register_buffer("cmvn_mean", torch.zeros(c.n_mels))
            self.register_buffer("cmvn_std", torch.ones(c.n_mels))

    @torch.no_grad()
    def set_cmvn(self, mean, std):
        """Global CMVN stats (n_mels,) for input_norm='global' (e.g. audiorl.data.features.load_cmvn's)."""
        assert self.config.input_norm == "global", "set_cmvn needs encoder.input_norm='global'"
        mean, std = torch.as_tensor(mean, dtype=torch.float32), torch.as_tensor(std, dtype=torch.float32)
        assert mean.shape == std.shape == (self.config.n_mels,), f"CMVN stats must be ({self.config.n_mels},)"
        assert bool((std > 0).all()), "CMVN std must be positive"
        self.cmvn_mean.copy_(mean)
        self.cmvn_std.copy_(std)

    @property
    def blank_id(self) -> int:
        return self.config.ctc_vocab_size - 1

    def forward(self, feats: torch.Tensor, feat_lens: torch.Tensor):
        """feats (B, T, n_mels), feat_lens (B,) -> (out (B, T', dim), out_lens (B,)), T' = ((T-1)//2-1)//2."""
        c = self.config
        assert feats.dim() == 3 and feats.shape[-1] == c.n_mels, f"feats must be (B, T, {c.n_mels}), got {tuple(feats.shape)}"
        feat_lens = feat_lens.to(feats.device)
        mask = padding_mask(feat_lens, feats.shape[1])[..., None]  # (B, T, 1)
        if c.input_norm == "utterance":
            n = feat_lens[:, None, None].clamp(min=1)
            mean = (feats * mask).sum(1, keepdim=True) / n  # (B, 1, F)
            std = (((feats - mean) * mask).pow(2).sum(1, keepdim=True) / n).sqrt()
            feats = ((feats - mean) / (std + 1e-5)).masked_fill(~mask, 0.0)
        elif c.input_norm == "global":
            feats = ((feats - self.cmvn_mean) / self.cmvn_std).masked_fill(~mask, 0.0)
        if self.training and c.specaug:
            feats = spec_augment(feats, feat_lens, c)
        x, lens = self.subsample(feats, feat_lens)  # (B, T', D)
        assert x.shape[1] >= 1, f"input of {feats.shape[1]} frames is too short: need >= 7 frames for 4x subsampling"
        lens = lens.clamp(min=1)
        key_mask = padding_mask(lens, x.shape[1])  # (B, T')
        # x * sqrt(dim) + PE (ESPnet's xscale): the projection's output has std ~0.1 at init, so unscaled
        # sinusoids (std ~0.7) would drown the content and the encoder (and its CTC loss) would learn slowly.
        x = self.drop(x * math.sqrt(c.dim) + sinusoids(x.shape[1], c.dim, x.device).to(x.dtype))  # absolute positions
        for block in self.blocks:
            x = block(x, key_mask)
        return self.norm(x), lens  # (B, T', D)

    # ---- CTC ------------------------------------------------------------------------------------------------------
    def ctc_logits(self, enc: torch.Tensor) -> torch.Tensor:
        assert self.ctc_head is not None, "encoder has no CTC head: set EncoderConfig.ctc_vocab_size"
        return self.ctc_head(enc)  # (B, T', C)

    def ctc_loss(self, enc, enc_lens, targets, target_lens) -> torch.Tensor:
        """Mean over utterances of the CTC loss per target token (same scale as a token cross entropy).
        targets (B, L) text ids < blank, right-padded; utterances whose audio is too short give 0 (zero_infinity)."""
        real = targets[padding_mask(target_lens, targets.shape[1])]
        assert real.numel() == 0 or int(real.max()) < self.blank_id, \
            f"CTC target id {int(real.max())} >= blank {self.blank_id}: targets must be text ids < ctc_vocab_size - 1"
        logp = self.ctc_logits(enc).float().log_softmax(-1)  # (B, T', C)
        return F.ctc_loss(logp.transpose(0, 1), targets, enc_lens, target_lens, blank=self.blank_id,
                          reduction="mean", zero_infinity=True)

    @torch.no_grad()
    def ctc_greedy(self, enc, enc_lens) -> list[list[int]]:
        """Best-path decoding: argmax per frame, merge repeats, drop blanks."""
        best = self.ctc_logits(enc).argmax(-1)  # (B, T')
        keep = torch.ones_like(best, dtype=torch.bool)
        keep[:, 1:] = best[:, 1:] != best[:, :-1]
        keep &= (best != self.blank_id) & padding_mask(enc_lens, best.shape[1])
        return [row[k].tolist() for row, k in zip(best.cpu(), keep.cpu())]
