"""train.distributed=fsdp: two gloo ranks with FSDP2 follow DDP's loss curve, resume exactly, and write full
checkpoints that load into one process."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).parent))
from _torchrun import torchrun  # noqa: E402
from _toy_lm import ToyLMConfig, ToyLMTask, toy_llm  # noqa: E402

from audiorl.config import load_config  # noqa: E402
from audiorl.train.checkpoint import load_model_weights  # noqa: E402

SCRIPT = Path(__file__).parent / "_toy_lm.py"
# decay=constant: the run stopped at step 6 and resumed to 12 must see the same schedule as one 12-step run
ARGS = ["--train.scheduler.warmup_steps=3", "--train.scheduler.decay=constant", "--train.optim.lr=3e-3",
        "--train.accum_grad=2"]


def _curve(exp, split):
    recs = [json.loads(line) for line in (Path(exp) / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"]) for r in recs if r["split"] == split]


def test_fsdp_matches_ddp_resumes_and_loads_in_one_process(tmp_path):
    ddp, fsdp = tmp_path / "ddp", tmp_path / "fsdp"
    torchrun(SCRIPT, [f"--exp_dir={ddp}", *ARGS], exp_dir=ddp)
    # FSDP (with gradient checkpointing on: it must not change the numbers), stopped at step 6 and resumed to 12.
    fsdp_args = [f"--exp_dir={fsdp}", *ARGS, "--train.distributed=fsdp", "--train.grad_checkpointing=true"]
    torchrun(SCRIPT, [*fsdp_args, "--train.max_steps=6"], exp_dir=fsdp)
    torchrun(SCRIPT, [*fsdp_args, "--train.max_steps=12"])
    log = (fsdp / "train.log").read_text()
    assert "world size 2 (fsdp)" in log and "resumed from" in log and "gradient checkpointing" in log

    for split in ("train", "valid"):
        a, b = _curve(ddp, split), _curve(fsdp, split)
        # the FSDP run's first part ended at step 6 with a validation and a partial train window
        a, b = [x for x in a if x[0] != 6], [x for x in b if x[0] != 6]
        assert [s for s, _ in a] == [s for s, _ in b] and len(a) >= 3, (split, a, b)
        for (_, x), (_, y) in zip(a, b):
            assert y == pytest.approx(x, rel=1e-4, abs=1e-6), (split, a, b)
    assert a[-1][1] < a[0][1]  # it learned something: the comparison is not between two flat lines

    # Full, unsharded weights in the single-process format (tied embedding stored once) and in one process
    # they give the valid loss the FSDP run logged at its last step.
    ck = fsdp / "checkpoints/step_12"
    sd = load_file(str(ck / "model.safetensors"))
    ref = load_file(str(ddp / "checkpoints/step_12/model.safetensors"))
    assert set(sd) == set(ref) and ("output.weight" in sd) != ("tok_embeddings.weight" in sd)
    for k in sd:
        assert sd[k].shape == ref[k].shape and torch.allclose(sd[k], ref[k], rtol=1e-4, atol=1e-5), k
    model = toy_llm()
    load_model_weights(model, ck)
    cfg = load_config(ToyLMConfig, None, [f"--exp_dir={tmp_path / 'x'}"])
    with torch.no_grad():
        loss = ToyLMTask(cfg).valid(model.eval())["loss"]
    assert loss == pytest.approx(_curve(fsdp, "valid")[-1][1], rel=1e-5)
    opt = torch.load(ck / "optimizer.pt", weights_only=True)
    assert set(opt["state"]) == {n for n, _ in model.named_parameters()}  # full state, keyed by name
    assert torch.load(ck / "trainer_state.pt", weights_only=True)["distributed"] == "fsdp"
