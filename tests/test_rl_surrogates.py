"""Policy losses (GRPO, GSPO, CISPO, SAPO, GMPO) and grpo_loss's policy_loss / token_weights / keep:
hand-derived values, a slow per-token loop reference, sequence-level autograd references, properties."""

import math

import pytest
import torch

from r1.rl import POLICY_LOSSES, clipped_surrogate, grpo_loss

NAMES = sorted(POLICY_LOSSES)
F64 = torch.float64
AGGS = ["seq-mean-token-mean", "token-mean", "seq-mean-token-sum-norm"]


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


def lengths_mask(lengths, T):
    return torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]


def call(name, log_ratios, adv, **kw):
    """One sequence with the given token log-ratios (old = 0): per-token loss, own gradients, flags."""
    logp = torch.tensor([log_ratios], dtype=F64, requires_grad=True)
    mask = torch.ones_like(logp, dtype=torch.bool)
    kw = {"clip_low": 0.2, "clip_high": 0.2, **kw}
    loss, flags = POLICY_LOSSES[name](logp, torch.zeros_like(logp), torch.tensor([adv], dtype=F64), mask, **kw)
    (g,) = torch.autograd.grad(loss.sum(), logp)  # token form: Σ_t loss_t has gradient = each token's own
    return loss[0].tolist(), g[0].tolist(), {k: v[0].tolist() for k, v in flags.items()}


# --- hand-derived values ------------------------------------------------------------------


def test_grpo_entry_is_clipped_surrogate():
    torch.manual_seed(0)
    logp, old, adv = -torch.rand(4, 6, dtype=F64), -torch.rand(4, 6, dtype=F64), torch.randn(4, dtype=F64)
    mask = torch.ones(4, 6, dtype=torch.bool)
    kw = dict(clip_low=0.1, clip_high=0.3, dual_clip=2.0)
    loss, flags = POLICY_LOSSES["grpo"](logp, old, adv, mask, **kw)
    ref_loss, ref_flags = clipped_surrogate(logp, old, adv, **kw)
    assert torch.equal(loss, ref_loss) and all(torch.equal(flags[k], ref_flags[k]) for k in ref_flags)


def test_gspo_hand_values():
    # log ρ = [0.1, -0.3] → mean -0.1 → s = e^-0.1 = 0.904837; ε = 0.05 → range [0.95, 1.05]
    s = math.exp(-0.1)
    # A = -1: -min(sA, clip(s)A) = max(s, 0.95) = 0.95 (s < 0.95 is clipped), gradient 0 on both tokens
    loss, g, f = call("gspo", [0.1, -0.3], -1.0, clip_low=0.05, clip_high=0.05)
    assert loss == pytest.approx([0.95, 0.95], abs=1e-15) and g == [0.0, 0.0]
    assert f == {"clip_low": [True, True], "clip_high": [False, False], "clip_dual": [False, False]}
    # A = +1: -min(s, 0.95) = -s, not clipped (pessimistic side); own gradient of each token -s
    loss, g, f = call("gspo", [0.1, -0.3], 1.0, clip_low=0.05, clip_high=0.05)
    assert loss == pytest.approx([-s, -s], abs=1e-15) and g == pytest.approx([-s, -s], abs=1e-15)
    assert not any(any(v) for v in f.values())
    # dual clip: A = -1, s = e^{1.5} = 4.48 > c = 3 → loss 3, gradient 0
    loss, g, f = call("gspo", [1.0, 2.0], -1.0, dual_clip=3.0)
    assert loss == pytest.approx([3.0, 3.0]) and g == [0.0, 0.0] and f["clip_dual"] == [True, True]


def test_cispo_hand_values_clipped_tokens_keep_a_gradient():
    kw = dict(clip_low=0.2, clip_high=0.28)
    # A = 1, ρ = 1.5 → w = 1.28: loss -1.28, gradient -1.28 (GRPO: 0)
    loss, g, f = call("cispo", [math.log(1.5)], 1.0, **kw)
    assert loss == pytest.approx([-1.28]) and g == pytest.approx([-1.28]) and f["clip_high"] == [True]
    # A = -1, ρ = 0.5 → w = 0.8: loss 0.8, gradient 0.8 (GRPO: 0)
    loss, g, f = call("cispo", [math.log(0.5)], -1.0, **kw)
    assert loss == pytest.approx([0.8]) and g == pytest.approx([0.8]) and f["clip_low"] == [True]
    # inside the range CISPO equals GRPO's -ρA in value and gradient: ρ = 1.1, A = 2 → -2.2
    loss, g, f = call("cispo", [math.log(1.1)], 2.0, **kw)
    assert loss == pytest.approx([-2.2]) and g == pytest.approx([-2.2]) and not any(any(v) for v in f.values())
    # the same clipped tokens under GRPO get exactly zero gradient
    assert call("grpo", [math.log(1.5)], 1.0, **kw)[1] == [0.0]
    assert call("grpo", [math.log(0.5)], -1.0, **kw)[1] == [0.0]


def test_sapo_hand_values():
    # ρ = 1: f = σ(0)·4/τ = 2/τ; gradient -A·ρ·4σ(1-σ) = -A·4·¼ = -A for either τ
    for adv, tau in [(1.0, 1.0), (-1.0, 1.05), (2.5, 1.0), (-0.5, 1.05)]:
        loss, g, f = call("sapo", [0.0], adv)
        assert loss == pytest.approx([-adv * 2 / tau], abs=1e-14) and g == pytest.approx([-adv], abs=1e-14)
        assert not any(any(v) for v in f.values())
    # ρ = 2, A = 1, τ_pos = 1: f = 4σ(1) = 2.924234, gradient -2·4σ(1)σ(-1) = -1.572895
    loss, g, _ = call("sapo", [math.log(2.0)], 1.0)
    assert loss == pytest.approx([-4 * sigmoid(1)], abs=1e-14)
    assert g == pytest.approx([-2 * 4 * sigmoid(1) * sigmoid(-1)], abs=1e-14)
    assert g[0] == pytest.approx(-1.572895, abs=1e-6)
    # ρ = 0.5, A = -1, τ_neg = 1.05: f = 4/1.05 σ(-0.525) = 1.415938; gradient 0.5·4σ(-0.525)σ(0.525)
    loss, g, _ = call("sapo", [math.log(0.5)], -1.0)
    assert loss == pytest.approx([1.415938], abs=1e-6) and g == pytest.approx([0.467070], abs=1e-6)


def test_gmpo_hand_values():
    # A = 1, log ρ = [0.5, -0.1], ε = 0.4: c = [min(0.5, 0.4), -0.1] = [0.4, -0.1] → mean 0.15
    loss, g, f = call("gmpo", [0.5, -0.1], 1.0, clip_low=0.4, clip_high=0.4)
    e = math.exp(0.15)  # 1.161834
    assert loss == pytest.approx([-e, -e], abs=1e-14) and g == pytest.approx([0.0, -e], abs=1e-14)
    assert f == {"clip_low": [False, False], "clip_high": [True, False], "clip_dual": [False, False]}
    # A = -1, log ρ = [0.5, -0.6]: the lower bound binds, c = [0.5, max(-0.6, -0.4)] → mean 0.05
    loss, g, f = call("gmpo", [0.5, -0.6], -1.0, clip_low=0.4, clip_high=0.4)
    e = math.exp(0.05)  # 1.051271
    assert loss == pytest.approx([e, e], abs=1e-14) and g == pytest.approx([e, 0.0], abs=1e-14)
    assert f == {"clip_low": [False, True], "clip_high": [False, False], "clip_dual": [False, False]}
    # asymmetric bounds: A = 1 uses clip_high only, a very negative log ρ stays unclipped
    loss, g, _ = call("gmpo", [-1.0, 0.05], 1.0, clip_low=0.1, clip_high=0.02)
    e = math.exp((-1.0 + 0.02) / 2)
    assert loss == pytest.approx([-e, -e], abs=1e-14) and g == pytest.approx([-e, 0.0], abs=1e-14)


# --- slow loop reference --------------------------------------------------------------------


def reference_token(name, deltas, adv, cl, ch, dual, tau_pos=1.0, tau_neg=1.05):
    """Per-token (loss, own gradient) of one sequence, in python floats, straight from the papers."""

    def ppo(r):  # -min(rA, clip(r)A) and its derivative w.r.t. log r (= r · d/dr)
        if adv > 0:
            loss, grad = (-adv * r, -adv * r) if r <= 1 + ch else (-adv * (1 + ch), 0.0)
        elif adv < 0:
            loss, grad = (-adv * r, -adv * r) if r >= 1 - cl else (-adv * (1 - cl), 0.0)
            if dual is not None and loss > -dual * adv:
                loss, grad = -dual * adv, 0.0
        else:
            loss, grad = 0.0, 0.0
        return loss, grad

    n = len(deltas)
    if n == 0:
        return []
    if name == "grpo":
        return [ppo(math.exp(d)) for d in deltas]
    if name == "gspo":
        return [ppo(math.exp(sum(deltas) / n))] * n
    if name == "cispo":
        return [(-adv * min(max(math.exp(d), 1 - cl), 1 + ch),) * 2 for d in deltas]
    if name == "sapo":
        tau = tau_pos if adv > 0 else tau_neg
        out = []
        for d in deltas:
            r = math.exp(d)
            s = sigmoid(tau * (r - 1))
            out.append((-adv * s * 4 / tau, -adv * 4 * s * (1 - s) * r))
        return out
    clipped = [min(d, ch) if adv > 0 else max(d, -cl) for d in deltas]  # gmpo
    value = -adv * math.exp(sum(clipped) / n)
    return [(value, value if c == d else 0.0) for c, d in zip(clipped, deltas)]


def random_batch(B, T, seed, spread=0.4):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(0, T + 1, (B,), generator=g).tolist()
    logp = -torch.rand(B, T, generator=g, dtype=F64) * 3
    old = logp + spread * torch.randn(B, T, generator=g, dtype=F64)
    adv = torch.randn(B, generator=g, dtype=F64)
    return logp, old, adv, lengths


CLIPS = {"grpo": (0.2, 0.28), "gspo": (0.03, 0.04), "cispo": (0.2, 0.28), "sapo": (0.2, 0.2), "gmpo": (0.3, 0.4)}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", [(1, 1), (3, 1), (1, 7), (6, 9)])
def test_policy_losses_match_loop_reference(name, shape):
    B, T = shape
    cl, ch = CLIPS[name]
    dual = 2.0 if name in ("grpo", "gspo") else None
    for seed in range(4):
        logp, old, adv, lengths = random_batch(B, T, seed, spread=0.05 if name == "gspo" else 0.4)
        mask = lengths_mask(lengths, T)
        x = logp.clone().requires_grad_()
        loss, _ = POLICY_LOSSES[name](x, old, adv, mask, clip_low=cl, clip_high=ch, dual_clip=dual)
        # random per-token weights: Σ w·loss has gradient w_t · (own gradient) only if each token
        # carries its own share of the sequence gradient (GSPO-token form), not an equal split
        w = torch.rand(B, T, dtype=F64, generator=torch.Generator().manual_seed(seed)) + 0.5
        (g,) = torch.autograd.grad(torch.where(mask, w * loss, torch.zeros_like(loss)).sum(), x)
        for i in range(B):
            deltas = [logp[i, t].item() - old[i, t].item() for t in range(lengths[i])]
            ref = reference_token(name, deltas, adv[i].item(), cl, ch, dual)
            for t, (value, grad) in enumerate(ref):
                assert loss[i, t].item() == pytest.approx(value, abs=1e-12), (i, t)
                assert g[i, t].item() == pytest.approx(w[i, t].item() * grad, abs=1e-12), (i, t)
        assert (g[~mask] == 0).all()


# --- sequence-level autograd references (GSPO, GMPO) -----------------------------------------


def sequence_loss(name, logp, old, adv, mask, cl, ch, dual=None):
    """L_i (B,) written directly at the sequence level, no token trick."""
    d = torch.where(mask, logp - old, torch.zeros_like(logp))
    n = mask.sum(-1).clamp(min=1)
    if name == "gspo":
        s = torch.exp(d.sum(-1) / n)
        loss = torch.maximum(-adv * s, -adv * s.clamp(1 - cl, 1 + ch))
        return torch.where(adv < 0, torch.minimum(loss, -dual * adv), loss) if dual else loss
    c = torch.where(adv[:, None] > 0, d.clamp(max=ch), d.clamp(min=-cl))
    return -adv * torch.exp(torch.where(mask, c, torch.zeros_like(c)).sum(-1) / n)


@pytest.mark.parametrize("aggregation", AGGS)
@pytest.mark.parametrize("name", ["gspo", "gmpo"])
def test_sequence_losses_gradient_equals_sequence_level_autograd(name, aggregation):
    B, T = 7, 8
    cl, ch = CLIPS[name]
    dual = 1.02 if name == "gspo" else None
    for seed in range(4):
        logp, old, adv, lengths = random_batch(B, T, seed, spread=0.05 if name == "gspo" else 0.4)
        lengths[0] = max(lengths[0], 1)
        mask = lengths_mask(lengths, T)
        x = logp.clone().requires_grad_()
        loss, _ = grpo_loss(
            x,
            old,
            adv,
            mask,
            policy_loss=name,
            clip_low=cl,
            clip_high=ch,
            dual_clip=dual,
            aggregation=aggregation,
            max_len=T,
        )
        (g,) = torch.autograd.grad(loss, x)
        y = logp.clone().requires_grad_()
        n = mask.sum(-1).to(F64)
        per_seq = torch.where(n > 0, sequence_loss(name, y, old, adv, mask, cl, ch, dual), 0.0)  # (B,)
        # how each aggregation weighs a sequence whose tokens all carry L_i
        expected = {
            "seq-mean-token-mean": per_seq.sum() / B,
            "token-mean": (n * per_seq).sum() / n.sum(),
            "seq-mean-token-sum-norm": (n * per_seq).sum() / (B * T),
        }[aggregation]
        (g_ref,) = torch.autograd.grad(expected, y)
        assert loss.item() == pytest.approx(expected.item(), abs=1e-12)
        torch.testing.assert_close(g, g_ref, atol=1e-12, rtol=0)
        assert g.abs().sum() > 0


def test_gspo_tokens_share_one_ratio_and_one_clip_decision():
    logp, old, adv, lengths = random_batch(8, 10, seed=1, spread=0.05)
    mask = lengths_mask(lengths, 10)
    loss, flags = POLICY_LOSSES["gspo"](logp, old, adv, mask, clip_low=0.01, clip_high=0.01, dual_clip=1.01)
    for i in range(8):
        row = loss[i, : lengths[i]]
        assert (row == row[:1]).all()  # an empty row passes trivially
        for f in flags.values():
            assert f[i, : lengths[i]].all() or not f[i, : lengths[i]].any()
    assert any(f[mask].any() for f in flags.values())  # some sequence was clipped


def test_gspo_with_one_token_per_sequence_is_grpo():
    logp, old, adv, _ = random_batch(32, 1, seed=2)
    mask = torch.ones(32, 1, dtype=torch.bool)
    kw = dict(clip_low=0.2, clip_high=0.28, dual_clip=1.5)
    x, y = logp.clone().requires_grad_(), logp.clone().requires_grad_()
    gspo, gspo_flags = POLICY_LOSSES["gspo"](x, old, adv, mask, **kw)
    grpo, grpo_flags = POLICY_LOSSES["grpo"](y, old, adv, mask, **kw)
    torch.testing.assert_close(gspo, grpo, atol=1e-15, rtol=0)
    assert all(torch.equal(gspo_flags[k], grpo_flags[k]) for k in grpo_flags)
    (gx,), (gy,) = torch.autograd.grad(gspo.sum(), x), torch.autograd.grad(grpo.sum(), y)
    torch.testing.assert_close(gx, gy, atol=1e-15, rtol=0)


def test_sequence_ratio_saturates_at_the_clamp_with_zero_gradient():
    # mean log ρ = 27.5 > 20: the value saturates at e^20 (finite), the gradient is 0, as through clamp
    for name in ("gspo", "gmpo"):
        loss, g, _ = call(name, [25.0, 30.0], -1.0, clip_low=0.4, clip_high=0.4)
        assert loss == pytest.approx([math.exp(20)] * 2) and g == [0.0, 0.0]


def test_sapo_gate_weight_is_one_at_ratio_one_and_decays_smoothly():
    # gradient / (unclipped gradient -ρA) = 4σ(1-σ): 1 at ρ = 1, strictly smaller further from 1, never 0
    for adv in (1.0, -1.0):
        ratios = torch.tensor([0.1, 0.3, 0.6, 0.9, 1.0, 1.1, 1.5, 2.5, 5.0, 10.0], dtype=F64)
        x = torch.log(ratios)[None].clone().requires_grad_()
        zeros, ones, a = torch.zeros_like(x), torch.ones_like(x), torch.tensor([adv], dtype=F64)
        loss, _ = POLICY_LOSSES["sapo"](x, zeros, a, ones, clip_low=0.2, clip_high=0.2)
        (g,) = torch.autograd.grad(loss.sum(), x)
        weight = (g[0] / (-adv * ratios)).tolist()
        assert weight[4] == pytest.approx(1.0, abs=1e-15)
        assert all(w > 0 for w in weight) and all(w < 1 for i, w in enumerate(weight) if i != 4)
        assert weight[:5] == sorted(weight[:5]) and weight[4:] == sorted(weight[4:], reverse=True)
    # a larger temperature decays faster
    x = torch.log(torch.tensor([[2.0]], dtype=F64)).requires_grad_()
    grads = []
    for tau in (0.5, 1.0, 2.0):
        loss, _ = POLICY_LOSSES["sapo"](
            x,
            torch.zeros_like(x),
            torch.ones(1, dtype=F64),
            torch.ones_like(x),
            clip_low=0.2,
            clip_high=0.2,
            sapo_tau_pos=tau,
        )
        grads.append(-torch.autograd.grad(loss.sum(), x)[0].item())
    assert grads[0] > grads[1] > grads[2] > 0
