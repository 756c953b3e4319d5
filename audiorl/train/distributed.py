"""torch.distributed helpers that are safe no-ops in a single process.

Launch with ``torchrun --standalone --nproc_per_node=N -m audiorl.bin.<x> ...``: torchrun sets RANK,
LOCAL_RANK, WORLD_SIZE and MASTER_ADDR/PORT, and ``init_distributed`` reads them (``env://``).
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist

from audiorl.log import get_logger

logger = get_logger(__name__)


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    return rank() == 0


def init_distributed(backend: str = "auto", use_cuda: bool | None = None) -> tuple[int, int]:
    """Join the process group when WORLD_SIZE > 1; return (rank, world_size). Idempotent."""
    if is_distributed():
        return dist.get_rank(), dist.get_world_size()
    ws = int(os.environ.get("WORLD_SIZE", "1"))
    if ws <= 1:
        return 0, 1
    if use_cuda is None:
        use_cuda = torch.cuda.is_available()
    if backend == "auto":
        backend = "nccl" if use_cuda else "gloo"
    if backend == "nccl":
        if not use_cuda:
            raise RuntimeError("ddp_backend=nccl needs CUDA; use ddp_backend=gloo (or auto) on CPU")
        torch.cuda.set_device(local_rank())  # before init so NCCL binds each rank to its own GPU
    dist.init_process_group(backend=backend, init_method="env://")
    logger.info("joined process group: backend=%s rank=%d world_size=%d", backend, dist.get_rank(), ws)
    return dist.get_rank(), dist.get_world_size()


def destroy(sync: bool = False) -> None:
    """Leave the process group; sync=True (a clean finish) waits for every rank first: a rank that tears gloo down
    while its peer still has a collective in flight aborts the peer ("terminate called without an active
    exception", seen on a loaded 2-core machine). Not after an error: the peer may never arrive."""
    if is_distributed():
        if sync:
            dist.barrier()
        dist.destroy_process_group()


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def _comm_device() -> torch.device:
    # NCCL only reduces CUDA tensors; gloo only CPU ones.
    if is_distributed() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_mean(stats: dict[str, float]) -> dict[str, float]:
    """Average a dict of scalars over ranks. Every rank must pass the same keys (sorted here)."""
    if not is_distributed():
        return {k: float(v) for k, v in stats.items()}
    keys = sorted(stats)
    t = torch.tensor([float(stats[k]) for k in keys] + [float(len(keys))], dtype=torch.float64,
                     device=_comm_device())
    dist.all_reduce(t)
    ws = dist.get_world_size()
    if round(t[-1].item() / ws) != len(keys):
        raise RuntimeError(f"all_reduce_mean: ranks passed different stat keys (this rank: {keys}); "
                           "every rank must report the same stats")
    return {k: t[i].item() / ws for i, k in enumerate(keys)}


def all_true(flag: bool) -> bool:
    """True when ``flag`` holds on every rank (e.g. 'I still have a batch')."""
    if not is_distributed():
        return bool(flag)
    t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=_comm_device())
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item())


def any_true(flag: bool) -> bool:
    """True when ``flag`` holds on some rank (e.g. 'my time budget is spent')."""
    return not all_true(not flag)


def all_gather_object(obj: Any) -> list[Any]:
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def forward_through(model: Any, fn: Any) -> Any:
    """``fn(bare_module)`` run as the forward of ``model``'s DDP (or FSDP) wrapper; plain ``fn(model)`` otherwise.

    DDP synchronises gradients only for graphs built inside its ``forward`` (and FSDP gathers the root's
    parameters in its forward hooks). A loss computed through other methods of the module (GRPO: encode the
    prompts, teacher-force the completions, an extra DiffRO term) is routed through ``model()`` here by giving
    the bare module a one-shot ``forward``, so the wrapper's hooks see the whole graph and its output.
    """
    from torch.nn.parallel import DistributedDataParallel

    from audiorl.train.fsdp import is_fsdp

    if isinstance(model, DistributedDataParallel):
        bare = model.module
    elif is_fsdp(model):
        bare = model
    else:
        return fn(model)

    def once(*args: Any, **kwargs: Any) -> Any:
        del bare.forward  # the class's forward again, before fn runs (fn may call the module itself)
        return fn(bare)

    bare.forward = once
    try:
        return model()
    finally:
        bare.__dict__.pop("forward", None)
