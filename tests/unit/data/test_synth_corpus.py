"""Synthetic corpus planning and building: speakers, ids, determinism, resumable synthesis."""

import os
import shutil

import numpy as np
import pytest
import soundfile as sf

from audiorl.data.kaldi import read_list_table, read_table
from audiorl.data.synth import corpus as C
from audiorl.data.synth import voices as V

TINY = dict(train_utts=6, rl_pool_utts=3, dev_utts=2, test_utts=3, test_unseen_spk_utts=3)


def test_voice_pools_are_disjoint_and_ids_sort():
    seen = {v.spk for v in V.SEEN_VOICES}
    unseen = {v.spk for v in V.UNSEEN_VOICES}
    assert not seen & unseen
    # Held-out voices differ in engine voice, or in espeak-ng accent and variant.
    seen_engine_voices = {(v.engine, v.voice) for v in V.SEEN_VOICES}
    seen_accents = {v.voice.split("+")[0] for v in V.SEEN_VOICES if v.engine == "espeak-ng"}
    seen_variants = {v.voice.split("+")[1] for v in V.SEEN_VOICES if v.engine == "espeak-ng"}
    for v in V.UNSEEN_VOICES:
        assert (v.engine, v.voice) not in seen_engine_voices
        if v.engine == "espeak-ng":
            accent, variant = v.voice.split("+")
            assert accent not in seen_accents and variant not in seen_variants, v
    with pytest.raises(ValueError):
        V.check_voice_ids((V.SEEN_VOICES[0], V.Voice(V.SEEN_VOICES[0].spk + "x", "flite", "awb", "m")))


def test_plan_is_deterministic_and_kaldi_sorted():
    cfg = C.CorpusConfig(seed=1, **TINY)
    plans = C.plan_corpus(cfg)
    assert plans == C.plan_corpus(C.CorpusConfig(seed=1, **TINY))
    assert plans != C.plan_corpus(C.CorpusConfig(seed=2, **TINY))
    unseen = {v.spk for v in V.UNSEEN_VOICES}
    all_utts = []
    for name, ps in plans.items():
        assert len(ps) == getattr(cfg, f"{name}_utts")
        for p in ps:
            assert p.utt.startswith(p.voice.spk + "-")
            assert (p.voice.spk in unseen) == (name == "test_unseen_spk")
        utts = [p.utt for p in ps]
        assert utts == sorted(utts)
        # Kaldi: sorting by utterance also sorts by speaker.
        spks = [p.voice.spk for p in ps]
        assert spks == sorted(spks)
        all_utts += utts
    assert len(set(all_utts)) == len(all_utts)


def test_rl_pool_extra_leaves_every_other_set_unchanged():
    base = C.plan_corpus(C.CorpusConfig(seed=1, **TINY))
    assert "rl_pool_extra" not in base  # not built unless asked for
    plans = C.plan_corpus(C.CorpusConfig(seed=1, rl_pool_extra_utts=7, **TINY))
    assert set(plans) == set(base) | {"rl_pool_extra"}
    for name, ps in base.items():
        assert plans[name] == ps, name  # same sentences, voices, perturbations, wav names
    extra = plans["rl_pool_extra"]
    assert len(extra) == 7
    others = {p.words for ps in base.values() for p in ps}
    assert not others & {p.words for p in extra}  # fresh sentences
    unseen = {v.spk for v in V.UNSEEN_VOICES}
    assert not unseen & {p.voice.spk for p in extra}  # seen speakers, like rl_pool
    assert all("-rl_pool_extra-" in p.utt and p.wav.startswith("wav/rl_pool_extra/") for p in extra)
    with pytest.raises(ValueError, match="rl_pool_extra_utts"):
        C.CorpusConfig(rl_pool_extra_utts=-1)


def test_noise_snr():
    x = np.sin(np.arange(16000) / 10.0).astype(np.float32) * 0.3
    for kind in ("white", "pink"):
        y = C.add_noise(x, kind, 10.0, seed=5)
        n = y - x
        snr = 10 * np.log10(np.mean(x**2) / np.mean(n**2))
        assert abs(snr - 10.0) < 0.2, (kind, snr)
        assert np.array_equal(y, C.add_noise(x, kind, 10.0, seed=5))


@pytest.mark.skipif(V.missing_tools(), reason=f"synthesis tools missing: {V.missing_tools()}")
def test_build_resumes_and_skips(tmp_path):
    db = str(tmp_path / "db")
    cfg = C.CorpusConfig(seed=0, noise_frac=0.5, **TINY)
    summary = C.build_corpus(db, cfg, nj=1, progress=False)
    assert summary["test_unseen_spk"]["utts"] == 3
    d = os.path.join(db, "data", "train")
    wav = read_table(os.path.join(d, "wav.scp"))
    text = read_table(os.path.join(d, "text"))
    kw = read_list_table(os.path.join(d, "keywords"))
    assert set(wav) == set(text) == set(kw) == set(read_table(os.path.join(d, "utt2dur")))
    for utt, rel in wav.items():
        info = sf.info(os.path.join(db, rel))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert abs(info.frames / 16000 - float(read_table(os.path.join(d, "utt2dur"))[utt])) < 1e-3
        assert set(kw[utt]) <= set(text[utt].split())

    # Crash simulation: one wav missing, one truncated, a stale temp file. A rerun repairs exactly those.
    paths = [os.path.join(db, rel) for rel in wav.values()]
    os.unlink(paths[0])
    with open(paths[1], "r+b") as f:
        f.truncate(200)
    open(os.path.join(os.path.dirname(paths[2]), ".tmp.x.wav"), "wb").close()
    mtimes = {p: os.path.getmtime(p) for p in paths[2:]}
    C.build_corpus(db, cfg, nj=2, progress=False)
    info = __import__("json").load(open(os.path.join(db, "corpus.json")))
    assert info["synthesised"] == 2
    assert all(os.path.getmtime(p) == t for p, t in mtimes.items())
    assert not [f for f in os.listdir(os.path.dirname(paths[2])) if f.startswith(".tmp.")]

    # Same seed, same audio content; a different config writes different files, never reusing stale ones.
    shutil.rmtree(os.path.join(db, "data"))
    C.build_corpus(db, C.CorpusConfig(seed=0, noise_frac=0.0, **TINY), nj=1, progress=False)
    wav2 = read_table(os.path.join(d, "wav.scp"))
    noisy = [p.utt for p in C.plan_corpus(cfg)["train"] if p.noise]
    assert noisy and all(wav2[u] != wav[u] for u in noisy)


def test_test_extra_is_disjoint_from_any_rl_pool_extra_whichever_is_built():
    base = C.plan_corpus(C.CorpusConfig(seed=1, **TINY))
    alone = C.plan_corpus(C.CorpusConfig(seed=1, test_extra_utts=5, **TINY))
    both = C.plan_corpus(C.CorpusConfig(seed=1, test_extra_utts=5, rl_pool_extra_utts=40, **TINY))
    pool = C.plan_corpus(C.CorpusConfig(seed=1, rl_pool_extra_utts=40, **TINY))
    for name, ps in base.items():  # the standard sets do not move
        assert alone[name] == ps and both[name] == ps, name
    assert both["test_extra"] == alone["test_extra"]  # building rl_pool_extra too does not change test_extra
    assert both["rl_pool_extra"] == pool["rl_pool_extra"]  # nor the other way round
    extra = {p.words for p in alone["test_extra"]}
    assert len(extra) == 5 and not extra & {p.words for ps in pool.values() for p in ps}
    unseen = {v.spk for v in V.UNSEEN_VOICES}
    assert not unseen & {p.voice.spk for p in alone["test_extra"]}  # seen speakers, like test
    assert all(p.wav.startswith("wav/test_extra/") for p in alone["test_extra"])
    with pytest.raises(ValueError, match="rl_pool_extra_utts"):
        C.CorpusConfig(rl_pool_extra_utts=C.RL_POOL_EXTRA_MAX + 1)


def test_reserved_sentences_stay_out_of_later_sets():
    from audiorl.data.synth import text as T

    reserved = T.generate_sets({"a_pool": 30}, seed=2)["a_pool"]
    got = T.generate_sets({"b_test": 20}, seed=2, reserve={"a_pool": 30})
    assert set(got) == {"b_test"} and len(got["b_test"]) == 20
    assert not {s.words for s in reserved} & {s.words for s in got["b_test"]}
    with_a = T.generate_sets({"a_pool": 10, "b_test": 20}, seed=2, reserve={"a_pool": 30})
    assert with_a["a_pool"] == reserved[:10] and with_a["b_test"] == got["b_test"]
