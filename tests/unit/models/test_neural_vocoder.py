"""audiorl.models.neural_vocoder: the output contract of GriffinLimVocoder (T frames -> T * hop samples, zeros past
lens), gradients reaching every weight, the reconstruction losses, and a toy training run that learns sine sweeps."""

import math

import pytest
import torch

from audiorl.models.neural_vocoder import (NeuralVocoder, NeuralVocoderConfig, VocoderLossConfig,
                                           multi_resolution_stft_loss, vocoder_loss)
from audiorl.models.vocoder import GriffinLimVocoder, MelConfig, mel_spectrogram

MEL = MelConfig()
HOP = MEL.hop_length


def sweeps(n: int, samples: int, seed: int = 0) -> torch.Tensor:
    """(n, samples) linear sine sweeps between random frequencies in 100-2000 Hz, amplitude 0.3, over a noise floor
    (recordings have one; without it the first steps only learn the depth of digital silence)."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(samples) / MEL.sample_rate
    f0, f1 = 100 + 1900 * torch.rand(n, 1, generator=g), 100 + 1900 * torch.rand(n, 1, generator=g)
    dur = samples / MEL.sample_rate
    phase = 2 * math.pi * (f0 * t + (f1 - f0) * t * t / (2 * dur))
    return 0.3 * torch.sin(phase) + 0.003 * torch.randn(n, samples, generator=g)


def tiny(**kw) -> NeuralVocoder:
    torch.manual_seed(0)
    return NeuralVocoder(NeuralVocoderConfig.from_preset("tiny", **kw), MEL)


def test_output_length_and_zeroing_match_griffin_lim():
    voc, gl = tiny(), GriffinLimVocoder(MEL, n_iter=2)
    mel = mel_spectrogram(sweeps(2, 13 * HOP - 40))  # (2, 13, 80): 1 + N // hop frames
    lens = torch.tensor([13, 7])
    wave = voc(mel, lens)
    assert wave.shape == gl(mel, lens).shape == (2, 13 * HOP)
    assert (wave[1, 7 * HOP:] == 0).all() and wave[1, : 7 * HOP].abs().sum() > 0
    assert wave[0, -HOP:].abs().sum() > 0  # the full-length row keeps its last hop
    one = voc(mel[0])
    assert one.shape == (13 * HOP,) and torch.allclose(one, voc(mel)[0], atol=1e-6)  # (T, M) -> (T * hop,)


def test_gradients_reach_every_weight():
    voc = tiny()
    target = sweeps(2, 20 * HOP)
    out = vocoder_loss(voc(mel_spectrogram(target))[:, : target.shape[1]], target, MEL, VocoderLossConfig())
    out["loss"].backward()
    for name, p in voc.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    assert {"loss", "sc", "log_mag", "mel_l1"} <= set(out)


def test_losses_are_zero_for_identical_waves_and_positive_otherwise():
    a, b = sweeps(2, 8000, seed=1), sweeps(2, 8000, seed=2)
    parts = vocoder_loss(a, a, MEL, VocoderLossConfig())
    assert all(float(parts[k]) == pytest.approx(0.0, abs=1e-6) for k in parts)
    sc, log_mag = multi_resolution_stft_loss(a, b, VocoderLossConfig().resolutions)
    assert float(sc) > 0.5 and float(log_mag) > 0.5


def test_toy_training_learns_sine_sweeps():
    """40 AdamW steps on fixed sweeps: the loss, and the log-mel distance in it, fall clearly (measured: to ~45%)."""
    voc = tiny(dim=64, ffn_dim=128, n_blocks=2)
    target = sweeps(4, 32 * HOP)
    mel = mel_spectrogram(target)
    opt = torch.optim.AdamW(voc.parameters(), lr=3e-3)
    losses, mel_l1 = [], []
    for _ in range(40):
        out = vocoder_loss(voc(mel)[:, : target.shape[1]], target, MEL, VocoderLossConfig())
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(float(out["loss"].detach()))
        mel_l1.append(float(out["mel_l1"].detach()))
    assert losses[-1] < 0.6 * losses[0] and mel_l1[-1] < 0.5 * mel_l1[0], (losses[::5], mel_l1[::5])


def test_config_errors():
    with pytest.raises(ValueError, match="kernel"):
        NeuralVocoderConfig(kernel=4)
    with pytest.raises(ValueError, match="unknown neural vocoder preset"):
        NeuralVocoderConfig.from_preset("huge")
    with pytest.raises(ValueError, match="2 x mel.hop_length"):
        NeuralVocoder(NeuralVocoderConfig(n_fft=200), MEL)
    with pytest.raises(ValueError, match="hop <= window <= n_fft"):
        VocoderLossConfig(resolutions=[(256, 300, 256)])
