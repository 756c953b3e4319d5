"""``TrainConfig``: the knobs of the one trainer, shared by ASR/TTS SFT, GRPO and DiffRO.

A stage's top-level config nests this as its ``train`` section (``--train.optim.lr 1e-3``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from audiorl.config import option


@dataclass
class OptimConfig:
    """AdamW optimizer."""

    lr: float = option(1e-3, "Peak learning rate (reached at the end of warm-up). RL fine-tuning wants "
                             "far less than SFT (e.g. 1e-5..5e-5 for GRPO from an SFT model).")
    betas: tuple[float, float] = option((0.9, 0.98), "AdamW (beta1, beta2). beta2 0.98 is steadier than "
                                                     "0.999 for transformers trained from scratch.")
    eps: float = option(1e-8, "AdamW epsilon; raise to 1e-6 if fp16 training shows NaN updates.")
    weight_decay: float = option(0.01, "Decoupled weight decay, applied to matrices only (tensors with "
                                       ">= 2 dims); biases, norms and gains are never decayed.")

    def __post_init__(self) -> None:
        if not self.lr > 0:
            raise ValueError(f"optim.lr={self.lr} must be > 0 (typical: 1e-3 for SFT, 1e-5 for RL)")
        if not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"optim.betas={list(self.betas)} must both be in [0, 1), e.g. [0.9, 0.98]")
        if self.weight_decay < 0 or self.eps <= 0:
            raise ValueError(f"optim.weight_decay={self.weight_decay} must be >= 0 and optim.eps={self.eps} > 0")


@dataclass
class SchedulerConfig:
    """Learning-rate schedule: linear warm-up, then a decay rule."""

    warmup_steps: int = option(500, "Optimizer steps of linear warm-up from 0 to optim.lr. 0 disables "
                                    "warm-up (not allowed with decay=noam).")
    decay: Literal["constant", "linear", "cosine", "noam"] = option(
        "cosine", "After warm-up: 'constant' keeps lr; 'linear'/'cosine' decay to min_lr_ratio*lr at "
                  "train.max_steps (needs max_steps > 0); 'noam' decays as 1/sqrt(step) (ESPnet WarmupLR, "
                  "peak = lr at warmup_steps), good when the run length is not known.")
    min_lr_ratio: float = option(0.0, "Floor of linear/cosine decay as a fraction of optim.lr.")

    def __post_init__(self) -> None:
        if self.warmup_steps < 0:
            raise ValueError(f"scheduler.warmup_steps={self.warmup_steps} must be >= 0")
        if self.decay == "noam" and self.warmup_steps == 0:
            raise ValueError("scheduler.decay=noam needs scheduler.warmup_steps > 0 (e.g. 25000 for ESPnet "
                             "recipes, a few hundred for toy runs)")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"scheduler.min_lr_ratio={self.min_lr_ratio} must be in [0, 1]")


@dataclass
class TrainConfig:
    """The training loop: stopping, optimization, precision, logging, checkpoints, devices."""

    # --- length and reproducibility -------------------------------------------------------------------
    seed: int = option(0, "Seed for python/numpy/torch. Model init uses it on every rank; per-rank RNG "
                          "(dropout, sampling) uses seed + rank.")
    max_steps: int = option(0, "Stop after this many optimizer steps; 0 = no step limit (then max_epochs "
                               "or max_time_minutes must be set). The horizon of linear/cosine decay.")
    max_epochs: int = option(0, "Stop after this many passes over train_batches; 0 = no epoch limit.")
    max_time_minutes: float = option(0.0, "Wall-clock budget in minutes, summed over resumed runs; when "
                                          "spent, training stops cleanly with a checkpoint (the 'train for "
                                          "30 min' recipes). 0 = no limit. Rerunning a finished run is a no-op.")
    # --- optimization -----------------------------------------------------------------------------------
    optim: OptimConfig = option(default_factory=OptimConfig, help="AdamW settings.")
    scheduler: SchedulerConfig = option(default_factory=SchedulerConfig, help="LR schedule.")
    grad_clip: float = option(1.0, "Clip the global gradient L2 norm to this; 0 disables clipping (the norm "
                                   "is still logged). Steps with a non-finite norm are skipped.")
    accum_grad: int = option(1, "Micro-batches accumulated per optimizer step (effective batch = batch x "
                                "accum_grad x world size).")
    # --- batching (read by the Task when it builds train_batches) --------------------------------------
    batch_size: int = option(16, "Items per batch when max_frames == 0 (per rank).")
    max_frames: int = option(0, "Length-bucketed batching: padded frames per batch (longest item x items, "
                                "per rank); 0 = use batch_size. See audiorl.data.sampler.")
    num_workers: int = option(0, "DataLoader worker processes for tasks that use one; 0 loads in the "
                                 "training process (best on 2-core machines).")
    # --- precision and devices -----------------------------------------------------------------------------
    amp: Literal["none", "bf16", "fp16"] = option(
        "none", "Mixed precision on CUDA: bf16 autocast, or fp16 autocast with a GradScaler. Ignored (with a "
                "log line) on CPU.")
    device: Literal["auto", "cpu", "cuda"] = option("auto", "'auto' = CUDA when available, else CPU. Under "
                                                            "torchrun each rank uses cuda:LOCAL_RANK.")
    ddp_backend: Literal["auto", "gloo", "nccl"] = option("auto", "torch.distributed backend when WORLD_SIZE > 1; "
                                                                 "'auto' = nccl on CUDA, gloo on CPU.")
    ddp_find_unused_parameters: bool = option(False, "Pass find_unused_parameters to DDP; set true when a "
                                                     "train_step leaves some parameters without gradient.")
    distributed: Literal["ddp", "fsdp"] = option(
        "ddp", "How WORLD_SIZE > 1 processes share the model: 'ddp' = a full copy per rank, gradients all-reduced; "
               "'fsdp' = torch FSDP2 (fully_shard): parameters, gradients and optimizer state sharded over the ranks "
               "(each transformer block one unit), for models whose training state does not fit one GPU. "
               "Checkpoints are full weights either way (gathered on rank 0) and load in one process. Ignored in a "
               "single process. See audiorl/train/fsdp.py.")
    grad_checkpointing: bool = option(False, "Recompute each transformer block's activations in the backward pass "
                                             "(torch.utils.checkpoint) instead of storing them: ~1/3 more compute for "
                                             "far less activation memory (long utterances, big LLMs). Same loss and "
                                             "gradients; no effect on decoding.")
    # --- logging ----------------------------------------------------------------------------------------
    log_interval: int = option(50, "Optimizer steps between train log lines / metrics.jsonl / TensorBoard "
                                   "events (stats are averaged over the interval and across ranks).")
    valid_interval: int = option(500, "Steps between validations (Task.valid); 0 = validate only at the end.")
    valid_at_start: bool = option(False, "Also validate the initial weights at step 0 (not when resuming): the "
                                         "baseline an RL run's dev curve and best checkpoint are judged against.")
    tensorboard: bool = option(True, "Write TensorBoard scalars to <exp_dir>/tb/.")
    progress_bar: bool = option(True, "Show a tqdm progress bar on rank 0 (stderr).")
    # --- checkpoints ---------------------------------------------------------------------------------------
    save_interval: int = option(500, "Steps between checkpoints (<exp_dir>/checkpoints/step_N/); one is also "
                                     "written at the end and when stopping early.")
    keep_last_n: int = option(3, "Keep the newest N checkpoints (plus the average_best_n best by valid "
                                 "loss); 0 keeps all.")
    average_best_n: int = option(0, "At the end, average the N checkpoints with the lowest valid loss into "
                                    "<exp_dir>/valid.loss.ave<N>_best.safetensors; 0 disables. Needs "
                                    "save_interval to be a multiple of valid_interval.")
    resume: str = option("auto", "'auto': continue from the latest checkpoint if there is one; 'latest': the "
                                 "same but a missing checkpoint is an error; 'never': start fresh (error if "
                                 "checkpoints exist); or a path to a checkpoint directory (must exist).")
    init_from: Optional[str] = option(None, "Initialize model weights (strictly) from a checkpoint dir or a "
                                            ".safetensors file when starting fresh, e.g. the SFT model for RL. "
                                            "Ignored when resuming.")

    def __post_init__(self) -> None:
        if self.max_steps <= 0 and self.max_epochs <= 0 and self.max_time_minutes <= 0:
            raise ValueError("train: no stopping rule: set train.max_steps, train.max_epochs or "
                             "train.max_time_minutes to a positive value")
        if min(self.max_steps, self.max_epochs, self.max_time_minutes) < 0:
            raise ValueError(f"train.max_steps={self.max_steps}, max_epochs={self.max_epochs} and "
                             f"max_time_minutes={self.max_time_minutes} must be >= 0 (0 = no limit)")
        if self.scheduler.decay in ("linear", "cosine") and self.max_steps <= 0:
            raise ValueError(f"train.scheduler.decay={self.scheduler.decay} decays to the end of training and "
                             "needs train.max_steps > 0; set max_steps or use decay=constant or noam")
        if self.accum_grad < 1:
            raise ValueError(f"train.accum_grad={self.accum_grad} must be >= 1")
        if self.log_interval < 1 or self.save_interval < 1 or self.valid_interval < 0:
            raise ValueError(f"train.log_interval={self.log_interval} and save_interval={self.save_interval} "
                             f"must be >= 1, valid_interval={self.valid_interval} >= 0")
        if self.keep_last_n < 0 or self.average_best_n < 0:
            raise ValueError(f"train.keep_last_n={self.keep_last_n} and average_best_n={self.average_best_n} "
                             "must be >= 0")
        if self.average_best_n > 0 and self.valid_interval > 0 and self.save_interval % self.valid_interval:
            raise ValueError(f"train.average_best_n={self.average_best_n} picks checkpoints by valid loss, so "
                             f"train.save_interval={self.save_interval} must be a multiple of "
                             f"train.valid_interval={self.valid_interval} (e.g. set both to "
                             f"{self.save_interval})")
        if self.grad_clip < 0 or self.batch_size < 1 or self.max_frames < 0 or self.num_workers < 0:
            raise ValueError(f"train.grad_clip={self.grad_clip} >= 0, batch_size={self.batch_size} >= 1, "
                             f"max_frames={self.max_frames} >= 0, num_workers={self.num_workers} >= 0 required")
        if not self.resume:
            raise ValueError("train.resume is empty: use auto, latest, never or a checkpoint directory")
