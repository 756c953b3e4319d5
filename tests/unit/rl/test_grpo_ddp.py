"""GRPO under torchrun with 2 gloo ranks: sharded rollouts with whole groups, synchronised gradients (identical
parameters on both ranks after the steps), stats averaged over ranks; the same under FSDP."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
from _torchrun import torchrun  # noqa: E402

SCRIPT = Path(__file__).parent / "_toy_grpo_ddp.py"
G, B, STEPS = 4, 2, 4  # as in the script


def _run(exp: Path, mode: str):
    torchrun(SCRIPT, [str(exp), mode], exp_dir=exp)
    seen = [json.loads((exp / f"rank{r}.json").read_text()) for r in (0, 1)]
    params = [load_file(str(exp / f"rank{r}_params.safetensors")) for r in (0, 1)]
    metrics = [json.loads(x) for x in (exp / "metrics.jsonl").read_text().splitlines()]
    return seen, params, [m for m in metrics if m["split"] == "train"]


def _check(seen, params, train):
    assert all(len(s) == STEPS for s in seen)
    for step in range(STEPS):
        a, b = seen[0][step], seen[1][step]
        # each rank rolled out its own B prompts; every one of them has all G samples, on that rank only
        assert len(a["pids"]) == len(b["pids"]) == B and not set(a["pids"]) & set(b["pids"])
        for s in (a, b):
            assert s["groups"] == [g for g in range(B) for _ in range(G)]
        # the logged reward is the mean over the ranks of each rank's own
        assert train[step]["reward"] == pytest.approx((a["reward"] + b["reward"]) / 2, abs=1e-6)
    # gradients were synchronised: both ranks hold the same parameters although they trained on different rollouts
    assert any(x["reward"] != y["reward"] for x, y in zip(*seen))
    for k in params[0]:
        assert torch.equal(params[0][k], params[1][k]), k
    return params[0]


def test_grpo_two_ranks_ddp_and_fsdp(tmp_path):
    ddp = _check(*_run(tmp_path / "ddp", "ddp"))
    fsdp = _check(*_run(tmp_path / "fsdp", "fsdp"))
    # FSDP trains the same model: the same rollouts (per-rank seeds) and averaged gradients as DDP
    for k in ddp:
        assert torch.allclose(ddp[k], fsdp[k], rtol=1e-4, atol=1e-5), k
    # the checkpoint holds those parameters, and training moved them away from the initial ones
    saved = load_file(str(tmp_path / "ddp/checkpoints/step_4/model.safetensors"))
    assert all(torch.equal(v, ddp[k]) for k, v in saved.items())
    from audiorl.train.trainer import seed_everything
    sys.path.insert(0, str(SCRIPT.parent))
    from _toy_grpo_ddp import Policy
    seed_everything(0)  # what the Trainer does before build_model (train.seed 0)
    init = Policy().state_dict()
    assert not torch.equal(init["llm.layers.0.attn.wq.weight"], ddp["llm.layers.0.attn.wq.weight"])
    assert torch.equal(init["unused_head.weight"], ddp["unused_head.weight"])  # no gradient, no update
