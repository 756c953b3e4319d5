"""GRPO step time for LLM-based ASR and its breakdown: encode / rollout / reward / reference / update / backward.

The recipe's model (egs/synth_en/asr/conf/train_asr.yaml, random weights, 400 BPE + 2 special ids) and GRPO
settings (conf/grpo_r123.yaml: B utterances x G samples, R1+R2+R3 rewards, beta > 0 so the reference forward is
included) on synthetic fbank input, so no trained model is needed. Random weights rarely emit the end token, so
every completion runs to the sampling budget (``--new_tokens``, ~ the longest synth_en transcript): an upper
bound of a trained model's rollout time. Warm-up steps are not timed; medians of ``--steps``.
``python -m bench.bench_grpo --help``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from bench import format_table, pick_device, sync

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "egs" / "synth_en" / "asr" / "conf"


def build(args, device):
    from audiorl.config import load_config
    from audiorl.models.asr import ASRModel
    from audiorl.rl.grpo_task import GRPOTask
    from audiorl.rl.rewards import RewardInput
    from audiorl.tasks.asr import ASRTrainConfig
    from audiorl.tasks.asr_grpo import ASRGRPOConfig

    sft = load_config(ASRTrainConfig, CONF / "train_asr.yaml")
    V = 400
    mcfg = replace(sft.model, vocab_size=V + 2, text_vocab_size=V, eos_id=V, pad_id=V, prompt_ids=(V + 1,))
    rl = load_config(ASRGRPOConfig, CONF / args.grpo_config, [f"--grpo.max_new_tokens={args.new_tokens}"] +
                     ([f"--train.batch_size={args.batch}"] if args.batch else []) +
                     ([f"--grpo.num_generations={args.G}"] if args.G else []))
    B, G = rl.train.batch_size, rl.grpo.num_generations
    g = torch.Generator().manual_seed(0)
    frames = torch.randint(int(args.seconds * 60), int(args.seconds * 100) + 1, (B,), generator=g)  # 10 ms frames
    feats = torch.randn(B, int(frames.max()), mcfg.encoder.n_mels, generator=g)
    refs = [torch.randint(0, V, (int(n) // 25,), generator=g).tolist() for n in frames]  # ~4 tokens/s
    batch = {"utts": [f"u{i}" for i in range(B)], "feats": feats.to(device), "feat_lens": frames.to(device)}

    class Synthetic(GRPOTask):
        def build_model(self):
            return ASRModel(mcfg)

        def prompt_batches(self, epoch, rank, world_size):
            return [batch]

        def encode_prompts(self, model, b):
            return model.encode(b["feats"], b["feat_lens"])

        def policy_llm(self, model):
            return model.llm

        @property
        def eos_id(self):
            return V

        def reward_inputs(self, b, rollout):
            out = []
            for i, ids in enumerate(rollout.completion_ids(V)):
                ref = refs[i // G]
                out.append(RewardInput(hyp_text=" ".join(map(str, ids)), ref_text=" ".join(map(str, ref)),
                                       hyp_tokens=ids, group_index=i // G, keywords=[str(ref[0])] if ref else []))
            return out

    torch.manual_seed(0)
    task = Synthetic(rl.grpo, rl.step, rl.rewards)
    model = task.build_model().to(device).train()
    task.setup(model, device)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-6)
    return task, model, opt, batch, rl, int(frames.max())


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(prog="python -m bench.bench_grpo", description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto", help="auto = cuda when available, else cpu")
    p.add_argument("--grpo_config", default="grpo_r123.yaml", help="GRPO config under egs/synth_en/asr/conf")
    p.add_argument("--batch", type=int, default=0, help="utterances per step; 0 = the config's train.batch_size")
    p.add_argument("--G", type=int, default=0, help="samples per utterance; 0 = the config's grpo.num_generations")
    p.add_argument("--seconds", type=float, default=4.0, help="longest utterance in s (synth_en: ~2.5-4 s)")
    p.add_argument("--new_tokens", type=int, default=32, help="sampling budget per completion (tokens)")
    p.add_argument("--steps", type=int, default=3, help="timed steps (median)")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: cores are shared)")
    args = p.parse_args(argv)
    device = pick_device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    task, model, opt, batch, rl, frames = build(args, device)
    parts = ["encode", "rollout", "reward", "reference", "update", "backward"]
    rec: dict[str, list[float]] = {k: [] for k in parts + ["step"]}
    for i in range(args.warmup + args.steps):
        sync(device)
        t0 = time.perf_counter()
        loss, stats = task.train_step(model, (batch, 0), i)
        sync(device)
        t1 = time.perf_counter()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync(device)
        t2 = time.perf_counter()
        if i >= args.warmup:
            for k in parts[:-1]:
                rec[k].append(float(stats.get(f"time_{k}", 0.0)))
            rec["backward"].append(t2 - t1)
            rec["step"].append(t2 - t0)
    med = {k: statistics.median(v) for k, v in rec.items()}
    B, G = rl.train.batch_size, rl.grpo.num_generations
    row = {"device": device.type, "B x G": f"{B}x{G}", "frames": frames, "new_tok": args.new_tokens,
           "step_s": med["step"], **{f"{k}_s": med[k] for k in parts},
           "rollout_tok_s": B * G * args.new_tokens / max(med["rollout"], 1e-9)}
    if device.type == "cuda":
        row["peak_MiB"] = torch.cuda.max_memory_allocated(device) / 2**20
    return [row]


if __name__ == "__main__":
    print(format_table(main(sys.argv[1:]), title="== bench_grpo =="))
