"""Log-mel -> waveform by a small trained network: Vocos (Siuzdak 2023), the option beside Griffin-Lim.

    log-mel (B, T, n_mels), 100 Hz -> the last frame repeated once (T + 1 centred STFT frames <-> T * hop samples,
    the output contract of ``GriffinLimVocoder``) -> Conv1d embed -> LayerNorm -> n_blocks ConvNeXt blocks
    (depthwise conv, LayerNorm, pointwise MLP, layer scale, residual) -> LayerNorm -> Linear, per STFT bin:
    a log-magnitude and a pair (re, im) whose angle atan2(im, re) is the phase -> complex STFT (B, n_fft/2+1, T+1)
    -> torch.istft (hop = MelConfig.hop_length, Hann window of n_fft) -> wave (B, T * hop)

Every layer runs at the mel frame rate and the inverse STFT does the upsampling, which is what makes Vocos an order of
magnitude cheaper than time-domain vocoders (HiFi-GAN's transposed-conv stack): the right shape for 2 CPU cores. The
phase is the angle of a free 2-vector instead of one output read as an angle, so the network never has to jump
across the +-pi wrap.

Training is by reconstruction losses only (``vocoder_loss``): a multi-resolution STFT loss (spectral convergence +
log-magnitude L1 at three resolutions; Yamamoto et al. 2020, Parallel WaveGAN) plus the L1 between log-mels of the
output and of the target in this pipeline's mel analysis (``mel_spectrogram``; HiFi-GAN's mel loss). No GAN: Vocos
gets its last bit of quality from multi-period and multi-resolution discriminators updated by a second optimizer in
alternation with the generator, which the one Trainer (one model, one optimizer per Task) does not express without
folding two models into one, and which would cost 2-3x the generator's CPU time per step. Without them the output is
intelligible but buzzier: the phase is learned only through the consistency the overlapping STFT resolutions demand.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from audiorl.config import option
from audiorl.models.vocoder import MelConfig, mel_spectrogram


def zero_past(wave: torch.Tensor, lens: torch.Tensor, hop: int) -> torch.Tensor:
    """wave (B, T * hop) with samples past lens * hop zeroed: padded frames would otherwise vocode into noise."""
    n = lens.to(wave.device) * hop  # (B,) samples
    keep = torch.arange(wave.shape[1], device=wave.device)[None] < n[:, None]  # (B, N)
    return wave * keep


@dataclass
class NeuralVocoderConfig:
    """The vocoder network (named sizes: NeuralVocoderConfig.from_preset); hop and mel bins come from MelConfig."""

    dim: int = option(192, "Channels of the ConvNeXt trunk.")
    ffn_dim: int = option(576, "Hidden width of each block's pointwise MLP (Vocos: 3 x dim).")
    n_blocks: int = option(6, "ConvNeXt blocks (Vocos: 8).")
    kernel: int = option(7, "Depthwise conv kernel of the blocks and of the embedding, in mel frames (odd); 7 = "
                            "70 ms per layer.")
    n_fft: int = option(640, "FFT size and Hann window of the inverse STFT; its hop is mel.hop_length. 4 x hop as in "
                             "Vocos (1024 / 256); must be >= 2 x hop so that frames overlap.")
    layer_scale: float = option(0.0, "Initial scale of each block's residual branch; 0 = 1 / n_blocks (Vocos), so "
                                     "the initial network is close to the embedding alone.")
    max_log_mag: float = option(7.0, "Predicted log-magnitudes are clamped here before exp (exp(7) ~ 1100, above any "
                                     "|STFT| of audio in [-1, 1] with a 640-sample Hann window, at most 320): only "
                                     "guards against overflow early in training.")

    def __post_init__(self):
        if min(self.dim, self.ffn_dim, self.n_blocks) < 1 or self.kernel % 2 == 0:
            raise ValueError(f"neural vocoder: dim ({self.dim}), ffn_dim ({self.ffn_dim}), n_blocks ({self.n_blocks}) "
                             f"must be >= 1 and kernel ({self.kernel}) odd")
        if self.n_fft % 2 or self.layer_scale < 0:
            raise ValueError(f"neural vocoder: n_fft ({self.n_fft}) must be even and layer_scale ({self.layer_scale}) "
                             f">= 0")

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "NeuralVocoderConfig":
        if name not in PRESETS:
            raise ValueError(f"unknown neural vocoder preset {name!r}; choose one of {sorted(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})


PRESETS: dict[str, dict] = {
    "tiny": dict(dim=16, ffn_dim=32, n_blocks=1, kernel=3, n_fft=320),  # unit tests
    # = the defaults, the CPU recipe: 1.6M parameters. One training step of 16 x 1 s segments (data, forward, the
    # losses, backward, AdamW) takes ~0.47 s on one core of the 2-core machine (measured: 2.0-2.1 steps/s over 600
    # steps with OMP_NUM_THREADS=1 while another training job held the other core; the losses are ~0.25 s of it).
    # Vocoding 10 s of audio takes ~0.04 s (real-time factor ~0.004; 32 Griffin-Lim iterations: ~0.05)
    "cpu-small": dict(dim=192, ffn_dim=576, n_blocks=6),
    # Vocos' published size (13.5M parameters): for a GPU
    "base": dict(dim=512, ffn_dim=1536, n_blocks=8),
}


class ConvNeXtBlock(nn.Module):
    """x + scale * MLP(LayerNorm(depthwise_conv(x))), on (B, T, D)."""

    def __init__(self, c: NeuralVocoderConfig):
        super().__init__()
        self.dwconv = nn.Conv1d(c.dim, c.dim, c.kernel, padding=c.kernel // 2, groups=c.dim)
        self.norm = nn.LayerNorm(c.dim, eps=1e-6)
        self.fc1 = nn.Linear(c.dim, c.ffn_dim)
        self.fc2 = nn.Linear(c.ffn_dim, c.dim)
        self.scale = nn.Parameter(torch.full((c.dim,), c.layer_scale or 1.0 / c.n_blocks))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dwconv(x.transpose(1, 2)).transpose(1, 2)  # (B, T, D)
        h = self.fc2(F.gelu(self.fc1(self.norm(h))))
        return x + self.scale * h


class NeuralVocoder(nn.Module):
    def __init__(self, config: NeuralVocoderConfig = NeuralVocoderConfig(), mel: MelConfig = MelConfig()):
        super().__init__()
        if config.n_fft < 2 * mel.hop_length:
            raise ValueError(f"neural vocoder: n_fft ({config.n_fft}) must be >= 2 x mel.hop_length "
                             f"({mel.hop_length}) so that the inverse STFT's frames overlap")
        self.config = c = config
        self.mel = mel
        self.n_bins = c.n_fft // 2 + 1
        self.embed = nn.Conv1d(mel.n_mels, c.dim, c.kernel, padding=c.kernel // 2)
        self.embed_norm = nn.LayerNorm(c.dim, eps=1e-6)
        self.blocks = nn.ModuleList(ConvNeXtBlock(c) for _ in range(c.n_blocks))
        self.out_norm = nn.LayerNorm(c.dim, eps=1e-6)
        self.head = nn.Linear(c.dim, 3 * self.n_bins)  # log-magnitude, re, im per bin
        self.register_buffer("window", torch.hann_window(c.n_fft), persistent=False)

    def spectrum(self, log_mel: torch.Tensor) -> torch.Tensor:
        """log-mel (B, T, n_mels) -> complex STFT (B, n_fft/2+1, T) of the waveform, one frame per mel frame."""
        h = self.embed(log_mel.transpose(1, 2)).transpose(1, 2)  # (B, T, D)
        h = self.embed_norm(h)
        for block in self.blocks:
            h = block(h)
        out = self.head(self.out_norm(h)).float()  # (B, T, 3F); float: no complex half under autocast
        log_mag, re, im = out.transpose(1, 2).split(self.n_bins, dim=1)  # each (B, F, T)
        mag = log_mag.clamp(max=self.config.max_log_mag).exp()
        return torch.polar(mag, torch.atan2(im, re))  # (B, F, T) complex

    def forward(self, log_mel: torch.Tensor, lens: torch.Tensor | None = None) -> torch.Tensor:
        """log_mel (B, T, n_mels) or (T, n_mels) -> wave (B, T * hop) or (T * hop,); with lens (B,) frames, samples
        past lens * hop are zeroed. Differentiable (the training forward); wrap in no_grad to synthesise."""
        single = log_mel.dim() == 2
        x = log_mel[None] if single else log_mel  # (B, T, M)
        B, T, M = x.shape
        assert M == self.mel.n_mels, f"expected {self.mel.n_mels} mel bins, got {M}"
        # centred frames: T + 1 frames <-> T * hop samples; repeat the last mel frame to get the (T+1)-th
        x = torch.cat([x, x[:, -1:]], 1).float()  # (B, T+1, M)
        spec = self.spectrum(x)  # (B, F, T+1)
        hop = self.mel.hop_length
        wave = torch.istft(spec, self.config.n_fft, hop, self.config.n_fft, self.window, center=True,
                           length=T * hop)  # (B, T * hop)
        if lens is not None:
            wave = zero_past(wave, lens, hop)
        return wave[0] if single else wave


# ================================================================================================ training losses
@dataclass
class VocoderLossConfig:
    """Reconstruction loss = stft_weight x (spectral convergence + log-magnitude L1), averaged over the resolutions,
    + mel_weight x log-mel L1."""

    resolutions: list[tuple[int, int, int]] = option(
        default_factory=lambda: [(512, 50, 240), (1024, 120, 600), (2048, 240, 1200)],
        help="(n_fft, hop, window) of each STFT of the multi-resolution loss (Parallel WaveGAN's three); windows "
             "from 15 to 75 ms at 16 kHz, so neither fine time nor fine frequency structure goes unpunished.")
    stft_weight: float = option(1.0, "Weight of the multi-resolution STFT loss.")
    mel_weight: float = option(1.0, "Weight of the log-mel L1 (the distance valid/mel_l1 reports).")

    def __post_init__(self):
        if not self.resolutions and self.mel_weight <= 0:
            raise ValueError("loss: no resolutions and mel_weight <= 0 leave nothing to train on")
        for n_fft, hop, win in self.resolutions:
            if not 0 < hop <= win <= n_fft:
                raise ValueError(f"loss.resolutions: ({n_fft}, {hop}, {win}) needs 0 < hop <= window <= n_fft")
        if self.stft_weight < 0 or self.mel_weight < 0:
            raise ValueError(f"loss: stft_weight ({self.stft_weight}) and mel_weight ({self.mel_weight}) must be >= 0")


def stft_magnitude(wave: torch.Tensor, n_fft: int, hop: int, win: int) -> torch.Tensor:
    """wave (B, N) -> |STFT| (B, n_fft/2+1, frames), floored at 1e-5 (MelConfig.log_floor: silence) so that its log
    stays finite and digital silence does not dominate the log-magnitude loss (a 1e-7 floor makes it ~16 nats deep)."""
    window = torch.hann_window(win, device=wave.device)
    spec = torch.stft(wave.float(), n_fft, hop, win, window, center=True, pad_mode="reflect", return_complex=True)
    return spec.abs().clamp(min=1e-5)


def multi_resolution_stft_loss(pred: torch.Tensor, target: torch.Tensor,
                               resolutions: list[tuple[int, int, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """pred, target (B, N) -> (spectral convergence, log-magnitude L1), each the mean over the resolutions.
    Spectral convergence ||S - S_hat||_F / ||S||_F weighs the loud bins; the log L1 weighs every bin alike."""
    sc = log_mag = pred.new_zeros(())
    for n_fft, hop, win in resolutions:
        p, t = stft_magnitude(pred, n_fft, hop, win), stft_magnitude(target, n_fft, hop, win)
        sc = sc + torch.linalg.norm(t - p) / torch.linalg.norm(t)
        log_mag = log_mag + (t.log() - p.log()).abs().mean()
    n = max(1, len(resolutions))
    return sc / n, log_mag / n


def vocoder_loss(pred: torch.Tensor, target: torch.Tensor, mel: MelConfig, c: VocoderLossConfig) -> dict:
    """pred, target (B, N) waves -> {loss, sc, log_mag, mel_l1} (scalars; loss is what is minimised)."""
    sc, log_mag = multi_resolution_stft_loss(pred, target, c.resolutions)
    mel_l1 = (mel_spectrogram(pred, mel) - mel_spectrogram(target, mel)).abs().mean()
    return dict(loss=c.stft_weight * (sc + log_mag) + c.mel_weight * mel_l1, sc=sc, log_mag=log_mag, mel_l1=mel_l1)

