"""Start a task's LLM from a pretrained Hugging Face Qwen2 directory (``model.init_llm DIR``).

DIR is what ``save_pretrained`` / ``huggingface-cli download --local-dir`` write: config.json, model.safetensors (or
shards + model.safetensors.index.json) and tokenizer.json. A training stage with ``model.init_llm DIR``

1. reads text with DIR's tokenizer: ``data.token_model`` becomes DIR (``pretrained_tokenizer``), so the config.yaml the
   stage writes names it and every later stage (decoding, RL, scoring) loads the same tokenizer through
   ``audiorl.data.tokenizer.load_tokenizer``;
2. takes the architecture from DIR/config.json (``pretrained_llm_config``): ``model.llm`` is overwritten except
   ``max_seq_len``, which stays the stage's (it sizes the RoPE table and the length filters, not a weight);
3. loads the weights and resizes the vocabulary to the task's layout (``load_pretrained_llm``):
       rows [0, Vt)  the pretrained rows of the tokenizer's ids, Vt = the tokenizer's size. Rows past Vt (Qwen2.5
                     pads its 151665 ids to 151936 rows) belong to no token and are dropped.
       rows [Vt, V)  the task's own ids, appended: ASR eos + <|transcribe|>; TTS speech tokens + 3 specials.

New rows start at the mean of the pretrained rows plus a little noise (NEW_ROW_NOISE x each dimension's std), in the
input embedding and, when untied, in the output head. Why the mean: a new id's logit h . mean is about the average
pretrained logit, so a new token starts improbable and the pretrained text distribution is barely disturbed (Hewitt,
"Initializing new word embeddings", 2021; transformers' resize_token_embeddings(mean_resizing=True) does the same).
A random N(0, 0.02) row instead can have a norm far from the trained rows' and dominate or vanish. Why the noise: the
TTS LM adds thousands of speech rows that should start distinct (their softmax starts near uniform, loss ~ log Vs).

Frozen embeddings keep the new rows at their init: with ``model.lora`` or ``freeze_llm`` the ASR eos/<|transcribe|>
rows never train (a warning says so). The ASR encoder's CTC head predicts the same text ids, so with a 150k-token
tokenizer it is a 150k-class head: consider ``model.ctc_weight 0``.

Only the training stage loads DIR's weights (``Task.build_model``); rebuilding a trained model for decoding or RL
needs just config.yaml (which then holds the pretrained architecture and the filled vocabulary) and the tokenizer.
"""

from __future__ import annotations

import json
import os
from dataclasses import fields, replace

import torch
import torch.nn as nn

from audiorl.log import get_logger
from audiorl.models.llm import LLM, LLMConfig

logger = get_logger(__name__)

NEW_ROW_NOISE = 0.01  # std of a new row's noise, as a fraction of the pretrained rows' per-dimension std
HF_LAYOUT = "a Hugging Face model directory (config.json, model.safetensors, tokenizer.json)"


def read_hf_config(hf_dir: str) -> dict:
    """DIR/config.json as a dict; a missing file or a non-Qwen2 model is an error that names the file and the fix."""
    path = os.path.join(hf_dir, "config.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file; model.init_llm must be {HF_LAYOUT}, e.g. from "
                                f"`huggingface-cli download Qwen/Qwen2.5-0.5B --local-dir DIR` or save_pretrained(DIR)")
    with open(path, encoding="utf-8") as f:
        try:
            hf = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e})") from None
    arch = hf.get("architectures") or []
    if hf.get("model_type") != "qwen2" or (arch and "Qwen2ForCausalLM" not in arch):
        raise ValueError(f"{path}: model_type {hf.get('model_type')!r} with architectures {arch} is not Qwen2; "
                         f"audiorl's LLM implements the Qwen2 architecture (Qwen2, Qwen2.5 checkpoints): point "
                         f"model.init_llm at a Qwen2ForCausalLM model")
    return hf


def pretrained_llm_config(hf_dir: str, vocab_size: int, max_seq_len: int) -> LLMConfig:
    """The LLMConfig of DIR/config.json with the task's ``vocab_size`` and the stage's ``max_seq_len``."""
    path = os.path.join(hf_dir, "config.json")
    hf = read_hf_config(hf_dir)
    try:
        c = LLM.config_from_hf(hf, max_seq_len)
    except KeyError as e:
        raise ValueError(f"{path}: no {e.args[0]!r}; not a complete Qwen2 config.json") from None
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    return replace(c, vocab_size=vocab_size)


def pretrained_tokenizer(init_llm: str, token_model: str) -> str:
    """The text tokenizer a stage uses: ``init_llm`` (its tokenizer.json) when set, else ``token_model``."""
    if not init_llm:
        return token_model
    read_hf_config(init_llm)  # a wrong directory fails here, naming config.json, not later at its tokenizer
    if os.path.normpath(init_llm) == os.path.normpath(token_model):
        return token_model
    logger.info("text tokenizer: %s/tokenizer.json of model.init_llm (replaces data.token_model=%s)", init_llm,
                token_model)
    return init_llm


def new_rows(rows: torch.Tensor, n: int) -> torch.Tensor:
    """(n, D) rows for new ids: the mean of ``rows`` (V, D) + NEW_ROW_NOISE x its per-dimension std x N(0, 1)."""
    r = rows.detach().float()
    noise = torch.randn(n, r.shape[1], device=r.device) * r.std(0, correction=0) * NEW_ROW_NOISE
    return (r.mean(0) + noise).to(rows.dtype)


def resize_vocab(llm: LLM, n_keep: int, vocab_size: int) -> None:
    """In place: keep the first ``n_keep`` rows of the embedding (and of an untied head), append new rows up to
    ``vocab_size`` (``new_rows`` of the kept ones)."""
    c, w = llm.config, llm.tok_embeddings.weight
    grow = lambda m: torch.cat([m[:n_keep], new_rows(m[:n_keep], vocab_size - n_keep)])  # noqa: E731
    emb = nn.Embedding(vocab_size, c.dim, device=w.device, dtype=w.dtype)
    out = nn.Linear(c.dim, vocab_size, bias=False, device=w.device, dtype=w.dtype)
    with torch.no_grad():
        emb.weight.copy_(grow(w))
        if c.tie_embeddings:
            out.weight = emb.weight
        else:
            out.weight.copy_(grow(llm.output.weight))
    llm.tok_embeddings, llm.output = emb, out
    llm.config = replace(c, vocab_size=vocab_size)


def load_pretrained_llm(hf_dir: str, config: LLMConfig, n_text: int) -> LLM:
    """An LLM of ``config`` (from ``pretrained_llm_config``) with DIR's weights; rows [0, n_text) are the pretrained
    text rows, rows [n_text, config.vocab_size) new (see the module docstring). fp32 (the trainer's AMP casts)."""
    llm = LLM.from_pretrained(hf_dir, dtype=torch.float32, max_seq_len=config.max_seq_len)
    n_src = llm.config.vocab_size
    if n_text > n_src:
        logger.warning("%s: the tokenizer has %d ids but the embedding only %d rows: ids %d..%d start as new rows",
                       hf_dir, n_text, n_src, n_src, n_text - 1)
    resize_vocab(llm, min(n_text, n_src), config.vocab_size)
    diff = {f.name: (getattr(llm.config, f.name), getattr(config, f.name)) for f in fields(LLMConfig)
            if getattr(llm.config, f.name) != getattr(config, f.name)}
    if diff:
        raise ValueError(f"model.llm differs from {hf_dir}/config.json in {diff} (pretrained, configured): with "
                         f"model.init_llm the architecture comes from config.json; drop those model.llm settings")
    logger.info("LLM from %s: %.1fM parameters; %d pretrained text rows + %d new rows (mean init)", hf_dir,
                llm.num_parameters() / 1e6, min(n_text, n_src), config.vocab_size - min(n_text, n_src))
    return llm
