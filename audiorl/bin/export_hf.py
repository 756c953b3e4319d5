"""Export a trained ASR model or TTS LM to a Hugging Face-format directory (transformers loads the LLM part).

    python -m audiorl.bin.export_hf --exp_dir exp/asr_train_asr --out_dir exported/asr [--checkpoint W] [--dtype bf16]

OUT_DIR: config.json + model.safetensors (Qwen2ForCausalLM), the text tokenizer (tokenizer.json for a Hugging Face
tokenizer, text_tokenizer.model for sentencepiece), audiorl_model.safetensors + audiorl_config.yaml for the rest of
the model. ``audiorl.tasks.hf_export.load_hf_export(OUT_DIR)`` rebuilds the full model. Details:
audiorl/tasks/hf_export.py.
"""

from __future__ import annotations

import argparse
import sys

import torch

from audiorl.log import get_logger, setup_logging

logger = get_logger("export_hf")
DTYPES = {"float32": torch.float32, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16,
          "float16": torch.float16}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="export_hf", description=__doc__.split("\n\n")[0])
    p.add_argument("--exp_dir", required=True, help="trained experiment dir (config.yaml + checkpoints): ASR SFT/GRPO "
                                                    "or TTS LM SFT/RL")
    p.add_argument("--out_dir", required=True, help="directory to write (created; existing files are replaced)")
    p.add_argument("--checkpoint", default="", help="weights to export; default: what its training stage ended with")
    p.add_argument("--dtype", default=None, choices=list(DTYPES), help="dtype of the LLM tensors; default: as trained")
    a = p.parse_args(argv)
    setup_logging()
    from audiorl.tasks.hf_export import export_experiment
    from audiorl.train.checkpoint import CheckpointError

    try:
        export_experiment(a.exp_dir, a.out_dir, a.checkpoint, DTYPES.get(a.dtype))
    except (FileNotFoundError, ValueError, CheckpointError) as e:
        logger.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
