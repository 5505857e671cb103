"""The sampled-token form of on-policy distillation (r1/rl/distill.py): sampled_reverse_kl,
distill_policy_loss (its expected gradient by exact enumeration) and distill_metrics. The
full-vocabulary divergences: test_rl_distill.py."""

import itertools
import math

import pytest
import torch

from r1.rl import (
    aggregate,
    distill_divergence,
    distill_metrics,
    distill_policy_loss,
    sampled_reverse_kl,
)
from test_rl_distill import F64, LN2, dirty, lengths_mask, one_torch_thread, random_logits  # noqa: F401


# --- the sampled-token form ------------------------------------------------------------------


def test_sampled_reverse_kl_hand_values_masking_and_expectation():
    # log 0.5 - log 0.25 = log 2; masked positions hold garbage and give exactly 0
    student_logp = torch.tensor([[math.log(0.5), float("nan")]], requires_grad=True)
    teacher_logp = torch.tensor([[math.log(0.25), -float("inf")]])
    out = sampled_reverse_kl(student_logp, teacher_logp, torch.tensor([[1, 0]]))
    torch.testing.assert_close(out, torch.tensor([[LN2, 0.0]]))
    assert not out.requires_grad
    # E_{x ∼ π_s}[k(x)] = KL(π_s ‖ π_t): position t of a (1, V) row holds token t of one categorical
    student, teacher, _ = random_logits(1, 1, 6, seed=10)
    ls, lt = torch.log_softmax(student[0], -1), torch.log_softmax(teacher[0], -1)  # (1, V)
    k = sampled_reverse_kl(ls, lt, torch.ones(1, 6))  # (1, V)
    exact = distill_divergence(student, teacher, torch.ones(1, 1))  # (1, 1)
    torch.testing.assert_close((ls.exp() * k).sum(), exact[0, 0], atol=1e-15, rtol=0)


def test_distill_policy_loss_hand_values_and_masking():
    # π_old = 0.5, π_t = 0.25: A = -(log 0.5 - log 0.25) = -log 2. At π_s = π_old (ρ = 1): loss = -ρA = log 2
    # and ∂loss/∂logp = -ρA = log 2; with π_s = 1 (ρ = 2, the student moved): loss = 2 log 2, gradient 2 log 2.
    # Second position masked: garbage, exact 0 value and gradient.
    old = torch.tensor([[math.log(0.5), -float("inf")]], dtype=F64)
    teacher = torch.tensor([[math.log(0.25), float("inf")]], dtype=F64)
    mask = torch.tensor([[1.0, 0.0]])
    for student, expected in [(math.log(0.5), LN2), (0.0, 2 * LN2)]:
        logp = torch.tensor([[student, float("nan")]], dtype=F64, requires_grad=True)
        loss = distill_policy_loss(logp, old, teacher, mask)
        (g,) = torch.autograd.grad(loss.sum(), logp)
        torch.testing.assert_close(loss, torch.tensor([[expected, 0.0]], dtype=F64), atol=1e-15, rtol=0)
        torch.testing.assert_close(g, torch.tensor([[expected, 0.0]], dtype=F64), atol=1e-15, rtol=0)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("tau", [1.0, 0.7])
def test_policy_loss_expected_gradient_is_the_exact_reverse_kl_gradient(seed, tau):
    # One categorical over V tokens; row (1, V) holds every token once, so Σ_x π_s(x) ∇ loss(x) is the
    # exact expectation of the estimator's gradient under x ∼ π_s. It must equal ∇ KL(π_s ‖ π_t).
    V = 7
    student, teacher, _ = random_logits(1, 1, V, seed=seed)
    z = student.clone().requires_grad_()
    logp = torch.log_softmax(z[0] / tau, -1)  # (1, V)
    teacher_logp = torch.log_softmax(teacher[0] / tau, -1)  # (1, V)
    loss = distill_policy_loss(logp, logp.detach(), teacher_logp, torch.ones(1, V))  # (1, V)
    (expected_grad,) = torch.autograd.grad((logp.exp().detach() * loss).sum(), z, retain_graph=True)
    exact = distill_divergence(z, teacher, torch.ones(1, 1), divergence="reverse-kl", temperature=tau)
    (exact_grad,) = torch.autograd.grad(exact.sum(), z)
    torch.testing.assert_close(expected_grad, exact_grad, atol=1e-10, rtol=0)
    # off-policy: tokens from π_old, ρ reweights them: Σ_x π_old(x) ∇ loss(x) = E_{π_s}[(log π_old - log π_t) ∇ log π_s]
    old = torch.log_softmax((student[0] + 0.5 * torch.randn(1, V, dtype=F64)) / tau, -1)  # (1, V)
    loss = distill_policy_loss(logp, old, teacher_logp, torch.ones(1, V))
    (is_grad,) = torch.autograd.grad((old.exp() * loss).sum(), z, retain_graph=True)
    (target,) = torch.autograd.grad((logp.exp().detach() * (old - teacher_logp) * logp).sum(), z)
    torch.testing.assert_close(is_grad, target, atol=1e-12, rtol=0)


def test_policy_loss_on_sequences_is_the_per_token_gradient_with_the_prefix_held_fixed():
    # Two steps, tabular student: x1 ∼ π_s(·) (logits a (V,)), x2 ∼ π_s(· | x1) (logits b (V, V)).
    # Enumerating all V² completions, E[Σ_t ∇ loss_t] = ∇ [KL_1 + Σ_x1 sg(π_s(x1)) KL_2(x1)] (prefix fixed),
    # which differs from ∇ E[k_1 + k_2] (the sequence objective also moves the prefix distribution).
    V = 3
    g = torch.Generator().manual_seed(11)
    a, b = torch.randn(V, generator=g, dtype=F64), torch.randn(V, V, generator=g, dtype=F64)
    ta, tb = torch.randn(V, generator=g, dtype=F64), torch.randn(V, V, generator=g, dtype=F64)
    a.requires_grad_()
    b.requires_grad_()
    la, lb = torch.log_softmax(a, -1), torch.log_softmax(b, -1)  # (V,), (V, V)
    lta, ltb = torch.log_softmax(ta, -1), torch.log_softmax(tb, -1)
    seqs = list(itertools.product(range(V), repeat=2))
    logp = torch.stack([torch.stack([la[x1], lb[x1, x2]]) for x1, x2 in seqs])  # (V², 2)
    teacher_logp = torch.stack([torch.stack([lta[x1], ltb[x1, x2]]) for x1, x2 in seqs])  # (V², 2)
    weight = logp.sum(-1).exp().detach()  # (V²,) π_s(x1, x2)
    loss = distill_policy_loss(logp, logp.detach(), teacher_logp, torch.ones(len(seqs), 2))  # (V², 2)
    estimated = torch.autograd.grad((weight[:, None] * loss).sum(), (a, b), retain_graph=True)

    kl_1 = distill_divergence(a[None, None], ta[None, None], torch.ones(1, 1))[0, 0]
    kl_2 = distill_divergence(b[None], tb[None], torch.ones(1, V))[0]  # (V,) KL at each prefix x1
    per_token = torch.autograd.grad(kl_1 + (la.exp().detach() * kl_2).sum(), (a, b), retain_graph=True)
    for est, ref in zip(estimated, per_token):
        torch.testing.assert_close(est, ref, atol=1e-12, rtol=0)
    sequence = torch.autograd.grad((logp.sum(-1).exp() * (logp - teacher_logp).sum(-1)).sum(), (a, b))
    assert not torch.allclose(sequence[0], per_token[0], atol=1e-3)  # the first step's credit differs
    torch.testing.assert_close(sequence[1], per_token[1], atol=1e-12, rtol=0)  # the last step's does not


def test_policy_loss_masked_garbage_and_micro_batches():
    B, T = 5, 4
    g = torch.Generator().manual_seed(12)
    logp = -3 * torch.rand(B, T, generator=g, dtype=F64)
    old = logp + 0.3 * torch.randn(B, T, generator=g, dtype=F64)
    teacher = logp + torch.randn(B, T, generator=g, dtype=F64)
    mask = lengths_mask([4, 0, 2, 1, 3], T, dtype=F64)
    pad = mask == 0

    clean_logp = logp.clone().requires_grad_()
    clean = aggregate(distill_policy_loss(clean_logp, old, teacher, mask), mask)
    clean.backward()
    dirty_logp = dirty(logp, mask, float("nan")).requires_grad_()
    out = aggregate(
        distill_policy_loss(dirty_logp, dirty(old, mask, -float("inf")), dirty(teacher, mask, 1e30), mask), mask
    )
    out.backward()
    assert out.item() == clean.item() and torch.equal(dirty_logp.grad, clean_logp.grad)
    assert (dirty_logp.grad[pad] == 0).all()

    mb_logp, total = logp.clone().requires_grad_(), 0.0
    for sl in [slice(0, 2), slice(2, 5)]:
        part = aggregate(distill_policy_loss(mb_logp[sl], old[sl], teacher[sl], mask[sl]), mask[sl], total_seqs=B)
        part.backward()
        total = total + part.detach()
    torch.testing.assert_close(total, clean.detach(), atol=1e-12, rtol=0)
    torch.testing.assert_close(mb_logp.grad, clean_logp.grad, atol=1e-12, rtol=0)


def test_distill_metrics_hand_values():
    # unmasked 0.2 and 0.4: mean 0.3, sum 0.6, 2 tokens; the masked NaN is ignored
    m = distill_metrics(torch.tensor([[0.2, 0.4, float("nan")]], requires_grad=True), torch.tensor([[1, 1, 0]]))
    assert set(m) == {"distill", "distill_sum", "tokens"}
    for key, value in {"distill": 0.3, "distill_sum": 0.6, "tokens": 2}.items():
        assert m[key].item() == pytest.approx(value, abs=1e-7), key
    assert all(not v.requires_grad and v.dtype == torch.float32 for v in m.values())
    empty = distill_metrics(torch.zeros(1, 2), torch.zeros(1, 2), name="kl")
    assert {k: v.item() for k, v in empty.items()} == {"kl": 0.0, "kl_sum": 0.0, "tokens": 0.0}
