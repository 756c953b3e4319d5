"""The one training loop. ASR/TTS SFT, GRPO and DiffRO differ only in the ``Task`` they plug in.

A ``Task`` says what to train and how to compute a loss; the ``Trainer`` owns everything else: devices,
DDP, AdamW + schedule, accumulation, clipping, AMP, logging (train.log, tqdm, metrics.jsonl,
TensorBoard, curves.png), validation, checkpoints, exact resume and checkpoint averaging.

Contract of a Task (subclass ``Task``; duck-typed objects with the same methods work too):

* ``build_model() -> nn.Module``: called once per process after seeding with ``train.seed`` (the same
  on every rank, so every rank builds identical weights). The trainer moves it to the device.
* ``train_batches(epoch, rank, world_size) -> Iterable``: this rank's batches for ``epoch``. It must
  be a deterministic function of its arguments (shuffle with seed + epoch, never with the global RNG)
  and give every rank the same number of batches (``audiorl.data.sampler`` does both). On resume the
  trainer skips the batches already consumed in that epoch: through ``batches.skip(n)`` when the
  iterable has it (cheap), otherwise by iterating past them. Tensors in a batch (also inside
  dicts/lists/tuples, or any object with ``.to(device)``) are moved to the device by the trainer.
* ``train_step(model, batch, step) -> (loss, stats)``: a scalar loss tensor (mean over the batch) and
  a dict of floats to log. ``model`` may be the DDP wrapper: compute the loss through ``model(...)``
  (its forward is what synchronises gradients); reach other methods with ``unwrap(model)``. The
  trainer does backward, accumulation, clipping, AMP, optimizer and scheduler steps. ``step`` is the
  number of optimizer steps already taken. Every rank must return the same stat keys.
* optional attribute ``ddp_find_unused_parameters = True``: the loss leaves some trainable parameters without
  gradient (RL uses the LLM but not the SFT-only heads); DDP must then look for them (``train.`` option of the
  same name). A loss computed through other methods than ``forward`` goes through
  ``audiorl.train.distributed.forward_through(model, fn)`` so that DDP/FSDP see it.
* optional ``setup(model, device)``: called with the model on its device holding its INITIAL weights
  (``train.init_from`` applied, also when resuming; the checkpoint is loaded after): build an RL
  reference model here.
* optional ``valid(model) -> {"loss": ..., ...}``: called on every rank with the bare model in eval
  mode under ``torch.no_grad``; results are averaged over ranks. Return None to skip validation.
* optional ``extra_state() -> dict`` / ``load_extra_state(dict)``: task state saved with each
  checkpoint (tensors and plain containers only: it is loaded with ``weights_only=True``).
  ``extra_state`` is called on rank 0; ``load_extra_state`` on every rank.
* optional ``on_step_end(model, step, stats) -> bool | None``: after each optimizer step; return
  True to stop training cleanly (a checkpoint is written), e.g. when an RL run diverges.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import os
import random
import signal
import sys
import threading
import time
import warnings
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Iterable, Iterator

import torch
from torch import nn

from audiorl.config import save_config
from audiorl.log import DATEFMT, FORMAT, get_logger, setup_logging
from audiorl.train import checkpoint as ckpt_lib
from audiorl.train import distributed as dist_lib
from audiorl.train import fsdp as fsdp_lib
from audiorl.train.checkpoint import unwrap
from audiorl.train.config import TrainConfig
from audiorl.train.metrics import MetricsWriter
from audiorl.train.optim import build_optimizer, build_scheduler

logger = get_logger(__name__)
_END = object()

__all__ = ["Task", "Trainer", "Interrupted", "unwrap", "move_to_device", "seed_everything"]


class Interrupted(SystemExit):
    """Training was stopped by a signal after writing a checkpoint; rerun the same command to resume."""


class Task(ABC):
    """What is trained and how its loss is computed; see the module docstring for the contract."""

    @abstractmethod
    def build_model(self) -> nn.Module: ...

    @abstractmethod
    def train_batches(self, epoch: int, rank: int, world_size: int) -> Iterable[Any]: ...

    @abstractmethod
    def train_step(self, model: nn.Module, batch: Any, step: int) -> tuple[torch.Tensor, dict[str, float]]: ...

    def setup(self, model: nn.Module, device: torch.device) -> None:
        return None

    def valid(self, model: nn.Module) -> dict[str, float] | None:
        return None

    def extra_state(self) -> dict[str, Any]:
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        return None

    def on_step_end(self, model: nn.Module, step: int, stats: dict[str, float]) -> bool | None:
        return None


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    try:
        import numpy as np
        np.random.seed(seed % 2**32)
    except ImportError:  # pragma: no cover
        pass


def move_to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: move_to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # namedtuple
        return type(batch)(*(move_to_device(v, device) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to_device(v, device) for v in batch)
    if hasattr(batch, "to") and callable(batch.to):
        return batch.to(device)
    return batch


def _overridden(method: Any, base: Any) -> bool:
    """Whether a task's (bound) method exists and is not the no-op default of ``Task``."""
    return method is not None and getattr(method, "__func__", method) is not base


def _skip(batches: Iterable[Any], n: int) -> Iterator[Any]:
    if n <= 0:
        return iter(batches)
    if hasattr(batches, "skip"):
        return iter(batches.skip(n))
    it = iter(batches)
    skipped = sum(1 for _ in itertools.islice(it, n))
    if skipped < n:
        logger.warning("resume: epoch has only %d batches but %d were consumed before; did the data change?",
                       skipped, n)
    return it


def _enable_grad_checkpointing(model: nn.Module) -> None:
    """train.grad_checkpointing: switch it on in every LLM of the model (audiorl/models/llm.py)."""
    from audiorl.models.llm import LLM

    llms = [m for m in model.modules() if isinstance(m, LLM)]
    if not llms:
        raise ValueError(f"train.grad_checkpointing=true but the {type(model).__name__} model has no transformer LLM "
                         "(audiorl.models.llm.LLM) to checkpoint; set train.grad_checkpointing=false")
    for m in llms:
        m.grad_checkpointing = True


@contextlib.contextmanager
def _fsdp_no_sync(model: nn.Module) -> Iterator[None]:
    """FSDP's no_sync: accumulate unsharded-size gradients locally; the last micro-batch reduce-scatters them."""
    model.set_requires_gradient_sync(False)
    try:
        yield
    finally:
        model.set_requires_gradient_sync(True)


class _Window:
    """Sums of loss/grad-norm/stats since the last log line (tensors stay on device until logged)."""

    def __init__(self) -> None:
        self.sums: dict[str, Any] = {}
        self.micro = 0
        self.steps = 0
        self.t0 = time.monotonic()

    def add(self, values: dict[str, Any]) -> None:
        for k, v in values.items():
            v = v.detach().float() if isinstance(v, torch.Tensor) else float(v)
            self.sums[k] = self.sums[k] + v if k in self.sums else v

    def means(self) -> dict[str, float]:
        out = {}
        for k, v in self.sums.items():
            denom = self.steps if k == "grad_norm" else self.micro
            out[k] = float(v) / max(1, denom)
        return out


class Trainer:
    """Runs ``task`` under ``cfg`` in ``exp_dir``. ``config`` (the whole resolved stage config) is what
    each checkpoint's config.yaml records and what a resume is checked against; default: ``cfg``."""

    def __init__(self, task: Task, cfg: TrainConfig, exp_dir: str | os.PathLike, config: Any = None):
        self.task, self.cfg, self.exp_dir = task, cfg, Path(exp_dir)
        self.config = config if config is not None else cfg
        self.ckpt_root = self.exp_dir / "checkpoints"
        self.step = self.epoch = self.consumed = 0
        self.valid_history: list[list[float]] = []  # [step, valid loss]
        self.last_valid: dict[str, float] | None = None
        self.last_valid_step = self.last_saved_step = -1
        self.train_time_s = 0.0
        self.skipped_steps = 0
        self._stop_flag = False  # set by Task.on_step_end
        self._signal: int | None = None  # set by SIGTERM
        self._pending_rng: dict | None = None
        self.fsdp = False  # train.distributed=fsdp with WORLD_SIZE > 1 (set in _fit)

    # ------------------------------------------------------------------------------------------ set-up
    def _setup_device(self) -> None:
        cfg = self.cfg
        use_cuda = cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
        if cfg.device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("train.device=cuda but no CUDA device is visible; use device=auto or cpu")
        self._owns_pg = not dist_lib.is_distributed()
        self.rank, self.world = dist_lib.init_distributed(cfg.ddp_backend, use_cuda=use_cuda)
        self._owns_pg = self._owns_pg and dist_lib.is_distributed()
        self.main = self.rank == 0
        self.device = torch.device("cuda", dist_lib.local_rank()) if use_cuda else torch.device("cpu")
        if use_cuda:
            torch.cuda.set_device(self.device)  # so bare .cuda() calls in a Task land on this rank's GPU
        self.amp_dtype = None
        if cfg.amp != "none":
            if self.device.type != "cuda":
                logger.info("train.amp=%s ignored on CPU: training in float32", cfg.amp)
            elif cfg.amp == "bf16" and not torch.cuda.is_bf16_supported():
                raise RuntimeError("train.amp=bf16 but this GPU has no bf16 support; use amp=fp16")
            else:
                self.amp_dtype = torch.bfloat16 if cfg.amp == "bf16" else torch.float16
        # fp16 gradients underflow without loss scaling; bf16 has fp32's range and needs none.
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None

    def _setup_log_file(self) -> logging.Handler | None:
        if not self.main:
            return None
        self.exp_dir.mkdir(parents=True, exist_ok=True)
        path = self.exp_dir / "train.log"
        root = logging.getLogger()
        if not root.handlers:
            setup_logging(log_file=str(path))
            return None
        handler = logging.FileHandler(path, encoding="utf-8")
        handler.setFormatter(logging.Formatter(FORMAT, DATEFMT))
        root.addHandler(handler)
        return handler

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=self.amp_dtype)

    def _find_resume(self) -> Path | None:
        if self.main:
            ckpt_lib.cleanup_partial(self.ckpt_root)
        dist_lib.barrier()
        return ckpt_lib.resolve_resume(self.ckpt_root, self.cfg.resume)

    def _init_weights(self, model: nn.Module, resuming: bool) -> None:
        """Apply ``init_from``. Also done when resuming if the Task has a ``setup`` (it may copy the
        initial weights, e.g. an RL reference model); the checkpoint then overwrites the policy."""
        has_setup = _overridden(getattr(self.task, "setup", None), Task.setup)
        if self.cfg.init_from and (not resuming or has_setup):
            ckpt_lib.load_model_weights(model, self.cfg.init_from)
            logger.info("initialized weights from %s", self.cfg.init_from)

    def _restore(self, model: nn.Module, path: Path, weights: bool = True) -> None:
        """Restore model (unless ``weights`` is False: already loaded), optimizer, scheduler, trainer and task
        state from checkpoint ``path``."""
        loaded = ckpt_lib.load_checkpoint(path, model, self.optimizer, self.scheduler, self.config, weights=weights)
        st = loaded["trainer_state"]
        self.step, self.epoch, self.consumed = st["step"], st["epoch"], st["batches_consumed"]
        self.valid_history = [list(x) for x in st["valid_history"]]
        self.last_valid_step = st["last_valid_step"]
        self.last_valid = st.get("last_valid")
        self.last_saved_step = self.step
        self.train_time_s = st["train_time_s"]
        if self.scaler is not None and st.get("scaler"):
            self.scaler.load_state_dict(st["scaler"])
        if st["world_size"] != self.world:
            logger.warning("checkpoint was written with world_size=%d, now %d: the data order changes and "
                           "the resume is not exact", st["world_size"], self.world)
        rngs = st["rng"]
        self._pending_rng = rngs[self.rank] if self.rank < len(rngs) else rngs[0]
        if hasattr(self.task, "load_extra_state"):
            self.task.load_extra_state(loaded["extra_state"])
        logger.info("resumed from %s: step %d, epoch %d, %d batches into the epoch", path, self.step,
                    self.epoch, self.consumed)

    # ------------------------------------------------------------------------------------------- loop
    def _micro_batches(self) -> Iterator[Any]:
        """This rank's batches across epochs, tracking (epoch, consumed) for exact resume."""
        while not (self.cfg.max_epochs and self.epoch >= self.cfg.max_epochs):
            it = _skip(self.task.train_batches(self.epoch, self.rank, self.world), self.consumed)
            if self._pending_rng is not None:  # after skipping: skipped batches may have used the RNG
                ckpt_lib.set_rng_state(self._pending_rng)
                self._pending_rng = None
            got_any = self.consumed > 0
            while True:
                batch = next(it, _END)
                # All ranks end the epoch together even if one runs out early (else DDP would hang).
                if not dist_lib.all_true(batch is not _END):
                    break
                self.consumed += 1
                got_any = True
                yield batch
            if not got_any:
                raise RuntimeError(f"Task.train_batches(epoch={self.epoch}, rank={self.rank}) yielded no "
                                   "batches: check the training data and batch sizes")
            self.epoch += 1
            self.consumed = 0

    def _train_step(self, model: nn.Module, batches: Iterator[Any], window: _Window) -> bool:
        """One optimizer step over accum_grad micro-batches; False when the data ran out."""
        cfg, accum = self.cfg, self.cfg.accum_grad
        done: list[dict[str, Any]] = []
        for i in range(accum):
            batch = next(batches, _END)
            if batch is _END:
                break
            batch = move_to_device(batch, self.device)
            # Only the last micro-batch all-reduces gradients; the others accumulate locally.
            with self._no_sync(model, skip=self.world > 1 and i < accum - 1):
                with self._autocast():
                    loss, stats = self.task.train_step(model, batch, self.step)
                if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
                    raise TypeError(f"Task.train_step must return (scalar loss tensor, stats dict), got "
                                    f"{type(loss).__name__} {getattr(loss, 'shape', '')}")
                scaled = loss.float() / accum
                (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
            done.append({**stats, "loss": loss.detach()})
        if len(done) < accum:
            # The data ended mid-accumulation: drop the partial step (its gradients are unsynced in DDP).
            self.optimizer.zero_grad(set_to_none=True)
            return False
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        gnorm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip if cfg.grad_clip > 0 else math.inf)
        gnorm = fsdp_lib.plain_tensor(gnorm)  # FSDP: a replicated DTensor of the global norm
        lr = self.optimizer.param_groups[0]["lr"]
        if self.scaler is not None:
            self.scaler.step(self.optimizer)  # skips the update itself when gradients overflowed
            self.scaler.update()
        elif torch.isfinite(gnorm):
            self.optimizer.step()
        else:
            self.skipped_steps += 1
            logger.warning("step %d: gradient norm is %s, update skipped (%d so far)", self.step,
                           gnorm.item(), self.skipped_steps)
        with warnings.catch_warnings():  # LambdaLR warns when GradScaler skipped an overflow step
            warnings.simplefilter("ignore", UserWarning)
            self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self._last_done = done
        for d in done:
            window.add(d)
        window.micro += len(done)
        window.steps += 1
        window.add({"grad_norm": gnorm})
        window.sums["lr"] = window.sums.get("lr", 0.0) + lr * len(done)
        return True

    def _no_sync(self, model: nn.Module, skip: bool) -> contextlib.AbstractContextManager:
        if not skip:
            return contextlib.nullcontext()
        if self.fsdp:
            return _fsdp_no_sync(model)
        return model.no_sync()

    def _step_stats(self) -> dict[str, float]:
        """This step's loss and stats, averaged over its micro-batches (for on_step_end)."""
        out: dict[str, float] = {}
        for d in self._last_done:
            for k, v in d.items():
                out[k] = out.get(k, 0.0) + float(v) / len(self._last_done)
        return out

    def _log_train(self, window: _Window, pbar: Any) -> None:
        means = dist_lib.all_reduce_mean(window.means())
        rate = window.steps / max(1e-9, time.monotonic() - window.t0)
        if self.main:
            extra = " ".join(f"{k} {v:.4g}" for k, v in means.items() if k not in ("loss", "lr", "grad_norm"))
            logger.info("step %d epoch %d loss %.4f lr %.3e grad_norm %.3g %s| %.2f steps/s", self.step,
                        self.epoch, means["loss"], means["lr"], means["grad_norm"], extra, rate)
            self.metrics.write(self.step, "train", {**means, "epoch": self.epoch, "steps_per_s": rate,
                                                     "time_s": self._elapsed()})
            pbar.set_postfix(loss=f"{means['loss']:.4f}", lr=f"{means['lr']:.2e}")

    def _validate(self, model: nn.Module) -> None:
        valid = getattr(self.task, "valid", None)
        if valid is None:
            return
        bare = unwrap(model)
        bare.eval()
        try:
            with torch.no_grad(), self._autocast(), fsdp_lib.full_params(bare):
                res = valid(bare)
        finally:
            bare.train()
        if res is None:
            return
        if "loss" not in res:
            raise KeyError(f"Task.valid must return a dict with a 'loss' (got keys {sorted(res)})")
        res = dist_lib.all_reduce_mean(res)
        self.last_valid, self.last_valid_step = res, self.step
        self.valid_history.append([self.step, res["loss"]])
        if self.main:
            logger.info("step %d valid %s", self.step, " ".join(f"{k} {v:.4g}" for k, v in res.items()))
            self.metrics.write(self.step, "valid", res)

    def _elapsed(self) -> float:
        return self.train_time_s + time.monotonic() - self._t0

    def _save(self, model: nn.Module) -> None:
        rngs = dist_lib.all_gather_object(ckpt_lib.get_rng_state())
        model_state = optim_state = None
        if self.fsdp:  # gathered on every rank (collectives), written by rank 0: the same files as without FSDP
            model_state = fsdp_lib.full_model_state(model)
            optim_state = fsdp_lib.full_optimizer_state(model, self.optimizer)
        if self.main:
            state = {"step": self.step, "epoch": self.epoch, "batches_consumed": self.consumed, "rng": rngs,
                     "valid_history": self.valid_history, "last_valid_step": self.last_valid_step,
                     "last_valid": self.last_valid, "train_time_s": self._elapsed(), "world_size": self.world,
                     "distributed": "fsdp" if self.fsdp else "ddp",
                     "scaler": self.scaler.state_dict() if self.scaler is not None else None}
            vloss = self.last_valid["loss"] if self.last_valid and self.last_valid_step == self.step else None
            extra = self.task.extra_state() if hasattr(self.task, "extra_state") else {}
            path = ckpt_lib.save_checkpoint(self.ckpt_root, self.step, model, self.optimizer, self.scheduler,
                                            state, self.config, extra, meta={"valid_loss": vloss, "epoch": self.epoch},
                                            model_state=model_state, optimizer_state=optim_state)
            if extra and not getattr(self, "_extra_checked", False):
                self._check_extra_loadable(path / "extra_state.pt")
            protect = [p for _, _, p in ckpt_lib.best_checkpoints(self.ckpt_root, self.cfg.average_best_n)]
            ckpt_lib.prune_checkpoints(self.ckpt_root, self.cfg.keep_last_n, protect)
            logger.info("saved %s", path)
        dist_lib.barrier()
        self.last_saved_step = self.step

    def _check_extra_loadable(self, path: Path) -> None:
        """Fail at the first save, not at resume time, if the task state cannot be loaded safely."""
        try:
            torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise TypeError(f"Task.extra_state() returned objects that torch.load(weights_only=True) refuses "
                            f"({str(e).splitlines()[0]}): return only tensors, numbers, strings, and "
                            "lists/tuples/dicts of them (e.g. convert numpy arrays with torch.from_numpy)") from None
        self._extra_checked = True

    def _on_signal(self, signum: int, frame: Any) -> None:
        logger.warning("received signal %d: stopping after this step with a checkpoint", signum)
        self._signal = signum

    def _limit(self) -> str | None:
        cfg = self.cfg
        if cfg.max_steps and self.step >= cfg.max_steps:
            return "max_steps"
        over_time = bool(cfg.max_time_minutes) and self._elapsed() >= 60.0 * cfg.max_time_minutes
        if dist_lib.any_true(over_time or self._stop_flag or self._signal is not None):  # same step everywhere
            if self._signal is not None:
                return f"signal {self._signal}"
            return "max_time_minutes" if over_time else "stop requested by Task.on_step_end"
        return None

    def _plot_curves(self) -> None:
        """exp_dir/curves.png from metrics.jsonl: loss, lr and every logged stat, train and valid overlaid."""
        from audiorl.eval.plots import plot_metrics

        try:
            plot_metrics(str(self.exp_dir / "metrics.jsonl"), str(self.exp_dir / "curves.png"),
                         metrics=None, title=self.exp_dir.name)
        except ValueError as e:  # nothing logged yet (a run shorter than log_interval)
            logger.warning("no curves.png: %s", e)

    def fit(self) -> dict[str, Any]:
        """Train to the configured limit; return {"step", "epoch", "stop_reason", "valid", "checkpoint", "average"}.

        After SIGTERM (slurm/run.pl preemption) it checkpoints and raises ``Interrupted`` (a SystemExit
        with code 143), so a stage script never mistakes a preempted run for a finished one.
        """
        self._setup_device()
        handler = self._setup_log_file()
        old_sigterm = None
        if threading.current_thread() is threading.main_thread():
            old_sigterm = signal.signal(signal.SIGTERM, self._on_signal)
        clean = False
        try:
            out = self._fit()
            if self._signal is not None:
                raise Interrupted(128 + self._signal)
            clean = True
            return out
        finally:
            if old_sigterm is not None:
                signal.signal(signal.SIGTERM, old_sigterm)
            if handler is not None:
                logging.getLogger().removeHandler(handler)
                handler.close()
            if self._owns_pg:
                dist_lib.destroy(sync=clean)

    def _fit(self) -> dict[str, Any]:
        cfg = self.cfg
        seed_everything(cfg.seed)  # same seed on every rank: identical initial weights
        model = self.task.build_model().to(self.device)
        if cfg.grad_checkpointing:
            _enable_grad_checkpointing(model)
        path = self._find_resume()
        resumed = path is not None
        self._init_weights(model, resumed)
        getattr(self.task, "setup", lambda m, d: None)(model, self.device)  # sees the initial weights
        self.fsdp = self.world > 1 and cfg.distributed == "fsdp"
        if self.fsdp:
            if resumed:  # the full weights go into the whole model, before it is split across the ranks
                ckpt_lib.load_model_weights(model, path, self.config)
            model = fsdp_lib.shard(model)
        elif cfg.distributed == "fsdp":
            logger.info("train.distributed=fsdp: a single process, nothing to shard; training unsharded")
        # After sharding: fully_shard replaces the parameters the optimizer must hold.
        self.optimizer = build_optimizer(model, cfg.optim, fused=self.device.type == "cuda")
        self.scheduler = build_scheduler(self.optimizer, cfg.scheduler, cfg.max_steps)
        if resumed:
            self._restore(model, path, weights=not self.fsdp)
        else:
            seed_everything(cfg.seed + self.rank)  # per-rank RNG streams (dropout, sampling)
        if self.world > 1 and not self.fsdp:
            from torch.nn.parallel import DistributedDataParallel as DDP
            model = DDP(model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                        find_unused_parameters=cfg.ddp_find_unused_parameters
                        or bool(getattr(self.task, "ddp_find_unused_parameters", False)))
        n_params = sum(p.numel() for p in model.parameters())
        logger.info("model: %s parameters (%s trainable); device %s; world size %d (%s); amp %s%s",
                    f"{n_params:,}", f"{sum(p.numel() for p in model.parameters() if p.requires_grad):,}",
                    self.device, self.world, "fsdp" if self.fsdp else "ddp", cfg.amp if self.amp_dtype else "none",
                    "; gradient checkpointing" if cfg.grad_checkpointing else "")
        self.metrics: MetricsWriter | None = None
        if self.main:
            save_config(self.config, self.exp_dir / "config.yaml")
            self.metrics = MetricsWriter(self.exp_dir, cfg.tensorboard, self.step if resumed else None)
        from tqdm import tqdm
        from tqdm.contrib.logging import logging_redirect_tqdm
        # No bar when stderr is a log file (run.pl/slurm): carriage-return updates only garble it.
        show = self.main and cfg.progress_bar and sys.stderr.isatty()
        pbar = tqdm(total=cfg.max_steps or None, initial=self.step, disable=not show, dynamic_ncols=True,
                    mininterval=1.0, desc=self.exp_dir.name)
        self._t0 = time.monotonic()
        model.train()
        batches = self._micro_batches()
        window = _Window()
        with logging_redirect_tqdm():
            if cfg.valid_at_start and self.step == 0:
                self._validate(model)
            while True:
                reason = self._limit()
                if reason:
                    break
                if not self._train_step(model, batches, window):
                    reason = "end of data (max_epochs)"
                    break
                pbar.update(1)
                hook = getattr(self.task, "on_step_end", None)
                if _overridden(hook, Task.on_step_end):  # skip the per-step stats sync otherwise
                    if hook(model, self.step, self._step_stats()):
                        self._stop_flag = True
                if self.step % cfg.log_interval == 0:
                    self._log_train(window, pbar)
                    window = _Window()
                if cfg.valid_interval and self.step % cfg.valid_interval == 0:
                    self._validate(model)
                if self.step % cfg.save_interval == 0:
                    self._save(model)
            if window.steps:
                self._log_train(window, pbar)
            if self.step > 0 and self.last_valid_step != self.step:
                self._validate(model)
            if self.step > 0 and self.last_saved_step != self.step:
                self._save(model)
        pbar.close()
        logger.info("training stopped at step %d (epoch %d): %s; %.1f min of training in total", self.step,
                    self.epoch, reason, self._elapsed() / 60)
        average = None
        if self.main:
            self.metrics.close()
            if cfg.average_best_n:
                average = ckpt_lib.write_best_average(self.exp_dir, cfg.average_best_n)
            self._plot_curves()
        dist_lib.barrier()
        latest = ckpt_lib.find_latest(self.ckpt_root)
        return {"step": self.step, "epoch": self.epoch, "stop_reason": reason, "valid": self.last_valid,
                "checkpoint": str(latest) if latest else None, "average": str(average) if average else None}

