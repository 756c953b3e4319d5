"""audiorl.train.checkpoint: atomic saves, weights_only loads, pruning, averaging, clear mismatch errors."""

from __future__ import annotations

import json
import os
import pickle

import pytest
import torch
from torch import nn

from audiorl.train import checkpoint as C
from audiorl.train.optim import build_optimizer, build_scheduler
from audiorl.train.config import OptimConfig, SchedulerConfig


class Net(nn.Module):
    def __init__(self, dim: int = 4, tie: bool = False):
        super().__init__()
        self.emb = nn.Embedding(10, dim)
        self.out = nn.Linear(dim, 10, bias=False)
        if tie:
            self.out.weight = self.emb.weight  # shared storage: saved once in safetensors
        self.register_buffer("count", torch.tensor(3))


def _save(root, step, model, config=None, valid_loss=None):
    opt = build_optimizer(model, OptimConfig())
    sched = build_scheduler(opt, SchedulerConfig(decay="constant", warmup_steps=2), 10)
    state = {"step": step, "rng": [C.get_rng_state()]}
    return C.save_checkpoint(root, step, model, opt, sched, state, config or {"llm": {"dim": 4}},
                             {"ref": torch.ones(2)}, meta={"valid_loss": valid_loss})


def test_save_layout_and_round_trip(tmp_path):
    torch.manual_seed(0)
    m = Net(tie=True)
    path = _save(tmp_path, 7, m)
    assert path == tmp_path / "step_7" and C.is_complete(path)
    assert (tmp_path / "latest").read_text().strip() == "step_7"
    assert not [d for d in os.listdir(tmp_path) if d.startswith(".")]  # no temp leftovers
    m2 = Net(tie=True)
    opt = build_optimizer(m2, OptimConfig())
    out = C.load_checkpoint(path, m2, opt, None, {"llm": {"dim": 4}})
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), m2.state_dict().values()))
    assert m2.out.weight is m2.emb.weight  # tying survives
    assert out["trainer_state"]["step"] == 7 and torch.equal(out["extra_state"]["ref"], torch.ones(2))


def test_rng_state_round_trip(tmp_path):
    import random

    import numpy as np
    state = C.get_rng_state()
    a = (random.random(), np.random.rand(), torch.rand(1))
    C.set_rng_state(state)
    assert (random.random(), np.random.rand()) == a[:2] and torch.equal(torch.rand(1), a[2])


def test_interrupted_save_leaves_previous_checkpoint(tmp_path, monkeypatch):
    m = Net()
    _save(tmp_path, 1, m)
    real_rename = os.rename

    def crash(src, dst):
        if str(dst).endswith("step_2"):
            raise KeyboardInterrupt("killed during save")
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", crash)
    with pytest.raises(KeyboardInterrupt):
        _save(tmp_path, 2, m)
    monkeypatch.setattr(os, "rename", real_rename)
    assert C.find_latest(tmp_path) == tmp_path / "step_1"
    assert not (tmp_path / "step_2").exists()
    assert any(d.startswith(".tmp_step_2") for d in os.listdir(tmp_path))
    C.cleanup_partial(tmp_path)
    assert not [d for d in os.listdir(tmp_path) if d.startswith(".")]
    # An incomplete step dir (e.g. copied by hand) is never picked.
    (tmp_path / "step_9").mkdir()
    assert C.find_latest(tmp_path) == tmp_path / "step_1"


def test_loads_use_weights_only_and_refuse_pickled_code(tmp_path, monkeypatch):
    path = _save(tmp_path, 1, Net())
    seen = []
    real_load = torch.load

    def spy(*a, **k):
        seen.append(k.get("weights_only"))
        return real_load(*a, **k)

    monkeypatch.setattr(torch, "load", spy)
    C.load_checkpoint(path, Net(), build_optimizer(Net(), OptimConfig()), None)
    assert seen and all(w is True for w in seen)
    monkeypatch.setattr(torch, "load", real_load)

    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    with open(path / "trainer_state.pt", "wb") as fh:
        pickle.dump({"x": Evil()}, fh, protocol=2)
    with pytest.raises(pickle.UnpicklingError):
        C.load_checkpoint(path, Net())
    assert not (tmp_path / "pwned").exists()


def test_keep_last_n_spares_best_and_latest(tmp_path):
    m = Net()
    for step, loss in [(1, 0.1), (2, 0.9), (3, 0.8), (4, 0.7), (5, 0.6)]:
        _save(tmp_path, step, m, valid_loss=loss)
    best = [p for _, _, p in C.best_checkpoints(tmp_path, 1)]
    assert best == [tmp_path / "step_1"]
    C.prune_checkpoints(tmp_path, 2, protect=best)
    assert [s for s, _ in C.list_checkpoints(tmp_path)] == [1, 4, 5]
    assert C.prune_checkpoints(tmp_path, 0) == []  # 0 keeps everything


def test_average_checkpoints_math(tmp_path):
    root = tmp_path / "checkpoints"
    paths = []
    for i, v in enumerate([1.0, 2.0, 6.0]):
        m = Net()
        with torch.no_grad():
            for p in m.parameters():
                p.fill_(v)
        m.count.fill_(i + 4)  # ints 4, 5, 6: floor of the mean, like ESPnet
        paths.append(_save(root, i + 1, m, valid_loss=v))
    avg = C.average_checkpoints(paths)
    assert torch.allclose(avg["emb.weight"], torch.full((10, 4), 3.0)) and avg["emb.weight"].dtype == torch.float32
    assert avg["count"].item() == 5 and avg["count"].dtype == torch.int64
    f = C.write_best_average(tmp_path, 2)  # best 2 by valid loss: steps 1 and 2
    assert f == tmp_path / "valid.loss.ave2_best.safetensors"
    info = json.loads(f.with_suffix(".json").read_text())
    assert [a["step"] for a in info["averaged"]] == [1, 2]
    m = Net()
    C.load_model_weights(m, f)
    assert torch.allclose(m.emb.weight, torch.full((10, 4), 1.5))


def test_final_weights_follows_the_config_not_file_names(tmp_path):
    root = tmp_path / "checkpoints"
    for i, v in enumerate([3.0, 1.0, 2.0]):
        _save(root, i + 1, Net(), valid_loss=v)
    assert C.final_weights(tmp_path) == root / "step_3"  # no config, no average: the latest checkpoint
    C.write_best_average(tmp_path, 3)  # a stale average of an earlier run ...
    (tmp_path / "config.yaml").write_text("train:\n  average_best_n: 1\n")
    assert C.final_weights(tmp_path) == root / "step_3"  # ... is not the one this config asks for
    C.write_best_average(tmp_path, 1)
    assert C.final_weights(tmp_path) == tmp_path / "valid.loss.ave1_best.safetensors"  # ave3 sorts after ave1
    (tmp_path / "config.yaml").write_text("train:\n  average_best_n: 0\n")
    assert C.final_weights(tmp_path) == root / "step_3"
    assert C.final_weights(tmp_path / "nothing") is None


def test_incompatible_config_gives_a_clear_error(tmp_path):
    path = _save(tmp_path, 200, Net(dim=256), config={"llm": {"dim": 256}, "lr": 1})
    with pytest.raises(C.CheckpointError) as e:
        C.load_checkpoint(path, Net(dim=192), config={"llm": {"dim": 192}, "lr": 1})
    msg = str(e.value)
    assert f"checkpoint {path} has llm.dim=256 but the config says 192" in msg
    assert "use a matching config or a fresh exp dir" in msg and "emb.weight: [10, 256]" in msg
    assert "size mismatch" not in msg
    with pytest.raises(C.CheckpointError, match="did the model code change"):
        C.load_checkpoint(path, Net(dim=192), config={"llm": {"dim": 256}, "lr": 1})


def test_resume_rules(tmp_path):
    assert C.resolve_resume(tmp_path, "auto") is None
    with pytest.raises(C.CheckpointError, match="no complete checkpoint"):
        C.resolve_resume(tmp_path, "latest")
    with pytest.raises(C.CheckpointError, match="does not exist"):
        C.resolve_resume(tmp_path, str(tmp_path / "step_5"))
    _save(tmp_path, 3, Net())
    assert C.resolve_resume(tmp_path, "auto") == tmp_path / "step_3"
    assert C.resolve_resume(tmp_path, str(tmp_path / "step_3")) == tmp_path / "step_3"
    with pytest.raises(C.CheckpointError, match="resume=never"):
        C.resolve_resume(tmp_path, "never")
