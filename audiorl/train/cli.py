"""The shared body of every training entry point: ``--exp_dir DIR`` + a stage config + a Task -> Trainer."""

from __future__ import annotations

import sys
from typing import Callable

from audiorl.config import parse_cli
from audiorl.log import setup_logging
from audiorl.train.trainer import Trainer


def train_main(config_cls: type, task_cls: Callable, prog: str, argv: list[str] | None = None) -> int:
    """Parse ``--exp_dir DIR [--config FILE] [--section.field V ...]``, build the task, train (or resume).

    Exit codes: 0 trained (or already finished), 1 no step taken, 2 usage error."""
    argv = list(sys.argv[1:] if argv is None else argv)
    exp_dir = None
    if "--exp_dir" in argv:
        i = argv.index("--exp_dir")
        if i + 1 >= len(argv):
            sys.stderr.write(f"{prog}: error: --exp_dir needs a directory\n")
            return 2
        exp_dir = argv[i + 1]
        del argv[i: i + 2]
    elif not {"--help", "-h", "--print_config"} & set(argv):
        sys.stderr.write(f"{prog}: error: --exp_dir DIR is required\n")
        return 2
    cfg = parse_cli(config_cls, argv, prog=prog)
    setup_logging()
    task = task_cls(cfg)
    # task.cfg: the config with what the task resolved (token ids, SFT model shape) filled in.
    result = Trainer(task, task.cfg.train, exp_dir, config=task.cfg).fit()
    return 0 if result["step"] > 0 else 1
