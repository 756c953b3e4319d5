"""Suite-wide settings: single-threaded torch (2-core machines; threads collapse under load)."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover - the venv always has torch
    pass
