"""DNSMOS (P.835 SIG/BAK/OVRL and P.808 MOS) through the ``speechmos`` package's bundled ONNX models.

DNSMOS is a non-intrusive quality estimate trained on noisy/enhanced speech: it tracks noise,
distortion and artefacts, and is only a rough proxy for TTS naturalness (UTMOS and friends would be
better but cannot run offline here). Scores are on a 1-5 scale.

Cost: the model scores 9.01 s windows (1 s hop), about 0.8 s of single-thread CPU each. speechmos
(like Microsoft's dnsmos_local.py) tiles a short clip by *doubling* it until it reaches 9.01 s and then
scores every window of the result: a 4.4 s clip becomes 17.6 s and 9 windows of the same content at
different offsets. By default (``exact=False``) a short clip is instead tiled to exactly 9.01 s and
scored once: ~0.7 s per utterance instead of 2.5-4.5 s (measured on 3.5-6.3 s clips). Per clip the
two differ by up to ~0.15 MOS points, with mixed signs (mean |diff| ~0.06 on 6 clips): fine for
comparing systems scored the same way; use ``exact=True`` to compare with published DNSMOS numbers.
Clips longer than 9.01 s are scored exactly as speechmos does.
Batching windows across clips does not help on CPU (measured: 4 windows cost 4x one), so this is a
plain loop. The ONNX sessions are created once with a bounded thread count so that scoring does not
take every core of a shared machine.

The optional dependency is imported lazily: ``pip install -r tools/requirements-tts.txt``.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from audiorl.eval.mcd import SR, resample

INSTALL_HINT = "install the TTS scoring extras: tools/venv/bin/pip install -r tools/requirements-tts.txt"
FIELDS = ("ovrl", "sig", "bak", "p808")

_MODELS: dict[int, object] = {}


def load_dnsmos(num_threads: int):
    """A speechmos ``DNSMOS`` scorer whose ONNX sessions use ``num_threads`` threads (cached)."""
    if num_threads in _MODELS:
        return _MODELS[num_threads]
    try:
        import onnxruntime as ort
        from speechmos import dnsmos as sm
    except ImportError as e:
        raise ImportError(f"DNSMOS needs speechmos and onnxruntime ({e}); {INSTALL_HINT}") from e
    d = os.path.join(os.path.dirname(os.path.abspath(sm.__file__)), "dnsmos_models")
    primary, p808 = os.path.join(d, "sig_bak_ovr.onnx"), os.path.join(d, "model_v8.onnx")
    for p in (primary, p808):
        if not os.path.isfile(p):
            raise FileNotFoundError(f"DNSMOS model {p} missing from the speechmos package; reinstall it ({INSTALL_HINT})")
    so = ort.SessionOptions()
    so.intra_op_num_threads = max(1, num_threads)
    so.inter_op_num_threads = 1
    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
    # speechmos.DNSMOS.__init__ builds default sessions (all cores); build ours and reuse its __call__
    # (windowing, P.808 mel features and the polynomial calibration), which is what we want to match.
    model = object.__new__(sm.DNSMOS)
    model.primary_model_path = primary
    model.onnx_sess = ort.InferenceSession(primary, so, providers=providers)
    model.p808_onnx_sess = ort.InferenceSession(p808, so, providers=providers)
    _MODELS[num_threads] = model
    return model


def dnsmos_one(wave: np.ndarray, sr: int, num_threads: int = 1, exact: bool = False) -> dict[str, float]:
    """DNSMOS of one clip: dict(ovrl, sig, bak, p808). ``exact``: speechmos' doubling of short clips."""
    x = resample(wave, sr, SR).astype(np.float32)
    if len(x) < SR // 10:
        raise ValueError(f"DNSMOS: clip too short ({len(x) / SR:.3f} s at 16 kHz); need >= 0.1 s")
    x = np.clip(x, -1.0, 1.0)  # speechmos refuses values outside [-1, 1] (resampling can overshoot)
    n_win = int(9.01 * SR)  # speechmos.dnsmos.INPUT_LENGTH
    if not exact and len(x) < n_win:
        x = np.tile(x, -(-n_win // len(x)))[:n_win]  # exactly one window (see the module docstring)
    r = load_dnsmos(num_threads)(x, SR, False)
    return {"ovrl": float(r["ovrl_mos"]), "sig": float(r["sig_mos"]), "bak": float(r["bak_mos"]),
            "p808": float(r["p808_mos"])}


def dnsmos(waves: Sequence[np.ndarray] | np.ndarray, sr: int | Sequence[int] = SR, num_threads: int = 1,
           progress: bool = True, exact: bool = False) -> list[dict[str, float]]:
    """DNSMOS per clip: a list of dict(ovrl, sig, bak, p808), in input order.

    ``waves`` is one 1-D wave or a sequence of them; ``sr`` one rate or one per wave.
    """
    from tqdm import tqdm

    if isinstance(waves, np.ndarray) and waves.ndim == 1:
        waves = [waves]
    srs = [int(sr)] * len(waves) if np.isscalar(sr) else [int(s) for s in sr]
    if len(srs) != len(waves):
        raise ValueError(f"dnsmos: {len(waves)} waves but {len(srs)} sample rates")
    return [dnsmos_one(w, s, num_threads, exact)
            for w, s in tqdm(list(zip(waves, srs)), desc="DNSMOS", unit="utt", leave=False,
                             disable=not progress or len(waves) < 4)]
