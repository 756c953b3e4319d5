"""audiorl.tasks.vocoder: segment batches (deterministic, sharded), training through the bin with resume, the
save/load round trip of load_vocoder, synthesis with the neural vocoder (Synthesizer and the tts_synth CLI in modes
resyn and vocode), and clear errors for a neural vocoder without an experiment or with another mel analysis."""

import json

import kaldiio
import numpy as np
import pytest
import torch

from audiorl.config import load_config
from audiorl.data.audio import load_wav_scp_entry, write_wav
from audiorl.data.kaldi import read_table, write_table
from audiorl.models.neural_vocoder import NeuralVocoder
from audiorl.models.vocoder import MelConfig, mel_spectrogram
from audiorl.tasks import tts as T
from audiorl.tasks.tts_synth import Synthesizer, VocoderConfig
from audiorl.tasks.vocoder import VocoderTask, VocoderTrainConfig, load_vocoder, random_segment
from audiorl.train.checkpoint import unwrap
from audiorl.train.metrics import read_metrics
from audiorl.train.trainer import Trainer

CODEBOOK = 8
QUIET = ["--train.log_interval", "1", "--train.progress_bar", "false", "--train.tensorboard", "false",
         "--train.scheduler.warmup_steps", "1"]


def _recordings(root, name: str, n: int, seed: int):
    """data/<name>: n chirps of 0.4-0.9 s over a noise floor (wav.scp, text, utt2spk) and random speech tokens
    (one per 4 mel frames) in dump/tokens/<name>/tokens.scp."""
    rng = np.random.default_rng(seed)
    d = root / "data" / name
    d.mkdir(parents=True)
    wav, tokens = {}, {}
    for i in range(n):
        utt = f"spk{i % 2}-{name}-{i:02d}"
        t = np.arange(int(16000 * (0.4 + 0.1 * i))) / 16000
        f = rng.uniform(150, 400) * (1 + t)
        x = 0.3 * np.sin(2 * np.pi * f * t) + 0.005 * rng.standard_normal(len(t))
        write_wav(str(root / "wav" / f"{utt}.wav"), x.astype(np.float32), 16000)
        wav[utt] = str(root / "wav" / f"{utt}.wav")
        tokens[utt] = rng.integers(0, CODEBOOK, (len(t) // 160 + 1) // 4).astype(np.int32)
    write_table(str(d / "wav.scp"), wav)
    write_table(str(d / "text"), {u: "a b" for u in wav})
    write_table(str(d / "utt2spk"), {u: u.split("-")[0] for u in wav})
    o = root / "dump" / "tokens" / name
    o.mkdir(parents=True)
    with kaldiio.WriteHelper(f"ark,scp:{o}/tokens.ark,{o}/tokens.scp") as w:
        for u in sorted(tokens):
            w(u, tokens[u])
    return d


def _voc_args(root, steps: int = 2):
    return ["--data.train_dir", str(root / "data/train"), "--data.valid_dir", str(root / "data/dev"),
            "--data.segment_seconds", "0.25", "--data.valid_utts", "2", "--model.dim", "16", "--model.ffn_dim", "32",
            "--model.n_blocks", "1", "--model.kernel", "3", "--model.n_fft", "320", "--train.batch_size", "3",
            "--train.max_steps", str(steps), "--train.valid_interval", "2", "--train.save_interval", "2", *QUIET]


class _Capture(VocoderTask):
    """Keeps the weights of the last step, to compare with what load_vocoder rebuilds from the experiment."""

    def on_step_end(self, model, step, stats):
        self.state = {k: v.detach().clone() for k, v in unwrap(model).state_dict().items()}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """data/{train,dev}, a 2-step vocoder experiment (its last weights kept) and a 1-step token-to-mel experiment."""
    root = tmp_path_factory.mktemp("voc")
    _recordings(root, "train", 6, 0)
    _recordings(root, "dev", 3, 1)
    task = _Capture(load_config(VocoderTrainConfig, overrides=_voc_args(root)))
    res = Trainer(task, task.cfg.train, root / "exp/vocoder", config=task.cfg).fit()
    assert res["step"] == 2 and {"loss", "sc", "log_mag", "mel_l1", "mcd"} <= set(res["valid"])
    t2m = load_config(T.Token2MelTrainConfig, overrides=[
        "--data.train_dir", str(root / "data/train"), "--data.valid_dir", "",
        "--data.train_tokens", str(root / "dump/tokens/train/tokens.scp"), "--data.codebook_size", str(CODEBOOK),
        "--model.spk_embed_dim", "0", "--model.dim", "16", "--model.token_layers", "0", "--model.n_layers", "1",
        "--model.n_heads", "2", "--model.ffn_dim", "32", "--model.conv_kernel", "3", "--model.n_steps", "1",
        "--data.mel_stats_utts", "2", "--train.max_steps", "1", "--train.batch_size", "3", *QUIET])
    t2m_task = T.Token2MelTask(t2m)
    Trainer(t2m_task, t2m_task.cfg.train, root / "exp/token2mel", config=t2m_task.cfg).fit()
    return {"root": root, "voc": root / "exp/vocoder", "t2m": root / "exp/token2mel", "last_state": task.state,
            "cfg": task.cfg}


def test_batches_are_deterministic_segments_sharded_over_ranks(setup):
    task = VocoderTask(setup["cfg"])
    n = task.cfg.segment_samples
    assert n == 4000  # 0.25 s = 25 hops
    a, b = list(task.train_batches(0, 0, 1)), list(task.train_batches(0, 0, 1))
    assert len(a) == 2 and all(x["wave"].shape == (3, n) for x in a)  # 6 recordings, 3 per batch
    assert all(torch.equal(x["wave"], y["wave"]) for x, y in zip(a, b))  # a resumed run sees the same segments
    assert a[0]["mel"].shape == (3, n // 160 + 1, 80)
    assert torch.allclose(a[0]["mel"][1], mel_spectrogram(a[0]["wave"][1]))
    c = list(task.train_batches(1, 0, 1))
    assert not all(torch.equal(x["wave"], y["wave"]) for x, y in zip(a, c))  # other segments next epoch
    r0, r1 = list(task.train_batches(0, 0, 2)), list(task.train_batches(0, 1, 2))
    assert len(r0) == len(r1) == 1 and not torch.equal(r0[0]["wave"], r1[0]["wave"])
    assert len(task.train_batches(3, 0, 1).skip(1)) == 1  # the trainer resumes mid-epoch through skip
    rng = np.random.default_rng(0)
    short = random_segment(np.ones(100, dtype=np.float32), 160, rng)
    assert short.shape == (160,) and short[:100].all() and not short[100:].any()  # zero-padded


def test_bin_trains_then_resumes(setup, tmp_path):
    from audiorl.bin import tts_vocoder_train

    exp = tmp_path / "exp"
    args = ["--exp_dir", str(exp), *_voc_args(setup["root"]), "--train.valid_interval", "0"]
    assert tts_vocoder_train.main(args) == 0
    assert tts_vocoder_train.main([*args, "--train.max_steps", "3"]) == 0  # rerun = resume from step 2
    steps = [r["step"] for r in read_metrics(str(exp / "metrics.jsonl")) if r["split"] == "train"]
    assert steps == [1, 2, 3]


def test_load_vocoder_round_trip_gives_identical_output(setup):
    loaded = load_vocoder(str(setup["voc"]))
    assert isinstance(loaded.model, NeuralVocoder) and not loaded.model.training
    assert loaded.config.model.dim == 16 and loaded.config.mel == MelConfig()
    trained = NeuralVocoder(setup["cfg"].model, setup["cfg"].mel).eval()
    trained.load_state_dict(setup["last_state"])
    mel = mel_spectrogram(torch.from_numpy(load_wav_scp_entry(
        next(iter(read_table(str(setup["root"] / "data/dev/wav.scp")).values())))[0]))
    with torch.no_grad():
        assert torch.equal(loaded.model(mel), trained(mel))


def test_synthesizer_with_the_neural_vocoder(setup):
    voc = VocoderConfig(kind="neural", exp=str(setup["voc"]))
    syn = Synthesizer.from_exps(str(setup["t2m"]), vocoder=voc)
    assert isinstance(syn.vocoder, NeuralVocoder)
    out = syn.synthesize(tokens=[np.arange(5) % CODEBOOK, np.arange(3) % CODEBOOK],
                         generator=torch.Generator().manual_seed(0))
    assert [len(w) for w in out.waves] == [5 * 4 * 160, 3 * 4 * 160] and syn.times["vocoder"] > 0
    assert all(np.isfinite(w).all() and np.abs(w).max() > 0 for w in out.waves)
    default = Synthesizer.from_exps(str(setup["t2m"]))  # Griffin-Lim stays the default
    assert type(default.vocoder).__name__ == "GriffinLimVocoder"
    with pytest.raises(ValueError, match="trained on mel"):
        Synthesizer(syn.t2m, MelConfig(f_max=7000.0), vocoder=voc)


def test_tts_synth_cli_resyn_and_vocode_with_the_neural_vocoder(setup):
    from audiorl.bin import tts_synth

    r = setup["root"]
    voc = ["--vocoder.kind", "neural", "--vocoder.exp", str(setup["voc"])]
    dev = read_table(str(r / "data/dev/wav.scp"))
    for mode, extra in (("resyn", ["--tokens", str(r / "dump/tokens/dev/tokens.scp")]), ("vocode", [])):
        out = r / "exp" / f"{mode}_dev"
        assert tts_synth.main(["--mode", mode, "--t2m_exp", str(setup["t2m"]), "--data_dir", str(r / "data/dev"),
                               "--out_dir", str(out), *extra, *voc]) == 0
        scp = read_table(str(out / "wav.scp"))
        assert set(scp) == set(dev)
        rtf = json.loads((out / "rtf.json").read_text())
        assert rtf["utts"] == 3 and rtf["rtf_vocoder"] > 0
    for u in dev:  # vocode: the recording's length up to one hop (T = 1 + N // hop frames -> T * hop samples)
        a, b = load_wav_scp_entry(dev[u])[0], load_wav_scp_entry(str(r / f"exp/vocode_dev/wavs/{u}.wav"))[0]
        assert 0 <= len(b) - len(a) <= 160


# ---- bad input ----------------------------------------------------------------------------------------------------
def test_neural_vocoder_without_exp_is_a_usage_error(setup, tmp_path, capsys):
    from audiorl.bin import tts_synth

    base = ["--mode", "vocode", "--t2m_exp", str(setup["t2m"]), "--data_dir", str(setup["root"] / "data/dev"),
            "--out_dir", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as e:
        tts_synth.main([*base, "--vocoder.kind", "neural"])
    assert e.value.code == 2 and "vocoder.kind=neural needs vocoder.exp" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        tts_synth.main([*base, "--vocoder.exp", str(setup["voc"])])  # forgot --vocoder.kind neural
    assert e.value.code == 2 and "add --vocoder.kind neural" in capsys.readouterr().err
    assert tts_synth.main([*base, "--vocoder.kind", "neural", "--vocoder.exp", str(tmp_path / "nope")]) == 1
    assert not (tmp_path / "out/wav.scp").exists()


def test_train_config_errors(tmp_path):
    with pytest.raises(ValueError, match="fixed-length segments"):
        load_config(VocoderTrainConfig, overrides=["--train.max_frames", "4000"])
    with pytest.raises(ValueError, match="segment_seconds"):
        load_config(VocoderTrainConfig, overrides=["--data.segment_seconds", "0"])
