"""Per-token log-probabilities and entropies from logits, in float32, chunk by chunk.

Policy-gradient losses need log π(o_t | q, o_<t) of the sampled tokens in float32
(bf16 log-probs are too coarse for ratios exp(logp - old_logp) near 1). Upcasting the
whole logits tensor would cost B·T·V·4 bytes (49k vocab × 8k tokens ≈ 1.6 GB), and
autograd would keep that float32 copy alive until backward. So both functions here:

  * split the flattened B·T rows into chunks of `chunk_rows`;
  * upcast, divide by the temperature and normalize one chunk at a time;
  * wrap each chunk in activation checkpointing, so autograd keeps only the chunk's
    (low-precision) input and recomputes the float32 work chunk by chunk in backward.

Peak float32 memory is a few chunk_rows × V tensors, in forward and in backward; the
values are the same as the naive `log_softmax(logits.float() / temperature)`.

Shift contract (the caller shifts; these functions never do): for a sequence
`input_ids` (B, L) and model logits (B, L, V), position t predicts token t + 1:

    logits = model(input_ids).logits[:, :-1]   # (B, L-1, V)
    tokens = input_ids[:, 1:]                  # (B, L-1)
    logp = token_logprobs(logits, tokens)      # (B, L-1)
    # logp[b, t] = log p(input_ids[b, t+1] | input_ids[b, :t+1])

`head_logprobs` goes one step further for a model whose logits are a plain linear head over
its final hidden states (z = W h): it takes the hidden states and the head's weight and forms the
logits one chunk at a time inside the checkpointed function, so no (B·T, V) logits tensor exists
at all — neither the model's (B, T, V) output, its float32 upcast, nor its gradient (docs/perf.md:
on the standard GRPO micro-batch of 16 × 128 tokens that is 400 MB per copy in fp32).

Deliberately left out: masking (callers mask with lengths) and the shift itself.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint


def _per_row(fn: Callable[..., Tensor], logits: Tensor, *extra: Tensor, chunk_rows: int) -> Tensor:
    """Apply `fn(logits_rows (n, V), *extra_rows (n,)) -> (n,)` over chunks of B·T rows.

    Returns (B, T) float32. Each chunk is checkpointed when a graph is being built, so
    the float32 intermediates of `fn` are never stored for backward.
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    B, T, V = logits.shape
    rows = logits.reshape(B * T, V)  # (N, V); a copy, in the logits' dtype, if non-contiguous
    extra_rows = [e.reshape(B * T) for e in extra]  # each (N,)
    grad = torch.is_grad_enabled() and logits.requires_grad
    out = []
    for i in range(0, B * T, chunk_rows):
        args = [rows[i : i + chunk_rows]] + [e[i : i + chunk_rows] for e in extra_rows]
        out.append(checkpoint(fn, *args, use_reentrant=False) if grad else fn(*args))  # (n,)
    if not out:  # B·T == 0
        return logits.new_zeros((B, T), dtype=torch.float32)
    return torch.cat(out).view(B, T)


def _scaled(rows: Tensor, temperature: float) -> Tensor:
    """float32 logits / τ; at τ = 1 the upcast alone (a pass over n × V values saved)."""
    rows = rows.float()
    return rows if temperature == 1.0 else rows / temperature


def token_logprobs(logits: Tensor, tokens: Tensor, *, temperature: float = 1.0, chunk_rows: int = 4096) -> Tensor:
    """log π(token) under softmax(logits / temperature), computed in float32.

        logp[b, t] = log_softmax(float(logits[b, t]) / τ)[tokens[b, t]]

    Use the sampling temperature τ, so the log-probs are those of the distribution the
    completions were drawn from (π_old in the GRPO ratio; DeepSeekMath arXiv 2402.03300 §4.1).

    Args:
        logits: (B, T, V), any float dtype (bf16/fp16/fp32), already shifted (module doc).
        tokens: (B, T) long, the tokens whose log-probs are wanted.
        temperature: τ > 0.
        chunk_rows: rows of the flattened (B·T, V) logits upcast at once.
    Returns:
        (B, T) float32, differentiable w.r.t. logits.
    Example: logits [[[0, 0]]] (one position, two equally likely tokens), tokens [[1]]
        → [[log 0.5]] = [[-0.6931]].
    """
    if tokens.shape != logits.shape[:2]:
        raise ValueError(f"tokens {tuple(tokens.shape)} must match logits {tuple(logits.shape)}[:2]")

    def chunk(rows: Tensor, toks: Tensor) -> Tensor:
        logp = F.log_softmax(_scaled(rows, temperature), dim=-1)  # (n, V) float32
        return logp.gather(-1, toks[:, None]).squeeze(-1)  # (n,)

    return _per_row(chunk, logits, tokens, chunk_rows=chunk_rows)


def token_entropy(logits: Tensor, *, temperature: float = 1.0, chunk_rows: int = 4096) -> Tensor:
    """Entropy of the sampling distribution at each position, in float32 (nats).

        H[b, t] = -Σ_v p_v log p_v,   p = softmax(float(logits[b, t]) / τ)

    Used as a metric (entropy collapse) and, with a coefficient, as a bonus in the loss.

    Args:
        logits: (B, T, V), any float dtype, already shifted.
        temperature: τ > 0.
        chunk_rows: rows of the flattened (B·T, V) logits upcast at once.
    Returns:
        (B, T) float32, differentiable w.r.t. logits.
    Example: logits [[[0, 0, 0, 0]]] (uniform over 4) → [[log 4]] = [[1.3863]].
    """

    def chunk(rows: Tensor) -> Tensor:
        logp = F.log_softmax(_scaled(rows, temperature), dim=-1)  # (n, V) float32
        return -(logp.exp() * logp).sum(-1)  # (n,)

    return _per_row(chunk, logits, chunk_rows=chunk_rows)


def head_logprobs(
    hidden: Tensor,
    weight: Tensor,
    tokens: Tensor,
    *,
    temperature: float = 1.0,
    entropy: bool = False,
    chunk_rows: int = 512,
) -> tuple[Tensor, Tensor | None]:
    """log π(token) (and the entropy) under softmax(W h / τ), the logits formed chunk by chunk.

        z_i = W h_i                                   (V,) in the matmul's dtype (bf16 under autocast)
        logp_i = log_softmax(float(z_i) / τ)[y_i]
        H_i = -Σ_v p_iv log p_iv,   p_i = softmax(float(z_i) / τ)

    The same numbers as `token_logprobs(linear(hidden, W), tokens)`, with a peak of a few
    chunk_rows × V float32 tensors instead of N × V: each chunk's matmul, softmax and gather run
    inside activation checkpointing, which keeps only the chunk's hidden rows (and a reference to
    W) for backward and recomputes the chunk's logits there (one extra n × H × V matmul per chunk).
    Gradients flow into both `hidden` and `weight` (a tied embedding gets the head's share).

    Args:
        hidden: (N, H) final hidden states, already shifted: row i predicts tokens[i].
        weight: (V, H) the output head (no bias).
        tokens: (N,) long.
        temperature: τ > 0, the sampling temperature.
        entropy: also return H (N,), differentiable like logp (detach it for a metric).
        chunk_rows: rows whose logits exist at once.
    Returns:
        (logp (N,) float32, entropy (N,) float32 or None).
    Example: hidden [[1, 0]], W [[1, 0], [0, 0]] (z = [1, 0]), tokens [0]
        → logp [1 − log(e + 1)] = [-0.3133], entropy [0.5822].
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    if hidden.dim() != 2 or tokens.shape != hidden.shape[:1] or weight.shape[1:] != hidden.shape[1:]:
        shapes = f"hidden {tuple(hidden.shape)}, weight {tuple(weight.shape)}, tokens {tuple(tokens.shape)}"
        raise ValueError(f"{shapes}: want (N, H), (V, H), (N,)")

    def chunk(h: Tensor, w: Tensor, toks: Tensor) -> tuple[Tensor, Tensor]:
        logp = F.log_softmax(_scaled(F.linear(h, w), temperature), dim=-1)  # (n, V) float32
        picked = logp.gather(-1, toks[:, None]).squeeze(-1)  # (n,)
        return picked, -(logp.exp() * logp).sum(-1) if entropy else picked.new_zeros(0)

    grad = torch.is_grad_enabled() and (hidden.requires_grad or weight.requires_grad)
    logps, ents = [hidden.new_zeros(0, dtype=torch.float32)], [hidden.new_zeros(0, dtype=torch.float32)]
    for i in range(0, hidden.shape[0], chunk_rows):
        args = (hidden[i : i + chunk_rows], weight, tokens[i : i + chunk_rows])
        logp, ent = checkpoint(chunk, *args, use_reentrant=False) if grad else chunk(*args)
        logps.append(logp)
        ents.append(ent)
    return torch.cat(logps), torch.cat(ents) if entropy else None
