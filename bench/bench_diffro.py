"""DiffRO step time against a GRPO step time for the text -> speech-token LM (PAPER.md s5-s6), and GRPO + DiffRO.

The recipe's sizes with random weights (egs/synth_en/tts/conf/train_tts_lm.yaml: a 256-wide, 4-layer LM over 400 BPE
text ids and 625 FSQ speech codes, 256-dim speaker embeddings; the token-to-text reward model at its defaults), so no
trained model is needed. B texts per step, G = grpo.num_generations rollouts per text; every step ends with
backward + AdamW and is timed whole. The steps:

* grpo     : sample G x B token sequences (KV cache, no grad; random weights never stop, so every row runs to
             ``--new_tokens``: an upper bound), token rewards duration + diversity (no vocoder or ASR judge: their
             cost depends on the recipe's synthesis and is not DiffRO's), reference log-probs, clipped loss;
* diffro   : teacher-force B x G reference sequences of ``--new_tokens`` tokens (the same token count as the
             rollouts; no sampling), Gumbel-Softmax -> reward model -> -log P(text) + beta x exact KL;
* combined : grpo + DiffRO on the rollouts with advantage > 0, sharing one policy and one reference forward.

Warm-up steps are not timed; medians of ``--steps``, the kinds taking turns. ``python -m bench.bench_diffro --help``.
"""

from __future__ import annotations

import argparse
import copy
import sys

import torch

from bench import format_table, pick_device, timed


def build(args, device):
    from audiorl.models.llm import LLMConfig
    from audiorl.models.token2text import Token2Text, Token2TextConfig
    from audiorl.models.tts_lm import SpeechSamplingConfig, TTSLM, TTSLMConfig
    from audiorl.rl.config import GRPOConfig
    from audiorl.rl.diffro import (DiffROConfig, diffro_loss, diffro_on_rollouts, gather_logprobs, strip_eos,
                                   teacher_forced_logits)
    from audiorl.rl.grpo import group_advantages, grpo_loss
    from audiorl.rl.rewards import RewardConfig, RewardInput, compute_rewards

    Vt, Vs, B = args.text_vocab, args.codebook, args.batch
    gcfg = GRPOConfig(num_generations=args.G, max_new_tokens=args.new_tokens, skip_zero_std_groups=False)
    G, N = gcfg.num_generations, args.batch * gcfg.num_generations
    dcfg = DiffROConfig()
    rcfg = RewardConfig([{"name": "duration"}, {"name": "diversity"}])
    sampling = SpeechSamplingConfig(max_new_tokens=args.new_tokens, temperature=gcfg.temperature, top_k=0, top_p=1.0,
                                    loop_window=0)
    torch.manual_seed(0)
    policy = TTSLM(TTSLMConfig(text_vocab_size=Vt, speech_vocab_size=Vs, spk_embed_dim=256,
                               llm=LLMConfig(vocab_size=0, max_seq_len=1024))).to(device).train()
    ref = copy.deepcopy(policy).eval().requires_grad_(False)
    rm = Token2Text(Token2TextConfig(speech_vocab_size=Vs, text_vocab_size=Vt)).to(device).eval().requires_grad_(False)
    opt = torch.optim.AdamW(policy.parameters(), lr=1e-6)
    g = torch.Generator(device=device).manual_seed(0)
    text = torch.randint(0, Vt, (B, args.text_len), device=device)
    tl = torch.full((B,), args.text_len, device=device)
    spk = torch.randn(B, 256, device=device)
    speech = torch.randint(0, Vs, (N, args.new_tokens), device=device)
    sl = torch.full((N,), args.new_tokens, device=device)

    def update(loss):
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    def rollout():
        policy.eval()
        out = policy.generate(text, tl, spk, sampling, G, g)
        policy.llm.clear_caches()
        policy.train()
        samples = [RewardInput(hyp_tokens=ids, group_index=i // G) for i, ids in enumerate(out.speech_ids())]
        adv, zero_std, _ = group_advantages(compute_rewards(rcfg, samples)[0], G)
        mask = torch.arange(out.tokens.shape[1], device=device)[None] < out.lengths[:, None]
        return out, adv.to(device), mask

    def grpo_step():
        out, adv, mask = rollout()
        p, pl = policy.prompt(text, tl, spk)
        logp = policy.sequence_logprobs(p, pl, out.tokens, out.lengths)
        with torch.no_grad():
            rp, rpl = ref.prompt(text, tl, spk)
            ref_logp = ref.sequence_logprobs(rp, rpl, out.tokens, out.lengths)
        update(grpo_loss(logp, None, adv, mask, ref_logp, cfg=gcfg, truncated=~out.finished)[0])

    def diffro_step():
        update(diffro_loss(policy, rm, text, tl, speech, sl, text, tl, cfg=dcfg, ref_policy=ref, spk_embed=spk,
                           generator=g)[0])

    def combined_step():
        out, adv, mask = rollout()
        sp, spl = strip_eos(out.tokens, out.lengths, out.eos_id)
        logits = teacher_forced_logits(policy, text, tl, sp, spl, spk)
        with torch.no_grad():
            ref_logits = teacher_forced_logits(ref, text, tl, sp, spl, spk)
        loss, _ = grpo_loss(gather_logprobs(logits, out.tokens, out.lengths), None, adv, mask,
                            gather_logprobs(ref_logits, out.tokens, out.lengths), cfg=gcfg, truncated=~out.finished)
        d, _ = diffro_on_rollouts(policy, rm, text, tl, sp, spl, text, tl, adv, cfg=dcfg, spk_embed=spk, generator=g,
                                  logits=logits, ref_logits=ref_logits)
        update(loss + d)

    return {"grpo": grpo_step, "diffro": diffro_step, "combined": combined_step}, N


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(prog="python -m bench.bench_diffro", description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto", help="auto = cuda when available, else cpu")
    p.add_argument("--batch", type=int, default=2, help="texts per step (B)")
    p.add_argument("--G", type=int, default=8, help="rollouts per text (grpo.num_generations; paper: 8)")
    p.add_argument("--text_len", type=int, default=12, help="text ids per text (synth_en: ~8-15 BPE ids)")
    p.add_argument("--new_tokens", type=int, default=75, help="speech tokens per sequence (75 = 3 s at 25 Hz)")
    p.add_argument("--text_vocab", type=int, default=400, help="text ids (the recipe's nbpe)")
    p.add_argument("--codebook", type=int, default=625, help="speech codes (FSQ 5^4, the recipe's tokenizer)")
    p.add_argument("--steps", type=int, default=3, help="timed steps per kind (median)")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps per kind first")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: cores are shared)")
    args = p.parse_args(argv)
    device = pick_device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    steps, n = build(args, device)
    med = timed(steps, device, repeats=args.steps, warmup=args.warmup)
    return [{"device": device.type, "step": k, "rows": n, "tokens": args.new_tokens, "step_s": v,
             "x_grpo": v / med["grpo"]} for k, v in med.items()]


if __name__ == "__main__":
    print(format_table(main(sys.argv[1:]), title="== bench_diffro =="))
