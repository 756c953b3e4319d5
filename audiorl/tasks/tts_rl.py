"""RL of the text -> speech-token LM (PAPER.md s4-s6) on the shared trainer: GRPO, DiffRO and GRPO + DiffRO.

    method grpo         ``TTSGRPOTask``: G samples per rl_pool text -> rewards (registry: R1 asr_judge on waveforms or
                        token2text on tokens, R2 duration, R3 diversity [+ pitch], sim) -> GRPO (audiorl.rl.grpo_task)
    method diffro       ``TTSDiffROTask``: teacher-force the LM on the ground-truth tokens (or its own samples), Gumbel-
                        Softmax samples of its logits into the frozen token-to-text reward model, loss = -R + beta KL
                        (audiorl.rl.diffro)
    method grpo_diffro  ``TTSGRPOTask`` + DiffRO on the rollouts whose advantage > 0 (``diffro.advantage_filter``;
                        false = the naive combination), sharing the policy's teacher-forced forward

Both start from the TTS LM SFT experiment (tts.sh stage 7): its config.yaml gives the model and text tokenizer, its
final weights the initial policy and the frozen reference. Prompts are rl_pool texts (never the SFT training set:
ENV.md measured saturated rewards there) with each utterance's own speaker embedding, as in SFT.

Models the rewards and validation need are frozen and loaded once (``TTSRLModels``): the token-to-text reward model
(binds reward ``token2text``; DiffRO's R), token-to-mel + Griffin-Lim (waveforms for ``asr_judge``, ``pitch_std``,
``sim`` and the judge validation) and the ASR judge (binds ``asr_judge``). Validation synthesises the first
``data.valid_utts`` dev texts with a fixed seed and reports the judge WER (the loss, so the best checkpoint is the most
intelligible), the reward model's WER and the duration ratio to the real recordings' tokens.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import torch

from audiorl.config import load_config, option
from audiorl.data.sampler import LengthBucketSampler, map_batches
from audiorl.log import get_logger
from audiorl.models.tts_lm import TTSLM, SpeechSamplingConfig, TTSLMConfig
from audiorl.rl.config import GRPOConfig
from audiorl.rl.diffro import (DiffROConfig, diffro_loss, diffro_on_rollouts, diffro_sequences, gather_logprobs,
                               strip_eos)
from audiorl.rl.grpo import token_entropy
from audiorl.rl.grpo_task import GRPOStepConfig, GRPOTask
from audiorl.rl.rewards import RewardConfig, RewardInput, bind_reward
from audiorl.rl.rollout import Rollout
from audiorl.tasks.tts import SPK_FIX, TOKENS_FIX, TTSLMTrainConfig
from audiorl.tasks.tts_data import (TextTokens, check_coverage, pad_int, read_embed_table, read_texts,
                                    read_token_table, read_utt2spk)
from audiorl.tasks.tts_synth import GriffinLimConfig, Token2MelSamplingConfig
from audiorl.train import checkpoint as ckpt_lib
from audiorl.train import distributed as dist_lib
from audiorl.train import fsdp as fsdp_lib
from audiorl.train.checkpoint import unwrap
from audiorl.train.config import OptimConfig, SchedulerConfig, TrainConfig
from audiorl.train.trainer import Task

logger = get_logger(__name__)

__all__ = ["TTSRLConfig", "TTSRLDataConfig", "TTSRLModelsConfig", "TTSGRPOTask", "TTSDiffROTask", "make_tts_rl_task"]

WAVE_REWARDS = ("asr_judge", "pitch_std", "sim")  # rewards that read meta['waveform']


# ----------------------------------------------------------------------------------------------- config
@dataclass
class TTSRLDataConfig:
    """The SFT LM to start from, the RL texts and the validation texts."""

    sft_exp: str = option("exp/tts_lm_train_tts_lm", "TTS LM SFT experiment (tts.sh stage 7): its config.yaml gives "
                                                     "the model and text tokenizer, its weights the initial policy "
                                                     "and the reference.")
    sft_checkpoint: str = option("", "SFT weights to start from; '' = the weights its training ended with. Ignored "
                                     "when train.init_from is set.")
    rl_dir: str = option("data/rl_pool", "RL prompts: a data dir (text; utt2spk for a speaker reward head).")
    rl_tokens: str = option("dump/tokens/rl_pool/tokens.scp", "Ground-truth speech tokens of rl_dir: DiffRO's "
                            "teacher-forced sequences (diffro.sequences=reference) and the targets of a rate head. "
                            "'' = none (GRPO, or DiffRO on its own samples).")
    rl_spk_embed: str = option("dump/spk_embed/rl_pool/spk_embed.scp", "Per-utterance speaker embeddings of rl_dir "
                                                                       "(tts.sh stage 6).")
    max_rl_utts: int = option(0, "Use the first N RL utterances by id; 0 = all.")
    max_utt_tokens: int = option(500, "RL utterances whose ground-truth tokens are longer are skipped (counted).")
    valid_dir: str = option("data/dev", "Validation texts ('' = no validation).")
    valid_tokens: str = option("dump/tokens/dev/tokens.scp", "Ground-truth tokens of valid_dir (duration ratio); '' = "
                                                             "none.")
    valid_spk_embed: str = option("dump/spk_embed/dev/spk_embed.scp", "Speaker embeddings of valid_dir.")
    valid_utts: int = option(100, "Dev texts synthesised at each validation (the first N by id).")
    valid_seed: int = option(1234, "Seed of the validation sampling, the same at every validation (the curve then "
                                   "shows the model changing, not the dice).")
    allow_missing: bool = option(False, "Skip (and count) utterances without tokens or speaker embedding.")


@dataclass
class TTSRLModelsConfig:
    """Frozen models of the rewards and of validation; '' = not loaded (rewards that need it then fail clearly)."""

    reward_model_exp: str = option("", "Token-to-text reward model (tts.sh stage 9): DiffRO's R, reward "
                                       "'token2text', validation rm_wer.")
    t2m_exp: str = option("", "Token-to-mel experiment (tts.sh stage 8): waveforms for the waveform rewards "
                              f"({', '.join(WAVE_REWARDS)}) and the judge validation.")
    asr_exp: str = option("", "ASR judge experiment (../asr SFT): reward 'asr_judge', validation judge WER.")
    asr_dir: str = option("", "The ASR recipe dir its config's relative paths refer to; '' = two levels above "
                              "asr_exp.")
    judge_mode: Literal["llm", "ctc"] = option("llm", "llm: the judge's LLM decoder (greedy); ctc: its CTC head.")
    t2m_sampling: Token2MelSamplingConfig = option(default_factory=Token2MelSamplingConfig,
                                                   help="Token-to-mel sampling of rollouts and validation.")
    synth_config: str = option("", "Synthesis YAML of audiorl.bin.tts_synth (tts.sh passes its --synth_config): its "
                                   "token2mel section replaces t2m_sampling (rewards and validation hear the "
                                   "token-to-mel the synthesis stage uses) and its sampling section replaces "
                                   "valid_sampling (validation samples the LM as the synthesis stage does; rollouts "
                                   "keep grpo.*). '' = both as given.")
    vocoder: GriffinLimConfig = option(default_factory=lambda: GriffinLimConfig(n_iter=16),
                                       help="Griffin-Lim of rollouts and validation (16 iterations: the judge does "
                                            "not need the phase of a 32-iteration synthesis).")
    synth_batch: int = option(16, "Utterances per token-to-mel batch.")


def _rl_train() -> TrainConfig:
    return TrainConfig(max_steps=200, batch_size=8, optim=OptimConfig(lr=1e-5, weight_decay=0.0),
                       scheduler=SchedulerConfig(warmup_steps=10, decay="constant"), grad_clip=1.0, log_interval=5,
                       valid_interval=50, valid_at_start=True, save_interval=50, keep_last_n=2, average_best_n=1)


def _rl_sampling() -> SpeechSamplingConfig:
    # temperature / top_k / top_p of rollouts come from grpo.*; these bound the length and guard loops
    return SpeechSamplingConfig(max_new_tokens=500, min_tokens_per_text=2.0, max_tokens_per_text=20.0)


def _valid_sampling() -> SpeechSamplingConfig:
    return SpeechSamplingConfig(max_new_tokens=500, temperature=1.0, top_k=25, top_p=0.8, min_tokens_per_text=2.0,
                                max_tokens_per_text=20.0)


@dataclass
class TTSRLConfig:
    """RL of the TTS LM (tts.sh stage 10): method grpo | diffro | grpo_diffro."""

    method: Literal["grpo", "diffro", "grpo_diffro"] = option(
        "grpo", "grpo: GRPO with the rewards below; diffro: DiffRO alone (no sampling loop, rewards unused); "
                "grpo_diffro: GRPO + DiffRO on the rollouts (diffro.advantage_filter: the paper's filter).")
    data: TTSRLDataConfig = option(default_factory=TTSRLDataConfig, help="SFT model and texts.")
    models: TTSRLModelsConfig = option(default_factory=TTSRLModelsConfig, help="Frozen reward / validation models.")
    grpo: GRPOConfig = option(default_factory=lambda: GRPOConfig(num_generations=8, max_new_tokens=500, beta=0.04),
                              help="The GRPO objective and the rollouts' temperature / top-k / top-p.")
    step: GRPOStepConfig = option(default_factory=lambda: GRPOStepConfig(prompt_grad=True),
                                  help="How the GRPO step runs.")
    rewards: RewardConfig = option(default_factory=lambda: RewardConfig([{"name": "asr_judge", "weight": 1.0}]),
                                   help="GRPO rewards (PAPER.md s4: R1 asr_judge or token2text, R2 duration, R3 "
                                        "diversity [f0_weight] / pitch_std, sim) and their weights.")
    diffro: DiffROConfig = option(default_factory=DiffROConfig, help="DiffRO and its combination with GRPO.")
    sampling: SpeechSamplingConfig = option(default_factory=_rl_sampling,
                                            help="Rollout / DiffRO-sample length bounds and loop guard (temperature, "
                                                 "top_k, top_p of GRPO rollouts: grpo.*).")
    valid_sampling: SpeechSamplingConfig = option(default_factory=_valid_sampling,
                                                  help="LM sampling of validation; models.synth_config's sampling "
                                                       "section replaces it (as tts.sh stage 11 samples).")
    train: TrainConfig = option(default_factory=_rl_train, help="The training loop; batch_size = texts per step.")
    model: TTSLMConfig = option(default_factory=TTSLMConfig, help="Filled from <data.sft_exp>/config.yaml.")

    def __post_init__(self):
        if self.method not in ("grpo", "diffro", "grpo_diffro"):
            raise ValueError(f"method={self.method!r}: choose grpo, diffro or grpo_diffro")


# ----------------------------------------------------------------------------------------------- data
class RLTexts:
    """Utterances with text ids (LM and reward-model tokenizers), speaker embeddings and optional ground-truth tokens."""

    def __init__(self, data_dir: str, tokens_scp: str, spk_scp: str, text: TextTokens, rm_text: TextTokens | None,
                 model: TTSLMConfig, allow_missing: bool, max_utts: int = 0, max_tokens: int = 0):
        texts = read_texts(data_dir)
        utts = sorted(texts)
        self.tokens: dict[str, np.ndarray] = {}
        if tokens_scp:
            self.tokens = read_token_table(tokens_scp, model.speech_vocab_size, TOKENS_FIX)
            utts = check_coverage(utts, self.tokens, tokens_scp, "speech tokens", TOKENS_FIX, allow_missing, data_dir)
            if max_tokens:
                n = len(utts)
                utts = [u for u in utts if len(self.tokens[u]) <= max_tokens]
                if len(utts) < n:
                    logger.warning("%s: skipped %d of %d utterances with more than %d speech tokens", data_dir,
                                   n - len(utts), n, max_tokens)
        self.spk: dict[str, np.ndarray] = {}
        if model.spk_embed_dim:
            self.spk = read_embed_table(spk_scp, model.spk_embed_dim, SPK_FIX)
            utts = check_coverage(utts, self.spk, spk_scp, "speaker embedding", SPK_FIX, allow_missing, data_dir)
        self.utts = utts[:max_utts] if max_utts else utts
        if not self.utts:
            raise ValueError(f"{data_dir}: no usable utterances for RL")
        self.text = {u: texts[u] for u in self.utts}
        self.text_ids = {u: text.encode(self.text[u]) for u in self.utts}
        self.rm_ids = {u: rm_text.encode(self.text[u]) for u in self.utts} if rm_text is not None else None
        self.utt2spk = read_utt2spk(data_dir, self.utts) if os.path.isfile(os.path.join(data_dir, "utt2spk")) else {}
        self.spk_dim = model.spk_embed_dim

    def items(self) -> list[tuple[str, int]]:
        return [(u, len(self.text_ids[u])) for u in self.utts]

    def collate(self, utts: list[str]) -> dict:
        ids, lens = pad_int([np.asarray(self.text_ids[u]) for u in utts])
        b: dict[str, Any] = dict(utts=list(utts), text_ids=ids, text_lens=lens, texts=[self.text[u] for u in utts],
                                 spk=torch.from_numpy(np.stack([self.spk[u] for u in utts])) if self.spk_dim else None)
        if self.rm_ids is not None:
            b["rm_ids"], b["rm_lens"] = pad_int([np.asarray(self.rm_ids[u]) for u in utts])
        if self.tokens:
            b["speech"], b["speech_lens"] = pad_int([self.tokens[u] for u in utts])
        return b


def _to(b: dict, device) -> dict:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in b.items()}


# ----------------------------------------------------------------------------------------------- frozen models
class TTSRLModels:
    """The frozen reward model, synthesizer (token-to-mel + Griffin-Lim) and ASR judge; binds the model rewards."""

    def __init__(self, cfg: TTSRLModelsConfig, lm: TTSLMConfig):
        self.cfg = cfg
        self.rm = self.rm_text = self.rm_cfg = self.synth = self.judge = None
        self.device = torch.device("cpu")
        if cfg.reward_model_exp:
            from audiorl.tasks.token2text import load_token2text

            exp, self.rm_text = load_token2text(cfg.reward_model_exp)
            self.rm, self.rm_cfg = exp.model.requires_grad_(False), exp.config
            if self.rm.config.speech_vocab_size != lm.speech_vocab_size:
                raise ValueError(f"the reward model {cfg.reward_model_exp} reads {self.rm.config.speech_vocab_size} "
                                 f"speech ids but the LM writes {lm.speech_vocab_size}: train it on the same tokens")
            from audiorl.rl.rewards.tts import make_token2text_reward

            bind_reward("token2text", make_token2text_reward(self.rm, self.rm_text))
            logger.info("reward model %s (%s)", cfg.reward_model_exp, exp.weights)
        if cfg.t2m_exp:
            from audiorl.tasks.tts_synth import Synthesizer

            self.synth = Synthesizer.from_exps(cfg.t2m_exp, vocoder=cfg.vocoder, t2m_sampling=cfg.t2m_sampling)
        if cfg.asr_exp:
            from audiorl.eval.judge import ASRJudge
            from audiorl.rl.rewards.tts import make_asr_judge_reward

            self.judge = ASRJudge.load(cfg.asr_exp, cfg.asr_dir or None, mode=cfg.judge_mode)
            sr = self.synth.sample_rate if self.synth is not None else 16000
            bind_reward("asr_judge", make_asr_judge_reward(lambda waves, refs: self.judge.transcribe(waves, sr)))
        if self.synth is not None:
            from audiorl.rl.rewards.tts import make_sim_reward

            def embed(waves):
                from audiorl.eval.sim import SpeakerEncoder

                if not hasattr(self, "_spk_enc"):
                    self._spk_enc = SpeakerEncoder(device="cpu")
                return self._spk_enc.embed_batch(waves, self.synth.sample_rate)

            bind_reward("sim", make_sim_reward(embed))

    def to(self, device: torch.device) -> "TTSRLModels":
        self.device = device
        if self.rm is not None:
            self.rm.to(device).eval()
        if self.synth is not None:
            self.synth.t2m.to(device)
            self.synth.vocoder.to(device)
            self.synth.device = device
        if self.judge is not None:
            self.judge.model.to(device)
            self.judge.device = device
        return self

    def waves(self, tokens: list[np.ndarray], spk: torch.Tensor | None) -> list[np.ndarray]:
        """Speech tokens -> waveforms at synth.sample_rate, in batches of cfg.synth_batch."""
        if self.synth is None:
            raise ValueError("waveform rewards / judge validation need models.t2m_exp (the token-to-mel experiment)")
        out: list[np.ndarray] = []
        n = self.cfg.synth_batch
        for i in range(0, len(tokens), n):
            s = None if spk is None else spk[i: i + n].cpu().numpy()
            out += self.synth.synthesize(tokens=tokens[i: i + n], spk=s).waves
        return out


def _speech_lists(tokens: torch.Tensor, lengths: torch.Tensor, eos: int) -> list[np.ndarray]:
    speech, lens = strip_eos(tokens, lengths, eos)
    return [row[: int(k)].cpu().numpy().astype(np.int64) for row, k in zip(speech, lens)]


# ----------------------------------------------------------------------------------------------- shared base
class _TTSRLBase:
    """What both methods share: loading the SFT LM, the texts, the frozen models and the validation."""

    def _init_common(self, cfg: TTSRLConfig) -> TTSRLConfig:
        d = cfg.data
        sft_cfg_path = os.path.join(d.sft_exp, "config.yaml")
        if not os.path.isfile(sft_cfg_path):
            raise FileNotFoundError(f"{sft_cfg_path}: no such file; data.sft_exp must be a trained TTS LM (tts.sh "
                                    f"stage 7)")
        sft = load_config(TTSLMTrainConfig, sft_cfg_path)
        self.text = TextTokens(sft.data.token_model)
        init = cfg.train.init_from or d.sft_checkpoint or str(ckpt_lib.final_weights(d.sft_exp) or "")
        if not init:
            raise FileNotFoundError(f"{d.sft_exp}: no averaged model and no checkpoint to start RL from")
        cfg = replace(cfg, model=sft.model, train=replace(cfg.train, init_from=init))
        if cfg.models.synth_config:  # one source of the synthesis settings: the synthesis stage's config
            from audiorl.tasks.tts_synth import synth_section_of, t2m_sampling_of

            sc = cfg.models.synth_config
            cfg = replace(cfg, models=replace(cfg.models, t2m_sampling=t2m_sampling_of(sc)),
                          valid_sampling=synth_section_of(sc, "sampling", SpeechSamplingConfig))
        self.models = TTSRLModels(cfg.models, cfg.model)
        need_rm = cfg.method != "grpo"
        if need_rm and self.models.rm is None:
            raise ValueError(f"method={cfg.method} needs the token-to-text reward model: set "
                             f"models.reward_model_exp (tts.sh stage 9)")
        need_ref_tokens = cfg.method == "diffro" and cfg.diffro.sequences == "reference"
        if need_ref_tokens and not d.rl_tokens:
            raise ValueError("DiffRO on reference sequences needs data.rl_tokens (ground-truth tokens of rl_dir)")
        self.data = RLTexts(d.rl_dir, d.rl_tokens, d.rl_spk_embed, self.text, self.models.rm_text, cfg.model,
                            d.allow_missing, d.max_rl_utts, d.max_utt_tokens)
        self.valid_data = RLTexts(d.valid_dir, d.valid_tokens, d.valid_spk_embed, self.text, self.models.rm_text,
                                  cfg.model, d.allow_missing, d.valid_utts) if d.valid_dir and d.valid_utts else None
        waves = [s.name for s in cfg.rewards.rewards if s.name in WAVE_REWARDS]
        self.need_waves = cfg.method != "diffro" and bool(waves)
        if self.need_waves and self.models.synth is None:
            raise ValueError(f"reward(s) {waves} score waveforms: set models.t2m_exp (the token-to-mel experiment)")
        self._sampler: LengthBucketSampler | None = None
        logger.info("TTS RL (%s) from %s: %d texts in %s, B %d%s per step", cfg.method, init, len(self.data.utts),
                    d.rl_dir, cfg.train.batch_size,
                    f" x G {cfg.grpo.num_generations}" if cfg.method != "diffro" else "")
        return cfg

    def build_model(self) -> TTSLM:
        return TTSLM(self.cfg.model)

    def _batches(self, epoch: int, rank: int, world_size: int):
        t = self.cfg.train
        if self._sampler is None:
            self._sampler = LengthBucketSampler(self.data.items(), batch_size=t.batch_size, seed=t.seed, rank=rank,
                                                world_size=world_size)
        return map_batches(self._sampler.for_epoch(epoch), self.data.collate)

    def _diffro_attributes(self, b: dict, n_speech: list[int] | None) -> dict[str, torch.Tensor]:
        """Targets of the reward model's heads that diffro.attribute_weights asks for (ground-truth rate / speaker)."""
        names = set(self.cfg.diffro.attribute_weights)
        if not names:
            return {}
        from audiorl.tasks.token2text import attribute_targets

        d = replace(self.models.rm_cfg.data, attributes=sorted(names))
        if "rate" in names and n_speech is None:
            raise ValueError("the rate reward head needs ground-truth tokens of the RL texts (data.rl_tokens)")
        spk = [self.data.utt2spk.get(u, "") for u in b["utts"]] if "speaker" in names else None
        return attribute_targets(d, n_speech or [0] * len(b["utts"]), b["rm_lens"].tolist(), spk)

    @torch.no_grad()
    def valid(self, model: TTSLM) -> dict[str, float] | None:
        if self.valid_data is None:
            return None
        from audiorl.eval.wer import score

        v, m = self.valid_data, self.models
        device = next(model.parameters()).device
        was = model.training
        model.eval()
        gen = torch.Generator(device=device).manual_seed(self.cfg.data.valid_seed)
        hyp_tokens: dict[str, np.ndarray] = {}
        n_loop = 0
        try:
            for i in range(0, len(v.utts), 16):
                b = _to(v.collate(v.utts[i: i + 16]), device)
                out = model.generate(b["text_ids"], b["text_lens"], b["spk"], self.cfg.valid_sampling, 1, gen)
                n_loop += int(out.looped.sum())
                for u, t in zip(b["utts"], out.speech_ids()):
                    hyp_tokens[u] = np.asarray(t, dtype=np.int64)
        finally:
            model.llm.clear_caches()
            model.train(was)
        res: dict[str, float] = {"frac_looped": n_loop / len(v.utts)}
        if v.tokens:
            res["dur_ratio"] = float(np.mean([max(len(hyp_tokens[u]), 1) / max(len(v.tokens[u]), 1) for u in v.utts]))
        refs = {u: v.text[u] for u in v.utts}
        if m.rm is not None:
            from audiorl.tasks.token2text import decode_tokens

            res["rm_wer"] = score(refs, decode_tokens(m.rm, hyp_tokens, m.rm_text, m.device)).totals.wer
        if m.judge is not None and m.synth is not None:
            spk = torch.from_numpy(np.stack([v.spk[u] for u in v.utts])) if v.spk_dim else None
            waves = m.waves([hyp_tokens[u] for u in v.utts], spk)
            hyps = m.judge.transcribe(waves, m.synth.sample_rate)
            res["judge_wer"] = score(refs, dict(zip(v.utts, hyps))).totals.wer
        res["loss"] = res.get("judge_wer", res.get("rm_wer", res.get("dur_ratio", 0.0)))
        return res


# ----------------------------------------------------------------------------------------------- GRPO (+ DiffRO)
class TTSGRPOTask(_TTSRLBase, GRPOTask):
    def __init__(self, cfg: TTSRLConfig):
        cfg = self._init_common(cfg)
        self.cfg = cfg
        GRPOTask.__init__(self, cfg.grpo, cfg.step, cfg.rewards, seed=cfg.train.seed)
        self.combined = cfg.method == "grpo_diffro"
        self._logits: torch.Tensor | None = None  # the policy's teacher-forced logits of this step (shared w/ DiffRO)
        self._ref: tuple[int, torch.Tensor] | None = None  # (id of the rollout, the reference's logits on it)

    def setup(self, model: TTSLM, device: torch.device) -> None:
        super().setup(model, device)
        self.models.to(device)
        if self.combined and self.cfg.diffro.needs_reference and self.ref_model is None:
            self.ref_model = copy.deepcopy(model).eval().requires_grad_(False)  # DiffRO's KL (grpo.beta = 0)

    def train_batches(self, epoch: int, rank: int, world_size: int):
        return GRPOTask.train_batches(self, epoch, rank, world_size)

    # --- GRPOTask hooks
    def prompt_batches(self, epoch: int, rank: int, world_size: int):
        return self._batches(epoch, rank, world_size)

    def encode_prompts(self, model: TTSLM, batch: dict):
        b = _to(batch, next(model.parameters()).device)
        return model.prompt(b["text_ids"], b["text_lens"], b["spk"])

    def policy_llm(self, model: TTSLM):
        return model.llm

    @property
    def eos_id(self) -> int:
        return self.cfg.model.speech_vocab_size  # local ids: speech 0..Vs-1, eos Vs (TTSLM)

    def sample(self, policy: TTSLM, embeds, lens, batch) -> Rollout:
        g, s = self.grpo, self.cfg.sampling
        room = policy.config.llm.max_seq_len - int(lens.max())
        scfg = replace(s, temperature=g.temperature, top_k=g.top_k, top_p=g.top_p,
                       max_new_tokens=max(1, min(g.max_new_tokens, s.max_new_tokens, room)))
        out = policy.generate_from_prompt(embeds, lens, batch["text_lens"], scfg, g.num_generations, self.generator)
        mask = torch.arange(out.tokens.shape[1], device=out.tokens.device)[None] < out.lengths[:, None]
        # 'truncated' = the model did not choose to stop (budget, text-length bound or loop guard forced the eos)
        return Rollout(out.tokens, out.lengths, out.logprobs.float(), mask, ~out.finished, g.num_generations)

    def completion_logprobs(self, model: TTSLM, embeds, lens, rollout: Rollout, with_entropy: bool = False):
        N = rollout.tokens.shape[0]
        G = N // embeds.shape[0]
        speech, speech_lens = strip_eos(rollout.tokens, rollout.lengths, self.eos_id)
        h = model.states(embeds.repeat_interleave(G, 0), lens.repeat_interleave(G, 0), speech, speech_lens)
        logits = model.speech_logits(h)  # (N, L+1, Vs+1), fp32
        if model is self.ref_model:
            self._ref = (id(rollout), logits)
        elif torch.is_grad_enabled():
            self._logits = logits
        scaled = logits / self.grpo.temperature
        logp = gather_logprobs(scaled, rollout.tokens, rollout.lengths)
        ent = None
        if with_entropy:
            L = rollout.tokens.shape[1]
            past = torch.arange(L, device=logp.device)[None] >= rollout.lengths[:, None]
            ent = token_entropy(scaled[:, :L].detach()).masked_fill(past, 0.0)
        return logp, ent

    def reward_inputs(self, batch: dict, rollout: Rollout) -> list[RewardInput]:
        G = rollout.num_generations
        speech = _speech_lists(rollout.tokens, rollout.lengths, self.eos_id)
        waves = None
        if self.need_waves:
            spk = batch["spk"].repeat_interleave(G, 0) if batch["spk"] is not None else None
            waves = self.models.waves(speech, spk)
        out = []
        for i, ids in enumerate(speech):
            b = i // G
            meta: dict[str, Any] = {"utt": batch["utts"][b]}
            if waves is not None:
                sr = self.models.synth.sample_rate
                meta.update(waveform=waves[i], sr=sr, duration=len(waves[i]) / sr)
                if batch["spk"] is not None:
                    meta["ref_spk_embed"] = batch["spk"][b].numpy()
            out.append(RewardInput(ref_text=batch["texts"][b], hyp_tokens=ids.tolist(), group_index=b, meta=meta))
        return out

    def extra_loss(self, model: TTSLM, batch: dict, cache: dict) -> tuple[torch.Tensor, dict] | None:
        if not self.combined:
            return None
        r, dev = cache["rollout"], self.device
        b = _to(batch, dev)
        speech, speech_lens = strip_eos(r.tokens, r.lengths, self.eos_id)
        ref_logits = None
        if self.cfg.diffro.needs_reference and self._ref is not None and self._ref[0] == id(r):
            ref_logits = self._ref[1]
        n_speech = b["speech_lens"].tolist() if "speech_lens" in b else None
        attrs = self._diffro_attributes(b, n_speech)
        loss, st = diffro_on_rollouts(model, self.models.rm, b["text_ids"], b["text_lens"], speech, speech_lens,
                                      b["rm_ids"], b["rm_lens"], cache["adv"], cfg=self.cfg.diffro,
                                      ref_policy=self.ref_model, spk_embed=b["spk"], attributes=attrs,
                                      generator=self.generator, logits=self._logits, ref_logits=ref_logits)
        self._logits = None
        return loss, {f"diffro_{k}": v for k, v in st.items()}


# ----------------------------------------------------------------------------------------------- DiffRO
class TTSDiffROTask(_TTSRLBase, Task):
    ddp_find_unused_parameters = True  # DDP: the DiffRO loss may leave parts of the LM without gradient

    def __init__(self, cfg: TTSRLConfig):
        self.cfg = self._init_common(cfg)
        self.ref_model: TTSLM | None = None
        self.generator: torch.Generator | None = None

    def setup(self, model: TTSLM, device: torch.device) -> None:
        self.device = device
        self.models.to(device)
        # per rank (DDP): each rank's Gumbel noise and samples differ, as GRPOTask's rollouts do
        self.generator = torch.Generator(device=device).manual_seed(self.cfg.train.seed + 7919
                                                                    + 1000003 * dist_lib.rank())
        if self.cfg.diffro.needs_reference:
            self.ref_model = copy.deepcopy(model).eval().requires_grad_(False)
            logger.info("DiffRO: frozen reference = the initial weights (beta %g)", self.cfg.diffro.beta)

    def train_batches(self, epoch: int, rank: int, world_size: int):
        return self._batches(epoch, rank, world_size)

    def train_step(self, model: TTSLM, batch: dict, step: int):
        c, b = self.cfg, _to(batch, self.device)
        speech, speech_lens = b.get("speech"), b.get("speech_lens")
        if c.diffro.sequences == "sample":  # no-grad sampling on the bare module (FSDP: with full parameters)
            with fsdp_lib.full_params(unwrap(model)):
                speech, speech_lens = diffro_sequences(c.diffro, unwrap(model), b["text_ids"], b["text_lens"], speech,
                                                       speech_lens, b["spk"], c.sampling, self.generator)
        n_speech = b["speech_lens"].tolist() if "speech_lens" in b else None
        # Through the DDP/FSDP wrapper's forward, so that the gradients are synchronised (distributed.forward_through).
        loss, st = dist_lib.forward_through(model, lambda m: diffro_loss(
            m, self.models.rm, b["text_ids"], b["text_lens"], speech, speech_lens, b["rm_ids"], b["rm_lens"],
            cfg=c.diffro, ref_policy=self.ref_model, spk_embed=b["spk"],
            attributes=self._diffro_attributes(b, n_speech), generator=self.generator))
        st.pop("loss", None)
        return loss, st

    def on_step_end(self, model, step: int, stats: dict[str, float]) -> bool | None:
        import math

        if not math.isfinite(stats.get("loss", 0.0)):
            logger.error("step %d: DiffRO loss is %s: stopping", step, stats.get("loss"))
            return True
        return None

    def extra_state(self) -> dict[str, Any]:
        return {"rng": self.generator.get_state()} if self.generator is not None else {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if "rng" in state and self.generator is not None:
            self.generator.set_state(state["rng"])


def make_tts_rl_task(cfg: TTSRLConfig) -> Task:
    return TTSDiffROTask(cfg) if cfg.method == "diffro" else TTSGRPOTask(cfg)
