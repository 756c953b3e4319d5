"""audiorl.tasks.asr_grpo: the ASR GRPO task's own term, policy.sft_weight (an SFT anchor on the batch's references)."""

import pytest
import torch

from audiorl.config import load_config
from audiorl.tasks.asr import ASRTask
from audiorl.tasks.asr_grpo import ASRGRPOConfig, ASRGRPOTask
from audiorl.train.trainer import Trainer

from .test_asr_task import _tiny_cfg, feats_dir  # noqa: F401  (the fixture)


@pytest.fixture()
def sft_exp(feats_dir, tmp_path):  # noqa: F811
    d, model_path, _ = feats_dir
    task = ASRTask(_tiny_cfg(d, model_path, ["--train.valid_interval", "0"]))
    Trainer(task, task.cfg.train, tmp_path / "sft", config=task.cfg).fit()
    return d, tmp_path / "sft"


def _step(d, exp, sft_weight):
    cfg = load_config(ASRGRPOConfig, overrides=[
        "--data.sft_exp", str(exp), "--data.rl_dir", str(d), "--data.valid_dir", "",
        "--grpo.num_generations", "2", "--grpo.max_new_tokens", "8", "--grpo.beta", "0",
        "--train.batch_size", "2", "--train.seed", "3", "--policy.sft_weight", str(sft_weight)])
    task = ASRGRPOTask(cfg)
    torch.manual_seed(0)
    model = task.build_model()
    task.setup(model, torch.device("cpu"))
    item = next(iter(task.train_batches(0, 0, 1)))
    loss, stats = task.train_step(model, item, 1)
    return model, loss, stats


def test_sft_weight_adds_the_sft_loss(sft_exp):
    d, exp = sft_exp
    _, plain, st0 = _step(d, exp, 0.0)
    assert "sft_loss" not in st0
    model, anchored, st = _step(d, exp, 0.5)
    # same seeds -> same rollout and GRPO term; the difference is exactly 0.5 x the logged SFT loss
    assert float(st["sft_loss"]) > 0
    assert float((anchored - plain).detach()) == pytest.approx(0.5 * float(st["sft_loss"]), rel=1e-5, abs=1e-6)
    anchored.backward()  # and it trains the model: the CTC head gets a gradient, which GRPO alone never gives it
    ctc = [p.grad for n, p in model.named_parameters() if "ctc" in n]
    assert ctc and any(g is not None and g.abs().sum() > 0 for g in ctc)
    with pytest.raises(ValueError, match="sft_weight"):
        load_config(ASRGRPOConfig, overrides=["--policy.sft_weight", "-1"])
