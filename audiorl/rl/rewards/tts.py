"""TTS rewards (PAPER.md s4) beyond the group rewards of group.py (R2 ``duration``, R3 ``diversity``).

Registered here (no model needed):
* ``pitch_std``  : the F0 standard deviation of the synthesised waveform (the pitch half of R3), scaled by f0_scale;
* ``speaker_sim``: cosine of injected speaker embeddings (meta['spk_embed'] vs meta['ref_spk_embed']), optional SIM.
Rewards that need a model: declared here as placeholders (``asr_judge``, ``token2text``, ``sim``: their options are
checked when a config loads) and bound by the task to a closure from these factories (``bind_reward``, base.py):
* ``make_token2text_reward(model, tokenizer)`` : R1 through the token-to-text reward model (audiorl/models/
  token2text.py) on ``hyp_tokens``: 1 - WER of its greedy CTC transcript, or its per-token log P(text | tokens);
* ``make_asr_judge_reward(judge)``             : R1 through any ASR judge on waveforms (audiorl/eval/judge.py or
  anything else): ``judge(waves, ref_texts) -> per-utterance WER`` (floats) or transcripts (strings);
* ``make_sim_reward(embed)``                   : SIM with an injected speaker encoder, waves -> (N, D) embeddings.

Waveforms travel in ``RewardInput.meta['waveform']`` (1-D float array) with ``meta['sr']`` (Hz); R3 in full is
``diversity`` (token edit distance) with ``f0_weight`` > 0 after ``attach_f0_std(samples)``, or ``diversity`` +
``pitch_std`` as two weighted entries.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Literal, Sequence

import numpy as np
import torch

from audiorl.rl.rewards.base import RewardInput, register_model_reward, register_reward
from audiorl.rl.rewards.text import Unit, error_rate

logger = logging.getLogger(__name__)

# waves (1-D float arrays, in the order of the samples) + reference texts -> per-utterance WER or transcripts
AsrJudge = Callable[[list[np.ndarray], list[str]], Sequence[Any]]
# waves -> (N, D) speaker embeddings
SpeakerEmbedder = Callable[[list[np.ndarray]], Any]


# ------------------------------------------------------------------------------------------ pitch (R3)
def _waveform(s: RewardInput) -> tuple[np.ndarray, int] | None:
    w = s.meta.get("waveform")
    if w is None:
        return None
    if "sr" not in s.meta:
        raise KeyError("a sample with meta['waveform'] needs meta['sr'] (its sample rate in Hz)")
    w = w.detach().cpu().numpy() if isinstance(w, torch.Tensor) else np.asarray(w)
    return w.astype(np.float32).reshape(-1), int(s.meta["sr"])


def attach_f0_std(samples: list[RewardInput], unit: Literal["hz", "semitone"] = "hz") -> int:
    """Fill meta['f0_std'] from meta['waveform'] (audiorl.eval.mcd.f0_std, YIN) where it is missing, so that
    ``diversity(f0_weight > 0)`` and ``pitch_std`` can read it. Returns how many were computed."""
    from audiorl.eval.mcd import f0_std

    n = 0
    for s in samples:
        if "f0_std" not in s.meta and (ws := _waveform(s)) is not None:
            s.meta["f0_std"] = f0_std(ws[0], ws[1], unit=unit)
            n += 1
    return n


@register_reward("pitch_std")
def pitch_std(samples: list[RewardInput], f0_scale: float = 50.0, unit: Literal["hz", "semitone"] = "hz"
              ) -> list[float]:
    """R3's pitch term (PAPER.md s4): std of F0 over the voiced frames of the sample's waveform / f0_scale.

    Uses meta['f0_std'] when present, else computes it from meta['waveform'] and meta['sr'] (and caches it in meta).
    A sample with neither scores 0 (logged): with no waveforms in a group the term is constant and its advantage
    contribution vanishes. f0_scale ~ a typical F0 std (50 Hz; ~2 for semitones) keeps the term O(1).
    """
    attach_f0_std(samples, unit)
    missing = sum("f0_std" not in s.meta for s in samples)
    if missing:
        logger.warning("pitch_std: %d of %d samples have no waveform or f0_std; they score 0", missing, len(samples))
    return [float(s.meta.get("f0_std", 0.0)) / f0_scale for s in samples]


# ------------------------------------------------------------------------------------------ SIM
def _cosine(a: Any, b: Any) -> float:
    a, b = np.asarray(a, dtype=np.float64).reshape(-1), np.asarray(b, dtype=np.float64).reshape(-1)
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))


@register_reward("speaker_sim")
def speaker_sim(samples: list[RewardInput]) -> list[float]:
    """Optional SIM reward: cosine(meta['spk_embed'], meta['ref_spk_embed']) in [-1, 1]; the task injects both
    (e.g. resemblyzer embeddings of the synthesised and the prompt speaker's audio, audiorl/eval/sim.py)."""
    bad = [i for i, s in enumerate(samples) if "spk_embed" not in s.meta or "ref_spk_embed" not in s.meta]
    if bad:
        raise KeyError(f"speaker_sim needs meta['spk_embed'] and meta['ref_spk_embed'] on every sample (missing at "
                       f"{bad[:5]}); or register make_sim_reward(embedder) to embed the waveforms")
    return [_cosine(s.meta["spk_embed"], s.meta["ref_spk_embed"]) for s in samples]


def make_sim_reward(embed: SpeakerEmbedder) -> Callable[..., list[float]]:
    """SIM with an injected speaker encoder: embed(waves) -> (N, D) of meta['waveform'] (cached in
    meta['spk_embed']) against meta['ref_spk_embed']. Register: ``register_reward('sim')(make_sim_reward(e))``;
    e.g. ``lambda w: SpeakerEncoder().embed_batch(w, sr)`` from audiorl/eval/sim.py."""

    def sim(samples: list[RewardInput]) -> list[float]:
        todo = [s for s in samples if "spk_embed" not in s.meta]
        if todo:
            waves = []
            for s in todo:
                ws = _waveform(s)
                if ws is None:
                    raise KeyError("sim: a sample has neither meta['spk_embed'] nor meta['waveform']")
                waves.append(ws[0])
            for s, e in zip(todo, np.asarray(embed(waves))):
                s.meta["spk_embed"] = e
        return speaker_sim(samples)

    return sim


# ------------------------------------------------------------------------------------------ R1
def _accuracy_from_judge(outs: Sequence[Any], refs: list[str], unit: Unit, floor: float) -> list[float]:
    """Judge outputs (WER floats or transcript strings) -> max(floor, 1 - WER)."""
    if len(outs) != len(refs):
        raise ValueError(f"the ASR judge returned {len(outs)} results for {len(refs)} waveforms")
    wers = [error_rate(r, o, unit) if isinstance(o, str) else float(o) for o, r in zip(outs, refs)]
    return [max(floor, 1.0 - w) for w in wers]


def make_asr_judge_reward(judge: AsrJudge) -> Callable[..., list[float]]:
    """R1 via an ASR judge on the synthesised waveforms (PAPER.md s4): max(floor, 1 - WER).

    ``judge(waves, ref_texts)`` gets meta['waveform'] of every sample (1-D float arrays at meta['sr'], which must be
    the rate the judge expects; resampling is the judge's or the task's job) and the samples' ``ref_text``; it
    returns per-utterance WERs (floats) or transcripts (strings, then scored with ``error_rate`` in ``unit``).
    Register: ``register_reward('asr_judge')(make_asr_judge_reward(judge))``. (A task that transcribes itself can
    put the transcript in ``hyp_text`` and use the plain ``accuracy`` reward instead.)"""

    def asr_judge(samples: list[RewardInput], unit: Unit = "word", floor: float = -1.0) -> list[float]:
        waves = []
        for i, s in enumerate(samples):
            ws = _waveform(s)
            if ws is None:
                raise KeyError(f"asr_judge: sample {i} has no meta['waveform'] (synthesise the tokens first)")
            waves.append(ws[0])
        return _accuracy_from_judge(judge(waves, [s.ref_text for s in samples]), [s.ref_text for s in samples],
                                    unit, floor)

    return asr_judge


def make_token2text_reward(model: torch.nn.Module, tokenizer: Any, batch_size: int = 64
                           ) -> Callable[..., list[float]]:
    """R1 through the token-to-text reward model, on ``hyp_tokens`` (speech ids in [0, Vs)) and ``ref_text``.

    model: a ``Token2Text`` (eval mode; its device is used); tokenizer: the reward model's text tokenizer
    (``encode(str) -> ids``, ``decode(ids) -> str``). Options of the returned reward:
      mode 'wer'    : max(floor, 1 - WER(ref_text, decode(greedy CTC))) in ``unit``; cheap and bounded;
      mode 'logprob': log P(ref ids | tokens) / len(ref ids), the per-token CTC log-likelihood (DiffRO's reward,
                      here without gradient); a sample CTC cannot align (fewer tokens than the text needs) scores
                      ``infeasible``.
    Register: ``register_reward('token2text')(make_token2text_reward(model, tok))``."""
    def pad(seqs: list[list[int]], device) -> tuple[torch.Tensor, torch.Tensor]:
        lens = torch.tensor([max(len(x), 1) for x in seqs], device=device)
        out = torch.zeros(len(seqs), int(lens.max()), dtype=torch.long, device=device)
        for i, x in enumerate(seqs):
            out[i, : len(x)] = torch.tensor(x, dtype=torch.long, device=device)
        return out, lens

    @torch.no_grad()
    def token2text(samples: list[RewardInput], mode: Literal["wer", "logprob"] = "wer", unit: Unit = "word",
                   floor: float = -1.0, infeasible: float = -10.0) -> list[float]:
        if mode not in ("wer", "logprob"):
            raise ValueError(f"token2text: mode={mode!r}; choose 'wer' or 'logprob'")
        dev = next(model.parameters()).device
        out: list[float] = []
        for b in range(0, len(samples), batch_size):
            chunk = samples[b: b + batch_size]
            # an empty sample is fed one token 0 of length 1 (CTC needs a frame); its score is then ~floor
            tokens, lens = pad([list(s.hyp_tokens) for s in chunk], dev)
            if mode == "wer":
                hyps = [tokenizer.decode(ids) for ids in model.ctc_greedy(tokens, lens)]
                out += [max(floor, 1.0 - error_rate(s.ref_text, h, unit)) for s, h in zip(chunk, hyps)]
            else:
                refs = [tokenizer.encode(s.ref_text) for s in chunk]
                ref_ids, _ = pad(refs, dev)
                ref_lens = torch.tensor([len(r) for r in refs], device=dev)  # 0 is fine: P(all blank)
                ll = model.log_likelihoods(tokens, lens, ref_ids, ref_lens)["text"]  # (b,)
                per_tok = ll / ref_lens.clamp(min=1)
                out += [float(v) if np.isfinite(float(v)) else infeasible for v in per_tok.cpu()]
        return out

    return token2text


# ------------------------------------------------------------------------------------------ placeholders
# The names a config may use before any model is loaded; audiorl/tasks/tts_rl.py binds them. Same options as the
# closures above (keep the signatures in step).
def _unbound(name: str, fix: str) -> RuntimeError:
    return RuntimeError(f"reward {name!r} needs a model that is not loaded: {fix}")


@register_model_reward("asr_judge")
def _asr_judge_unbound(samples: list[RewardInput], unit: Unit = "word", floor: float = -1.0) -> list[float]:
    raise _unbound("asr_judge", "set the RL config's models.asr_exp (the ASR judge) and models.t2m_exp (to make "
                                "waveforms)")


@register_model_reward("token2text")
def _token2text_unbound(samples: list[RewardInput], mode: Literal["wer", "logprob"] = "wer", unit: Unit = "word",
                        floor: float = -1.0, infeasible: float = -10.0) -> list[float]:
    raise _unbound("token2text", "set the RL config's models.reward_model_exp (tts.sh stage 12)")


@register_model_reward("sim")
def _sim_unbound(samples: list[RewardInput]) -> list[float]:
    raise _unbound("sim", "set the RL config's models.t2m_exp (waveforms are embedded with resemblyzer)")
