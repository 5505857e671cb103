"""token_logprobs / token_entropy / head_logprobs: equal to the naive float32 computation, in value
and gradient, without ever allocating a float32 (B, T, V) tensor (head_logprobs: no logits at all)."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from r1.rl import head_logprobs, token_entropy, token_logprobs


def naive_logprobs(logits, tokens, temperature=1.0):
    logp = F.log_softmax(logits.float() / temperature, dim=-1)  # (B, T, V) float32
    return logp.gather(-1, tokens[..., None]).squeeze(-1)


def naive_entropy(logits, temperature=1.0):
    logp = F.log_softmax(logits.float() / temperature, dim=-1)
    return -(logp.exp() * logp).sum(-1)


SHAPES = [(1, 1, 7), (2, 5, 11), (3, 9, 50), (4, 1, 33)]


def test_hand_values():
    # two equally likely tokens → log 0.5; logits [2, 0] at τ = 2 → z = [1, 0],
    # log p(token 0) = 1 - log(e + 1) = -0.313262
    logits = torch.tensor([[[0.0, 0.0], [2.0, 0.0]]])
    out = token_logprobs(logits, torch.tensor([[1, 0]]), temperature=2.0)
    torch.testing.assert_close(out, torch.tensor([[math.log(0.5), 1 - math.log(math.e + 1)]]))
    # uniform over 4 → log 4; one-hot-ish (very peaked) → ≈ 0
    ent = token_entropy(torch.tensor([[[0.0, 0.0, 0.0, 0.0], [100.0, 0.0, 0.0, 0.0]]]))
    torch.testing.assert_close(ent, torch.tensor([[math.log(4), 0.0]]), atol=1e-6, rtol=0)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("chunk_rows", [1, 3, 4096])
@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_logprobs_match_naive_fp32_value_and_grad(shape, chunk_rows, temperature):
    torch.manual_seed(0)
    B, T, V = shape
    logits = (3 * torch.randn(B, T, V)).requires_grad_()
    tokens = torch.randint(V, (B, T))
    weights = torch.randn(B, T)  # a non-trivial upstream gradient

    out = token_logprobs(logits, tokens, temperature=temperature, chunk_rows=chunk_rows)
    assert out.shape == (B, T) and out.dtype == torch.float32
    (grad,) = torch.autograd.grad((out * weights).sum(), logits)

    ref = naive_logprobs(logits, tokens, temperature)
    (ref_grad,) = torch.autograd.grad((ref * weights).sum(), logits)
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=0)
    torch.testing.assert_close(grad, ref_grad, atol=1e-6, rtol=0)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("chunk_rows", [1, 3, 4096])
def test_entropy_matches_naive_fp32_value_and_grad(shape, chunk_rows):
    torch.manual_seed(1)
    B, T, V = shape
    logits = (3 * torch.randn(B, T, V)).requires_grad_()
    weights = torch.randn(B, T)
    out = token_entropy(logits, temperature=0.8, chunk_rows=chunk_rows)
    (grad,) = torch.autograd.grad((out * weights).sum(), logits)
    ref = naive_entropy(logits, 0.8)
    (ref_grad,) = torch.autograd.grad((ref * weights).sum(), logits)
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=0)
    torch.testing.assert_close(grad, ref_grad, atol=1e-6, rtol=0)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_logits_match_fp32_naive_of_the_same_values(dtype):
    torch.manual_seed(2)
    logits = (4 * torch.randn(3, 6, 40)).to(dtype).requires_grad_()
    tokens = torch.randint(40, (3, 6))
    out = token_logprobs(logits, tokens, temperature=0.9, chunk_rows=5)
    ent = token_entropy(logits, temperature=0.9, chunk_rows=5)
    assert out.dtype == ent.dtype == torch.float32
    # the same low-precision numbers, upcast: the float32 math must agree to float32 precision
    torch.testing.assert_close(out, naive_logprobs(logits.detach(), tokens, 0.9), atol=1e-6, rtol=0)
    torch.testing.assert_close(ent, naive_entropy(logits.detach(), 0.9), atol=1e-6, rtol=0)
    # gradients: computed in float32 and rounded once to `dtype`, exactly as the naive graph does
    upcast = logits.detach().float().requires_grad_()
    for ours, naive in [(out, naive_logprobs(upcast, tokens, 0.9)), (ent, naive_entropy(upcast, 0.9))]:
        (grad,) = torch.autograd.grad(ours.sum(), logits)
        (ref_grad,) = torch.autograd.grad(naive.sum(), upcast)
        assert grad.dtype == dtype
        torch.testing.assert_close(grad, ref_grad.to(dtype), atol=0, rtol=0)


def test_no_grad_path_and_non_contiguous_input():
    torch.manual_seed(3)
    full = torch.randn(2, 7, 13)
    ids = torch.randint(13, (2, 7))
    logits, tokens = full[:, :-1], ids[:, 1:]  # the caller's shift: non-contiguous view
    with torch.no_grad():
        out = token_logprobs(logits, tokens, chunk_rows=4)
    torch.testing.assert_close(out, naive_logprobs(logits, tokens), atol=1e-6, rtol=0)


class Float32Allocations(TorchDispatchMode):
    """Records the element count of every float32 tensor produced by any op (forward and
    backward, since autograd runs CPU backward ops on this thread)."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for o in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(o, torch.Tensor) and o.dtype == torch.float32:
                self.largest = max(self.largest, o.numel())
        return out


def test_bf16_logits_never_materialize_float32_BTV():
    torch.manual_seed(4)
    B, T, V, chunk = 4, 16, 64, 8
    logits = torch.randn(B, T, V).bfloat16().requires_grad_()
    tokens = torch.randint(V, (B, T))

    with Float32Allocations() as seen:
        loss = token_logprobs(logits, tokens, chunk_rows=chunk).sum()
        loss = loss + token_entropy(logits, chunk_rows=chunk).sum()
        loss.backward()
    assert logits.grad is not None and logits.grad.dtype == torch.bfloat16
    assert seen.largest <= chunk * V  # one chunk, forward and backward

    # the detector is not vacuous: the naive computation trips it
    with Float32Allocations() as seen_naive:
        naive_logprobs(logits, tokens).sum().backward()
    assert seen_naive.largest >= B * T * V


def test_bf16_logits_keep_no_float32_tensor_for_backward():
    # The largest single allocation is not the whole story: without checkpointing, each
    # chunk's float32 log-softmax would be *kept* for backward, i.e. (B·T, V) float32 in
    # total. Record every tensor autograd saves while the graph is built.
    logits = torch.randn(4, 16, 64).bfloat16().requires_grad_()
    tokens = torch.randint(64, (4, 16))

    def saved_float32(fn):
        sizes = []

        def pack(t):
            if t.dtype == torch.float32:
                sizes.append(t.numel())
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            fn()
        return sum(sizes)

    assert saved_float32(lambda: token_logprobs(logits, tokens, chunk_rows=8)) == 0
    assert saved_float32(lambda: token_entropy(logits, chunk_rows=8)) == 0
    assert saved_float32(lambda: naive_logprobs(logits, tokens)) >= 4 * 16 * 64  # not vacuous


def test_shape_mismatch_raises():
    with pytest.raises(ValueError):
        token_logprobs(torch.zeros(2, 3, 5), torch.zeros(2, 4, dtype=torch.long))


# --- head_logprobs: logits formed from hidden states chunk by chunk ------------------------------


def loop_head_logprobs(hidden, weight, tokens, temperature):
    """Row by row: z = W h, then the float32 log-softmax and entropy of z / τ."""
    logps, ents = [], []
    for h, y in zip(hidden, tokens):
        logp = F.log_softmax((weight @ h).float() / temperature, dim=-1)  # (V,)
        logps.append(logp[y])
        ents.append(-(logp.exp() * logp).sum())
    return torch.stack(logps), torch.stack(ents)


def test_head_logprobs_hand_values():
    # z = W h = [1, 0]: log p(token 0) = 1 − log(e + 1) = −0.313262, p = [0.731059, 0.268941],
    # H = −Σ p log p = 0.731059 · 0.313262 + 0.268941 · 1.313262 = 0.582203
    logp, ent = head_logprobs(
        torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0], [0.0, 0.0]]), torch.tensor([0]), entropy=True
    )
    torch.testing.assert_close(logp, torch.tensor([1 - math.log(math.e + 1)]))
    torch.testing.assert_close(ent, torch.tensor([0.582203]), atol=1e-6, rtol=0)
    # τ = 2 halves z: [0.5, 0] → log p(token 1) = −log(1 + e^0.5) = −0.974077; no entropy asked → None
    logp, ent = head_logprobs(
        torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0], [0.0, 0.0]]), torch.tensor([1]), temperature=2.0
    )
    torch.testing.assert_close(logp, torch.tensor([-math.log(1 + math.exp(0.5))]))
    assert ent is None


@pytest.mark.parametrize("chunk_rows", [1, 3, 512])
@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_head_logprobs_match_the_loop_reference_in_value_and_grad(chunk_rows, temperature):
    torch.manual_seed(5)
    N, H, V = 11, 8, 37
    hidden = torch.randn(N, H).requires_grad_()
    weight = torch.randn(V, H).requires_grad_()
    tokens = torch.randint(V, (N,))
    a, b = torch.randn(N), torch.randn(N)  # non-trivial upstream gradients for logp and entropy

    logp, ent = head_logprobs(hidden, weight, tokens, temperature=temperature, entropy=True, chunk_rows=chunk_rows)
    assert logp.shape == ent.shape == (N,) and logp.dtype == ent.dtype == torch.float32
    grads = torch.autograd.grad((a * logp + b * ent).sum(), (hidden, weight))
    ref_logp, ref_ent = loop_head_logprobs(hidden, weight, tokens, temperature)
    ref_grads = torch.autograd.grad((a * ref_logp + b * ref_ent).sum(), (hidden, weight))
    # matmul and matrix-vector products round differently: agreement to float32 precision
    torch.testing.assert_close(logp, ref_logp, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(ent, ref_ent, atol=1e-6, rtol=1e-6)
    for grad, ref_grad in zip(grads, ref_grads):
        torch.testing.assert_close(grad, ref_grad, atol=1e-5, rtol=1e-6)
    assert min(float(g.abs().max()) for g in ref_grads) > 1e-2  # not a comparison of zeros


def test_head_logprobs_equal_token_logprobs_of_the_full_logits_under_bf16_autocast():
    """The head path inside bf16 autocast = the model's bf16 logits, then token_logprobs."""
    torch.manual_seed(6)
    hidden, weight, tokens = torch.randn(2, 7, 16), torch.randn(50, 16), torch.randint(50, (2, 7))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours, ent = head_logprobs(
            hidden.view(14, 16), weight, tokens.view(14), temperature=0.9, entropy=True, chunk_rows=4
        )
        logits = F.linear(hidden, weight)  # (2, 7, 50) bf16
    assert logits.dtype == torch.bfloat16
    torch.testing.assert_close(ours.view(2, 7), token_logprobs(logits, tokens, temperature=0.9), atol=1e-6, rtol=0)
    torch.testing.assert_close(ent.view(2, 7), token_entropy(logits, temperature=0.9), atol=1e-6, rtol=0)


def test_head_logprobs_never_hold_more_than_a_chunk_of_logits():
    torch.manual_seed(7)
    N, H, V, chunk = 64, 8, 64, 8
    hidden = torch.randn(N, H).requires_grad_()
    weight = torch.randn(V, H).requires_grad_()
    tokens = torch.randint(V, (N,))
    with Float32Allocations() as seen:
        logp, ent = head_logprobs(hidden, weight, tokens, entropy=True, chunk_rows=chunk)
        (logp.sum() + ent.sum()).backward()
    assert seen.largest <= max(chunk * V, V * H)  # a chunk's logits, or the weight's gradient
    saved = []  # what autograd keeps, except references to W itself

    def keep(t):
        if t.untyped_storage().data_ptr() != weight.untyped_storage().data_ptr():
            saved.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
        head_logprobs(hidden, weight, tokens, chunk_rows=chunk)
    assert sum(saved) <= N * H + N  # the hidden rows and the tokens: no logits
    with torch.no_grad():
        torch.testing.assert_close(
            head_logprobs(hidden, weight, tokens, chunk_rows=chunk)[0],
            loop_head_logprobs(hidden, weight, tokens, 1.0)[0],
            atol=1e-6,
            rtol=1e-6,
        )


def test_head_logprobs_shape_errors_and_empty_input():
    with pytest.raises(ValueError):
        head_logprobs(torch.zeros(3, 4), torch.zeros(5, 2), torch.zeros(3, dtype=torch.long))
    logp, ent = head_logprobs(torch.zeros(0, 4), torch.zeros(5, 4), torch.zeros(0, dtype=torch.long), entropy=True)
    assert logp.shape == ent.shape == (0,)
