"""Advantage baselines (group mean, leave-one-out / RLOO, batch mean / REINFORCE++): hand values,
a slow loop reference over every baseline × scale, and properties."""

import math
import statistics

import pytest
import torch

from r1.rl import ADVANTAGE_BASELINES, ADVANTAGE_SCALES, group_advantages, zero_variance_groups

NAN = float("nan")
COMBOS = [(b, s) for b in sorted(ADVANTAGE_BASELINES) for s in sorted(ADVANTAGE_SCALES) if (b, s) != ("batch", "group")]


# --- hand-derived values --------------------------------------------------------------


def test_leave_one_out_hand_values():
    # [1, 0, 0, 1]: b_i = mean of the other three = [1/3, 2/3, 2/3, 1/3] → A = [2/3, -2/3, -2/3, 2/3]
    r = torch.tensor([[1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0]], dtype=torch.float64)
    out = group_advantages(r, baseline="leave-one-out", scale="none")
    expected = torch.tensor([[2 / 3, -2 / 3, -2 / 3, 2 / 3], [0.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(out, expected, atol=1e-15, rtol=0)
    # an invalid (NaN) sample is neither compared nor a comparison: valid [1, 0, 0] →
    # b = [(0 + 0)/2, -, (1 + 0)/2, (1 + 0)/2] = [0, -, 0.5, 0.5] → A = [1, 0, -0.5, -0.5]
    r = torch.tensor([[1.0, NAN, 0.0, 0.0]])
    valid = torch.tensor([[True, False, True, True]])
    out = group_advantages(r, baseline="leave-one-out", scale="none", valid=valid)
    torch.testing.assert_close(out, torch.tensor([[1.0, 0.0, -0.5, -0.5]]))
    # scale="group" divides by the group's sample std: [1, 0, 0, 1] → std 1/√3 → ±(2/3)·√3 = ±1.154701
    out = group_advantages(torch.tensor([[1.0, 0.0, 0.0, 1.0]]), baseline="leave-one-out", eps=0.0)
    a = 2 / 3 * math.sqrt(3)
    torch.testing.assert_close(out, torch.tensor([[a, -a, -a, a]]), atol=1e-6, rtol=0)


def test_batch_baseline_hand_values():
    # REINFORCE++: b = batch mean of {1, 0, 1, 1} = 0.75; the all-correct group keeps a positive signal
    r = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    out = group_advantages(r, baseline="batch", scale="none")
    torch.testing.assert_close(out, torch.tensor([[0.25, -0.75], [0.25, 0.25]]))
    # scale="batch": sample std of {1, 0, 1, 1} = 0.5 → [[0.5, -1.5], [0.5, 0.5]]
    out = group_advantages(r, baseline="batch", scale="batch", eps=0.0)
    torch.testing.assert_close(out, torch.tensor([[0.5, -1.5], [0.5, 0.5]]))
    # one sample per prompt works (a group of one is not "dead" under the batch baseline)
    out = group_advantages(torch.tensor([[2.0], [0.0], [1.0]]), baseline="batch", scale="none")
    torch.testing.assert_close(out, torch.tensor([[1.0], [-1.0], [0.0]]))
    # ... but it is under the group baselines
    assert (group_advantages(torch.tensor([[2.0], [0.0]]), scale="none") == 0).all()


# --- slow loop reference --------------------------------------------------------------


def reference(rewards, valid, baseline, scale, eps):
    """Python loops with the statistics module, float64."""
    P, G = len(rewards), len(rewards[0])
    everything = [rewards[p][g] for p in range(P) for g in range(G) if valid[p][g]]
    batch_dead = len(everything) < 2 or max(everything) == min(everything)
    out = [[0.0] * G for _ in range(P)]
    for p in range(P):
        group = [rewards[p][g] for g in range(G) if valid[p][g]]
        group_dead = len(group) < 2 or max(group) == min(group)
        if (baseline == "batch" and batch_dead) or (baseline != "batch" and group_dead):
            continue
        div = {"group": lambda: statistics.stdev(group) + eps, "batch": lambda: statistics.stdev(everything) + eps}
        div = div.get(scale, lambda: 1.0)()
        for g in range(G):
            if not valid[p][g]:
                continue
            if baseline == "group":
                b = statistics.fmean(group)
            elif baseline == "batch":
                b = statistics.fmean(everything)
            else:  # leave-one-out: every other valid sample of the group, never itself
                others = [rewards[p][h] for h in range(G) if valid[p][h] and h != g]
                b = statistics.fmean(others)
            out[p][g] = (rewards[p][g] - b) / div
    return torch.tensor(out, dtype=torch.float64)


@pytest.mark.parametrize("baseline,scale", COMBOS)
@pytest.mark.parametrize("shape", [(1, 2), (1, 16), (5, 4), (8, 7), (6, 1)])
def test_matches_loop_reference(baseline, scale, shape):
    torch.manual_seed(0)
    for trial in range(5):
        rewards = torch.randint(0, 2, shape).double() if trial % 2 else torch.randn(shape, dtype=torch.float64)
        valid = torch.rand(shape) > 0.2
        valid[0] = True
        rewards_nan = torch.where(valid, rewards, torch.full_like(rewards, NAN))
        out = group_advantages(rewards_nan, baseline=baseline, scale=scale, eps=1e-4, valid=valid)
        ref = reference(rewards.tolist(), valid.tolist(), baseline, scale, 1e-4)
        torch.testing.assert_close(out, ref, atol=1e-10, rtol=0)
        out32 = group_advantages(rewards_nan.float(), baseline=baseline, scale=scale, eps=1e-4, valid=valid)
        assert out32.dtype == torch.float32
        torch.testing.assert_close(out32.double(), ref, atol=1e-5, rtol=0)


# --- properties -------------------------------------------------------------------------


def test_default_baseline_is_bit_identical_to_the_group_mean_formula():
    torch.manual_seed(1)
    rewards = torch.randn(6, 8)
    valid = torch.rand(6, 8) > 0.3
    for scale in sorted(ADVANTAGE_SCALES):
        # the pre-baseline formula, spelled out
        r = torch.where(valid, rewards, torch.zeros_like(rewards))
        mean = r.sum(-1, keepdim=True) / valid.sum(-1, keepdim=True).clamp(min=1)
        adv = (r - mean) / ADVANTAGE_SCALES[scale](r, valid, 1e-4)
        old = torch.where(valid & ~zero_variance_groups(r, valid)[:, None], adv, torch.zeros_like(adv))
        assert torch.equal(group_advantages(rewards, scale=scale, valid=valid), old)
        assert torch.equal(group_advantages(rewards, scale=scale, valid=valid, baseline="group"), old)


def test_leave_one_out_baseline_excludes_the_sample_itself():
    # b_i must not move when r_i moves (and must move when any other valid r_j does)
    torch.manual_seed(2)
    rewards = torch.randn(4, 6, dtype=torch.float64)
    valid = torch.rand(4, 6) > 0.2
    valid[:, :2] = True
    r = torch.where(valid, rewards, torch.zeros_like(rewards))
    base, _ = ADVANTAGE_BASELINES["leave-one-out"](r, valid)
    for p in range(4):
        for g in range(6):
            if not valid[p, g]:
                continue
            bumped = r.clone()
            bumped[p, g] += 10.0
            moved, _ = ADVANTAGE_BASELINES["leave-one-out"](bumped, valid)
            assert moved[p, g].item() == pytest.approx(base[p, g].item(), abs=1e-12)
            others = [h for h in range(6) if valid[p, h] and h != g]
            assert all(moved[p, h].item() != base[p, h].item() for h in others)


def test_leave_one_out_is_scaled_group_centering():
    # r_i - (S - r_i)/(n - 1) = n/(n - 1) · (r_i - S/n): RLOO = n/(n - 1) × GRPO's centered reward
    torch.manual_seed(3)
    rewards = torch.randn(5, 8, dtype=torch.float64)
    valid = torch.rand(5, 8) > 0.3
    valid[0] = True  # one full group: the factor is G/(G - 1) = 8/7
    loo = group_advantages(rewards, baseline="leave-one-out", scale="none", valid=valid)
    centered = group_advantages(rewards, baseline="group", scale="none", valid=valid)
    n = valid.sum(-1, keepdim=True).to(torch.float64)
    torch.testing.assert_close(loo, n / (n - 1).clamp(min=1) * centered, atol=1e-12, rtol=0)
    torch.testing.assert_close(loo[0], 8 / 7 * centered[0], atol=1e-12, rtol=0)


@pytest.mark.parametrize("baseline,scale", COMBOS)
def test_valid_advantages_sum_to_zero(baseline, scale):
    torch.manual_seed(4)
    rewards = torch.randn(6, 8, dtype=torch.float64)
    valid = torch.rand(6, 8) > 0.3
    adv = group_advantages(rewards, baseline=baseline, scale=scale, valid=valid)
    kept = torch.where(valid, adv, torch.zeros_like(adv))
    sums = kept.sum() if baseline == "batch" else kept.sum(-1)  # over the batch / per group
    torch.testing.assert_close(sums, torch.zeros_like(sums), atol=1e-12, rtol=0)
    assert (adv[~valid] == 0).all()


@pytest.mark.parametrize("baseline,scale", COMBOS)
def test_no_signal_gives_exact_zero(baseline, scale):
    # equal rewards (0.1 is not representable: the zero must be enforced, not left to arithmetic)
    r = torch.tensor([[0.1, 0.1, 0.1], [0.1, NAN, 0.1], [0.1, NAN, NAN]])
    valid = ~r.isnan()
    adv = group_advantages(r, baseline=baseline, scale=scale, valid=valid)
    assert (adv == 0).all() and not adv.isnan().any()
    # the batch baseline: a dead group inside a live batch still gets a signal; group baselines: exact 0
    r = torch.tensor([[0.3, 0.3, 0.3], [0.0, 1.0, 0.0]])
    adv = group_advantages(r, baseline=baseline, scale=scale)
    assert (adv[0] != 0).all() if baseline == "batch" else (adv[0] == 0).all()


def test_argument_errors():
    with pytest.raises(ValueError, match="unknown advantage baseline"):
        group_advantages(torch.zeros(2, 2), baseline="critic")
    with pytest.raises(ValueError, match="batch-wide scale"):
        group_advantages(torch.zeros(2, 2), baseline="batch", scale="group")
    assert set(ADVANTAGE_BASELINES) == {"group", "leave-one-out", "batch"}
