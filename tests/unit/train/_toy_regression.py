"""A toy Task for the trainer tests: an MLP regressing a fixed random linear function.

Also a script (``python _toy_regression.py --exp_dir D --train.max_steps 40 ...``) for the SIGKILL
and DDP tests, so that they exercise the real entry-point path: parse_cli -> Trainer.fit.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repo root, when run as a script

from audiorl.config import option, parse_cli  # noqa: E402
from audiorl.log import setup_logging  # noqa: E402
from audiorl.train.config import TrainConfig  # noqa: E402
from audiorl.train.trainer import Task, Trainer  # noqa: E402


def _default_train() -> TrainConfig:
    return TrainConfig(max_steps=20, log_interval=5, valid_interval=5, save_interval=5, tensorboard=False,
                       progress_bar=False, batch_size=16)


@dataclass
class ToyModelConfig:
    """The MLP."""

    dim_in: int = option(8, "Input features.")
    hidden: int = option(32, "Hidden units.")
    dropout: float = option(0.1, "Dropout (exercises the RNG in exact-resume tests).")


@dataclass
class ToyConfig:
    """Toy regression stage."""

    exp_dir: str = option("exp/toy", "Experiment directory.")
    n_train: int = option(256, "Training examples.")
    n_valid: int = option(64, "Validation examples.")
    sleep_s: float = option(0.0, "Sleep per step (lets a test kill the run part-way).")
    model: ToyModelConfig = option(default_factory=ToyModelConfig, help="Model.")
    train: TrainConfig = option(default_factory=_default_train, help="Trainer.")


class ToyTask(Task):
    def __init__(self, cfg: ToyConfig):
        self.cfg = cfg
        g = torch.Generator().manual_seed(1234)  # the data never depends on the training seed
        d = cfg.model.dim_in
        w = torch.randn(d, 1, generator=g)
        x = torch.randn(cfg.n_train + cfg.n_valid, d, generator=g)
        y = torch.tanh(x @ w) + 0.05 * torch.randn(x.shape[0], 1, generator=g)
        self.x_tr, self.y_tr = x[: cfg.n_train], y[: cfg.n_train]
        self.x_va, self.y_va = x[cfg.n_train:], y[cfg.n_train:]
        self.calls = 0  # task state that must survive a resume (extra_state)

    def build_model(self) -> nn.Module:
        m = self.cfg.model
        return nn.Sequential(nn.Linear(m.dim_in, m.hidden), nn.ReLU(), nn.Dropout(m.dropout), nn.Linear(m.hidden, 1))

    def train_batches(self, epoch: int, rank: int, world_size: int):
        # A global batch of batch_size items is split across ranks: rank r takes items r::W, so one
        # process with batch B and W processes with B/W each see the same global batches.
        perm = torch.randperm(self.cfg.n_train, generator=torch.Generator().manual_seed(1000 + epoch))
        bs = self.cfg.train.batch_size
        for i in range(0, self.cfg.n_train - bs + 1, bs):
            idx = perm[i:i + bs][rank::world_size]
            yield self.x_tr[idx], self.y_tr[idx]

    def train_step(self, model: nn.Module, batch, step: int):
        x, y = batch
        if self.cfg.sleep_s:
            time.sleep(self.cfg.sleep_s)
        self.calls += 1
        loss = nn.functional.mse_loss(model(x), y)
        return loss, {"calls": float(self.calls)}

    def valid(self, model: nn.Module):
        return {"loss": nn.functional.mse_loss(model(self.x_va), self.y_va).item()}

    def extra_state(self):
        return {"calls": self.calls}

    def load_extra_state(self, state):
        self.calls = state.get("calls", 0)


def main(argv: list[str] | None = None) -> dict:
    cfg = parse_cli(ToyConfig, argv, prog="toy_regression")
    torch.set_num_threads(1)
    setup_logging(log_file=None)
    return Trainer(ToyTask(cfg), cfg.train, cfg.exp_dir, config=cfg).fit()


if __name__ == "__main__":
    main()
