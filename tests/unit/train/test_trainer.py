"""audiorl.train.trainer on a toy MLP: learning, exact resume, kill -9 + rerun, time budget, errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).parent))
from _toy_regression import ToyConfig, ToyTask  # noqa: E402

from audiorl.config import load_config  # noqa: E402
from audiorl.train.checkpoint import CheckpointError  # noqa: E402
from audiorl.train.trainer import Trainer  # noqa: E402

SCRIPT = Path(__file__).parent / "_toy_regression.py"
REPO = Path(__file__).resolve().parents[3]


def _cfg(exp, *overrides):
    return load_config(ToyConfig, None, [f"--exp_dir={exp}", "--train.scheduler.warmup_steps=3",
                                         "--train.optim.lr=3e-3", *overrides])


def _fit(cfg, task=None):
    return Trainer(task or ToyTask(cfg), cfg.train, cfg.exp_dir, config=cfg).fit()


def _metrics(exp):
    return [json.loads(line) for line in (Path(exp) / "metrics.jsonl").read_text().splitlines()]


def test_loss_decreases_and_outputs_exist(tmp_path):
    exp = tmp_path / "exp"
    out = _fit(_cfg(exp, "--train.max_steps=40", "--train.average_best_n=2", "--train.keep_last_n=1"))
    recs = _metrics(exp)
    train = [r["loss"] for r in recs if r["split"] == "train"]
    valid = [r["loss"] for r in recs if r["split"] == "valid"]
    assert train[-1] < 0.7 * train[0] and valid[-1] < 0.7 * valid[0]
    assert {"step", "split", "loss", "lr", "grad_norm", "calls"} <= set(recs[0])
    assert out["step"] == 40 and out["stop_reason"] == "max_steps" and out["valid"]["loss"] == valid[-1]
    for f in ["train.log", "config.yaml", "curves.png", "valid.loss.ave2_best.safetensors",
              "valid.loss.ave2_best.json", "checkpoints/latest", "checkpoints/step_40/model.safetensors"]:
        assert (exp / f).is_file(), f
    # keep_last_n=1 plus the 2 best by valid loss survive pruning
    assert len(list((exp / "checkpoints").glob("step_*"))) <= 3


def test_valid_at_start_logs_the_initial_model_once(tmp_path):
    exp = tmp_path / "exp"
    cfg = _cfg(exp, "--train.max_steps=20", "--train.valid_interval=10", "--train.save_interval=10",
               "--train.valid_at_start=true")
    _fit(cfg)
    steps = [r["step"] for r in _metrics(exp) if r["split"] == "valid"]
    assert steps == [0, 10, 20]
    valid = [r["loss"] for r in _metrics(exp) if r["split"] == "valid"]
    assert valid[0] > valid[-1]  # the untrained model, before any update
    cfg = _cfg(exp, "--train.max_steps=30", "--train.valid_interval=10", "--train.save_interval=10",
               "--train.valid_at_start=true")
    _fit(cfg)  # resumed at step 20: no second step-0 validation
    assert [r["step"] for r in _metrics(exp) if r["split"] == "valid"] == [0, 10, 20, 30]


class StopAt(ToyTask):
    """Simulates an interruption: stops cleanly (with a checkpoint) after ``stop`` steps."""

    def __init__(self, cfg, stop):
        super().__init__(cfg)
        self.stop = stop

    def on_step_end(self, model, step, stats):
        return step >= self.stop


def test_exact_resume_matches_uninterrupted_run(tmp_path):
    # accum_grad=2 and 16 batches/epoch: the stop at step 10 is mid-epoch 1, mid-schedule, with dropout.
    args = ["--train.max_steps=20", "--train.accum_grad=2", "--train.save_interval=7", "--train.valid_interval=7"]
    a = _cfg(tmp_path / "a", *args)
    _fit(a)
    b = _cfg(tmp_path / "b", *args)
    assert _fit(b, StopAt(b, 10))["step"] == 10
    task_b = ToyTask(b)
    assert _fit(b, task_b)["step"] == 20
    wa = load_file(str(tmp_path / "a/checkpoints/step_20/model.safetensors"))
    wb = load_file(str(tmp_path / "b/checkpoints/step_20/model.safetensors"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert task_b.calls == 40  # extra_state restored: 20 steps x 2 micro-batches
    # The metrics of the resumed run continue without duplicates.
    steps = [r["step"] for r in _metrics(tmp_path / "b") if r["split"] == "train"]
    assert steps == sorted(set(steps))


def test_sigterm_checkpoints_and_exits_143(tmp_path):
    exp = tmp_path / "term"
    cmd = [sys.executable, str(SCRIPT), f"--exp_dir={exp}", "--train.max_steps=1000", "--train.save_interval=1000",
           "--train.scheduler.decay=noam", "--train.scheduler.warmup_steps=3", "--sleep_s=0.02"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not (exp / "metrics.jsonl").is_file() or not (exp / "metrics.jsonl").read_text():
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read()[-2000:]
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err[-2000:]
    ckpts = list((exp / "checkpoints").glob("step_*"))
    assert len(ckpts) == 1 and 0 < int(ckpts[0].name[5:]) < 1000  # saved at the stop, off the interval


def _final_valid(exp):
    return [r["loss"] for r in _metrics(exp) if r["split"] == "valid"][-1]


def test_sigkill_then_rerun_resumes_and_finishes(tmp_path):
    exp = tmp_path / "killed"
    args = [f"--exp_dir={exp}", "--train.max_steps=60", "--train.save_interval=5", "--train.valid_interval=5",
            "--train.scheduler.warmup_steps=3", "--train.optim.lr=3e-3"]
    cmd = [sys.executable, str(SCRIPT), *args, "--sleep_s=0.04"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while not (exp / "checkpoints/step_20").exists():
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read().decode()[-2000:]
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (exp / "checkpoints/step_60").exists()
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "resumed from" in rerun.stderr and (exp / "checkpoints/step_60").is_dir()
    ref = _cfg(tmp_path / "ref", "--train.max_steps=60", "--train.save_interval=5", "--train.valid_interval=5")
    _fit(ref)
    assert _final_valid(exp) == pytest.approx(_final_valid(tmp_path / "ref"), rel=1e-5)


def test_max_time_stops_cleanly_with_checkpoint_and_rerun_is_a_noop(tmp_path):
    exp = tmp_path / "timed"
    cfg = _cfg(exp, "--train.max_steps=0", "--train.max_time_minutes=0.01", "--train.scheduler.decay=noam",
               "--sleep_s=0.03", "--train.save_interval=1000")
    out = _fit(cfg)
    # Each step sleeps 0.03 s, so a 0.6 s budget allows at most 20 steps: a count, not a wall-clock bound (the
    # checkpoint write after the stop can take seconds on a loaded machine, CI included).
    assert out["stop_reason"] == "max_time_minutes" and 3 < out["step"] <= 0.01 * 60 / 0.03
    assert out["checkpoint"].endswith(f"step_{out['step']}")
    again = _fit(cfg)
    assert again["step"] == out["step"] and again["stop_reason"] == "max_time_minutes"


def test_resume_with_a_different_model_is_a_clear_error(tmp_path):
    exp = tmp_path / "exp"
    _fit(_cfg(exp, "--train.max_steps=5"))
    with pytest.raises(CheckpointError, match=r"has model.hidden=32 but the config says 48.*fresh exp dir"):
        _fit(_cfg(exp, "--train.max_steps=10", "--model.hidden=48"))
    with pytest.raises(CheckpointError, match="does not exist"):
        _fit(_cfg(exp, "--train.max_steps=10", f"--train.resume={exp}/checkpoints/step_99"))


class WithReference(ToyTask):
    """Like an RL task: setup() copies the initial policy as a frozen reference."""

    def setup(self, model, device):
        self.ref = [p.detach().clone() for p in model.parameters()]


def test_init_from_setup_and_max_epochs(tmp_path):
    src = tmp_path / "sft"
    _fit(_cfg(src, "--train.max_steps=10"))
    sft = load_file(str(src / "checkpoints/step_10/model.safetensors"))
    args = ["--train.max_steps=0", "--train.max_epochs=2", "--train.scheduler.decay=constant",
            f"--train.init_from={src}/checkpoints/step_10"]
    cfg = _cfg(tmp_path / "rl", *args)
    task = WithReference(cfg)
    task.on_step_end = lambda model, step, stats: step >= 5  # interrupt mid-run
    assert _fit(cfg, task)["step"] == 5
    assert torch.equal(task.ref[0], sft["0.weight"])
    resumed = WithReference(cfg)  # a resumed run's reference is still the SFT model, not step 5
    out = _fit(cfg, resumed)
    assert torch.equal(resumed.ref[0], sft["0.weight"])
    assert out["step"] == 32 and out["epoch"] == 2  # 256 items / 16 per batch = 16 steps per epoch


class BadExtra(ToyTask):
    def extra_state(self):
        import numpy as np
        return {"arr": np.zeros(3)}  # numpy arrays are not weights_only-loadable


def test_unloadable_extra_state_fails_at_first_save(tmp_path):
    cfg = _cfg(tmp_path / "x", "--train.max_steps=5")
    with pytest.raises(TypeError, match="weights_only.*torch.from_numpy"):
        _fit(cfg, BadExtra(cfg))
