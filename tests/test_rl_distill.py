"""On-policy distillation math: hand-derived values, a slow per-row loop reference, gradients (finite
differences, closed forms), masking, micro-batch invariance, GKD's JSD limits, and the sampled-token
policy loss checked against the exact reverse-KL gradient by enumerating every token."""

import math

import pytest
import torch

from r1.rl import (
    DISTILL_LOSSES,
    LOSS_AGGREGATIONS,
    aggregate,
    combine_metrics,
    distill_divergence,
    distill_metrics,
)

NAMES = sorted(DISTILL_LOSSES)
AGGS = sorted(LOSS_AGGREGATIONS)
LN2, LN3 = math.log(2), math.log(3)
F64 = torch.float64


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny tensors gain nothing from more threads (on a busy machine they only spin-wait); restored after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def lengths_mask(lengths, T, dtype=torch.float32):
    """(B, T) mask from lengths, as the trainer builds it."""
    return (torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]).to(dtype)


def random_logits(B, T, V, seed, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    student = 2 * torch.randn(B, T, V, generator=g, dtype=dtype)
    teacher = student + 1.5 * torch.randn(B, T, V, generator=g, dtype=dtype)  # related, not equal
    lengths = torch.randint(0, T + 1, (B,), generator=g).tolist()
    return student, teacher, lengths


def dirty(x, mask, value):
    """x with every masked position (every masked row, for logits) set to `value`."""
    pad = (mask == 0) if x.dim() == 2 else (mask == 0)[..., None].expand_as(x)
    return torch.where(pad, torch.full_like(x, value), x)


# --- slow reference: one row at a time, python floats -----------------------------------------


def py_log_softmax(row, tau):
    z = [x / tau for x in row]
    top = max(z)
    lse = top + math.log(sum(math.exp(x - top) for x in z))
    return [x - lse for x in z]


def py_kl(logp, logq):
    """Σ p (log p - log q) with 0 log 0 = 0."""
    return sum(math.exp(a) * (a - b) for a, b in zip(logp, logq) if a > -math.inf)


def reference_row(s, t, name, *, tau, beta):
    ls, lt = py_log_softmax(s, tau), py_log_softmax(t, tau)
    if name == "reverse-kl":
        return py_kl(ls, lt)
    if name == "forward-kl":
        return py_kl(lt, ls)
    lm = [math.log(beta * math.exp(b) + (1 - beta) * math.exp(a)) for a, b in zip(ls, lt)]
    return beta * py_kl(lt, lm) + (1 - beta) * py_kl(ls, lm)


def reference(student, teacher, lengths, name, *, tau, beta):
    B, T, _ = student.shape
    out = [[0.0] * T for _ in range(B)]
    for i in range(B):
        for t in range(lengths[i]):
            out[i][t] = reference_row(student[i, t].tolist(), teacher[i, t].tolist(), name, tau=tau, beta=beta)
    return torch.tensor(out, dtype=F64)


# --- full-vocabulary divergences ---------------------------------------------------------------


def test_hand_values():
    # π_s = softmax([0, 0]) = [1/2, 1/2], π_t = softmax([0, log 3]) = [1/4, 3/4]; second position masked
    # (garbage rows). reverse: ½ log(½/¼) + ½ log(½/¾) = ½ log(4/3); forward: ¼ log(¼/½) + ¾ log(¾/½).
    # jsd_β: m = β π_t + (1-β) π_s; β = ½ → m = [3/8, 5/8],
    #   ½ (¼ log(2/3) + ¾ log(6/5)) + ½ (½ log(4/3) + ½ log(4/5)) = 0.0338221;
    # β = ¼ → m = [7/16, 9/16], ¼ (¼ log(4/7) + ¾ log(4/3)) + ¾ (½ log(8/7) + ½ log(8/9)) = 0.0248700.
    student = torch.tensor([[[0.0, 0.0], [float("nan"), 1e30]]])
    teacher = torch.tensor([[[0.0, LN3], [float("inf"), -float("inf")]]])
    mask = torch.tensor([[1, 0]])
    jsd_half = 0.5 * (0.25 * math.log(2 / 3) + 0.75 * math.log(6 / 5)) + 0.5 * (
        0.5 * math.log(4 / 3) + 0.5 * math.log(0.8)
    )
    jsd_quarter = 0.25 * (0.25 * math.log(4 / 7) + 0.75 * math.log(4 / 3)) + 0.75 * (
        0.5 * math.log(8 / 7) + 0.5 * math.log(8 / 9)
    )
    expected = {
        ("reverse-kl", 0.5): 0.5 * math.log(4 / 3),
        ("forward-kl", 0.5): 0.25 * math.log(0.5) + 0.75 * math.log(1.5),
        ("jsd", 0.5): jsd_half,
        ("jsd", 0.25): jsd_quarter,
    }
    assert expected[("jsd", 0.5)] == pytest.approx(0.0338221, abs=1e-7)
    assert expected[("jsd", 0.25)] == pytest.approx(0.0248700, abs=1e-7)
    for (name, beta), value in expected.items():
        out = distill_divergence(student, teacher, mask, divergence=name, beta=beta)
        assert out.dtype == torch.float32
        torch.testing.assert_close(out, torch.tensor([[value, 0.0]]), atol=1e-7, rtol=0)
        # the same distributions at τ = 2 from logits scaled by 2
        hot = distill_divergence(2 * student, 2 * teacher, mask, divergence=name, beta=beta, temperature=2.0)
        torch.testing.assert_close(hot, torch.tensor([[value, 0.0]]), atol=1e-7, rtol=0)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", [(1, 1, 2), (2, 3, 5), (4, 5, 7)])
@pytest.mark.parametrize("chunk_rows", [1, 3, 1024])
def test_matches_loop_reference(name, shape, chunk_rows):
    for seed, (tau, beta) in enumerate([(1.0, 0.5), (0.7, 0.1), (1.3, 0.9)]):
        student, teacher, lengths = random_logits(*shape, seed)
        if seed == 1:
            lengths[0] = 0  # an all-masked row
        mask = lengths_mask(lengths, shape[1], dtype=torch.bool if seed % 2 else torch.float32)
        kw = dict(temperature=tau, beta=beta, chunk_rows=chunk_rows)
        out = DISTILL_LOSSES[name](dirty(student, mask, float("nan")), dirty(teacher, mask, float("inf")), mask, **kw)
        expected = reference(student, teacher, lengths, name, tau=tau, beta=beta)
        assert out.dtype == F64
        torch.testing.assert_close(out, expected, atol=1e-12, rtol=0)
        assert (out[mask.bool()] > -1e-12).all()  # a divergence: ≥ 0 up to rounding


@pytest.mark.parametrize("name", NAMES)
def test_zero_with_zero_gradient_when_student_equals_teacher(name):
    student, _, _ = random_logits(3, 4, 6, seed=2)
    student.requires_grad_()
    out = DISTILL_LOSSES[name](student, student.detach().clone(), torch.ones(3, 4), beta=0.3, chunk_rows=5)
    torch.testing.assert_close(out, torch.zeros(3, 4, dtype=F64), atol=1e-15, rtol=0)
    (g,) = torch.autograd.grad(out.sum(), student)  # the minimum: the gradient vanishes
    torch.testing.assert_close(g, torch.zeros_like(g), atol=1e-15, rtol=0)


@pytest.mark.parametrize("name", NAMES)
def test_gradient_matches_finite_differences(name):
    student, teacher, _ = random_logits(2, 3, 4, seed=3)
    mask = lengths_mask([3, 1], 3)
    fn = DISTILL_LOSSES[name]

    def f(s):
        return fn(s, teacher, mask, temperature=0.8, beta=0.3, chunk_rows=2)  # chunked, checkpointed

    assert torch.autograd.gradcheck(f, (student.requires_grad_(),), eps=1e-6, atol=1e-8, rtol=1e-6)


def test_kl_gradients_closed_form():
    # z = logits / τ. forward: ∂/∂logits Σ π_t (log π_t - log π_s) = (π_s - π_t) / τ.
    # reverse: ∂/∂logits_j Σ π_s (log π_s - log π_t) = π_s,j (log π_s,j - log π_t,j - KL) / τ.
    tau = 0.6
    student, teacher, _ = random_logits(2, 3, 5, seed=4)
    mask = lengths_mask([3, 2], 3, dtype=F64)
    ls, lt = torch.log_softmax(student / tau, -1), torch.log_softmax(teacher / tau, -1)
    student.requires_grad_()
    fwd = distill_divergence(student, teacher, mask, divergence="forward-kl", temperature=tau, chunk_rows=4)
    (g,) = torch.autograd.grad(fwd.sum(), student)
    torch.testing.assert_close(g, (ls.exp() - lt.exp()) / tau * mask[..., None], atol=1e-14, rtol=0)
    rev = distill_divergence(student, teacher, mask, divergence="reverse-kl", temperature=tau, chunk_rows=4)
    (g,) = torch.autograd.grad(rev.sum(), student)
    kl = (ls.exp() * (ls - lt)).sum(-1, keepdim=True)
    torch.testing.assert_close(g, ls.exp() * (ls - lt - kl) / tau * mask[..., None], atol=1e-14, rtol=0)


@pytest.mark.parametrize("garbage", [float("nan"), float("inf"), -float("inf"), 1e30])
@pytest.mark.parametrize("name", NAMES)
def test_masked_garbage_gets_exactly_zero_value_and_gradient(name, garbage):
    student, teacher, _ = random_logits(4, 5, 6, seed=5)
    mask = lengths_mask([5, 2, 0, 1], 5)
    pad = mask == 0
    kw = dict(divergence=name, beta=0.4, chunk_rows=3)

    clean_s = student.clone().requires_grad_()
    clean = distill_divergence(clean_s, teacher, mask, **kw)
    clean.sum().backward()

    dirty_s = dirty(student, mask, garbage).requires_grad_()
    out = distill_divergence(dirty_s, dirty(teacher, mask, -garbage), mask, **kw)
    out.sum().backward()
    assert torch.equal(out, clean) and (out[pad] == 0).all()
    assert torch.equal(dirty_s.grad, clean_s.grad) and (dirty_s.grad[pad] == 0).all()


def test_teacher_may_rule_out_tokens():
    # teacher logit -inf: 0 log 0 = 0 in forward-kl and jsd (finite, finite gradient); reverse-kl = +inf
    student, teacher, _ = random_logits(2, 2, 4, seed=6)
    teacher[:, :, 0] = -float("inf")
    mask, lengths = torch.ones(2, 2), [2, 2]
    for name in ["forward-kl", "jsd"]:
        s = student.clone().requires_grad_()
        out = distill_divergence(s, teacher, mask, divergence=name, beta=0.3)
        torch.testing.assert_close(
            out, reference(student, teacher, lengths, name, tau=1.0, beta=0.3), atol=1e-12, rtol=0
        )
        (g,) = torch.autograd.grad(out.sum(), s)
        assert torch.isfinite(g).all()
    assert (distill_divergence(student, teacher, mask, divergence="reverse-kl") == math.inf).all()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("aggregation", AGGS)
def test_micro_batches_sum_to_full_batch_loss_gradient_and_metrics(name, aggregation):
    B, T, V = 7, 4, 5
    student, teacher, lengths = random_logits(B, T, V, seed=7)
    lengths[3] = 0
    mask = lengths_mask(lengths, T, dtype=F64)
    kw = dict(divergence=name, beta=0.3, temperature=0.9, chunk_rows=3)

    full_s = student.clone().requires_grad_()
    per_token = distill_divergence(full_s, teacher, mask, **kw)
    full = aggregate(per_token, mask, max_len=T, aggregation=aggregation)
    full.backward()
    full_metrics = distill_metrics(per_token, mask, name=name)

    mb_s = student.clone().requires_grad_()
    total, parts = 0.0, []
    for sl in [slice(0, 2), slice(2, 3), slice(3, 4), slice(4, 7)]:  # uneven; one micro-batch all masked
        part_tokens = distill_divergence(mb_s[sl], teacher[sl], mask[sl], **kw)
        part = aggregate(
            part_tokens, mask[sl], total_seqs=B, total_tokens=mask.sum().item(), max_len=T, aggregation=aggregation
        )
        part.backward()  # gradient accumulation
        total = total + part.detach()
        parts.append(distill_metrics(part_tokens, mask[sl], name=name))

    torch.testing.assert_close(total, full.detach(), atol=1e-12, rtol=0)
    torch.testing.assert_close(mb_s.grad, full_s.grad, atol=1e-12, rtol=0)
    combined = combine_metrics(parts)
    assert set(combined) == set(full_metrics) == {name, name + "_sum", "tokens"}
    for key in full_metrics:
        torch.testing.assert_close(combined[key], full_metrics[key], atol=1e-6, rtol=0)


def test_jsd_limits_symmetry_and_bound():
    student, teacher, _ = random_logits(3, 4, 6, seed=8)
    mask = torch.ones(3, 4)

    def jsd(s, t, beta):
        return distill_divergence(s, t, torch.ones(s.shape[:2]), divergence="jsd", beta=beta)

    fwd = distill_divergence(student, teacher, mask, divergence="forward-kl")
    rev = distill_divergence(student, teacher, mask, divergence="reverse-kl")
    # β → 0: JSD_β / β → KL(π_t ‖ π_s); β → 1: JSD_β / (1 - β) → KL(π_s ‖ π_t); the error is O(β), O(1 - β)
    torch.testing.assert_close(jsd(student, teacher, 1e-7) / 1e-7, fwd, atol=0, rtol=1e-5)
    torch.testing.assert_close(jsd(student, teacher, 1 - 1e-7) / 1e-7, rev, atol=0, rtol=1e-5)
    err = [(jsd(student, teacher, b) / b - fwd).abs().max().item() for b in (1e-3, 1e-4)]
    assert 5 < err[0] / err[1] < 20  # linear convergence
    # swapping the models swaps β and 1 - β; β = ½ is symmetric
    for beta in (0.2, 0.5, 0.85):
        torch.testing.assert_close(jsd(student, teacher, beta), jsd(teacher, student, 1 - beta), atol=1e-14, rtol=0)
    # 0 ≤ JSD_β ≤ h(β) = -β log β - (1-β) log(1-β), equality for disjoint supports:
    # h(¼) = ¼ log 4 + ¾ log(4/3) = 0.562335
    h = lambda b: -b * math.log(b) - (1 - b) * math.log(1 - b)  # noqa: E731
    assert h(0.25) == pytest.approx(0.562335, abs=1e-6)
    for beta in (0.25, 0.5, 0.9):
        assert (jsd(student, teacher, beta) <= h(beta)).all()
        apart = jsd(torch.tensor([[[40.0, -40.0]]], dtype=F64), torch.tensor([[[-40.0, 40.0]]], dtype=F64), beta)
        torch.testing.assert_close(apart, torch.tensor([[h(beta)]], dtype=F64), atol=1e-12, rtol=0)


def test_chunking_dtypes_and_teacher_gets_no_gradient():
    student, teacher, lengths = random_logits(3, 5, 4, seed=9)
    mask = lengths_mask(lengths, 5)
    for name in NAMES:
        outs = [DISTILL_LOSSES[name](student, teacher, mask, chunk_rows=n) for n in (1, 2, 7, 1024)]
        for out in outs[1:]:
            torch.testing.assert_close(out, outs[0], atol=1e-15, rtol=0)
        # bf16 logits: upcast per chunk, float32 result, the same numbers as upcasting first
        s16, t16 = student.to(torch.bfloat16), teacher.to(torch.bfloat16)
        out16 = DISTILL_LOSSES[name](s16, t16, mask, chunk_rows=4)
        assert out16.dtype == torch.float32
        assert torch.equal(out16, DISTILL_LOSSES[name](s16.float(), t16.float(), mask, chunk_rows=4))
        # the teacher is a constant even when handed over with a graph attached
        s, t = student.clone().requires_grad_(), teacher.clone().requires_grad_()
        out = DISTILL_LOSSES[name](s, t, mask, chunk_rows=4)
        out.sum().backward()
        assert t.grad is None and s.grad is not None
        with torch.no_grad():
            assert not DISTILL_LOSSES[name](s, t, mask).requires_grad
        empty = DISTILL_LOSSES[name](student[:0], teacher[:0], mask[:0])
        assert empty.shape == (0, 5)


def test_argument_errors():
    s, mask = torch.zeros(2, 3, 4), torch.ones(2, 3)
    with pytest.raises(ValueError, match="unknown distillation divergence"):
        distill_divergence(s, s, mask, divergence="tvd")
    for beta in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="0 < beta < 1"):
            distill_divergence(s, s, mask, divergence="jsd", beta=beta)
    with pytest.raises(ValueError, match=r"\(B, T, V\)"):
        distill_divergence(s, torch.zeros(2, 3, 5), mask)
    with pytest.raises(ValueError, match="mask"):
        distill_divergence(s, s, torch.ones(2, 4))
    with pytest.raises(ValueError, match="chunk_rows"):
        distill_divergence(s, s, mask, chunk_rows=0)
    with pytest.raises(ValueError, match="temperature"):
        distill_divergence(s, s, mask, temperature=0.0)
    assert set(DISTILL_LOSSES) == {"reverse-kl", "forward-kl", "jsd"}
