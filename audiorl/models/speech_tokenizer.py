"""Supervised semantic speech tokens (the CosyVoice S3 tokenizer idea, small): an ASR encoder with a quantiser inside.

    fbank (B, T, n_mels) 100 Hz -> [CMVN, SpecAugment, conv 4x, first k blocks] = AudioEncoder(n_layers=k)
        -> quantiser (FSQ/VQ) -> ids (B, T') 25 Hz                                   <- the speech tokens
        -> sinusoidal positions -> remaining n_layers - k blocks -> LayerNorm -> CTC head (text ids + blank)
Trained with the CTC loss of the transcript (+ the quantiser's aux loss for VQ), so the tokens must keep what the
words are; speaker and prosody are kept only as far as they help CTC (that is the point: the token-to-mel model
gets the voice from the speaker embedding). T' = ((T - 1) // 2 - 1) // 2 (encoder.subsampled_lengths), i.e. about
T / 4: 25 tokens per second at 10 ms frames.

Storage: one int32 vector per utterance in a kaldiio ark + scp (``dump_tokens``); ``read_tokens`` reads it back and
also checks a user-given scp of precomputed tokens from another tokenizer (ids must lie in [0, codebook_size)).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from audiorl.config import option
from audiorl.data.kaldi import write_table
from audiorl.log import get_logger
from audiorl.models.encoder import AudioEncoder, EncoderBlock, EncoderConfig, padding_mask, sinusoids
from audiorl.models.quantizer import QuantizerConfig, build_quantizer
from audiorl.models.transfer import copy_layers, shape_mismatch

logger = get_logger(__name__)


@dataclass
class SpeechTokenizerConfig:
    text_vocab_size: int = option(0, "CTC targets are text ids < this; the head has text_vocab_size + 1 classes "
                                     "(blank last). 0 = filled by the training stage from the text tokenizer.")
    encoder: EncoderConfig = option(default_factory=EncoderConfig, help="The whole ASR encoder (n_layers counts "
                                    "the blocks before and after the quantiser); its ctc_vocab_size is ignored.")
    quantize_after: int = option(2, "k: blocks before the quantiser (1 <= k < encoder.n_layers). CosyVoice puts it "
                                    "after 6 of 12; lower k = more acoustic tokens, higher = more linguistic.")
    quantizer: QuantizerConfig = option(default_factory=QuantizerConfig, help="FSQ levels or VQ codebook.")

    def __post_init__(self):
        if not 1 <= self.quantize_after < self.encoder.n_layers:
            raise ValueError(f"tokenizer.quantize_after={self.quantize_after} must be in [1, encoder.n_layers="
                             f"{self.encoder.n_layers}): at least one block on each side of the quantiser")
        if self.text_vocab_size < 0:
            raise ValueError("tokenizer.text_vocab_size must be >= 0")

    @property
    def codebook_size(self) -> int:
        return self.quantizer.size


class SpeechTokenizer(nn.Module):
    def __init__(self, config: SpeechTokenizerConfig):
        super().__init__()
        assert config.text_vocab_size > 0, "SpeechTokenizerConfig.text_vocab_size is unset: fill it from the tokenizer"
        self.config = c = config
        e = c.encoder
        self.encoder = AudioEncoder(replace(e, n_layers=c.quantize_after, ctc_vocab_size=0))  # conv 4x + k blocks
        self.quantizer = build_quantizer(c.quantizer, e.dim)
        self.post = nn.ModuleList(EncoderBlock(e) for _ in range(e.n_layers - c.quantize_after))
        self.norm = nn.LayerNorm(e.dim)
        self.ctc_head = nn.Linear(e.dim, c.text_vocab_size + 1)
        self.blank_id = c.text_vocab_size

    @property
    def codebook_size(self) -> int:
        return self.config.codebook_size

    def quantized(self, feats: torch.Tensor, feat_lens: torch.Tensor):
        """feats (B, T, n_mels) -> (x_q (B, T', D), ids (B, T'), lens (B,), aux_loss)."""
        h, lens = self.encoder(feats, feat_lens)  # (B, T', D)
        x_q, ids, aux = self.quantizer(h)  # (B, T', D), (B, T')
        return x_q, ids.masked_fill(~padding_mask(lens, ids.shape[1]), 0), lens, aux

    def forward(self, feats, feat_lens, targets, target_lens) -> dict:
        """CTC training. targets (B, L) text ids right-padded, target_lens (B,). Returns loss, ctc_loss, aux_loss,
        used (distinct ids in the batch) and perplexity (exp entropy of the batch's id histogram)."""
        x, ids, lens, aux = self.quantized(feats, feat_lens)
        mask = padding_mask(lens, x.shape[1])  # (B, T')
        x = x + sinusoids(x.shape[1], x.shape[-1], x.device).to(x.dtype)
        for block in self.post:
            x = block(x, mask)
        logp = self.ctc_head(self.norm(x)).float().log_softmax(-1)  # (B, T', C)
        ctc = F.ctc_loss(logp.transpose(0, 1), targets, lens, target_lens.to(lens.device), blank=self.blank_id,
                         reduction="mean", zero_infinity=True)
        hist = torch.bincount(ids[mask], minlength=self.codebook_size).float()
        p = hist / hist.sum().clamp(min=1)
        ppl = torch.exp(-(p * p.clamp(min=1e-12).log()).sum())
        return dict(loss=ctc + aux, ctc_loss=ctc.detach(), aux_loss=aux.detach(), used=(hist > 0).sum(), perplexity=ppl,
                    logp=logp.detach(), lens=lens)

    @torch.no_grad()
    def ctc_greedy(self, logp: torch.Tensor, lens: torch.Tensor) -> list[list[int]]:
        """Best path of forward()'s logp (B, T', C): merge repeats, drop blanks (a check that tokens keep content)."""
        best = logp.argmax(-1)  # (B, T')
        keep = torch.ones_like(best, dtype=torch.bool)
        keep[:, 1:] = best[:, 1:] != best[:, :-1]
        keep &= (best != self.blank_id) & padding_mask(lens, best.shape[1])
        return [row[k].tolist() for row, k in zip(best.cpu(), keep.cpu())]

    @torch.no_grad()
    def init_from_encoder(self, enc: AudioEncoder, copy_ctc_head: bool) -> list[str]:
        """Start from a trained ASR encoder of the same shape (CosyVoice's S3 tokenizer is an ASR encoder with a
        quantiser inserted, then fine-tuned): its subsampling and first k blocks go below the quantiser, its other
        blocks and final LayerNorm above it, and its CTC head (when the text units are the same) on top. The
        quantiser and the LayerNorm in front of it start fresh. Returns the copied parameter names."""
        c, e = self.config.encoder, enc.config
        arch = ("n_mels", "dim", "n_layers", "n_heads", "ffn_dim", "subsample_channels", "block", "conv_kernel")
        diff = shape_mismatch(c, {k: getattr(e, k) for k in arch})
        if diff:
            raise ValueError(f"speech tokenizer encoder differs from the ASR encoder it starts from ({'; '.join(diff)})")
        k = self.config.quantize_after
        pairs = [("encoder.subsample", self.encoder.subsample, enc.subsample)]
        pairs += [(f"encoder.blocks.{i}", self.encoder.blocks[i], enc.blocks[i]) for i in range(k)]
        pairs += [(f"post.{i}", block, enc.blocks[k + i]) for i, block in enumerate(self.post)]
        pairs.append(("norm", self.norm, enc.norm))
        if copy_ctc_head:
            assert enc.ctc_head is not None and enc.ctc_head.out_features == self.ctc_head.out_features, \
                "copy_ctc_head needs an ASR CTC head over the same text units (text vocab + blank)"
            pairs.append(("ctc_head", self.ctc_head, enc.ctc_head))
        return copy_layers(pairs)

    def pre_quantizer_parameters(self):
        """What init_from_encoder copies below the quantiser (subsampling + first k blocks): what freeze_pre fixes."""
        yield from self.encoder.subsample.parameters()
        for block in self.encoder.blocks:
            yield from block.parameters()

    @torch.no_grad()
    def tokenize(self, feats: torch.Tensor, feat_lens: torch.Tensor):
        """feats (B, T, n_mels) 100 Hz -> (ids (B, T') long in [0, codebook_size), 0 past lens; lens (B,)).
        Call in eval mode (SpecAugment and dropout off); a row tokenizes the same alone or in a padded batch."""
        h, lens = self.encoder(feats, feat_lens)  # (B, T', D)
        ids = self.quantizer.encode(h)  # (B, T')
        return ids.masked_fill(~padding_mask(lens, ids.shape[1]), 0), lens


# ---- storage -----------------------------------------------------------------------------------------------------
def dump_tokens(tokenizer: SpeechTokenizer, feats_scp: str, out_prefix: str, batch_frames: int = 20000,
                device: str = "cpu", utts: list[str] | None = None) -> int:
    """Tokenize every utterance of a feats.scp into ``<out_prefix>.ark/.scp`` (int32 vectors) and
    ``<out_prefix>.utt2num_tokens``; batches of similar length up to ``batch_frames`` padded frames. The scp is
    renamed into place last (its presence = the job finished). Returns the number of utterances."""
    import kaldiio

    feats = kaldiio.load_scp(feats_scp)
    keys = list(utts) if utts is not None else list(feats.keys())
    lens = {u: int(feats[u].shape[0]) for u in keys}  # reads each matrix once; feats.scp has no lengths
    order = sorted(keys, key=lambda u: lens[u])
    tokenizer = tokenizer.eval().to(device)
    os.makedirs(os.path.dirname(os.path.abspath(out_prefix)) or ".", exist_ok=True)
    ark, scp = out_prefix + ".ark", out_prefix + ".scp"
    if os.path.exists(scp):
        os.unlink(scp)
    out: dict[str, np.ndarray] = {}
    i = 0
    while i < len(order):
        j = i + 1
        while j < len(order) and lens[order[j]] * (j + 1 - i) <= batch_frames:
            j += 1
        batch = order[i:j]
        x = torch.zeros(len(batch), lens[batch[-1]], tokenizer.config.encoder.n_mels)
        for b, u in enumerate(batch):
            x[b, : lens[u]] = torch.from_numpy(np.array(feats[u], dtype=np.float32))  # copy: kaldiio's is read-only
        ids, n = tokenizer.tokenize(x.to(device), torch.tensor([lens[u] for u in batch], device=device))
        for b, u in enumerate(batch):
            out[u] = ids[b, : int(n[b])].cpu().numpy().astype(np.int32)
        i = j
    with kaldiio.WriteHelper(f"ark,scp:{ark},{scp}.tmp") as writer:
        for u in keys:  # input order (sorted scp in, sorted scp out)
            writer(u, out[u])
    write_table(out_prefix + ".utt2num_tokens", {u: len(out[u]) for u in keys})
    os.replace(scp + ".tmp", scp)
    logger.info("%s: %d utterances, %d tokens -> %s", feats_scp, len(keys), sum(len(v) for v in out.values()), scp)
    return len(keys)


def read_tokens(scp: str, codebook_size: int | None = None) -> dict[str, np.ndarray]:
    """utt -> int64 ids (T',) from a token scp (ours or a user-given one of precomputed tokens). Checks that every
    entry is a 1-D integer vector (or an (T', 1) matrix) with ids in [0, codebook_size) when that is given."""
    import kaldiio

    out: dict[str, np.ndarray] = {}
    for utt, v in kaldiio.load_scp_sequential(scp):
        a = np.asarray(v)
        if a.ndim == 2 and a.shape[1] == 1:
            a = a[:, 0]
        if a.ndim != 1:
            raise ValueError(f"{scp}: '{utt}' holds shape {a.shape}; expected one id sequence per utterance")
        if a.dtype.kind == "f":
            if not np.all(a == np.round(a)):
                raise ValueError(f"{scp}: '{utt}' holds non-integer values; expected token ids")
        elif a.dtype.kind not in "iu":
            raise ValueError(f"{scp}: '{utt}' has dtype {a.dtype}; expected integer token ids")
        a = a.astype(np.int64)
        if a.size and (a.min() < 0 or (codebook_size is not None and a.max() >= codebook_size)):
            raise ValueError(f"{scp}: '{utt}' has ids in [{a.min()}, {a.max()}], outside [0, {codebook_size}): "
                             f"set the codebook size of the tokenizer that made this scp")
        out[utt] = a
    return out
