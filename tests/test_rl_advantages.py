"""Advantages, zero-variance groups, overlong penalty: hand values, loop reference, properties."""

import math
import statistics

import pytest
import torch

from r1.rl import ADVANTAGE_SCALES, group_advantages, overlong_penalty, zero_variance_groups

NAN = float("nan")


# --- hand-derived values --------------------------------------------------------------


def test_group_scale_hand_values():
    # [1, 0, 0, 1]: mean 0.5; sample var = 4 · 0.25 / (4 - 1) = 1/3; std = 0.57735
    # → A = ±0.5 / 0.57735 = ±0.866025. [1, 1, 1, 1]: no variance → exactly 0.
    r = torch.tensor([[1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0]])
    a = math.sqrt(3) / 2
    expected = torch.tensor([[a, -a, -a, a], [0.0, 0.0, 0.0, 0.0]])
    torch.testing.assert_close(group_advantages(r, eps=0.0), expected, atol=1e-6, rtol=0)
    # default eps = 1e-4 is added to the std
    b = 0.5 / (1 / math.sqrt(3) + 1e-4)
    torch.testing.assert_close(group_advantages(r)[0], torch.tensor([b, -b, -b, b]), atol=1e-6, rtol=0)


def test_batch_scale_hand_values():
    # group means 0.5 and 1 → centered [0.5, -0.5] and [0, 0].
    # batch std of all rewards {1, 0, 1, 1}: mean 0.75, var = (3 · 0.0625 + 0.5625) / 3 = 0.25 → 0.5
    # → A = [1, -1] and (zero-variance group) [0, 0].
    r = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    expected = torch.tensor([[1.0, -1.0], [0.0, 0.0]])
    torch.testing.assert_close(group_advantages(r, scale="batch", eps=0.0), expected, atol=1e-6, rtol=0)


def test_no_scale_hand_values():
    # Dr. GRPO: just r - mean: [3, 1, 2] - 2 = [1, -1, 0]
    r = torch.tensor([[3.0, 1.0, 2.0]])
    torch.testing.assert_close(group_advantages(r, scale="none"), torch.tensor([[1.0, -1.0, 0.0]]))


def test_invalid_samples_hand_values():
    # valid rewards 1, 0, 0: mean 1/3; sample var = ((2/3)² + 2 (1/3)²) / 2 = 1/3 → std 0.57735
    # A = (2/3) / 0.57735 = 1.154701, (-1/3) / 0.57735 = -0.577350; the invalid (NaN) sample → 0.
    r = torch.tensor([[1.0, NAN, 0.0, 0.0]])
    valid = torch.tensor([[True, False, True, True]])
    expected = torch.tensor([[2 / math.sqrt(3), 0.0, -1 / math.sqrt(3), -1 / math.sqrt(3)]])
    torch.testing.assert_close(group_advantages(r, eps=0.0, valid=valid), expected, atol=1e-6, rtol=0)


def test_zero_variance_groups_hand_values():
    r = torch.tensor([[1.0, 1.0, 1.0], [0.0, 1.0, 0.0], [2.0, NAN, NAN], [NAN, 5.0, 5.0]])
    valid = ~r.isnan()
    # all equal | varied | one valid sample | the valid ones are equal
    assert zero_variance_groups(r, valid).tolist() == [True, False, True, True]
    assert zero_variance_groups(torch.tensor([[0.0, 1.0]])).tolist() == [False]


def test_overlong_penalty_piecewise():
    # max_len 10, cache 4: no penalty up to 6, then -(L - 6)/4 up to 10, -1 beyond.
    lengths = torch.tensor([0, 5, 6, 7, 8, 9, 10, 11, 100])
    expected = torch.tensor([0.0, 0.0, 0.0, -0.25, -0.5, -0.75, -1.0, -1.0, -1.0])
    out = overlong_penalty(lengths, max_len=10, cache_len=4)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, expected, atol=0, rtol=0)
    # cache_len 0 is a hard step at max_len
    hard = overlong_penalty(torch.tensor([9, 10, 11]), max_len=10, cache_len=0)
    assert hard.tolist() == [0.0, 0.0, -1.0]
    with pytest.raises(ValueError):
        overlong_penalty(lengths, max_len=10, cache_len=11)


# --- slow loop reference --------------------------------------------------------------


def reference_advantages(rewards, valid, scale, eps):
    """Python loop over groups with the statistics module, in float64."""
    P, G = len(rewards), len(rewards[0])
    all_valid = [rewards[p][g] for p in range(P) for g in range(G) if valid[p][g]]
    out = [[0.0] * G for _ in range(P)]
    for p in range(P):
        vals = [rewards[p][g] for g in range(G) if valid[p][g]]
        if len(vals) < 2 or max(vals) == min(vals):
            continue
        mean = statistics.fmean(vals)
        if scale == "group":
            div = statistics.stdev(vals) + eps
        elif scale == "batch":
            div = statistics.stdev(all_valid) + eps
        else:
            div = 1.0
        for g in range(G):
            if valid[p][g]:
                out[p][g] = (rewards[p][g] - mean) / div
    return torch.tensor(out, dtype=torch.float64)


@pytest.mark.parametrize("scale", sorted(ADVANTAGE_SCALES))
@pytest.mark.parametrize("shape", [(1, 2), (1, 16), (5, 4), (8, 7)])
def test_matches_loop_reference(scale, shape):
    torch.manual_seed(0)
    for trial in range(5):
        # mix of binary rewards (many ties / dead groups) and continuous ones
        if trial % 2:
            rewards = torch.randint(0, 2, shape).double()
        else:
            rewards = torch.randn(shape, dtype=torch.float64)
        valid = torch.rand(shape) > 0.2
        valid[0] = True  # at least one fully valid group
        rewards_nan = torch.where(valid, rewards, torch.full_like(rewards, NAN))
        out = group_advantages(rewards_nan, scale=scale, eps=1e-4, valid=valid)
        ref = reference_advantages(rewards.tolist(), valid.tolist(), scale, 1e-4)
        torch.testing.assert_close(out, ref, atol=1e-10, rtol=0)
        # float32 path agrees with the float64 reference too
        out32 = group_advantages(rewards_nan.float(), scale=scale, eps=1e-4, valid=valid)
        assert out32.dtype == torch.float32
        torch.testing.assert_close(out32.double(), ref, atol=1e-5, rtol=0)


# --- properties -------------------------------------------------------------------------


@pytest.mark.parametrize("scale", sorted(ADVANTAGE_SCALES))
def test_valid_advantages_sum_to_zero_per_group(scale):
    torch.manual_seed(1)
    rewards = torch.randn(6, 8, dtype=torch.float64)
    valid = torch.rand(6, 8) > 0.3
    adv = group_advantages(rewards, scale=scale, valid=valid)
    sums = torch.where(valid, adv, torch.zeros_like(adv)).sum(-1)
    torch.testing.assert_close(sums, torch.zeros(6, dtype=torch.float64), atol=1e-12, rtol=0)
    assert (adv[~valid] == 0).all()


@pytest.mark.parametrize("scale", sorted(ADVANTAGE_SCALES))
def test_equal_rewards_give_exact_zero(scale):
    # 0.1 is not representable: a computed mean could differ from the rewards by 1 ulp,
    # so the zero must be enforced, not left to arithmetic.
    r = torch.tensor([[0.1, 0.1, 0.1], [0.3, 0.3, 0.3], [0.7, NAN, 0.7], [1.0, NAN, NAN]])
    valid = ~r.isnan()
    adv = group_advantages(r, scale=scale, valid=valid)
    assert (adv == 0).all() and not adv.isnan().any()


def test_unknown_scale_raises():
    with pytest.raises(ValueError, match="unknown advantage scale"):
        group_advantages(torch.zeros(2, 2), scale="rank")
