"""Training and scoring the token-to-text reward model of DiffRO (audiorl/models/token2text.py, PAPER.md s5).

Data: a Kaldi data dir (text; utt2spk for the speaker head) + the speech-token scp of the same set (ground-truth
tokens from the speech tokenizer, tts.sh stage 5). Text ids come from the TTS text tokenizer (data.token_model), so
DiffRO can pass the TTS LM's text ids to the reward model as they are.

Attribute heads (``data.attributes``, the multi-task reward hook):
* ``speaker``: the utterance's speaker, classes = the training set's speakers (``data.speakers``, filled);
* ``rate``   : speaking-rate class = bucket of (speech tokens / text ids) at ``data.rate_edges`` (filled with the
  training set's quantiles into ``data.rate_classes`` classes when empty).
The resolved lists land in ``exp/<x>/config.yaml``, so ``load_token2text`` rebuilds the same heads and a DiffRO task
can turn a speaker or a rate into a target class (``attribute_targets``).

Validation: CTC loss per text id and the greedy-CTC WER of the first ``data.valid_decode_utts`` dev utterances.
``token2text_wer`` scores any token scp against a text file (sclite-style result.txt when given an out_dir).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Literal, Mapping

import numpy as np
import torch

from audiorl.config import option
from audiorl.data.kaldi import DataDirError, read_table
from audiorl.data.sampler import LengthBucketSampler, map_batches
from audiorl.data.tokenizer import same_tokenizer
from audiorl.eval.wer import ScoreResult, score
from audiorl.log import get_logger
from audiorl.models.token2text import Token2Text, Token2TextConfig
from audiorl.tasks.tts_data import (LoadedExp, TextTokens, check_coverage, check_vocab_sizes, load_experiment,
                                    pad_int, read_texts, read_token_table, read_utt2spk)
from audiorl.train.config import TrainConfig
from audiorl.train.trainer import Task

logger = get_logger(__name__)

TOKENS_FIX = "write it with tts.sh stage 5 (python -m audiorl.bin.tts_dump_tokens) or point data.*_tokens at it"
Attribute = Literal["speaker", "rate"]


@dataclass
class Token2TextDataConfig:
    """Ground-truth speech tokens + transcripts (+ speakers) for training and validation."""

    train_dir: str = option("data/train", "Training data dir (text; utt2spk for the speaker head).")
    train_tokens: str = option("dump/tokens/train/tokens.scp", "Speech tokens of train_dir (tts.sh stage 5).")
    valid_dir: str = option("data/dev", "Validation data dir ('' = no validation).")
    valid_tokens: str = option("dump/tokens/dev/tokens.scp", "Speech tokens of valid_dir.")
    token_model: str = option("data/token_list/bpe400/bpe.model", "SentencePiece model of the text: use the TTS LM's "
                                                                  "(tts.sh stage 3) so DiffRO can pass its text ids.")
    tokenizer_exp: str = option("", "Speech-tokenizer experiment that made the tokens (gives the codebook size); "
                                    "'' = set codebook_size.")
    codebook_size: int = option(0, "Speech-token codebook size; 0 = from tokenizer_exp.")
    allow_missing: bool = option(False, "Skip (and count) utterances without speech tokens instead of failing.")
    max_utt_tokens: int = option(750, "Training utterances with more speech tokens are skipped (750 = 30 s at 25 Hz).")
    attributes: list[Attribute] = option(default_factory=list, help="Attribute heads to train (multi-task reward): "
                                         "'speaker', 'rate'. [] = CTC only.")
    rate_classes: int = option(3, "Speaking-rate classes when rate_edges is empty (quantiles of the training set).")
    rate_edges: list[float] = option(default_factory=list, help="Speaking-rate class edges on speech tokens per text "
                                     "id, ascending; [] = filled with training-set quantiles (saved in config.yaml).")
    speakers: list[str] = option(default_factory=list, help="Speaker classes (filled from the training utt2spk; "
                                 "an utterance of another speaker has no speaker target).")
    valid_decode_utts: int = option(200, "Dev utterances decoded (greedy CTC) at each validation for valid/wer; "
                                          "0 = loss only.")

    def __post_init__(self):
        bad = sorted(set(self.attributes) - {"speaker", "rate"})
        if bad:
            raise ValueError(f"data.attributes {bad}: choose from 'speaker', 'rate'")
        if self.rate_classes < 2:
            raise ValueError(f"data.rate_classes={self.rate_classes} must be >= 2")
        if list(self.rate_edges) != sorted(self.rate_edges):
            raise ValueError(f"data.rate_edges={self.rate_edges} must be ascending")

    def resolve_codebook(self) -> int:
        from audiorl.tasks.tts import TTSDataConfig  # one implementation of 'tokenizer_exp or codebook_size'

        return TTSDataConfig(tokenizer_exp=self.tokenizer_exp, codebook_size=self.codebook_size).resolve_codebook()


@dataclass
class Token2TextInitConfig:
    """Start the reward model from the speech tokenizer's layers above its quantiser (Token2Text.init_from_tokenizer).
    The tokenizer was trained to read its own tokens as text, so this starts where its CTC ends."""

    from_tokenizer: bool = option(False, "Copy data.tokenizer_exp's post-quantiser blocks, LayerNorm and decoded codes "
                                         "(as the embedding); the model's shape (dim, n_layers = its blocks above the "
                                         "quantiser, n_heads, ffn_dim, block, conv_kernel) is replaced by the "
                                         "tokenizer's. Needs data.tokenizer_exp.")
    tokenizer_units: bool = option(True, "With from_tokenizer: read text in the tokenizer's units (data.token_model "
                                         "is replaced by the tokenizer's, and its CTC head is copied); false keeps "
                                         "data.token_model and starts a new CTC head.")


@dataclass
class Token2TextTrainConfig:
    """Token-to-text reward model: speech tokens -> CTC text (+ attribute heads)."""

    data: Token2TextDataConfig = option(default_factory=Token2TextDataConfig, help="Tokens, text, speakers.")
    model: Token2TextConfig = option(default_factory=Token2TextConfig, help="The reward model.")
    init: Token2TextInitConfig = option(default_factory=Token2TextInitConfig, help="Initialisation from the speech "
                                        "tokenizer.")
    train: TrainConfig = option(default_factory=lambda: TrainConfig(max_steps=2000), help="The training loop.")


# ----------------------------------------------------------------------------------------------- data
def rate_class(n_speech: int, n_text: int, edges: list[float]) -> int:
    """Speaking-rate class of an utterance: bucket of n_speech / n_text at ``edges`` (0 .. len(edges))."""
    return int(np.searchsorted(np.asarray(edges), n_speech / max(n_text, 1), side="right"))


def attribute_targets(cfg: Token2TextDataConfig, speech_lens: list[int], text_lens: list[int],
                      speakers: list[str] | None = None) -> dict[str, torch.Tensor]:
    """Per-row class targets (B,) of the configured heads; -100 (ignored) for a speaker outside data.speakers."""
    out: dict[str, torch.Tensor] = {}
    if "rate" in cfg.attributes:
        out["rate"] = torch.tensor([rate_class(s, t, cfg.rate_edges) for s, t in zip(speech_lens, text_lens)])
    if "speaker" in cfg.attributes:
        if speakers is None:
            raise ValueError("the speaker head needs each row's speaker")
        index = {s: i for i, s in enumerate(cfg.speakers)}
        out["speaker"] = torch.tensor([index.get(s, -100) for s in speakers])
    return out


class TokenTextData:
    """Utterances with speech tokens (all in memory), text ids and, when needed, speakers."""

    def __init__(self, data_dir: str, tokens_scp: str, text: TextTokens, codebook: int, allow_missing: bool,
                 need_spk: bool, max_tokens: int = 0):
        texts = read_texts(data_dir)
        self.text = texts
        self.tokens = read_token_table(tokens_scp, codebook, TOKENS_FIX)
        utts = check_coverage(list(texts), self.tokens, tokens_scp, "speech tokens", TOKENS_FIX, allow_missing,
                              data_dir)
        self.utt2spk = read_utt2spk(data_dir, utts) if need_spk else {}
        self.text_ids = {u: text.encode(texts[u]) for u in utts}
        long = [u for u in utts if max_tokens and len(self.tokens[u]) > max_tokens]
        if long:
            logger.warning("%s: skipped %d of %d utterances with more than %d speech tokens", data_dir, len(long),
                           len(utts), max_tokens)
        self.lengths = {u: max(len(self.tokens[u]), 1) for u in utts if u not in set(long)}
        if not self.lengths:
            raise DataDirError(f"{data_dir}: no usable utterances")

    def items(self) -> list[tuple[str, int]]:
        return list(self.lengths.items())

    def collate(self, utts: list[str], cfg: Token2TextDataConfig) -> dict:
        """tokens (B, T) / text_ids (B, L) right-padded with 0, their lengths (B,), attrs: name -> (B,)."""
        tokens, token_lens = pad_int([self.tokens[u] for u in utts])
        text, text_lens = pad_int([np.asarray(self.text_ids[u]) for u in utts])
        attrs = attribute_targets(cfg, token_lens.tolist(), text_lens.tolist(),
                                  [self.utt2spk[u] for u in utts] if self.utt2spk else None)
        return dict(utts=list(utts), tokens=tokens, token_lens=token_lens.clamp(min=1), text_ids=text,
                    text_lens=text_lens, attrs=attrs)


# ----------------------------------------------------------------------------------------------- the task
class Token2TextTask(Task):
    def __init__(self, cfg: Token2TextTrainConfig):
        self._tok = None
        if cfg.init.from_tokenizer:
            cfg = self._resolve_tokenizer_init(cfg)
        d = cfg.data
        self.text = TextTokens(d.token_model)
        Vs = d.resolve_codebook()
        m = cfg.model
        check_vocab_sizes(m, text_vocab_size=self.text.vocab_size, speech_vocab_size=Vs)
        self.train_data = TokenTextData(d.train_dir, d.train_tokens, self.text, Vs, d.allow_missing,
                                        "speaker" in d.attributes, d.max_utt_tokens)
        d = self._resolve_attributes(d, self.train_data)
        classes = {"speaker": len(d.speakers), "rate": len(d.rate_edges) + 1}
        m = replace(m, text_vocab_size=self.text.vocab_size, speech_vocab_size=Vs,
                    attribute_classes={a: classes[a] for a in d.attributes})
        self.cfg = replace(cfg, data=d, model=m)
        self.valid_data = TokenTextData(d.valid_dir, d.valid_tokens, self.text, Vs, d.allow_missing,
                                        "speaker" in d.attributes) if d.valid_dir else None
        self._sampler: LengthBucketSampler | None = None
        logger.info("token2text: text vocab %d, speech codebook %d, heads %s; train %d utterances",
                    self.text.vocab_size, Vs, m.attribute_classes or "none", len(self.train_data.lengths))

    @staticmethod
    def _resolve_attributes(d: Token2TextDataConfig, data: TokenTextData) -> Token2TextDataConfig:
        """Fill data.speakers and data.rate_edges from the training set when the heads need them and they are unset."""
        if "speaker" in d.attributes and not d.speakers:
            d = replace(d, speakers=sorted({data.utt2spk[u] for u in data.lengths}))
            if len(d.speakers) < 2:
                raise DataDirError(f"{d.train_dir}: the speaker head needs >= 2 speakers, found {d.speakers}")
        if "rate" in d.attributes and not d.rate_edges:
            rates = [len(data.tokens[u]) / max(len(data.text_ids[u]), 1) for u in data.lengths]
            qs = np.quantile(rates, [k / d.rate_classes for k in range(1, d.rate_classes)])
            d = replace(d, rate_edges=[round(float(q), 4) for q in qs])
            logger.info("speaking-rate classes: edges %s speech tokens per text id", d.rate_edges)
        return d

    def _resolve_tokenizer_init(self, cfg: Token2TextTrainConfig) -> Token2TextTrainConfig:
        """model shape <- the tokenizer's post-quantiser layers; data.token_model <- its text units (tokenizer_units)."""
        from audiorl.tasks.tts import load_speech_tokenizer

        d = cfg.data
        if not d.tokenizer_exp:
            raise ValueError("init.from_tokenizer needs data.tokenizer_exp (the speech tokenizer that made the tokens)")
        tok = load_speech_tokenizer(d.tokenizer_exp)
        tc = tok.config
        e = tc.model.encoder
        units = tc.data.token_model
        if not os.path.exists(units):
            raise FileNotFoundError(f"{d.tokenizer_exp}/config.yaml: its text units data.token_model={units} not found "
                                    f"from {os.getcwd()}; run from the recipe dir that trained the tokenizer")
        if cfg.init.tokenizer_units and units != d.token_model:
            logger.info("token2text: text units %s -> %s (the tokenizer's, init.tokenizer_units)", d.token_model, units)
            d = replace(d, token_model=units)
        same_units = same_tokenizer(d.token_model, units)
        m = replace(cfg.model, dim=e.dim, n_layers=e.n_layers - tc.model.quantize_after, n_heads=e.n_heads,
                    ffn_dim=e.ffn_dim, block=e.block, conv_kernel=e.conv_kernel,
                    text_vocab_size=0 if d.token_model != cfg.data.token_model else cfg.model.text_vocab_size)
        self._tok = (tok.model, same_units)
        logger.info("token2text: starting from %s (%s: %d blocks above its quantiser; CTC head %s)", d.tokenizer_exp,
                    tok.weights, m.n_layers, "copied" if same_units else "new (other text units)")
        return replace(cfg, data=d, model=m)

    def build_model(self) -> Token2Text:
        model = Token2Text(self.cfg.model)
        if self._tok is not None:  # a resumed run then loads its own checkpoint over this
            tok, same_units = self._tok
            copied = model.init_from_tokenizer(tok, copy_ctc_head=same_units)
            logger.info("token2text: %d tensors copied from the speech tokenizer", len(copied))
        return model

    def _collate(self, data: TokenTextData):
        return lambda utts: data.collate(utts, self.cfg.data)

    def train_batches(self, epoch: int, rank: int, world_size: int):
        t = self.cfg.train
        if self._sampler is None or (self._sampler.rank, self._sampler.world_size) != (rank, world_size):
            self._sampler = LengthBucketSampler(self.train_data.items(), max_frames=t.max_frames,
                                                batch_size=t.batch_size, seed=t.seed, rank=rank, world_size=world_size)
        return map_batches(self._sampler.for_epoch(epoch), self._collate(self.train_data))

    @staticmethod
    def _forward(model, b: dict) -> dict:
        return model(b["tokens"], b["token_lens"], b["text_ids"], b["text_lens"], b["attrs"] or None)

    def train_step(self, model, batch: dict, step: int):
        out = self._forward(model, batch)
        stats = {k: float(v.detach()) for k, v in out.items() if k.endswith(("_ce", "_acc"))}
        return out["loss"], {"ctc": float(out["ctc"].detach()), **stats}

    def valid(self, model) -> dict[str, float] | None:
        if self.valid_data is None:
            return None
        device = next(model.parameters()).device
        tot: dict[str, float] = {}
        n = 0
        batches = LengthBucketSampler(self.valid_data.items(), max_frames=max(self.cfg.train.max_frames, 4000),
                                      batch_size=self.cfg.train.batch_size, shuffle=False).for_epoch(0)
        collate = self._collate(self.valid_data)
        for utts in batches:
            b = collate(utts)
            b = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in b.items()}
            out = self._forward(model, b)
            for k, v in out.items():
                if k in ("loss", "ctc") or k.endswith(("_ce", "_acc")):
                    tot[k] = tot.get(k, 0.0) + float(v) * len(utts)
            n += len(utts)
        res = {k: v / max(n, 1) for k, v in tot.items()}
        if self.cfg.data.valid_decode_utts > 0:
            utts = sorted(self.valid_data.lengths)[: self.cfg.data.valid_decode_utts]
            hyps = decode_tokens(model, {u: self.valid_data.tokens[u] for u in utts}, self.text, device)
            res["wer"] = score({u: self.valid_data.text[u] for u in utts}, hyps).totals.wer
        return res


# ----------------------------------------------------------------------------------------------- scoring
@torch.no_grad()
def decode_tokens(model: Token2Text, tokens: Mapping[str, np.ndarray], text: TextTokens, device="cpu",
                  max_tokens: int = 20000) -> dict[str, str]:
    """Greedy-CTC transcripts of speech-token sequences, in length-sorted batches of <= max_tokens padded tokens."""
    was = model.training
    model.eval()
    order = sorted(tokens, key=lambda u: len(tokens[u]))
    hyps: dict[str, str] = {}
    i = 0
    while i < len(order):
        n = 1  # ascending lengths: the padded size of a batch is its last item's length x count
        while i + n < len(order) and max(len(tokens[order[i + n]]), 1) * (n + 1) <= max_tokens:
            n += 1
        chunk = order[i: i + n]
        i += n
        x, lens = pad_int([tokens[u] for u in chunk])
        for u, ids in zip(chunk, model.ctc_greedy(x.to(device), lens.clamp(min=1).to(device))):
            hyps[u] = text.sp.decode(ids)
    model.train(was)
    return hyps


def token2text_wer(model: Token2Text, tokens_scp: str, text: str | Mapping[str, str], tokenizer: TextTokens,
                   device="cpu", out_dir: str | None = None, utt2spk: str | None = None) -> ScoreResult:
    """WER of the reward model's greedy CTC on a token scp against references (a Kaldi text file or utt -> text);
    with ``out_dir``, also writes sclite-style ``result.txt``/``result.json`` and the hypotheses (``text``)."""
    refs = read_table(text, allow_empty_value=True) if isinstance(text, str) else dict(text)
    toks = read_token_table(tokens_scp, model.config.speech_vocab_size, TOKENS_FIX)
    hyps = decode_tokens(model, {u: toks[u] for u in refs if u in toks}, tokenizer, device)
    res = score(refs, hyps)
    if out_dir:
        from audiorl.data.kaldi import write_table
        from audiorl.eval.sclite import write_result

        os.makedirs(out_dir, exist_ok=True)
        write_table(os.path.join(out_dir, "text"), hyps)
        write_result(out_dir, res, utt2spk=read_table(utt2spk) if utt2spk else None,
                     ref_path=text if isinstance(text, str) else None, hyp_path=os.path.join(out_dir, "text"))
    logger.info("%s: token2text %s", tokens_scp, res.summary_line())
    return res


def load_token2text(exp_dir: str, checkpoint: str = "", device="cpu") -> tuple[LoadedExp, TextTokens]:
    """The trained reward model of ``exp_dir`` (eval mode; its config.yaml + final weights) and its text tokenizer.
    For DiffRO freeze it: ``exp.model.requires_grad_(False)``."""
    exp = load_experiment(exp_dir, Token2TextTrainConfig, lambda c: Token2Text(c.model), checkpoint, device)
    return exp, TextTokens(exp.config.data.token_model)
