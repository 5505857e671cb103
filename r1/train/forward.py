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

**Shared prompts.** GRPO rows come in groups that share a prompt. When a batch holds repeated
prompts (and the model keeps a KV cache: not under gradient checkpointing), each distinct prompt
runs once, its keys/values are copied to its rows (an autograd-tracked `index_select`, so the
gradient still flows into the prompt's computation), and only the completions run per row. The
log-prob of completion token 0 comes from the prompt pass's last logit. Same numbers as the plain
layout (tests/test_train_infra.py), with the prompt computed once per group instead of per row:
on the standard GRPO work (~104-token prompts, 128-token completions, 8 rows per prompt) about
40% fewer tokens through the model.

**No (B, T, V) logits.** For a model whose logits are a plain linear head over its final hidden
states (`output_head`: Llama-family HF models, LoRA-wrapped or not), the forward asks the model's
body for hidden states and `r1.rl.head_logprobs` applies the head chunk by chunk under activation
checkpointing, so neither the full-vocabulary logits nor their gradient ever exist at once — on
the standard GRPO micro-batch (16 × 128 tokens, V = 49,152) ~400 MB per fp32 copy, several of
which used to be alive in backward. Other models (heads with a bias or logit scaling,
FSDP-sharded ones whose root forward gathers the head) take the logits path: same numbers.

Deliberately left out: sequence packing and length bucketing.
"""

from __future__ import annotations

import inspect
from contextlib import nullcontext

import torch

from r1 import precision
from r1.rl import head_logprobs, token_entropy, token_logprobs
from r1.train import fsdp, lora

# model types whose CausalLM forward is exactly `lm_head(model(...).last_hidden_state)`: no logit
# scaling or soft-capping (Gemma 2, Cohere, Granite have them and take the logits path)
PLAIN_HEAD_TYPES = {"llama", "mistral", "qwen2", "qwen3", "smollm3", "olmo2", "phi3"}


def assemble(
    prompt_ids: list[list[int]], completion_ids: torch.Tensor, pad_id: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Left-padded prompts + completions → (input_ids (B, P+T), attention_mask, position_ids)."""
    width = max(len(ids) for ids in prompt_ids)
    B, T = completion_ids.shape
    prompts = torch.full((B, width), pad_id, dtype=torch.long)
    prompt_mask = torch.zeros((B, width), dtype=torch.long)
    for i, ids in enumerate(prompt_ids):
        if ids:
            prompts[i, width - len(ids) :] = torch.tensor(ids)
            prompt_mask[i, width - len(ids) :] = 1
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
    bf16: bool | str = False,
    share_prompts: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """log π(c_t | prompt, c_<t) for every completion column, and optionally the entropy.

    Args:
        prompt_ids: B lists of prompt token ids.
        completion_ids: (B, T) completion tokens, right-padded.
        temperature: the sampling temperature the completions were drawn at, so that these are
            the log-probs of the distribution that actually produced them.
        bf16: run the model's matmuls in bf16 autocast (weights stay fp32; the log-softmax is
            always fp32, in r1.rl.token_logprobs); "auto": where measured faster (r1/precision.py).
        share_prompts: run each distinct prompt once when rows repeat prompts (see above).
    Returns:
        logp (B, T) float32 (differentiable when grad is enabled), entropy (B, T) or None.
    """
    device = next(model.parameters()).device
    if bf16 == "auto":  # a caller that did not resolve train.bf16 (a run resolves it at its start)
        bf16 = precision.choose("auto", "train", device).dtype == "bfloat16"
    targets = completion_ids.to(device).long()
    model, adapter_context = unwrap(model)
    body, weight = output_head(model)
    with adapter_context, torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
        if share_prompts and can_share(model, prompt_ids):
            parts = shared_prompt_outputs(model, body, prompt_ids, completion_ids, device)
        else:
            parts = [plain_outputs(model, body, prompt_ids, completion_ids, pad_id, device)]
        if body is not None:  # parts are hidden states: the head runs chunk by chunk, in the same autocast
            return hidden_logprobs(torch.cat(parts, dim=1), weight, targets, temperature, entropy, entropy_grad)
    columns, logps, ents = 0, [], []
    for logits in parts:  # consecutive column ranges of the (B, T) result
        width = logits.shape[1]
        logps.append(token_logprobs(logits, targets[:, columns : columns + width], temperature=temperature))
        if entropy:
            with torch.set_grad_enabled(entropy_grad and torch.is_grad_enabled()):
                ents.append(token_entropy(logits, temperature=temperature))
        columns += width
    return torch.cat(logps, dim=1), torch.cat(ents, dim=1) if entropy else None


def completion_logits(
    model, prompt_ids: list[list[int]], completion_ids: torch.Tensor, *, pad_id: int, bf16: bool = False
) -> torch.Tensor:
    """The logits over the whole vocabulary that predict every completion column → (B, T, V), in
    the model's output dtype (differentiable when grad is enabled). For distillation, which needs the
    full distributions; keep B × T small: this is the (B, T, V) tensor the log-prob path avoids."""
    device = next(model.parameters()).device
    model, adapter_context = unwrap(model)
    with adapter_context, torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bool(bf16)):
        return plain_outputs(model, None, prompt_ids, completion_ids, pad_id, device)


def hidden_logprobs(
    hidden, weight, targets, temperature: float, entropy: bool, entropy_grad: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(B, T, H) final hidden states and the (V, H) head → logp (B, T), entropy (B, T) or None."""
    B, T, H = hidden.shape
    logp, ent = head_logprobs(
        hidden.reshape(B * T, H), weight, targets.reshape(B * T), temperature=temperature, entropy=entropy
    )
    if ent is not None:
        ent = (ent if entropy_grad else ent.detach()).view(B, T)
    return logp.view(B, T), ent


def unwrap(model):
    """(the model to run, the context to run it in): π_ref of a LoRA policy is the policy with its adapter off."""
    if isinstance(model, lora.AdapterOff):
        return model.model, model.model.disable_adapter()
    return model, nullcontext()


def output_head(model) -> tuple[torch.nn.Module | None, torch.Tensor | None]:
    """(body, head weight (V, H)) when the logits are exactly `head(body(...).last_hidden_state)`, else (None, None).

    Sees through a peft wrapper (LoRA layers live inside the body, so calling it runs them). Not under
    FSDP: the root module's forward is what gathers the sharded head weight."""
    from transformers import PreTrainedModel

    if fsdp.is_sharded(model):
        return None, None
    causal = model.get_base_model() if hasattr(model, "get_base_model") else model  # peft → the transformers model
    if not isinstance(causal, PreTrainedModel) or getattr(causal.config, "model_type", None) not in PLAIN_HEAD_TYPES:
        return None, None
    head, body = causal.get_output_embeddings(), causal.base_model
    if type(head) is not torch.nn.Linear or head.bias is not None or body is causal:
        return None, None
    return body, head.weight


def last_columns(model, body, keep: int, **inputs):
    """Run the model → ((B, keep, D) its last `keep` output columns (0: all), the output object).

    D = V (logits) without a `body`; with one, the body alone runs and D = H (final hidden states)."""
    if body is None:
        out = model(**inputs, logits_to_keep=keep)
        return out.logits, out
    out = body(**inputs)
    hidden = out.last_hidden_state  # (B, L, H)
    return (hidden[:, -keep:] if keep else hidden), out


def plain_outputs(
    model, body, prompt_ids: list[list[int]], completion_ids: torch.Tensor, pad_id: int, device
) -> torch.Tensor:
    """Every row's prompt + completion in one forward → (B, T, D): column t predicts completion token t
    (D: logits, or hidden states given the `body`, as in `last_columns`)."""
    input_ids, attention, positions = assemble(prompt_ids, completion_ids, pad_id)
    T = completion_ids.shape[1]
    out, _ = last_columns(
        model,
        body,
        T + 1,
        input_ids=input_ids.to(device),
        attention_mask=attention.to(device),
        position_ids=positions.to(device),
        use_cache=False,
    )
    return out[:, :-1]


def can_share(model, prompt_ids: list[list[int]]) -> bool:
    """Worth it (some prompt repeats) and possible (a KV cache: HF drops it under gradient checkpointing)."""
    name = (
        "is_activation_checkpointing" if hasattr(model, "is_activation_checkpointing") else "is_gradient_checkpointing"
    )  # renamed in transformers 5
    checkpointing = getattr(model, name, False)
    return (
        all(prompt_ids)
        and len({tuple(p) for p in prompt_ids}) < len(prompt_ids)
        and not (checkpointing and model.training)
    )


def cache_argument(model) -> str:
    """The name `forward` takes a KV cache by: `cache` in recent transformers, `past_key_values` before."""
    from transformers import PreTrainedModel

    inner = model
    while not isinstance(inner, PreTrainedModel) and hasattr(inner, "model"):  # through LoRA/reference wrappers
        inner = getattr(inner, "base_model", None) or inner.model
    return "cache" if "cache" in inspect.signature(type(inner).forward).parameters else "past_key_values"


def shared_prompt_outputs(
    model, body, prompt_ids: list[list[int]], completion_ids: torch.Tensor, device
) -> list[torch.Tensor]:
    """Each distinct prompt once, then every row's completion against its prompt's cached keys/values.

    Returns [(B, 1, D) outputs predicting completion token 0, (B, T-1, D) predicting tokens 1..T-1]
    (D: logits, or hidden states given the `body`, as in `last_columns`)."""
    distinct: dict[tuple, int] = {}
    # (B,) → prompt index
    row_prompt = torch.tensor([distinct.setdefault(tuple(p), len(distinct)) for p in prompt_ids], device=device)
    prompts = [list(p) for p in distinct]
    # (U, P); pads are masked
    ids, attention, positions = assemble(prompts, torch.zeros((len(prompts), 0), dtype=torch.long), pad_id=0)
    last, out = last_columns(
        model,
        body,
        1,
        input_ids=ids.to(device),
        attention_mask=attention.to(device),
        position_ids=positions.to(device),
        use_cache=True,
    )
    first = last[row_prompt]  # (B, 1, D)
    T = completion_ids.shape[1]
    if T == 1:
        return [first]
    cache = out["cache"] if "cache" in out else out.past_key_values  # renamed in transformers 5
    cache.reorder_cache(row_prompt)  # (U, …) → (B, …) keys/values per layer, gradient-tracked
    B = len(prompt_ids)
    prompt_lengths = torch.tensor([len(p) for p in prompts], device=device)[row_prompt]  # (B,)
    # (B, P + T-1)
    mask = torch.cat([attention.to(device)[row_prompt], torch.ones((B, T - 1), dtype=torch.long, device=device)], dim=1)
    rest, _ = last_columns(
        model,
        body,
        0,
        input_ids=completion_ids[:, :-1].to(device),
        attention_mask=mask,
        **{cache_argument(body or model): cache},
        position_ids=prompt_lengths[:, None] + torch.arange(T - 1, device=device)[None, :],
        use_cache=True,
    )
    return [first, rest]  # (B, T-1, D): column t predicts completion token t + 1


@torch.no_grad()
def batched_logprobs(
    model,
    prompt_ids: list[list[int]],
    completion_ids: torch.Tensor,
    lengths: torch.Tensor,
    *,
    pad_id: int,
    temperature: float,
    micro_batch_size: int,
    bf16: bool = False,
) -> torch.Tensor:
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
        logp, _ = completion_logprobs(
            model, prompt_ids[rows], completion_ids[rows, :width], pad_id=pad_id, temperature=temperature, bf16=bf16
        )
        result[rows, :width] = logp.float().cpu()
    model.train(was_training)
    return result.masked_fill_(torch.arange(T)[None, :] >= lengths[:, None], 0.0)  # (B, T)
