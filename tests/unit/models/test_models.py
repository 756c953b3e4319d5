"""Unit tests for audiorl/models: encoder, adaptor, ASR model, LoRA, sampling, beam search (tiny sizes, CPU)."""

import pytest
import torch

from audiorl.models.adaptor import Adaptor, AdaptorConfig
from audiorl.models.asr import ASRModel, ASRModelConfig
from audiorl.models.beam import beam_search
from audiorl.models.encoder import AudioEncoder, EncoderConfig, subsampled_lengths
from audiorl.models.llm import LLM, LLMConfig
from audiorl.models.lora import LoRAConfig, apply_lora, mark_only_lora_trainable, merge_lora, unmerge_lora
from audiorl.models.sampling import generate, left_align, pack_right, process_logits, sequence_logprobs

NMEL = 20


def tiny_llm(vocab=50, seed=0, **kw) -> LLM:
    torch.manual_seed(seed)
    return LLM(LLMConfig.from_preset("tiny", vocab_size=vocab, init_std=0.3, **kw)).eval()


def prompts(B=3, T=7, D=64, lens=(7, 3, 5), seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, T, D, generator=g), torch.tensor(lens)


def feats_batch(lens=(60, 45, 33), seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(len(lens), max(lens), NMEL, generator=g) * 3 + 1, torch.tensor(lens)


def asr_config(**kw) -> ASRModelConfig:
    return ASRModelConfig(vocab_size=40, text_vocab_size=32, eos_id=32, pad_id=33, prompt_ids=(34,),
                          encoder=EncoderConfig.from_preset("tiny", n_mels=NMEL), adaptor=AdaptorConfig(hidden_dim=64),
                          llm=LLMConfig.from_preset("tiny", vocab_size=0), **kw)


# ---- layout helpers ------------------------------------------------------------------------------------------------
def test_pack_right_and_left_align():
    a = torch.arange(12.0).view(2, 3, 2)
    b = 100 + torch.arange(8.0).view(2, 2, 2)
    out, n = pack_right([(a, torch.tensor([1, 3])), (b, torch.tensor([2, 1]))], pad_value=-1)
    assert n.tolist() == [3, 4] and out.shape == (2, 4, 2)
    assert out[0].tolist() == [[0, 1], [100, 101], [102, 103], [-1, -1]]
    assert out[1].tolist() == [[6, 7], [8, 9], [10, 11], [104, 105]]
    left, mask = left_align(out, n)
    assert mask.tolist() == [[False, True, True, True], [True] * 4]
    assert left[0, 1:].tolist() == out[0, :3].tolist() and left[0, 0].tolist() == [0, 0]


# ---- encoder / adaptor -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("block", ["conformer", "transformer"])
def test_encoder_lengths_and_batch_invariance(block):
    torch.manual_seed(0)
    enc = AudioEncoder(EncoderConfig.from_preset("tiny", n_mels=NMEL, block=block, ctc_vocab_size=11)).eval()
    x, lens = feats_batch((60, 45, 7))
    out, out_lens = enc(x, lens)
    assert out_lens.tolist() == [14, 10, 1] == subsampled_lengths(lens).tolist()
    assert out.shape == (3, 14, 64)
    alone, _ = enc(x[1:2, :45], lens[1:2])  # same utterance without padding
    torch.testing.assert_close(out[1, :10], alone[0], atol=1e-5, rtol=1e-5)
    assert enc.ctc_logits(out).shape == (3, 14, 11)


def test_specaugment_train_only():
    torch.manual_seed(0)
    enc = AudioEncoder(EncoderConfig.from_preset("tiny", n_mels=NMEL, freq_mask_width=8, time_mask_width=10))
    x, lens = feats_batch()
    enc.eval()
    torch.testing.assert_close(enc(x, lens)[0], enc(x, lens)[0])
    enc.train()
    assert not torch.allclose(enc(x, lens)[0], enc(x, lens)[0]), "train mode should mask randomly"


def test_ctc_loss_and_greedy():
    torch.manual_seed(0)
    enc = AudioEncoder(EncoderConfig.from_preset("tiny", n_mels=NMEL, ctc_vocab_size=6)).eval()
    x, lens = feats_batch()
    out, out_lens = enc(x, lens)
    loss = enc.ctc_loss(out, out_lens, torch.tensor([[1, 2, 9], [3, 9, 9], [4, 4, 0]]), torch.tensor([2, 1, 3]))
    assert loss.isfinite() and loss > 0
    with pytest.raises(AssertionError, match="blank"):
        enc.ctc_loss(out, out_lens, torch.tensor([[5], [1], [1]]), torch.tensor([1, 1, 1]))
    # best path 1 1 blank 1 2 2 blank | padding -> [1, 1, 2]
    path = torch.tensor([[1, 1, 5, 1, 2, 2, 5, 3]])
    enc.ctc_logits = lambda e: torch.nn.functional.one_hot(path, 6).float()
    assert enc.ctc_greedy(None, torch.tensor([7])) == [[1, 1, 2]]


@pytest.mark.parametrize("kind", ["mlp", "transformer"])
def test_adaptor_lengths(kind):
    torch.manual_seed(0)
    ad = Adaptor(AdaptorConfig(stack=3, kind=kind, hidden_dim=32, n_heads=4), in_dim=16, out_dim=24).eval()
    x = torch.randn(2, 10, 16)
    y, n = ad(x, torch.tensor([10, 7]))
    assert y.shape == (2, 4, 24) and n.tolist() == [4, 3]
    y1, _ = ad(x[1:, :7], torch.tensor([7]))  # the partial last group must not see the batch's padding
    torch.testing.assert_close(y[1, :3], y1[0], atol=1e-5, rtol=1e-5)


# ---- ASR model ---------------------------------------------------------------------------------------------------
def test_asr_forward_backward_and_overfit():
    torch.manual_seed(0)
    model = ASRModel(asr_config(ctc_weight=0.3))
    x, lens = feats_batch((60, 45, 33, 50))
    tgt = torch.randint(0, 32, (4, 6))
    tgt_lens = torch.tensor([6, 4, 5, 3])
    out = model(x, lens, None, tgt, tgt_lens)
    assert out["n_tokens"].item() == int((tgt_lens + 1).sum())  # transcript + eos only
    assert out["loss"].shape == () and out["ctc_loss"] > 0
    out["loss"].backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    emb, emb_lens = model.encode(x, lens)
    assert emb_lens.tolist() == [8, 6, 5, 7] and emb.shape == (4, 8, 64)  # ceil(subsampled / 2) + 1 prompt token

    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = None
    for _ in range(30):
        out = model(x, lens, None, tgt, tgt_lens)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        first = first if first is not None else out["loss"].item()
    assert out["loss"].item() < 0.3 * first, (first, out["loss"].item())
    model.eval()
    hyps = model.transcribe(x, lens)
    refs = [tgt[b, :n].tolist() for b, n in enumerate(tgt_lens.tolist())]
    assert sum(h == r for h, r in zip(hyps, refs)) >= 3, (hyps, refs)
    assert model.transcribe(x, lens, beam_size=3) is not None


def test_asr_batch_loss_equals_per_row_losses():
    torch.manual_seed(0)
    model = ASRModel(asr_config(ctc_weight=0.0)).eval()
    x, lens = feats_batch((60, 45, 33))
    tgt = torch.randint(0, 32, (3, 5))
    tgt_lens = torch.tensor([5, 2, 4])
    prompt = torch.tensor([[34, 35], [36, 0], [35, 34]])  # ragged per-row prompts
    prompt_lens = torch.tensor([2, 1, 2])
    with torch.no_grad():
        batch = model(x, lens, prompt, tgt, tgt_lens, prompt_lens=prompt_lens)
        total = 0.0
        for b in range(3):
            one = model(x[b:b + 1, :lens[b]], lens[b:b + 1], prompt[b:b + 1, :prompt_lens[b]], tgt[b:b + 1, :tgt_lens[b]],
                        tgt_lens[b:b + 1])
            total += one["ce_loss"].item() * one["n_tokens"].item()
    assert batch["ce_loss"].item() == pytest.approx(total / batch["n_tokens"].item(), rel=1e-5)


def test_asr_encode_layout_matches_training_forward():
    """RL scores rollouts with sequence_logprobs on encode()'s embeddings: it must agree with the SFT loss."""
    torch.manual_seed(0)
    model = ASRModel(asr_config(ctc_weight=0.0)).eval()
    x, lens = feats_batch((60, 45, 33))
    tgt = torch.randint(0, 32, (3, 5))
    tgt_lens = torch.tensor([5, 2, 4])
    with torch.no_grad():
        ce = model(x, lens, None, tgt, tgt_lens)
        emb, emb_lens = model.encode(x, lens)
        seq = torch.cat([tgt, torch.full((3, 1), 33)], 1).scatter(1, tgt_lens[:, None], 32)  # transcript + eos
        lp = sequence_logprobs(model.llm, emb, emb_lens, seq, tgt_lens + 1)
    assert -lp.sum().item() / ce["n_tokens"].item() == pytest.approx(ce["ce_loss"].item(), rel=1e-5)


def test_asr_freezing_and_lora():
    model = ASRModel(asr_config(freeze_encoder=True, lora=LoRAConfig(rank=2, targets=("wq", "wv"))))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert not any(n.startswith("encoder.") for n in trainable)
    assert {n for n in trainable if n.startswith("llm.")} == {
        f"llm.layers.{i}.attn.{w}.lora_{ab}" for i in range(2) for w in ("wq", "wv") for ab in "ab"}
    assert any(n.startswith("adaptor.") for n in trainable)
    with pytest.raises(ValueError, match="unset"):
        ASRModel(ASRModelConfig())


# ---- LoRA -------------------------------------------------------------------------------------------------------------
def test_lora_trainable_and_merge(tmp_path):
    llm = tiny_llm(tie_embeddings=False)
    ids = torch.randint(0, 50, (2, 9))
    base = llm(ids).detach()
    names = apply_lora(llm, LoRAConfig(rank=4, alpha=8, targets=("wq", "wv", "w_down")))
    assert len(names) == 6
    torch.testing.assert_close(llm(ids), base)  # B = 0 at init
    n = mark_only_lora_trainable(llm)
    assert n == sum(p.numel() for name, p in llm.named_parameters() if "lora_" in name)
    assert all(("lora_" in name) == p.requires_grad for name, p in llm.named_parameters())
    with torch.no_grad():
        for name, p in llm.named_parameters():
            if "lora_b" in name:
                p.normal_(0, 0.1)
    unmerged = llm(ids).detach()
    assert not torch.allclose(unmerged, base)
    with pytest.raises(AssertionError, match="merge_lora"):
        llm.save_pretrained(str(tmp_path))
    merge_lora(llm)
    torch.testing.assert_close(llm(ids), unmerged, atol=1e-5, rtol=1e-5)
    llm.save_pretrained(str(tmp_path))
    reloaded = LLM.from_pretrained(str(tmp_path)).eval()
    torch.testing.assert_close(reloaded(ids), unmerged, atol=1e-5, rtol=1e-5)
    unmerge_lora(llm)
    torch.testing.assert_close(llm(ids), unmerged, atol=1e-5, rtol=1e-5)


# ---- sampling -----------------------------------------------------------------------------------------------------
def greedy_reference(llm, x, n, steps, eos):
    seq, toks = x[None, :n], []
    for _ in range(steps):
        t = llm(inputs_embeds=seq)[0, -1].argmax().item()
        toks.append(t)
        seq = torch.cat([seq, llm.embed(torch.tensor([[t]]))], 1)
        if t == eos:
            break
    return toks


def test_greedy_equals_argmax_of_full_forward():
    llm = tiny_llm()
    x, lens = prompts()
    probe = generate(llm, x, lens, 10, eos_id=None, temperature=0)
    eos = probe.tokens[1, 3].item()  # a token greedy emits, so at least one row stops early
    out = generate(llm, x, lens, 10, eos_id=eos, temperature=0, pad_id=49)
    assert out.finished[1] and out.lengths[1] <= 4
    for b in range(3):
        ref = greedy_reference(llm, x[b], lens[b].item(), 10, eos)
        n = out.lengths[b].item()
        assert out.tokens[b, :n].tolist() == ref and (out.tokens[b, n:] == 49).all()
        assert out.finished[b].item() == (ref[-1] == eos)
        assert (out.logprobs[b] == 0).all() and (out.raw_logprobs[b, n:] == 0).all()
    # ragged rows in one batch == each row alone
    alone = generate(llm, x[1:2, :3], lens[1:2], 10, eos_id=eos, temperature=0, pad_id=49)
    assert alone.tokens[0].tolist() == out.tokens[1, :alone.tokens.shape[1]].tolist()


def test_top_k_top_p_masks():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05], [0.05, 0.15, 0.3, 0.5]]))
    keep = lambda **kw: torch.isfinite(process_logits(logits, **kw))  # noqa: E731
    assert keep(top_k=2).tolist() == [[True, True, False, False], [False, False, True, True]]
    assert keep(top_p=0.7).tolist() == [[True, True, False, False], [False, False, True, True]]
    assert keep(top_p=0.9).tolist() == [[True, True, True, False], [False, True, True, True]]
    assert keep(top_p=0.01).sum().item() == 2  # the top token always stays
    assert keep(top_k=3, top_p=0.7).sum().item() == 4


def test_num_samples_shares_prefill_and_logprobs_match_teacher_forcing():
    llm = tiny_llm()
    x, lens = prompts()
    kw = dict(max_new_tokens=12, eos_id=7, temperature=1.3, top_k=20)
    shared = generate(llm, x, lens, num_samples=4, generator=torch.Generator().manual_seed(3), **kw)
    separate = generate(llm, x.repeat_interleave(4, 0), lens.repeat_interleave(4), num_samples=1,
                        generator=torch.Generator().manual_seed(3), **kw)
    assert shared.tokens.shape[0] == 12
    assert torch.equal(shared.tokens, separate.tokens) and torch.equal(shared.lengths, separate.lengths)
    torch.testing.assert_close(shared.logprobs, separate.logprobs, atol=1e-5, rtol=1e-5)
    assert len({tuple(r) for r in shared.tokens[:4].tolist()}) > 1, "samples of one prompt should differ"

    with torch.no_grad():
        raw = sequence_logprobs(llm, x, lens, shared.tokens, shared.lengths)
        tempered = sequence_logprobs(llm, x, lens, shared.tokens, shared.lengths, temperature=1.3)
    torch.testing.assert_close(raw, shared.raw_logprobs, atol=1e-5, rtol=1e-5)
    real = torch.arange(shared.tokens.shape[1])[None] < shared.lengths[:, None]
    assert (shared.logprobs[real] >= tempered[real] - 1e-5).all()  # top-k renormalises: never below the full softmax
    plain = generate(llm, x, lens, 12, eos_id=7, temperature=1.3, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(plain.logprobs, sequence_logprobs(llm, x, lens, plain.tokens, plain.lengths, 1.3),
                               atol=1e-5, rtol=1e-5)
    greedy = generate(llm, x, lens, 12, eos_id=7, temperature=0, num_samples=3)
    assert torch.equal(greedy.tokens[0::3], greedy.tokens[2::3])


# ---- beam search --------------------------------------------------------------------------------------------------
def test_beam_one_equals_greedy_and_nbest_scores():
    llm = tiny_llm()
    x, lens = prompts()
    probe = generate(llm, x, lens, 10, eos_id=None, temperature=0)
    eos = probe.tokens[1, 3].item()
    greedy = generate(llm, x, lens, 10, eos_id=eos, temperature=0)
    beam = beam_search(llm, x, lens, 10, eos_id=eos, beam_size=1)
    L = greedy.tokens.shape[1]
    assert torch.equal(beam.tokens[:, 0, :L], greedy.tokens) and torch.equal(beam.lengths[:, 0], greedy.lengths)
    assert torch.equal(beam.finished[:, 0], greedy.finished)

    out = beam_search(llm, x, lens, 10, eos_id=eos, beam_size=4, nbest=3, length_penalty=0.0)
    assert out.tokens.shape[:2] == (3, 3) and (out.scores[:, :-1] >= out.scores[:, 1:]).all()
    flat = out.tokens.flatten(0, 1)
    lp = sequence_logprobs(llm, x, lens, flat, out.lengths.flatten(), ).view(3, 3, -1).sum(-1)
    torch.testing.assert_close(lp, out.logprob_sums, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out.scores, out.logprob_sums)  # length_penalty 0: raw sums
    for b in range(3):
        hyps = [tuple(flat[b * 3 + i, :out.lengths[b, i]].tolist()) for i in range(3)]
        assert len(set(hyps)) == 3, hyps
        assert out.scores[b, 0] >= greedy.raw_logprobs[b].sum() - 1e-4  # beam 4 finds at least greedy's score here
