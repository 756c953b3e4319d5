"""TTS synthesis real-time factor on CPU, split into LLM (text -> speech tokens) / token-to-mel / vocoder.

The recipe's models (egs/synth_en/tts/conf: train_tts_lm.yaml's LM with 400 text + 625 speech ids, train_token2mel.yaml's
flow-matching model) with random weights, or trained ones (``--lm_exp``/``--t2m_exp``), and conf/synth.yaml's sampling
and Griffin-Lim settings, through audiorl.tasks.tts_synth.Synthesizer (the code path of tts.sh stage 9). Random weights
would stop at random, so eos is forbidden before and forced at exactly ``--seconds`` x 25 tokens: every row makes the
same amount of audio. RTF = seconds of compute / seconds of audio (lower is faster); warm-up runs are not timed,
medians of ``--repeats``. ``python -m bench.bench_tts --help``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import replace
from pathlib import Path

import torch

from bench import format_table, pick_device

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "egs" / "synth_en" / "tts" / "conf"
TEXT_VOCAB, CODEBOOK, SPK = 400, 625, 256


class _FakeText:
    """Stands in for the sentencepiece model: every text is ``n`` ids."""

    def __init__(self, n: int):
        self.n, self.vocab_size, self.path = n, TEXT_VOCAB, "(bench)"

    def encode(self, text: str) -> list[int]:
        return [(7 * i + len(text)) % TEXT_VOCAB for i in range(self.n)]


def build(args, device):
    from audiorl.config import load_config
    from audiorl.models.token2mel import Token2Mel
    from audiorl.models.tts_lm import TTSLM
    from audiorl.tasks.tts import TTSLMTrainConfig, Token2MelTrainConfig, load_token2mel, load_tts_lm
    from audiorl.tasks.tts_synth import GriffinLimConfig, Synthesizer, Token2MelSamplingConfig

    synth = load_config(_synth_cls(), CONF / "synth.yaml", ["--t2m_exp", "x", "--out_dir", "x", "--lm_exp", "x"])
    torch.manual_seed(0)
    if args.t2m_exp:
        t2m = load_token2mel(args.t2m_exp, device=device)
        t2m_model, mel = t2m.model, t2m.config.mel
    else:
        c = load_config(Token2MelTrainConfig, CONF / "train_token2mel.yaml")
        t2m_model, mel = Token2Mel(replace(c.model, vocab_size=CODEBOOK)), c.mel
    if args.lm_exp:
        lm_model = load_tts_lm(args.lm_exp, device=device).model
    else:
        c = load_config(TTSLMTrainConfig, CONF / "train_tts_lm.yaml")
        lm_model = TTSLM(replace(c.model, text_vocab_size=TEXT_VOCAB, speech_vocab_size=CODEBOOK))
    text = _FakeText(args.text_tokens)
    text.vocab_size = lm_model.config.text_vocab_size
    vocoder = GriffinLimConfig(n_iter=synth.vocoder.n_iter, momentum=synth.vocoder.momentum)
    t2m_s = Token2MelSamplingConfig(n_steps=synth.token2mel.n_steps, solver=synth.token2mel.solver,
                                    cfg_strength=synth.token2mel.cfg_strength)
    syn = Synthesizer(t2m_model, mel, lm_model, text, vocoder, t2m_s, device)
    n = round(args.seconds * 25)
    per_text = n / args.text_tokens
    sampling = replace(synth.sampling, max_new_tokens=n + 1, min_tokens_per_text=per_text,
                       max_tokens_per_text=per_text, loop_window=synth.sampling.loop_window)
    return syn, sampling


def _synth_cls():
    from audiorl.bin.tts_synth import SynthConfig

    return SynthConfig


def case(syn, sampling, batch: int, args) -> dict:
    texts = [f"utterance number {i}" for i in range(batch)]
    spk = torch.nn.functional.normalize(torch.randn(batch, syn.spk_embed_dim or 1), dim=-1).numpy()
    spk = spk if syn.spk_embed_dim else None
    g = torch.Generator(device=syn.device)
    runs = []
    for r in range(args.warmup + args.repeats):
        g.manual_seed(r)
        syn.times = {k: 0.0 for k in syn.times}
        out = syn.synthesize(texts=texts, spk=spk, sampling=sampling, generator=g)
        audio = sum(len(w) for w in out.waves) / syn.sample_rate
        if r >= args.warmup:
            runs.append({k: v / audio for k, v in syn.times.items()} | {"audio": audio})
    med = {k: statistics.median(x[k] for x in runs) for k in runs[0]}
    tokens = sum(len(t) for t in out.tokens)
    return {"batch": batch, "audio_s": med["audio"], "rtf_llm": med["lm"], "rtf_token2mel": med["token2mel"],
            "rtf_vocoder": med["vocoder"], "rtf_total": med["lm"] + med["token2mel"] + med["vocoder"],
            "llm_tok_s": tokens / max(med["lm"] * med["audio"], 1e-9)}


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(prog="python -m bench.bench_tts", description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu", help="cpu (the point of this bench), cuda or auto")
    p.add_argument("--batches", default="1,8", help="utterances per synthesis batch, comma list")
    p.add_argument("--seconds", type=float, default=3.0, help="audio per utterance (synth_en averages ~3 s)")
    p.add_argument("--text_tokens", type=int, default=10, help="text ids per utterance")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per case (median)")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs first")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: cores are shared)")
    p.add_argument("--lm_exp", default="", help="a trained text-to-token LM experiment (default: random weights)")
    p.add_argument("--t2m_exp", default="", help="a trained token-to-mel experiment (default: random weights)")
    args = p.parse_args(argv)
    device = pick_device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    syn, sampling = build(args, device)
    rows = []
    for b in (int(x) for x in args.batches.split(",")):
        rows.append({"device": f"{device.type} x{torch.get_num_threads()}", **case(syn, sampling, b, args)})
    return rows


if __name__ == "__main__":
    print(format_table(main(sys.argv[1:]), title="== bench_tts =="))
