"""A decoder-only transformer of the Qwen2 architecture, in reading order: config, RoPE, attention, MLP, block, model.

Qwen2 = RMSNorm (pre-norm), rotary position embeddings, grouped-query attention with biases on q/k/v (none on o),
SwiGLU MLP, optionally tied input/output embeddings. Logits match ``transformers.Qwen2ForCausalLM`` on the same
weights (tests/parity/test_qwen2_parity.py); ``from_pretrained``/``save_pretrained`` speak the HF directory format.

Three ways to call it (``forward`` gives logits, ``hidden_states`` the final-normed states before the head):
* training, right-padded rows: ``llm(ids)`` or ``llm(inputs_embeds=x)``. Causal attention alone is exact for right
  padding (a real token never sees a later pad), so no mask is needed and SDPA can use its fused causal kernels.
* left-padded rows without a cache: pass ``attention_mask`` (B, T) (1 = token); positions default to
  ``cumsum(mask) - 1`` so every row starts at position 0.
* KV-cached decoding (gpt-fast style): ``setup_caches(max_batch, max_len)`` once, then calls with ``input_pos``
  (T,) = the cache slots written by these T tokens (shared by all rows), per-row RoPE ``positions`` (B, T) and an
  ``attention_mask`` (B, max_len) over cache slots (1 = slot holds a real token). See audiorl/models/sampling.py.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, replace

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint

from audiorl.config import option
from audiorl.log import get_logger

logger = get_logger(__name__)


@dataclass
class LLMConfig:
    """Qwen2-style decoder; defaults are the CPU recipe size. Named sizes: ``LLMConfig.from_preset(name)``."""

    vocab_size: int = option(0, "Embedding rows = text tokenizer ids + special ids. 0 = not set here: the owning "
                                "config fills it (asr.vocab_size); a model cannot be built with 0.")
    dim: int = option(256, "Hidden width (HF hidden_size).")
    n_layers: int = option(4, "Transformer blocks.")
    n_heads: int = option(4, "Query heads; head_dim = dim / n_heads (must be even for RoPE).")
    n_kv_heads: int = option(2, "Key/value heads (grouped-query attention): n_heads / n_kv_heads query heads share "
                                "one; equal to n_heads = plain multi-head attention.")
    intermediate_size: int = option(768, "SwiGLU hidden width (Qwen2 uses ~5.4 x dim).")
    rope_theta: float = option(10000.0, "RoPE base; Qwen2.5 uses 1e6 (longer contexts).")
    rms_norm_eps: float = option(1e-6, "RMSNorm epsilon.")
    max_seq_len: int = option(2048, "Longest sequence: size of the RoPE table and the largest KV cache "
                                    "(audio frames + prompt + transcript).")
    tie_embeddings: bool = option(True, "Output head shares the input embedding matrix (Qwen2.5-0.5B/1.5B do).")
    init_std: float = option(0.02, "Std of the normal init of linears and embeddings; residual output "
                                   "projections get init_std / sqrt(2 n_layers). N(0, 1) embeddings start at loss ~18.")

    def __post_init__(self):
        for name in ("vocab_size", "dim", "n_layers", "n_heads", "n_kv_heads", "intermediate_size", "max_seq_len"):
            if getattr(self, name) < (0 if name == "vocab_size" else 1):
                raise ValueError(f"llm.{name}={getattr(self, name)} must be positive")
        if self.dim % self.n_heads or self.n_heads % self.n_kv_heads or (self.dim // self.n_heads) % 2:
            raise ValueError(f"llm: need dim ({self.dim}) divisible by n_heads ({self.n_heads}), n_heads divisible "
                             f"by n_kv_heads ({self.n_kv_heads}) and an even head_dim (dim / n_heads)")

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "LLMConfig":
        if name not in PRESETS:
            raise ValueError(f"unknown LLM preset {name!r}; choose one of {sorted(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})


PRESETS: dict[str, dict] = {
    # unit tests: ~0.1M params
    "tiny": dict(vocab_size=256, dim=64, n_layers=2, n_heads=4, n_kv_heads=2, intermediate_size=128, max_seq_len=512),
    # the CPU recipe decoder (~3M params + embeddings; ~0.5 s/step for 16x200 tokens on one core)
    "asr-small": dict(dim=256, n_layers=4, n_heads=4, n_kv_heads=2, intermediate_size=768, max_seq_len=2048),
    "qwen2.5-0.5b": dict(vocab_size=151936, dim=896, n_layers=24, n_heads=14, n_kv_heads=2, intermediate_size=4864,
                         rope_theta=1e6, max_seq_len=32768, tie_embeddings=True),
    "qwen2.5-1.5b": dict(vocab_size=151936, dim=1536, n_layers=28, n_heads=12, n_kv_heads=2, intermediate_size=8960,
                         rope_theta=1e6, max_seq_len=32768, tie_embeddings=True),
}


def rope_table(c: LLMConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, signed sin (max_seq_len, head_dim) in the HF layout (frequencies repeated as [f_0..f_h-1, f_0..f_h-1]);
    the sin table's first half is negated so that apply_rope needs a roll instead of HF's rotate_half."""
    inv_freq = 1.0 / (c.rope_theta ** (torch.arange(0, c.head_dim, 2, dtype=torch.int64).float() / c.head_dim))
    freqs = torch.outer(torch.arange(c.max_seq_len, dtype=torch.int64).float(), inv_freq)  # (S, hd/2)
    emb = torch.cat([freqs, freqs], dim=-1)  # (S, hd)
    sin = emb.sin()
    sin[:, : c.head_dim // 2] *= -1
    return emb.cos(), sin


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin_signed: torch.Tensor) -> torch.Tensor:
    """x (B, nh, T, hd); cos/sin (B, 1, T, hd). HF's x * cos + cat(-x2, x1) * sin, bit for bit, in fewer ops:
    cat(-x2, x1) * sin == roll(x, h) * cat(-sin1, sin2)."""
    return x * cos + x.roll(x.shape[-1] // 2, dims=-1) * sin_signed


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.float32:  # one fused op; bitwise equal to the path below in fp32
            return F.rms_norm(x, self.weight.shape, self.weight, self.eps)
        # as Qwen2: normalise in fp32, cast back, then the gain
        return self.weight * F.rms_norm(x.float(), self.weight.shape, eps=self.eps).to(x.dtype)


class KVCache(nn.Module):
    """Preallocated keys/values (max_batch, n_kv_heads, max_len, head_dim), written at explicit slots."""

    def __init__(self, max_batch: int, n_kv_heads: int, max_len: int, head_dim: int, dtype, device):
        super().__init__()
        shape = (max_batch, n_kv_heads, max_len, head_dim)
        self.register_buffer("k", torch.zeros(shape, dtype=dtype, device=device), persistent=False)
        self.register_buffer("v", torch.zeros(shape, dtype=dtype, device=device), persistent=False)

    def update(self, input_pos: torch.Tensor, k: torch.Tensor, v: torch.Tensor):
        B = k.shape[0]  # k, v (B, nkv, T, hd); input_pos (T,)
        assert B <= self.k.shape[0], f"batch {B} exceeds the cache's max_batch {self.k.shape[0]}; call setup_caches"
        self.k[:B, :, input_pos] = k
        self.v[:B, :, input_pos] = v
        return self.k[:B], self.v[:B]  # (B, nkv, S, hd)


class Attention(nn.Module):
    def __init__(self, c: LLMConfig):
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = c.n_heads, c.n_kv_heads, c.head_dim
        self.wq = nn.Linear(c.dim, c.n_heads * c.head_dim, bias=True)
        self.wk = nn.Linear(c.dim, c.n_kv_heads * c.head_dim, bias=True)
        self.wv = nn.Linear(c.dim, c.n_kv_heads * c.head_dim, bias=True)
        self.wo = nn.Linear(c.n_heads * c.head_dim, c.dim, bias=False)
        self.kv_cache: KVCache | None = None

    def forward(self, x, cos, sin, mask, input_pos):
        B, T, _ = x.shape
        q = self.wq(x).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)  # (B, nh, T, hd)
        k = self.wk(x).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)  # (B, nkv, T, hd)
        v = self.wv(x).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)  # (B, nkv, T, hd)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if input_pos is not None:
            k, v = self.kv_cache.update(input_pos, k, v)  # (B, nkv, S, hd)
        gqa = self.n_kv_heads != self.n_heads
        if mask is None:  # training on right-padded rows: plain causal
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=gqa)  # (B, nh, T, hd)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=gqa)  # (B, nh, T, hd)
        return self.wo(y.transpose(1, 2).reshape(B, T, self.n_heads * self.head_dim))  # (B, T, D)


class MLP(nn.Module):
    def __init__(self, c: LLMConfig):
        super().__init__()
        self.w_gate = nn.Linear(c.dim, c.intermediate_size, bias=False)
        self.w_up = nn.Linear(c.dim, c.intermediate_size, bias=False)
        self.w_down = nn.Linear(c.intermediate_size, c.dim, bias=False)

    def forward(self, x):
        return self.w_down(F.silu(self.w_gate(x)) * self.w_up(x))  # (B, T, D)


class Block(nn.Module):
    def __init__(self, c: LLMConfig):
        super().__init__()
        self.attn_norm = RMSNorm(c.dim, c.rms_norm_eps)
        self.attn = Attention(c)
        self.mlp_norm = RMSNorm(c.dim, c.rms_norm_eps)
        self.mlp = MLP(c)

    def forward(self, x, cos, sin, mask, input_pos):
        x = x + self.attn(self.attn_norm(x), cos, sin, mask, input_pos)
        return x + self.mlp(self.mlp_norm(x))


class LLM(nn.Module):
    # Recompute each block in backward instead of storing its activations (train.grad_checkpointing sets it; a
    # training knob, not part of the model, so it lives outside LLMConfig and never reaches a checkpoint).
    grad_checkpointing: bool = False

    def __init__(self, config: LLMConfig):
        super().__init__()
        assert config.vocab_size > 0, "LLMConfig.vocab_size is 0: set it (text vocab + special tokens)"
        self.config = c = config
        self.tok_embeddings = nn.Embedding(c.vocab_size, c.dim)
        self.layers = nn.ModuleList(Block(c) for _ in range(c.n_layers))
        self.norm = RMSNorm(c.dim, c.rms_norm_eps)
        self.output = nn.Linear(c.dim, c.vocab_size, bias=False)
        if c.tie_embeddings:
            self.output.weight = self.tok_embeddings.weight
        cos, sin = rope_table(c)
        self.register_buffer("rope_cos", cos, persistent=False)  # (max_seq_len, hd)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2 habit: shrink residual-branch outputs by 1/sqrt(2 * n_layers)
            if name.endswith(("attn.wo.weight", "mlp.w_down.weight")):
                nn.init.normal_(p, mean=0.0, std=c.init_std / math.sqrt(2 * c.n_layers))

    def _init_weights(self, m: nn.Module):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=self.config.init_std)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    # ---- KV cache -------------------------------------------------------------------------------------------------
    def setup_caches(self, max_batch: int, max_len: int, dtype: torch.dtype | None = None, device=None) -> None:
        """Allocate (or keep, if already big enough, same dtype/device) one KVCache per layer."""
        assert max_len <= self.config.max_seq_len, f"cache length {max_len} > max_seq_len {self.config.max_seq_len}"
        dtype = dtype or self.output.weight.dtype
        device = torch.device(device) if device is not None else self.output.weight.device
        cur = self.layers[0].attn.kv_cache
        if cur is not None and cur.k.shape[0] >= max_batch and cur.k.shape[2] == max_len \
                and cur.k.dtype == dtype and cur.k.device == device:
            return
        c = self.config
        for layer in self.layers:
            layer.attn.kv_cache = KVCache(max_batch, c.n_kv_heads, max_len, c.head_dim, dtype, device)

    def clear_caches(self) -> None:
        for layer in self.layers:
            layer.attn.kv_cache = None

    def reorder_caches(self, index: torch.Tensor) -> None:
        """Row n of the cache becomes old row index[n] (beam selection; fanning one prefill out to G samples)."""
        n = index.shape[0]
        for layer in self.layers:
            kv = layer.attn.kv_cache
            assert kv is not None and n <= kv.k.shape[0], f"reorder to {n} rows needs setup_caches(max_batch>={n})"
            kv.k[:n] = kv.k.index_select(0, index)
            kv.v[:n] = kv.v.index_select(0, index)

    @property
    def cache_len(self) -> int:
        kv = self.layers[0].attn.kv_cache
        return 0 if kv is None else kv.k.shape[2]

    # ---- forward --------------------------------------------------------------------------------------------------
    def embed(self, idx: torch.Tensor) -> torch.Tensor:
        return self.tok_embeddings(idx)  # (B, T) -> (B, T, D)

    def hidden_states(self, idx=None, *, inputs_embeds=None, positions=None, attention_mask=None, input_pos=None):
        """Final-normed hidden states (B, T, D). Pass exactly one of ``idx`` (B, T) and ``inputs_embeds`` (B, T, D).

        positions (B, T): RoPE positions; input_pos (T,): cache slots to write (enables the KV cache);
        attention_mask (B, T) without a cache, (B, cache_len) with one: 1/True marks real tokens; or a complete
        boolean (B, 1, T, S) mask (True = may attend), which skips the causal/diagonal construction.
        """
        assert (idx is None) != (inputs_embeds is None), "pass exactly one of idx and inputs_embeds"
        x = self.embed(idx) if inputs_embeds is None else inputs_embeds  # (B, T, D)
        B, T, _ = x.shape
        if input_pos is None:
            q_slots = k_slots = torch.arange(T, device=x.device)  # (T,)
        else:
            assert self.layers[0].attn.kv_cache is not None, "input_pos given but no KV cache: call setup_caches"
            assert input_pos.shape == (T,), f"input_pos must be ({T},), got {tuple(input_pos.shape)}"
            q_slots, k_slots = input_pos, torch.arange(self.cache_len, device=x.device)  # (T,), (S,)
        if positions is None:
            if attention_mask is not None and input_pos is None:  # left padding: every row starts at 0
                positions = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
            else:
                positions = q_slots.expand(B, T)
        assert positions.shape == (B, T), f"positions must be ({B}, {T}), got {tuple(positions.shape)}"
        cos, sin = self.rope_cos[positions].unsqueeze(1), self.rope_sin[positions].unsqueeze(1)  # (B, 1, T, hd)
        if cos.dtype != x.dtype:
            cos, sin = cos.to(x.dtype), sin.to(x.dtype)
        mask = None
        if attention_mask is not None and attention_mask.dim() == 4:  # a ready (B, 1, T, S) bool mask, used as is
            mask = attention_mask
        elif input_pos is not None or attention_mask is not None:
            mask = k_slots[None, :] <= q_slots[:, None]  # (T, S) causal over slots
            if attention_mask is not None:
                assert attention_mask.shape == (B, k_slots.shape[0]), \
                    f"attention_mask must be ({B}, {k_slots.shape[0]}), got {tuple(attention_mask.shape)}"
                diag = k_slots[None, :] == q_slots[:, None]  # (T, S): a pad query still sees itself, so no NaN rows
                mask = (mask[None] & attention_mask.bool()[:, None, :]) | diag[None]  # (B, T, S)
                mask = mask[:, None]  # (B, 1, T, S)
        if mask is not None and mask.dtype == torch.bool:  # additive once here, not once per layer inside SDPA
            mask = torch.zeros(mask.shape, dtype=x.dtype, device=x.device).masked_fill_(~mask, float("-inf"))
        # Not with a KV cache: decoding keeps no activations for backward anyway.
        recompute = self.grad_checkpointing and torch.is_grad_enabled() and input_pos is None
        for layer in self.layers:
            if recompute:
                x = torch.utils.checkpoint.checkpoint(layer, x, cos, sin, mask, input_pos, use_reentrant=False)
            else:
                x = layer(x, cos, sin, mask, input_pos)
        return self.norm(x)  # (B, T, D)

    def forward(self, idx=None, *, inputs_embeds=None, positions=None, attention_mask=None, input_pos=None):
        """Logits (B, T, V); arguments as ``hidden_states``."""
        h = self.hidden_states(idx, inputs_embeds=inputs_embeds, positions=positions,
                               attention_mask=attention_mask, input_pos=input_pos)
        return self.output(h)  # (B, T, V)

    def num_parameters(self, exclude_embeddings: bool = False) -> int:
        n = sum(p.numel() for p in self.parameters())  # tied weights are counted once by parameters()
        return n - self.tok_embeddings.weight.numel() if exclude_embeddings else n

    # ---- Hugging Face format --------------------------------------------------------------------------------------
    @staticmethod
    def hf_key_map(c: LLMConfig) -> dict[str, str]:
        """HF Qwen2ForCausalLM tensor name -> our parameter name."""
        m = {"model.embed_tokens.weight": "tok_embeddings.weight", "model.norm.weight": "norm.weight"}
        if not c.tie_embeddings:
            m["lm_head.weight"] = "output.weight"
        for i in range(c.n_layers):
            hf, me = f"model.layers.{i}.", f"layers.{i}."
            m[hf + "input_layernorm.weight"] = me + "attn_norm.weight"
            m[hf + "post_attention_layernorm.weight"] = me + "mlp_norm.weight"
            for p in ("q", "k", "v"):
                m[hf + f"self_attn.{p}_proj.weight"] = me + f"attn.w{p}.weight"
                m[hf + f"self_attn.{p}_proj.bias"] = me + f"attn.w{p}.bias"
            m[hf + "self_attn.o_proj.weight"] = me + "attn.wo.weight"
            for hp, mp in (("gate", "w_gate"), ("up", "w_up"), ("down", "w_down")):
                m[hf + f"mlp.{hp}_proj.weight"] = me + f"mlp.{mp}.weight"
        return m

    @staticmethod
    def config_from_hf(hf: dict, max_seq_len: int | None = None) -> LLMConfig:
        """LLMConfig from a Qwen2 config.json dict; anything this model cannot reproduce is an error."""
        rope = hf.get("rope_parameters") or {}  # transformers 5.x; 4.x writes rope_theta + rope_scaling at top level
        hd = hf["hidden_size"] // hf["num_attention_heads"]
        unsupported = {
            "model_type": hf.get("model_type") != "qwen2", "hidden_act": hf.get("hidden_act", "silu") != "silu",
            "use_sliding_window": bool(hf.get("use_sliding_window", False)),
            "rope_parameters/rope_scaling": rope.get("rope_type", "default") != "default" or bool(hf.get("rope_scaling")),
            "head_dim": hf.get("head_dim") not in (None, hd)}
        bad = {k: hf.get(k.split("/")[0]) for k, v in unsupported.items() if v}
        if bad:
            raise ValueError(f"config.json: unsupported settings {bad}; this LLM implements Qwen2 with silu, full "
                             f"attention, default RoPE and head_dim = hidden_size / num_attention_heads ({hd})")
        return LLMConfig(
            vocab_size=hf["vocab_size"], dim=hf["hidden_size"], n_layers=hf["num_hidden_layers"],
            n_heads=hf["num_attention_heads"], n_kv_heads=hf.get("num_key_value_heads") or hf["num_attention_heads"],
            intermediate_size=hf["intermediate_size"], rope_theta=float(rope.get("rope_theta", hf.get("rope_theta", 1e4))),
            rms_norm_eps=hf.get("rms_norm_eps", 1e-6), max_seq_len=max_seq_len or hf.get("max_position_embeddings", 32768),
            tie_embeddings=hf.get("tie_word_embeddings", False), init_std=hf.get("initializer_range", 0.02))

    @classmethod
    def from_pretrained(cls, hf_dir: str, *, dtype: torch.dtype | None = torch.float32, device="cpu",
                        max_seq_len: int | None = None) -> "LLM":
        """Load a HF-format Qwen2 directory (config.json + model.safetensors or a sharded index), strictly.

        dtype None keeps the stored dtype; max_seq_len (default: max_position_embeddings) sizes the RoPE table.
        """
        from safetensors.torch import load_file

        cfg_path = os.path.join(hf_dir, "config.json")
        if not os.path.isfile(cfg_path):
            raise FileNotFoundError(f"{cfg_path} not found: from_pretrained needs a HF model directory")
        with open(cfg_path, encoding="utf-8") as f:
            config = cls.config_from_hf(json.load(f), max_seq_len)
        index = os.path.join(hf_dir, "model.safetensors.index.json")
        if os.path.isfile(index):
            with open(index, encoding="utf-8") as f:
                shards = sorted(set(json.load(f)["weight_map"].values()))
        else:
            shards = ["model.safetensors"]
        state: dict[str, torch.Tensor] = {}
        for shard in shards:
            path = os.path.join(hf_dir, shard)
            if not os.path.isfile(path):
                raise FileNotFoundError(f"{path} not found (.bin checkpoints are not supported: convert to safetensors)")
            state.update(load_file(path, device="cpu"))

        key_map = cls.hf_key_map(config)
        ignorable = {k for k in state if k.endswith("rotary_emb.inv_freq")}
        if config.tie_embeddings and "lm_head.weight" in state:
            ignorable.add("lm_head.weight")  # some tied checkpoints store a copy; the embedding is used
        missing = sorted(set(key_map) - set(state))
        unexpected = sorted(set(state) - set(key_map) - ignorable)
        if missing or unexpected:
            raise ValueError(f"{hf_dir}: {len(missing)} missing tensors {missing[:5]}, {len(unexpected)} unexpected "
                             f"{unexpected[:5]} (expected the {len(key_map)} tensors of a {config.n_layers}-layer Qwen2 "
                             f"as config.json describes): the weights and config.json are of different models; "
                             f"download or save the directory again")
        with torch.device("meta"):
            model = cls(config)
        model.to_empty(device=device)
        if config.tie_embeddings:
            model.output.weight = model.tok_embeddings.weight
        params = dict(model.named_parameters())
        assert len(params) == len(key_map), f"model has {len(params)} parameters but the key map {len(key_map)}"
        with torch.no_grad():
            for hf_name, name in key_map.items():
                src, dst = state[hf_name], params[name]
                if src.shape != dst.shape:
                    raise ValueError(f"{hf_dir}: {hf_name} has shape {tuple(src.shape)}, config.json implies "
                                     f"{tuple(dst.shape)}: the weights and config.json are of different models; "
                                     f"download or save the directory again")
                dst.copy_(src)
            cos, sin = rope_table(config)
            model.rope_cos, model.rope_sin = cos.to(device), sin.to(device)
        if dtype is None:
            dtype = state["model.embed_tokens.weight"].dtype
        logger.info("loaded %s: %.1fM parameters, %d tensors from %d file(s)", hf_dir,
                    model.num_parameters() / 1e6, len(key_map), len(shards))
        return model.to(dtype=dtype)

    def save_pretrained(self, out_dir: str, dtype: torch.dtype | None = None) -> None:
        """Write config.json + model.safetensors that ``transformers.Qwen2ForCausalLM.from_pretrained`` loads."""
        from safetensors.torch import save_file

        for name, m in self.named_modules():
            assert getattr(m, "merged", True), f"{name} has unmerged LoRA weights: call lora.merge_lora(model) first"
        c = self.config
        params = dict(self.named_parameters())
        dtype = dtype or self.output.weight.dtype
        tensors = {hf: params[me].detach().to("cpu", dtype).contiguous() for hf, me in self.hf_key_map(c).items()}
        os.makedirs(out_dir, exist_ok=True)
        save_file(tensors, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
        hf_cfg = {
            "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": c.vocab_size,
            "hidden_size": c.dim, "intermediate_size": c.intermediate_size, "num_hidden_layers": c.n_layers,
            "num_attention_heads": c.n_heads, "num_key_value_heads": c.n_kv_heads, "hidden_act": "silu",
            "max_position_embeddings": c.max_seq_len, "rms_norm_eps": c.rms_norm_eps,
            "rope_parameters": {"rope_type": "default", "rope_theta": c.rope_theta}, "rope_theta": c.rope_theta,
            "tie_word_embeddings": c.tie_embeddings, "use_sliding_window": False, "attention_dropout": 0.0,
            "initializer_range": c.init_std, "dtype": str(dtype).removeprefix("torch."),
        }
        with open(os.path.join(out_dir, "config.json"), "w", encoding="utf-8") as f:
            json.dump(hf_cfg, f, indent=2)
        logger.info("saved %s (%d tensors, %s)", out_dir, len(tensors), dtype)


def build_llm(config: LLMConfig | str, **overrides) -> LLM:
    """LLM from a config or a preset name (``build_llm("tiny", vocab_size=100)``)."""
    if isinstance(config, str):
        config = LLMConfig.from_preset(config, **overrides)
    elif overrides:
        config = replace(config, **overrides)
    return LLM(config)
