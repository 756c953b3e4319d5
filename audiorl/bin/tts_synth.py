"""Synthesise a data dir: TTS (text -> LM -> token-to-mel -> vocoder) or resynthesis from given speech tokens.

    python -m audiorl.bin.tts_synth --mode tts --lm_exp exp/tts_lm_x --t2m_exp exp/token2mel_x \
        --data_dir data/test --spk_embed dump/spk_embed/train/spk2embed.scp --out_dir exp/tts_lm_x/synth_test \
        [--split 1/2] [--sampling.temperature 0.8 ...]
    python -m audiorl.bin.tts_synth --mode resyn --t2m_exp exp/token2mel_x --tokens dump/tokens/test/tokens.scp \
        --data_dir data/test --out_dir exp/token2mel_x/resyn_test
    python -m audiorl.bin.tts_synth --mode vocode --t2m_exp exp/token2mel_x --data_dir data/test --out_dir exp/vocoded_test

The vocoder is Griffin-Lim unless ``--vocoder.kind neural --vocoder.exp exp/vocoder_x [--vocoder.checkpoint W]`` names
a neural vocoder trained with audiorl.bin.tts_vocoder_train (tts.sh stage 8 with --voc_config) on the same mel analysis.
Mode vocode is the pipeline's ceiling: the real recording -> the token-to-mel model's mel analysis -> the vocoder, so
judge WER / MCD / DNSMOS of resynthesis can be read against what the mel + vocoder alone lose.

Writes ``<out_dir>/wavs/<utt>.wav``, ``<out_dir>/wav.scp`` (paths as given by --out_dir, so keep it relative to the
recipe dir), ``<out_dir>/tokens.{ark,scp}`` (the speech tokens synthesised from: generated ones in mode tts),
``<out_dir>/gen_stats`` (per utterance: number of tokens, and for tts whether the LM chose eos / its loop guard fired)
and ``<out_dir>/rtf.json`` (seconds in LM / token-to-mel / vocoder, audio seconds, real-time factors).
``--split JOB/NJ``: the utterances of --data_dir, sorted by length, are cut into batches of --batch_size and job JOB
takes every NJ-th batch from batch JOB on; merge the job dirs with audiorl.bin.tts_merge. Each batch samples (LM
tokens, flow-matching noise) from its own generator, seeded by --seed and the batch's index, so the output does not
depend on NJ: the same --seed and --batch_size give the same waves with 1 job or 8 (mode vocode draws nothing).
``--draw k`` is another independent sample of the same system (seed + k - 1). ``--help`` lists every option
(sampling, token-to-mel and vocoder settings).
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from audiorl.config import option, parse_cli
from audiorl.data.audio import write_wav
from audiorl.data.kaldi import DataDirError, write_table
from audiorl.log import get_logger, setup_logging
from audiorl.models.tts_lm import SpeechSamplingConfig
from audiorl.tasks.tts_synth import Synthesizer, Token2MelSamplingConfig, VocoderConfig

logger = get_logger("tts_synth")


@dataclass
class SynthConfig:
    """Synthesis of a data dir (one job's share of it)."""

    mode: Literal["tts", "resyn", "vocode"] = option(
        "tts", "'tts': text -> LM -> tokens -> mel -> wave; 'resyn': the given speech tokens (--tokens) -> mel -> wave "
               "(token-to-mel + vocoder alone); 'vocode': data_dir's recordings -> mel -> wave (the vocoder alone).")
    lm_exp: str = option("", "Text-to-token LM experiment dir (mode tts).")
    lm_checkpoint: str = option("", "LM weights; '' = what its training stage ended with.")
    t2m_exp: str = option("", "Token-to-mel experiment dir.")
    t2m_checkpoint: str = option("", "Token-to-mel weights; '' = what its training stage ended with.")
    data_dir: str = option("data/test", "Data dir to synthesise: text (mode tts) and utt2spk; its utterance ids name "
                                        "the outputs.")
    tokens: str = option("", "Mode resyn: the speech-token scp of data_dir (e.g. dump/tokens/test/tokens.scp).")
    spk_embed: str = option("", "Speaker condition: a spk2embed.scp (speaker -> embedding, looked up via "
                                "data_dir/utt2spk; e.g. the train set's speaker means for seen voices) or, with "
                                "spk_per_utt true, an utterance-level spk_embed.scp of data_dir.")
    spk_per_utt: bool = option(False, "Condition each utterance on its own recording's embedding (spk_embed is then "
                                      "a spk_embed.scp keyed by utterance).")
    out_dir: str = option("", "Output dir (see the module docstring).")
    split: str = option("1/1", "JOB/NJ: synthesise every NJ-th batch from batch JOB on (vocode: every NJ-th "
                               "utterance).")
    batch_size: int = option(16, "Utterances per batch (sorted by length, so padding stays small). With --seed it "
                                 "fixes the samples: the same values give the same output for any NJ.")
    seed: int = option(0, "Seed of the LM sampling and the flow-matching noise; batch b draws from "
                          "batch_seed(seed, b).")
    draw: int = option(1, "Synthesis draw k >= 1 samples with seed + k - 1 (draw 1 = --seed itself): tts.sh stage 11 "
                          "--synth_draws K scores K independent draws of each sampled system.")
    device: Literal["auto", "cpu", "cuda"] = option("auto", "'auto' = CUDA when available.")
    max_utts: int = option(0, "Synthesise only the first N utterances of this job's share, in batch order (0 = all).")
    sampling: SpeechSamplingConfig = option(default_factory=SpeechSamplingConfig, help="LM sampling (mode tts).")
    token2mel: Token2MelSamplingConfig = option(default_factory=Token2MelSamplingConfig, help="Token-to-mel sampling.")
    vocoder: VocoderConfig = option(default_factory=VocoderConfig, help="Mel -> wave: Griffin-Lim (default) or a "
                                                                       "trained neural vocoder.")

    def __post_init__(self):
        if not self.t2m_exp or not self.out_dir:
            raise ValueError("--t2m_exp and --out_dir are required")
        if self.mode == "tts" and not self.lm_exp:
            raise ValueError("--mode tts needs --lm_exp (or use --mode resyn --tokens SCP)")
        if self.mode == "resyn" and not self.tokens:
            raise ValueError("--mode resyn needs --tokens (the speech-token scp of --data_dir)")
        if self.batch_size < 1:
            raise ValueError(f"--batch_size {self.batch_size} must be >= 1")
        if self.draw < 1:
            raise ValueError(f"--draw {self.draw} must be >= 1 (draw 1 samples with --seed itself)")


def batch_seed(seed: int, b: int) -> int:
    """The generator seed of batch b: (seed x 1000003 + b) mod 2^32. A CPU torch.Generator keeps only the low 32 bits
    of its seed (seed x 2^32 + b would make every seed the same), so seeds and batches are spread inside 32 bits:
    distinct for batch indices below 1000003 and seeds below 4294; seed 0 gives batch b the seed b."""
    return (seed * 1_000_003 + b) % 2 ** 32


def job_batches(lengths: dict[str, int], batch_size: int, job: int, nj: int) -> list[tuple[int, list[str]]]:
    """This job's (batch index, utterances): all utterances sorted by (length, id), cut into batches of batch_size,
    every nj-th batch from batch job - 1 on. The batches and their indices do not depend on nj."""
    order = sorted(lengths, key=lambda u: (lengths[u], u))
    batches = [order[i: i + batch_size] for i in range(0, len(order), batch_size)]
    return [(b, batch) for b, batch in enumerate(batches) if b % nj == job - 1]


def load_inputs(c: SynthConfig, syn: Synthesizer, utts_all: list[str]):
    """(this job's (batch index, utterances) in synthesis order, utt -> text / tokens / waveform, utt -> speaker row
    or None)."""
    from audiorl.tasks.asr import parse_split
    from audiorl.tasks.tts import TOKENS_FIX
    from audiorl.tasks.tts_data import (check_coverage, read_embed_table, read_token_table, read_utt2spk,
                                        speaker_rows)

    job, nj = parse_split(c.split)
    if c.mode == "vocode":  # nothing is sampled: a round-robin share of the recordings, batched by length
        from audiorl.data.audio import load_wav_scp_entry
        from audiorl.data.kaldi import read_table

        utts = utts_all[job - 1::nj]
        if c.max_utts:
            utts = utts[: c.max_utts]
        scp = os.path.join(c.data_dir, "wav.scp")
        wavs = read_table(scp)
        check_coverage(utts, wavs, scp, "recordings", "fix the data dir", False, c.data_dir)
        inputs = {u: load_wav_scp_entry(wavs[u], target_sr=syn.sample_rate, where=f"{scp} '{u}'")[0] for u in utts}
        return job_batches({u: len(x) for u, x in inputs.items()}, c.batch_size, 1, 1), inputs, None
    if c.mode == "resyn":
        table = read_token_table(c.tokens, syn.t2m.config.vocab_size, TOKENS_FIX)
        check_coverage(utts_all, table, c.tokens, "speech tokens", TOKENS_FIX, False, c.data_dir)
        inputs = {u: table[u] for u in utts_all}
        lengths = {u: len(x) for u, x in inputs.items()}
    else:
        from audiorl.tasks.tts_data import read_texts

        texts = read_texts(c.data_dir)
        inputs = {u: texts[u] for u in utts_all}
        lengths = {u: len(syn.text.encode(x)) for u, x in inputs.items()}
    batches = job_batches(lengths, c.batch_size, job, nj)
    if c.max_utts:
        kept, left = [], c.max_utts
        for b, batch in batches:
            if left > 0:
                kept.append((b, batch[:left]))
                left -= len(kept[-1][1])
        batches = kept
    utts = [u for _, batch in batches for u in batch]
    inputs = {u: inputs[u] for u in utts}
    spk = None
    if syn.spk_embed_dim:
        if not c.spk_embed:
            raise ValueError(f"the models are speaker-conditioned ({syn.spk_embed_dim}-d): pass --spk_embed (e.g. "
                             f"dump/spk_embed/train/spk2embed.scp)")
        spk = {}
        if utts:  # a job can get no batch at all (more jobs than batches): it writes empty tables
            emb = read_embed_table(c.spk_embed, syn.spk_embed_dim, "compute it with tts.sh stage 6")
            u2s = None if c.spk_per_utt else read_utt2spk(c.data_dir, utts)
            spk = dict(zip(utts, speaker_rows(utts, emb, u2s, c.spk_embed)))
    return batches, inputs, spk


def run(c: SynthConfig) -> dict:
    from tqdm import tqdm

    from audiorl.tasks.tts_data import pick_device, read_texts

    device = pick_device(c.device)
    syn = Synthesizer.from_exps(c.t2m_exp, c.lm_exp if c.mode == "tts" else "", c.t2m_checkpoint, c.lm_checkpoint,
                                c.vocoder, c.token2mel, device)
    utts_all = sorted(read_texts(c.data_dir))
    batches, inputs, spk = load_inputs(c, syn, utts_all)
    n_utts = sum(len(batch) for _, batch in batches)
    os.makedirs(os.path.join(c.out_dir, "wavs"), exist_ok=True)
    wav_scp, stats, toks = {}, {}, {}
    empty = 0
    t0 = time.perf_counter()
    audio_s = 0.0
    with tqdm(total=n_utts, desc=f"synth {c.mode}", unit="utt", disable=not sys.stderr.isatty()) as bar:
        for b, batch in batches:
            gen = torch.Generator(device=device).manual_seed(batch_seed(c.seed + c.draw - 1, b))
            rows = np.stack([spk[u] for u in batch]) if spk is not None else None
            if c.mode == "tts":
                out = syn.synthesize(texts=[inputs[u] for u in batch], spk=rows, sampling=c.sampling, generator=gen)
            elif c.mode == "vocode":
                out = syn.vocode([inputs[u] for u in batch])
            else:
                out = syn.synthesize(tokens=[inputs[u] for u in batch], spk=rows, generator=gen)
            empty += out.empty
            for j, u in enumerate(batch):
                path = os.path.join(c.out_dir, "wavs", f"{u}.wav")
                write_wav(path, out.waves[j], syn.sample_rate)
                wav_scp[u] = path
                toks[u] = out.tokens[j]
                audio_s += len(out.waves[j]) / syn.sample_rate
                stats[u] = f"tokens={len(out.tokens[j])}" + (
                    f" eos={str(out.finished[j]).lower()} looped={str(out.looped[j]).lower()}" if out.finished else "")
            bar.update(len(batch))
    total = time.perf_counter() - t0
    import kaldiio

    if c.mode == "vocode":  # no tokens: an empty table keeps the job dir's layout (tts_merge)
        open(os.path.join(c.out_dir, "tokens.scp"), "w").close()
        stats = {u: "tokens=0 vocoded=true" for u in stats}
    else:
        with kaldiio.WriteHelper(f"ark,scp:{c.out_dir}/tokens.ark,{c.out_dir}/tokens.scp") as w:
            for u in sorted(toks):
                w(u, toks[u].astype(np.int32))
    write_table(os.path.join(c.out_dir, "gen_stats"), stats)
    write_table(os.path.join(c.out_dir, "wav.scp"), wav_scp)
    rtf = {"utts": n_utts, "audio_seconds": round(audio_s, 3), "total_seconds": round(total, 3),
           **{f"{k}_seconds": round(v, 3) for k, v in syn.times.items()},
           "rtf": round(total / max(audio_s, 1e-9), 5),
           **{f"rtf_{k}": round(v / max(audio_s, 1e-9), 5) for k, v in syn.times.items()},
           "empty": empty, "mode": c.mode, "device": str(device), "threads": torch.get_num_threads()}
    if c.mode == "tts":
        rtf["eos_chosen"] = sum("eos=true" in s for s in stats.values())
        rtf["looped"] = sum("looped=true" in s for s in stats.values())
    with open(os.path.join(c.out_dir, "rtf.json"), "w") as f:
        json.dump(rtf, f, indent=1)
    logger.info("%d utterances (%.1f s of audio) in %.1f s: RTF %.3f (LM %.3f, token-to-mel %.3f, vocoder %.3f); "
                "%d empty", n_utts, audio_s, total, rtf["rtf"], rtf["rtf_lm"], rtf["rtf_token2mel"],
                rtf["rtf_vocoder"], empty)
    return rtf


def main(argv: list[str] | None = None) -> int:
    c = parse_cli(SynthConfig, argv, prog="tts_synth")
    setup_logging()
    try:
        run(c)
    except (DataDirError, FileNotFoundError, ValueError) as e:
        logger.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
