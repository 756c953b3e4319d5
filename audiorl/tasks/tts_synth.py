"""TTS synthesis, batched: text -> speech tokens (TTSLM.generate) -> log-mel (Token2Mel.sample) -> wave (the vocoder:
Griffin-Lim by default, or a trained neural vocoder with ``VocoderConfig(kind="neural", exp=...)``).

``Synthesizer`` holds the three parts and times each (``times``: seconds spent in the LM, token-to-mel and vocoder,
device-synchronised), so that ``audiorl.bin.tts_synth``, ``bench/bench_tts.py`` and RL rollouts share one code path:

    syn = Synthesizer.from_exps(t2m_exp="exp/token2mel_x", lm_exp="exp/tts_lm_x")
    syn = Synthesizer.from_exps(..., vocoder=VocoderConfig(kind="neural", exp="exp/vocoder_x"))  # neural vocoder
    out = syn.synthesize(texts=["hello world"], spk=spk_rows)        # TTS
    out = syn.synthesize(tokens=[ids], spk=spk_rows)                 # resynthesis from given tokens
    out.waves[i] (float32 numpy at syn.sample_rate), out.tokens[i] (speech ids), out.looped / out.finished

A row whose LM emits no speech token (or a token sequence of length 0) becomes 0.1 s of silence and is counted in
``out.empty``: downstream scoring then sees a failed synthesis instead of crashing on an empty file.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from audiorl.config import option
from audiorl.log import get_logger
from audiorl.models.tts_lm import SpeechSamplingConfig
from audiorl.models.vocoder import GriffinLimVocoder, MelConfig, mel_spectrogram
from audiorl.tasks.tts_data import TextTokens, pad_int, pad_mels

logger = get_logger(__name__)


@dataclass
class Token2MelSamplingConfig:
    """How token-to-mel samples (defaults: what the model was configured with)."""

    n_steps: int = option(0, "ODE steps; 0 = the model's model.n_steps.")
    solver: Literal["", "euler", "midpoint"] = option("", "ODE solver; '' = the model's.")
    cfg_strength: float = option(-1.0, "Classifier-free guidance weight; negative = the model's.")
    temperature: float = option(1.0, "Scale of the initial noise (lower = smoother, less varied mels).")
    t_start: float = option(0.0, "Shallow flow matching: start the ODE at this t from the prior mu (Token2Mel.sample; "
                                 "models trained with prior_weight > 0) instead of from pure noise at 0; 1 = the "
                                 "prior mel itself, no ODE.")


def synth_section_of(synth_yaml: str, key: str, cls):
    """Section ``key`` of a synthesis YAML (audiorl.bin.tts_synth's config) as ``cls``; absent = ``cls()``, the
    synthesis tool's own defaults. The RL stage reads its rewards' and validation's settings from here, so they hear
    what the synthesis stage will produce."""
    from audiorl.config import from_dict, read_config_yaml

    if not os.path.isfile(synth_yaml):
        raise FileNotFoundError(f"{synth_yaml}: no such synthesis config (tts.sh --synth_config)")
    data = read_config_yaml(synth_yaml)
    if not isinstance(data, dict) or not isinstance(data.get(key, {}), dict):
        raise ValueError(f"{synth_yaml}: expected a mapping with an optional '{key}:' mapping")
    return from_dict(cls, data.get(key) or {}, source=f"{synth_yaml} ({key})")


def t2m_sampling_of(synth_yaml: str) -> Token2MelSamplingConfig:
    """The ``token2mel:`` section of a synthesis YAML."""
    return synth_section_of(synth_yaml, "token2mel", Token2MelSamplingConfig)


@dataclass
class GriffinLimConfig:
    """Mel -> wave by Griffin-Lim (audiorl.models.vocoder; no training, no weights)."""

    n_iter: int = option(32, "Griffin-Lim iterations (32: ~0.05 x real time on one core; more = cleaner phase, "
                             "slower).")
    momentum: float = option(0.99, "Fast Griffin-Lim momentum (0 = plain Griffin-Lim).")


@dataclass
class VocoderConfig(GriffinLimConfig):
    """Mel -> wave: Griffin-Lim (default; n_iter, momentum) or a trained neural vocoder (kind, exp, checkpoint)."""

    kind: Literal["griffin_lim", "neural"] = option(
        "griffin_lim", "'griffin_lim': torchaudio's Griffin-Lim (audiorl.models.vocoder; no training); 'neural': the "
                       "Vocos-style vocoder trained in exp (audiorl.models.neural_vocoder; tts.sh stage 8 with "
                       "--voc_config).")
    exp: str = option("", "kind neural: the vocoder experiment dir, e.g. exp/vocoder_train_vocoder. Its mel analysis "
                          "must be the token-to-mel model's.")
    checkpoint: str = option("", "kind neural: its weights; '' = what its training stage ended with.")

    def __post_init__(self):
        if self.kind == "neural" and not self.exp:
            raise ValueError("vocoder.kind=neural needs vocoder.exp: a vocoder experiment dir (tts.sh stage 8 with "
                             "--voc_config, or python -m audiorl.bin.tts_vocoder_train), e.g. --vocoder.exp "
                             "exp/vocoder_train_vocoder")
        if self.kind == "griffin_lim" and (self.exp or self.checkpoint):
            raise ValueError(f"vocoder.exp/checkpoint ('{self.exp}', '{self.checkpoint}') are set but "
                             f"vocoder.kind=griffin_lim: add --vocoder.kind neural, or drop them")


def build_vocoder(c: GriffinLimConfig, mel: MelConfig, device: str | torch.device = "cpu") -> torch.nn.Module:
    """The vocoder a config asks for, on ``device``: a neural one (a VocoderConfig of kind neural) is loaded from its
    experiment and must invert ``mel``, the analysis the token-to-mel model was trained on."""
    if isinstance(c, VocoderConfig) and c.kind == "neural":
        from audiorl.tasks.vocoder import load_vocoder

        loaded = load_vocoder(c.exp, c.checkpoint, device)
        if loaded.config.mel != mel:
            raise ValueError(f"the vocoder {c.exp} was trained on mel {loaded.config.mel} but the token-to-mel model "
                             f"makes mel {mel}: train the vocoder with the same mel section")
        logger.info("vocoder: %s (%s)", c.exp, loaded.weights)
        return loaded.model
    return GriffinLimVocoder(mel, n_iter=c.n_iter, momentum=c.momentum).to(device)


@dataclass
class SynthOutput:
    waves: list[np.ndarray]
    tokens: list[np.ndarray]
    looped: list[bool] = field(default_factory=list)  # TTS only: the LM's loop guard fired
    finished: list[bool] = field(default_factory=list)  # TTS only: the LM chose eos (not forced / truncated)
    empty: int = 0


class Synthesizer:
    def __init__(self, t2m, mel: MelConfig, lm=None, text: TextTokens | None = None,
                 vocoder: GriffinLimConfig = VocoderConfig(), t2m_sampling: Token2MelSamplingConfig =
                 Token2MelSamplingConfig(), device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.t2m, self.lm, self.text, self.mel = t2m.to(self.device).eval(), lm, text, mel
        if lm is not None:
            self.lm = lm.to(self.device).eval()
            if text is None:
                raise ValueError("Synthesizer: a text tokenizer is needed with an LM")
            if lm.config.speech_vocab_size != t2m.config.vocab_size:
                raise ValueError(f"the LM writes {lm.config.speech_vocab_size} speech ids but token-to-mel reads "
                                 f"{t2m.config.vocab_size}: train both on the same speech tokens")
            if lm.config.text_vocab_size != text.vocab_size:
                raise ValueError(f"the LM was trained with {lm.config.text_vocab_size} text ids but {text.path} has "
                                 f"{text.vocab_size}")
        self.vocoder = build_vocoder(vocoder, mel, self.device)
        self.t2m_sampling = t2m_sampling
        self.times = {"lm": 0.0, "token2mel": 0.0, "vocoder": 0.0}
        self._warned_cap = False

    @property
    def sample_rate(self) -> int:
        return self.mel.sample_rate

    @property
    def spk_embed_dim(self) -> int:
        return max(self.t2m.config.spk_embed_dim, self.lm.config.spk_embed_dim if self.lm is not None else 0)

    @classmethod
    def from_exps(cls, t2m_exp: str, lm_exp: str = "", t2m_checkpoint: str = "", lm_checkpoint: str = "",
                  vocoder: GriffinLimConfig = VocoderConfig(),
                  t2m_sampling: Token2MelSamplingConfig = Token2MelSamplingConfig(),
                  device: str | torch.device = "cpu") -> "Synthesizer":
        """Load token-to-mel (and the LM, for TTS) from their experiment dirs; ``vocoder`` a GriffinLimConfig or a
        VocoderConfig (which may name a neural vocoder's experiment)."""
        from audiorl.tasks.tts import load_token2mel, load_tts_lm

        t2m = load_token2mel(t2m_exp, t2m_checkpoint, device)
        lm = text = None
        if lm_exp:
            loaded = load_tts_lm(lm_exp, lm_checkpoint, device)
            lm, text = loaded.model, TextTokens(loaded.config.data.token_model)
            logger.info("LM %s; token-to-mel %s", loaded.weights, t2m.weights)
        return cls(t2m.model, t2m.config.mel, lm, text, vocoder, t2m_sampling, device)

    # ---- the three parts -------------------------------------------------------------------------------------------
    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _timed(self, part: str, fn, *args, **kw):
        self._sync()
        t0 = time.perf_counter()
        out = fn(*args, **kw)
        self._sync()
        self.times[part] += time.perf_counter() - t0
        return out

    def _spk(self, spk, n: int) -> torch.Tensor | None:
        if spk is None:
            return None
        s = torch.as_tensor(np.asarray(spk), dtype=torch.float32, device=self.device)
        assert s.shape[0] == n, f"{s.shape[0]} speaker rows for {n} utterances"
        return s

    @torch.no_grad()
    def text_to_tokens(self, texts: list[str], spk=None, sampling: SpeechSamplingConfig = SpeechSamplingConfig(),
                       generator: torch.Generator | None = None):
        """Sample speech tokens for a batch of texts -> (list of int arrays, SpeechGenerationOutput)."""
        if self.lm is None:
            raise ValueError("Synthesizer: no LM loaded (pass lm_exp) for text input")
        ids, lens = pad_int([np.asarray(self.text.encode(t), dtype=np.int64) for t in texts])
        room = self.lm.config.llm.max_seq_len - int(lens.max()) - 4
        if room < sampling.max_new_tokens:
            if not self._warned_cap:
                logger.warning("sampling.max_new_tokens=%d does not fit llm.max_seq_len=%d with this text: capped "
                               "at %d", sampling.max_new_tokens, self.lm.config.llm.max_seq_len, room)
                self._warned_cap = True
            from dataclasses import replace

            sampling = replace(sampling, max_new_tokens=max(1, room))
        out = self._timed("lm", self.lm.generate, ids.to(self.device), lens.to(self.device),
                          self._spk(spk, len(texts)), sampling, 1, generator)
        return [np.asarray(s, dtype=np.int64) for s in out.speech_ids()], out

    @torch.no_grad()
    def tokens_to_mel(self, tokens: list[np.ndarray], spk=None, generator: torch.Generator | None = None):
        """Speech tokens -> (log-mel (B, T, n_mels), mel_lens (B,)) on the device."""
        tok, lens = pad_int(tokens)
        s = self.t2m_sampling
        return self._timed("token2mel", self.t2m.sample, tok.to(self.device), lens.to(self.device),
                           self._spk(spk, len(tokens)) if self.t2m.config.spk_embed_dim else None,
                           n_steps=s.n_steps or None, solver=s.solver or None,
                           cfg_strength=None if s.cfg_strength < 0 else s.cfg_strength, temperature=s.temperature,
                           generator=generator, t_start=s.t_start)

    @torch.no_grad()
    def mel_to_waves(self, mel: torch.Tensor, lens: torch.Tensor) -> list[np.ndarray]:
        wave = self._timed("vocoder", self.vocoder, mel, lens)  # (B, T * hop)
        hop = self.mel.hop_length
        return [wave[i, : int(n) * hop].float().cpu().numpy() for i, n in enumerate(lens)]

    @torch.no_grad()
    def vocode(self, waves: list[np.ndarray]) -> SynthOutput:
        """Real recordings (float, sample_rate) -> this pipeline's mel analysis -> the vocoder (its ceiling)."""
        mels = [mel_spectrogram(torch.from_numpy(np.asarray(w, dtype=np.float32)), self.mel) for w in waves]
        mel, lens = pad_mels(mels, math.log(self.mel.log_floor))
        out = SynthOutput([], [])
        out.waves = self.mel_to_waves(mel.to(self.device), lens.to(self.device))
        out.tokens = [np.zeros(0, dtype=np.int64) for _ in waves]
        return out

    def synthesize(self, texts: list[str] | None = None, tokens: list[np.ndarray] | None = None, spk=None,
                   sampling: SpeechSamplingConfig = SpeechSamplingConfig(),
                   generator: torch.Generator | None = None) -> SynthOutput:
        """Texts (TTS) or speech tokens (resynthesis) of one batch -> waves; ``spk`` (B, S) rows or None."""
        if (texts is None) == (tokens is None):
            raise ValueError("Synthesizer.synthesize: give texts or tokens")
        out = SynthOutput([], [])
        if texts is not None:
            tokens, gen = self.text_to_tokens(texts, spk, sampling, generator)
            out.looped, out.finished = gen.looped.tolist(), gen.finished.tolist()
        out.tokens = [np.asarray(t, dtype=np.int64) for t in tokens]
        mel, lens = self.tokens_to_mel(out.tokens, spk, generator)
        for w in self.mel_to_waves(mel, lens):
            if len(w) == 0:
                out.empty += 1
                w = np.zeros(self.sample_rate // 10, dtype=np.float32)
            out.waves.append(w)
        return out
