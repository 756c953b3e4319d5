"""Export a trained ASR model or TTS LM to a Hugging Face-format directory, and rebuild the audiorl model from one.

    python -m audiorl.bin.export_hf --exp_dir exp/asr_train_asr --out_dir exported/asr [--checkpoint W] [--dtype bf16]

Any experiment whose config.yaml has an ASR model section (SFT, GRPO) or a TTS LM section (SFT, RL) exports; RL
experiments name their tokenizer through ``data.sft_exp``. OUT_DIR holds:

    config.json, model.safetensors   the LLM as transformers' Qwen2ForCausalLM (``AutoModelForCausalLM`` loads it),
                                     LoRA merged; its vocabulary is the task's layout: text ids [0, Vt), then the
                                     task's ids (ASR eos, <|transcribe|>; TTS speech tokens, eos, sos, <tts>)
    tokenizer.json (+ tokenizer_config.json, vocab.json, merges.txt, ... as the source directory had them)
                                     when the text tokenizer is a Hugging Face one (``model.init_llm``)
    text_tokenizer.model             when it is sentencepiece (the recipes' own BPE): transformers has no Qwen2
                                     tokenizer for it, so ``AutoTokenizer`` cannot load OUT_DIR; text ids are this
                                     model's pieces (``sentencepiece.SentencePieceProcessor(model_file=...)``)
    audiorl_model.safetensors        every weight outside the LLM: ASR encoder (+ CTC head) and adaptor; TTS spk_proj
    audiorl_config.yaml              kind (asr | tts_lm), the model config with its token ids, the tokenizer and CMVN
                                     file names, and the experiment + weights it came from
    cmvn.<ext>                       ASR with global CMVN (``data.cmvn``): the stats to normalise the features with

``load_hf_export(OUT_DIR)`` rebuilds the full audiorl model and its token layout from these files alone. Feature
extraction settings (the recipe's conf/fbank.conf) are not part of the export.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, replace

import torch
import yaml
from safetensors.torch import load_file, save_file

from audiorl.config import dump_yaml, from_dict, to_dict
from audiorl.data.hf_tokenizer import HFTokenizer
from audiorl.data.tokenizer import load_tokenizer
from audiorl.log import get_logger
from audiorl.models.asr import ASRModel, ASRModelConfig
from audiorl.models.llm import LLM
from audiorl.models.lora import merge_lora
from audiorl.models.tts_lm import TTSLM, TTSLMConfig
from audiorl.train import checkpoint as ckpt_lib

logger = get_logger(__name__)

EXPORT_CONFIG = "audiorl_config.yaml"
EXPORT_WEIGHTS = "audiorl_model.safetensors"
SPM_NAME = "text_tokenizer.model"
# tokenizer.json, then what transformers' tokenizers may read next to it (copied when the source directory has them)
HF_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                      "vocab.json", "merges.txt")
OWN_FILES = ("config.json", "model.safetensors", "model.safetensors.index.json", SPM_NAME, EXPORT_WEIGHTS,
             EXPORT_CONFIG)
KINDS = {"asr": (ASRModelConfig, ASRModel), "tts_lm": (TTSLMConfig, TTSLM)}


# ----------------------------------------------------------------------------------------------- the experiment
def _read_yaml(path: str, fix: str) -> dict:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file; {fix}")
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f) or {}


def _kind(model: dict, where: str) -> str:
    if "encoder" in model and "adaptor" in model:
        return "asr"
    if "speech_vocab_size" in model:
        return "tts_lm"
    raise ValueError(f"{where}: its model section is neither the LLM-based ASR model nor the TTS LM; export_hf "
                     f"exports those two (other models have no LLM to export)")


def _data_path(exp_dir: str, key: str) -> str:
    """``data.<key>`` of the experiment's config, following ``data.sft_exp`` (RL stages take it from their SFT)."""
    seen = []
    while exp_dir not in seen:
        seen.append(exp_dir)
        data = _read_yaml(os.path.join(exp_dir, "config.yaml"), "is it a trained experiment dir?").get("data") or {}
        if key in data:
            return data[key] or ""
        if not data.get("sft_exp"):
            break
        exp_dir = data["sft_exp"]
    return ""


def export_experiment(exp_dir: str, out_dir: str, checkpoint: str = "", dtype: torch.dtype | None = None) -> dict:
    """Write ``out_dir`` (see the module docstring) from ``exp_dir``'s config.yaml and final weights (or
    ``checkpoint``); ``dtype`` of the LLM tensors (default: as trained). Returns the audiorl_config.yaml contents."""
    where = os.path.join(exp_dir, "config.yaml")
    raw = _read_yaml(where, "is it a trained experiment dir (run its training stage first)?")
    kind = _kind(raw.get("model") or {}, where)
    cfg_cls, model_cls = KINDS[kind]
    model_cfg = from_dict(cfg_cls, raw["model"], f"{where} (model)")
    weights = checkpoint or str(ckpt_lib.final_weights(exp_dir) or "")
    if not weights:
        raise FileNotFoundError(f"{exp_dir}: no averaged model and no checkpoint to export; finish its training stage "
                                f"or pass --checkpoint")
    model = model_cls(model_cfg)
    ckpt_lib.load_model_weights(model, weights)
    merge_lora(model.llm)  # plain Qwen2 weights: the adapters folded into the base matrices

    token_model = _data_path(exp_dir, "token_model")
    tok = load_tokenizer(token_model) if token_model else None
    Vt = model_cfg.text_vocab_size
    if tok is None or tok.vocab_size != Vt:
        raise ValueError(f"{exp_dir}: its text tokenizer data.token_model={token_model!r} "
                         f"{'is not set' if tok is None else f'has {tok.vocab_size} ids'} but the model was trained "
                         f"with text_vocab_size={Vt}: restore the tokenizer the experiment was trained with")

    if isinstance(tok, HFTokenizer) and os.path.realpath(os.path.dirname(tok.model_path)) == os.path.realpath(out_dir):
        raise ValueError(f"--out_dir {out_dir} is the directory of the experiment's tokenizer (its model.init_llm): "
                         f"exporting there would overwrite the pretrained model; choose another directory")
    os.makedirs(out_dir, exist_ok=True)
    for name in (*OWN_FILES, *HF_TOKENIZER_FILES):  # a previous export's leftovers would be read as this one's
        if os.path.isfile(os.path.join(out_dir, name)):
            os.remove(os.path.join(out_dir, name))
    model.llm.save_pretrained(out_dir, dtype=dtype)
    rest = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if not k.startswith("llm.")}
    save_file(rest, os.path.join(out_dir, EXPORT_WEIGHTS), metadata={"format": "pt"})
    if isinstance(tok, HFTokenizer):
        src = os.path.dirname(tok.model_path)
        for name in HF_TOKENIZER_FILES[1:]:
            if os.path.isfile(os.path.join(src, name)):
                shutil.copyfile(os.path.join(src, name), os.path.join(out_dir, name))
        tokenizer = HF_TOKENIZER_FILES[0]
        tok.save(os.path.join(out_dir, tokenizer))  # under its standard name, whatever the source file was called
    else:
        tok.save(os.path.join(out_dir, SPM_NAME))
        tokenizer = SPM_NAME
    cmvn = _data_path(exp_dir, "cmvn") if kind == "asr" else ""
    if cmvn:
        name = "cmvn" + os.path.splitext(cmvn)[1]
        shutil.copyfile(cmvn, os.path.join(out_dir, name))
        cmvn = name
    info = {"kind": kind, "tokenizer": tokenizer, "cmvn": cmvn, "source_exp": exp_dir, "source_weights": weights,
            "model": to_dict(replace(model_cfg, lora=None) if kind == "asr" else model_cfg)}
    with open(os.path.join(out_dir, EXPORT_CONFIG), "w", encoding="utf-8") as f:
        f.write(dump_yaml(info))
    logger.info("exported %s (%s, %s) to %s: LLM %.1fM parameters + %d other tensors, tokenizer %s", exp_dir, kind,
                weights, out_dir, model.llm.num_parameters() / 1e6, len(rest), tokenizer)
    return info


# ----------------------------------------------------------------------------------------------- loading it back
@dataclass
class Exported:
    model: torch.nn.Module  # ASRModel or TTSLM, eval mode
    tokens: object  # ASRTokens (asr) or TextTokens (tts_lm): the token layout of the model
    kind: str
    cmvn: str  # path of the CMVN stats to apply to ASR features; '' = none
    info: dict  # audiorl_config.yaml


def load_hf_export(export_dir: str, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> Exported:
    """Rebuild the audiorl model written by ``export_experiment`` (LLM from config.json + model.safetensors, the rest
    from audiorl_model.safetensors), strictly, with its tokenizer."""
    from audiorl.tasks.asr import ASRTokens
    from audiorl.tasks.tts_data import TextTokens

    where = os.path.join(export_dir, EXPORT_CONFIG)
    info = _read_yaml(where, "not an audiorl export; write one with `python -m audiorl.bin.export_hf`")
    if info.get("kind") not in KINDS or not isinstance(info.get("model"), dict):
        raise ValueError(f"{where}: needs kind (one of {sorted(KINDS)}) and a model section; export it again")
    kind = info["kind"]
    cfg_cls, model_cls = KINDS[kind]
    cfg = from_dict(cfg_cls, info["model"], f"{where} (model)")
    llm = LLM.from_pretrained(export_dir, dtype=dtype, max_seq_len=cfg.llm.max_seq_len)
    if llm.config != cfg.llm:
        raise ValueError(f"{export_dir}/config.json describes {llm.config} but {where} {cfg.llm}: the files are of "
                         f"different exports; export again")
    model = model_cls(cfg, llm=llm)
    missing, unexpected = model.load_state_dict(load_file(os.path.join(export_dir, EXPORT_WEIGHTS)), strict=False)
    missing = [k for k in missing if not k.startswith("llm.")]
    if missing or unexpected:
        raise ValueError(f"{export_dir}/{EXPORT_WEIGHTS}: missing {missing[:5]}, unexpected {unexpected[:5]} for the "
                         f"model of {where}: the files are of different exports; export again")
    tok_path = os.path.join(export_dir, info.get("tokenizer") or "tokenizer.json")
    if kind == "asr":
        tokens = ASRTokens(tok_path)
        tokens.fill(cfg)  # raises when the tokenizer's size disagrees with the model's ids
    else:
        tokens = TextTokens(tok_path)
        if tokens.vocab_size != cfg.text_vocab_size:
            raise ValueError(f"{tok_path}: {tokens.vocab_size} ids but the model has text_vocab_size="
                             f"{cfg.text_vocab_size}: the files are of different exports; export again")
    cmvn = os.path.join(export_dir, info["cmvn"]) if info.get("cmvn") else ""
    return Exported(model.to(device).eval(), tokens, kind, cmvn, info)
