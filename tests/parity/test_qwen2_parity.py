"""audiorl.models.llm.LLM against transformers.Qwen2ForCausalLM on the same random weights (a tiny config, CPU)."""

import json
import os

import pytest
import torch

transformers = pytest.importorskip("transformers")

from audiorl.models.llm import LLM  # noqa: E402

V = 97


def hf_model(tie: bool, seed: int = 0, rope_theta: float = 1e6):
    torch.manual_seed(seed)
    cfg = transformers.Qwen2Config(vocab_size=V, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                                   rope_theta=rope_theta, tie_word_embeddings=tie, rms_norm_eps=1e-6)
    model = transformers.Qwen2ForCausalLM(cfg).eval()
    with torch.no_grad():  # HF init is ~N(0, 0.02) with unit norms and zero biases: make every tensor matter
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * (0.3 if p.dim() == 1 else 0.15) + (1.0 if p.dim() == 1 else 0.0))
        for name, p in model.named_parameters():
            if name.endswith(".bias"):
                p.copy_(torch.randn_like(p) * 0.3)
    return model


@pytest.mark.parametrize("tie", [True, False])
def test_hf_to_ours_and_back(tmp_path, tie):
    ref = hf_model(tie)
    ref.save_pretrained(tmp_path / "hf")
    ours = LLM.from_pretrained(str(tmp_path / "hf")).eval()
    assert ours.config.tie_embeddings == tie and ours.config.rope_theta == 1e6
    assert ours.num_parameters() == sum(p.numel() for p in ref.parameters())
    ids = torch.randint(0, V, (3, 23))
    with torch.no_grad():
        want = ref(ids).logits
        torch.testing.assert_close(ours(ids), want, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(ours(inputs_embeds=ours.embed(ids)), want, atol=1e-5, rtol=1e-5)

    ours.save_pretrained(str(tmp_path / "ours"))
    back = transformers.Qwen2ForCausalLM.from_pretrained(str(tmp_path / "ours")).eval()
    assert back.config.tie_word_embeddings == tie
    with torch.no_grad():
        torch.testing.assert_close(back(ids).logits, want, atol=1e-5, rtol=1e-5)


def test_sharded_checkpoint(tmp_path):
    ref = hf_model(tie=False, seed=1)
    ref.save_pretrained(tmp_path, max_shard_size="40KB")
    assert (tmp_path / "model.safetensors.index.json").is_file(), "expected a sharded save"
    ours = LLM.from_pretrained(str(tmp_path)).eval()
    ids = torch.randint(0, V, (2, 11))
    with torch.no_grad():
        torch.testing.assert_close(ours(ids), ref(ids).logits, atol=1e-5, rtol=1e-5)


def test_strict_loading_errors(tmp_path):
    from safetensors.torch import load_file, save_file

    ref = hf_model(tie=True)
    ref.save_pretrained(tmp_path)
    path = tmp_path / "model.safetensors"
    state = load_file(path)
    good = dict(state)
    del state["model.layers.1.mlp.up_proj.weight"]
    state["model.layers.0.extra.weight"] = torch.zeros(2)
    save_file(state, path)
    with pytest.raises(ValueError, match=r"1 missing tensors \['model.layers.1.mlp.up_proj.weight'\], 1 unexpected"):
        LLM.from_pretrained(str(tmp_path))
    good["model.norm.weight"] = torch.ones(65)
    save_file(good, path)
    with pytest.raises(ValueError, match=r"model.norm.weight has shape \(65,\)"):
        LLM.from_pretrained(str(tmp_path))
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["hidden_act"] = "gelu"
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="hidden_act"):
        LLM.from_pretrained(str(tmp_path))
    os.remove(tmp_path / "config.json")
    with pytest.raises(FileNotFoundError, match="config.json"):
        LLM.from_pretrained(str(tmp_path))


def ours_from_hf(tmp_path, tie=True):
    ref = hf_model(tie)
    ref.save_pretrained(tmp_path)
    return ref, LLM.from_pretrained(str(tmp_path)).eval()


@torch.no_grad()
def test_kv_cache_matches_full_forward(tmp_path):
    _, llm = ours_from_hf(tmp_path)
    ids = torch.randint(0, V, (2, 20))
    full = llm(ids)  # (B, T, V)
    llm.setup_caches(max_batch=4, max_len=32)
    T0 = 7  # prefill a chunk, then one token at a time
    got = [llm(ids[:, :T0], input_pos=torch.arange(T0))]
    for t in range(T0, 20):
        got.append(llm(ids[:, t:t + 1], input_pos=torch.tensor([t])))
    torch.testing.assert_close(torch.cat(got, 1), full, atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_left_padded_batch_equals_single_rows(tmp_path):
    ref, llm = ours_from_hf(tmp_path)
    lens = [9, 4, 6]
    T = max(lens)
    rows = [torch.randint(0, V, (n,)) for n in lens]
    ids = torch.zeros(3, T, dtype=torch.long)
    mask = torch.zeros(3, T, dtype=torch.long)
    for b, r in enumerate(rows):
        ids[b, T - len(r):], mask[b, T - len(r):] = r, 1
    batch = llm(ids, attention_mask=mask)  # (B, T, V)
    hf_batch = ref(ids, attention_mask=mask).logits
    for b, r in enumerate(rows):
        single = llm(r[None])[0]
        torch.testing.assert_close(batch[b, T - len(r):], single, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(hf_batch[b, T - len(r):], single, atol=1e-5, rtol=1e-5)
    # the same through the cache: left-aligned prefill with per-row positions, then one cached step
    llm.setup_caches(3, 16)
    key_mask = torch.zeros(3, 16, dtype=torch.bool)
    key_mask[:, :T] = mask.bool()
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    pre = llm(ids, positions=pos, attention_mask=key_mask, input_pos=torch.arange(T))
    nxt = torch.randint(0, V, (3, 1))
    key_mask[:, T] = True
    step = llm(nxt, positions=torch.tensor(lens)[:, None], attention_mask=key_mask, input_pos=torch.tensor([T]))
    for b, r in enumerate(rows):
        single = llm(torch.cat([r, nxt[b]])[None])[0]
        torch.testing.assert_close(pre[b, T - len(r):], single[:-1], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(step[b, 0], single[-1], atol=1e-5, rtol=1e-5)
