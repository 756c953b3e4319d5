"""GRPO on a toy policy under torchrun (test_grpo_ddp.py): each rank writes what it saw to <exp_dir>/rank<r>.json and
its final parameters to <exp_dir>/rank<r>_params.safetensors.

Usage: python -m torch.distributed.run --standalone --nproc_per_node 2 _toy_grpo_ddp.py EXP_DIR [distributed]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repo root, when run as a script

from audiorl.log import setup_logging  # noqa: E402
from audiorl.models.llm import LLM, LLMConfig  # noqa: E402
from audiorl.rl.config import GRPOConfig  # noqa: E402
from audiorl.rl.grpo_task import GRPOStepConfig, GRPOTask  # noqa: E402
from audiorl.rl.rewards import RewardConfig, RewardInput, register_reward  # noqa: E402
from audiorl.train import distributed as dist_lib  # noqa: E402
from audiorl.train import fsdp as fsdp_lib  # noqa: E402
from audiorl.train.checkpoint import unwrap  # noqa: E402
from audiorl.train.config import OptimConfig, SchedulerConfig, TrainConfig  # noqa: E402
from audiorl.train.trainer import Trainer  # noqa: E402

EOS, TARGET, G, B, N_PROMPTS, STEPS = 7, 3, 4, 2, 16, 4


@register_reward("toy_ddp_target")
def toy_ddp_target(samples: list[RewardInput]) -> list[float]:
    """Share of TARGET tokens in a completion of up to 4 tokens."""
    return [sum(t == TARGET for t in s.hyp_tokens) / 4 for s in samples]


class Policy(nn.Module):
    def __init__(self):
        super().__init__()
        self.llm = LLM(LLMConfig(vocab_size=8, dim=16, n_layers=1, n_heads=2, n_kv_heads=1, intermediate_size=32,
                                 max_seq_len=32))
        self.unused_head = nn.Linear(16, 3)  # like the ASR CTC head: never in the RL loss (DDP must cope)


class ToyGRPO(GRPOTask):
    def __init__(self):
        grpo = GRPOConfig(num_generations=G, max_new_tokens=4, beta=0.04)
        super().__init__(grpo, GRPOStepConfig(), RewardConfig([{"name": "toy_ddp_target"}]), seed=0)
        g = torch.Generator().manual_seed(5)
        self.prompts = torch.randint(0, 7, (N_PROMPTS, 2), generator=g)
        self.seen: list[dict] = []

    def build_model(self):
        return Policy()

    def prompt_batches(self, epoch, rank, world_size):
        # a global batch of B x world_size prompts per step, rank r takes r::W (what LengthBucketSampler does)
        order = torch.randperm(N_PROMPTS, generator=torch.Generator().manual_seed(100 + epoch))
        step = B * world_size
        return [{"pid": order[i:i + step][rank::world_size], "x": self.prompts[order[i:i + step][rank::world_size]]}
                for i in range(0, N_PROMPTS - step + 1, step)]

    def encode_prompts(self, model, batch):
        x = batch["x"]
        return model.llm.embed(x), torch.full((x.shape[0],), x.shape[1])

    def policy_llm(self, model):
        return model.llm

    def reward_inputs(self, batch, rollout):
        ids = rollout.completion_ids(EOS)
        groups = [i // rollout.num_generations for i in range(len(ids))]
        self.seen.append({"pids": batch["pid"].tolist(), "groups": groups})
        return [RewardInput(hyp_tokens=s, group_index=g) for s, g in zip(ids, groups)]

    @property
    def eos_id(self):
        return EOS

    def on_step_end(self, model, step, stats):
        self.seen[-1]["reward"] = stats["reward"]  # this rank's own value (the Trainer logs the mean over ranks)
        return super().on_step_end(model, step, stats)


def main() -> None:
    exp, mode = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "ddp")
    torch.set_num_threads(1)
    setup_logging(log_file=None)
    cfg = TrainConfig(max_steps=STEPS, optim=OptimConfig(lr=3e-3, weight_decay=0.0), distributed=mode,
                      scheduler=SchedulerConfig(warmup_steps=0, decay="constant"), log_interval=1, valid_interval=0,
                      save_interval=1000, tensorboard=False, progress_bar=False, batch_size=B)
    task = ToyGRPO()
    trainer = Trainer(task, cfg, exp)
    orig_save, captured = trainer._save, {}

    def save_and_capture(model):  # each rank's parameters as its optimizer left them (FSDP: gathered)
        for k, v in unwrap(model).state_dict().items():
            captured[k] = fsdp_lib.plain_tensor(v.detach()).cpu().clone()
        orig_save(model)

    trainer._save = save_and_capture
    trainer.fit()
    r = dist_lib.rank()
    Path(exp, f"rank{r}.json").write_text(json.dumps(task.seen))
    save_file({k: v.contiguous() for k, v in captured.items()}, str(Path(exp, f"rank{r}_params.safetensors")))


if __name__ == "__main__":
    main()
