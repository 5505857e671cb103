"""token_logprobs / token_entropy: equal to the naive float32 computation, in value and
gradient, without ever allocating a float32 (B, T, V) tensor."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from r1.rl import token_entropy, token_logprobs


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
