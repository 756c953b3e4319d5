"""Two gloo ranks under torchrun follow the same loss curve as one process with the same global batch."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _torchrun import torchrun  # noqa: E402
from _toy_regression import ToyConfig, ToyTask  # noqa: E402

from audiorl.config import load_config  # noqa: E402
from audiorl.train.trainer import Trainer  # noqa: E402

SCRIPT = Path(__file__).parent / "_toy_regression.py"
# No dropout: each rank draws its own dropout masks, which one process cannot reproduce.
ARGS = ["--model.dropout=0", "--train.max_steps=12", "--train.log_interval=2", "--train.valid_interval=4",
        "--train.save_interval=4", "--train.scheduler.warmup_steps=3", "--train.optim.lr=3e-3",
        "--train.accum_grad=2"]


def _curve(exp, split):
    recs = [json.loads(line) for line in (Path(exp) / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"]) for r in recs if r["split"] == split]


def test_two_gloo_ranks_match_one_process(tmp_path):
    exp2 = tmp_path / "ddp"
    torchrun(SCRIPT, [f"--exp_dir={exp2}", *ARGS], exp_dir=exp2)
    assert "world size 2" in (exp2 / "train.log").read_text()

    cfg = load_config(ToyConfig, None, [f"--exp_dir={tmp_path / 'one'}", *ARGS])
    Trainer(ToyTask(cfg), cfg.train, cfg.exp_dir, config=cfg).fit()
    for split in ("train", "valid"):
        one, two = _curve(tmp_path / "one", split), _curve(exp2, split)
        assert [s for s, _ in one] == [s for s, _ in two] and len(one) >= 3
        for (_, a), (_, b) in zip(one, two):
            assert b == pytest.approx(a, rel=1e-4, abs=1e-6), (split, one, two)
    # Only rank 0 wrote checkpoints, and they hold every rank's RNG state.
    import torch
    state = torch.load(exp2 / "checkpoints/step_12/trainer_state.pt", weights_only=True)
    assert state["world_size"] == 2 and len(state["rng"]) == 2
