"""audiorl.tasks.tts*: the three TTS training tasks (collate, a few trainer steps, reload), token dump, speaker-embedding
merge, batched synthesis (TTS and resynthesis, split jobs + merge), and bad input (missing table entries, codebook)."""

import json
import os
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import torch

from audiorl.config import load_config
from audiorl.data.audio import write_wav
from audiorl.data.features import compute_fbank_dir
from audiorl.data.kaldi import DataDirError, read_table, write_table
from audiorl.data.tokenizer import train_tokenizer
from audiorl.models.token2mel import SILENCE
from audiorl.tasks import tts as T
from audiorl.tasks.tts_synth import Synthesizer
from audiorl.train.trainer import Trainer

WORDS = "the cat sat on a mat and then it ran to the big red barn near old town".split()
SPK_DIM = 8
CODEBOOK = 45  # = 5 * 3 * 3, the tokenizer's FSQ levels below
LOOP = ["--train.max_steps", "2", "--train.log_interval", "1", "--train.valid_interval", "2", "--train.save_interval",
        "2", "--train.progress_bar", "false", "--train.tensorboard", "false", "--train.scheduler.warmup_steps", "1"]


def _tone(rng, seconds: float) -> np.ndarray:
    t = np.arange(int(16000 * seconds)) / 16000
    f = rng.uniform(120, 300)
    return (0.3 * np.sin(2 * np.pi * f * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2
            + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def _data_dir(root, name: str, n: int, seed: int):
    rng = np.random.default_rng(seed)
    d = root / "data" / name
    d.mkdir(parents=True)
    wav, text, u2s = {}, {}, {}
    for i in range(n):
        spk = f"spk{i % 2}"
        utt = f"{spk}-{name}-{i:02d}"
        path = root / "wav" / f"{utt}.wav"
        write_wav(str(path), _tone(rng, 0.6 + 0.15 * (i % 4)), 16000)
        wav[utt], text[utt], u2s[utt] = str(path), " ".join(rng.choice(WORDS, size=2 + i % 3)), spk
    write_table(str(d / "wav.scp"), wav)
    write_table(str(d / "text"), text)
    write_table(str(d / "utt2spk"), u2s)
    return d


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """data/{train,dev}, fbank dumps, a text BPE model, random per-utterance/per-speaker embeddings."""
    root = tmp_path_factory.mktemp("tts")
    out = {"root": root}
    texts = []
    for name, n, seed in (("train", 10, 0), ("dev", 4, 1)):
        d = _data_dir(root, name, n, seed)
        f = root / "dump" / "fbank" / name
        f.mkdir(parents=True)
        for x in ("text", "utt2spk", "wav.scp"):
            (f / x).write_bytes((d / x).read_bytes())
        compute_fbank_dir(str(d), str(f / "raw"))
        os.replace(f / "raw.scp", f / "feats.scp")
        os.replace(f / "raw.utt2num_frames", f / "utt2num_frames")
        rng = np.random.default_rng(7)
        e = root / "dump" / "spk_embed" / name
        e.mkdir(parents=True)
        utts = sorted(read_table(str(d / "text")))
        with kaldiio.WriteHelper(f"ark,scp:{e}/spk_embed.ark,{e}/spk_embed.scp") as w:
            for u in utts:
                w(u, rng.standard_normal(SPK_DIM).astype(np.float32))
        with kaldiio.WriteHelper(f"ark,scp:{e}/spk2embed.ark,{e}/spk2embed.scp") as w:
            for s in ("spk0", "spk1"):
                w(s, rng.standard_normal(SPK_DIM).astype(np.float32))
        texts += list(read_table(str(d / "text")).values())
        out[name] = d
    train_tokenizer(texts * 5, str(root / "bpe"), 30, "bpe")
    out["bpe"] = str(root / "bpe.model")
    return out


def _tokenizer_cfg(c, *extra):
    r = c["root"]
    return load_config(T.SpeechTokenizerTrainConfig, overrides=[
        "--data.train_dir", str(r / "dump/fbank/train"), "--data.valid_dir", str(r / "dump/fbank/dev"),
        "--data.token_model", c["bpe"], "--data.valid_decode_utts", "2",
        "--model.quantize_after", "1", "--model.encoder.dim", "16", "--model.encoder.n_layers", "2",
        "--model.encoder.n_heads", "2", "--model.encoder.ffn_dim", "32", "--model.encoder.subsample_channels", "4",
        "--model.encoder.block", "transformer", "--model.encoder.specaug", "false",
        "--model.quantizer.levels", "[5, 3, 3]", "--train.max_frames", "400", *LOOP, *extra])


@pytest.fixture(scope="module")
def tokenizer_exp(corpus):
    """A 2-step speech tokenizer and its token dump of train and dev (through the bin, 2 split jobs)."""
    from audiorl.bin import tts_dump_tokens

    exp = corpus["root"] / "exp" / "tokenizer"
    task = T.SpeechTokenizerTask(_tokenizer_cfg(corpus))
    res = Trainer(task, task.cfg.train, exp, config=task.cfg).fit()
    assert res["step"] == 2 and {"loss", "ctc", "codes_used", "wer"} <= set(res["valid"])
    for name in ("train", "dev"):
        out = corpus["root"] / "dump" / "tokens" / name
        for j in (1, 2):
            assert tts_dump_tokens.main(["--exp_dir", str(exp), "--data_dir", str(corpus["root"] / "dump/fbank" / name),
                                         "--out_prefix", str(out / f"tokens.{j}"), "--split", f"{j}/2"]) == 0
        lines = sorted((out / "tokens.1.scp").read_text().splitlines() + (out / "tokens.2.scp").read_text().splitlines())
        (out / "tokens.scp").write_text("\n".join(lines) + "\n")
    return exp


def test_tokenizer_task_and_dump(corpus, tokenizer_exp):
    loaded = T.load_speech_tokenizer(str(tokenizer_exp))
    assert loaded.model.codebook_size == CODEBOOK
    assert loaded.config.model.text_vocab_size == 30  # filled from the BPE model and saved
    toks = kaldiio.load_scp(str(corpus["root"] / "dump/tokens/train/tokens.scp"))
    feats = kaldiio.load_scp(str(corpus["root"] / "dump/fbank/train/feats.scp"))
    assert set(toks) == set(feats)
    u = sorted(feats)[3]
    f = torch.from_numpy(np.array(feats[u]))[None]
    ids, n = loaded.model.tokenize(f, torch.tensor([f.shape[1]]))
    assert toks[u].tolist() == ids[0, : int(n)].tolist()  # the split dump = tokenizing alone
    with pytest.raises(ValueError, match="input_norm"):
        T.SpeechTokenizerTask(_tokenizer_cfg(corpus, "--model.encoder.input_norm", "none"))


def _tts_data_args(c, tokens_root=None):
    r = c["root"]
    tr = tokens_root or (r / "dump/tokens")
    return ["--data.train_dir", str(c["train"]), "--data.valid_dir", str(c["dev"]),
            "--data.train_tokens", str(tr / "train/tokens.scp"), "--data.valid_tokens", str(tr / "dev/tokens.scp"),
            "--data.train_spk_embed", str(r / "dump/spk_embed/train/spk_embed.scp"),
            "--data.valid_spk_embed", str(r / "dump/spk_embed/dev/spk_embed.scp"),
            "--data.tokenizer_exp", str(r / "exp/tokenizer")]


def _lm_cfg(c, *extra):
    return load_config(T.TTSLMTrainConfig, overrides=[
        *_tts_data_args(c), "--data.token_model", c["bpe"], "--model.spk_embed_dim", str(SPK_DIM),
        "--model.llm.dim", "32", "--model.llm.n_layers", "1", "--model.llm.n_heads", "2", "--model.llm.n_kv_heads", "1",
        "--model.llm.intermediate_size", "64", "--model.llm.max_seq_len", "256", "--train.max_frames", "300",
        *LOOP, *extra])


def _t2m_cfg(c, *extra):
    return load_config(T.Token2MelTrainConfig, overrides=[
        *_tts_data_args(c), "--model.spk_embed_dim", str(SPK_DIM), "--model.dim", "16", "--model.token_layers", "1",
        "--model.n_layers", "1", "--model.n_heads", "2", "--model.ffn_dim", "32", "--model.conv_kernel", "3",
        "--model.n_steps", "2", "--data.mel_stats_utts", "4", "--data.valid_sample_utts", "2",
        "--train.max_frames", "600", *LOOP, *extra])


@pytest.fixture(scope="module")
def lm_exp(corpus, tokenizer_exp):
    exp = corpus["root"] / "exp" / "tts_lm"
    task = T.TTSLMTask(_lm_cfg(corpus))
    res = Trainer(task, task.cfg.train, exp, config=task.cfg).fit()
    assert res["step"] == 2 and {"loss", "acc", "ppl"} <= set(res["valid"])
    return exp


@pytest.fixture(scope="module")
def t2m_exp(corpus, tokenizer_exp):
    exp = corpus["root"] / "exp" / "token2mel"
    task = T.Token2MelTask(_t2m_cfg(corpus))
    res = Trainer(task, task.cfg.train, exp, config=task.cfg).fit()
    assert res["step"] == 2 and {"loss", "prior", "mel_l1", "mel_l1_prior"} <= set(res["valid"])
    return exp


def test_lm_collate_and_reload(corpus, lm_exp):
    task = T.TTSLMTask(_lm_cfg(corpus))
    m = task.cfg.model
    assert (m.text_vocab_size, m.speech_vocab_size, m.llm.vocab_size) == (30, CODEBOOK, 30 + CODEBOOK + 3)
    utts = sorted(task.train_data.lengths)[:3]
    b = task.train_data.collate(utts)
    assert b["text_ids"].shape == (3, int(b["text_lens"].max())) and b["spk"].shape == (3, SPK_DIM)
    for i, u in enumerate(utts):
        assert b["speech_ids"][i, : b["speech_lens"][i]].tolist() == task.train_data.tokens[u].tolist()
        assert (b["speech_ids"][i, b["speech_lens"][i]:] == 0).all()
    loaded = T.load_tts_lm(str(lm_exp))
    assert loaded.model.config.speech_vocab_size == CODEBOOK and not loaded.model.training


def test_t2m_collate_and_mel_stats(corpus, t2m_exp):
    task = T.Token2MelTask(_t2m_cfg(corpus))
    utts = sorted(task.train_data.lengths)[:3]
    b = task.train_data.collate(utts)
    T_max = int(b["mel_lens"].max())
    assert b["mel"].shape == (3, T_max, 80)
    for i in range(3):
        assert (b["mel"][i, int(b["mel_lens"][i]):] == SILENCE).all()
        assert 4 * int(b["token_lens"][i]) <= int(b["mel_lens"][i])  # 25 Hz tokens inside 100 Hz mels
    loaded = T.load_token2mel(str(t2m_exp))
    assert torch.allclose(loaded.model.mel_mean, task.mel_mean) and (loaded.model.mel_std > 0).all()


def test_synthesis_tts_and_resyn_split_and_merge(corpus, lm_exp, t2m_exp):
    from audiorl.bin import tts_merge, tts_synth

    syn = Synthesizer.from_exps(str(t2m_exp), str(lm_exp))
    spk = np.random.default_rng(0).standard_normal((2, SPK_DIM)).astype(np.float32)
    from audiorl.models.tts_lm import SpeechSamplingConfig

    out = syn.synthesize(texts=["the cat", "a big red barn near old town"], spk=spk,
                         sampling=SpeechSamplingConfig(max_new_tokens=12), generator=torch.Generator().manual_seed(0))
    assert len(out.waves) == 2 and all(len(t) <= 12 for t in out.tokens) and len(out.looped) == 2
    for w, t in zip(out.waves, out.tokens):
        assert w.dtype == np.float32 and len(w) == max(len(t) * 4 * 160, 1600)  # 0.1 s of silence if empty
    assert syn.times["lm"] > 0 and syn.times["token2mel"] > 0 and syn.times["vocoder"] > 0

    r = corpus["root"]
    common = ["--t2m_exp", str(t2m_exp), "--data_dir", str(corpus["dev"]), "--batch_size", "3", "--token2mel.n_steps",
              "1", "--vocoder.n_iter", "2", "--spk_embed", str(r / "dump/spk_embed/train/spk2embed.scp")]
    tts_dir, res_dir = r / "exp/synth_dev", r / "exp/resyn_dev"
    for j in (1, 2):
        assert tts_synth.main([*common, "--mode", "tts", "--lm_exp", str(lm_exp), "--sampling.max_new_tokens", "10",
                               "--out_dir", str(tts_dir / "split" / str(j)), "--split", f"{j}/2"]) == 0
    assert tts_merge.main([str(tts_dir), "--nj", "2", "--data_dir", str(corpus["dev"])]) == 0
    assert tts_synth.main([*common, "--mode", "resyn", "--tokens", str(r / "dump/tokens/dev/tokens.scp"),
                           "--out_dir", str(res_dir / "split/1")]) == 0
    assert tts_merge.main([str(res_dir), "--nj", "1", "--data_dir", str(corpus["dev"])]) == 0
    dev = set(read_table(str(corpus["dev"] / "text")))
    for d in (tts_dir, res_dir):
        scp = read_table(str(d / "wav.scp"))
        assert set(scp) == dev and all(os.path.isfile(p) for p in scp.values())
        rtf = json.loads((d / "rtf.json").read_text())
        assert rtf["utts"] == 4 and rtf["rtf"] > 0 and {"rtf_lm", "rtf_token2mel", "rtf_vocoder"} <= set(rtf)
        assert set(kaldiio.load_scp(str(d / "tokens.scp"))) == dev
    # resynthesis from the ground-truth tokens has exactly their length
    gt = kaldiio.load_scp(str(r / "dump/tokens/dev/tokens.scp"))
    got = kaldiio.load_scp(str(res_dir / "tokens.scp"))
    assert all(gt[u].tolist() == got[u].tolist() for u in dev)
    assert "eos=" in (tts_dir / "gen_stats").read_text()
    # more jobs than batches (4 utterances in 2 batches of 3, 3 jobs): job 3 writes empty tables and the merge is whole
    res3 = r / "exp/resyn_dev_3jobs"
    for j in (1, 2, 3):
        assert tts_synth.main([*common, "--mode", "resyn", "--tokens", str(r / "dump/tokens/dev/tokens.scp"),
                               "--out_dir", str(res3 / "split" / str(j)), "--split", f"{j}/3"]) == 0
    assert json.loads((res3 / "split/3/rtf.json").read_text())["utts"] == 0
    assert (res3 / "split/3/wav.scp").read_text() == ""
    assert tts_merge.main([str(res3), "--nj", "3", "--data_dir", str(corpus["dev"])]) == 0
    res_wavs = read_table(str(res_dir / "wav.scp"))
    assert all(Path(p).read_bytes() == Path(res_wavs[u]).read_bytes() for u, p in read_table(str(res3 / "wav.scp")).items())
    assert set(read_table(str(res3 / "wav.scp"))) == dev
    # the samples do not depend on the number of jobs: one job draws what the two jobs drew, wave for wave
    one = r / "exp/synth_dev_1job"
    assert tts_synth.main([*common, "--mode", "tts", "--lm_exp", str(lm_exp), "--sampling.max_new_tokens", "10",
                           "--out_dir", str(one / "split/1")]) == 0
    two_toks, one_toks = kaldiio.load_scp(str(tts_dir / "tokens.scp")), kaldiio.load_scp(str(one / "split/1/tokens.scp"))
    assert all(two_toks[u].tolist() == one_toks[u].tolist() for u in dev)
    two_wavs = read_table(str(tts_dir / "wav.scp"))
    assert all(Path(two_wavs[u]).read_bytes() == (one / "split/1/wavs" / f"{u}.wav").read_bytes() for u in dev)
    # --draw 2 is another sample of the same system (seed + 1); --draw 1 is the default
    d2 = r / "exp/synth_dev_draw2"
    assert tts_synth.main([*common, "--mode", "tts", "--lm_exp", str(lm_exp), "--sampling.max_new_tokens", "10",
                           "--out_dir", str(d2 / "split/1"), "--draw", "2"]) == 0
    d2_wavs = {u: (d2 / "split/1/wavs" / f"{u}.wav").read_bytes() for u in dev}
    assert any(d2_wavs[u] != Path(two_wavs[u]).read_bytes() for u in dev)
    with pytest.raises(SystemExit):  # a usage error: "--draw 0 must be >= 1"
        tts_synth.main([*common, "--mode", "tts", "--lm_exp", str(lm_exp), "--out_dir", str(d2), "--draw", "0"])


def test_job_batches_do_not_depend_on_the_number_of_jobs():
    from audiorl.bin.tts_synth import job_batches

    lengths = {f"u{i:02d}": (i * 7) % 11 for i in range(23)}
    one = job_batches(lengths, 4, 1, 1)
    assert [len(b) for _, b in one] == [4, 4, 4, 4, 4, 3] and [i for i, _ in one] == list(range(6))
    flat = [u for _, b in one for u in b]
    assert sorted(flat) == sorted(lengths) and [lengths[u] for u in flat] == sorted(lengths.values())
    for nj in (2, 3, 7):
        jobs = [job_batches(lengths, 4, j, nj) for j in range(1, nj + 1)]
        assert sorted(x for job in jobs for x in job) == one  # the same batches, each in exactly one job
        assert all(i % nj == j for j, job in enumerate(jobs) for i, _ in job)


def test_batch_seeds_differ_across_seeds_on_a_cpu_generator():
    """A CPU torch.Generator keeps only 32 bits of its seed: every (seed, batch) must differ inside them."""
    from audiorl.bin.tts_synth import batch_seed

    seeds = {batch_seed(s, b) for s in range(5) for b in range(1000)}
    assert len(seeds) == 5000 and max(seeds) < 2 ** 32 and batch_seed(0, 7) == 7
    draw = lambda s: torch.randint(0, 10 ** 6, (4,), generator=torch.Generator().manual_seed(batch_seed(s, 0)))  # noqa
    assert draw(0).tolist() != draw(1).tolist()


def test_vocode_mode_is_the_recordings_through_mel_and_griffin_lim(corpus, t2m_exp):
    from audiorl.bin import tts_merge, tts_synth
    from audiorl.data.audio import load_wav_scp_entry
    from audiorl.eval.mcd import mcd

    r = corpus["root"]
    out = r / "exp/vocoded_dev"
    for j in (1, 2):
        assert tts_synth.main(["--mode", "vocode", "--t2m_exp", str(t2m_exp), "--data_dir", str(corpus["dev"]),
                               "--batch_size", "3", "--vocoder.n_iter", "16", "--out_dir", str(out / "split" / str(j)),
                               "--split", f"{j}/2"]) == 0
    assert tts_merge.main([str(out), "--nj", "2", "--data_dir", str(corpus["dev"])]) == 0
    scp, real = read_table(str(out / "wav.scp")), read_table(str(corpus["dev"] / "wav.scp"))
    assert set(scp) == set(real) and (out / "tokens.scp").read_text() == ""
    rtf = json.loads((out / "rtf.json").read_text())
    assert rtf["rtf_vocoder"] > 0 and rtf["rtf_lm"] == 0 and rtf["rtf_token2mel"] == 0 and rtf["mode"] == "vocode"
    for u in scp:
        a, _ = load_wav_scp_entry(real[u])
        b, _ = load_wav_scp_entry(scp[u])
        assert abs(len(b) - len(a)) <= 160  # whole hops: 1 + N // hop frames, T * hop samples
        assert mcd(b, a) < 4.0  # the vocoder alone keeps the spectrum (resynthesis of a 2-step model: >> 4)


def test_spk_embed_merge(corpus, tmp_path):
    """Split-job embeddings merge into utterance and speaker tables (speaker = normalised mean)."""
    from audiorl.bin.tts_spk_embed import merge
    from audiorl.models.speaker import load_embeds

    dev = corpus["dev"]
    utts = sorted(read_table(str(dev / "text")))
    rng = np.random.default_rng(0)
    emb = {u: rng.standard_normal(4).astype(np.float32) for u in utts}
    for j in (1, 2):
        d = tmp_path / "split" / str(j)
        d.mkdir(parents=True)
        with kaldiio.WriteHelper(f"ark,scp:{d}/spk_embed.ark,{d}/spk_embed.scp") as w:
            for u in utts[j - 1::2]:
                w(u, emb[u])
    assert merge(str(dev), str(tmp_path), 2) == (4, 2)
    spk = load_embeds(str(tmp_path / "spk2embed.scp"))
    u2s = read_table(str(dev / "utt2spk"))
    m = sum(emb[u].astype(np.float64) for u in utts if u2s[u] == "spk0")
    assert np.allclose(spk["spk0"], m / np.linalg.norm(m), atol=1e-6)
    assert set(load_embeds(str(tmp_path / "spk_embed.scp"))) == set(utts)
    (tmp_path / "split/2/spk_embed.scp").unlink()
    with pytest.raises(DataDirError, match="job 2 of 2"):
        merge(str(dev), str(tmp_path), 2)


# ---- bad input ----------------------------------------------------------------------------------------------------
def test_missing_token_entries_name_file_and_fix(corpus, tokenizer_exp, tmp_path, caplog):
    r = corpus["root"]
    for name in ("train", "dev"):  # a token scp that lacks one training utterance
        (tmp_path / name).mkdir()
        lines = (r / "dump/tokens" / name / "tokens.scp").read_text().splitlines()
        (tmp_path / name / "tokens.scp").write_text("\n".join(lines[1:] if name == "train" else lines) + "\n")
    args = [*_tts_data_args(corpus, tmp_path), "--data.token_model", corpus["bpe"], "--model.spk_embed_dim",
            str(SPK_DIM), "--train.max_steps", "1"]
    cfg = load_config(T.TTSLMTrainConfig, overrides=args)
    with pytest.raises(DataDirError) as e:
        T.TTSLMTask(cfg)
    msg = str(e.value)
    assert str(tmp_path / "train/tokens.scp") in msg and "1 of 10" in msg and "stage 5" in msg and "allow_missing" in msg
    task = T.TTSLMTask(load_config(T.TTSLMTrainConfig, overrides=[*args, "--data.allow_missing", "true"]))
    assert len(task.train_data.lengths) == 9 and "skipped" in caplog.text


def test_codebook_and_range_errors(corpus, tokenizer_exp, tmp_path):
    args = [*_tts_data_args(corpus), "--data.token_model", corpus["bpe"], "--model.spk_embed_dim", str(SPK_DIM),
            "--train.max_steps", "1"]
    with pytest.raises(ValueError, match="codebook size is unknown"):
        T.TTSLMTask(load_config(T.TTSLMTrainConfig, overrides=[*args, "--data.tokenizer_exp", ""]))
    with pytest.raises(ValueError, match="set one of them only"):
        T.TTSLMTask(load_config(T.TTSLMTrainConfig, overrides=[*args, "--data.codebook_size", "7"]))
    # a user-given scp (no tokenizer exp) whose ids exceed the declared codebook
    with pytest.raises(DataDirError, match="outside"):
        T.TTSLMTask(load_config(T.TTSLMTrainConfig, overrides=[*args, "--data.tokenizer_exp", "",
                                                                "--data.codebook_size", "3"]))
    with pytest.raises(DataDirError, match="spk_embed_dim"):
        T.TTSLMTask(load_config(T.TTSLMTrainConfig, overrides=[*args[:-4], "--model.spk_embed_dim", "5"]))
    with pytest.raises(FileNotFoundError, match="no such token scp"):
        T.Token2MelTask(load_config(T.Token2MelTrainConfig, overrides=[
            *_tts_data_args(corpus), "--data.train_tokens", str(tmp_path / "nope.scp"), "--train.max_steps", "1"]))


def test_synth_config_errors():
    from audiorl.bin.tts_synth import SynthConfig

    with pytest.raises(ValueError, match="needs --lm_exp"):
        SynthConfig(t2m_exp="x", out_dir="y")
    with pytest.raises(ValueError, match="needs --tokens"):
        SynthConfig(mode="resyn", t2m_exp="x", out_dir="y")
