"""audiorl.data.features and utils/make_fbank.sh, utils/compute_cmvn_stats.sh."""

import os
import subprocess

import numpy as np
import pytest
import torch

from audiorl.data.audio import AudioError, load_wav_scp_entry, write_wav
from audiorl.data.features import (apply_cmvn, compute_cmvn_stats, compute_fbank_dir, fbank, load_cmvn, num_frames,
                                   read_fbank_conf)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def noise(n, seed=0):
    return (0.1 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


@pytest.mark.parametrize("n", [400, 401, 559, 560, 12345, 16000])
def test_fbank_frames_follow_kaldi_formula(n):
    f = fbank(noise(n))
    assert f.shape == (1 + (n - 400) // 160, 80) == (num_frames(n), 80)
    assert f.dtype == torch.float32 and torch.isfinite(f).all()


def test_fbank_options_and_snip_edges():
    x = noise(8000)
    f = fbank(x, sr=8000, num_mel_bins=40, snip_edges=False)
    assert f.shape == (num_frames(8000, sr=8000, snip_edges=False), 40) == (100, 40)


def test_fbank_is_kaldi_scaled_and_deterministic():
    import torchaudio.compliance.kaldi as K

    x = noise(16000)
    ref = K.fbank(torch.from_numpy(x * 32768).unsqueeze(0), num_mel_bins=80, dither=0.0)
    assert torch.equal(fbank(x), ref) and torch.equal(fbank(x), fbank(torch.from_numpy(x)))


def test_fbank_too_short_and_bad_options():
    with pytest.raises(ValueError, match="shorter than one 25 ms frame"):
        fbank(noise(399))
    with pytest.raises(ValueError, match="unknown option"):
        fbank(noise(1000), sample_frequency=8000)


def test_read_fbank_conf(tmp_path):
    c = tmp_path / "fbank.conf"
    c.write_text("# comment\n--num-mel-bins=40  # bins\n--sample-frequency=8000\n--snip-edges=false\n")
    assert read_fbank_conf(str(c)) == {"num_mel_bins": 40, "sample_frequency": 8000, "snip_edges": False}
    c.write_text("--num-mel-bins=40\n--use-pitch=true\n")
    with pytest.raises(ValueError, match=r"fbank.conf:2: unknown fbank option '--use-pitch'"):
        read_fbank_conf(str(c))


def make_data_dir(tmp_path, n_utts=5, bad=None):
    d = tmp_path / "data" / "train"
    d.mkdir(parents=True)
    lines = []
    for i in range(n_utts):
        p = tmp_path / "wav" / f"u{i}.wav"
        sr = 8000 if i == 2 else 16000  # one file at another rate: resampled to 16 kHz
        write_wav(str(p), noise(int(sr * (0.3 + 0.1 * i)), seed=i), sr)
        lines.append(f"utt{i} {p}")
    if bad is not None:
        lines.append(f"{bad} {tmp_path}/wav/missing.wav")
    (d / "wav.scp").write_text("\n".join(sorted(lines)) + "\n")
    return str(d)


def test_compute_fbank_dir_ark_scp_round_trip(tmp_path):
    import kaldiio

    d = make_data_dir(tmp_path)
    prefix = str(tmp_path / "fbank" / "raw")
    res = compute_fbank_dir(d, prefix)
    assert res.num_done == 5 and not res.skipped
    feats = kaldiio.load_scp(prefix + ".scp")
    u2n = dict(line.split() for line in open(prefix + ".utt2num_frames"))
    assert sorted(feats) == [f"utt{i}" for i in range(5)]
    for i in range(5):
        x, sr = load_wav_scp_entry(f"{tmp_path}/wav/u{i}.wav", target_sr=16000)
        np.testing.assert_array_equal(feats[f"utt{i}"], fbank(x).numpy())
        assert int(u2n[f"utt{i}"]) == feats[f"utt{i}"].shape[0] == num_frames(len(x))


def test_compute_fbank_dir_utt_list_and_conf(tmp_path):
    import kaldiio

    d = make_data_dir(tmp_path)
    (tmp_path / "keys").write_text("utt1\nutt3\n")
    compute_fbank_dir(d, str(tmp_path / "part"), utt_list=str(tmp_path / "keys"),
                      fbank_opts={"num_mel_bins": 40, "sample_frequency": 8000})
    feats = kaldiio.load_scp(str(tmp_path / "part.scp"))
    assert sorted(feats) == ["utt1", "utt3"] and feats["utt1"].shape == (num_frames(3200, sr=8000), 40)


def test_bad_utterance_errors_by_default_and_is_listed_with_skip_bad(tmp_path):
    d = make_data_dir(tmp_path, n_utts=2, bad="uttX")
    with pytest.raises(AudioError) as e:
        compute_fbank_dir(d, str(tmp_path / "a"))
    m = str(e.value)
    assert "utterance 'uttX'" in m and "wav.scp:3" in m and "missing.wav" in m and "--skip_bad true" in m
    assert not os.path.exists(tmp_path / "a.scp")  # no scp: the job did not finish
    res = compute_fbank_dir(d, str(tmp_path / "b"), skip_bad=True)
    assert res.num_done == 2 and [u for u, _ in res.skipped] == ["uttX"]
    skipped = open(tmp_path / "b.skipped").read()
    assert skipped.startswith("uttX ") and "missing.wav" in skipped


def run_sh(script, *args, check=True):
    p = subprocess.run(["bash", os.path.join(ROOT, "utils", script), *args], capture_output=True, text=True,
                       cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if check:
        assert p.returncode == 0, p.stderr
    return p


def read_feats(data_dir):
    import kaldiio

    return kaldiio.load_scp(os.path.join(data_dir, "feats.scp"))


def test_make_fbank_nj2_equals_nj1_idempotent_and_cmvn(tmp_path):
    d = make_data_dir(tmp_path)
    d1 = str(tmp_path / "data" / "one")
    os.makedirs(d1)
    for f in ("wav.scp",):
        open(os.path.join(d1, f), "w").write(open(os.path.join(d, f)).read())
    run_sh("make_fbank.sh", "--nj", "2", d, str(tmp_path / "log2"), str(tmp_path / "fbank"))
    run_sh("make_fbank.sh", "--nj", "1", d1, str(tmp_path / "log1"), str(tmp_path / "fbank"))
    f2, f1 = read_feats(d), read_feats(d1)
    assert list(f2) == list(f1) == [f"utt{i}" for i in range(5)]  # C-sorted, complete
    for k in f1:
        np.testing.assert_array_equal(f1[k], f2[k])
    assert open(os.path.join(d, "utt2num_frames")).read() == open(os.path.join(d1, "utt2num_frames")).read()
    assert sorted(os.listdir(tmp_path / "log2")) == ["keys.1", "keys.2", "make_fbank.1.log", "make_fbank.2.log"]
    log1 = open(tmp_path / "log2" / "make_fbank.1.log").read()
    assert log1.startswith("# ") and "# Ended (code 0)" in log1

    # Idempotent: a complete feats.scp is left alone (even with another nj) unless --force true.
    ark = str(tmp_path / "fbank" / "raw_fbank_train.1.ark")
    mtime = os.stat(ark).st_mtime_ns
    p = run_sh("make_fbank.sh", "--nj", "3", d, str(tmp_path / "log2"), str(tmp_path / "fbank"))
    assert "nothing to do" in p.stderr and os.stat(ark).st_mtime_ns == mtime
    run_sh("make_fbank.sh", "--nj", "1", "--force", "true", d, str(tmp_path / "log2"), str(tmp_path / "fbank"))
    assert os.stat(ark).st_mtime_ns != mtime and len(read_feats(d)) == 5
    assert not os.path.exists(ark.replace(".1.ark", ".2.ark"))  # the stale part of the nj=2 run is gone
    assert sorted(os.listdir(tmp_path / "log2")) == ["keys.1", "make_fbank.1.log"]

    # Global CMVN: the Kaldi stats matrix and (mean, std) agree with numpy over all frames.
    run_sh("compute_cmvn_stats.sh", d)
    allf = np.concatenate([v for v in read_feats(d).values()]).astype(np.float64)
    mean, std = load_cmvn(os.path.join(d, "cmvn.ark"))
    np.testing.assert_allclose(mean, allf.mean(0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(std, allf.std(0), rtol=1e-4, atol=1e-5)
    import kaldiio

    stats = kaldiio.load_mat(os.path.join(d, "cmvn.ark"))
    assert stats.shape == (2, 81) and stats.dtype == np.float64 and stats[0, -1] == len(allf) and stats[1, -1] == 0
    np.testing.assert_allclose(stats[1, :-1], (allf ** 2).sum(0), rtol=1e-9)
    normed = apply_cmvn(allf.astype(np.float32), mean, std)
    assert np.abs(normed.mean(0)).max() < 1e-3 and np.abs(normed.std(0) - 1).max() < 1e-3
    tn = apply_cmvn(torch.from_numpy(allf.astype(np.float32)), mean, std)
    np.testing.assert_allclose(tn.numpy(), normed, atol=1e-5)


def test_make_fbank_failure_names_logs_then_skip_bad(tmp_path):
    d = make_data_dir(tmp_path, n_utts=3, bad="utt9")  # utt9 sorts last: job 2 of 2 fails
    logdir, fbdir = str(tmp_path / "log"), str(tmp_path / "fbank")
    p = run_sh("make_fbank.sh", "--nj", "2", d, logdir, fbdir, check=False)
    assert p.returncode == 1
    assert f"1 of 2 fbank jobs failed: {logdir}/make_fbank.2.log" in p.stderr
    assert "run.pl: 1 / 2 failed" in p.stderr and "utt9" in p.stderr and "--skip_bad true" in p.stderr
    assert not os.path.exists(os.path.join(d, "feats.scp"))

    p = run_sh("make_fbank.sh", "--nj", "2", "--skip_bad", "true", d, logdir, fbdir)
    assert "skipped 1 of 4 utterances" in p.stderr and "utils/fix_data_dir.sh" in p.stderr
    assert list(read_feats(d)) == ["utt0", "utt1", "utt2"]
    assert open(os.path.join(fbdir, "skipped_train.txt")).read().startswith("utt9 ")
    p = run_sh("make_fbank.sh", "--nj", "2", d, logdir, fbdir)  # skipped ones count as done
    assert "nothing to do" in p.stderr


def test_make_fbank_usage_errors(tmp_path):
    p = run_sh("make_fbank.sh", str(tmp_path), check=False)
    assert p.returncode == 2 and "Usage:" in p.stderr
    p = run_sh("make_fbank.sh", str(tmp_path / "nodata"), str(tmp_path / "l"), str(tmp_path / "f"), check=False)
    assert p.returncode == 1 and "wav.scp: no such file" in p.stderr
    p = run_sh("make_fbank.sh", "--help", check=False)
    assert p.returncode == 0 and "--nj" in p.stdout and "--skip_bad" in p.stdout


def test_cmvn_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="compute_cmvn_stats.sh"):
        load_cmvn(str(tmp_path / "none.ark"))
    (tmp_path / "empty.scp").write_text("")
    with pytest.raises(Exception, match="no frames"):
        compute_cmvn_stats(str(tmp_path / "empty.scp"))


def test_too_short_utterance_and_bad_option_with_skip_bad(tmp_path):
    d = make_data_dir(tmp_path, n_utts=2)
    (tmp_path / "data" / "train" / "segments").write_text("utt0-a utt0 0.0 0.02\nutt0-b utt0 0.02 0.2\n")
    with pytest.raises(AudioError, match=r"utterance 'utt0-a': .*segments:1: 320 samples .* shorter than one 400-sample"):
        compute_fbank_dir(d, str(tmp_path / "a"))
    res = compute_fbank_dir(d, str(tmp_path / "b"), skip_bad=True)
    assert res.num_done == 1 and [u for u, _ in res.skipped] == ["utt0-a"]
    with pytest.raises(ValueError, match="unknown option"):  # a config error is not a bad utterance
        compute_fbank_dir(d, str(tmp_path / "c"), skip_bad=True, fbank_opts={"num_bins": 40})
