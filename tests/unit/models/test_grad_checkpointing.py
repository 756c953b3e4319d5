"""train.grad_checkpointing / LLM.grad_checkpointing: recomputing the blocks in backward changes no number."""

import pytest
import torch

from audiorl.models.llm import LLM, Block, LLMConfig
from audiorl.train.trainer import _enable_grad_checkpointing


def _loss_and_grads(llm: LLM, x: torch.Tensor):
    llm.zero_grad(set_to_none=True)
    logits = llm(x[:, :-1])
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in llm.named_parameters()}


def test_checkpointed_blocks_give_the_same_loss_and_gradients(monkeypatch):
    torch.manual_seed(0)
    llm = LLM(LLMConfig.from_preset("tiny"))
    x = torch.randint(0, 256, (3, 20))
    loss, grads = _loss_and_grads(llm, x)
    calls = []
    forward = Block.forward
    monkeypatch.setattr(Block, "forward", lambda self, *a: calls.append(1) or forward(self, *a))
    _enable_grad_checkpointing(llm)
    loss_ck, grads_ck = _loss_and_grads(llm, x)
    assert len(calls) == 2 * len(llm.layers)  # forward + recomputation in backward: the checkpoint really ran
    assert torch.equal(loss, loss_ck)
    for n, g in grads.items():
        assert torch.allclose(g, grads_ck[n], rtol=1e-5, atol=1e-7), n
    with torch.no_grad():  # decoding paths are untouched (no recomputation without grad)
        assert torch.equal(llm(x), LLM.forward(llm, x))


def test_models_without_an_llm_are_a_clear_error():
    with pytest.raises(ValueError, match="no transformer LLM"):
        _enable_grad_checkpointing(torch.nn.Linear(2, 2))
