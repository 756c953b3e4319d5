"""What makes the three TTS training stages: configs, data, Tasks on the shared trainer, and model loading.

    speech tokenizer   fbank + transcript (CTC through the quantiser)   -> exp/tokenizer_<tag>/   (tts.sh stage 4)
    text-to-token LM   text ids + speaker embedding -> speech tokens      -> exp/tts_lm_<tag>/      (stage 7)
    token-to-mel       speech tokens + speaker embedding -> log-mel       -> exp/token2mel_<tag>/   (stage 8)

Each stage config is ``data`` + ``model`` + ``train`` (``python -m audiorl.bin.tts_<stage>_train --help``); the
task fills what the data decides (text vocabulary, codebook size) into ``model`` so that ``exp/<x>/config.yaml``
alone rebuilds the trained model (``load_speech_tokenizer``, ``load_tts_lm``, ``load_token2mel``).
``train.max_frames`` (length-bucketed batches) counts padded fbank frames for the tokenizer, padded text + speech
token positions for the LM and padded mel frames (100 Hz) for token-to-mel.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace

import numpy as np
import torch

from audiorl.config import load_config, option
from audiorl.data.kaldi import DataDirError
from audiorl.data.sampler import LengthBucketSampler, map_batches
from audiorl.data.tokenizer import same_tokenizer
from audiorl.log import get_logger
from audiorl.models.hf_init import load_pretrained_llm, pretrained_llm_config, pretrained_tokenizer
from audiorl.models.speech_tokenizer import SpeechTokenizer, SpeechTokenizerConfig
from audiorl.models.token2mel import SILENCE, Token2Mel, Token2MelConfig, code_mel_means
from audiorl.models.tts_lm import TTSLM, TTSLMConfig
from audiorl.models.vocoder import MelConfig
from audiorl.tasks.tts_data import (LoadedExp, MelTargets, TextTokens, check_coverage, check_vocab_sizes,
                                    load_experiment, mel_stats, pad_int, pad_mels, read_embed_table, read_texts,
                                    read_token_table)
from audiorl.train.config import TrainConfig
from audiorl.train.trainer import Task

logger = get_logger(__name__)

TOKENS_FIX = ("write it with tts.sh stage 5 (python -m audiorl.bin.tts_dump_tokens), or point the recipe's --token_dir "
              "at precomputed tokens of this set")
SPK_FIX = "compute it with tts.sh stage 6 (python -m audiorl.bin.tts_spk_embed)"


# =============================================================================================== speech tokenizer
@dataclass
class SpeechTokenizerDataConfig:
    """Features and transcripts of the tokenizer's ASR training (no global CMVN: the encoder normalises each
    utterance, so the token dump reads feats.scp as it is)."""

    train_dir: str = option("dump/fbank/train", "Data dir with feats.scp, utt2num_frames and text for training.")
    valid_dir: str = option("dump/fbank/dev", "Data dir for the validation loss and the CTC WER ('' = none).")
    token_model: str = option("data/token_list/bpe400/bpe.model", "SentencePiece model of the transcripts (CTC "
                                                                  "targets); '' with init.asr_exp: the ASR model's "
                                                                  "(its CTC head is then copied too).")
    max_utt_frames: int = option(3000, "Training utterances with more feature frames are skipped (counted).")
    max_utt_tokens: int = option(200, "Training utterances with more text tokens are skipped (counted).")
    valid_decode_utts: int = option(100, "Dev utterances decoded by CTC best path through the quantised tokens at each "
                                         "validation (valid/wer: do the tokens keep the words?); 0 = loss only.")


@dataclass
class SpeechTokenizerInitConfig:
    """Start the tokenizer from a trained ASR encoder (CosyVoice's S3 tokenizer: an ASR encoder with a quantiser
    inserted). Measured on synth_en: from scratch, 1100 CPU steps left the tokens' CTC WER at 84%."""

    asr_exp: str = option("", "ASR SFT experiment dir (audiorl.bin.asr_train) to copy the encoder from: its shape "
                              "replaces model.encoder's (model.encoder.dropout/specaug are kept), its blocks go below "
                              "(first model.quantize_after) and above the quantiser, its global CMVN goes into the "
                              "model (encoder.input_norm=global). Its features must be the tokenizer's (same fbank "
                              "config). '' = train from scratch.")
    asr_dir: str = option("", "The ASR recipe dir that asr_exp's config.yaml paths (tokenizer, CMVN) refer to; '' = "
                              "two levels above asr_exp (<asr_dir>/exp/<name>).")
    freeze_pre: bool = option(False, "Keep the copied subsampling and blocks below the quantiser fixed (train only the "
                                     "quantiser and what is above it; about half the backward cost).")


@dataclass
class SpeechTokenizerTrainConfig:
    """Supervised semantic speech tokenizer: ASR encoder (CTC) with an FSQ/VQ bottleneck inside."""

    data: SpeechTokenizerDataConfig = option(default_factory=SpeechTokenizerDataConfig, help="Data.")
    model: SpeechTokenizerConfig = option(default_factory=SpeechTokenizerConfig, help="Encoder + quantiser.")
    init: SpeechTokenizerInitConfig = option(default_factory=SpeechTokenizerInitConfig, help="Initialisation from "
                                             "an ASR encoder.")
    train: TrainConfig = option(default_factory=lambda: TrainConfig(max_steps=1000), help="The training loop.")


class SpeechTokenizerTask(Task):
    """loss = CTC(transcript | blocks after the quantiser) + the quantiser's aux loss (VQ commitment; 0 for FSQ)."""

    def __init__(self, cfg: SpeechTokenizerTrainConfig):
        from audiorl.tasks.asr import ASRTokens, FeatsData

        self._asr = None
        if cfg.init.asr_exp:
            cfg = self._resolve_asr_init(cfg)
        elif cfg.model.encoder.input_norm != "utterance":  # 'global' needs stats, which only init.asr_exp brings
            raise ValueError(f"model.encoder.input_norm='{cfg.model.encoder.input_norm}' for the speech tokenizer: "
                             f"tokens are dumped from feats.scp without global CMVN (tts.sh stage 5), so the model "
                             f"must normalise: use 'utterance' (or init.asr_exp, which sets 'global' with the ASR "
                             f"model's stats)")
        if not cfg.data.token_model:
            raise ValueError("data.token_model is empty: give the CTC targets' SentencePiece model (or init.asr_exp, "
                             "whose text units are then used)")
        self.tokens = ASRTokens(cfg.data.token_model)  # text ids < text_vocab_size; the special ids are unused
        V = self.tokens.text_vocab_size
        if cfg.model.text_vocab_size not in (0, V):
            raise ValueError(f"model.text_vocab_size={cfg.model.text_vocab_size} but {cfg.data.token_model} has {V} "
                             f"pieces: set it to 0")
        self.cfg = replace(cfg, model=replace(cfg.model, text_vocab_size=V))
        d = self.cfg.data
        self.train_data = FeatsData(d.train_dir, self.tokens, "", d.max_utt_frames, d.max_utt_tokens)
        self.valid_data = FeatsData(d.valid_dir, self.tokens) if d.valid_dir else None
        self._sampler: LengthBucketSampler | None = None
        logger.info("speech tokenizer: codebook %d; train %d utterances (%.2f h)", self.cfg.model.codebook_size,
                    len(self.train_data.frames), sum(self.train_data.frames.values()) / 360000)

    def _resolve_asr_init(self, cfg: SpeechTokenizerTrainConfig) -> SpeechTokenizerTrainConfig:
        """model.encoder <- the ASR encoder's shape (+ input_norm global); data.token_model '' <- the ASR's."""
        from audiorl.data.features import load_cmvn
        from audiorl.tasks.asr import load_asr_model

        i = cfg.init
        root = i.asr_dir or os.path.dirname(os.path.dirname(os.path.normpath(i.asr_exp))) or "."
        model, acfg, _, weights = load_asr_model(i.asr_exp, base_dir=root)
        e, mine = acfg.model.encoder, cfg.model.encoder
        if acfg.data.cmvn:
            norm, stats = "global", load_cmvn(acfg.data.cmvn)
        elif e.input_norm == "utterance":
            norm, stats = "utterance", None
        else:
            raise ValueError(f"{i.asr_exp}: its encoder saw unnormalised features (input_norm none, no data.cmvn); "
                             f"the speech tokenizer needs a normalised input")
        enc = replace(e, ctc_vocab_size=0, input_norm=norm, dropout=mine.dropout, specaug=mine.specaug)
        if not 1 <= cfg.model.quantize_after < enc.n_layers:
            raise ValueError(f"model.quantize_after={cfg.model.quantize_after} must be in [1, {enc.n_layers}) (the "
                             f"ASR encoder of {i.asr_exp} has {enc.n_layers} blocks)")
        asr_units = acfg.data.token_model
        token_model = cfg.data.token_model or asr_units
        same_units = same_tokenizer(token_model, asr_units) and model.encoder.ctc_head is not None
        self._asr = (model.encoder, stats, same_units)
        logger.info("speech tokenizer: starting from the ASR encoder of %s (%s; %d blocks, quantiser after %d; CMVN "
                    "%s; CTC head %s)", i.asr_exp, weights, enc.n_layers, cfg.model.quantize_after, norm,
                    "copied" if same_units else "new (other text units)")
        return replace(cfg, data=replace(cfg.data, token_model=token_model),
                       model=replace(cfg.model, encoder=enc, text_vocab_size=0))

    def build_model(self) -> SpeechTokenizer:
        model = SpeechTokenizer(self.cfg.model)
        if self._asr is not None:  # a resumed run then loads its own checkpoint over this
            enc, stats, same_units = self._asr
            copied = model.init_from_encoder(enc, copy_ctc_head=same_units)
            if stats is not None:
                model.encoder.set_cmvn(*stats)
            logger.info("speech tokenizer: %d tensors copied from the ASR encoder", len(copied))
            if self.cfg.init.freeze_pre:
                for p in model.pre_quantizer_parameters():
                    p.requires_grad_(False)
        return model

    def train_batches(self, epoch: int, rank: int, world_size: int):
        self._sampler = _sampler(self._sampler, self.train_data.items(), self.cfg.train, rank, world_size)
        return map_batches(self._sampler.for_epoch(epoch), self.train_data.collate)

    def train_step(self, model, batch: dict, step: int):
        out = model(batch["feats"], batch["feat_lens"], batch["target_ids"], batch["target_lens"])
        return out["loss"], {"ctc": float(out["ctc_loss"]), "aux": float(out["aux_loss"]),
                             "codes_used": float(out["used"]), "code_ppl": float(out["perplexity"])}

    def valid(self, model) -> dict[str, float] | None:
        if self.valid_data is None:
            return None
        from audiorl.eval.wer import score

        device = next(model.parameters()).device
        tot = {"loss": 0.0, "ctc": 0.0, "n": 0}
        hist = torch.zeros(model.codebook_size, dtype=torch.long)
        hyps: dict[str, str] = {}
        n_dec = self.cfg.data.valid_decode_utts
        decode = set(sorted(self.valid_data.utt_ids())[:n_dec])
        for utts in self.valid_data.batches(max(self.cfg.train.max_frames, 4000), self.cfg.train.batch_size):
            b = self.valid_data.collate(utts)
            out = model(b["feats"].to(device), b["feat_lens"].to(device), b["target_ids"].to(device),
                        b["target_lens"].to(device))
            n = len(utts)
            tot["loss"] += float(out["loss"]) * n
            tot["ctc"] += float(out["ctc_loss"]) * n
            tot["n"] += n
            ids, lens = model.tokenize(b["feats"].to(device), b["feat_lens"].to(device))
            for row, k in zip(ids.cpu(), lens.cpu()):
                hist += torch.bincount(row[: int(k)], minlength=model.codebook_size)
            if decode & set(utts):
                for u, seq in zip(utts, model.ctc_greedy(out["logp"], out["lens"])):
                    if u in decode:
                        hyps[u] = self.tokens.decode(seq)
        p = hist.double() / hist.sum().clamp(min=1)
        res = {"loss": tot["loss"] / max(tot["n"], 1), "ctc": tot["ctc"] / max(tot["n"], 1),
               "codes_used": float((hist > 0).sum()),
               "code_ppl": float(torch.exp(-(p * p.clamp(min=1e-12).log()).sum()))}
        if hyps:
            res["wer"] = score({u: self.valid_data.text[u] for u in hyps}, hyps).totals.wer
        return res


def load_speech_tokenizer(exp_dir: str, checkpoint: str = "", device="cpu") -> LoadedExp:
    return load_experiment(exp_dir, SpeechTokenizerTrainConfig, lambda c: SpeechTokenizer(c.model), checkpoint, device)


# =============================================================================================== shared TTS data
@dataclass
class TTSDataConfig:
    """A Kaldi data dir + its speech-token scp + its speaker-embedding scp, for training and validation."""

    train_dir: str = option("data/train", "Training data dir (text, utt2spk; wav.scp for token-to-mel).")
    train_tokens: str = option("dump/tokens/train/tokens.scp", "Speech tokens of train_dir (ours from tts.sh stage 5, "
                                                               "or a user-given scp of precomputed tokens).")
    train_spk_embed: str = option("dump/spk_embed/train/spk_embed.scp", "Per-utterance speaker embeddings of "
                                                                        "train_dir (tts.sh stage 6); unused when "
                                                                        "model.spk_embed_dim = 0.")
    valid_dir: str = option("data/dev", "Validation data dir ('' = no validation).")
    valid_tokens: str = option("dump/tokens/dev/tokens.scp", "Speech tokens of valid_dir.")
    valid_spk_embed: str = option("dump/spk_embed/dev/spk_embed.scp", "Speaker embeddings of valid_dir.")
    tokenizer_exp: str = option("", "Speech-tokenizer experiment that made the tokens: its config gives the codebook "
                                    "size. '' = tokens from elsewhere: set codebook_size.")
    codebook_size: int = option(0, "Speech-token codebook size (ids in [0, codebook_size)); 0 = from tokenizer_exp. "
                                   "Required for a user-given token scp.")
    allow_missing: bool = option(False, "Skip (and count) utterances with no speech tokens or no speaker embedding "
                                        "instead of stopping with an error.")
    max_utt_tokens: int = option(750, "Training utterances with more speech tokens are skipped (counted); 750 = 30 s "
                                      "at 25 Hz.")

    def resolve_codebook(self) -> int:
        size = 0
        if self.tokenizer_exp:
            cfg_path = os.path.join(self.tokenizer_exp, "config.yaml")
            if not os.path.isfile(cfg_path):
                raise FileNotFoundError(f"{cfg_path}: no such file; train the speech tokenizer (tts.sh stage 4) or "
                                        f"set data.tokenizer_exp '' and data.codebook_size")
            size = load_config(SpeechTokenizerTrainConfig, cfg_path).model.codebook_size
        if self.codebook_size and size and self.codebook_size != size:
            raise ValueError(f"data.codebook_size={self.codebook_size} but {self.tokenizer_exp} has a codebook of "
                             f"{size}: set one of them only")
        size = size or self.codebook_size
        if size <= 0:
            raise ValueError("the speech-token codebook size is unknown: set data.tokenizer_exp (our tokenizer) or "
                             "data.codebook_size (precomputed tokens)")
        return size


class _Tables:
    """Utterances of a data dir with speech tokens (all read into memory: ~100 bytes/s) and speaker embeddings."""

    def __init__(self, data_dir: str, tokens_scp: str, spk_scp: str, codebook: int, spk_dim: int,
                 allow_missing: bool, utts: list[str]):
        self.tokens = read_token_table(tokens_scp, codebook, TOKENS_FIX)
        self.utts = check_coverage(utts, self.tokens, tokens_scp, "speech tokens", TOKENS_FIX, allow_missing, data_dir)
        self.spk: dict[str, np.ndarray] = {}
        if spk_dim:
            self.spk = read_embed_table(spk_scp, spk_dim, SPK_FIX)
            self.utts = check_coverage(self.utts, self.spk, spk_scp, "speaker embedding", SPK_FIX, allow_missing,
                                       data_dir)
        self.spk_dim = spk_dim

    def spk_batch(self, utts: list[str]) -> torch.Tensor | None:
        if not self.spk_dim:
            return None
        return torch.from_numpy(np.stack([self.spk[u] for u in utts]))  # (B, S)


def _sampler(old, items, t: TrainConfig, rank: int, world_size: int) -> LengthBucketSampler:
    if old is not None and (old.rank, old.world_size) == (rank, world_size):
        return old
    s = LengthBucketSampler(items, max_frames=t.max_frames, batch_size=t.batch_size, seed=t.seed, rank=rank,
                            world_size=world_size)
    logger.info("%d batches per epoch per rank (padding efficiency %.2f)", len(s), s.padding_efficiency())
    return s


def _skip_long(items: dict[str, int], limit: int, where: str) -> dict[str, int]:
    kept = {u: n for u, n in items.items() if not limit or n <= limit}
    if len(kept) < len(items):
        logger.warning("%s: skipped %d of %d utterances with more than %d speech tokens", where, len(items) - len(kept),
                       len(items), limit)
    if not kept:
        raise DataDirError(f"{where}: no usable utterances (all longer than {limit} speech tokens?)")
    return kept


# =============================================================================================== text-to-token LM
@dataclass
class TTSLMDataConfig(TTSDataConfig):
    token_model: str = option("data/token_list/bpe400/bpe.model", "Text tokenizer: the SentencePiece model of the "
                                                                  "input text (tts.sh stage 3), or a Hugging Face "
                                                                  "model dir / tokenizer.json (model.init_llm sets "
                                                                  "it).")


@dataclass
class TTSLMTrainConfig:
    """Text-to-speech-token LM SFT: [spk][<tts>][text][<sos>] -> speech tokens -> <eos> (CE on speech + eos)."""

    data: TTSLMDataConfig = option(default_factory=TTSLMDataConfig, help="Text, tokens, speaker embeddings.")
    model: TTSLMConfig = option(default_factory=TTSLMConfig, help="The LM (Qwen2-style decoder).")
    train: TrainConfig = option(default_factory=lambda: TrainConfig(max_steps=1000), help="The training loop.")


class TTSLMData(_Tables):
    def __init__(self, data_dir: str, tokens_scp: str, spk_scp: str, text: TextTokens, model: TTSLMConfig,
                 allow_missing: bool, max_tokens: int = 0):
        texts = read_texts(data_dir)
        super().__init__(data_dir, tokens_scp, spk_scp, model.speech_vocab_size, model.spk_embed_dim, allow_missing,
                         list(texts))
        self.text_ids = {u: text.encode(texts[u]) for u in self.utts}
        room = model.llm.max_seq_len - 4  # spk, <tts>, <sos>, <eos>
        too_long = [u for u in self.utts if len(self.text_ids[u]) + len(self.tokens[u]) > room]
        if too_long:
            logger.warning("%s: skipped %d utterances whose text + speech tokens exceed llm.max_seq_len=%d", data_dir,
                           len(too_long), model.llm.max_seq_len)
        lens = {u: len(self.text_ids[u]) + len(self.tokens[u]) for u in self.utts if u not in set(too_long)}
        self.lengths = _skip_long(lens, max_tokens, data_dir) if max_tokens else lens

    def items(self) -> list[tuple[str, int]]:
        return list(self.lengths.items())

    def collate(self, utts: list[str]) -> dict:
        """text_ids (B, Lt) / speech_ids (B, Ls) right-padded with 0, their lengths (B,), spk (B, S) or None."""
        text, text_lens = pad_int([np.asarray(self.text_ids[u]) for u in utts])
        speech, speech_lens = pad_int([self.tokens[u] for u in utts])
        return dict(utts=list(utts), text_ids=text, text_lens=text_lens, speech_ids=speech, speech_lens=speech_lens,
                    spk=self.spk_batch(utts))


class TTSLMTask(Task):
    def __init__(self, cfg: TTSLMTrainConfig):
        m = cfg.model
        cfg = replace(cfg, data=replace(cfg.data, token_model=pretrained_tokenizer(m.init_llm, cfg.data.token_model)))
        d = cfg.data
        self.text = TextTokens(d.token_model)
        Vs = d.resolve_codebook()
        check_vocab_sizes(m, text_vocab_size=self.text.vocab_size, speech_vocab_size=Vs)
        m = replace(m, text_vocab_size=self.text.vocab_size, speech_vocab_size=Vs)
        if m.init_llm:  # the architecture of the pretrained model, recorded in config.yaml
            m = replace(m, llm=pretrained_llm_config(m.init_llm, m.vocab_size, m.llm.max_seq_len))
        self.cfg = replace(cfg, model=m)
        self.train_data = TTSLMData(d.train_dir, d.train_tokens, d.train_spk_embed, self.text, m, d.allow_missing,
                                    d.max_utt_tokens)
        self.valid_data = TTSLMData(d.valid_dir, d.valid_tokens, d.valid_spk_embed, self.text, m,
                                    d.allow_missing) if d.valid_dir else None
        self._sampler = None
        logger.info("TTS LM: text vocab %d, speech codebook %d; train %d utterances (%d speech tokens)",
                    self.text.vocab_size, Vs, len(self.train_data.lengths),
                    sum(len(self.train_data.tokens[u]) for u in self.train_data.lengths))

    def build_model(self) -> TTSLM:
        m = self.cfg.model
        return TTSLM(m, llm=load_pretrained_llm(m.init_llm, m.llm, m.text_vocab_size) if m.init_llm else None)

    def train_batches(self, epoch: int, rank: int, world_size: int):
        self._sampler = _sampler(self._sampler, self.train_data.items(), self.cfg.train, rank, world_size)
        return map_batches(self._sampler.for_epoch(epoch), self.train_data.collate)

    @staticmethod
    def _forward(model, b: dict):
        return model(b["text_ids"], b["text_lens"], b["speech_ids"], b["speech_lens"], b["spk"])

    def train_step(self, model, batch: dict, step: int):
        out = self._forward(model, batch)
        return out["loss"], {"acc": float(out["n_correct"].float() / out["n_tokens"].clamp(min=1))}

    def valid(self, model) -> dict[str, float] | None:
        if self.valid_data is None:
            return None
        device = next(model.parameters()).device
        loss = correct = n = 0.0
        batches = LengthBucketSampler(self.valid_data.items(), max_frames=max(self.cfg.train.max_frames, 2000),
                                      batch_size=self.cfg.train.batch_size, shuffle=False).for_epoch(0)
        for utts in batches:
            b = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in self.valid_data.collate(utts).items()}
            out = self._forward(model, b)
            k = float(out["n_tokens"])
            loss += float(out["loss"]) * k
            correct += float(out["n_correct"])
            n += k
        return {"loss": loss / max(n, 1), "acc": correct / max(n, 1), "ppl": math.exp(min(loss / max(n, 1), 30))}


def load_tts_lm(exp_dir: str, checkpoint: str = "", device="cpu") -> LoadedExp:
    return load_experiment(exp_dir, TTSLMTrainConfig, lambda c: TTSLM(c.model), checkpoint, device)


# =============================================================================================== token-to-mel
@dataclass
class Token2MelDataConfig(TTSDataConfig):
    mel_stats_utts: int = option(500, "Training utterances (the first N by id) whose mels give the per-bin mean/std "
                                      "the model normalises with (stored in its weights).")
    valid_sample_utts: int = option(4, "Dev utterances synthesised (ODE sampling) at each validation: valid/mel_l1 is "
                                       "their mean |log-mel - real log-mel|; 0 = loss only.")


@dataclass
class Token2MelTrainConfig:
    """Token-to-mel training: conditional flow matching (or L1 regression) of log-mels from speech tokens + speaker."""

    data: Token2MelDataConfig = option(default_factory=Token2MelDataConfig, help="Audio, tokens, speaker embeddings.")
    mel: MelConfig = option(default_factory=MelConfig, help="Mel analysis (= what the vocoder inverts).")
    model: Token2MelConfig = option(default_factory=Token2MelConfig, help="The token-to-mel model.")
    train: TrainConfig = option(default_factory=lambda: TrainConfig(max_steps=1000), help="The training loop.")

    def __post_init__(self):
        if self.mel.n_mels != self.model.n_mels:
            raise ValueError(f"mel.n_mels={self.mel.n_mels} != model.n_mels={self.model.n_mels}: set them equal")


class Token2MelData(_Tables):
    def __init__(self, data_dir: str, tokens_scp: str, spk_scp: str, cfg: Token2MelTrainConfig, allow_missing: bool,
                 max_tokens: int = 0):
        self.mels = MelTargets(data_dir, cfg.mel)
        utts = list(self.mels.audio)
        super().__init__(data_dir, tokens_scp, spk_scp, cfg.model.vocab_size, cfg.model.spk_embed_dim, allow_missing,
                         utts)
        self.dir, self.U = data_dir, cfg.model.upsample
        lens = _skip_long({u: len(self.tokens[u]) for u in self.utts}, max_tokens, data_dir) if max_tokens else \
            {u: len(self.tokens[u]) for u in self.utts}
        empty = [u for u, n in lens.items() if n == 0]
        if empty:
            logger.warning("%s: skipped %d utterances with no speech tokens (e.g. '%s')", data_dir, len(empty), empty[0])
        self.lengths = {u: n * self.U for u, n in lens.items() if n > 0}  # mel frames

    def items(self) -> list[tuple[str, int]]:
        return list(self.lengths.items())

    def collate(self, utts: list[str]) -> dict:
        """tokens (B, N), token_lens (B,), mel (B, T, M) log-mel padded with silence, mel_lens (B,), spk (B, S)."""
        mels = [self.mels.load(u) for u in utts]
        for u, m in zip(utts, mels):
            need = len(self.tokens[u]) * self.U
            if need > 1.1 * m.shape[0] + 8:
                raise DataDirError(f"{self.dir}: '{u}' has {len(self.tokens[u])} speech tokens = {need} mel frames at "
                                   f"model.upsample={self.U}, but its recording has only {m.shape[0]}: the tokens are "
                                   f"not of this recording, or model.upsample does not match their rate")
        mel, mel_lens = pad_mels(mels, SILENCE)
        tokens, token_lens = pad_int([self.tokens[u] for u in utts])
        return dict(utts=list(utts), tokens=tokens, token_lens=token_lens, mel=mel, mel_lens=mel_lens,
                    spk=self.spk_batch(utts))


class Token2MelTask(Task):
    def __init__(self, cfg: Token2MelTrainConfig):
        d = cfg.data
        V = d.resolve_codebook()
        if cfg.model.vocab_size not in (0, V):
            raise ValueError(f"model.vocab_size={cfg.model.vocab_size} but the speech-token codebook has {V}: set it to 0")
        self.cfg = replace(cfg, model=replace(cfg.model, vocab_size=V))
        self.train_data = Token2MelData(d.train_dir, d.train_tokens, d.train_spk_embed, self.cfg, d.allow_missing,
                                        d.max_utt_tokens)
        self.valid_data = Token2MelData(d.valid_dir, d.valid_tokens, d.valid_spk_embed, self.cfg,
                                        d.allow_missing) if d.valid_dir else None
        self._sampler = None
        stats_utts = sorted(self.train_data.lengths)[: max(1, d.mel_stats_utts)]
        mels = [self.train_data.mels.load(u) for u in stats_utts]
        self.mel_mean, self.mel_std = mel_stats(mels)
        m = self.cfg.model
        self.code_mel = code_mel_means(((self.train_data.tokens[u], x) for u, x in zip(stats_utts, mels)), V,
                                       m.upsample, m.mel_offset, self.mel_mean, self.mel_std) if m.code_mel else None
        logger.info("token-to-mel (%s): codebook %d; train %d utterances (%.2f h of mel); mel stats from %d utterances",
                    self.cfg.model.mode, V, len(self.train_data.lengths),
                    sum(self.train_data.lengths.values()) / 360000, len(stats_utts))

    def build_model(self) -> Token2Mel:
        m = Token2Mel(self.cfg.model)
        m.set_mel_stats(self.mel_mean, self.mel_std)
        if self.code_mel is not None:
            m.set_code_mel(self.code_mel)
        return m

    def train_batches(self, epoch: int, rank: int, world_size: int):
        self._sampler = _sampler(self._sampler, self.train_data.items(), self.cfg.train, rank, world_size)
        return map_batches(self._sampler.for_epoch(epoch), self.train_data.collate)

    @staticmethod
    def _forward(model, b: dict):
        return model(b["tokens"], b["token_lens"], b["mel"], b["mel_lens"], b["spk"])

    def train_step(self, model, batch: dict, step: int):
        out = self._forward(model, batch)
        stats = {k: float(out[k].detach()) for k in ("fm", "prior") if k in out}
        return out["loss"], {"frames": float(out["n_frames"]), **stats}

    def valid(self, model) -> dict[str, float] | None:
        if self.valid_data is None:
            return None
        device = next(model.parameters()).device
        move = lambda b: {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in b.items()}  # noqa: E731
        loss = prior = n = 0.0
        batches = LengthBucketSampler(self.valid_data.items(), max_frames=max(self.cfg.train.max_frames, 4000),
                                      batch_size=self.cfg.train.batch_size, shuffle=False).for_epoch(0)
        # A fixed seed for the CFM noise and times: validations at different steps see the same draws.
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(0)
            for utts in batches:
                out = self._forward(model, move(self.valid_data.collate(utts)))
                k = float(out["n_frames"])
                loss += float(out["loss"]) * k
                prior += float(out.get("prior", 0.0)) * k
                n += k
            res = {"loss": loss / max(n, 1)}
            if self.cfg.model.mode == "cfm":  # how far the content condition alone is from the mel (normalised MSE)
                res["prior"] = prior / max(n, 1)
            k = self.cfg.data.valid_sample_utts
            if k > 0:
                b = move(self.valid_data.collate(sorted(self.valid_data.lengths)[:k]))
                g = torch.Generator(device=device).manual_seed(0)
                mel, lens = model.sample(b["tokens"], b["token_lens"], b["spk"], generator=g)
                o = self.cfg.model.mel_offset  # synthesised frame j is real frame j + o
                T = torch.minimum(lens, b["mel_lens"] - o)  # (B,)
                l1 = lambda m: float(torch.stack([(m[i, : int(t)] - b["mel"][i, o: o + int(t)]).abs().mean()  # noqa: E731
                                                  for i, t in enumerate(T)]).mean())
                res["mel_l1"] = l1(mel)
                if self.cfg.model.mode == "cfm" and self.cfg.model.prior_weight > 0:  # the prior mel alone (t_start 1)
                    res["mel_l1_prior"] = l1(model.sample(b["tokens"], b["token_lens"], b["spk"], t_start=1.0)[0])
        return res


def load_token2mel(exp_dir: str, checkpoint: str = "", device="cpu") -> LoadedExp:
    return load_experiment(exp_dir, Token2MelTrainConfig, lambda c: Token2Mel(c.model), checkpoint, device)
