"""Where training numbers go on rank 0: ``metrics.jsonl`` (one JSON object per log event) and TensorBoard.

Each JSONL line is ``{"step": N, "split": "train"|"valid", "loss": ..., "lr": ..., <stats>}``. On resume
both are cut back to the resumed step, so a run killed after its last checkpoint leaves no duplicate
points in the curves.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from audiorl.log import get_logger

logger = get_logger(__name__)


def read_metrics(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read a JSONL file; a bad line raises with file:line. A truncated last line (the trainer was
    killed mid-write) is skipped with a warning, since the file is still being appended to."""
    out: list[dict] = []
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            if lineno == len(lines):  # no trailing newline: a partial final write
                logger.warning("%s:%d: skipping incomplete last line", path, lineno)
                continue
            raise ValueError(f"{path}:{lineno}: not a JSON object ({e.msg})") from None
        if not isinstance(rec, dict):
            raise ValueError(f"{path}:{lineno}: expected a JSON object, got {type(rec).__name__}")
        out.append(rec)
    return out


class MetricsWriter:
    """Appends records to ``<exp>/metrics.jsonl`` and mirrors them as TensorBoard scalars."""

    def __init__(self, exp_dir: str | os.PathLike, tensorboard: bool, resume_step: int | None):
        self.path = Path(exp_dir) / "metrics.jsonl"
        if resume_step is not None:
            kept = [r for r in (read_metrics(self.path) if self.path.is_file() else []) if r.get("step", 0) <= resume_step]
            self.path.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
        elif self.path.exists():
            self.path.unlink()  # a fresh start owns the file
        self._fh = open(self.path, "a", encoding="utf-8")
        self.tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
                # purge_step drops events after the resumed step from a killed run.
                self.tb = SummaryWriter(str(Path(exp_dir) / "tb"), purge_step=resume_step)
            except ImportError:
                logger.warning("tensorboard is not installed: no TensorBoard events (train.tensorboard=false "
                               "silences this)")

    def write(self, step: int, split: str, values: dict[str, float]) -> None:
        rec = {"step": step, "split": split}
        for k, v in values.items():
            v = v if isinstance(v, int) else float(v)
            rec[k] = v if math.isfinite(v) else str(v)  # JSON has no NaN/inf
        self._fh.write(json.dumps(rec) + "\n")
        self._fh.flush()
        if self.tb is not None:
            for k, v in values.items():
                self.tb.add_scalar(f"{split}/{k}", float(v), step)

    def close(self) -> None:
        self._fh.close()
        if self.tb is not None:
            self.tb.close()
