"""What makes ASR an ASR task: token layout, feature batches, the SFT Task and model loading for decoding.

Token layout of the LLM vocabulary (``ASRTokens``)::

    [0, V)      text ids (transcripts, CTC targets): sentencepiece pieces, or the ids of a pretrained LLM's
                tokenizer.json when ``model.init_llm`` is set (audiorl/models/hf_init.py)
    V           <eos>  (also the padding id of generated tensors)
    V + 1       <|transcribe|>  the task prompt placed after the audio embeddings

The stage config written to ``exp/<x>/config.yaml`` has these ids filled in, so decoding and RL rebuild
exactly the trained model from that file alone (plus the tokenizer it names).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from pathlib import Path

import kaldiio
import numpy as np
import torch

from audiorl.config import load_config, option
from audiorl.data.biasing import BiasingConfig, BiasingLists, lists_wanted
from audiorl.data.features import apply_cmvn, load_cmvn
from audiorl.data.kaldi import DataDirError, read_table
from audiorl.data.sampler import LengthBucketSampler, map_batches
from audiorl.data.tokenizer import load_tokenizer
from audiorl.log import get_logger
from audiorl.models.asr import ASRModel, ASRModelConfig
from audiorl.models.hf_init import load_pretrained_llm, pretrained_llm_config, pretrained_tokenizer
from audiorl.train import checkpoint as ckpt_lib
from audiorl.train.config import TrainConfig
from audiorl.train.trainer import Task

logger = get_logger(__name__)


# ----------------------------------------------------------------------------------------------- config
@dataclass
class ASRDataConfig:
    """Where the training data, features and tokenizer are."""

    train_dir: str = option("dump/fbank/train", "Data dir with feats.scp, utt2num_frames and text for training.")
    valid_dir: str = option("dump/fbank/dev", "Data dir for the validation loss (and a greedy-decoding WER).")
    token_model: str = option("data/token_list/bpe/bpe.model", "Text tokenizer of the transcripts: a SentencePiece "
                                                             ".model, or a Hugging Face model dir / tokenizer.json "
                                                             "(set to model.init_llm when that is given).")
    cmvn: str = option("", "Global CMVN stats (Kaldi format, e.g. dump/fbank/train/cmvn.ark) applied to the "
                           "features; '' = none (then keep model.encoder.input_norm=utterance).")
    max_utt_frames: int = option(3000, "Training utterances with more feature frames are skipped (the count is "
                                       "logged): they would dominate a batch's padding.")
    max_utt_tokens: int = option(200, "Training utterances with more text tokens are skipped (counted).")
    valid_decode_utts: int = option(100, "Dev utterances decoded greedily at each validation to log a WER "
                                         "(valid/wer); 0 = loss only.")
    biasing: BiasingConfig = option(default_factory=BiasingConfig, help="Contextual biasing: keyword lists in the "
                                    "prompt (audiorl/data/biasing.py). Recorded in config.yaml, so decoding and RL "
                                    "give the model lists the way it was trained.")


@dataclass
class ASRTrainConfig:
    """LLM-based ASR supervised fine-tuning (SFT) stage."""

    data: ASRDataConfig = option(default_factory=ASRDataConfig, help="Data and tokenizer.")
    model: ASRModelConfig = option(default_factory=ASRModelConfig, help="Encoder, adaptor, LLM.")
    train: TrainConfig = option(default_factory=lambda: TrainConfig(max_steps=1000), help="The training loop.")


# ----------------------------------------------------------------------------------------------- tokens
class ASRTokens:
    """Text ids + the two special ids (see the module docstring); ``sp`` is a sentencepiece ``Tokenizer`` or an
    ``HFTokenizer`` (same interface)."""

    def __init__(self, token_model: str):
        if not os.path.exists(token_model):
            raise FileNotFoundError(f"{token_model}: no tokenizer model; train it first (asr.sh stage 4) or set "
                                    f"data.token_model (or model.init_llm for a pretrained LLM's tokenizer)")
        self.sp = load_tokenizer(token_model)
        self.text_vocab_size = self.sp.vocab_size
        self.eos_id = self.text_vocab_size
        self.transcribe_id = self.text_vocab_size + 1
        self.vocab_size = self.text_vocab_size + 2

    def encode(self, text: str) -> list[int]:
        return self.sp.encode(text)

    def decode(self, ids) -> str:
        return self.sp.decode([int(i) for i in ids if 0 <= int(i) < self.text_vocab_size])

    def fill(self, cfg: ASRModelConfig) -> ASRModelConfig:
        """The model config with this layout's ids; an inconsistent explicit setting is an error."""
        want = dict(vocab_size=self.vocab_size, text_vocab_size=self.text_vocab_size, eos_id=self.eos_id,
                    pad_id=self.eos_id, prompt_ids=(self.transcribe_id,))
        if cfg.vocab_size not in (0, self.vocab_size):
            raise ValueError(f"model.vocab_size={cfg.vocab_size} but the tokenizer gives {self.vocab_size} "
                             f"(text {self.text_vocab_size} + 2 special ids): set it to 0")
        return replace(cfg, **want)


# ----------------------------------------------------------------------------------------------- data
class FeatsData:
    """Feature matrices (lazy, from feats.scp) with their transcripts as token ids."""

    def __init__(self, data_dir: str, tokens: ASRTokens, cmvn: str = "", max_frames: int = 0, max_tokens: int = 0,
                 need_text: bool = True):
        self.dir = data_dir
        scp = os.path.join(data_dir, "feats.scp")
        if not os.path.isfile(scp):
            raise DataDirError(f"{scp}: no such file; compute features first (asr.sh stage 2, utils/make_fbank.sh)")
        self.feats = kaldiio.load_scp(scp, max_cache_fd=16)
        n2f = os.path.join(data_dir, "utt2num_frames")
        if os.path.isfile(n2f):
            frames = {k: int(v) for k, v in read_table(n2f).items()}
        else:  # slower: read every matrix once
            frames = {k: int(self.feats[k].shape[0]) for k in self.feats}
        self.text = read_table(os.path.join(data_dir, "text"), allow_empty_value=True) if need_text else {}
        self.mean_std = load_cmvn(cmvn) if cmvn else None
        self.tokens = tokens
        self.biasing: BiasingLists | None = None  # set by use_biasing: collate then adds per-utterance prompts
        self.ids: dict[str, list[int]] = {}
        self.frames: dict[str, int] = {}
        skipped = {"no text": 0, "too many frames": 0, "too many tokens": 0}
        for utt in self.feats:
            if utt not in frames:
                raise DataDirError(f"{n2f}: no entry for '{utt}' of feats.scp; rerun utils/make_fbank.sh")
            if need_text and utt not in self.text:
                skipped["no text"] += 1
                continue
            ids = tokens.encode(self.text[utt]) if need_text else []
            if max_frames and frames[utt] > max_frames:
                skipped["too many frames"] += 1
                continue
            if max_tokens and len(ids) > max_tokens:
                skipped["too many tokens"] += 1
                continue
            self.ids[utt], self.frames[utt] = ids, frames[utt]
        if not self.frames:
            raise DataDirError(f"{data_dir}: no usable utterances (skipped: {skipped})")
        if any(skipped.values()):
            logger.warning("%s: skipped %s of %d utterances", data_dir,
                           ", ".join(f"{n} ({why})" for why, n in skipped.items() if n), len(self.feats))

    def use_biasing(self, cfg: BiasingConfig, keywords_file: str = "") -> BiasingLists:
        """Give every batch biasing-list prompts drawn from this dir's keywords table (or ``keywords_file``)."""
        t = self.tokens
        self.biasing = BiasingLists.for_data_dir(cfg, self.dir, t.encode, (t.transcribe_id,), t.eos_id, keywords_file)
        n = sum(1 for u in self.frames if self.biasing.keywords.get(u))
        logger.info("%s: biasing lists from %d keywords (%d of %d utterances have some), %d distractors at "
                    "evaluation", self.dir, len(self.biasing.pool), n, len(self.frames), cfg.eval_distractors)
        return self.biasing

    def utt_ids(self) -> list[str]:
        return list(self.frames)

    def items(self) -> list[tuple[str, int]]:
        return list(self.frames.items())

    def load(self, utt: str) -> np.ndarray:
        x = np.array(self.feats[utt], dtype=np.float32)  # a writable copy (kaldiio may hand out read-only views)
        if self.mean_std is not None:
            x = apply_cmvn(x, *self.mean_std)
        return x

    def collate(self, utts: list[str], epoch: int | None = None) -> dict:
        """Batch: feats (B, T, F) zero-padded, feat_lens (B,), target_ids (B, L) 0-padded, target_lens (B,); with
        biasing also prompt_ids (B, P), prompt_lens (B,) and bias_lists (training draws when ``epoch`` is given)."""
        mats = [self.load(u) for u in utts]
        T, F = max(m.shape[0] for m in mats), mats[0].shape[1]
        feats = torch.zeros(len(mats), T, F)
        for i, m in enumerate(mats):
            feats[i, : m.shape[0]] = torch.from_numpy(m)
        L = max([len(self.ids[u]) for u in utts] + [1])
        targets = torch.zeros(len(utts), L, dtype=torch.long)
        for i, u in enumerate(utts):
            targets[i, : len(self.ids[u])] = torch.tensor(self.ids[u], dtype=torch.long)
        b = dict(utts=list(utts), feats=feats, feat_lens=torch.tensor([m.shape[0] for m in mats]),
                 target_ids=targets, target_lens=torch.tensor([len(self.ids[u]) for u in utts]))
        if self.biasing is not None:
            b["prompt_ids"], b["prompt_lens"], b["bias_lists"] = self.biasing.batch(utts, epoch, self.text)
        return b

    def batches(self, max_frames: int, batch_size: int = 0) -> list[list[str]]:
        """Deterministic length-sorted batches for evaluation (no shuffling, one rank)."""
        return LengthBucketSampler(self.items(), max_frames=max_frames, batch_size=batch_size,
                                   shuffle=False).for_epoch(0).batches


# ----------------------------------------------------------------------------------------------- the task
class ASRTask(Task):
    """ASR SFT: loss = (1 - ctc_weight) CE(transcript + eos | audio, prompt) + ctc_weight CTC."""

    def __init__(self, cfg: ASRTrainConfig):
        m = cfg.model
        cfg = replace(cfg, data=replace(cfg.data, token_model=pretrained_tokenizer(m.init_llm, cfg.data.token_model)))
        self.tokens = ASRTokens(cfg.data.token_model)
        m = self.tokens.fill(m)
        if m.init_llm:  # the architecture of the pretrained model, recorded in config.yaml
            m = replace(m, llm=pretrained_llm_config(m.init_llm, m.vocab_size, m.llm.max_seq_len))
        self.cfg = replace(cfg, model=m)
        d = self.cfg.data
        self.train_data = FeatsData(d.train_dir, self.tokens, d.cmvn, d.max_utt_frames, d.max_utt_tokens)
        self.valid_data = FeatsData(d.valid_dir, self.tokens, d.cmvn) if d.valid_dir else None
        if d.biasing.enabled:
            self.train_data.use_biasing(d.biasing)
            if self.valid_data is not None:
                self.valid_data.use_biasing(d.biasing)
        self._sampler: LengthBucketSampler | None = None
        logger.info("train: %d utterances (%.2f h); valid: %s", len(self.train_data.frames),
                    sum(self.train_data.frames.values()) / 360000,
                    f"{len(self.valid_data.frames)} utterances" if self.valid_data else "none")

    def build_model(self) -> ASRModel:
        m = self.cfg.model
        if m.init_llm and (m.lora is not None or m.freeze_llm):
            logger.warning("model.init_llm with %s: the embedding matrix is frozen, so the new eos/<|transcribe|> "
                           "rows keep their mean init", "model.lora" if m.lora is not None else "model.freeze_llm")
        llm = load_pretrained_llm(m.init_llm, m.llm, m.text_vocab_size) if m.init_llm else None
        return ASRModel(m, llm=llm)

    def train_batches(self, epoch: int, rank: int, world_size: int):
        t = self.cfg.train
        if self._sampler is None or (self._sampler.rank, self._sampler.world_size) != (rank, world_size):
            self._sampler = LengthBucketSampler(self.train_data.items(), max_frames=t.max_frames,
                                                batch_size=t.batch_size, seed=t.seed, rank=rank,
                                                world_size=world_size)
            logger.info("%d batches per epoch per rank (padding efficiency %.2f)", len(self._sampler),
                        self._sampler.padding_efficiency())
        return map_batches(self._sampler.for_epoch(epoch), lambda utts: self.train_data.collate(utts, epoch))

    def train_step(self, model, batch: dict, step: int):
        out = model(batch["feats"], batch["feat_lens"], batch.get("prompt_ids"), batch["target_ids"],
                    batch["target_lens"], batch.get("prompt_lens"))
        acc = out["n_correct"].float() / out["n_tokens"].clamp(min=1)
        return out["loss"], {"ce": float(out["ce_loss"]), "ctc": float(out["ctc_loss"]), "acc": float(acc)}

    def valid(self, model) -> dict[str, float] | None:
        if self.valid_data is None:
            return None
        from audiorl.eval.wer import score

        tot = {"ce": 0.0, "ctc": 0.0, "loss": 0.0, "correct": 0.0, "tokens": 0.0}
        device = next(model.parameters()).device
        max_frames = max(self.cfg.train.max_frames, 4000)
        for utts in self.valid_data.batches(max_frames, self.cfg.train.batch_size):
            b = self.valid_data.collate(utts)
            out = model(b["feats"].to(device), b["feat_lens"].to(device), b.get("prompt_ids"),
                        b["target_ids"].to(device), b["target_lens"].to(device), b.get("prompt_lens"))
            n = float(out["n_tokens"])
            for k in ("ce", "ctc", "loss"):
                tot[k] += float(out[k if k == "loss" else f"{k}_loss"]) * n
            tot["correct"] += float(out["n_correct"])
            tot["tokens"] += n
        res = {k: tot[k] / max(tot["tokens"], 1) for k in ("loss", "ce", "ctc")}
        res["acc"] = tot["correct"] / max(tot["tokens"], 1)
        n_dec = self.cfg.data.valid_decode_utts
        if n_dec > 0:
            utts = sorted(self.valid_data.utt_ids())[:n_dec]
            hyps = decode_utts(model, self.valid_data, self.tokens, utts, device)
            res["wer"] = score({u: self.valid_data.text[u] for u in utts}, hyps).totals.wer
        return res


# ----------------------------------------------------------------------------------------------- decoding
# Decoding/sampling budget: a cap that ends looping hypotheses, not a length model. Fast read speech is ~3 words/s;
# with a small BPE (150 pieces: ~3 pieces/word) that is ~9 tokens/s, a character tokenizer ~15/s. A budget of
# 6 tokens/s truncated a third of the BPE-150 dev hypotheses (deletions); 20 covers characters with a margin.
DEFAULT_TOKENS_PER_SECOND = 20.0


def token_budget(frames: int, tokens_per_second: float = DEFAULT_TOKENS_PER_SECOND) -> int:
    """Max new tokens for audio of ``frames`` 10 ms frames: max(16, tokens_per_second x seconds)."""
    return max(16, math.ceil(tokens_per_second * frames / 100.0))


@torch.no_grad()
def decode_utts(model: ASRModel, data: FeatsData, tokens: ASRTokens, utts: list[str], device,
                beam_size: int = 1, max_new_tokens: int = 0, max_frames: int = 20000,
                length_penalty: float = 1.0, mode: str = "llm",
                tokens_per_second: float = DEFAULT_TOKENS_PER_SECOND) -> dict[str, str]:
    """Decode ``utts`` in length-sorted batches of at most ``max_frames`` padded frames; utt -> text.

    mode "llm": the LLM decoder, greedy (beam_size 1) or beam search; "ctc": best-path decoding of the
    encoder's CTC head (fast, no LLM; shows what the encoder alone has learnt)."""
    if mode not in ("llm", "ctc"):
        raise ValueError(f"decode mode {mode!r}: use 'llm' or 'ctc'")
    was_training = model.training
    model.eval()
    order = sorted(utts, key=lambda u: data.frames[u])
    hyps: dict[str, str] = {}
    i = 0
    while i < len(order):
        n = 1  # ascending lengths: the next item is the longest, so the padded size is its length x count
        while i + n < len(order) and data.frames[order[i + n]] * (n + 1) <= max_frames:
            n += 1
        chunk = order[i: i + n]
        i += n
        b = data.collate(chunk)
        feats, lens = b["feats"].to(device), b["feat_lens"].to(device)
        if mode == "ctc":
            enc, enc_lens = model.encoder(feats, lens)
            ids = model.encoder.ctc_greedy(enc, enc_lens)
        else:
            limit = max_new_tokens or token_budget(int(b["feat_lens"].max()), tokens_per_second)
            ids = model.transcribe(feats, lens, b.get("prompt_ids"), beam_size=beam_size, max_new_tokens=limit,
                                   length_penalty=length_penalty, prompt_lens=b.get("prompt_lens"))
        for u, seq in zip(chunk, ids):
            hyps[u] = tokens.decode(seq)
    model.train(was_training)
    return hyps




def _in_recipe_dir(path: str, base_dir: str, what: str, exp_dir: str) -> str:
    """``path`` from ``exp_dir``'s config.yaml, relative to the recipe dir ``base_dir`` it was trained in."""
    if not path or os.path.isabs(path):
        return path
    p = os.path.join(base_dir, path)
    if not os.path.exists(p):
        raise FileNotFoundError(f"{exp_dir}/config.yaml names {what} '{path}', which is not in the recipe dir "
                                f"{base_dir} ({p}); pass the recipe dir it was trained in (the judge's --asr_dir)")
    return p


def load_asr_model(exp_dir: str, checkpoint: str = "", device: str | torch.device = "cpu",
                   base_dir: str | None = None) -> tuple[ASRModel, ASRTrainConfig, ASRTokens, str]:
    """Rebuild the model of ``exp_dir/config.yaml`` and load ``checkpoint`` (default: the averaged model
    if present, else the latest checkpoint). Returns (model in eval mode, config, tokens, weights path).
    ``base_dir``: the recipe dir that the config's relative data.token_model and data.cmvn refer to (the returned
    config holds them resolved); None: they are used as they are, i.e. relative to the cwd (a recipe's own stages)."""
    cfg_path = Path(exp_dir) / "config.yaml"
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{cfg_path}: no such file; is {exp_dir} a trained experiment dir?")
    cfg = load_config(ASRTrainConfig, cfg_path)
    if base_dir is not None:
        d = cfg.data
        cfg = replace(cfg, data=replace(d, token_model=_in_recipe_dir(d.token_model, base_dir, "the tokenizer", exp_dir),
                                        cmvn=_in_recipe_dir(d.cmvn, base_dir, "the CMVN stats", exp_dir)))
    tokens = ASRTokens(cfg.data.token_model)
    cfg = replace(cfg, model=tokens.fill(cfg.model))
    if not checkpoint:
        final = ckpt_lib.final_weights(exp_dir)
        if final is None:
            raise FileNotFoundError(f"{exp_dir}: no averaged model and no checkpoint to decode with")
        checkpoint = str(final)
    model = ASRModel(cfg.model)
    ckpt_lib.load_model_weights(model, checkpoint)
    model.to(device).eval()
    return model, cfg, tokens, checkpoint


@dataclass
class InferenceJob:
    """What a decoding or sampling job needs: the model, its tokens, and its share of a data dir."""

    model: ASRModel
    tokens: ASRTokens
    data: FeatsData
    utts: list[str]
    device: torch.device
    checkpoint: str
    job: int


def parse_split(split: str) -> tuple[int, int]:
    """'JOB/NJ' (1-based, as run.pl substitutes it) -> (job, nj); ValueError otherwise."""
    try:
        job, nj = (int(x) for x in split.split("/"))
    except ValueError:
        job = nj = 0
    if not 1 <= job <= nj:
        raise ValueError(f"--split {split}: expected JOB/NJ with 1 <= JOB <= NJ")
    return job, nj


def prepare_inference(exp_dir: str, checkpoint: str, data_dir: str, split: str = "1/1",
                      device: str = "auto", biasing: str = "auto", bias_distractors: int = -1,
                      bias_keywords: str = "") -> InferenceJob:
    """Load the model of ``exp_dir`` and take every NJ-th utterance of ``data_dir`` from JOB on.

    biasing: 'auto' gives the model keyword lists if it was trained with them (data.biasing.enabled), 'on' /
    'off' force it; bias_distractors >= 0 overrides the number of distractors; bias_keywords the keywords table
    (default <data_dir>/keywords)."""
    job, nj = parse_split(split)
    dev = torch.device("cuda" if device == "cuda" or (device == "auto" and torch.cuda.is_available()) else "cpu")
    model, cfg, tokens, ckpt = load_asr_model(exp_dir, checkpoint, dev)
    data = FeatsData(data_dir, tokens, cfg.data.cmvn, need_text=False)
    bcfg = cfg.data.biasing
    if lists_wanted(biasing, bcfg, "--biasing"):
        if bias_distractors >= 0:
            bcfg = replace(bcfg, eval_distractors=bias_distractors)
        data.use_biasing(bcfg, bias_keywords)
    return InferenceJob(model, tokens, data, sorted(data.utt_ids())[job - 1::nj], dev, ckpt, job)

