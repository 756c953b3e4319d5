"""Tokens/s of audiorl's KV-cached batched sampler vs ``transformers`` ``generate()`` on the same Qwen2 weights.

Greedy decoding, a fixed number of new tokens (no eos), ragged prompts (HF: left-padded ids + attention mask;
ours: right-padded embeddings + lengths), warm-up excluded, median of ``--repeats`` runs. The tokens of both are
compared (``same_tokens``: fraction of identical generated tokens). ``python -m bench.bench_sampler --help``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

import torch

from bench import format_table, pick_device, timed


def build_models(preset: str, vocab: int, device):
    """A random HF Qwen2 shaped like our LLM preset, saved and loaded back through LLM.from_pretrained."""
    import transformers

    from audiorl.models.llm import LLM, LLMConfig

    c = LLMConfig.from_preset(preset, vocab_size=vocab)
    torch.manual_seed(0)
    cfg = transformers.Qwen2Config(vocab_size=vocab, hidden_size=c.dim, intermediate_size=c.intermediate_size,
                                   num_hidden_layers=c.n_layers, num_attention_heads=c.n_heads,
                                   num_key_value_heads=c.n_kv_heads, max_position_embeddings=1024,
                                   rope_theta=c.rope_theta, tie_word_embeddings=True)
    hf = transformers.Qwen2ForCausalLM(cfg).eval()
    with tempfile.TemporaryDirectory() as d:
        hf.save_pretrained(d)
        ours = LLM.from_pretrained(d).eval()
    return hf.to(device), ours.to(device)


def case(hf, ours, batch: int, prompt_len: int, new: int, device, repeats: int) -> dict:
    from audiorl.models.sampling import generate

    g = torch.Generator().manual_seed(batch)
    V = ours.config.vocab_size
    lens = torch.randint(prompt_len // 2, prompt_len + 1, (batch,), generator=g)
    lens[0] = prompt_len
    rows = [torch.randint(0, V, (int(n),), generator=g) for n in lens]
    left = torch.zeros(batch, prompt_len, dtype=torch.long)  # HF: left padding
    mask = torch.zeros(batch, prompt_len, dtype=torch.long)
    right = torch.zeros(batch, prompt_len, dtype=torch.long)  # ours: right padding
    for b, r in enumerate(rows):
        left[b, prompt_len - len(r):], mask[b, prompt_len - len(r):], right[b, :len(r)] = r, 1, r
    left, mask, right, lens = left.to(device), mask.to(device), right.to(device), lens.to(device)

    def run_hf():
        with torch.no_grad():
            return hf.generate(input_ids=left, attention_mask=mask, max_new_tokens=new, min_new_tokens=new,
                               do_sample=False, eos_token_id=None, pad_token_id=0)[:, prompt_len:]

    def run_ours():
        with torch.no_grad():
            return generate(ours, ours.embed(right), lens, new, eos_id=None, temperature=0.0).tokens

    same = (run_hf() == run_ours()).float().mean().item()
    t = timed({"hf": run_hf, "ours": run_ours}, device, repeats)
    row = dict(batch=batch, prompt=prompt_len, new=new, hf_tok_s=batch * new / t["hf"],
               ours_tok_s=batch * new / t["ours"], speedup=t["hf"] / t["ours"], same_tokens=same)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        run_ours()
        row["ours_peak_MiB"] = torch.cuda.max_memory_allocated(device) / 2**20
    return row


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(prog="python -m bench.bench_sampler", description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto", help="auto = cuda when available, else cpu")
    p.add_argument("--cases", default="1x32x64,8x64x64,32x64x64", help="batch x prompt_len x new_tokens, comma list")
    p.add_argument("--models", default="tiny,asr-small", help="LLMConfig presets to shape the random Qwen2 after")
    p.add_argument("--vocab", type=int, default=1024, help="vocabulary of the random Qwen2")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per case (median; hf and ours alternate)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: cores are shared)")
    args = p.parse_args(argv)
    device = pick_device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import transformers

    transformers.logging.set_verbosity_error()
    rows = []
    for preset in args.models.split(","):
        hf, ours = build_models(preset, args.vocab, device)
        for spec in args.cases.split(","):
            b, t, n = (int(v) for v in spec.split("x"))
            rows.append({"device": device.type, "model": f"{preset} {ours.num_parameters() / 1e6:.2f}M",
                         **case(hf, ours, b, t, n, device, args.repeats)})
    return rows


if __name__ == "__main__":
    print(format_table(main(sys.argv[1:]), title="== bench_sampler =="))
