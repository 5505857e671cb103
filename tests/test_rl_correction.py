"""Rollout-engine mismatch corrections (TIS / MIS, token and sequence level) and mismatch_stats:
hand-derived values, a slow loop reference, and properties (cap, exact zero gradient, identity)."""

import math

import pytest
import torch

from r1.rl import MISMATCH_CORRECTIONS, POLICY_LOSSES, combine_metrics, grpo_loss, mismatch_stats, mismatch_weights

NAMES = sorted(MISMATCH_CORRECTIONS)
F64 = torch.float64
LN = math.log


def lengths_mask(lengths, T):
    return torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]


def weights_of(name, log_ratios, **kw):
    """One fully unmasked sequence with engine_logp = 0 and old_logp = the given log-ratios."""
    old = torch.tensor([log_ratios], dtype=F64)
    kw = {"cap": 2.0, "low": 0.5, "high": 2.0, **kw}
    w, dropped = mismatch_weights(old, torch.zeros_like(old), torch.ones_like(old), correction=name, **kw)
    return w[0].tolist(), dropped[0].tolist()


# --- hand-derived values ------------------------------------------------------------------


def test_hand_values():
    # tis-token: min(r, 2) per token: [3, 0.5] → [2, 0.5]
    w, d = weights_of("tis-token", [LN(3), LN(0.5)])
    assert w == pytest.approx([2.0, 0.5], abs=1e-15) and d == [False, False]
    # tis-seq: Π r = 1.5 < 2 on every token
    w, d = weights_of("tis-seq", [LN(3), LN(0.5)])
    assert w == pytest.approx([1.5, 1.5], abs=1e-14) and d == [False, False]
    # tis-seq caps the product: Π r = 3 · 2 = 6 → 2
    assert weights_of("tis-seq", [LN(3), LN(2)])[0] == pytest.approx([2.0, 2.0])
    # mis-token, band [0.5, 2]: r = 3 is dropped, r = 0.8 kept with its ratio, just inside the bounds kept
    w, d = weights_of("mis-token", [LN(3), LN(0.8), LN(2) - 1e-12, LN(0.5) + 1e-12])
    assert w == pytest.approx([0.0, 0.8, 2.0, 0.5], abs=1e-10) and d == [True, False, False, False]
    # mis-seq: geometric mean of [4, 0.25] is 1 → kept, weight 1; of [9, 1] is 3 → dropped
    w, d = weights_of("mis-seq", [LN(4), LN(0.25)])
    assert w == pytest.approx([1.0, 1.0], abs=1e-14) and d == [False, False]
    w, d = weights_of("mis-seq", [LN(9), 0.0])
    assert w == [0.0, 0.0] and d == [True, True]
    # none: 1 everywhere
    assert weights_of("none", [LN(9), LN(0.01)]) == ([1.0, 1.0], [False, False])


def test_padding_gets_weight_zero_and_garbage_cannot_leak():
    old = torch.tensor([[-1.0, float("nan"), float("inf")], [-2.0, -3.0, -float("inf")]], dtype=F64)
    engine = torch.tensor([[-1.5, -float("inf"), float("nan")], [-2.0, -2.0, 0.0]], dtype=F64)
    mask = torch.tensor([[1, 0, 0], [1, 1, 0]])
    for name in NAMES:
        w, dropped = mismatch_weights(old, engine, mask, correction=name, cap=3.0, low=0.5, high=2.0)
        assert torch.isfinite(w).all() and (w[mask == 0] == 0).all() and not dropped[mask == 0].any()
        assert not w.requires_grad and w.dtype == F64


# --- slow loop reference --------------------------------------------------------------------


def reference_weights(name, old, engine, lengths, cap, low, high):
    """Python loop, straight from the definitions."""
    out, dropped = [], []
    for i, n in enumerate(lengths):
        raw = [old[i][t] - engine[i][t] for t in range(n)]
        d = [min(max(x, -20.0), 20.0) for x in raw]  # per token: clamped; per sequence: the sum / mean is
        seq_sum = min(max(sum(raw), -20.0), 20.0)
        geo = math.exp(min(max(sum(raw) / n, -20.0), 20.0)) if n else 1.0
        row, drop = [], []
        for t in range(n):
            r = math.exp(d[t])
            w, x = {
                "none": (1.0, False),
                "tis-token": (min(r, cap), False),
                "tis-seq": (min(math.exp(seq_sum), cap), False),
                "mis-token": (r, False) if low <= r <= high else (0.0, True),
                "mis-seq": (geo, False) if low <= geo <= high else (0.0, True),
            }[name]
            row.append(w)
            drop.append(x)
        pad = len(old[i]) - n
        out.append(row + [0.0] * pad)
        dropped.append(drop + [False] * pad)
    return torch.tensor(out, dtype=F64), torch.tensor(dropped)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", [(1, 1), (4, 1), (1, 8), (7, 9)])
def test_matches_loop_reference(name, shape):
    B, T = shape
    for seed in range(4):
        g = torch.Generator().manual_seed(seed)
        lengths = torch.randint(0, T + 1, (B,), generator=g).tolist()
        engine = -torch.rand(B, T, generator=g, dtype=F64) * 4
        old = engine + (0.2 if seed % 2 else 1.5) * torch.randn(B, T, generator=g, dtype=F64)
        if seed == 3:
            old[0] += 30.0  # beyond the ±20 clamp
        w, dropped = mismatch_weights(
            old, engine, lengths_mask(lengths, T), correction=name, cap=1.8, low=0.6, high=1.5
        )
        ref_w, ref_dropped = reference_weights(name, old.tolist(), engine.tolist(), lengths, 1.8, 0.6, 1.5)
        torch.testing.assert_close(w, ref_w, atol=1e-12, rtol=1e-12)
        assert torch.equal(dropped, ref_dropped)


# --- properties -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["tis-token", "tis-seq"])
def test_tis_never_exceeds_cap_and_drops_nothing(name):
    g = torch.Generator().manual_seed(0)
    engine = -torch.rand(16, 32, generator=g) * 5
    old = engine + 3 * torch.randn(16, 32, generator=g)
    mask = lengths_mask(torch.randint(0, 33, (16,), generator=g).tolist(), 32)
    for cap in (0.5, 1.0, 2.0, 10.0):
        w, dropped = mismatch_weights(old, engine, mask, correction=name, cap=cap, low=0, high=0)
        assert (w <= cap).all() and (w >= 0).all() and not dropped.any()
        assert (w[mask] == cap).any()  # the cap binds somewhere


@pytest.mark.parametrize("name", NAMES)
def test_identical_engine_gives_weight_one(name):
    g = torch.Generator().manual_seed(1)
    logp = -torch.rand(5, 7, generator=g, dtype=F64) * 3
    mask = lengths_mask([7, 3, 0, 1, 5], 7)
    w, dropped = mismatch_weights(logp, logp.clone(), mask, correction=name, cap=2.0, low=0.8, high=1.25)
    assert torch.equal(w, mask.to(F64)) and not dropped.any()


@pytest.mark.parametrize("policy_loss", sorted(POLICY_LOSSES))
@pytest.mark.parametrize("name", ["mis-token", "mis-seq"])
def test_dropped_tokens_get_exactly_zero_gradient_through_grpo_loss(name, policy_loss):
    B, T = 6, 8
    g = torch.Generator().manual_seed(2)
    logp = -torch.rand(B, T, generator=g, dtype=F64) * 3
    old = logp + 0.02 * torch.randn(B, T, generator=g, dtype=F64)
    engine = old + 0.3 * torch.randn(B, T, generator=g, dtype=F64)
    engine[0] -= 1.0  # ratio ~e: the whole first sequence falls outside the band
    mask = lengths_mask([8, 5, 8, 2, 7, 8], T)
    adv = torch.randn(B, generator=g, dtype=F64)
    w, dropped = mismatch_weights(old, engine, mask, correction=name, cap=2.0, low=0.7, high=1.4)
    assert dropped.any() and (mask & ~dropped).any()
    x = logp.clone().requires_grad_()
    loss, metrics = grpo_loss(x, old, adv, mask, policy_loss=policy_loss, token_weights=w, clip_low=0.3, clip_high=0.4)
    (grad,) = torch.autograd.grad(loss, x)
    assert (grad[dropped] == 0).all() and (grad[mask & ~dropped] != 0).any()
    assert metrics["is_weight"].item() == pytest.approx(w[mask].mean().item(), abs=1e-6)


def test_token_weights_through_grpo_loss_hand_values():
    # one sequence, ratio 1 (old = logp), A = 2: policy term per token -2 · w, gradient -2 · w / |o|
    # w = [0.5, 3, 7 (masked: any value)] → loss mean(-1, -6) = -3.5, gradient [-0.5, -3, 0]
    logp = torch.tensor([[-1.0, -2.0, -3.0]], dtype=F64, requires_grad=True)
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    adv = torch.tensor([2.0], dtype=F64)
    w = torch.tensor([[0.5, 3.0, 7.0]], dtype=F64)
    loss, m = grpo_loss(logp, logp.detach(), adv, mask, token_weights=w)
    (g,) = torch.autograd.grad(loss, logp)
    assert loss.item() == pytest.approx(-3.5) and g.tolist() == [[-0.5, -3.0, 0.0]]
    assert m["is_weight"].item() == pytest.approx(1.75) and m["policy_loss"].item() == pytest.approx(-3.5)
    # zero weight → exactly zero policy gradient and loss for every policy loss
    for policy_loss in sorted(POLICY_LOSSES):
        loss, _ = grpo_loss(logp, logp.detach() - 0.1, adv, mask, policy_loss=policy_loss, token_weights=w * 0)
        (g,) = torch.autograd.grad(loss, logp)
        assert (g == 0).all() and loss.item() == 0.0


def test_neutral_weights_and_keep_change_nothing():
    g = torch.Generator().manual_seed(6)
    logp = -torch.rand(5, 6, generator=g, dtype=F64) * 3
    old = logp + 0.4 * torch.randn(5, 6, generator=g, dtype=F64)
    adv = torch.randn(5, generator=g, dtype=F64)
    mask = lengths_mask([6, 0, 3, 1, 5], 6)
    x, y = logp.clone().requires_grad_(), logp.clone().requires_grad_()
    base, base_metrics = grpo_loss(x, old, adv, mask, dual_clip=2.0)
    ones = torch.ones(5, 6)
    same, same_metrics = grpo_loss(y, old, adv, mask, dual_clip=2.0, policy_loss="grpo", token_weights=ones, keep=ones)
    (gx,), (gy,) = torch.autograd.grad(base, x), torch.autograd.grad(same, y)
    assert torch.equal(base, same) and torch.equal(gx, gy)
    assert all(torch.equal(base_metrics[k], same_metrics[k]) for k in base_metrics)
    assert same_metrics["is_weight"].item() == 1.0 and same_metrics["kept"].item() == 1.0
    assert "is_weight" not in base_metrics and "kept" not in base_metrics


def test_weights_are_constants():
    old = torch.randn(3, 4, dtype=F64, requires_grad=True)
    engine = torch.randn(3, 4, dtype=F64, requires_grad=True)
    for name in NAMES:
        w, _ = mismatch_weights(old, engine, torch.ones(3, 4), correction=name, cap=2.0, low=0.5, high=2.0)
        assert not w.requires_grad


def test_argument_errors():
    x, mask = torch.zeros(2, 3), torch.ones(2, 3)
    with pytest.raises(ValueError, match="unknown mismatch correction"):
        mismatch_weights(x, x, mask, correction="tis", cap=2.0, low=0.5, high=2.0)
    for cap, low, high in [(0.0, 0.5, 2.0), (2.0, 1.5, 1.0), (2.0, -0.1, 2.0)]:
        with pytest.raises(ValueError, match="cap > 0"):
            mismatch_weights(x, x, mask, correction="mis-token", cap=cap, low=low, high=high)
    assert set(MISMATCH_CORRECTIONS) == {"none", "tis-token", "tis-seq", "mis-token", "mis-seq"}


# --- mismatch_stats -----------------------------------------------------------------------


def test_stats_hand_values():
    # d = [log 2, 0, (masked garbage)]: mean |d| = log 2 / 2; max log 2; k3 = e^d - d - 1 → (1 - log 2) / 2;
    # mean ratio (2 + 1) / 2
    old = torch.tensor([[LN(2), -1.0, float("nan")]])
    engine = torch.tensor([[0.0, -1.0, -float("inf")]])
    s = mismatch_stats(old, engine, torch.tensor([[1, 1, 0]]))
    expected = {
        "tokens": 2,
        "mismatch_abs_diff": LN(2) / 2,
        "mismatch_abs_diff_sum": LN(2),
        "mismatch_abs_diff_max": LN(2),
        "mismatch_kl": (1 - LN(2)) / 2,
        "mismatch_ratio": 1.5,
        "mismatch_ratio_sum": 3.0,
    }
    for key, value in expected.items():
        assert s[key].item() == pytest.approx(value, abs=1e-6), key
    assert all(v.dtype == torch.float32 and not v.requires_grad and torch.isfinite(v) for v in s.values())
    # no token at all: zeros, not NaN
    empty = mismatch_stats(old, engine, torch.zeros(1, 3))
    assert all(v.item() == 0.0 for v in empty.values())


def test_stats_zero_when_identical_and_merge_exactly():
    g = torch.Generator().manual_seed(3)
    engine = -torch.rand(8, 6, generator=g) * 3
    old = engine + 0.3 * torch.randn(8, 6, generator=g)
    mask = lengths_mask([6, 0, 3, 6, 1, 2, 5, 4], 6)
    same = mismatch_stats(engine, engine, mask)
    assert same["mismatch_abs_diff_max"].item() == 0.0 and same["mismatch_kl"].item() == 0.0
    assert same["mismatch_ratio"].item() == 1.0
    full = mismatch_stats(old, engine, mask)
    assert full["mismatch_kl"].item() > 0
    parts = [mismatch_stats(old[sl], engine[sl], mask[sl]) for sl in (slice(0, 2), slice(2, 7), slice(7, 8))]
    combined = combine_metrics(parts)
    assert set(combined) == set(full)
    for key in full:
        torch.testing.assert_close(combined[key], full[key], atol=1e-6, rtol=1e-6)  # float32 sums
