"""Token-to-text reward model for DiffRO (PAPER.md s5): an ASR model whose input is speech tokens.

    speech ids (B, T)  or  token probabilities (B, T, Vs)
      -> embedding E[ids]  or  probs @ E                                      (B, T, D)
      -> x sqrt(D) + sinusoidal positions -> Conformer/Transformer blocks (encoder.py's EncoderBlock) -> LayerNorm
      -> CTC head (B, T, Vt + 1), blank = last index      log P(text | tokens) = -CTC(text | tokens)
      -> masked mean pool (B, D) -> attribute heads       log P(attribute | tokens)  (multi-task reward, MTR)

The soft path (probs @ E) equals the hard path on one-hot inputs, so DiffRO can feed Gumbel-Softmax samples of the
TTS LM and differentiate log P(text | tokens) with respect to the LM's logits. There is no subsampling: 25 Hz
tokens against ~3-4 BPE tokens/s leave CTC ample frames (it needs T >= target length + adjacent repeats).

Attribute heads (``attribute_classes``, e.g. {"speaker": 21, "rate": 3}) are small linear classifiers on the pooled
encoder output; the training task decides what the classes mean (audiorl/tasks/token2text.py: speaker id,
speaking-rate class from speech tokens per text token).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from audiorl.config import option
from audiorl.models.encoder import EncoderBlock, EncoderConfig, padding_mask, sinusoids
from audiorl.models.transfer import copy_layers, shape_mismatch


@dataclass
class Token2TextConfig:
    """Token-to-text reward model; defaults are the CPU recipe size. Named sizes: ``Token2TextConfig.from_preset``."""

    speech_vocab_size: int = option(0, "Vs: speech tokenizer codebook size; must equal the TTS LM's "
                                       "speech_vocab_size (DiffRO feeds its (.., Vs) distributions). 0 = filled by "
                                       "the training stage (data.codebook_size or data.tokenizer_exp).")
    text_vocab_size: int = option(0, "Vt: text tokenizer ids; the CTC head has Vt + 1 outputs (blank last). "
                                     "0 = filled by the training stage from the tokenizer.")
    dim: int = option(192, "Model width (embedding and blocks).")
    n_layers: int = option(4, "Encoder blocks.")
    n_heads: int = option(4, "Attention heads.")
    ffn_dim: int = option(768, "Feed-forward hidden width.")
    block: Literal["conformer", "transformer"] = option("conformer", "Block type (see audiorl/models/encoder.py).")
    conv_kernel: int = option(15, "Conformer depthwise convolution width in tokens (odd; 15 = 0.6 s at 25 Hz).")
    dropout: float = option(0.1, "Dropout in the blocks and after the positions.")
    token_replace_prob: float = option(0.0, "Training only: replace each input token by a uniformly random id with "
                                            "this probability, so the reward model also sees imperfect token "
                                            "sequences like a policy's samples. 0 = off.")
    attribute_classes: dict[str, int] = option(default_factory=dict, help="Attribute heads: name -> number of "
                                               "classes (>= 2). Filled by the training stage from its "
                                               "data.attributes; {} = CTC only.")
    attribute_weight: float = option(0.1, "Training loss = CTC + attribute_weight x sum of the heads' cross "
                                          "entropies. The heads share the encoder, so a large weight trades "
                                          "text accuracy for attributes.")

    def __post_init__(self):
        if self.speech_vocab_size < 0 or self.text_vocab_size < 0:
            raise ValueError("token2text: speech_vocab_size and text_vocab_size must be >= 0 (0 = unset)")
        if self.dim % self.n_heads:
            raise ValueError(f"token2text.dim={self.dim} must be divisible by n_heads={self.n_heads}")
        if self.conv_kernel % 2 == 0:
            raise ValueError(f"token2text.conv_kernel={self.conv_kernel} must be odd (same padding)")
        if not 0.0 <= self.token_replace_prob < 1.0:
            raise ValueError(f"token2text.token_replace_prob={self.token_replace_prob} must be in [0, 1)")
        bad = {k: v for k, v in self.attribute_classes.items() if v < 2 or k == "text"}
        if bad:
            raise ValueError(f"token2text.attribute_classes {bad}: each head needs >= 2 classes and may not be "
                             "called 'text' (the CTC term's key)")
        if self.attribute_weight < 0:
            raise ValueError(f"token2text.attribute_weight={self.attribute_weight} must be >= 0")

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "Token2TextConfig":
        if name not in PRESETS:
            raise ValueError(f"unknown token2text preset {name!r}; choose one of {sorted(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})

    def block_config(self) -> EncoderConfig:
        """The EncoderConfig that EncoderBlock reads (only its block fields matter)."""
        return EncoderConfig(dim=self.dim, n_layers=self.n_layers, n_heads=self.n_heads, ffn_dim=self.ffn_dim,
                             block=self.block, conv_kernel=self.conv_kernel, dropout=self.dropout)


PRESETS: dict[str, dict] = {
    "tiny": dict(dim=32, n_layers=2, n_heads=4, ffn_dim=64, conv_kernel=5, dropout=0.0),  # unit tests
    "small": dict(dim=192, n_layers=4, n_heads=4, ffn_dim=768, conv_kernel=15, dropout=0.1),  # = the defaults
}


def ctc_feasible(text_ids: torch.Tensor, text_lens: torch.Tensor, in_lens: torch.Tensor) -> torch.Tensor:
    """(B,) bool: CTC can align the text to in_lens frames, i.e. T >= L + (adjacent repeats, which need a blank)."""
    real = padding_mask(text_lens, text_ids.shape[1])  # (B, L)
    rep = (text_ids[:, 1:] == text_ids[:, :-1]) & real[:, 1:]  # (B, L-1)
    return in_lens >= text_lens + rep.sum(1)


class Token2Text(nn.Module):
    def __init__(self, config: Token2TextConfig):
        super().__init__()
        c = self.config = config
        if c.speech_vocab_size <= 0 or c.text_vocab_size <= 0:
            raise ValueError("Token2TextConfig.speech_vocab_size / text_vocab_size unset: fill them from the speech "
                             "tokenizer's codebook size and the text tokenizer")
        self.embed = nn.Embedding(c.speech_vocab_size, c.dim)
        nn.init.normal_(self.embed.weight, std=c.dim ** -0.5)  # x sqrt(dim) below brings it to ~unit scale
        self.drop = nn.Dropout(c.dropout)
        bc = c.block_config()
        self.blocks = nn.ModuleList(EncoderBlock(bc) for _ in range(c.n_layers))
        self.norm = nn.LayerNorm(c.dim)
        self.ctc_head = nn.Linear(c.dim, c.text_vocab_size + 1)
        self.heads = nn.ModuleDict({k: nn.Linear(c.dim, n) for k, n in sorted(c.attribute_classes.items())})

    @property
    def blank_id(self) -> int:
        return self.config.text_vocab_size

    @torch.no_grad()
    def init_from_tokenizer(self, tok: nn.Module, copy_ctc_head: bool) -> list[str]:
        """Start from the layers of a speech tokenizer (audiorl/models/speech_tokenizer.py) above its quantiser: they
        already read its tokens as text (that is how the tokenizer was trained), so the reward model starts where
        the tokenizer's CTC ends instead of from scratch. Copied: embedding row k = the quantiser's decoded code k
        (scaled by 1/sqrt(dim) to undo encode()'s x sqrt(dim)), the post-quantiser blocks, the final LayerNorm and,
        when the text units are the same, the CTC head. The soft path then feeds probs @ codes, the same
        interpolation in code space the tokenizer's blocks were trained on. Attribute heads start fresh.
        Returns the copied parameter names."""
        c, e = self.config, tok.config.encoder
        post = len(tok.post)
        want = dict(dim=e.dim, n_layers=post, n_heads=e.n_heads, ffn_dim=e.ffn_dim, block=e.block,
                    conv_kernel=e.conv_kernel, speech_vocab_size=tok.codebook_size)
        diff = shape_mismatch(c, want)
        if diff:
            raise ValueError(f"token2text differs from the speech tokenizer's post-quantiser layers it starts from "
                             f"({'; '.join(diff)})")
        codes = tok.quantizer.decode(torch.arange(tok.codebook_size, device=self.embed.weight.device))  # (Vs, D)
        self.embed.weight.copy_(codes.to(self.embed.weight.dtype) / math.sqrt(c.dim))
        pairs = [(f"blocks.{i}", self.blocks[i], block) for i, block in enumerate(tok.post)]
        pairs.append(("norm", self.norm, tok.norm))
        if copy_ctc_head:
            if tok.ctc_head.out_features != self.ctc_head.out_features:
                raise ValueError(f"copy_ctc_head: the tokenizer's CTC head has {tok.ctc_head.out_features} outputs, "
                                 f"this model {self.ctc_head.out_features} (other text units)")
            pairs.append(("ctc_head", self.ctc_head, tok.ctc_head))
        return ["embed.weight"] + copy_layers(pairs)

    # ---- encoder ------------------------------------------------------------------------------------------------
    def embed_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """Hard ids (B, T) long -> E[ids]; soft (B, T, Vs) float (probabilities, Gumbel samples) -> tokens @ E.
        Both (B, T, D); identical for one-hot inputs."""
        if tokens.is_floating_point():
            assert tokens.shape[-1] == self.config.speech_vocab_size, \
                f"soft tokens must be (B, T, {self.config.speech_vocab_size}), got {tuple(tokens.shape)}"
            return tokens.to(self.embed.weight.dtype) @ self.embed.weight  # (B, T, Vs) @ (Vs, D)
        return self.embed(tokens)

    def encode(self, tokens: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
        """tokens (B, T) ids or (B, T, Vs) soft, lens (B,) -> (B, T, D). Padded positions never reach real ones."""
        c = self.config
        lens = lens.to(tokens.device)
        if self.training and c.token_replace_prob > 0 and not tokens.is_floating_point():
            swap = torch.rand(tokens.shape, device=tokens.device) < c.token_replace_prob
            tokens = torch.where(swap, torch.randint_like(tokens, c.speech_vocab_size), tokens)
        key_mask = padding_mask(lens.clamp(min=1), tokens.shape[1])  # (B, T)
        x = self.embed_tokens(tokens) * math.sqrt(c.dim)
        x = self.drop(x + sinusoids(x.shape[1], c.dim, x.device).to(x.dtype))
        for block in self.blocks:
            x = block(x, key_mask)
        return self.norm(x)  # (B, T, D)

    # ---- heads --------------------------------------------------------------------------------------------------
    def ctc_logprobs(self, enc: torch.Tensor) -> torch.Tensor:
        return self.ctc_head(enc).float().log_softmax(-1)  # (B, T, Vt + 1)

    def text_logprob(self, enc: torch.Tensor, lens: torch.Tensor, text_ids: torch.Tensor,
                     text_lens: torch.Tensor) -> torch.Tensor:
        """(B,) log P(text | tokens) = -CTC per utterance (a sum over the text, not normalised). Rows CTC cannot
        align (``ctc_feasible``) are -inf with zero gradient; callers decide what that means."""
        lp = self.ctc_logprobs(enc)  # (B, T, C)
        text_ids, text_lens, lens = text_ids.to(lp.device), text_lens.to(lp.device), lens.to(lp.device)
        nll = F.ctc_loss(lp.transpose(0, 1), text_ids, lens, text_lens, blank=self.blank_id, reduction="none",
                         zero_infinity=True)  # (B,); infeasible rows: 0 with zero gradient
        ok = ctc_feasible(text_ids, text_lens, lens)
        return torch.where(ok, -nll, torch.full_like(nll, float("-inf")))

    def pooled(self, enc: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
        m = padding_mask(lens.to(enc.device), enc.shape[1])[..., None].to(enc.dtype)  # (B, T, 1)
        return (enc * m).sum(1) / m.sum(1).clamp(min=1)  # (B, D)

    def attribute_logprobs(self, enc: torch.Tensor, lens: torch.Tensor) -> dict[str, torch.Tensor]:
        """name -> (B, C_name) log-probabilities of each head's classes."""
        if not self.heads:
            return {}
        p = self.pooled(enc, lens)
        return {k: h(p).float().log_softmax(-1) for k, h in self.heads.items()}

    # ---- what DiffRO and the rewards call -----------------------------------------------------------------------
    def log_likelihoods(self, tokens: torch.Tensor, lens: torch.Tensor, text_ids: torch.Tensor,
                        text_lens: torch.Tensor, attributes: dict[str, torch.Tensor] | None = None
                        ) -> dict[str, torch.Tensor]:
        """{'text': (B,) log P(text | tokens), name: (B,) log P(attributes[name] | tokens) for each given target}.

        tokens: ids (B, T) or soft (B, T, Vs) (differentiable); text_ids (B, L) ids < Vt right-padded; attributes:
        name -> (B,) long class ids (a name without a head is an error). Call in eval mode for rewards."""
        enc = self.encode(tokens, lens)
        out = {"text": self.text_logprob(enc, lens, text_ids, text_lens)}
        if attributes:
            unknown = sorted(set(attributes) - set(self.heads))
            if unknown:
                raise KeyError(f"no attribute head(s) {unknown}; this model has {sorted(self.heads)}")
            logps = self.attribute_logprobs(enc, lens)
            for k, target in attributes.items():
                out[k] = logps[k].gather(1, target.to(enc.device).long()[:, None])[:, 0]
        return out

    def forward(self, tokens: torch.Tensor, lens: torch.Tensor, text_ids: torch.Tensor, text_lens: torch.Tensor,
                attributes: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """Training loss: CTC per text token (mean over feasible utterances) + attribute_weight x mean head CE.
        Returns loss, ctc (same scale as a token cross entropy), n_utts, and <name>_ce / <name>_acc per head."""
        enc = self.encode(tokens, lens)
        ll = self.text_logprob(enc, lens, text_ids, text_lens)  # (B,)
        ok = torch.isfinite(ll)
        per_tok = -torch.where(ok, ll, torch.zeros_like(ll)) / text_lens.to(ll.device).clamp(min=1)
        ctc = per_tok.sum() / ok.sum().clamp(min=1)
        out = {"ctc": ctc, "n_utts": ok.sum(), "loss": ctc}
        if attributes:
            logps = self.attribute_logprobs(enc, lens)
            for k, target in attributes.items():
                y = target.to(enc.device).long()  # -100 = no target for this row (e.g. an unseen speaker)
                has = (y >= 0).float()
                ce = -logps[k].gather(1, y.clamp(min=0)[:, None])[:, 0]  # (B,)
                out[f"{k}_ce"] = (ce * has).sum() / has.sum().clamp(min=1)
                out[f"{k}_acc"] = ((logps[k].argmax(-1) == y).float() * has).sum() / has.sum().clamp(min=1)
                out["loss"] = out["loss"] + self.config.attribute_weight * out[f"{k}_ce"]
        return out

    @torch.no_grad()
    def ctc_greedy(self, tokens: torch.Tensor, lens: torch.Tensor) -> list[list[int]]:
        """Best-path decoding: argmax per position, merge repeats, drop blanks -> text ids per utterance."""
        best = self.ctc_head(self.encode(tokens, lens)).argmax(-1)  # (B, T)
        keep = torch.ones_like(best, dtype=torch.bool)
        keep[:, 1:] = best[:, 1:] != best[:, :-1]
        keep &= (best != self.blank_id) & padding_mask(lens.to(best.device), best.shape[1])
        return [row[k].tolist() for row, k in zip(best.cpu(), keep.cpu())]
