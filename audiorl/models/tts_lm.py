"""Text -> speech-token LM (CosyVoice's LLM stage) on the Qwen2-style ``LLM``.

Vocabulary (LLM ids), derived from the two tokenizers' sizes Vt (text) and Vs (speech codebook):
    [0, Vt) text | [Vt, Vt + Vs) speech tokens | Vt+Vs <eos_speech> | Vt+Vs+1 <sos_speech> | Vt+Vs+2 <tts> task
Speech ids and eos are one contiguous slice, so "speech or eos only" is a slice of the output matrix: the model's
distribution over the next token is a softmax over those Vs + 1 rows only ("local" ids: speech id k, eos = Vs),
in training, sampling and ``sequence_logprobs`` alike. Text ids never come out.

Layout (right-padded rows; causal attention needs no mask for training):
    [spk (1)][<tts>][text_b (Lt_b)][<sos_speech>] [speech_b (Ls_b)] [pad ...]
     ^ L2-normalised speaker embedding, linearly projected; absent when spk_embed_dim = 0
The state at <sos_speech> predicts speech_0, ..., the state at speech_{L-1} predicts <eos_speech>: CE on
speech tokens + eos only.

Sampling (``generate``) is a local KV-cached loop built from audiorl/models/sampling.py's pieces (prefill,
decode_one_token, sample) so that it can (a) restrict the logits to speech + eos, (b) forbid eos before
min_tokens_per_text x text length and force it at max_tokens_per_text x text length, (c) guard against token loops:
when the last loop_window + n tokens are periodic with period n <= loop_max_period, either stop the row (force eos)
or ban the token that would continue the cycle for this step ("penalize").
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from audiorl.config import option
from audiorl.models.llm import LLM, LLMConfig
from audiorl.models.sampling import cache_length, decode_one_token, left_align, pack_right, prefill, sample


@dataclass
class TTSLMConfig:
    text_vocab_size: int = option(0, "Vt: text tokenizer ids (filled by the training stage).")
    speech_vocab_size: int = option(0, "Vs: speech tokenizer codebook size (filled by the training stage).")
    spk_embed_dim: int = option(256, "Speaker embedding width (resemblyzer: 256); 0 = no speaker position.")
    llm: LLMConfig = option(default_factory=LLMConfig, help="Decoder; llm.vocab_size 0 = take Vt + Vs + 3.")
    init_llm: str = option("", "Hugging Face Qwen2 directory (config.json, model.safetensors, tokenizer.json) the SFT "
                               "stage starts the LLM from: its config.json replaces llm (max_seq_len excepted), its "
                               "tokenizer.json replaces data.token_model (text ids [0, Vt)), the speech and special "
                               "ids get new mean-initialised rows (audiorl/models/hf_init.py). '' = a random LLM.")

    def __post_init__(self):
        if self.text_vocab_size < 0 or self.speech_vocab_size < 0 or self.spk_embed_dim < 0:
            raise ValueError("tts_lm: text_vocab_size, speech_vocab_size and spk_embed_dim must be >= 0")
        if self.text_vocab_size == 0 or self.speech_vocab_size == 0:
            return  # not known yet; TTSLM checks again
        if self.llm.vocab_size == 0:
            self.llm = replace(self.llm, vocab_size=self.vocab_size)
        if self.llm.vocab_size != self.vocab_size:
            raise ValueError(f"tts_lm.llm.vocab_size={self.llm.vocab_size} != text {self.text_vocab_size} + speech "
                             f"{self.speech_vocab_size} + 3 specials = {self.vocab_size}: set it to 0")

    # derived ids (properties, never stored)
    @property
    def vocab_size(self) -> int:
        return self.text_vocab_size + self.speech_vocab_size + 3

    @property
    def eos_id(self) -> int:
        return self.text_vocab_size + self.speech_vocab_size

    @property
    def sos_id(self) -> int:
        return self.eos_id + 1

    @property
    def task_id(self) -> int:
        return self.eos_id + 2


@dataclass
class SpeechSamplingConfig:
    max_new_tokens: int = option(500, "Hard cap on generated tokens (20 s at 25 Hz).")
    temperature: float = option(1.0, "0 = greedy.")
    top_k: int = option(25, "0 = off (CosyVoice samples with top-k 25, top-p 0.8).")
    top_p: float = option(0.8, "1.0 = off.")
    min_tokens_per_text: float = option(0.0, "eos is forbidden before this x the text length (CosyVoice: 2).")
    max_tokens_per_text: float = option(0.0, "eos is forced at this x the text length; 0 = only max_new_tokens "
                                             "(CosyVoice: 20).")
    loop_window: int = option(40, "Loop guard: a tail of loop_window + n tokens with period n is a loop "
                                  "(40 = 1.6 s; silences of the same token are normally shorter); 0 = off.")
    loop_max_period: int = option(8, "Longest cycle (n-gram length) the guard looks for.")
    loop_action: Literal["stop", "penalize"] = option("stop", "'stop': force eos when a loop is detected; "
                                                              "'penalize': ban the token that continues the cycle.")


@dataclass
class SpeechGenerationOutput:
    tokens: torch.Tensor  # (N, L) local ids: speech ids in [0, Vs), eos = Vs (kept, counted), eos-padded after
    lengths: torch.Tensor  # (N,) incl. the eos
    logprobs: torch.Tensor  # (N, L) under the sampling distribution (0 for greedy and forced tokens)
    raw_logprobs: torch.Tensor  # (N, L) under the speech+eos model at temperature 1 (= sequence_logprobs)
    finished: torch.Tensor  # (N,) True = the model chose eos (not forced, not truncated)
    looped: torch.Tensor  # (N,) True = the loop guard fired in this row
    eos_id: int = -1  # the local eos id (= Vs)

    def speech_ids(self) -> list[list[int]]:
        """Per row the speech token ids, eos removed."""
        return [[t for t in row[: int(k)].tolist() if t != self.eos_id]
                for row, k in zip(self.tokens.cpu(), self.lengths.cpu())]


def loop_continuation(hist: torch.Tensor, window: int, max_period: int) -> torch.Tensor:
    """hist (N, S) past tokens -> (N,) the token that would continue a loop, -1 where there is none. A loop of period
    n: hist[:, -k] == hist[:, -k-n] for k = 1..window (the last window + n tokens repeat an n-gram). The shortest
    period wins; its next token is hist[:, -n]."""
    N, S = hist.shape
    out = hist.new_full((N,), -1)
    if window <= 0:
        return out
    for n in range(max_period, 0, -1):  # descending: the smallest period overwrites
        if S < window + n:
            continue
        periodic = (hist[:, S - window:] == hist[:, S - window - n: S - n]).all(1)  # (N,)
        out = torch.where(periodic, hist[:, S - n], out)
    return out


class TTSLM(nn.Module):
    def __init__(self, config: TTSLMConfig, llm: LLM | None = None):
        super().__init__()
        if config.text_vocab_size <= 0 or config.speech_vocab_size <= 0:
            raise ValueError("TTSLMConfig.text_vocab_size / speech_vocab_size unset: fill them from the tokenizers")
        self.llm = llm if llm is not None else LLM(config.llm)
        self.config = config = replace(config, llm=self.llm.config)
        assert self.llm.config.vocab_size == config.vocab_size, \
            f"llm vocab {self.llm.config.vocab_size} != Vt + Vs + 3 = {config.vocab_size}"
        self.spk_proj = nn.Linear(config.spk_embed_dim, config.llm.dim) if config.spk_embed_dim else None
        if self.spk_proj is not None:
            nn.init.normal_(self.spk_proj.weight, std=config.llm.init_std)
            nn.init.zeros_(self.spk_proj.bias)

    # ---- layout ---------------------------------------------------------------------------------------------------
    def prompt(self, text_ids: torch.Tensor, text_lens: torch.Tensor, spk_embed: torch.Tensor | None = None):
        """text_ids (B, Lt) right-padded text ids, text_lens (B,), spk_embed (B, S) -> right-padded prompt embeddings
        [spk][<tts>][text][<sos_speech>] (B, P, D) and lengths (B,), ready for ``generate`` / ``sequence_logprobs``."""
        c, B, dev = self.config, text_ids.shape[0], text_ids.device
        text_lens = text_lens.to(dev)
        one = torch.ones(B, dtype=torch.long, device=dev)
        special = lambda i: self.llm.embed(torch.full((B, 1), i, dtype=torch.long, device=dev))  # noqa: E731
        real = torch.arange(text_ids.shape[1], device=dev)[None] < text_lens[:, None]
        segs = [(special(c.task_id), one), (self.llm.embed(text_ids.masked_fill(~real, 0)), text_lens),
                (special(c.sos_id), one)]
        if self.spk_proj is not None:
            s = spk_embed if spk_embed is not None else torch.zeros(B, c.spk_embed_dim, device=dev)
            s = self.spk_proj(F.normalize(s.to(self.spk_proj.weight.dtype), dim=-1))[:, None]  # (B, 1, D)
            segs.insert(0, (s, one))
        return pack_right(segs)

    def speech_logits(self, h: torch.Tensor) -> torch.Tensor:
        """Hidden states (..., D) -> fp32 logits over local ids (..., Vs + 1): speech tokens then eos."""
        Vt, Vs = self.config.text_vocab_size, self.config.speech_vocab_size
        return F.linear(h, self.llm.output.weight[Vt: Vt + Vs + 1]).float()

    def states(self, prompt_embeds, prompt_lens, speech, speech_lens):
        """Teacher-forced states that predict local tokens 0..L (B, L + 1, D); speech (B, L) local ids."""
        B, L = speech.shape
        real = torch.arange(L, device=speech.device)[None] < speech_lens[:, None]
        x, _ = pack_right([(prompt_embeds, prompt_lens),
                           (self.llm.embed(speech.masked_fill(~real, 0) + self.config.text_vocab_size), speech_lens)])
        h = self.llm.hidden_states(inputs_embeds=x)  # (B, T, D)
        at = (prompt_lens[:, None] - 1 + torch.arange(L + 1, device=x.device)).clamp(max=x.shape[1] - 1)  # (B, L+1)
        return h.gather(1, at[..., None].expand(B, L + 1, h.shape[-1]))  # (B, L+1, D)

    def forward(self, text_ids, text_lens, speech_ids, speech_lens, spk_embed=None) -> dict:
        """speech_ids (B, Ls) tokenizer ids right-padded, speech_lens (B,). Returns loss (mean CE per speech token +
        eos), n_tokens, n_correct (argmax hits)."""
        dev, Vs = text_ids.device, self.config.speech_vocab_size
        speech_lens = speech_lens.to(dev)
        p, plens = self.prompt(text_ids, text_lens, spk_embed)
        h = self.states(p, plens, speech_ids.to(dev), speech_lens)  # (B, L+1, D)
        B, L1 = h.shape[:2]
        j = torch.arange(L1, device=dev)[None]
        tgt = torch.cat([speech_ids.to(dev), speech_ids.new_zeros(B, 1).to(dev)], 1)  # (B, L+1)
        tgt = torch.where(j == speech_lens[:, None], Vs, tgt)  # eos right after each sequence
        sel = j <= speech_lens[:, None]  # (B, L+1)
        logits = self.speech_logits(h[sel])  # (n, Vs+1)
        y = tgt[sel]
        assert int(y.max()) <= Vs and int(y.min()) >= 0, f"speech ids must be in [0, {Vs})"
        return dict(loss=F.cross_entropy(logits, y), n_tokens=sel.sum(), n_correct=(logits.argmax(-1) == y).sum())

    def sequence_logprobs(self, prompt_embeds, prompt_lens, tokens, lengths, temperature: float = 1.0):
        """log p(local tokens | prompt) per token (N, L) under the speech+eos softmax, 0 past lengths; tokens as
        ``generate`` returns them (eos = Vs included in lengths). Prompts repeat to N rows like sampling.py's."""
        N, L = tokens.shape
        B = prompt_embeds.shape[0]
        if B != N:
            assert N % B == 0, f"{N} token rows is not a multiple of {B} prompts"
            G = N // B
            prompt_embeds, prompt_lens = prompt_embeds.repeat_interleave(G, 0), prompt_lens.repeat_interleave(G)
        Vs = self.config.speech_vocab_size
        # feed the tokens before each position: drop the eos (it is predicted, never fed)
        fed = tokens.masked_fill(tokens >= Vs, 0)
        h = self.states(prompt_embeds, prompt_lens, fed, lengths)[:, :L]  # (N, L, D)
        logits = self.speech_logits(h) / temperature  # (N, L, Vs+1)
        lp = logits.gather(-1, tokens[..., None]).squeeze(-1) - logits.logsumexp(-1)
        return lp.masked_fill(torch.arange(L, device=tokens.device)[None] >= lengths[:, None], 0.0)

    # ---- sampling -------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, text_ids, text_lens, spk_embed=None, cfg: SpeechSamplingConfig | None = None,
                 num_samples: int = 1, generator: torch.Generator | None = None, check_every: int = 8):
        """Sample speech tokens for a batch of texts; rows b*G .. b*G+G-1 belong to text b (as sampling.generate)."""
        p, plens = self.prompt(text_ids, text_lens, spk_embed)
        return self.generate_from_prompt(p, plens, text_lens, cfg or SpeechSamplingConfig(), num_samples, generator,
                                         check_every)

    @torch.no_grad()
    def generate_from_prompt(self, prompt_embeds, prompt_lens, text_lens, cfg: SpeechSamplingConfig,
                             num_samples: int = 1, generator=None, check_every: int = 8) -> SpeechGenerationOutput:
        llm, c = self.llm, self.config
        Vt, Vs = c.text_vocab_size, c.speech_vocab_size
        B, T, _ = prompt_embeds.shape
        G, dev = num_samples, prompt_embeds.device
        N, M = B * G, cfg.max_new_tokens
        llm.setup_caches(N, cache_length(llm, T + M), device=dev)
        lens = prompt_lens.to(dev)
        x, mask = left_align(prompt_embeds.to(llm.output.weight.dtype), lens)  # (B, T, D)
        key_mask = torch.zeros(B, llm.cache_len, dtype=torch.bool, device=dev)  # (B, S_cache)
        key_mask[:, :T] = mask
        positions = (torch.arange(T, device=dev)[None] - (T - lens)[:, None]).clamp(min=0)  # (B, T)
        logits = prefill(llm, x, positions, torch.arange(T, device=dev), key_mask)  # (B, V)
        tl = text_lens.to(dev).float()
        min_new = (tl * cfg.min_tokens_per_text).floor().long()  # (B,)
        # eos is forced as token number max_new; M + 1 = never (rows reaching M are truncated, as in sampling.py)
        max_new = (tl * cfg.max_tokens_per_text).ceil().long().clamp(1, M) if cfg.max_tokens_per_text > 0 \
            else torch.full_like(min_new, M + 1)
        if G > 1:
            rows = torch.arange(B, device=dev).repeat_interleave(G)  # (N,)
            llm.reorder_caches(rows)
            key_mask, logits, lens, min_new, max_new = (t[rows] for t in (key_mask, logits, lens, min_new, max_new))
        input_pos = torch.tensor([T], device=dev)
        pos = lens[:, None].clone()  # (N, 1)
        hist = torch.full((N, M), -1, dtype=torch.long, device=dev)  # (N, M) sampled local ids
        lps, raws = torch.zeros(N, M, device=dev), torch.zeros(N, M, device=dev)
        done = torch.zeros(N, dtype=torch.bool, device=dev)  # eos emitted (chosen or forced)
        chose_eos = torch.zeros_like(done)
        looped = torch.zeros_like(done)
        eos_only = torch.full((Vs + 1,), float("-inf"), device=dev)
        eos_only[Vs] = 0.0
        steps = 0
        for step in range(M):
            if step > 0:
                if step % check_every == 0 and bool(done.all()):
                    break
                key_mask[:, T + step - 1] = True
                logits = decode_one_token(llm, (hist[:, step - 1] + Vt)[:, None], pos, input_pos, key_mask)
                input_pos += 1
                pos += 1
            sl = logits[:, Vt: Vt + Vs + 1]  # (N, Vs+1) local: speech ids, eos
            raw = sl.log_softmax(-1)
            sl = sl.masked_fill((step < min_new)[:, None] & (torch.arange(Vs + 1, device=dev) == Vs), float("-inf"))
            forced = step >= max_new - 1  # (N,) last allowed token: eos
            if cfg.loop_window > 0 and step >= cfg.loop_window + 1:
                cont = loop_continuation(hist[:, :step], cfg.loop_window, cfg.loop_max_period)  # (N,)
                hit = (cont >= 0) & ~done
                looped |= hit
                if cfg.loop_action == "stop":
                    forced = forced | hit
                else:
                    ban = F.one_hot(cont.clamp(min=0), Vs + 1).bool() & hit[:, None]  # (N, Vs+1)
                    sl = sl.masked_fill(ban, float("-inf"))
            sl = torch.where(forced[:, None], eos_only, sl)
            tok, lp = sample(sl, cfg.temperature, cfg.top_k, cfg.top_p, generator)  # (N,), (N,)
            tok = torch.where(done, Vs, tok)  # finished rows keep emitting eos (masked out below)
            chose_eos |= (tok == Vs) & ~done & ~forced
            hist[:, step], lps[:, step] = tok, torch.where(forced, 0.0, lp)
            raws[:, step] = raw.gather(1, tok[:, None])[:, 0]
            done |= tok == Vs
            steps = step + 1
        tokens = hist[:, :steps]
        is_eos = tokens == Vs
        lengths = torch.where(is_eos.any(1), is_eos.int().argmax(1) + 1, steps)  # (N,)
        past = torch.arange(steps, device=dev)[None] >= lengths[:, None]
        L = max(int(lengths.max()), 1)
        return SpeechGenerationOutput(tokens.masked_fill(past, Vs)[:, :L], lengths,
                                      lps[:, :L].masked_fill(past[:, :L], 0.0),
                                      raws[:, :L].masked_fill(past[:, :L], 0.0), chose_eos, looped, Vs)
