"""LLM-based ASR: fbank -> AudioEncoder -> Adaptor -> [audio embeddings][task prompt] -> LLM -> transcript, eos.

Token ids: the LLM vocabulary is the text tokenizer's ids [0, text_vocab_size) followed by special ids (eos, pad,
task tokens) up to vocab_size; all of them come from ASRModelConfig (the tokenizer is not this file's business).
Transcripts (``target_ids``) are text ids only; eos is appended here. The CTC head on the encoder predicts text ids.

Layout. Every row is packed contiguously and right-padded:
    training:  [audio_b (A_b)][prompt_b (P_b)][target_b (L_b)][eos][pad ...]   CE on target + eos only
    encode():  [audio_b][prompt_b][pad ...]  + lengths                          -> sampling.generate / beam_search
Right padding needs no attention mask in training (causal attention never looks forward to the pads). Decoding
left-aligns the prompts internally (see audiorl/models/sampling.py) so all rows write the same cache slot per step.
RL encodes once (``encode`` under no_grad) and samples G hypotheses per utterance from the returned embeddings.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from audiorl.config import option
from audiorl.log import get_logger
from audiorl.models.adaptor import Adaptor, AdaptorConfig
from audiorl.models.beam import beam_search
from audiorl.models.encoder import AudioEncoder, EncoderConfig
from audiorl.models.llm import LLM, LLMConfig
from audiorl.models.lora import LoRAConfig, apply_lora
from audiorl.models.sampling import generate, pack_right

logger = get_logger(__name__)
IGNORE = -100  # label of positions without a cross-entropy term


@dataclass
class ASRModelConfig:
    """Encoder + adaptor + LLM. The token-id fields come from the tokenizer; unset values (0 / -1) are filled by the
    training stage (``dataclasses.replace(cfg, vocab_size=..., ...)``) before the model is built."""

    vocab_size: int = option(0, "LLM vocabulary = text tokenizer ids + special ids (eos, pad, task tokens).")
    text_vocab_size: int = option(0, "Ids below this are text (transcripts, CTC targets); the CTC head has "
                                     "text_vocab_size + 1 classes, blank last.")
    eos_id: int = option(-1, "End-of-transcript id, appended to every target and the decoding stop token.")
    pad_id: int = option(-1, "Padding id in generated token tensors (may equal eos_id).")
    prompt_ids: tuple[int, ...] = option((), "Default task prompt placed after the audio embeddings, e.g. the id "
                                             "of a <|transcribe|> token; empty = audio only.")
    ctc_weight: float = option(0.3, "loss = (1 - w) CE + w CTC (the CTC term trains the encoder early, before the "
                                    "decoder aligns); 0 = no CTC loss.")
    encoder: EncoderConfig = option(default_factory=EncoderConfig, help="Audio encoder.")
    adaptor: AdaptorConfig = option(default_factory=AdaptorConfig, help="Frame stacking + projection into the LLM.")
    llm: LLMConfig = option(default_factory=LLMConfig, help="Decoder; llm.vocab_size 0 = take vocab_size.")
    init_llm: str = option("", "Hugging Face Qwen2 directory (config.json, model.safetensors, tokenizer.json) the SFT "
                               "stage starts the LLM from: its config.json replaces llm (max_seq_len excepted), its "
                               "tokenizer.json replaces data.token_model, eos/<|transcribe|> get new mean-initialised "
                               "rows (audiorl/models/hf_init.py). '' = a random LLM of llm.")
    freeze_encoder: bool = option(False, "Keep the encoder fixed (requires_grad False).")
    freeze_adaptor: bool = option(False, "Keep the adaptor fixed.")
    freeze_llm: bool = option(False, "Keep the whole LLM fixed (use lora instead to adapt it cheaply).")
    lora: LoRAConfig | None = option(None, "LoRA on the LLM: its base weights freeze and only the adapters train.")

    def __post_init__(self):
        self.prompt_ids = tuple(self.prompt_ids)
        V, Vt = self.vocab_size, self.text_vocab_size
        if not 0.0 <= self.ctc_weight <= 1.0:
            raise ValueError(f"asr.ctc_weight={self.ctc_weight} must be in [0, 1]")
        if self.lora is not None and self.freeze_llm:
            raise ValueError("asr.freeze_llm=true with asr.lora set would freeze the adapters too: unset one")
        if V <= 0:
            return  # ids not known yet (filled from the tokenizer); ASRModel checks again
        if not 0 < Vt <= V:
            raise ValueError(f"asr.text_vocab_size={Vt} must be in (0, vocab_size={V}]")
        bad = {k: getattr(self, k) for k in ("eos_id", "pad_id") if not 0 <= getattr(self, k) < V}
        if bad or not all(0 <= i < V for i in self.prompt_ids):
            raise ValueError(f"asr: ids {bad or self.prompt_ids} outside the vocabulary [0, {V})")
        if self.llm.vocab_size == 0:
            self.llm = replace(self.llm, vocab_size=V)
        if self.llm.vocab_size != V:
            raise ValueError(f"asr.llm.vocab_size={self.llm.vocab_size} != asr.vocab_size={V}: set it to 0 or {V}")
        if self.encoder.ctc_vocab_size == 0 and self.ctc_weight > 0:
            self.encoder = replace(self.encoder, ctc_vocab_size=Vt + 1)
        if self.encoder.ctc_vocab_size not in (0, Vt + 1):
            raise ValueError(f"asr.encoder.ctc_vocab_size={self.encoder.ctc_vocab_size} must be 0 or "
                             f"text_vocab_size + 1 = {Vt + 1}")


class ASRModel(nn.Module):
    def __init__(self, config: ASRModelConfig, encoder: AudioEncoder | None = None, adaptor: Adaptor | None = None,
                 llm: LLM | None = None):
        """Builds the parts the caller did not pass (e.g. pass ``LLM.from_pretrained(dir)``); config records them."""
        super().__init__()
        if config.vocab_size <= 0:
            raise ValueError("ASRModelConfig.vocab_size/text_vocab_size/eos_id/pad_id are unset: fill them from the "
                             "tokenizer before building the model")
        self.encoder = encoder if encoder is not None else AudioEncoder(config.encoder)
        self.llm = llm if llm is not None else LLM(config.llm)
        self.config = config = replace(config, encoder=self.encoder.config, llm=self.llm.config)
        self.adaptor = adaptor if adaptor is not None else Adaptor(config.adaptor, config.encoder.dim, config.llm.dim)
        assert (self.adaptor.in_dim, self.adaptor.out_dim) == (config.encoder.dim, config.llm.dim), \
            f"adaptor maps {self.adaptor.in_dim}->{self.adaptor.out_dim}, need {config.encoder.dim}->{config.llm.dim}"
        assert config.ctc_weight == 0 or self.encoder.ctc_head is not None, "ctc_weight > 0 needs an encoder CTC head"
        if config.lora is not None:
            apply_lora(self.llm, config.lora)
            for name, p in self.llm.named_parameters():
                p.requires_grad_("lora_" in name)
        for part, frozen in (("encoder", config.freeze_encoder), ("adaptor", config.freeze_adaptor),
                             ("llm", config.freeze_llm)):
            if frozen:
                getattr(self, part).requires_grad_(False)
        count = lambda m, t=False: sum(p.numel() for p in m.parameters() if p.requires_grad or not t)  # noqa: E731
        logger.info("ASRModel: encoder %.2fM, adaptor %.2fM, llm %.2fM parameters; %.2fM trainable",
                    count(self.encoder) / 1e6, count(self.adaptor) / 1e6, count(self.llm) / 1e6, count(self, True) / 1e6)

    def _prompt(self, prompt_ids, prompt_lens, B: int, device):
        """Prompt ids (B, P) and lengths (B,): None = config.prompt_ids; (P,) is shared by all rows."""
        if prompt_ids is None:
            prompt_ids = torch.tensor(self.config.prompt_ids, dtype=torch.long, device=device)
        prompt_ids = prompt_ids.to(device)
        if prompt_ids.dim() == 1:
            prompt_ids = prompt_ids[None].expand(B, -1)
        assert prompt_ids.shape[0] == B, f"prompt_ids has {prompt_ids.shape[0]} rows for a batch of {B}"
        if prompt_lens is None:
            prompt_lens = torch.full((B,), prompt_ids.shape[1], dtype=torch.long, device=device)
        return prompt_ids, prompt_lens.to(device)

    def _audio(self, feats, feat_lens):
        enc, enc_lens = self.encoder(feats, feat_lens)  # (B, T', De)
        audio, audio_lens = self.adaptor(enc, enc_lens)  # (B, A, D)
        return enc, enc_lens, audio.to(self.llm.output.weight.dtype), audio_lens

    def encode(self, feats: torch.Tensor, feat_lens: torch.Tensor, prompt_ids: torch.Tensor | None = None,
               prompt_lens: torch.Tensor | None = None):
        """feats (B, T, n_mels) -> right-padded prompt embeddings [audio][prompt] (B, T'', D) and lengths (B,)."""
        _, _, audio, audio_lens = self._audio(feats, feat_lens)
        prompt_ids, prompt_lens = self._prompt(prompt_ids, prompt_lens, feats.shape[0], feats.device)
        return pack_right([(audio, audio_lens), (self.llm.embed(prompt_ids), prompt_lens)])

    def forward(self, feats: torch.Tensor, feat_lens: torch.Tensor, prompt_ids: torch.Tensor | None,
                target_ids: torch.Tensor, target_lens: torch.Tensor, prompt_lens: torch.Tensor | None = None) -> dict:
        """feats (B, T, n_mels), feat_lens (B,), prompt_ids (P,) | (B, P) | None, target_ids (B, L) text ids
        right-padded (any pad value), target_lens (B,). Returns loss, ce_loss (mean per target token incl. eos),
        ctc_loss (0 if off), n_tokens, n_correct (argmax hits, for token accuracy)."""
        B, device = feats.shape[0], feats.device
        enc, enc_lens, audio, audio_lens = self._audio(feats, feat_lens)
        prompt_ids, prompt_lens = self._prompt(prompt_ids, prompt_lens, B, device)
        target_lens = target_lens.to(device)
        real = torch.arange(target_ids.shape[1], device=device)[None] < target_lens[:, None]  # (B, L)
        targets = target_ids.to(device).masked_fill(~real, self.config.pad_id)  # (B, L)
        tgt = torch.cat([targets, targets.new_full((B, 1), self.config.pad_id)], 1)  # (B, L+1)
        tgt = tgt.scatter(1, target_lens[:, None], self.config.eos_id)  # eos right after each transcript
        x, _ = pack_right([(audio, audio_lens), (self.llm.embed(prompt_ids), prompt_lens),
                           (self.llm.embed(tgt), target_lens + 1)])  # (B, T, D)
        no_label = lambda n: torch.full((B, n), IGNORE, dtype=torch.long, device=device)  # noqa: E731
        labels, _ = pack_right([(no_label(audio.shape[1]), audio_lens), (no_label(prompt_ids.shape[1]), prompt_lens),
                                (tgt, target_lens + 1)], pad_value=IGNORE)  # (B, T)
        h = self.llm.hidden_states(inputs_embeds=x)  # (B, T, D)
        labels = labels[:, 1:]  # position t predicts token t + 1
        sel = labels != IGNORE  # (B, T-1)
        logits = self.llm.output(h[:, :-1][sel]).float()  # (n_tokens, V): the head only where there is a label
        y = labels[sel]
        ce = F.cross_entropy(logits, y)
        w = self.config.ctc_weight
        ctc = self.encoder.ctc_loss(enc, enc_lens, targets, target_lens) if w > 0 else ce.new_zeros(())
        return dict(loss=(1 - w) * ce + w * ctc, ce_loss=ce.detach(), ctc_loss=ctc.detach(),
                    n_tokens=sel.sum(), n_correct=(logits.argmax(-1) == y).sum())

    @torch.no_grad()
    def transcribe(self, feats: torch.Tensor, feat_lens: torch.Tensor, prompt_ids: torch.Tensor | None = None,
                   beam_size: int = 1, max_new_tokens: int = 128, length_penalty: float = 1.0,
                   prompt_lens: torch.Tensor | None = None) -> list[list[int]]:
        """Greedy (beam_size 1) or beam-search token ids per utterance, eos removed. Call in eval mode.
        prompt_ids (P,) | (B, P) right-padded with prompt_lens (B,): per-utterance prompts (biasing lists)."""
        x, lens = self.encode(feats, feat_lens, prompt_ids, prompt_lens)
        c = self.config
        if beam_size == 1:
            out = generate(self.llm, x, lens, max_new_tokens, c.eos_id, temperature=0.0, pad_id=c.pad_id)
            toks, n, fin = out.tokens, out.lengths, out.finished
        else:
            out = beam_search(self.llm, x, lens, max_new_tokens, c.eos_id, beam_size, length_penalty, nbest=1,
                              pad_id=c.pad_id)
            toks, n, fin = out.tokens[:, 0], out.lengths[:, 0], out.finished[:, 0]
        n = n - fin.long()  # drop the eos
        return [row[:k].tolist() for row, k in zip(toks.cpu(), n.cpu())]
