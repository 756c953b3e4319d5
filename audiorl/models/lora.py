"""LoRA: y = x W^T + b + (alpha / r) * dropout(x) A^T B^T on chosen nn.Linear layers (Hu et al., 2021).

``LoRALinear`` subclasses nn.Linear, so the base tensors keep their names (``wq.weight``) and checkpoint key maps
(LLM.save_pretrained) still apply; the adapters add ``wq.lora_a`` (r, in) and ``wq.lora_b`` (out, r). B starts at
zero, so a freshly wrapped model computes exactly what it did before.

    apply_lora(llm, LoRAConfig(rank=8, targets=("wq", "wv")))   # wrap, returns the wrapped module names
    mark_only_lora_trainable(llm)                              # base frozen, adapters trainable
    merge_lora(llm); llm.save_pretrained(d); unmerge_lora(llm)  # export plain Qwen2 weights
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from audiorl.config import option
from audiorl.log import get_logger

logger = get_logger(__name__)


@dataclass
class LoRAConfig:
    """Low-rank adapters on the LLM's linear layers."""

    rank: int = option(8, "Adapter rank r.")
    alpha: float = option(16.0, "Scale numerator: the update is (alpha / rank) B A, so changing rank at fixed alpha "
                                "keeps the update size comparable.")
    dropout: float = option(0.0, "Dropout on the adapter input only.")
    targets: tuple[str, ...] = option(("wq", "wk", "wv", "wo"), "Last name component of the nn.Linear layers to "
                                      "adapt: attention wq wk wv wo, MLP w_gate w_up w_down. Never a head tied to "
                                      "the embeddings: merging would change the embedding matrix too.")

    def __post_init__(self):
        self.targets = tuple(self.targets)
        if self.rank < 1 or not 0.0 <= self.dropout < 1.0 or not self.targets:
            raise ValueError(f"lora: need rank >= 1 (got {self.rank}), dropout in [0, 1) (got {self.dropout}) and "
                             f"at least one target layer name (got {self.targets}), e.g. targets: [wq, wv]")


class LoRALinear(nn.Linear):
    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float):
        super().__init__(base.in_features, base.out_features, bias=base.bias is not None, device="meta")
        self.weight, self.bias = base.weight, base.bias  # share the base tensors (the meta ones were placeholders)
        self.scale = alpha / rank
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features, device=base.weight.device, dtype=base.weight.dtype))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank, device=base.weight.device, dtype=base.weight.dtype))
        nn.init.kaiming_uniform_(self.lora_a, a=5 ** 0.5)  # as nn.Linear init; B = 0 makes the delta start at 0
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.merged = False

    def delta_weight(self) -> torch.Tensor:
        return self.scale * (self.lora_b @ self.lora_a)  # (out, in)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.linear(x, self.weight, self.bias)  # (..., out)
        if self.merged:
            return y
        return y + self.scale * F.linear(F.linear(self.dropout(x), self.lora_a), self.lora_b)  # (..., out)

    @torch.no_grad()
    def merge(self) -> None:
        if not self.merged:
            self.weight += self.delta_weight()
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        if self.merged:
            self.weight -= self.delta_weight()
            self.merged = False

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, rank={self.lora_a.shape[0]}, scale={self.scale:g}, merged={self.merged}"


def apply_lora(model: nn.Module, config: LoRAConfig) -> list[str]:
    """Replace every nn.Linear whose last name component is in config.targets; returns the replaced names."""
    targets = set(config.targets)
    found = [(name, m) for name, m in model.named_modules()
             if isinstance(m, nn.Linear) and not isinstance(m, LoRALinear) and name.rsplit(".", 1)[-1] in targets]
    assert found, f"no nn.Linear named any of {sorted(targets)} in {type(model).__name__}"
    for name, m in found:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, LoRALinear(m, config.rank, config.alpha, config.dropout))
    n = sum(p.numel() for n_, p in model.named_parameters() if "lora_" in n_)
    logger.info("LoRA rank %d on %d layers (%s): %.2fM adapter parameters", config.rank, len(found),
                ",".join(sorted(targets)), n / 1e6)
    return [name for name, _ in found]


def lora_modules(model: nn.Module) -> list[LoRALinear]:
    return [m for m in model.modules() if isinstance(m, LoRALinear)]


def mark_only_lora_trainable(model: nn.Module) -> int:
    """requires_grad only for lora_a/lora_b; returns the number of trainable parameters."""
    assert lora_modules(model), "model has no LoRA layers: call apply_lora first"
    for name, p in model.named_parameters():
        p.requires_grad_("lora_" in name)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def merge_lora(model: nn.Module) -> None:
    for m in lora_modules(model):
        m.merge()


def unmerge_lora(model: nn.Module) -> None:
    for m in lora_modules(model):
        m.unmerge()


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Only the adapter tensors (small checkpoints)."""
    return {k: v for k, v in model.state_dict().items() if "lora_" in k}
