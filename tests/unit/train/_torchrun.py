"""Run a script under ``torchrun --standalone --nproc_per_node N`` (gloo on CPU) for the multi-process tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def torchrun(script: Path, args: list[str], nproc: int = 2, exp_dir: Path | None = None,
             timeout: int = 180) -> subprocess.CompletedProcess:
    """Run ``script args`` in ``nproc`` processes; fail the test with the first error of either rank."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", str(script),
           *args]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    # torchrun's own report of a failed child is a Python traceback too: look for one from a worker only, before
    # the agent's first log line about the failure.
    workers = res.stderr.split("torch/distributed/elastic/multiprocessing/api.py", 1)[0]
    if res.returncode != 0 and "Signal 6 (SIGABRT)" in res.stderr and "Traceback" not in workers:
        # Seen once in ~17 runs on a loaded 2-core machine: a worker aborted inside gloo/c10d with no
        # Python error (gloo teardown races are a known upstream issue). Retry once, but say so.
        warnings.warn("torchrun worker aborted without a Python error; retrying once:\n" + res.stderr[-1500:])
        if exp_dir is not None:
            shutil.rmtree(exp_dir, ignore_errors=True)
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if res.returncode != 0:  # show the first error of either rank, not just torchrun's summary
        lines = res.stderr.splitlines()
        first = next((i for i, ln in enumerate(lines) if "Error" in ln or "Traceback" in ln or "terminate" in ln), 0)
        pytest.fail("torchrun failed:\n" + "\n".join(lines[max(0, first - 5):first + 40]) + "\n...\n"
                    + "\n".join(lines[-15:]))
    return res
