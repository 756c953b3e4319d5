"""audiorl.rl.grpo_task through the real Trainer: a toy policy learns a rule reward; exact resume with beta > 0."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from audiorl.models.llm import LLM, LLMConfig
from audiorl.rl.config import GRPOConfig
from audiorl.rl.grpo_task import GRPOStepConfig, GRPOTask, RepeatBatches
from audiorl.rl.rewards import RewardConfig, RewardInput, register_reward
from audiorl.train.config import OptimConfig, SchedulerConfig, TrainConfig
from audiorl.train.trainer import Trainer

EOS, TARGET = 7, 3


@register_reward("toy_count_target")
def toy_count_target(samples: list[RewardInput]) -> list[float]:
    """Share of TARGET tokens in a completion of up to 4 tokens (0 for an empty one)."""
    return [sum(t == TARGET for t in s.hyp_tokens) / 4 for s in samples]


class ToyPolicy(nn.Module):
    def __init__(self):
        super().__init__()
        self.llm = LLM(LLMConfig(vocab_size=8, dim=16, n_layers=1, n_heads=2, n_kv_heads=1, intermediate_size=32,
                                 max_seq_len=32))


class ToyGRPO(GRPOTask):
    def __init__(self, grpo, step=None, stop_at=0):
        super().__init__(grpo, step or GRPOStepConfig(), RewardConfig([{"name": "toy_count_target"}]), seed=0)
        self.stop_at = stop_at

    def build_model(self):
        return ToyPolicy()

    def prompt_batches(self, epoch, rank, world_size):
        g = torch.Generator().manual_seed(100 + epoch)
        return [torch.randint(0, 7, (4, 2), generator=g) for _ in range(50)]

    def encode_prompts(self, model, batch):
        return model.llm.embed(batch), torch.full((batch.shape[0],), batch.shape[1])

    def policy_llm(self, model):
        return model.llm

    def reward_inputs(self, batch, rollout):
        ids = rollout.completion_ids(EOS)
        return [RewardInput(hyp_tokens=s, group_index=i // rollout.num_generations) for i, s in enumerate(ids)]

    @property
    def eos_id(self):
        return EOS

    def on_step_end(self, model, step, stats):
        return super().on_step_end(model, step, stats) or (self.stop_at and step == self.stop_at)


def train_cfg(steps, **kw):
    base = dict(max_steps=steps, optim=OptimConfig(lr=kw.pop("lr", 3e-3), weight_decay=0.0),
                scheduler=SchedulerConfig(warmup_steps=0, decay="constant"), log_interval=1, valid_interval=0,
                save_interval=kw.pop("save_interval", 1000), tensorboard=False, progress_bar=False, keep_last_n=0)
    return TrainConfig(**base, **kw)


def rewards(exp):
    rows = [json.loads(x) for x in (Path(exp) / "metrics.jsonl").read_text().splitlines()]
    return [r["reward"] for r in rows if r.get("split") == "train"]


def test_repeat_batches_skip():
    rb = RepeatBatches([10, 20, 30], 2)
    assert list(rb) == [(10, 0), (10, 1), (20, 0), (20, 1), (30, 0), (30, 1)] and len(rb) == 6
    assert list(rb.skip(3)) == [(20, 1), (30, 0), (30, 1)] and len(rb.skip(3)) == 3


def test_toy_grpo_raises_the_mean_reward(tmp_path):
    grpo = GRPOConfig(num_generations=8, max_new_tokens=4, beta=0.0)
    out = Trainer(ToyGRPO(grpo), train_cfg(30, lr=1e-2), tmp_path / "exp").fit()
    r = rewards(tmp_path / "exp")
    assert out["step"] == 30 and len(r) == 30
    first, last = sum(r[:5]) / 5, sum(r[-5:]) / 5
    assert last > first + 0.2, (first, last)
    row = json.loads((tmp_path / "exp" / "metrics.jsonl").read_text().splitlines()[0])
    for key in ("reward_toy_count_target", "frac_reward_zero_std", "clip_frac", "entropy", "completion_len",
                "time_encode", "time_rollout", "time_reward", "time_update", "time_backward"):
        assert key in row, key


def test_toy_grpo_with_a_greedy_baseline_raises_the_greedy_reward(tmp_path):
    """grpo.baseline='greedy' (self-critical): the logged reward of each batch's greedy completions rises."""
    grpo = GRPOConfig(num_generations=8, max_new_tokens=4, beta=0.0, baseline="greedy", scale_rewards="batch")
    out = Trainer(ToyGRPO(grpo), train_cfg(30, lr=1e-2), tmp_path / "exp").fit()
    assert out["step"] == 30
    rows = [json.loads(x) for x in (tmp_path / "exp" / "metrics.jsonl").read_text().splitlines()]
    greedy = [r["reward_greedy"] for r in rows if r.get("split") == "train"]
    assert len(greedy) == 30 and all(0.0 <= g <= 1.0 for g in greedy)
    first, last = sum(greedy[:5]) / 5, sum(greedy[-5:]) / 5
    assert last > first + 0.2, (first, last)


def test_greedy_baseline_needs_the_tasks_own_greedy_when_it_samples_its_own_space():
    class OwnSampler(ToyGRPO):
        def sample(self, policy, embeds, lens, batch):
            return super().sample(policy, embeds, lens, batch)

    task = OwnSampler(GRPOConfig(num_generations=2, max_new_tokens=4, beta=0.0, baseline="greedy"))
    model = task.build_model()
    batch = task.prompt_batches(0, 0, 1)[0]
    embeds, lens = task.encode_prompts(model, batch)
    with pytest.raises(NotImplementedError, match="baseline='group_mean'"):
        task.greedy(model, embeds, lens, batch)
    with pytest.raises(ValueError, match="baseline='mode'"):
        GRPOConfig(baseline="mode")


@pytest.mark.parametrize("mu", [1, 2])
def test_resume_is_exact_with_reference_and_reuse(tmp_path, mu):
    """Stop at step 3 (mid-reuse for mu = 2), resume to 6: the weights equal an uninterrupted run's."""
    grpo = GRPOConfig(num_generations=4, max_new_tokens=4, beta=0.1, num_iterations=mu)
    a, b = tmp_path / "a", tmp_path / "b"
    Trainer(ToyGRPO(grpo), train_cfg(6), a).fit()
    out = Trainer(ToyGRPO(grpo, stop_at=3), train_cfg(6), b).fit()
    assert out["step"] == 3
    state = torch.load(b / "checkpoints" / "step_3" / "extra_state.pt", weights_only=True)
    assert "rollout_rng" in state and "ref_checksum" in state and ("cache" in state) == (mu == 2)
    assert Trainer(ToyGRPO(grpo), train_cfg(6), b).fit()["step"] == 6
    wa = load_file(a / "checkpoints" / "step_6" / "model.safetensors")
    wb = load_file(b / "checkpoints" / "step_6" / "model.safetensors")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert rewards(a)[3:] == rewards(b)[3:]


def test_kl_stop_rule(tmp_path):
    grpo = GRPOConfig(num_generations=4, max_new_tokens=4, beta=0.1)
    step = GRPOStepConfig(stop_kl=1e-9, stop_kl_patience=2)
    out = Trainer(ToyGRPO(grpo, step), train_cfg(20, lr=5e-2), tmp_path / "exp").fit()
    assert out["step"] < 20 and "on_step_end" in out["stop_reason"]


@pytest.mark.parametrize("step", [GRPOStepConfig(prompt_grad=False), GRPOStepConfig(old_logprobs="recompute")])
def test_step_options_run(tmp_path, step):
    grpo = GRPOConfig(num_generations=4, max_new_tokens=4, beta=0.1, num_iterations=2, top_k=5)
    out = Trainer(ToyGRPO(grpo, step), train_cfg(4), tmp_path / "exp").fit()
    assert out["step"] == 4 and len(rewards(tmp_path / "exp")) == 4
