"""Logging set-up shared by every entry point.

Library code only calls ``get_logger(__name__)``; entry points call ``setup_logging`` once. The format
matches the shell ``log()`` of the stage scripts: ``2026-11-25T11:40:00 (file.py:12) INFO: message``.
Under torchrun only rank 0 logs at INFO; other ranks log warnings and errors.
"""

from __future__ import annotations

import logging
import os
import sys

FORMAT = "%(asctime)s (%(filename)s:%(lineno)d) %(levelname)s: %(message)s"
DATEFMT = "%Y-%m-%dT%H:%M:%S"


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)


def setup_logging(level: str | int = "INFO", log_file: str | None = None) -> None:
    """Configure the root logger once: stderr (and optionally a file), rank 0 only at ``level``."""
    rank = int(os.environ.get("RANK", "0"))
    if rank != 0:
        level = logging.WARNING
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file and rank == 0:
        os.makedirs(os.path.dirname(os.path.abspath(log_file)), exist_ok=True)
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    logging.basicConfig(level=level, format=FORMAT, datefmt=DATEFMT, handlers=handlers, force=True)
