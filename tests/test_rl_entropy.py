"""High-entropy token selection: hand values, torch.quantile and loop references, ties, empty masks,
and the keep= semantics of grpo_loss (zero policy gradient, unchanged denominators)."""

import math

import pytest
import torch

from r1.rl import aggregate, clipped_surrogate, entropy_threshold, grpo_loss, top_entropy_mask

NAN = float("nan")


def test_hand_values():
    # sorted [0.1, 0.2, 0.3, 0.5, 0.9], quantile 0.8 → position 0.8 · 4 = 3.2 → 0.5 + 0.2 · (0.9 - 0.5) = 0.58
    h = torch.tensor([[0.1, 0.5, 0.2], [0.9, 0.3, NAN]], dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    assert entropy_threshold(h, mask, 0.8).item() == pytest.approx(0.58, abs=1e-15)
    assert top_entropy_mask(h, mask, 0.8).tolist() == [[False, False, False], [True, False, False]]
    # quantile 0.5 → position 2 exactly → 0.3 itself, which passes `>=`: keeps 0.3, 0.5, 0.9
    assert entropy_threshold(h, mask, 0.5).item() == 0.3
    assert top_entropy_mask(h, mask, 0.5).tolist() == [[False, True, False], [True, True, False]]


def test_edge_cases():
    h = torch.tensor([[0.4, 0.1, 0.4, 0.4], [0.2, 0.7, NAN, 5.0]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]]).bool()
    # quantile 0 keeps every unmasked token, never a masked one
    assert torch.equal(top_entropy_mask(h, mask, 0.0), mask)
    # quantile 1 keeps the maximum (0.7; the 5.0 is masked)
    assert top_entropy_mask(h, mask, 1.0).tolist() == [[False] * 4, [False, True, False, False]]
    # ties at the threshold are all kept: three 0.4s out of 6 tokens pass the 0.8 quantile (0.4)
    ties = torch.tensor([[0.4, 0.1, 0.4, 0.4, 0.2, 0.3]])
    assert top_entropy_mask(ties, torch.ones(1, 6), 0.8).tolist() == [[True, False, True, True, False, False]]
    # all-equal entropies keep everything
    assert top_entropy_mask(torch.full((2, 3), 0.5), torch.ones(2, 3), 0.9).all()
    # an empty mask keeps nothing; its threshold is +inf
    assert entropy_threshold(h, torch.zeros(2, 4), 0.5).item() == math.inf
    assert not top_entropy_mask(h, torch.zeros(2, 4), 0.5).any()
    with pytest.raises(ValueError, match="quantile"):
        top_entropy_mask(h, mask, 1.5)


@pytest.mark.parametrize("quantile", [0.0, 0.2, 0.5, 0.8, 0.95, 1.0])
@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (4, 9), (16, 33)])
def test_matches_torch_quantile_and_a_counting_loop(quantile, shape):
    B, T = shape
    for seed in range(3):
        g = torch.Generator().manual_seed(seed)
        h = torch.rand(B, T, generator=g, dtype=torch.float64) * 3
        mask = torch.rand(B, T, generator=g) > 0.3
        mask[0, 0] = True
        h_dirty = torch.where(mask, h, torch.full_like(h, NAN))
        threshold = entropy_threshold(h_dirty, mask, quantile)
        expected = torch.quantile(h[mask], quantile)
        assert threshold.item() == pytest.approx(expected.item(), abs=1e-12)
        keep = top_entropy_mask(h_dirty, mask, quantile)
        # loop: sort the n values; position p = q (n - 1) keeps the values above it, and the value at p
        # itself when p is a whole number (distinct continuous values, so no ties)
        values = sorted(h[mask].tolist())
        n = len(values)
        p = quantile * (n - 1)
        kept = n - math.floor(p) - (0 if p == math.floor(p) else 1)
        assert keep.sum().item() == kept and not keep[~mask].any()
        dropped = mask & ~keep
        if dropped.any():  # every kept token has more entropy than every dropped one
            assert h[keep].min() > h[dropped].max()


def test_keep_through_grpo_loss_zero_policy_gradient_and_same_denominators():
    # TRL semantics: tokens not kept carry no policy loss, but |o_i| (and N_tokens) still count them
    g = torch.Generator().manual_seed(5)
    B, T = 4, 6
    logp = -torch.rand(B, T, generator=g, dtype=torch.float64) * 3
    old = logp + 0.2 * torch.randn(B, T, generator=g, dtype=torch.float64)
    adv = torch.randn(B, generator=g, dtype=torch.float64)
    entropy = torch.rand(B, T, generator=g, dtype=torch.float64)
    mask = torch.arange(T)[None, :] < torch.tensor([6, 4, 1, 5])[:, None]
    keep = top_entropy_mask(entropy, mask, 0.6)
    assert keep.any() and (mask & ~keep).any()
    surrogate, _ = clipped_surrogate(logp, old, adv, clip_low=0.2, clip_high=0.2)  # (B, T)
    for aggregation in ("seq-mean-token-mean", "token-mean"):
        x = logp.clone().requires_grad_()
        loss, metrics = grpo_loss(x, old, adv, mask, keep=keep, aggregation=aggregation)
        (grad,) = torch.autograd.grad(loss, x)
        assert (grad[~keep] == 0).all() and (grad[keep] != 0).all()
        # = the policy term zeroed on the tokens not kept, aggregated with the *full* mask
        expected = aggregate(torch.where(keep, surrogate, torch.zeros_like(surrogate)), mask, aggregation=aggregation)
        assert loss.item() == pytest.approx(expected.item(), abs=1e-12)
        assert metrics["kept"].item() == pytest.approx(keep.sum().item() / mask.sum().item(), abs=1e-6)
        assert metrics["tokens"].item() == mask.sum().item()


def test_keep_hand_values():
    # one sequence, ratio 1, A = 2: policy term -2 per token. keep [F, T]: token 0 carries no policy
    # loss but still counts in |o| = 2 → loss (0 - 2) / 2 = -1, gradient [0, -1]
    logp = torch.tensor([[-1.0, -2.0, -3.0]], dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    adv = torch.tensor([2.0], dtype=torch.float64)
    keep = torch.tensor([[False, True, True]])  # the masked third token is never kept
    loss, m = grpo_loss(logp, logp.detach(), adv, mask, keep=keep)
    (g,) = torch.autograd.grad(loss, logp)
    assert loss.item() == pytest.approx(-1.0) and g.tolist() == [[0.0, -1.0, 0.0]]
    assert m["kept"].item() == pytest.approx(0.5) and m["tokens"].item() == 2
    assert m["policy_loss"].item() == pytest.approx(-1.0)
    # a token not kept still carries its KL: k1 with ref = logp - 1 adds β · 1 per token → -1 + 0.1
    ref = logp.detach() - 1
    loss, _ = grpo_loss(logp, logp.detach(), adv, mask, keep=keep, ref_logp=ref, beta=0.1, kl_estimator="k1")
    (g,) = torch.autograd.grad(loss, logp)
    assert loss.item() == pytest.approx(-0.9) and g[0].tolist() == pytest.approx([0.05, -0.95, 0.0])
