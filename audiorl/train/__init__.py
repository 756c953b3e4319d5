"""One trainer for every stage: ``Task`` + ``Trainer`` (trainer.py), ``TrainConfig`` (config.py),
atomic checkpoints and averaging (checkpoint.py), torch.distributed helpers (distributed.py)."""
