"""A toy Task with a real transformer (audiorl.models.llm.LLM, tied embeddings) for the FSDP tests: next-token
prediction of sequences that count up modulo the vocabulary. Also a script for torchrun, like _toy_regression.py."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repo root, when run as a script

from audiorl.config import option, parse_cli  # noqa: E402
from audiorl.log import setup_logging  # noqa: E402
from audiorl.models.llm import LLM, LLMConfig  # noqa: E402
from audiorl.train.config import TrainConfig  # noqa: E402
from audiorl.train.trainer import Task, Trainer  # noqa: E402

V, T = 16, 12


def _default_train() -> TrainConfig:
    return TrainConfig(max_steps=12, log_interval=2, valid_interval=4, save_interval=4, tensorboard=False,
                       progress_bar=False, batch_size=8)


@dataclass
class ToyLMConfig:
    """Toy LM stage."""

    exp_dir: str = option("exp/toy_lm", "Experiment directory.")
    n_train: int = option(128, "Training sequences.")
    train: TrainConfig = option(default_factory=_default_train, help="Trainer.")


def toy_llm() -> LLM:
    return LLM(LLMConfig(vocab_size=V, dim=32, n_layers=2, n_heads=4, n_kv_heads=2, intermediate_size=64,
                         max_seq_len=T, tie_embeddings=True))


class ToyLMTask(Task):
    def __init__(self, cfg: ToyLMConfig):
        self.cfg = cfg
        g = torch.Generator().manual_seed(4321)  # the data never depends on the training seed
        start = torch.randint(0, V, (cfg.n_train + 32, 1), generator=g)
        self.seqs = (start + torch.arange(T)) % V  # (N, T)
        self.valid_seqs = self.seqs[cfg.n_train:]

    def build_model(self) -> nn.Module:
        return toy_llm()

    def train_batches(self, epoch: int, rank: int, world_size: int):
        # Global batch of batch_size, rank r takes rows r::W (as _toy_regression.py).
        perm = torch.randperm(self.cfg.n_train, generator=torch.Generator().manual_seed(1000 + epoch))
        bs = self.cfg.train.batch_size
        for i in range(0, self.cfg.n_train - bs + 1, bs):
            yield self.seqs[perm[i:i + bs][rank::world_size]]

    @staticmethod
    def loss(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        logits = model(x[:, :-1])  # (B, T-1, V)
        return nn.functional.cross_entropy(logits.reshape(-1, V), x[:, 1:].reshape(-1))

    def train_step(self, model: nn.Module, batch, step: int):
        return self.loss(model, batch), {}

    def valid(self, model: nn.Module):
        return {"loss": self.loss(model, self.valid_seqs).item()}


def main(argv: list[str] | None = None) -> dict:
    cfg = parse_cli(ToyLMConfig, argv, prog="toy_lm")
    torch.set_num_threads(1)
    setup_logging(log_file=None)
    return Trainer(ToyLMTask(cfg), cfg.train, cfg.exp_dir, config=cfg).fit()


if __name__ == "__main__":
    main()
