"""Per-token log-probabilities of completions under a model: the one forward pass RL and SFT share.

A row is a prompt (token ids, any length) followed by its completion (a row of a right-padded
(B, T) tensor whose real length is known). Rows are laid out the way generation saw them:

    [pad pad p0 p1 p2 | c0 c1 c2 c3 pad pad]        prompts left-padded to a common width P

so every completion starts at column P, position ids count real tokens only (left padding does
not shift positions), and the logits that predict the completion are the last T + 1 columns
minus the final one — the model is asked for exactly those (`logits_to_keep`), never for the
prompt's. Columns past the longest completion in the micro-batch are dropped before the forward.
Tokens after a completion's end are attended to by nothing before them (causal attention), so
their values cannot leak into the counted tokens; the mask built from lengths ignores them.

Deliberately left out: sequence packing and length bucketing (see the speed issue).
"""

from __future__ import annotations

import torch

from r1.rl import token_entropy, token_logprobs


def assemble(prompt_ids: list[list[int]], completion_ids: torch.Tensor, pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Left-padded prompts + completions → (input_ids (B, P+T), attention_mask, position_ids)."""
    width = max(len(ids) for ids in prompt_ids)
    B, T = completion_ids.shape
    prompts = torch.full((B, width), pad_id, dtype=torch.long)
    prompt_mask = torch.zeros((B, width), dtype=torch.long)
    for i, ids in enumerate(prompt_ids):
        if ids:
            prompts[i, width - len(ids):] = torch.tensor(ids)
            prompt_mask[i, width - len(ids):] = 1
    input_ids = torch.cat([prompts, completion_ids.long()], dim=1)  # (B, P+T)
    attention = torch.cat([prompt_mask, torch.ones((B, T), dtype=torch.long)], dim=1)  # (B, P+T)
    positions = (attention.cumsum(dim=1) - 1).clamp(min=0)  # (B, P+T)
    return input_ids, attention, positions


def completion_logprobs(
    model,
    prompt_ids: list[list[int]],
    completion_ids: torch.Tensor,
    *,
    pad_id: int,
    temperature: float = 1.0,
    entropy: bool = False,
    entropy_grad: bool = False,
    bf16: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """log π(c_t | prompt, c_<t) for every completion column, and optionally the entropy.

    Args:
        prompt_ids: B lists of prompt token ids.
        completion_ids: (B, T) completion tokens, right-padded.
        temperature: the sampling temperature the completions were drawn at, so that these are
            the log-probs of the distribution that actually produced them.
        bf16: run the model's matmuls in bf16 autocast (weights stay fp32; the log-softmax is
            always fp32, in r1.rl.token_logprobs).
    Returns:
        logp (B, T) float32 (differentiable when grad is enabled), entropy (B, T) or None.
    """
    input_ids, attention, positions = assemble(prompt_ids, completion_ids, pad_id)
    T = completion_ids.shape[1]
    device = next(model.parameters()).device
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
        out = model(
            input_ids=input_ids.to(device), attention_mask=attention.to(device), position_ids=positions.to(device),
            logits_to_keep=T + 1, use_cache=False,
        )
    logits = out.logits[:, :-1]  # (B, T, V): column t predicts completion token t
    logp = token_logprobs(logits, completion_ids.to(device).long(), temperature=temperature)  # (B, T)
    ent = None
    if entropy:
        with torch.set_grad_enabled(entropy_grad and torch.is_grad_enabled()):
            ent = token_entropy(logits, temperature=temperature)  # (B, T)
    return logp, ent


@torch.no_grad()
def batched_logprobs(model, prompt_ids: list[list[int]], completion_ids: torch.Tensor, lengths: torch.Tensor, *, pad_id: int, temperature: float, micro_batch_size: int, bf16: bool = False) -> torch.Tensor:
    """`completion_logprobs` over the whole batch in micro-batches, without grad → (B, T) float32.

    Columns after a row's length are 0. Used for π_old (μ > 1) and π_ref. Runs in eval mode, so
    that dropout (e.g. LoRA's) cannot make these fixed log-probs random.
    """
    B, T = completion_ids.shape
    result = torch.zeros((B, T), dtype=torch.float32)
    was_training = model.training
    model.eval()
    for start in range(0, B, micro_batch_size):
        rows = slice(start, start + micro_batch_size)
        width = int(lengths[rows].max())
        logp, _ = completion_logprobs(model, prompt_ids[rows], completion_ids[rows, :width], pad_id=pad_id, temperature=temperature, bf16=bf16)
        result[rows, :width] = logp.float().cpu()
    model.train(was_training)
    return result.masked_fill_(torch.arange(T)[None, :] >= lengths[:, None], 0.0)  # (B, T)
