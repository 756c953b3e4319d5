"""Training the neural vocoder (audiorl/models/neural_vocoder.py) on a data dir's recordings: tts.sh stage 8 with
--voc_config, beside token-to-mel.

    python -m audiorl.bin.tts_vocoder_train --exp_dir exp/vocoder_x --config conf/train_vocoder.yaml \
        --data.train_dir data/train --data.valid_dir data/dev [--train.max_steps 100 ...]

Only audio is read (``wav.scp``, and ``segments`` if present): no tokens, no transcripts. An epoch is one random
segment of ``data.segment_seconds`` from every training utterance, in a shuffled order, ``train.batch_size``
segments per batch; the batch order and the segment offsets are functions of (train.seed, epoch, batch index), so a
resumed run sees exactly the segments an uninterrupted one would. A batch holds the segments (B, N) and their log-mels
(B, N / hop + 1, n_mels) in ``mel`` (the same ``MelConfig`` the token-to-mel model is trained on: synthesis checks
that they match). The model vocodes the whole mel and the first N samples are compared with the segment.

Validation vocodes ``data.valid_utts`` whole dev utterances (spread over the sorted ids) and reports the training
loss and its parts on them (loss, sc, log_mag, mel_l1: the mean |log-mel(vocoded) - log-mel(real)|) and, with
``data.valid_mcd``, MCD-DTW against the recordings (``audiorl.eval.mcd``; Griffin-Lim's is ~1.2 dB on synth_en).
``load_vocoder`` rebuilds a trained vocoder from ``exp/<x>/config.yaml`` + its final weights.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
import torch

from audiorl.config import option
from audiorl.data.audio import DataDirAudio
from audiorl.data.kaldi import DataDirError
from audiorl.data.sampler import EpochBatches, map_batches
from audiorl.log import get_logger
from audiorl.models.neural_vocoder import NeuralVocoder, NeuralVocoderConfig, VocoderLossConfig, vocoder_loss
from audiorl.models.vocoder import MelConfig, mel_spectrogram
from audiorl.tasks.tts_data import LoadedExp, load_experiment, pad_mels
from audiorl.train.config import TrainConfig
from audiorl.train.trainer import Task

logger = get_logger(__name__)


@dataclass
class VocoderDataConfig:
    """The recordings of a training and a validation data dir."""

    train_dir: str = option("data/train", "Training data dir: its recordings (wav.scp, segments if any) are all the "
                                          "vocoder reads.")
    valid_dir: str = option("data/dev", "Validation data dir ('' = no validation).")
    segment_seconds: float = option(1.0, "Length of the random training segments (rounded to whole hops); shorter "
                                         "recordings are zero-padded. 1 s holds the 2048-point loss STFT many times "
                                         "over and keeps 16 segments per batch cheap on a CPU.")
    valid_utts: int = option(8, "Dev utterances vocoded whole at each validation, evenly spread over the sorted ids "
                                "(ids start with the speaker, so several voices).")
    valid_mcd: bool = option(True, "Also report valid/mcd: MCD-DTW of those utterances against the recordings (~20 ms "
                                   "each).")

    def __post_init__(self):
        if self.segment_seconds <= 0 or self.valid_utts < 1:
            raise ValueError(f"data.segment_seconds ({self.segment_seconds}) must be > 0 and data.valid_utts "
                             f"({self.valid_utts}) >= 1")


@dataclass
class VocoderTrainConfig:
    """Neural vocoder training: log-mels of random segments of the recordings -> the segments' waveforms."""

    data: VocoderDataConfig = option(default_factory=VocoderDataConfig, help="Recordings.")
    mel: MelConfig = option(default_factory=MelConfig, help="Mel analysis: the vocoder's input, = the token-to-mel "
                                                            "model's (checked at synthesis).")
    model: NeuralVocoderConfig = option(default_factory=NeuralVocoderConfig, help="The vocoder network.")
    loss: VocoderLossConfig = option(default_factory=VocoderLossConfig, help="Reconstruction loss.")
    train: TrainConfig = option(default_factory=lambda: TrainConfig(max_steps=4000, batch_size=16),
                                help="The training loop; train.batch_size = segments per batch.")

    def __post_init__(self):
        if self.train.max_frames:
            raise ValueError(f"train.max_frames={self.train.max_frames}: the vocoder trains on fixed-length segments; "
                             f"set train.batch_size (segments per batch) and leave max_frames 0")

    @property
    def segment_samples(self) -> int:
        hop = self.mel.hop_length
        return max(1, round(self.data.segment_seconds * self.mel.sample_rate / hop)) * hop


def random_segment(wave: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n samples of ``wave`` from a uniform random offset; a shorter wave is zero-padded at the end."""
    if len(wave) <= n:
        return np.pad(wave, (0, n - len(wave)))
    start = int(rng.integers(0, len(wave) - n + 1))
    return wave[start: start + n]


class VocoderTask(Task):
    def __init__(self, cfg: VocoderTrainConfig):
        self.cfg = cfg
        sr = cfg.mel.sample_rate
        self.train_audio = DataDirAudio(cfg.data.train_dir, target_sr=sr)
        self.utts = sorted(self.train_audio)
        if not self.utts:
            raise DataDirError(f"{cfg.data.train_dir}: no recordings in wav.scp")
        self.valid_waves: list[np.ndarray] = []
        if cfg.data.valid_dir:
            audio = DataDirAudio(cfg.data.valid_dir, target_sr=sr)
            dev = sorted(audio)
            picked = dev[:: max(1, len(dev) // cfg.data.valid_utts)][: cfg.data.valid_utts]
            self.valid_waves = [audio[u] for u in picked]
        logger.info("vocoder: %d training recordings, segments of %d samples, %d per batch; %d dev utterances for "
                    "validation", len(self.utts), cfg.segment_samples, cfg.train.batch_size, len(self.valid_waves))

    def build_model(self) -> NeuralVocoder:
        return NeuralVocoder(self.cfg.model, self.cfg.mel)

    def train_batches(self, epoch: int, rank: int, world_size: int):
        """Shuffled utterances in whole batches, the same number on every rank; items are (epoch, index, utts) so
        that collate draws each batch's segment offsets from its own seed."""
        B, seed = self.cfg.train.batch_size, self.cfg.train.seed
        utts = self.utts * max(1, math.ceil(B * world_size / len(self.utts)))  # tiny sets: fill one batch per rank
        random.Random(seed * 1_000_003 + epoch).shuffle(utts)
        n = len(utts) // (B * world_size) * world_size
        batches = [(epoch, i, utts[i * B: (i + 1) * B]) for i in range(n)]
        return map_batches(EpochBatches(batches[rank::world_size]), self.collate)

    def collate(self, item: tuple[int, int, list[str]]) -> dict:
        """(epoch, index, utts) -> wave (B, N) segments and their log-mels mel (B, N / hop + 1, n_mels)."""
        epoch, i, utts = item
        rng = np.random.default_rng([self.cfg.train.seed, epoch, i])
        n = self.cfg.segment_samples
        wave = torch.from_numpy(np.stack([random_segment(self.train_audio[u], n, rng) for u in utts]))
        return dict(wave=wave, mel=mel_spectrogram(wave, self.cfg.mel))

    def train_step(self, model, batch: dict, step: int):
        wave = batch["wave"]
        pred = model(batch["mel"])[:, : wave.shape[1]]  # (B, N)
        out = vocoder_loss(pred, wave, self.cfg.mel, self.cfg.loss)
        return out["loss"], {k: float(out[k].detach()) for k in ("sc", "log_mag", "mel_l1")}

    def valid(self, model) -> dict[str, float] | None:
        if not self.valid_waves:
            return None
        from audiorl.eval.mcd import mcd

        c = self.cfg
        device = next(model.parameters()).device
        mel, lens = pad_mels([mel_spectrogram(torch.from_numpy(w), c.mel) for w in self.valid_waves],
                             math.log(c.mel.log_floor))
        out = model(mel.to(device), lens.to(device))  # (B, T * hop)
        tot: dict[str, float] = {}
        for i, w in enumerate(self.valid_waves):
            pred = out[i: i + 1, : len(w)]  # (1, N): T * hop >= N samples
            parts = vocoder_loss(pred, torch.from_numpy(w)[None].to(device), c.mel, c.loss)
            if c.data.valid_mcd:
                parts["mcd"] = mcd(pred[0].float().cpu().numpy(), w, c.mel.sample_rate, c.mel.sample_rate)
            for k, v in parts.items():
                tot[k] = tot.get(k, 0.0) + float(v) / len(self.valid_waves)
        return tot


def load_vocoder(exp_dir: str, checkpoint: str = "", device="cpu") -> LoadedExp:
    return load_experiment(exp_dir, VocoderTrainConfig, lambda c: NeuralVocoder(c.model, c.mel), checkpoint, device)
