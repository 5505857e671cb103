"""Properties every policy loss (GRPO, GSPO, CISPO, SAPO, GMPO) keeps through grpo_loss: the policy
gradient at ratio 1, zero gradient at A = 0 and on masked garbage, micro-batch sums equal to the full
batch with token weights and the top-entropy selection, argument errors. Hand values and loop
references: test_rl_surrogates.py."""

import pytest
import torch

from r1.rl import POLICY_LOSSES, combine_metrics, grpo_loss
from test_rl_surrogates import AGGS, CLIPS, F64, NAMES, lengths_mask, random_batch


# --- properties through grpo_loss -------------------------------------------------------------


@pytest.mark.parametrize("aggregation", AGGS)
@pytest.mark.parametrize("name", NAMES)
def test_ratio_one_gradient_is_policy_gradient_for_every_variant(name, aggregation):
    # old = logp: every variant reduces to ∂loss/∂logp_{i,t} = -A_i · w_{i,t} (w: aggregation weight)
    B, T = 4, 5
    lengths = [5, 2, 0, 3]
    mask = lengths_mask(lengths, T).to(F64)
    logp = (-torch.rand(B, T, dtype=F64)).requires_grad_()
    adv = torch.tensor([1.5, -0.5, 2.0, -1.0], dtype=F64)
    loss, _ = grpo_loss(logp, logp.detach(), adv, mask, policy_loss=name, aggregation=aggregation, max_len=10)
    (g,) = torch.autograd.grad(loss, logp)
    n = torch.tensor(lengths, dtype=F64)[:, None]
    weight = {
        "seq-mean-token-mean": mask / (n.clamp(min=1) * B),
        "token-mean": mask / mask.sum(),
        "seq-mean-token-sum-norm": mask / (B * 10),
    }[aggregation]
    torch.testing.assert_close(g, -adv[:, None] * weight, atol=1e-15, rtol=0)


@pytest.mark.parametrize("name", NAMES)
def test_zero_advantage_gives_exactly_zero_gradient(name):
    logp, old, _, _ = random_batch(6, 7, seed=4)
    x = logp.clone().requires_grad_()
    loss, _ = grpo_loss(x, old, torch.zeros(6, dtype=F64), torch.ones(6, 7), policy_loss=name)
    (g,) = torch.autograd.grad(loss, x)
    assert loss.item() == 0.0 and (g == 0).all()


@pytest.mark.parametrize("garbage", [(1e30, -float("inf")), (float("nan"), float("nan"))])
@pytest.mark.parametrize("name", NAMES)
def test_masked_garbage_gets_exactly_zero_gradient(name, garbage):
    B, T = 4, 6
    logp, old, adv, _ = random_batch(B, T, seed=5)
    mask = lengths_mask([6, 3, 0, 1], T)
    pad = ~mask
    dirty = lambda x, v: torch.where(pad, torch.full_like(x, v), x)  # noqa: E731
    weights = torch.rand(B, T, dtype=F64) + 0.5
    keep = torch.rand(B, T) > 0.3
    kw = dict(policy_loss=name, clip_low=0.2, clip_high=0.3)
    clean_x = logp.clone().requires_grad_()
    clean, _ = grpo_loss(clean_x, old, adv, mask, token_weights=weights, keep=keep, **kw)
    clean.backward()
    x = dirty(logp, garbage[0]).requires_grad_()
    loss, metrics = grpo_loss(
        x, dirty(old, garbage[1]), adv, mask, token_weights=dirty(weights, float("nan")), keep=keep, **kw
    )
    loss.backward()
    assert torch.isfinite(loss) and loss.item() == clean.item()
    assert (x.grad[pad] == 0).all() and torch.equal(x.grad, clean_x.grad)
    assert all(torch.isfinite(v) for v in metrics.values())


@pytest.mark.parametrize("aggregation", AGGS)
@pytest.mark.parametrize("name", NAMES)
def test_micro_batches_sum_to_full_batch_with_weights_and_keep(name, aggregation):
    B, T = 8, 7
    logp, old, adv, lengths = random_batch(B, T, seed=3, spread=0.05 if name == "gspo" else 0.4)
    lengths[2] = 0
    mask = lengths_mask(lengths, T)
    g = torch.Generator().manual_seed(9)
    weights, keep = torch.rand(B, T, generator=g, dtype=F64) * 2, torch.rand(B, T, generator=g) > 0.4
    ref = logp + 0.3 * torch.randn(B, T, generator=g, dtype=F64)
    kw = dict(
        policy_loss=name,
        beta=0.05,
        clip_low=CLIPS[name][0],
        clip_high=CLIPS[name][1],
        aggregation=aggregation,
        max_len=T,
    )
    full_x = logp.clone().requires_grad_()
    full, full_metrics = grpo_loss(full_x, old, adv, mask, ref_logp=ref, token_weights=weights, keep=keep, **kw)
    full.backward()
    mb_x = logp.clone().requires_grad_()
    total, parts = 0.0, []
    for sl in [slice(0, 3), slice(3, 4), slice(4, 8)]:
        part, metrics = grpo_loss(
            mb_x[sl],
            old[sl],
            adv[sl],
            mask[sl],
            ref_logp=ref[sl],
            token_weights=weights[sl],
            keep=keep[sl],
            total_seqs=B,
            total_tokens=mask.sum().item(),
            **kw,
        )
        part.backward()
        total, parts = total + part.detach(), parts + [metrics]
    torch.testing.assert_close(total, full.detach(), atol=1e-12, rtol=0)
    torch.testing.assert_close(mb_x.grad, full_x.grad, atol=1e-12, rtol=0)
    combined = combine_metrics(parts)
    assert set(combined) == set(full_metrics) and {"is_weight", "kept"} <= set(full_metrics)
    for key in full_metrics:
        torch.testing.assert_close(combined[key], full_metrics[key], atol=1e-6, rtol=0)


def test_argument_errors():
    x, mask, adv = torch.zeros(2, 3), torch.ones(2, 3), torch.ones(2)
    with pytest.raises(ValueError, match="unknown policy loss"):
        grpo_loss(x, x, adv, mask, policy_loss="ppo2")
    for name in ("cispo", "sapo", "gmpo"):
        with pytest.raises(ValueError, match="dual_clip"):
            grpo_loss(x, x, adv, mask, policy_loss=name, dual_clip=3.0)
    for name in ("grpo", "gspo"):
        with pytest.raises(ValueError, match="dual_clip"):
            grpo_loss(x, x, adv, mask, policy_loss=name, dual_clip=1.0)
    with pytest.raises(ValueError, match="temperatures"):
        grpo_loss(x, x, adv, mask, policy_loss="sapo", sapo_tau_neg=0.0)
    assert set(POLICY_LOSSES) == {"grpo", "gspo", "cispo", "sapo", "gmpo"}
