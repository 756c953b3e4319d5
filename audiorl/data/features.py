"""Kaldi-compatible log-mel filterbank features, their ark/scp storage, and global CMVN.

Features come from ``torchaudio.compliance.kaldi.fbank`` on waveforms scaled to the 16-bit integer
range, as Kaldi's ``compute-fbank-feats`` sees them, with dither 0 by default so that reruns and
different job splits give identical features. Storage is Kaldi's: a binary ark plus an scp of
``<utt> <ark>:<offset>`` written with kaldiio, and ``utt2num_frames``. Global CMVN statistics are
stored as Kaldi's ``compute-cmvn-stats`` stores them: one double matrix of shape (2, D+1), row 0 the
per-dimension sums with the frame count in the last column, row 1 the sums of squares.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from audiorl.data.audio import AudioError, DataDirAudio
from audiorl.data.kaldi import DataDirError, read_entries, write_table
from audiorl.log import get_logger

if TYPE_CHECKING:
    import torch

# torch is imported inside the functions that need it: CMVN tools and the scp readers then start in
# a fraction of a second instead of ~2 s, which adds up over many small jobs.

logger = get_logger(__name__)

# Kaldi's 16-bit sample scale: fbank energies (and so the log floor's effect) match compute-fbank-feats.
_INT16_SCALE = 32768.0
# Variance floor for CMVN, so a constant feature dimension gives std 1e-5 rather than a division by 0.
_VAR_FLOOR = 1e-10


@functools.lru_cache(maxsize=None)
def _fbank_option_names() -> frozenset[str]:
    import torchaudio.compliance.kaldi as K

    return frozenset(inspect.signature(K.fbank).parameters) - {"waveform", "channel", "sample_frequency"}


def num_frames(num_samples: int, sr: int = 16000, frame_length: float = 25.0, frame_shift: float = 10.0,
               snip_edges: bool = True) -> int:
    """Number of frames Kaldi computes for ``num_samples`` samples (feature-window.cc NumFrames)."""
    win = int(sr * frame_length / 1000)
    shift = int(sr * frame_shift / 1000)
    if snip_edges:
        return 0 if num_samples < win else 1 + (num_samples - win) // shift
    return (num_samples + shift // 2) // shift


def fbank(wave: np.ndarray | torch.Tensor, sr: int = 16000, num_mel_bins: int = 80, frame_length: float = 25.0,
          frame_shift: float = 10.0, dither: float = 0.0, **kwargs) -> torch.Tensor:
    """Log-mel filterbank of mono float audio in [-1, 1]: a float32 tensor (T, num_mel_bins).

    ``wave`` is 1-D (or (1, N)); it is scaled by 32768 like Kaldi's integer samples. Other keyword
    arguments go to ``torchaudio.compliance.kaldi.fbank`` (e.g. ``snip_edges``, ``low_freq``).
    Audio shorter than one frame raises ValueError (Kaldi would output zero frames and then fail).
    """
    import torch

    w = torch.as_tensor(wave, dtype=torch.float32)
    if w.dim() == 2 and w.shape[0] == 1:
        w = w[0]
    if w.dim() != 1:
        raise ValueError(f"fbank: expected mono audio of shape (N,) or (1, N), got {tuple(w.shape)}")
    _check_fbank_options(kwargs)
    win = int(sr * frame_length / 1000)
    if w.numel() < win:
        raise ValueError(f"audio of {w.numel()} samples ({w.numel() / sr * 1000:.1f} ms) is shorter than one "
                         f"{frame_length:g} ms frame ({win} samples at {sr} Hz)")
    import torchaudio.compliance.kaldi as K

    feats = K.fbank((w * _INT16_SCALE).unsqueeze(0), sample_frequency=float(sr), num_mel_bins=num_mel_bins,
                    frame_length=frame_length, frame_shift=frame_shift, dither=dither, **kwargs)
    return feats  # (T, num_mel_bins)


def _check_fbank_options(opts: dict) -> None:
    unknown = set(opts) - _fbank_option_names()
    if unknown:
        raise ValueError(f"fbank: unknown option(s) {sorted(unknown)}; use torchaudio.compliance.kaldi.fbank's names "
                         f"(the sample rate is the `sr` argument)")


def _parse_value(s: str):
    if s in ("true", "false"):
        return s == "true"
    for conv in (int, float):
        try:
            return conv(s)
        except ValueError:
            pass
    return s


def read_fbank_conf(path: str) -> dict:
    """Read a Kaldi-style feature config (``--num-mel-bins=80`` lines, ``#`` comments).

    Returns keyword arguments for ``fbank`` plus ``sample_frequency`` (the rate audio is resampled
    to). Unknown options are errors naming the file and line.
    """
    allowed = _fbank_option_names() | {"sample_frequency"}
    opts: dict = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            if not line.startswith("--") or "=" not in line:
                raise ValueError(f"{path}:{lineno}: expected '--option=value', got '{line}'")
            name, value = line[2:].split("=", 1)
            key = name.replace("-", "_")
            if key not in allowed:
                raise ValueError(f"{path}:{lineno}: unknown fbank option '--{name}'; allowed: "
                                 + ", ".join("--" + k.replace("_", "-") for k in sorted(allowed)))
            opts[key] = _parse_value(value.strip())
    return opts


@dataclass
class FbankResult:
    """What one ``compute_fbank_dir`` call did."""

    num_done: int = 0
    num_frames: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (utt, reason)


def _read_utt_list(path: str) -> list[str]:
    return [e.key for e in read_entries(path, allow_empty_value=True)]


def compute_fbank_dir(data_dir: str, out_prefix: str, *, fbank_opts: dict | None = None,
                      utt_list: str | None = None, skip_bad: bool = False) -> FbankResult:
    """Compute fbank for the utterances of a data dir; write ``<out_prefix>.{ark,scp,utt2num_frames}``.

    ``fbank_opts``: ``fbank`` keyword arguments plus ``sample_frequency`` (default 16000; audio at
    another rate is resampled to it). ``utt_list``: a file whose first column limits the utterances
    (one job's share). The scp holds ``<out_prefix>.ark`` as given (relative paths stay relative to
    the working directory) and is renamed into place last, so its presence means the job finished.

    An utterance whose audio cannot be loaded (or is shorter than one frame) raises AudioError naming
    the utterance and its wav.scp/segments line. With ``skip_bad`` it is skipped instead, logged,
    counted and listed in ``<out_prefix>.skipped`` (``<utt> <reason>`` lines).
    """
    import kaldiio

    opts = dict(fbank_opts or {})
    sr = int(opts.pop("sample_frequency", 16000))
    opts.setdefault("num_mel_bins", 80)
    _check_fbank_options(opts)  # up front: with skip_bad a bad option must not skip every utterance
    win = int(sr * float(opts.get("frame_length", 25.0)) / 1000)
    audio = DataDirAudio(data_dir, target_sr=sr)
    utts = list(audio)
    if utt_list is not None:
        wanted = _read_utt_list(utt_list)
        missing = [u for u in wanted if u not in audio]
        if missing:
            raise DataDirError(f"{utt_list}: {len(missing)} utterance(s) not in {data_dir}, e.g. '{missing[0]}'; "
                               f"regenerate the split lists from the data dir")
        utts = wanted
    os.makedirs(os.path.dirname(os.path.abspath(out_prefix)), exist_ok=True)
    ark, scp = out_prefix + ".ark", out_prefix + ".scp"
    scp_tmp = scp + ".tmp"
    skipped_path = out_prefix + ".skipped"
    for stale in (scp, skipped_path):  # an old scp must not outlive a failed rerun
        if os.path.exists(stale):
            os.unlink(stale)
    res = FbankResult()
    utt2num_frames: dict[str, int] = {}
    with kaldiio.WriteHelper(f"ark,scp:{ark},{scp_tmp}") as writer:
        for utt in utts:
            try:
                wave, _ = audio.load(utt)
                if len(wave) < win:
                    raise AudioError(f"{audio.where(utt)}: {len(wave)} samples at {sr} Hz is shorter than one "
                                     f"{win}-sample frame; remove the utterance (utils/fix_data_dir.sh)")
            except AudioError as e:
                msg = f"utterance '{utt}': {e}"
                if not skip_bad:
                    raise AudioError(msg + "\n  (to skip such utterances and list them instead, use --skip_bad true)") from None
                logger.warning("skipping %s", msg)
                res.skipped.append((utt, " ".join(str(e).split())))
                continue
            feats = fbank(wave, sr=sr, **opts)
            writer(utt, feats.numpy())
            utt2num_frames[utt] = int(feats.shape[0])
            res.num_done += 1
            res.num_frames += int(feats.shape[0])
    write_table(out_prefix + ".utt2num_frames", utt2num_frames)
    if skip_bad:
        write_table(skipped_path, dict(res.skipped))
    os.replace(scp_tmp, scp)
    logger.info("%s: wrote %d utterances (%d frames) to %s; skipped %d%s", data_dir, res.num_done,
                res.num_frames, ark, len(res.skipped), f" (listed in {skipped_path})" if res.skipped else "")
    return res


# ----------------------------------------------------------------------------------------- CMVN


def compute_cmvn_stats(feats_scp: str, out_path: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Global mean and std over every frame of every utterance in ``feats_scp`` (float64 sums).

    With ``out_path`` the Kaldi stats matrix (2, D+1) is also written there (see ``write_cmvn_stats``).
    """
    import kaldiio

    total = sq = None
    count = 0
    for utt, mat in kaldiio.load_scp_sequential(feats_scp):
        m = np.asarray(mat, dtype=np.float64)
        if m.ndim != 2:
            raise DataDirError(f"{feats_scp}: '{utt}' is not a (frames, dims) matrix (shape {m.shape})")
        if total is None:
            total, sq = np.zeros(m.shape[1]), np.zeros(m.shape[1])
        elif m.shape[1] != total.shape[0]:
            raise DataDirError(f"{feats_scp}: '{utt}' has {m.shape[1]} dims, earlier utterances {total.shape[0]}; "
                               f"all features must come from one configuration")
        total += m.sum(axis=0)
        sq += (m * m).sum(axis=0)
        count += m.shape[0]
    if total is None or count == 0:
        raise DataDirError(f"{feats_scp}: no frames; compute features first (utils/make_fbank.sh)")
    stats = np.zeros((2, total.shape[0] + 1), dtype=np.float64)
    stats[0, :-1], stats[0, -1], stats[1, :-1] = total, count, sq
    if out_path is not None:
        write_cmvn_stats(out_path, stats)
    return cmvn_stats_to_mean_std(stats)


def cmvn_stats_to_mean_std(stats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kaldi (2, D+1) stats -> (mean, std), float32, with variance floored at 1e-10."""
    stats = np.asarray(stats, dtype=np.float64)
    if stats.ndim != 2 or stats.shape[0] != 2 or stats.shape[1] < 2:
        raise ValueError(f"CMVN stats must be a (2, D+1) matrix, got shape {stats.shape}")
    count = stats[0, -1]
    if count <= 0:
        raise ValueError(f"CMVN stats have a frame count of {count}")
    mean = stats[0, :-1] / count
    var = np.maximum(stats[1, :-1] / count - mean * mean, _VAR_FLOOR)
    return mean.astype(np.float32), np.sqrt(var).astype(np.float32)


def write_cmvn_stats(path: str, stats: np.ndarray) -> None:
    """Write stats as one binary double matrix, like ``compute-cmvn-stats scp:feats.scp cmvn.ark``."""
    import kaldiio

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    kaldiio.save_mat(tmp, np.asarray(stats, dtype=np.float64))
    os.replace(tmp, path)


def load_cmvn(path: str) -> tuple[np.ndarray, np.ndarray]:
    """Read (mean, std) from Kaldi global CMVN stats: a bare matrix, or an archive with one entry."""
    import kaldiio

    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such CMVN stats file; create it with utils/compute_cmvn_stats.sh")
    with open(path, "rb") as f:
        bare = f.read(2) == b"\0B"
    if bare:
        stats = kaldiio.load_mat(path)
    else:  # `compute-cmvn-stats ... ark:cmvn.ark` writes a keyed archive; global stats have one key
        entries = list(kaldiio.load_ark(path))
        if len(entries) != 1:
            raise ValueError(f"{path}: holds {len(entries)} matrices; global CMVN needs exactly one "
                             f"(per-speaker stats are not supported here)")
        stats = entries[0][1]
    return cmvn_stats_to_mean_std(stats)


def apply_cmvn(feats, mean, std, norm_vars: bool = True):
    """(feats - mean) / std per dimension; numpy or torch in, same type out."""
    torch = sys.modules.get("torch")  # a tensor can only exist if torch was imported
    if torch is not None and isinstance(feats, torch.Tensor):
        m = torch.as_tensor(mean, dtype=feats.dtype, device=feats.device)
        out = feats - m
        if norm_vars:
            out = out / torch.as_tensor(std, dtype=feats.dtype, device=feats.device)
        return out
    out = np.asarray(feats) - mean
    return out / std if norm_vars else out
