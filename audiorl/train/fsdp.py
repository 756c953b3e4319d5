"""FSDP (torch's FSDP2, ``torch.distributed.fsdp.fully_shard``) for models that do not fit one GPU.

Used by the Trainer when ``train.distributed=fsdp`` and WORLD_SIZE > 1 (works with gloo on CPU too). Each
transformer block (``audiorl.models.llm.Block``) is its own shard unit and the rest of the model (embeddings,
encoder, adaptor, heads) the root unit, so tied input/output embeddings stay in one unit. Checkpoints stay
full: the weights and the optimizer state are gathered to rank 0 (CPU) and written in the DDP/single-process
format (model.safetensors with the same names; optimizer.pt keyed by parameter name), so an FSDP checkpoint
loads in one process and decodes like any other.

Code that calls a sharded model outside its ``forward`` (validation decoding, GRPO rollouts) must do so inside
``full_params(model)``: every unit is gathered once, and forwards then run no collectives, so ranks may decode
different numbers of steps (sampling stops when a rank's rows end) without hanging.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch
from torch import nn

__all__ = ["shard", "is_fsdp", "full_params", "plain_tensor", "full_model_state", "full_optimizer_state",
           "load_optimizer_state"]


def is_fsdp(model: nn.Module) -> bool:
    from torch.distributed.fsdp import FSDPModule
    return isinstance(model, FSDPModule)


def _units(model: nn.Module) -> list[nn.Module]:
    from audiorl.models.llm import Block
    return [m for m in model.modules() if isinstance(m, Block)]


def shard(model: nn.Module) -> nn.Module:
    """Shard ``model`` in place (its transformer blocks, then the root) over the default process group."""
    from torch.distributed.fsdp import fully_shard

    for m in _units(model):
        fully_shard(m)
    fully_shard(model)
    # FSDP2 learns which unit is the root at the first forward; rollouts and validation call the blocks
    # outside the root's forward, so settle it now (else: "requires running forward through the root first").
    model._get_fsdp_state()._lazy_init()
    return model


@contextlib.contextmanager
def full_params(model: nn.Module) -> Iterator[None]:
    """Hold every unit's full parameters (no re-sharding after forwards) for the duration; a no-op unless FSDP."""
    from torch.distributed.fsdp import FSDPModule

    mods = [m for m in model.modules() if isinstance(m, FSDPModule)]
    if not mods:
        yield
        return
    for m in mods:
        m.set_reshard_after_forward(False)
        m.unshard()
    try:
        yield
    finally:
        for m in mods:
            m.reshard()
            m.set_reshard_after_forward(True)


def plain_tensor(t: Any) -> Any:
    """A DTensor's full value as a plain tensor (e.g. the clipped gradient norm); anything else unchanged."""
    from torch.distributed.tensor import DTensor
    return t.full_tensor() if isinstance(t, DTensor) else t


def _options():
    from torch.distributed.checkpoint.state_dict import StateDictOptions
    return StateDictOptions(full_state_dict=True, cpu_offload=True)


def full_model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The unsharded weights on rank 0 (other ranks get {}). Collective: call on every rank."""
    from torch.distributed.checkpoint.state_dict import get_model_state_dict

    sd = get_model_state_dict(model, options=_options())
    # Some come back as views into one gathered buffer; safetensors refuses to write a tensor that does not
    # cover its whole storage, so give those their own.
    sd = {k: v if v.untyped_storage().nbytes() == v.numel() * v.element_size() else v.clone() for k, v in sd.items()}
    # Tied parameters come back as separate copies: point them at one tensor again, so the safetensors
    # writer stores them once under the name a single-process save would use.
    groups: dict[int, list[str]] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        groups.setdefault(id(p), []).append(name)
    for names in groups.values():
        have = [n for n in names if n in sd]
        for n in have[1:]:
            sd[n] = sd[have[0]]
    return sd


def full_optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The unsharded optimizer state, keyed by parameter name, on rank 0. Collective."""
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict
    return get_optimizer_state_dict(model, optimizer, options=_options())


def load_optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Load a name-keyed full optimizer state (``full_optimizer_state``) into a sharded or plain model's optimizer."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict
    set_optimizer_state_dict(model, optimizer, state, options=StateDictOptions(full_state_dict=True))
