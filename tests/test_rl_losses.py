"""GRPO loss pieces: hand-derived values, a slow per-token loop reference, and properties
(clipping gradients, masking, micro-batch invariance, the policy-gradient limit)."""

import math

import pytest
import torch

from r1.rl import (
    KL_ESTIMATORS,
    LOSS_AGGREGATIONS,
    aggregate,
    clipped_surrogate,
    combine_metrics,
    group_advantages,
    grpo_loss,
    kl_divergence,
    kl_reward_penalty,
)

AGGS = sorted(LOSS_AGGREGATIONS)
LN2 = math.log(2)


def lengths_mask(lengths, T, dtype=torch.float32):
    """(B, T) mask from lengths, as the trainer builds it."""
    return (torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]).to(dtype)


# --- KL ---------------------------------------------------------------------------------


def test_kl_hand_values():
    # logp = log 0.5, ref = log 0.25: log ratio log π/π_ref = log 2
    # k1 = log 2 = 0.693147; k2 = ½ (log 2)² = 0.240227; k3 = π_ref/π - log(π_ref/π) - 1 = 0.5 + log 2 - 1
    logp, ref = torch.tensor([math.log(0.5)]), torch.tensor([math.log(0.25)])
    expected = {"k1": LN2, "k2": 0.5 * LN2**2, "k3": 0.5 + LN2 - 1}
    for name, value in expected.items():
        torch.testing.assert_close(kl_divergence(logp, ref, name), torch.tensor([value]), atol=1e-7, rtol=0)
    with pytest.raises(ValueError, match="unknown KL estimator"):
        kl_divergence(logp, ref, "k4")


def test_k3_nonnegative_zero_at_equality_and_finite():
    torch.manual_seed(0)
    logp = (2 * torch.randn(1000)).requires_grad_()  # |ref - logp| stays well inside the ±20 clamp
    ref = 2 * torch.randn(1000)
    k3 = kl_divergence(logp, ref, "k3")
    assert (k3 >= 0).all()
    # gradient d/dlogp [e^(ref-logp) - (ref-logp) - 1] = 1 - e^(ref-logp)
    (g,) = torch.autograd.grad(k3.sum(), logp)
    torch.testing.assert_close(g, 1 - torch.exp(ref - logp.detach()), atol=1e-6, rtol=1e-5)
    assert (kl_divergence(ref, ref, "k3") == 0).all()
    # a log ratio of 1e4 would overflow exp: clamped at 20
    huge = kl_divergence(torch.tensor([-1e4, 1e4]), torch.tensor([0.0, 0.0]), "k3")
    torch.testing.assert_close(huge, torch.tensor([math.exp(20) - 21, math.exp(-20) + 19]))


def test_kl_reward_penalty_hand_value_and_masking():
    # k1, β = 0.1: tokens (-1 vs -2) → 1, (-2 vs -2) → 0, third token masked (garbage inf/nan)
    logp_old = torch.tensor([[-1.0, -2.0, float("inf")], [-3.0, 0.0, 0.0]])
    ref = torch.tensor([[-2.0, -2.0, float("nan")], [-1.0, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]]).bool()
    out = kl_reward_penalty(logp_old, ref, mask, beta=0.1, estimator="k1")
    torch.testing.assert_close(out, torch.tensor([0.1, -0.2]))
    # k3 row 2: d = ref - logp = 2 → e² - 3 = 4.389056
    out3 = kl_reward_penalty(logp_old, ref, mask.float(), beta=1.0, estimator="k3")
    torch.testing.assert_close(out3[1], torch.tensor(math.exp(2) - 3))
    assert not out.requires_grad


# --- clipped surrogate --------------------------------------------------------------------


def surrogate_grad(ratio, adv, **kw):
    logp = torch.tensor([[math.log(ratio)]], dtype=torch.float64, requires_grad=True)
    loss, flags = clipped_surrogate(logp, torch.zeros(1, 1, dtype=torch.float64), torch.tensor([adv]), **kw)
    (g,) = torch.autograd.grad(loss.sum(), logp)
    return loss.item(), g.item(), {k: v.item() for k, v in flags.items()}


def test_surrogate_hand_values_and_clip_gradients():
    kw = dict(clip_low=0.2, clip_high=0.28)
    # inside the trust region: loss = -ρA, d/dlogp = -ρA (dρ/dlogp = ρ)
    assert surrogate_grad(1.1, 2.0, **kw)[:2] == pytest.approx((-2.2, -2.2), abs=1e-12)
    # A > 0, ρ = 1.5 > 1.28: loss = -1.28 A, gradient exactly 0, flagged clip_high
    loss, g, f = surrogate_grad(1.5, 1.0, **kw)
    assert loss == pytest.approx(-1.28) and g == 0.0 and f == {"clip_low": False, "clip_high": True, "clip_dual": False}
    # A < 0, ρ = 0.5 < 0.8: loss = -0.8 A = 0.8, gradient exactly 0, flagged clip_low
    loss, g, f = surrogate_grad(0.5, -1.0, **kw)
    assert loss == pytest.approx(0.8) and g == 0.0 and f == {"clip_low": True, "clip_high": False, "clip_dual": False}
    # pessimism: A > 0, ρ = 0.5 is NOT clipped (min picks ρA), gradient -ρA = -0.5
    loss, g, f = surrogate_grad(0.5, 1.0, **kw)
    assert (loss, g) == pytest.approx((-0.5, -0.5)) and not any(f.values())
    # A < 0, ρ = 5 (no dual clip): loss = -ρA = 5, gradient -ρA = 5
    assert surrogate_grad(5.0, -1.0, **kw)[:2] == pytest.approx((5.0, 5.0))


def test_dual_clip():
    kw = dict(clip_low=0.2, clip_high=0.2, dual_clip=3.0)
    # A = -1, ρ = 5: min(-ρA, -cA) = min(5, 3) = 3, gradient 0, flagged clip_dual
    loss, g, f = surrogate_grad(5.0, -1.0, **kw)
    assert loss == pytest.approx(3.0) and g == 0.0 and f["clip_dual"]
    # A = -1, ρ = 2 < c: unaffected, loss 2, gradient 2
    assert surrogate_grad(2.0, -1.0, **kw)[:2] == pytest.approx((2.0, 2.0))
    # A > 0 is never dual-clipped
    assert surrogate_grad(5.0, 1.0, **kw)[:2] == pytest.approx((-1.2, 0.0))
    # the bound: for A < 0 the loss never exceeds c·|A|
    torch.manual_seed(0)
    logp = 4 * torch.randn(8, 16)
    adv = -torch.rand(8)
    loss, _ = clipped_surrogate(logp, torch.zeros(8, 16), adv, clip_low=0.2, clip_high=0.2, dual_clip=3.0)
    assert (loss <= 3.0 * adv.abs()[:, None] + 1e-6).all()
    loss_nodual, _ = clipped_surrogate(logp, torch.zeros(8, 16), adv, clip_low=0.2, clip_high=0.2)
    assert (loss_nodual > 3.0 * adv.abs()[:, None]).any()  # the bound was active somewhere
    with pytest.raises(ValueError):
        clipped_surrogate(logp, logp, adv, clip_low=0.2, clip_high=0.2, dual_clip=1.0)


# --- aggregations -------------------------------------------------------------------------


def test_aggregation_hand_values():
    x = torch.tensor([[1.0, 3.0], [5.0, 0.0], [7.0, 9.0]])
    mask = torch.tensor([[1, 1], [1, 0], [0, 0]])  # third sequence fully masked
    # seq-mean-token-mean: (mean(1, 3) + mean(5) + 0) / 3 = (2 + 5) / 3
    torch.testing.assert_close(aggregate(x, mask), torch.tensor(7 / 3))
    # token-mean: (1 + 3 + 5) / 3 tokens
    torch.testing.assert_close(aggregate(x, mask, aggregation="token-mean"), torch.tensor(3.0))
    # seq-mean-token-sum-norm: (1 + 3 + 5) / (3 seqs · max_len 4)
    torch.testing.assert_close(
        aggregate(x, mask, aggregation="seq-mean-token-sum-norm", max_len=4), torch.tensor(9 / 12)
    )
    # global normalizers: this micro-batch's share of a batch of 6 seqs / 10 tokens
    torch.testing.assert_close(aggregate(x, mask, total_seqs=6), torch.tensor(7 / 6))
    torch.testing.assert_close(aggregate(x, mask, aggregation="token-mean", total_tokens=10), torch.tensor(0.9))
    with pytest.raises(ValueError, match="max_len"):
        aggregate(x, mask, aggregation="seq-mean-token-sum-norm")
    with pytest.raises(ValueError, match="unknown aggregation"):
        aggregate(x, mask, aggregation="sum")


@pytest.mark.parametrize("aggregation", AGGS)
def test_all_masked_is_zero_not_nan(aggregation):
    x = torch.full((2, 3), float("nan"), requires_grad=True)
    out = aggregate(x, torch.zeros(2, 3), aggregation=aggregation, max_len=3)
    assert out.item() == 0.0
    out.backward()
    assert (x.grad == 0).all()


# --- grpo_loss: loop reference ----------------------------------------------------------


def reference_grpo_loss(logp, old, adv, lengths, ref, ent, *, beta, est, cl, ch, dual, coef, agg, max_len):
    """Token by token in python floats."""
    B = len(logp)
    seq_terms, total, n_tok = [], 0.0, 0
    for i in range(B):
        s = 0.0
        for t in range(lengths[i]):
            log_ratio = min(max(logp[i][t] - old[i][t], -20.0), 20.0)
            rho = math.exp(log_ratio)
            tok = -min(rho * adv[i], min(max(rho, 1 - cl), 1 + ch) * adv[i])
            if dual is not None and adv[i] < 0:
                tok = min(tok, -dual * adv[i])
            if beta > 0:
                lr = logp[i][t] - ref[i][t]
                d = min(max(-lr, -20.0), 20.0)
                tok += beta * {"k1": lr, "k2": 0.5 * lr * lr, "k3": math.exp(d) - d - 1}[est]
            tok -= coef * ent[i][t]
            s += tok
        seq_terms.append(s / lengths[i] if lengths[i] else 0.0)
        total += s
        n_tok += lengths[i]
    if agg == "seq-mean-token-mean":
        return sum(seq_terms) / B
    if agg == "token-mean":
        return total / max(n_tok, 1)
    return total / (B * max_len)


def random_batch(B, T, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(0, T + 1, (B,), generator=g).tolist()
    logp = -torch.rand(B, T, generator=g, dtype=dtype) * 3
    old = logp + 0.4 * torch.randn(B, T, generator=g, dtype=dtype)  # ratios spread over both clips
    ref = logp + 0.5 * torch.randn(B, T, generator=g, dtype=dtype)
    ent = torch.rand(B, T, generator=g, dtype=dtype)
    adv = torch.randn(B, generator=g, dtype=dtype)
    return logp, old, adv, lengths, ref, ent


CONFIGS = [
    dict(beta=0.0, est="k3", cl=0.2, ch=0.2, dual=None, coef=0.0),
    dict(beta=0.04, est="k3", cl=0.2, ch=0.28, dual=None, coef=0.0),
    dict(beta=0.1, est="k1", cl=0.1, ch=0.3, dual=3.0, coef=0.01),
    dict(beta=0.1, est="k2", cl=0.2, ch=0.2, dual=1.5, coef=0.0),
]


@pytest.mark.parametrize("aggregation", AGGS)
@pytest.mark.parametrize("cfg", CONFIGS)
@pytest.mark.parametrize("shape", [(1, 1), (1, 6), (5, 1), (6, 9)])
def test_grpo_loss_matches_loop_reference(aggregation, cfg, shape):
    B, T = shape
    for seed in range(3):
        logp, old, adv, lengths, ref, ent = random_batch(B, T, seed)
        if seed == 1:
            lengths[0] = 0  # an all-masked row
        mask = lengths_mask(lengths, T, dtype=torch.bool if seed % 2 else torch.float32)
        loss, _ = grpo_loss(
            logp,
            old,
            adv,
            mask,
            ref_logp=ref,
            beta=cfg["beta"],
            kl_estimator=cfg["est"],
            clip_low=cfg["cl"],
            clip_high=cfg["ch"],
            dual_clip=cfg["dual"],
            aggregation=aggregation,
            max_len=T + 2,
            entropy=ent,
            entropy_coef=cfg["coef"],
        )
        expected = reference_grpo_loss(
            logp.tolist(),
            old.tolist(),
            adv.tolist(),
            lengths,
            ref.tolist(),
            ent.tolist(),
            agg=aggregation,
            max_len=T + 2,
            **cfg,
        )
        assert loss.item() == pytest.approx(expected, abs=1e-12)


# --- grpo_loss: properties ----------------------------------------------------------------


@pytest.mark.parametrize("aggregation", AGGS)
def test_micro_batches_sum_to_full_batch_loss_gradient_and_metrics(aggregation):
    B, T = 8, 7
    logp, old, adv, lengths, ref, ent = random_batch(B, T, seed=3)
    lengths[2] = 0
    mask = lengths_mask(lengths, T)
    kw = dict(
        ref_logp=ref,
        beta=0.05,
        clip_low=0.2,
        clip_high=0.28,
        dual_clip=3.0,
        aggregation=aggregation,
        max_len=T,
        entropy_coef=0.01,
    )

    logp_full = logp.clone().requires_grad_()
    ent_full = ent.clone().requires_grad_()
    full, full_metrics = grpo_loss(logp_full, old, adv, mask, entropy=ent_full, **kw)
    full.backward()

    logp_mb = logp.clone().requires_grad_()
    ent_mb = ent.clone().requires_grad_()
    total, parts = 0.0, []
    for sl in [slice(0, 3), slice(3, 4), slice(4, 8)]:  # uneven split
        part, metrics = grpo_loss(
            logp_mb[sl],
            old[sl],
            adv[sl],
            mask[sl],
            **{**kw, "ref_logp": ref[sl]},
            entropy=ent_mb[sl],
            total_seqs=B,
            total_tokens=mask.sum().item(),
        )
        part.backward()  # gradient accumulation
        total = total + part.detach()
        parts.append(metrics)

    torch.testing.assert_close(total, full.detach(), atol=1e-12, rtol=0)
    torch.testing.assert_close(logp_mb.grad, logp_full.grad, atol=1e-12, rtol=0)
    torch.testing.assert_close(ent_mb.grad, ent_full.grad, atol=1e-12, rtol=0)
    combined = combine_metrics(parts)
    assert set(combined) == set(full_metrics)
    for key in full_metrics:
        torch.testing.assert_close(combined[key], full_metrics[key], atol=1e-6, rtol=0)


@pytest.mark.parametrize("aggregation", AGGS)
def test_ratio_one_gradient_is_policy_gradient(aggregation):
    # with old = logp (detached), ρ = 1 in value and ∂ρ/∂logp = 1, so
    # ∂loss/∂logp_{i,t} = -A_i · w_{i,t} with the aggregation weight w.
    B, T = 4, 5
    lengths = [5, 2, 0, 3]
    mask = lengths_mask(lengths, T, dtype=torch.float64)  # float64 so the expected weights are exact
    logp = (-torch.rand(B, T, dtype=torch.float64)).requires_grad_()
    adv = torch.tensor([1.5, -0.5, 2.0, -1.0], dtype=torch.float64)
    loss, metrics = grpo_loss(logp, logp.detach(), adv, mask, aggregation=aggregation, max_len=10)
    (g,) = torch.autograd.grad(loss, logp)
    n = torch.tensor(lengths, dtype=torch.float64)[:, None]
    weight = {
        "seq-mean-token-mean": mask / (n.clamp(min=1) * B),  # 1 / (|o_i| · B)
        "token-mean": mask / mask.sum(),  # 1 / N_tokens
        "seq-mean-token-sum-norm": mask / (B * 10),  # 1 / (B · L_max)
    }[aggregation]
    torch.testing.assert_close(g, -adv[:, None] * weight, atol=1e-15, rtol=0)
    assert metrics["ratio"].item() == 1.0 and metrics["clip_high"].item() == 0.0
    # π_old and π_ref are constants even when handed over with a graph attached
    # (k1 = logp - ref_logp adds β · w to the gradient when ref_logp is a constant, 0 if not)
    loss2, _ = grpo_loss(
        logp, logp, adv, mask, ref_logp=logp, beta=0.5, kl_estimator="k1", aggregation=aggregation, max_len=10
    )
    (g2,) = torch.autograd.grad(loss2, logp)
    torch.testing.assert_close(g2, g + 0.5 * weight, atol=1e-15, rtol=0)


def test_equal_rewards_give_exactly_zero_gradient():
    rewards = torch.tensor([[0.3, 0.3, 0.3, 0.3], [1.0, 1.0, 1.0, 1.0]])
    adv = group_advantages(rewards).flatten()  # (8,) all exactly 0
    logp = (-torch.rand(8, 6)).requires_grad_()
    old = logp.detach() + 0.3 * torch.randn(8, 6)
    for aggregation in AGGS:
        loss, _ = grpo_loss(logp, old, adv, torch.ones(8, 6), aggregation=aggregation, max_len=6)
        (g,) = torch.autograd.grad(loss, logp)
        assert (g == 0).all() and loss.item() == 0.0


@pytest.mark.parametrize("garbage", [(1e30, -float("inf")), (float("nan"), float("nan")), (-float("inf"), 1e30)])
@pytest.mark.parametrize("estimator", sorted(KL_ESTIMATORS))
@pytest.mark.parametrize("aggregation", AGGS)
def test_masked_garbage_gets_exactly_zero_gradient(aggregation, garbage, estimator):
    B, T = 4, 6
    logp, old, adv, _, ref, ent = random_batch(B, T, seed=5)
    lengths = [6, 3, 0, 1]
    mask = lengths_mask(lengths, T)
    pad = mask == 0
    dirty = lambda x, v: torch.where(pad, torch.full_like(x, v), x)  # noqa: E731
    kw = dict(beta=0.1, kl_estimator=estimator, dual_clip=2.0, aggregation=aggregation, max_len=T, entropy_coef=0.01)

    clean_logp = logp.clone().requires_grad_()
    clean, _ = grpo_loss(clean_logp, old, adv, mask, ref_logp=ref, entropy=ent, **kw)
    clean.backward()

    garbage_logp = dirty(logp, garbage[0]).requires_grad_()
    garbage_ent = dirty(ent, float("nan")).requires_grad_()
    loss, metrics = grpo_loss(
        garbage_logp,
        dirty(old, garbage[1]),
        adv,
        mask,
        ref_logp=dirty(ref, float("nan")),
        entropy=garbage_ent,
        **kw,
    )
    loss.backward()
    assert torch.isfinite(loss) and loss.item() == clean.item()
    assert (garbage_logp.grad[pad] == 0).all() and (garbage_ent.grad[pad] == 0).all()
    assert torch.equal(garbage_logp.grad, clean_logp.grad)
    assert all(torch.isfinite(v) for v in metrics.values())


def test_metrics_hand_values():
    # one sequence, A = 1, ratios [1.5, 1.0, 0.5 (masked)] with ε = 0.2:
    # token 0 clipped high; policy_loss = mean(-1.2, -1.0) = -1.1; ratio mean 1.25, max 1.5
    logp = torch.log(torch.tensor([[1.5, 1.0, 0.5]]))
    ref = torch.log(torch.tensor([[0.5, 1.0, 1.0]]))  # k3 on token 0: e^{log(1/3)} - log(1/3) - 1
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    _, m = grpo_loss(logp, torch.zeros(1, 3), torch.tensor([1.0]), mask, ref_logp=ref)
    k3 = 1 / 3 + math.log(3) - 1
    expected = {
        "tokens": 2,
        "policy_loss": -1.1,
        "policy_loss_sum": -2.2,
        "ratio": 1.25,
        "ratio_max": 1.5,
        "clip_high": 0.5,
        "clip_low": 0.0,
        "clip_dual": 0.0,
        "kl": k3 / 2,
        "kl_sum": k3,
    }
    for key, value in expected.items():
        assert m[key].item() == pytest.approx(value, abs=1e-6), key
    assert "entropy" not in m and all(not v.requires_grad for v in m.values())


def test_grpo_loss_argument_errors():
    x, mask, adv = torch.zeros(2, 3), torch.ones(2, 3), torch.zeros(2)
    with pytest.raises(ValueError, match="ref_logp"):
        grpo_loss(x, x, adv, mask, beta=0.1)
    with pytest.raises(ValueError, match="entropy"):
        grpo_loss(x, x, adv, mask, entropy_coef=0.1)
    with pytest.raises(ValueError, match="max_len"):
        grpo_loss(x, x, adv, mask, aggregation="seq-mean-token-sum-norm")
    assert set(KL_ESTIMATORS) == {"k1", "k2", "k3"}
