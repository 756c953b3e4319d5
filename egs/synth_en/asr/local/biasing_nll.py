#!/usr/bin/env python3
"""Does a biasing model read its list? The reference transcript's negative log-likelihood, teacher-forced, per
utterance: without a list, with the true keywords alone, and with keywords + N distractors (audiorl/data/biasing.py
draws the lists as decoding does). A model that copies from its list gives the keyword utterances a lower NLL with
the keywords alone; one that ignores it gives the same NLL (utterances without keywords get an empty list = the
plain prompt, so their difference is 0 by construction).

    local/biasing_nll.py exp/asr_sft_bias2 dump/fbank/dev [--distractors 10]

Prints the total NLL of each condition and the mean per-utterance change against no list, over the utterances with
and without keywords.
"""

import argparse
from dataclasses import replace

import torch

from audiorl.tasks.asr import FeatsData, load_asr_model


def utterance_nll(model, data: FeatsData, batch: int = 16) -> dict[str, float]:
    out: dict[str, float] = {}
    utts = data.utt_ids()
    with torch.no_grad():
        for i in range(0, len(utts), batch):
            b = data.collate(utts[i:i + batch])
            for j, u in enumerate(b["utts"]):  # one row at a time: the loss is a batch mean
                prompt = b["prompt_ids"][j:j + 1, :int(b["prompt_lens"][j])] if "prompt_ids" in b else None
                o = model(b["feats"][j:j + 1], b["feat_lens"][j:j + 1], prompt,
                          b["target_ids"][j:j + 1, :int(b["target_lens"][j])], b["target_lens"][j:j + 1])
                out[u] = float(o["ce_loss"]) * int(o["n_tokens"])
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("exp_dir")
    p.add_argument("data_dir", help="feature data dir with text and keywords")
    p.add_argument("--distractors", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    model, cfg, tokens, _ = load_asr_model(a.exp_dir)
    data = FeatsData(a.data_dir, tokens, cfg.data.cmvn)  # read once; each condition only swaps the lists
    nll = {}
    for name, n in (("no list", None), ("keywords alone", 0), (f"keywords + {a.distractors}", a.distractors)):
        if n is not None:  # FeatsData starts without lists
            data.use_biasing(replace(cfg.data.biasing, enabled=True, eval_distractors=n))
        nll[name] = utterance_nll(model, data)
        print(f"{name}: total NLL {sum(nll[name].values()):.1f} nats over {len(nll[name])} utterances", flush=True)
    has_kw = {u for u, ws in data.biasing.keywords.items() if ws}
    base = nll.pop("no list")
    for name, d in nll.items():
        for label, sel in (("with keywords", [u for u in base if u in has_kw]),
                           ("without", [u for u in base if u not in has_kw])):
            diff = [d[u] - base[u] for u in sel]
            print(f"{name} vs no list, utterances {label} ({len(sel)}): mean change "
                  f"{sum(diff) / max(len(diff), 1):+.3f} nats")


if __name__ == "__main__":
    main()
