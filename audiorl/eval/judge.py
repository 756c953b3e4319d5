"""The ASR judge: intelligibility of (synthesised) speech as the WER of the egs/<corpus>/asr SFT model on it.

    judge = ASRJudge.load("../asr/exp/asr_train_asr")               # the ASR recipe's experiment dir
    hyps = judge.transcribe(waves, sr=16000)                        # batched, in memory (e.g. GRPO rollouts)
    wers = judge.wer(waves, refs, sr=16000)                         # per-utterance WER, same scoring as the recipes
    res = judge.score_scp("exp/x/synth_test/wav.scp", "data/test/text", "exp/x/synth_test/judge")

A wave goes through exactly what the judge was trained on: 16-bit-scaled Kaldi fbank with the ASR recipe's feature
config (``<asr_dir>/conf/fbank.conf``), the global CMVN of its training set (the path its config.yaml names), then
greedy LLM decoding (or beam search, or CTC best path) in length-sorted batches (audiorl.tasks.asr.decode_utts).
Relative paths in the ASR experiment's config.yaml (tokenizer, CMVN) are relative to the ASR recipe dir, which is
``asr_dir`` (default: two levels above the experiment dir, ``<asr_dir>/exp/<name>``), never to the caller's cwd:
the TTS recipe has a tokenizer of its own at the same relative path.

``score_scp`` writes ``<out>/text`` (hypotheses), ``<out>/score_word/result.{txt,json}`` through the ASR scoring code
(audiorl.eval.sclite; RESULTS.md tables take their 95% bootstrap interval from result.json) and ``<out>/rtf.json``.
"""

from __future__ import annotations

import json
import os
import time
from typing import Sequence

import numpy as np
import torch

from audiorl.data.kaldi import DataDirError, read_table, write_table
from audiorl.log import get_logger

logger = get_logger(__name__)


class _MemFeats:
    """The two things decode_utts needs from a feature data set, for in-memory features."""

    def __init__(self, feats: list[np.ndarray]):
        self.mats = {str(i): f for i, f in enumerate(feats)}
        self.frames = {k: f.shape[0] for k, f in self.mats.items()}

    def collate(self, keys: list[str]) -> dict:
        mats = [self.mats[k] for k in keys]
        x = torch.zeros(len(mats), max(m.shape[0] for m in mats), mats[0].shape[1])
        for i, m in enumerate(mats):
            x[i, : m.shape[0]] = torch.from_numpy(m)
        return {"feats": x, "feat_lens": torch.tensor([m.shape[0] for m in mats])}


class ASRJudge:
    def __init__(self, model, tokens, cmvn: tuple[np.ndarray, np.ndarray] | None, fbank_opts: dict,
                 device: str | torch.device = "cpu", mode: str = "llm", beam_size: int = 1, batch_frames: int = 20000,
                 name: str = "judge"):
        if mode not in ("llm", "ctc"):
            raise ValueError(f"judge mode {mode!r}: use 'llm' or 'ctc'")
        self.model, self.tokens, self.cmvn = model.eval(), tokens, cmvn
        opts = dict(fbank_opts)
        self.sr = int(opts.pop("sample_frequency", 16000))
        opts.setdefault("num_mel_bins", 80)
        self.fbank_opts = opts
        self.win = int(self.sr * float(opts.get("frame_length", 25.0)) / 1000)
        self.device = torch.device(device)
        self.mode, self.beam_size, self.batch_frames, self.name = mode, beam_size, batch_frames, name
        n_mels = model.config.encoder.n_mels
        if opts["num_mel_bins"] != n_mels or (cmvn is not None and len(cmvn[0]) != n_mels):
            raise ValueError(f"{name}: the ASR model reads {n_mels} fbank bins but the feature config gives "
                             f"{opts['num_mel_bins']} and the CMVN {len(cmvn[0]) if cmvn is not None else '-'}: pass "
                             f"the ASR recipe's fbank config")

    @classmethod
    def load(cls, asr_exp: str, asr_dir: str | None = None, fbank_conf: str | None = None, checkpoint: str = "",
             device: str | torch.device = "cpu", mode: str = "llm", beam_size: int = 1,
             batch_frames: int = 20000) -> "ASRJudge":
        """Load the ASR experiment ``asr_exp`` (its config.yaml + final weights, or ``checkpoint``).
        ``asr_dir``: the ASR recipe dir its relative paths refer to (default: ``asr_exp/../..``); ``fbank_conf``:
        its feature config (default: ``<asr_dir>/conf/fbank.conf`` if present, else 80-bin 16 kHz defaults)."""
        from audiorl.data.features import load_cmvn, read_fbank_conf
        from audiorl.tasks.asr import load_asr_model

        cfg_path = os.path.join(asr_exp, "config.yaml")
        if not os.path.isfile(cfg_path):
            raise FileNotFoundError(f"{cfg_path}: no such file; train the ASR judge first (egs/<corpus>/asr: ./run.sh "
                                    f"--stop_stage 5) or point --asr_exp at a trained ASR experiment dir")
        root = asr_dir if asr_dir is not None else (os.path.dirname(os.path.dirname(os.path.normpath(asr_exp))) or ".")
        model, cfg, tokens, checkpoint = load_asr_model(asr_exp, checkpoint, device, base_dir=root)
        if fbank_conf is None:
            cand = os.path.join(root, "conf", "fbank.conf")
            fbank_conf = cand if os.path.isfile(cand) else ""
            if not fbank_conf:
                logger.warning("%s: no conf/fbank.conf; the judge uses 80-bin 16 kHz fbank defaults", root)
        opts = read_fbank_conf(fbank_conf) if fbank_conf else {}
        cmvn = load_cmvn(cfg.data.cmvn) if cfg.data.cmvn else None
        logger.info("ASR judge %s (%s, %s%s)", checkpoint, mode, "greedy" if beam_size == 1 else f"beam {beam_size}",
                    f", fbank {fbank_conf}" if fbank_conf else "")
        return cls(model, tokens, cmvn, opts, device, mode, beam_size, batch_frames,
                   name=os.path.basename(os.path.normpath(asr_exp)))

    # ---- in memory ---------------------------------------------------------------------------------------------
    def features(self, wave, sr: int) -> np.ndarray | None:
        """(T, n_mels) CMVN-normalised fbank of one wave; None when it is shorter than one frame."""
        from audiorl.data.features import apply_cmvn, fbank
        from audiorl.eval.mcd import resample

        x = resample(np.asarray(wave.detach().cpu() if isinstance(wave, torch.Tensor) else wave, dtype=np.float32),
                     int(sr), self.sr)
        if len(x) < self.win:
            return None
        f = fbank(x, sr=self.sr, **self.fbank_opts).numpy()
        return apply_cmvn(f, *self.cmvn).astype(np.float32) if self.cmvn is not None else f

    def transcribe(self, waves: Sequence, sr: int | Sequence[int] = 16000) -> list[str]:
        """Batched transcripts of float waves in [-1, 1] (numpy or torch, any rate); '' for clips shorter than
        one analysis frame."""
        from audiorl.tasks.asr import decode_utts

        srs = [int(sr)] * len(waves) if np.isscalar(sr) else [int(s) for s in sr]
        feats = [self.features(w, s) for w, s in zip(waves, srs)]
        ok = [i for i, f in enumerate(feats) if f is not None]
        out = [""] * len(waves)
        if ok:
            data = _MemFeats([feats[i] for i in ok])
            hyps = decode_utts(self.model, data, self.tokens, list(data.frames), self.device,
                               beam_size=self.beam_size, max_frames=self.batch_frames, mode=self.mode)
            for k, i in enumerate(ok):
                out[i] = hyps[str(k)]
        return out

    def wer(self, waves: Sequence, refs: Sequence[str], sr: int | Sequence[int] = 16000,
            hyps: Sequence[str] | None = None) -> list[float]:
        """Per-utterance WER (errors / reference words; errors alone for an empty reference) of each wave against
        its reference text, scored like the recipes (audiorl.eval.wer.score). ``hyps``: transcripts already made."""
        from audiorl.eval.wer import score

        if len(waves) != len(refs):
            raise ValueError(f"judge.wer: {len(waves)} waves but {len(refs)} references")
        hyps = list(hyps) if hyps is not None else self.transcribe(waves, sr)
        res = score({str(i): r for i, r in enumerate(refs)}, {str(i): h for i, h in enumerate(hyps)})
        return [c.err / c.wrd if c.wrd else float(c.err) for c in (res.utts[str(i)].counts for i in range(len(refs)))]

    # ---- a wav.scp -----------------------------------------------------------------------------------------------
    def score_scp(self, wavs: str, ref_text: str, out_dir: str, utt2spk: str | None = None,
                  keywords: str | None = None, chunk: int = 64, progress: bool = True):
        """Transcribe every utterance of ``wavs`` (a wav.scp or a data dir) and score it against ``ref_text``:
        writes ``out_dir/{text,rtf.json}`` and ``out_dir/score_word/result.{txt,json}``; returns the ScoreResult."""
        from tqdm import tqdm

        from audiorl.data.kaldi import read_list_table
        from audiorl.eval.sclite import write_result
        from audiorl.eval.sim import open_audio
        from audiorl.eval.wer import score

        audio = open_audio(wavs)
        refs = read_table(ref_text, allow_empty_value=True)
        utts = list(audio)
        extra = [u for u in utts if u not in refs]
        if extra:
            raise DataDirError(f"{wavs}: {len(extra)} utterances have no reference in {ref_text} (first: "
                               f"'{extra[0]}'); judge audio against the text of the same data set")
        hyps: dict[str, str] = {}
        audio_s = 0.0
        t0 = time.perf_counter()
        with tqdm(total=len(utts), desc=f"judge {self.name}", unit="utt", leave=False,
                  disable=not progress or len(utts) < 8) as bar:
            for i in range(0, len(utts), chunk):
                part = utts[i: i + chunk]
                loaded = [audio.load(u) for u in part]
                audio_s += sum(len(w) / s for w, s in loaded)
                hyps.update(zip(part, self.transcribe([w for w, _ in loaded], [s for _, s in loaded])))
                bar.update(len(part))
        dt = time.perf_counter() - t0
        os.makedirs(out_dir, exist_ok=True)
        write_table(os.path.join(out_dir, "text"), hyps)
        ref_sub = {u: refs[u] for u in refs if u in hyps} if len(hyps) < len(refs) else refs
        if len(ref_sub) < len(refs):
            logger.warning("%s: judging %d of the %d utterances of %s", wavs, len(ref_sub), len(refs), ref_text)
        kws = read_list_table(keywords) if keywords else None
        res = score(ref_sub, hyps, keywords=kws)
        write_result(os.path.join(out_dir, "score_word"), res, utt2spk=read_table(utt2spk) if utt2spk else None,
                     ref_path=ref_text, hyp_path=os.path.join(out_dir, "text"))
        with open(os.path.join(out_dir, "rtf.json"), "w") as f:
            json.dump({"utts": len(hyps), "decode_seconds": round(dt, 3), "audio_seconds": round(audio_s, 2),
                       "rtf": round(dt / max(audio_s, 1e-9), 5), "judge": self.name, "mode": self.mode,
                       "beam_size": self.beam_size}, f, indent=1)
        logger.info("%s: %s (judge %s, %.1f s)", wavs, res.summary_line(), self.name, dt)
        return res


def judge_wer(judge: ASRJudge, waves: Sequence, refs: Sequence[str], sr: int | Sequence[int] = 16000
              ) -> tuple[list[float], list[str]]:
    """(per-utterance WER, transcripts): the one call an intelligibility reward needs."""
    hyps = judge.transcribe(waves, sr)
    return judge.wer(waves, refs, sr, hyps=hyps), hyps

