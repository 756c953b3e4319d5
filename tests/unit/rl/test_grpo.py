"""GRPO objective (audiorl/rl/grpo.py, PAPER.md s2): hand-computed values and slow reference loops."""

import math
import statistics

import pytest
import torch

from audiorl.rl.config import GRPOConfig
from audiorl.rl.grpo import group_advantages, grpo_loss, kl_penalty, selective_log_softmax, token_entropy


def cfg(**kw):
    base = dict(num_generations=2, beta=0.0, skip_zero_std_groups=False, max_new_tokens=8)
    base.update(kw)
    return GRPOConfig(**base)


# ------------------------------------------------------------------------------------------ advantages
def test_group_advantages_three_scales_by_hand():
    r = torch.tensor([1.0, 2.0, 3.0, 5.0, 5.0, 5.0])
    adv, zero, st = group_advantages(r, 3, "group", eps=0.0)
    assert torch.allclose(adv, torch.tensor([-1.0, 0.0, 1.0, 0.0, 0.0, 0.0]))  # unbiased std of 1,2,3 = 1
    assert zero.tolist() == [False] * 3 + [True] * 3
    assert st["frac_zero_std"].item() == 0.5 and st["n_zero_std_groups"].item() == 1
    adv, _, _ = group_advantages(r, 3, "batch", eps=0.0)
    s = statistics.stdev([1, 2, 3, 5, 5, 5])
    assert torch.allclose(adv, torch.tensor([-1 / s, 0.0, 1 / s, 0.0, 0.0, 0.0]))
    adv, _, _ = group_advantages(r, 3, "none", eps=0.0)
    assert torch.allclose(adv, torch.tensor([-1.0, 0.0, 1.0, 0.0, 0.0, 0.0]))
    adv, _, _ = group_advantages(r, 3, "group", eps=1.0)
    assert torch.allclose(adv[:3], torch.tensor([-0.5, 0.0, 0.5]))


def test_zero_std_is_exact_and_near_ties_are_not_zero_std():
    v = 1.0 - 0.9  # a round-off-prone value, repeated exactly
    adv, zero, _ = group_advantages(torch.tensor([v, v, v, 0.1, 0.1, 0.1 + 1e-6], dtype=torch.float64), 3)
    assert zero.tolist() == [True] * 3 + [False] * 3
    assert (adv[:3] == 0).all() and (adv[3:] != 0).all()


def test_group_advantages_against_a_greedy_baseline_by_hand():
    """baseline='greedy': each group is centred on its own baseline reward, not on its mean."""
    r = torch.tensor([1.0, 2.0, 3.0, 5.0, 5.0, 5.0, 4.0, 4.0, 4.0])
    b = torch.tensor([2.0, 5.0, 5.0])  # group 2: every sample equals its baseline; group 3: all tie, all worse
    adv, zero, st = group_advantages(r, 3, "none", eps=0.0, baseline=b)
    assert torch.allclose(adv, torch.tensor([-1.0, 0.0, 1.0, 0.0, 0.0, 0.0, -1.0, -1.0, -1.0]))
    # zero-std (skipped) only where nothing differs from the baseline: a tied group worse than greedy still learns
    assert zero.tolist() == [False] * 3 + [True] * 3 + [False] * 3
    assert st["n_zero_std_groups"].item() == 1
    adv, _, _ = group_advantages(r, 3, "group", eps=0.0, baseline=b)
    s1, s3 = statistics.stdev([1, 2, 3, 2]), statistics.stdev([4, 4, 4, 5])  # the baseline joins its group's std
    assert torch.allclose(adv, torch.tensor([-1 / s1, 0.0, 1 / s1, 0.0, 0.0, 0.0, -1 / s3, -1 / s3, -1 / s3]))
    adv, _, _ = group_advantages(r, 3, "batch", eps=0.0, baseline=b)
    s = statistics.stdev(r.tolist())  # batch scale: the samples' spread only, as without a baseline
    assert torch.allclose(adv, torch.tensor([-1.0, 0.0, 1.0, 0.0, 0.0, 0.0, -1.0, -1.0, -1.0]) / s)
    with pytest.raises(AssertionError, match="baseline has 2 rewards for 3 groups"):
        group_advantages(r, 3, baseline=b[:2])


def test_group_advantages_rejects_partial_groups():
    with pytest.raises(AssertionError, match="whole number of groups"):
        group_advantages(torch.zeros(7), 3)


# ------------------------------------------------------------------------------------------ KL
def test_kl_values_and_gradient():
    logp = torch.tensor([-1.0, -2.0, -0.5], requires_grad=True)
    ref = torch.tensor([-1.5, -1.0, -0.5])
    k3 = kl_penalty(logp, ref, "k3")
    d = [-0.5, 1.0, 0.0]
    assert torch.allclose(k3, torch.tensor([math.exp(x) - x - 1 for x in d]))
    assert torch.allclose(kl_penalty(logp, ref, "k1"), torch.tensor([0.5, -1.0, 0.0]))
    assert torch.allclose(kl_penalty(logp, ref, "k2"), torch.tensor([0.125, 0.5, 0.0]))
    k3.sum().backward()
    closed = 1.0 - torch.exp(ref - logp.detach())  # d/dlogp [exp(ref-logp) - (ref-logp) - 1]
    assert torch.allclose(logp.grad, closed)
    lp2 = logp.detach().clone().requires_grad_(True)
    (torch.exp(ref - lp2) - (ref - lp2) - 1).sum().backward()  # autograd of the written formula
    assert torch.allclose(logp.grad, lp2.grad)


def test_k3_expectation_is_the_exact_kl():
    p = torch.softmax(torch.tensor([0.3, -1.0, 2.0, 0.0], dtype=torch.float64), 0)
    q = torch.softmax(torch.tensor([1.0, 0.5, -0.5, 0.2], dtype=torch.float64), 0)
    exact = (p * (p.log() - q.log())).sum()
    assert torch.allclose((p * kl_penalty(p.log(), q.log(), "k3")).sum(), exact)  # E_p[k3] = KL(p||q)
    assert torch.allclose((p * kl_penalty(p.log(), q.log(), "k1")).sum(), exact)  # k1 unbiased too


# ------------------------------------------------------------------------------------------ clipping
def _ratios_case(ratios, adv_sign, **kw):
    old = torch.full((1, len(ratios)), -1.0)
    logp = (old + torch.log(torch.tensor([ratios]))).requires_grad_(True)
    adv = torch.tensor([float(adv_sign)])
    loss, st = grpo_loss(logp, old, adv, torch.ones_like(old), cfg=cfg(**kw))
    loss.backward()
    return loss, st, logp.grad[0]


def test_clip_positive_advantage_above_1_plus_eps_high():
    ratios = [0.5, 0.9, 1.0, 1.25, 1.3, 1.5]
    loss, st, g = _ratios_case(ratios, +1, epsilon_low=0.2, epsilon_high=0.28)
    clipped = [r > 1.28 for r in ratios]
    for r, c, gi in zip(ratios, clipped, g.tolist()):
        assert gi == pytest.approx(0.0 if c else -r / len(ratios)), (r, gi)  # d(-r*A/n)/dlogp = -r*A/n
    want = sum(-(min(r, 1.28)) for r in ratios) / len(ratios)
    assert loss.item() == pytest.approx(want)
    assert st["clip_frac_high"].item() == pytest.approx(2 / 6) and st["clip_frac_low"].item() == 0.0


def test_clip_negative_advantage_below_1_minus_eps_low():
    ratios = [0.5, 0.7, 0.9, 1.0, 1.5]
    loss, st, g = _ratios_case(ratios, -1, epsilon_low=0.2, epsilon_high=0.28)
    for r, gi in zip(ratios, g.tolist()):
        assert gi == pytest.approx(0.0 if r < 0.8 else r / len(ratios)), (r, gi)
    assert loss.item() == pytest.approx(sum(max(r, 0.8) for r in ratios) / len(ratios))
    assert st["clip_frac_low"].item() == pytest.approx(2 / 5) and st["clip_frac_high"].item() == 0.0
    assert st["clip_frac"].item() == pytest.approx(2 / 5)


# ------------------------------------------------------------------------------------------ aggregation
def slow_reference(logp, old, adv, mask, ref, c, truncated, zero_std):
    """Token-by-token Python loop of the GRPO objective, independent of the vectorised code."""
    n, length = len(logp), len(logp[0])
    rows = []
    for i in range(n):
        excluded = (c.mask_truncated_completions and truncated[i]) or (c.skip_zero_std_groups and zero_std[i])
        toks = []
        for t in range(length):
            if mask[i][t] == 0 or excluded:
                continue
            ratio = math.exp(logp[i][t] - old[i][t])
            a = adv[i]
            pg = -min(ratio * a, min(max(ratio, 1 - c.epsilon_low), 1 + c.epsilon_high) * a)
            d = ref[i][t] - logp[i][t]
            toks.append(pg + c.beta * (math.exp(d) - d - 1))
        rows.append(toks)
    if c.loss_aggregation == "token-mean":
        tot = sum(len(r) for r in rows)
        return sum(sum(r) for r in rows) / max(tot, 1)
    if c.loss_aggregation == "seq-mean-token-mean":
        means = [sum(r) / len(r) for r in rows if r]
        return sum(means) / max(len(means), 1)
    return sum(sum(r) for r in rows) / (n * c.max_new_tokens)


@pytest.mark.parametrize("agg", ["token-mean", "seq-mean-token-mean", "dr-grpo"])
@pytest.mark.parametrize("skip,mask_trunc", [(False, False), (True, True)])
def test_aggregation_matches_slow_reference(agg, skip, mask_trunc):
    g = torch.Generator().manual_seed(0)
    n, length = 6, 5
    logp = -torch.rand(n, length, generator=g, dtype=torch.float64) * 2
    old = logp + 0.3 * torch.randn(n, length, generator=g, dtype=torch.float64)
    ref = logp + 0.5 * torch.randn(n, length, generator=g, dtype=torch.float64)
    lens = [5, 3, 1, 4, 2, 5]
    mask = torch.tensor([[1] * k + [0] * (length - k) for k in lens], dtype=torch.float64)
    adv = torch.tensor([1.0, -0.5, 2.0, 0.0, 0.0, -1.5], dtype=torch.float64)
    truncated = torch.tensor([True, False, False, False, False, True])
    zero_std = torch.tensor([False, False, False, False, True, True])
    c = cfg(loss_aggregation=agg, beta=0.1, skip_zero_std_groups=skip, mask_truncated_completions=mask_trunc)
    lp = logp.clone().requires_grad_(True)
    loss, st = grpo_loss(lp, old, adv, mask, ref, cfg=c, truncated=truncated, zero_std_mask=zero_std)
    want = slow_reference(logp.tolist(), old.tolist(), adv.tolist(), mask.tolist(), ref.tolist(), c,
                          truncated.tolist(), zero_std.tolist())
    assert loss.item() == pytest.approx(want, rel=1e-10)
    loss.backward()
    assert torch.isfinite(lp.grad).all() and (lp.grad[mask == 0] == 0).all()
    kept = [i for i in range(n) if not ((skip and zero_std[i]) or (mask_trunc and truncated[i]))]
    assert st["n_tokens"].item() == sum(lens[i] for i in kept)


def test_length_bias_of_token_mean_vs_seq_mean():
    # one short sequence (1 token) with A = +1 and one long (3 tokens) with A = -1, on-policy
    logp = torch.zeros(2, 3)
    mask = torch.tensor([[1.0, 0, 0], [1, 1, 1]])
    adv = torch.tensor([1.0, -1.0])
    tm, _ = grpo_loss(logp, None, adv, mask, cfg=cfg(loss_aggregation="token-mean"))
    sm, _ = grpo_loss(logp, None, adv, mask, cfg=cfg(loss_aggregation="seq-mean-token-mean"))
    dr, _ = grpo_loss(logp, None, adv, mask, cfg=cfg(loss_aggregation="dr-grpo", max_new_tokens=4))
    assert tm.item() == pytest.approx((-1 + 3) / 4)
    assert sm.item() == pytest.approx((-1 + 1) / 2)
    assert dr.item() == pytest.approx((-1 + 3) / (2 * 4))


def test_dr_grpo_rejects_completions_longer_than_its_normaliser():
    with pytest.raises(ValueError, match="max_new_tokens=8"):
        grpo_loss(torch.zeros(2, 9), None, torch.zeros(2), torch.ones(2, 9), cfg=cfg(loss_aggregation="dr-grpo"))


def test_truncated_completions_masked_only_when_configured():
    logp = torch.tensor([[-1.0, -2.0], [-0.5, -0.1]])
    adv = torch.tensor([1.0, -1.0])
    mask = torch.ones(2, 2)
    trunc = torch.tensor([False, True])
    on, st = grpo_loss(logp, None, adv, mask, cfg=cfg(mask_truncated_completions=True), truncated=trunc)
    only_first, _ = grpo_loss(logp[:1], None, adv[:1], mask[:1], cfg=cfg())
    off, _ = grpo_loss(logp, None, adv, mask, cfg=cfg(mask_truncated_completions=False), truncated=trunc)
    assert on.item() == pytest.approx(only_first.item()) == pytest.approx(-1.0)
    assert off.item() == pytest.approx(0.0)  # (-1 -1 +1 +1) / 4
    assert st["frac_excluded"].item() == 0.5 and st["frac_truncated"].item() == 0.5


def test_all_zero_std_batch_gives_finite_zero_loss_with_graph():
    rewards = torch.tensor([0.5, 0.5, 1.0, 1.0])
    adv, zero, _ = group_advantages(rewards, 2)
    logp = torch.tensor([[-1.0, float("-inf")], [-2.0, -3.0], [-0.1, float("nan")], [-1.0, -1.0]], requires_grad=True)
    mask = torch.tensor([[1.0, 0], [1, 1], [1, 0], [1, 1]])
    ref = torch.full((4, 2), -1.0)
    for skip in (True, False):
        loss, st = grpo_loss(logp, None, adv, mask, ref, cfg=cfg(beta=0.1 * skip, skip_zero_std_groups=skip),
                             zero_std_mask=zero)
        assert loss.requires_grad and torch.isfinite(loss)
        if skip:
            assert loss.item() == 0.0 and st["n_tokens"].item() == 0 and st["frac_zero_std"].item() == 1.0
        (grad,) = torch.autograd.grad(loss, logp)
        assert torch.isfinite(grad).all()
        if skip:
            assert (grad == 0).all()


def test_on_policy_ratio_is_one_but_gradient_flows():
    logp = torch.tensor([[-1.0, -2.0, -0.7]], requires_grad=True)
    ent = torch.tensor([[0.5, 1.0, 1.5]])
    loss, st = grpo_loss(logp, None, torch.tensor([2.0]), torch.ones(1, 3), cfg=cfg(), entropy=ent)
    assert st["ratio_mean"].item() == 1.0 and st["approx_kl"].item() == 0.0 and st["entropy"].item() == 1.0
    loss.backward()
    assert torch.allclose(logp.grad, torch.full((1, 3), -2.0 / 3))  # REINFORCE: -A grad(logp) / n_tokens


def test_num_iterations_reuses_rollout_and_ratio_moves():
    torch.manual_seed(0)
    theta = torch.zeros(4, 5, requires_grad=True)  # logits per position
    ids = torch.tensor([[3, 3, 1, 0], [2, 4, 4, 1]])
    adv = torch.tensor([1.0, -1.0])
    c = cfg(num_iterations=3, epsilon_low=0.2, epsilon_high=0.2)
    opt = torch.optim.SGD([theta], lr=1.0)
    old = selective_log_softmax(theta.detach().expand(2, 4, 5), ids)
    ratios = []
    for _ in range(c.num_iterations):
        logp = selective_log_softmax(theta.expand(2, 4, 5), ids)
        loss, st = grpo_loss(logp, old, adv, torch.ones(2, 4), cfg=c)
        ratios.append(st)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert ratios[0]["ratio_mean"].item() == 1.0
    assert ratios[1]["ratio_mean"].item() != 1.0 and ratios[1]["approx_kl"].item() > 0
    assert ratios[2]["approx_kl"].item() > ratios[1]["approx_kl"].item() > 0


def test_missing_reference_with_beta_is_an_error():
    with pytest.raises(ValueError, match="needs ref_logp"):
        grpo_loss(torch.zeros(2, 2), None, torch.zeros(2), torch.ones(2, 2), cfg=cfg(beta=0.1))


# ------------------------------------------------------------------------------------------ log-probs
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-6), (torch.float64, 1e-12), (torch.bfloat16, 2e-2)])
def test_selective_log_softmax_and_entropy(dtype, tol):
    g = torch.Generator().manual_seed(1)
    logits = (3 * torch.randn(3, 7, 11, generator=g)).to(dtype)
    ids = torch.randint(0, 11, (3, 7), generator=g)
    want = torch.log_softmax(logits.double(), -1).gather(-1, ids[..., None]).squeeze(-1)
    got = selective_log_softmax(logits, ids, chunk_rows=1)
    assert got.shape == (3, 7) and torch.allclose(got.double(), want, atol=tol, rtol=tol)
    p = torch.softmax(logits.double(), -1)
    h = -(p * torch.log_softmax(logits.double(), -1)).sum(-1)
    assert torch.allclose(token_entropy(logits, chunk_rows=2).double(), h, atol=tol, rtol=tol)


def test_entropy_with_masked_logits_is_finite():
    logits = torch.tensor([[0.0, 0.0, float("-inf"), float("-inf")]])
    assert torch.allclose(token_entropy(logits), torch.tensor([math.log(2)]))


# ------------------------------------------------------------------------------------------ config
def test_config_validation_and_reference_flag():
    assert GRPOConfig().needs_reference and not GRPOConfig(beta=0.0).needs_reference
    for bad, msg in [({"num_generations": 1}, "num_generations=1"), ({"epsilon_low": 1.0}, "epsilon_low=1.0"),
                     ({"scale_rewards": "std"}, "scale_rewards='std'"), ({"beta": -1.0}, "beta=-1.0"),
                     ({"loss_aggregation": "mean"}, "loss_aggregation='mean'"), ({"top_p": 0.0}, "top_p=0.0")]:
        with pytest.raises(ValueError, match=msg):
            GRPOConfig(**bad)


# ------------------------------------------------------------------------------------------ toy GRPO
def test_toy_grpo_raises_reward():
    """A position-wise logits table over a vocab of 5, sequences of 4; reward = fraction of tokens == 3."""
    torch.manual_seed(0)
    B, G, L, V = 4, 8, 4, 5
    c = GRPOConfig(num_generations=G, beta=0.04, num_iterations=2, max_new_tokens=L)
    theta = torch.zeros(L, V, requires_grad=True)
    ref_theta = theta.detach().clone()
    opt = torch.optim.Adam([theta], lr=0.05)
    mask = torch.ones(B * G, L)
    history = []
    for _ in range(50):
        with torch.no_grad():
            ids = torch.distributions.Categorical(logits=theta.expand(B * G, L, V)).sample()  # (N, L)
            old = selective_log_softmax(theta.expand(B * G, L, V), ids)
            ref = selective_log_softmax(ref_theta.expand(B * G, L, V), ids)
        rewards = (ids == 3).float().mean(1)  # (N,)
        history.append(rewards.mean().item())
        adv, zero, _ = group_advantages(rewards, G, c.scale_rewards, c.advantage_eps)
        for _ in range(c.num_iterations):
            logp = selective_log_softmax(theta.expand(B * G, L, V), ids)
            loss, st = grpo_loss(logp, old, adv, mask, ref, cfg=c, zero_std_mask=zero)
            opt.zero_grad()
            loss.backward()
            opt.step()
        assert torch.isfinite(loss)
    assert sum(history[:5]) / 5 < 0.35
    assert sum(history[-5:]) / 5 > 0.8, history[-5:]
