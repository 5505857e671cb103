"""Sample completions with Hugging Face `generate`, and describe them by their lengths.

The trainer and the evaluator both need the same thing from a rollout: for each prompt, n sampled
completions as token ids, each completion's length and whether it was cut off. The length is the
number of tokens up to and including the first stop token (EOS); everything after it is padding.
Pad and EOS are often the same token (SmolLM2, Qwen, Llama-3), so a mask built by comparing ids
with the pad id would also hide the EOS the model chose to emit — its learning signal to stop.
Masks here always come from lengths.

Prompts are left-padded into one batch; every prompt is repeated n times, so a GRPO group
(prompt i, samples 0..n-1) is rows i*n … i*n+n-1.

The other engines (r1/rollout/fast.py, r1/rollout/vllm_engine.py) keep this function's contract.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from r1.rollout.sampling import Sampling


@dataclass
class Rollout:
    prompt_ids: list[list[int]]  # one per row (prompts repeated n times)
    completion_ids: torch.Tensor  # (B, T) long, right-padded; values after `lengths` are meaningless
    lengths: torch.Tensor  # (B,) tokens up to and including the first stop token
    truncated: torch.Tensor  # (B,) bool: no stop token within max_new_tokens
    texts: list[str]  # decoded completions, special tokens removed
    # (B, T) the engine's log-prob of each sampled token (after temperature, before top-p; 0 past the end):
    # with Sampling.logprobs in fast and hf, always in vllm
    logprobs: torch.Tensor | None = None

    @property
    def mask(self) -> torch.Tensor:
        """(B, T) float: 1 for completion tokens that count (the EOS included), 0 after."""
        positions = torch.arange(self.completion_ids.shape[1])
        return (positions[None, :] < self.lengths[:, None]).float()


def stop_token_ids(model, tokenizer) -> list[int]:
    ids = model.generation_config.eos_token_id if model.generation_config is not None else None
    ids = [ids] if isinstance(ids, int) else list(ids or [])
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids


def completion_lengths(completion_ids: torch.Tensor, stop_ids: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Length up to and including the first stop token, and whether none was found.

    `completion_ids` (B, T) → (lengths (B,), truncated (B,) bool). A row without a stop token has
    length T and is truncated.
    """
    is_stop = torch.isin(completion_ids, torch.tensor(stop_ids, device=completion_ids.device))  # (B, T)
    any_stop = is_stop.any(dim=1)  # (B,)
    first = is_stop.int().argmax(dim=1)  # (B,) index of the first stop (0 when there is none)
    T = completion_ids.shape[1]
    lengths = torch.where(any_stop, first + 1, torch.full_like(first, T))
    return lengths, ~any_stop


def to_rollout(
    rows: list[list[int]], completion: torch.Tensor, stops: list[int], tokenizer, logprobs: torch.Tensor | None = None
) -> Rollout:
    """Sampled token ids (B, T), right-padded → a Rollout: lengths and truncation from the stop
    tokens, texts decoded up to each length; `logprobs` (an engine's own) are zeroed past it."""
    lengths, truncated = completion_lengths(completion, stops)
    if logprobs is not None:
        logprobs = logprobs.masked_fill(
            torch.arange(completion.shape[1], device=logprobs.device)[None, :] >= lengths[:, None], 0.0
        )
    texts = [tokenizer.decode(row[: int(length)], skip_special_tokens=True) for row, length in zip(completion, lengths)]
    return Rollout(
        prompt_ids=rows, completion_ids=completion, lengths=lengths, truncated=truncated, texts=texts, logprobs=logprobs
    )


@torch.no_grad()
def generate(model, tokenizer, prompt_ids: list[list[int]], sampling: Sampling = Sampling()) -> Rollout:
    """Sample `sampling.n` completions for each prompt (token ids, unpadded). Rows are grouped by prompt.

    dtype "bfloat16" runs the matmuls in bf16 autocast (the weights are not changed); temperature 0
    is greedy; ignore_eos forces max_new_tokens tokens (EOS suppressed until then).
    """
    s = sampling
    n = s.n
    rows = [ids for ids in prompt_ids for _ in range(n)]
    width = max(len(ids) for ids in rows)
    pad = tokenizer.pad_token_id
    input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in rows])  # (B, P) left-padded
    attention = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in rows])
    if s.seed is not None:
        torch.manual_seed(s.seed)
    stops = stop_token_ids(model, tokenizer)
    was_training = model.training
    model.eval()
    greedy = s.temperature == 0
    bf16 = s.resolved_dtype(model.device) == "bfloat16"
    with torch.autocast(device_type=model.device.type, dtype=torch.bfloat16, enabled=bf16):
        out = model.generate(
            input_ids=input_ids.to(model.device),
            attention_mask=attention.to(model.device),
            do_sample=not greedy,
            temperature=None if greedy else s.temperature,
            top_p=None if greedy else s.top_p,
            top_k=0,  # sample from the full distribution (top-p aside), as the paper's settings mean
            max_new_tokens=s.max_new_tokens,
            min_new_tokens=s.max_new_tokens if s.ignore_eos else 0,
            eos_token_id=stops,
            pad_token_id=pad,
        )
    completion = out[:, width:].cpu()  # (B, T)
    if completion.shape[1] == 0:
        completion = torch.full((len(rows), 1), pad)
    logprobs = None
    if s.logprobs and not greedy:  # generate's own scores are after top-p: score again, at the sampling precision
        with torch.autocast(device_type=model.device.type, dtype=torch.bfloat16, enabled=bf16):
            logprobs = own_logprobs(model, out, attention.to(model.device), width, s.temperature).cpu()
    model.train(was_training)
    return to_rollout(rows, completion, stops, tokenizer, logprobs=logprobs)


@torch.no_grad()
def own_logprobs(
    model, out: torch.Tensor, prompt_mask: torch.Tensor, width: int, temperature: float, rows: int = 8
) -> torch.Tensor:
    """log π(token) of every generated token of `out` (B, P + T) at `temperature` → (B, T): a
    forward pass over the left-padded prompts (`prompt_mask` (B, P)) and their completions, `rows`
    at a time (the (rows, T, V) logits are the memory it needs)."""
    attention = torch.cat([prompt_mask, torch.ones_like(out[:, width:])], dim=1)  # past a stop: zeroed later
    parts = []
    for i in range(0, out.shape[0], rows):
        ids = out[i : i + rows]
        logits = model(input_ids=ids, attention_mask=attention[i : i + rows]).logits[:, width - 1 : -1].float()
        parts.append(torch.log_softmax(logits / temperature, dim=-1).gather(-1, ids[:, width:, None])[..., 0])
    return torch.cat(parts)
