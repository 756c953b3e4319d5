"""Build the synthetic English corpus: audio under a db dir plus one Kaldi data dir per set.

Layout written under ``db`` (everything in it is reproducible from the config)::

    db/corpus.json                      config, version and per-set summary of the last build
    db/wav/<set>/<spk>/<utt>_<hash>.wav 16 kHz mono PCM16
    db/data/<set>/{wav.scp,text,utt2spk,spk2utt,utt2dur,spk2gender,keywords}

Paths in ``db/data/<set>/wav.scp`` are RELATIVE TO THE DB DIR (``wav/train/...``), so the db can be
moved or shared; a recipe's ``local/data.sh`` copies the data dirs and prefixes the paths with the
db location it was given (``../db/wav/...``, relative to the recipe dir).

``keywords`` lists each utterance's keywords (rare names, places, brands), possibly none.

Resuming: the ``<hash>`` in a wav name is a digest of everything that determines its content
(voice, text, perturbation, noise, version), and each wav is written atomically. A wav that exists
and reads back as valid 16 kHz mono is skipped, so a crashed or interrupted build resumes, a
rebuild with the same config only checks files, and a different config never reuses a stale file.

Sets: train, rl_pool, dev and test use the seen speakers; test_unseen_spk uses only held-out
voices (``voices.UNSEEN_VOICES``). Sentences never repeat across sets (``text.generate_sets``).
Each set's speakers take turns over its utterances (balanced), in a seeded order.

Optional sets, built on demand (size 0 = not built), drawn after every other set's sentences, so asking for one
leaves train, rl_pool, dev and the test sets exactly as they were (same sentences, voices and audio) and an SFT model
trained before stays valid:

* ``rl_pool_extra`` (``rl_pool_extra_utts``): a larger RL prompt pool (seen speakers, fresh sentences).
* ``test_extra`` (``test_extra_utts``): a larger test set drawn like ``test`` (seen speakers, fresh sentences), for
  paired tests with the power to see a few-percent WER change (``test``'s 800 utterances resolve about +-8%).

The first ``RL_POOL_EXTRA_MAX`` sentences of rl_pool_extra's stream are reserved whether it is built or not, so
test_extra never shares a sentence with any rl_pool_extra, whichever is built first, and neither changes the other.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import json
import math
import multiprocessing as mp
import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from audiorl.data.audio import AudioError, recording_num_samples, write_wav
from audiorl.data.kaldi import utt2spk_to_spk2utt, write_table
from audiorl.data.synth import text as textgen
from audiorl.data.synth.voices import (
    SAMPLE_RATE,
    SEEN_VOICES,
    UNSEEN_VOICES,
    Perturbation,
    SynthesisError,
    Voice,
    draw_perturbation,
    missing_tools,
    synthesize,
)
from audiorl.log import get_logger

logger = get_logger(__name__)

# Bump when the synthesis pipeline changes in a way that changes audio: invalidates old wavs.
SYNTH_VERSION = 1
SETS = ("train", "rl_pool", "dev", "test", "test_unseen_spk", "rl_pool_extra", "test_extra")
# Sets that are built only when asked for (size > 0); the others always exist, even if empty.
OPTIONAL_SETS = ("rl_pool_extra", "test_extra")
# rl_pool_extra's sentence stream kept out of test_extra up to this many sentences (text.generate_sets reserve).
RL_POOL_EXTRA_MAX = 50000


@dataclass
class CorpusConfig:
    """What the corpus contains. Everything is reproducible from these values."""

    seed: int = field(default=0, metadata={"help": "seed for text, speaker order, perturbation and noise"})
    train_utts: int = field(default=8000, metadata={"help": "utterances in train (~7 h of audio at the default)"})
    rl_pool_utts: int = field(default=3000, metadata={"help": "utterances in rl_pool (fresh sentences for RL)"})
    dev_utts: int = field(default=500, metadata={"help": "utterances in dev (seen speakers)"})
    test_utts: int = field(default=800, metadata={"help": "utterances in test (seen speakers, unseen sentences)"})
    test_unseen_spk_utts: int = field(default=800, metadata={"help": "utterances in test_unseen_spk (held-out voices)"})
    rl_pool_extra_utts: int = field(default=0, metadata={
        "help": "utterances in rl_pool_extra, a larger RL prompt pool (seen speakers, fresh sentences) whose sentences "
                f"come after every other set's, so the other sets do not change; 0 = not built; at most "
                f"{RL_POOL_EXTRA_MAX}"})
    test_extra_utts: int = field(default=0, metadata={
        "help": "utterances in test_extra, a larger test set drawn like test (seen speakers, fresh sentences, none "
                "shared with any rl_pool_extra); the other sets do not change; 0 = not built"})
    keyword_prob: float = field(default=0.25, metadata={
        "help": "chance that a keyword-capable slot takes a keyword (0.25: about a quarter of the sentences have one)"})
    noise_frac: float = field(default=0.1, metadata={
        "help": "fraction of utterances (every set) with additive white or pink noise; 0 disables"})
    snr_min_db: float = field(default=5.0, metadata={"help": "lowest SNR of the additive noise, dB"})
    snr_max_db: float = field(default=25.0, metadata={"help": "highest SNR of the additive noise, dB"})

    def __post_init__(self) -> None:
        for s in SETS:
            n = getattr(self, f"{s}_utts")
            if n < 0:
                raise ValueError(f"{s}_utts must be >= 0, got {n}")
        if self.rl_pool_extra_utts > RL_POOL_EXTRA_MAX:
            raise ValueError(f"rl_pool_extra_utts={self.rl_pool_extra_utts}: at most {RL_POOL_EXTRA_MAX} (the "
                             "sentences kept out of test_extra; raising RL_POOL_EXTRA_MAX changes test_extra)")
        if not 0.0 <= self.noise_frac <= 1.0:
            raise ValueError(f"noise_frac must be in [0, 1], got {self.noise_frac}")
        if not 0.0 <= self.keyword_prob <= 1.0:
            raise ValueError(f"keyword_prob must be in [0, 1], got {self.keyword_prob}")
        if self.snr_min_db > self.snr_max_db:
            raise ValueError(f"snr_min_db ({self.snr_min_db}) must be <= snr_max_db ({self.snr_max_db})")

    def sizes(self) -> dict[str, int]:
        """Utterances per built set (optional sets only when asked for)."""
        return {s: n for s in SETS if (n := getattr(self, f"{s}_utts")) > 0 or s not in OPTIONAL_SETS}


# A few dozen utterances per set: for tests and quick checks of a recipe.
SMOKE_SIZES = {"train_utts": 48, "rl_pool_utts": 24, "dev_utts": 16, "test_utts": 24, "test_unseen_spk_utts": 24}


@dataclass(frozen=True)
class UttPlan:
    """Everything needed to (re)create one utterance."""

    utt: str
    set: str
    voice: Voice
    words: tuple[str, ...]
    keywords: tuple[str, ...]
    pert: Perturbation
    noise: str  # "", "white" or "pink"
    snr_db: float
    noise_seed: int
    wav: str  # relative to the db dir

    @property
    def text(self) -> str:
        return " ".join(self.words)


def _seed_int(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:8], "little")


def plan_corpus(cfg: CorpusConfig) -> dict[str, list[UttPlan]]:
    """The utterances of every set, in utterance-id order; a pure function of ``cfg``."""
    sentences = textgen.generate_sets(cfg.sizes(), cfg.seed, keyword_prob=cfg.keyword_prob,
                                      reserve={"rl_pool_extra": RL_POOL_EXTRA_MAX})
    plans: dict[str, list[UttPlan]] = {}
    for set_name in sentences:
        pool = UNSEEN_VOICES if set_name == "test_unseen_spk" else SEEN_VOICES
        rng = np.random.default_rng(_seed_int(cfg.seed, "voices", set_name))
        order = [pool[i] for i in rng.permutation(len(pool))]
        out = []
        for i, sent in enumerate(sentences[set_name]):
            voice = order[i % len(order)]
            utt = f"{voice.spk}-{set_name}-{i:05d}"
            urng = np.random.default_rng(_seed_int(cfg.seed, "utt", utt))
            pert = draw_perturbation(voice, urng)
            noisy = urng.random() < cfg.noise_frac
            noise = str(urng.choice(["white", "pink"])) if noisy else ""
            snr = round(float(urng.uniform(cfg.snr_min_db, cfg.snr_max_db)), 1) if noisy else 0.0
            noise_seed = int(urng.integers(2**31)) if noisy else 0
            spec = json.dumps([SYNTH_VERSION, SAMPLE_RATE, dataclasses.astuple(voice), sent.text, pert.key(),
                               noise, snr, noise_seed])
            digest = hashlib.sha1(spec.encode()).hexdigest()[:10]
            out.append(UttPlan(utt, set_name, voice, sent.words, sent.keywords, pert, noise, snr, noise_seed,
                               f"wav/{set_name}/{voice.spk}/{utt}_{digest}.wav"))
        out.sort(key=lambda p: p.utt.encode())
        plans[set_name] = out
    return plans


def make_noise(kind: str, n: int, seed: int) -> np.ndarray:
    """Unit-power, zero-mean white or pink (1/f power) noise of ``n`` samples."""
    rng = np.random.default_rng(seed)
    white = rng.standard_normal(n)
    if kind == "white":
        y = white
    elif kind == "pink":
        spec = np.fft.rfft(white)
        f = np.arange(spec.size, dtype=np.float64)
        f[0] = 1.0
        spec[0] = 0.0  # no DC offset
        y = np.fft.irfft(spec / np.sqrt(f), n=n)
    else:
        raise ValueError(f"unknown noise kind {kind!r}; use 'white' or 'pink'")
    return (y / (np.sqrt(np.mean(y**2)) + 1e-12)).astype(np.float32)


def add_noise(x: np.ndarray, kind: str, snr_db: float, seed: int) -> np.ndarray:
    """Add noise at ``snr_db`` relative to the mean power of ``x``; rescale if the peak exceeds 0.99."""
    p_sig = float(np.mean(x.astype(np.float64) ** 2))
    noise = make_noise(kind, x.size, seed) * math.sqrt(p_sig / 10.0 ** (snr_db / 10.0))
    y = x + noise
    peak = float(np.abs(y).max())
    if peak > 0.99:
        y *= 0.99 / peak
    return y.astype(np.float32)


def _existing_samples(path: str) -> int | None:
    """Number of samples of a valid existing 16 kHz wav, or None if missing/invalid."""
    if not os.path.isfile(path):
        return None
    try:
        n, sr = recording_num_samples(path)
    except AudioError:
        return None
    return n if sr == SAMPLE_RATE and n > 0 else None


def _synth_one(args: tuple[UttPlan, str]) -> tuple[str, int, bool]:
    """Create one wav unless a valid one exists: (utt, num_samples, synthesised?)."""
    plan, db = args
    path = os.path.join(db, plan.wav)
    n = _existing_samples(path)
    if n is not None:
        return plan.utt, n, False
    last: Exception | None = None
    for _ in range(2):  # one retry: an engine occasionally fails under load
        try:
            x = synthesize(plan.voice, plan.text, plan.pert)
            break
        except SynthesisError as e:
            last = e
    else:
        raise SynthesisError(f"{plan.utt}: {last}")
    if plan.noise:
        x = add_noise(x, plan.noise, plan.snr_db, plan.noise_seed)
    write_wav(path, x, SAMPLE_RATE)
    return plan.utt, int(x.size), True


def _write_data_dir(d: str, plans: list[UttPlan], num_samples: dict[str, int]) -> None:
    write_table(os.path.join(d, "wav.scp"), {p.utt: p.wav for p in plans})
    write_table(os.path.join(d, "text"), {p.utt: p.text for p in plans})
    utt2spk = {p.utt: p.voice.spk for p in plans}
    write_table(os.path.join(d, "utt2spk"), utt2spk)
    write_table(os.path.join(d, "spk2utt"), utt2spk_to_spk2utt(utt2spk))
    write_table(os.path.join(d, "utt2dur"), {p.utt: f"{num_samples[p.utt] / SAMPLE_RATE:.3f}" for p in plans})
    write_table(os.path.join(d, "spk2gender"), {p.voice.spk: p.voice.gender for p in plans})
    write_table(os.path.join(d, "keywords"), {p.utt: list(p.keywords) for p in plans})


def build_corpus(db: str, cfg: CorpusConfig, nj: int = 2, progress: bool = True) -> dict[str, dict[str, float]]:
    """Synthesise missing audio with ``nj`` worker processes and write ``db/data/<set>``.

    Returns the per-set summary (utts, hours, speakers, words, keyword_utts, noisy_utts), which is
    also logged and saved in ``db/corpus.json``.
    """
    if nj < 1:
        raise ValueError(f"nj must be >= 1, got {nj}")
    plans = plan_corpus(cfg)
    voices = tuple({p.voice for ps in plans.values() for p in ps})
    missing = missing_tools(voices)
    if missing:
        raise SynthesisError(f"missing programs: {', '.join(missing)}; install them with tools/install.sh "
                             f"(Debian: apt-get install espeak-ng flite festival festvox-kdlpc16k "
                             f"festvox-us-slt-hts sox)")
    os.makedirs(db, exist_ok=True)
    for tmp in glob.glob(os.path.join(db, "wav", "*", "*", ".tmp.*")):  # left by a killed build
        os.unlink(tmp)

    todo = [(p, db) for ps in plans.values() for p in ps]
    t0 = time.time()
    num_samples: dict[str, int] = {}
    made = 0
    tty = sys.stderr.isatty()
    bar = tqdm(total=len(todo), desc="synth", unit="utt", disable=not progress, file=sys.stderr,
               mininterval=0.5 if tty else 30.0, dynamic_ncols=tty)
    if nj == 1 or len(todo) < 2:
        results = map(_synth_one, todo)
        pool = None
    else:
        pool = mp.get_context("fork").Pool(nj)
        results = pool.imap_unordered(_synth_one, todo, chunksize=4)
    try:
        for utt, n, synthesised in results:
            num_samples[utt] = n
            made += synthesised
            bar.update(1)
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()
            pool.join()
    wall = time.time() - t0
    logger.info("audio: %d utterances, %d synthesised, %d already there, %.1f s with nj=%d",
                len(todo), made, len(todo) - made, wall, nj)
    wanted = {os.path.normpath(os.path.join(db, p.wav)) for p, _ in todo}
    stale = [f for f in glob.glob(os.path.join(db, "wav", "*", "*", "*.wav")) if os.path.normpath(f) not in wanted]
    if stale:
        logger.info("%d wavs under %s are not part of this build (another seed, size or version); "
                    "they are kept, delete %s to reclaim the space", len(stale), os.path.join(db, "wav"),
                    os.path.join(db, "wav"))

    summary: dict[str, dict[str, float]] = {}
    for set_name, ps in plans.items():
        _write_data_dir(os.path.join(db, "data", set_name), ps, num_samples)
        secs = sum(num_samples[p.utt] for p in ps) / SAMPLE_RATE
        summary[set_name] = {
            "utts": len(ps),
            "hours": round(secs / 3600.0, 3),
            "speakers": len({p.voice.spk for p in ps}),
            "words": sum(len(p.words) for p in ps),
            "keyword_utts": sum(1 for p in ps if p.keywords),
            "noisy_utts": sum(1 for p in ps if p.noise),
        }
        s = summary[set_name]
        logger.info("%-16s %6d utts %7.2f h %3d speakers %7d words %5d with keywords %5d noisy",
                    set_name, s["utts"], s["hours"], s["speakers"], s["words"], s["keyword_utts"], s["noisy_utts"])
    logger.info("%-16s %6d utts %7.2f h", "total", sum(s["utts"] for s in summary.values()),
                sum(s["hours"] for s in summary.values()))
    info = {"version": SYNTH_VERSION, "config": dataclasses.asdict(cfg), "summary": summary,
            "synthesised": made, "wall_s": round(wall, 1), "nj": nj}
    tmp = os.path.join(db, ".corpus.json.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(info, f, indent=2)
        f.write("\n")
    os.replace(tmp, os.path.join(db, "corpus.json"))
    return summary
