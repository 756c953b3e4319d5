"""What the TTS stages read: text ids, speech-token and speaker-embedding tables, mel targets, trained experiments.

Per utterance the TTS recipe keeps (egs/TEMPLATE/tts/tts.sh):

    data/<set>/{text,utt2spk,wav.scp}                       Kaldi data dir (the shared corpus)
    <token_dir>/<set>/tokens.scp                            speech-token ids (kaldiio int32 vectors): ours from the
                                                            speech tokenizer stage, or a user-given scp
    dump/spk_embed/<set>/{spk_embed,spk2embed}.scp          resemblyzer embeddings per utterance / per speaker

Every table is checked against the data dir when a stage starts: a missing entry is an error that names the file,
the first missing utterance and the stage that writes the file (``data.allow_missing true`` skips and counts
instead). Experiments are loaded from their ``config.yaml`` plus the weights the training stage ends with
(``audiorl.train.checkpoint.final_weights``), never by unpickling.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, TypeVar

import numpy as np
import torch

from audiorl.config import load_config
from audiorl.data.audio import DataDirAudio
from audiorl.data.kaldi import DataDirError, read_table
from audiorl.data.tokenizer import load_tokenizer
from audiorl.log import get_logger
from audiorl.train import checkpoint as ckpt_lib

logger = get_logger(__name__)
C = TypeVar("C")


# ------------------------------------------------------------------------------------------------- text
class TextTokens:
    """The tokenizer of the TTS input text: the recipe's sentencepiece model (tts.sh stage 3), or a pretrained LLM's
    tokenizer.json (model.init_llm); ``sp`` has the same interface either way (audiorl.data.tokenizer.load_tokenizer)."""

    def __init__(self, token_model: str):
        if not os.path.exists(token_model):
            raise FileNotFoundError(f"{token_model}: no text tokenizer model; train it first (tts.sh stage 3) or set "
                                    f"data.token_model (or model.init_llm for a pretrained LLM's tokenizer)")
        self.path = token_model
        self.sp = load_tokenizer(token_model)
        self.vocab_size = self.sp.vocab_size

    def encode(self, text: str) -> list[int]:
        return self.sp.encode(text)

    def decode(self, ids: list[int]) -> str:
        return self.sp.decode(ids)


def check_vocab_sizes(model_cfg, **data_sizes: int) -> None:
    """A model config's vocabulary fields must be 0 (filled from the data) or equal what the data give."""
    for name, want in data_sizes.items():
        if getattr(model_cfg, name) not in (0, want):
            raise ValueError(f"model.{name}={getattr(model_cfg, name)} but the data give {want}: set it to 0")


# ------------------------------------------------------------------------------------------------- tables
def read_token_table(scp: str, codebook_size: int, fix: str) -> dict[str, np.ndarray]:
    """utt -> int64 speech-token ids from a token scp; ids are checked to lie in [0, codebook_size)."""
    from audiorl.models.speech_tokenizer import read_tokens

    if not os.path.isfile(scp):
        raise FileNotFoundError(f"{scp}: no such token scp; {fix}")
    try:
        return read_tokens(scp, codebook_size)
    except ValueError as e:
        raise DataDirError(f"{e} ({fix})") from None


def read_embed_table(scp: str, dim: int, fix: str) -> dict[str, np.ndarray]:
    """key -> float32 (dim,) speaker embedding; a width other than ``dim`` is an error naming the file."""
    from audiorl.models.speaker import load_embeds

    if not os.path.isfile(scp):
        raise FileNotFoundError(f"{scp}: no such speaker-embedding scp; {fix}")
    table = load_embeds(scp)
    if table:
        d = next(iter(table.values())).shape[0]
        if d != dim:
            raise DataDirError(f"{scp}: embeddings are {d}-dimensional but the model expects spk_embed_dim={dim}; "
                               f"set model.spk_embed_dim {d} (or use the embeddings the model was trained with)")
    return table


def check_coverage(utts: Iterable[str], table: dict, path: str, what: str, fix: str, allow_missing: bool,
                   where: str) -> list[str]:
    """The utterances of ``utts`` that have an entry in ``table``. Missing ones are an error naming ``path``, the
    first missing utterance and ``fix``; with ``allow_missing`` they are dropped and counted in the log."""
    utts = list(utts)
    missing = [u for u in utts if u not in table]
    if missing and not allow_missing:
        raise DataDirError(f"{path}: no {what} for {len(missing)} of {len(utts)} utterances of {where} (first: "
                           f"'{missing[0]}'); {fix}, or set data.allow_missing true to skip them")
    if missing:
        logger.warning("%s: %d of %d utterances of %s have no %s: skipped (data.allow_missing)", path, len(missing),
                       len(utts), where, what)
    return [u for u in utts if u in table]


def read_texts(data_dir: str) -> dict[str, str]:
    path = os.path.join(data_dir, "text")
    if not os.path.isfile(path):
        raise DataDirError(f"{path}: no such file; the TTS input is a Kaldi data dir with a text file")
    return read_table(path, allow_empty_value=True)


def read_utt2spk(data_dir: str, utts: Iterable[str]) -> dict[str, str]:
    path = os.path.join(data_dir, "utt2spk")
    if not os.path.isfile(path):
        raise DataDirError(f"{path}: no such file; speaker-conditioned synthesis needs utt2spk")
    u2s = read_table(path)
    lost = [u for u in utts if u not in u2s]
    if lost:
        raise DataDirError(f"{path}: no speaker for '{lost[0]}' ({len(lost)} utterances); run utils/fix_data_dir.sh")
    return u2s


def speaker_rows(utts: list[str], embeds: dict[str, np.ndarray], utt2spk: dict[str, str] | None,
                 path: str) -> np.ndarray:
    """(n, d) conditioning rows: embeds[utt2spk[u]] (speaker means) when utt2spk is given, else embeds[u]."""
    rows = []
    for u in utts:
        key = utt2spk[u] if utt2spk is not None else u
        if key not in embeds:
            kind = "speaker" if utt2spk is not None else "utterance"
            raise DataDirError(f"{path}: no embedding for {kind} '{key}' (utterance '{u}'); compute it with tts.sh "
                               f"stage 6 (python -m audiorl.bin.tts_spk_embed) for the set that has this {kind}")
        rows.append(embeds[key])
    return np.stack(rows).astype(np.float32)


# ------------------------------------------------------------------------------------------------- audio
class MelTargets:
    """Log-mel targets of the token-to-mel model, computed from the recordings on the fly (a few ms each)."""

    def __init__(self, data_dir: str, mel_cfg):
        self.audio = DataDirAudio(data_dir, target_sr=mel_cfg.sample_rate)
        self.cfg = mel_cfg

    def __contains__(self, utt: str) -> bool:
        return utt in self.audio

    def load(self, utt: str) -> torch.Tensor:
        from audiorl.models.vocoder import mel_spectrogram

        wave, _ = self.audio.load(utt)
        return mel_spectrogram(torch.from_numpy(wave), self.cfg)  # (T, n_mels)


def mel_stats(mels: Iterable[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-bin mean and std over every frame of ``mels`` (float64 sums)."""
    s = sq = None
    n = 0
    for m in mels:
        m = m.double()
        s = m.sum(0) if s is None else s + m.sum(0)
        sq = (m * m).sum(0) if sq is None else sq + (m * m).sum(0)
        n += m.shape[0]
    if not n:
        raise ValueError("mel_stats: no frames")
    mean = s / n
    return mean.float(), (sq / n - mean * mean).clamp(min=1e-8).sqrt().float()


# ------------------------------------------------------------------------------------------------- experiments
@dataclass
class LoadedExp:
    model: torch.nn.Module
    config: object
    weights: str


def load_experiment(exp_dir: str, config_cls: type[C], build: Callable[[C], torch.nn.Module], checkpoint: str = "",
                    device: str | torch.device = "cpu") -> LoadedExp:
    """Rebuild ``build(config)`` from ``exp_dir/config.yaml`` and load ``checkpoint`` strictly (default: the weights
    the training stage ends with: its best-N average if it asked for one, else its latest checkpoint)."""
    cfg_path = Path(exp_dir) / "config.yaml"
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{cfg_path}: no such file; is {exp_dir} a trained experiment dir (run its training "
                                f"stage first)?")
    cfg = load_config(config_cls, cfg_path)
    if not checkpoint:
        final = ckpt_lib.final_weights(exp_dir)
        if final is None:
            raise FileNotFoundError(f"{exp_dir}: no averaged model and no checkpoint; run (or finish) its training "
                                    f"stage")
        checkpoint = str(final)
    model = build(cfg)
    ckpt_lib.load_model_weights(model, checkpoint)
    return LoadedExp(model.to(device).eval(), cfg, checkpoint)


def pick_device(device: str) -> torch.device:
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device=cuda but no CUDA device is visible; use auto or cpu")
    return torch.device("cuda" if device == "cuda" or (device == "auto" and torch.cuda.is_available()) else "cpu")


def pad_int(seqs: list[np.ndarray], min_len: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad int sequences with 0: (B, L) long, lengths (B,); L >= min_len."""
    lens = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    out = torch.zeros(len(seqs), max([min_len] + [len(s) for s in seqs]), dtype=torch.long)
    for i, s in enumerate(seqs):
        if len(s):
            out[i, : len(s)] = torch.as_tensor(np.asarray(s), dtype=torch.long)
    return out, lens


def pad_mels(mels: list[torch.Tensor], fill: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-mels (T_i, M) -> (B, T, M) right-padded with ``fill`` (the silence floor), lengths (B,) in frames."""
    lens = torch.tensor([m.shape[0] for m in mels], dtype=torch.long)
    out = torch.full((len(mels), int(lens.max()), mels[0].shape[1]), fill)
    for i, m in enumerate(mels):
        out[i, : m.shape[0]] = m
    return out, lens
