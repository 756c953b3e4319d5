"""Helpers of the recipe smoke tests: a copy of the recipe tree that mirrors the repository, and a runner.

The copy mirrors the repository layout (egs/TEMPLATE, egs/synth_en/{asr,tts}, with utils, tools and
audiorl reachable through the same relative paths) so that the recipes are shown to depend on the
repository only through their relative symlinks and path.sh, and nothing is written into the real tree.
"""

import os
import shutil
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUTPUTS = ("data", "dump", "exp", "RESULTS.md")
DATA_CMD = ["./run.sh", "--stage", "1", "--stop_stage", "3", "--nj", "1", "--local_data_opts", "--smoke true --nj 2"]


def copy_recipe_tree(tmp: Path) -> Path:
    (tmp / "egs").mkdir()
    for name in ("utils", "tools", "audiorl"):
        (tmp / name).symlink_to(ROOT / name)
    (tmp / "egs" / "TEMPLATE").symlink_to(ROOT / "egs" / "TEMPLATE")
    ignore = shutil.ignore_patterns(*OUTPUTS)
    for task in ("asr", "tts"):
        shutil.copytree(ROOT / "egs" / "synth_en" / task, tmp / "egs" / "synth_en" / task, symlinks=True, ignore=ignore)
    return tmp / "egs" / "synth_en"


def run(cmd: list[str], cwd: Path, timeout: int = 600, check: bool = True) -> tuple[str, float]:
    env = {k: v for k, v in os.environ.items() if k not in ("SYNTH_EN", "PYTHONPATH")}
    t = time.time()
    r = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=timeout)
    if check:
        assert r.returncode == 0, f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout[-4000:]}"
    return r.stdout, time.time() - t


