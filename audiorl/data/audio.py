"""Loading the audio a Kaldi data directory points at.

A ``wav.scp`` line is ``<recording-id> <value>``; the value takes the three forms Kaldi and ESPnet use:

* a plain path to any file soundfile/libsndfile reads (wav, flac, ogg, mp3, ...);
* a shell pipe ending in ``|`` (``sox in.sph -t wav - |``, ``flac -c -d x.flac |``), run through
  ``bash -o pipefail`` with its stdout read as audio;
* a kaldiio extended name ``foo.ark:123`` (byte offset into an archive written by ``wav-copy`` or
  ``kaldiio.WriteHelper``), optionally with a ``[start:end]`` sample range as kaldiio parses it
  (inclusive end, kaldiio's convention).

Everything returned is float32 mono in [-1, 1]. Errors are ``AudioError`` whose message names the
wav.scp file and line (the ``where`` argument), the cause, and what to do about it.
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
import tempfile
from typing import Iterator

import numpy as np
import soundfile as sf

from audiorl.data.kaldi import DataDirError, read_entries
from audiorl.log import get_logger

logger = get_logger(__name__)

# Stderr lines of a failing pipe command quoted in the error: enough to show the cause.
_STDERR_TAIL_LINES = 5


class AudioError(Exception):
    """Audio could not be loaded; the message names the wav.scp file and line, the cause and the fix."""


def _err(where: str, msg: str) -> AudioError:
    return AudioError(f"{where}: {msg}" if where else msg)


def _is_pipe(value: str) -> bool:
    return value.rstrip().endswith("|")


def _split_ark(value: str) -> tuple[str, int] | None:
    """``foo.ark:123`` or ``foo.ark:123[0:99]`` -> (path, offset); None if not an extended name.

    Only a trailing ``:<int>`` counts, so a plain path containing a colon is still a plain path.
    """
    base = value.split("[", 1)[0] if value.endswith("]") else value
    if ":" not in base:
        return None
    path, _, off = base.rpartition(":")
    return (path, int(off)) if off.isdigit() and path else None


def _to_float_mono(x: np.ndarray, where: str, source: str) -> np.ndarray:
    """Integer PCM -> float in [-1, 1]; (samples, channels) -> mean over channels."""
    x = np.asarray(x)
    if x.dtype == np.int16:
        x = x.astype(np.float32) / 32768.0
    elif x.dtype == np.int32:
        x = x.astype(np.float32) / 2147483648.0
    elif x.dtype == np.uint8:  # 8-bit WAV is unsigned, centred on 128
        x = (x.astype(np.float32) - 128.0) / 128.0
    else:
        x = x.astype(np.float32, copy=False)
    if x.ndim == 2:
        # Averaging (not taking channel 0) keeps speech recorded on either channel audible.
        x = x.mean(axis=1, dtype=np.float32) if x.shape[1] > 1 else x[:, 0]
    elif x.ndim != 1:
        raise _err(where, f"{source}: expected 1-D or (samples, channels) audio, got shape {x.shape}")
    return np.ascontiguousarray(x, dtype=np.float32)


def _check_wav_truncation(path: str, where: str) -> None:
    """Refuse a RIFF/WAVE file whose data chunk is shorter than its header declares.

    libsndfile reads such a file without complaint and returns the part that is there, which would
    silently cut utterances short (and desynchronise them from their transcripts).
    """
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return  # not a plain WAV (RF64, flac, ...): leave it to libsndfile
            pos = 12
            while pos + 8 <= size:
                f.seek(pos)
                cid, clen = struct.unpack("<4sI", f.read(8))
                if cid == b"data":
                    # 0 and 0xFFFFFFFF are what streaming writers put when the length is unknown.
                    if clen not in (0, 0xFFFFFFFF) and pos + 8 + clen > size:
                        raise _err(
                            where,
                            f"{path}: truncated WAV file: the header declares {clen} bytes of audio but "
                            f"only {size - pos - 8} are present; re-create or re-download the file "
                            f"(or drop this recording from wav.scp)",
                        )
                    return
                pos += 8 + clen + (clen & 1)  # chunks are padded to even length
    except OSError:
        return  # unreadable: the real read below reports it


def _read_soundfile(src, where: str, name: str) -> tuple[np.ndarray, int]:
    try:
        x, sr = sf.read(src, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as e:
        raise _err(
            where,
            f"{name}: cannot decode audio ({e}); the file is corrupt or in a format libsndfile does not "
            f"read (wav/flac/ogg/mp3 are fine). Check it with `sox --i {name}` or convert it, e.g. "
            f"`sox {name} -r 16000 -c 1 -b 16 out.wav`",
        ) from None
    return _to_float_mono(x, where, name), int(sr)


def _run_pipe(value: str, where: str) -> bytes:
    cmd = value.rstrip()[:-1].strip()
    if not cmd:
        raise _err(where, "empty pipe command ('|' with nothing before it); write '<command> |'")
    # pipefail: `sox missing.wav -t wav - | other` must fail, not yield an empty stream.
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-_STDERR_TAIL_LINES:]
        raise _err(
            where,
            f"pipe command failed with exit status {proc.returncode}: `{cmd}`\n  stderr: "
            + ("\n  stderr: ".join(tail) if tail else "(empty)")
            + "\n  run the command by hand to see the problem, and fix the command or the file it reads",
        )
    if not proc.stdout:
        raise _err(where, f"pipe command `{cmd}` succeeded but wrote no audio to stdout; make it write to '-'")
    return proc.stdout


def _load_ark(value: str, path: str, where: str) -> tuple[np.ndarray, int]:
    import kaldiio

    if not os.path.isfile(path):
        raise _err(where, f"{path}: no such archive (from '{value}'); re-run the step that wrote it")
    try:
        obj = kaldiio.load_mat(value)
    except Exception as e:  # kaldiio raises many types for a bad offset or a damaged archive
        raise _err(
            where,
            f"'{value}': cannot read the archive entry ({type(e).__name__}: {e}); the offset is wrong or "
            f"the archive is damaged: regenerate the archive and its scp together",
        ) from None
    if not (isinstance(obj, tuple) and len(obj) == 2):
        raise _err(
            where,
            f"'{value}': the archive entry is a matrix, not audio (no sample rate); wav.scp must point "
            f"at audio (a RIFF/flac entry written by wav-copy or kaldiio.WriteHelper with a (rate, array) tuple)",
        )
    a, b = obj
    sr, x = (a, b) if isinstance(a, (int, np.integer)) else (b, a)
    return _to_float_mono(np.asarray(x), where, value), int(sr)


def _resample(x: np.ndarray, sr: int, target_sr: int | None) -> np.ndarray:
    if target_sr is None or target_sr == sr:
        return x
    import torch
    import torchaudio.functional as AF

    y = AF.resample(torch.from_numpy(x), orig_freq=sr, new_freq=target_sr)
    return y.numpy().astype(np.float32, copy=False)


def _load_native(value: str, where: str) -> tuple[np.ndarray, int]:
    """Load at the file's own sample rate; zero-length audio is an error."""
    value = value.strip()
    if not value:
        raise _err(where, "empty wav.scp value; expected a path, a '<command> |' pipe or 'file.ark:offset'")
    if _is_pipe(value):
        data = _run_pipe(value, where)
        x, sr = _read_soundfile(io.BytesIO(data), where, f"output of `{value.rstrip()[:-1].strip()}`")
        name = "the pipe output"
    else:
        ark = _split_ark(value) if not os.path.exists(value) else None
        if ark is not None:
            x, sr = _load_ark(value, ark[0], where)
            name = value
        else:
            if not os.path.exists(value):
                raise _err(
                    where,
                    f"{value}: no such file; fix the path in wav.scp (relative paths are relative to the "
                    f"directory you run from, usually the recipe directory) or remove the recording",
                )
            if os.path.isdir(value):
                raise _err(where, f"{value}: is a directory, not an audio file; point wav.scp at the file")
            _check_wav_truncation(value, where)
            x, sr = _read_soundfile(value, where, value)
            name = value
    if x.size == 0:
        raise _err(
            where,
            f"{name}: zero-length audio (no samples); re-create the recording or remove it from "
            f"wav.scp (and its utterances, e.g. with utils/fix_data_dir.sh)",
        )
    return x, sr


def load_wav_scp_entry(value: str, *, target_sr: int | None = None, where: str = "") -> tuple[np.ndarray, int]:
    """Load one wav.scp value as float32 mono audio in [-1, 1]; return (samples, sample_rate).

    ``value`` is the text after the recording id: a plain path (any libsndfile format), a shell
    command ending in ``|`` (run by ``bash -o pipefail``; stdout is read as audio), or a kaldiio
    extended name ``file.ark:offset`` with an optional ``[start:end]`` sample range. Multi-channel
    audio is averaged over its channels into one. With ``target_sr`` the audio is resampled with
    ``torchaudio.functional.resample`` and the returned rate is ``target_sr``. ``where`` (e.g.
    ``"data/train/wav.scp:12"``) prefixes every error message.

    Raises AudioError for a missing file, a truncated/corrupt/unreadable file, zero-length audio or
    a failing pipe command.
    """
    x, sr = _load_native(value, where)
    if target_sr is not None:
        x, sr = _resample(x, sr, target_sr), target_sr
    return x, sr


def recording_num_samples(value: str, where: str = "") -> tuple[int, int]:
    """(number of samples, sample rate) of a wav.scp value at its own rate.

    Cheap (header only, via ``soundfile.info``) for plain paths; pipes and archive entries are loaded.
    """
    v = value.strip()
    if v and not _is_pipe(v) and (os.path.exists(v) or _split_ark(v) is None):
        if not os.path.isfile(v):
            raise _err(where, f"{v}: no such file; fix the path in wav.scp or remove the recording")
        _check_wav_truncation(v, where)
        try:
            info = sf.info(v)
        except (sf.LibsndfileError, RuntimeError) as e:
            raise _err(where, f"{v}: cannot read the audio header ({e}); check it with `sox --i {v}`") from None
        return int(info.frames), int(info.samplerate)
    x, sr = _load_native(value, where)
    return len(x), sr


class DataDirAudio:
    """Random access to the audio of each utterance of a data dir, by utterance id.

    Reads ``wav.scp`` and, if present, ``segments`` (``<utt> <rec> <start-s> <end-s>``; an end of
    -1 means the end of the recording, as in Kaldi). Segments are cut at the recording's own sample
    rate, then resampled to ``target_sr`` if given. A segment that ends after the audio ends is an
    AudioError unless the overshoot is within ``max_overshoot`` seconds (Kaldi's extract-segments
    tolerates 0.5 s; here the default is 0, a rounding tolerance of one sample aside), in which case
    it is cut at the end. The last loaded recording is cached, since the segments of a long
    recording are usually consecutive in sorted order.
    """

    def __init__(self, data_dir: str, *, target_sr: int | None = None, max_overshoot: float = 0.0):
        self.data_dir = data_dir
        self.target_sr = target_sr
        self.max_overshoot = max_overshoot
        wav_scp = os.path.join(data_dir, "wav.scp")
        try:
            entries = read_entries(wav_scp)
        except DataDirError as e:
            raise AudioError(f"{e}; a data dir needs a wav.scp") from None
        self._wav: dict[str, tuple[str, str]] = {}  # rec -> (value, "wav.scp:line")
        for e in entries:
            if e.key in self._wav:
                raise AudioError(f"{e.path}:{e.lineno}: duplicate recording id '{e.key}'; keep one line")
            self._wav[e.key] = (e.value, f"{e.path}:{e.lineno}")
        self._segments: dict[str, tuple[str, float, float, str]] | None = None
        seg_path = os.path.join(data_dir, "segments")
        if os.path.exists(seg_path):
            self._segments = {}
            for e in read_entries(seg_path):
                self._segments[e.key] = self._parse_segment(e.key, e.value, f"{e.path}:{e.lineno}")
        self._cache_key: str | None = None
        self._cache: tuple[np.ndarray, int] | None = None

    def _parse_segment(self, utt: str, value: str, where: str) -> tuple[str, float, float, str]:
        f = value.split()
        if len(f) != 3:
            raise AudioError(f"{where}: expected '<utt> <recording> <start> <end>', got '{utt} {value}'")
        rec = f[0]
        try:
            start, end = float(f[1]), float(f[2])
        except ValueError:
            raise AudioError(f"{where}: start/end times must be numbers in seconds, got '{f[1]} {f[2]}'") from None
        if rec not in self._wav:
            raise AudioError(f"{where}: recording '{rec}' of utterance '{utt}' is not in wav.scp; "
                             f"add it or drop the segment (utils/fix_data_dir.sh)")
        if start < 0 or (end != -1 and end <= start):
            raise AudioError(f"{where}: bad segment times {start} {end}: need 0 <= start < end (or end -1)")
        return rec, start, end, where

    def __len__(self) -> int:
        return len(self._segments if self._segments is not None else self._wav)

    def __iter__(self) -> Iterator[str]:
        return iter(self._segments if self._segments is not None else self._wav)

    def __contains__(self, utt: str) -> bool:
        return utt in (self._segments if self._segments is not None else self._wav)

    def where(self, utt: str) -> str:
        """'file:line' of the utterance's segments line (or wav.scp line), for messages."""
        if self._segments is not None and utt in self._segments:
            return self._segments[utt][3]
        return self._wav[utt][1] if utt in self._wav else self.data_dir

    def recording_of(self, utt: str) -> tuple[str, str]:
        """(recording id, wav.scp value) the utterance comes from."""
        rec = self._segments[utt][0] if self._segments is not None else utt
        return rec, self._wav[rec][0]

    def _recording(self, rec: str) -> tuple[np.ndarray, int]:
        if self._cache_key != rec:
            self._cache_key, self._cache = None, None  # don't keep a stale entry if loading fails
            value, where = self._wav[rec]
            self._cache = _load_native(value, where)
            self._cache_key = rec
        assert self._cache is not None
        return self._cache

    def load(self, utt: str) -> tuple[np.ndarray, int]:
        """(samples, sample rate) of one utterance; the rate is ``target_sr`` when that is set."""
        if utt not in self:
            raise KeyError(f"utterance '{utt}' is not in {self.data_dir}")
        if self._segments is None:
            x, sr = self._recording(utt)
        else:
            rec, start, end, where = self._segments[utt]
            audio, sr = self._recording(rec)
            n = len(audio)
            b = int(round(start * sr))
            e = n if end == -1 else int(round(end * sr))
            if e > n:
                if (e - n) / sr > self.max_overshoot:
                    raise AudioError(
                        f"{where}: segment '{utt}' ends at {end:.3f} s but recording '{rec}' "
                        f"({self._wav[rec][1]}) is only {n / sr:.3f} s long; fix the end time in segments, "
                        f"or drop the segment (utils/fix_data_dir.sh after removing the line)"
                    )
                e = n
            if b >= e:
                raise AudioError(f"{where}: segment '{utt}' starts at {start:.3f} s, at or after the end "
                                 f"of recording '{rec}' ({n / sr:.3f} s); fix or remove the segment")
            x = audio[b:e]
        if self.target_sr is not None and self.target_sr != sr:
            return _resample(x, sr, self.target_sr), self.target_sr
        return x, sr

    def __getitem__(self, utt: str) -> np.ndarray:
        return self.load(utt)[0]


def write_wav(path: str, samples: np.ndarray, sr: int) -> None:
    """Write mono (or (samples, channels)) float audio as 16-bit PCM WAV, atomically.

    Values outside [-1, 1] are clipped (with a warning): libsndfile would otherwise wrap them.
    """
    x = np.asarray(samples, dtype=np.float32)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak > 1.0:
        logger.warning("write_wav %s: clipping samples with peak %.3f to [-1, 1]", path, peak)
        x = np.clip(x, -1.0, 1.0)
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp.", suffix=".wav", dir=d)
    os.close(fd)
    try:
        sf.write(tmp, x, int(sr), subtype="PCM_16", format="WAV")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
