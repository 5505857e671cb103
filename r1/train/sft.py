"""Supervised fine-tuning (R1 stages 1 and 3, and distillation): loss on completion tokens only.

Data is JSONL with one of two row shapes:
- `{"prompt": "...", "completion": "..."}`: the prompt is rendered with the configured template
  (`data.template`, `data.template_form`), exactly as GRPO renders it, so a cold-start model is
  trained on the prompts it will later see in RL;
- `{"messages": [{"role": ..., "content": ...}, ...]}`: the conversation up to the last assistant
  message is rendered by the tokenizer's chat template; the last assistant message is the target.
Every completion ends with the EOS token, so the model learns to stop.

The loss is the mean negative log-likelihood over all completion tokens of a batch (token-mean,
normalized by the whole batch's token count, so micro-batching does not change the update).
Prompt tokens carry no loss. Checkpoints, metrics, progress and resume are GRPO's machinery, and
so are data parallelism (`sft.batch_size` is the global batch, split over the ranks; the token
count that normalizes the loss is global and the gradients are summed) and LoRA (`model.lora.*`).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch

from r1.config import Config
from r1.data import DataError, render_prompt
from r1.data.datasets import json_lines
from r1.rl import aggregate
from r1.train import distributed as dist
from r1.train.forward import completion_logprobs
from r1.train.optim import build_optimizer, optimizer_step
from r1.train.loop import Trainer, run_training
from r1.train.run import IndexSampler, console, load_trainable, peak_memory_mib
from r1.train.stats import RunStats


def encode_row(
    row: dict, tokenizer, *, template: str, form: str, prefill_think: bool
) -> tuple[list[int], list[int]] | None:
    """One JSONL row → (prompt ids, completion ids ending in EOS), or None if it has neither shape."""
    eos = tokenizer.eos_token_id
    if isinstance(row.get("messages"), list) and row["messages"] and row["messages"][-1].get("role") == "assistant":
        if not getattr(tokenizer, "chat_template", None):
            raise DataError(
                "chat-message SFT rows need a tokenizer with a chat template; use prompt/completion rows instead"
            )
        prompt = tokenizer.apply_chat_template(row["messages"][:-1], tokenize=False, add_generation_prompt=True)
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        completion = row["messages"][-1].get("content") or ""
    elif isinstance(row.get("prompt"), str) and isinstance(row.get("completion"), str):
        rendered = render_prompt(tokenizer, row["prompt"], template=template, form=form, prefill_think=prefill_think)
        prompt_ids = rendered.token_ids(tokenizer)
        completion = row["completion"]
        if rendered.think_prefilled and completion.lstrip().startswith("<think>"):
            completion = completion.lstrip()[len("<think>") :]  # the prompt already opened it
    else:
        return None
    if not completion.strip():
        return None
    return prompt_ids, tokenizer(completion, add_special_tokens=False)["input_ids"] + [eos]


def load_sft_data(path: str | None, tokenizer, cfg: Config) -> list[tuple[list[int], list[int]]]:
    if not path:
        raise DataError("sft.data is not set: give a JSONL file of {prompt, completion} or {messages} rows")
    file = Path(path).expanduser()
    if not file.is_file():
        raise DataError(f"SFT data file not found: {file}")
    d, rows, skipped, too_long = cfg.data, [], 0, 0
    for number, row in json_lines(file):
        encoded = (
            encode_row(row, tokenizer, template=d.template, form=d.template_form, prefill_think=d.prefill_think)
            if isinstance(row, dict)
            else None
        )
        if encoded is None:
            skipped += 1
        elif len(encoded[0]) + len(encoded[1]) > cfg.sft.max_length:
            if d.on_overlong_prompt == "error":
                raise DataError(
                    f"{file}:{number}: {len(encoded[0]) + len(encoded[1])} tokens, over "
                    f"sft.max_length={cfg.sft.max_length} (or set data.on_overlong_prompt=filter)"
                )
            too_long += 1
        else:
            rows.append(encoded)
    if skipped or too_long:
        console.print(
            f"\\[r1] {file}: skipped {skipped} row(s) without prompt/completion or messages, {too_long} over "
            "sft.max_length"
        )
    if not rows:
        raise DataError(f"{file}: no usable SFT rows")
    return rows


def pad_completions(completions: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad completion ids → (ids (B, T), lengths (B,))."""
    lengths = torch.tensor([len(c) for c in completions])
    ids = torch.full((len(completions), int(lengths.max())), pad_id, dtype=torch.long)
    for i, c in enumerate(completions):
        ids[i, : len(c)] = torch.tensor(c)
    return ids, lengths


def sft_step(
    model,
    optimizer,
    scheduler,
    rows: list[tuple[list[int], list[int]]],
    *,
    pad_id: int,
    micro_batch_size: int,
    grad_clip: float,
    bf16: bool = False,
) -> dict:
    """One optimizer step of token-mean NLL over `rows` (this rank's share of the global batch),
    accumulated over micro-batches; the token count and the gradients are summed over ranks."""
    completion_ids, lengths = pad_completions([c for _, c in rows], pad_id)
    mask = (torch.arange(completion_ids.shape[1])[None, :] < lengths[:, None]).float()  # (B, T)
    total_tokens, loss_sum = dist.sum_all(float(mask.sum())), 0.0
    model.train()
    for start in range(0, len(rows), micro_batch_size):
        sl = slice(start, start + micro_batch_size)
        width = int(lengths[sl].max())
        logp, _ = completion_logprobs(
            model, [p for p, _ in rows[sl]], completion_ids[sl, :width], pad_id=pad_id, bf16=bf16
        )
        loss = aggregate(-logp, mask[sl, :width].to(logp.device), total_tokens=total_tokens, aggregation="token-mean")
        loss.backward()
        loss_sum += float(loss.detach())
    dist.all_reduce_grads(model)
    grad_norm, applied = optimizer_step(model, optimizer, scheduler, grad_clip=grad_clip)
    return {"loss": dist.sum_all(loss_sum), "grad_norm": grad_norm, "tokens": total_tokens, "skipped": int(not applied)}


def train_sft(cfg: Config) -> Path:
    """Run SFT as configured (through the shared run loop, loop.py); returns the run directory
    (checkpoints/final holds the result)."""
    dist.require_divisible("sft.batch_size", cfg.sft.batch_size)
    return run_training(cfg, "sft", lambda resume_from: sft_trainer(cfg, resume_from)).run_dir


def sft_trainer(cfg: Config, resume_from: Path | None) -> Trainer:
    model, tokenizer = load_trainable(cfg, resume_from)
    rows = load_sft_data(cfg.sft.data, tokenizer, cfg)
    total_steps = cfg.sft.epochs * math.ceil(len(rows) / cfg.sft.batch_size)
    optimizer, scheduler = build_optimizer(model, cfg.optim, total_steps)
    sampler, stats = IndexSampler(len(rows), cfg.run.seed), RunStats()
    console.print(f"SFT: {len(rows)} rows, {cfg.sft.epochs} epoch(s), {total_steps} steps of {cfg.sft.batch_size}")

    def step_fn(step: int):
        t0 = time.perf_counter()
        batch = [rows[i] for i in dist.shard(sampler.take(cfg.sft.batch_size))]
        m = sft_step(
            model,
            optimizer,
            scheduler,
            batch,
            pad_id=tokenizer.pad_token_id,
            micro_batch_size=cfg.train.micro_batch_size,
            grad_clip=cfg.optim.grad_clip,
            bf16=cfg.train.bf16,
        )
        stats.nonfinite_steps += m.pop("skipped")
        elapsed = time.perf_counter() - t0
        m.update(
            {
                "lr": scheduler.get_last_lr()[0],
                "epoch": sampler.epoch,
                "time/step": elapsed,
                "tokens_per_s": m["tokens"] / elapsed,
                "nonfinite_steps": stats.nonfinite_steps,
                "memory/peak_mib": peak_memory_mib(next(model.parameters()).device),
            }
        )
        return m, None

    return Trainer(
        label="sft",
        total_steps=total_steps,
        model=model,
        tokenizer=tokenizer,
        optimizer=optimizer,
        scheduler=scheduler,
        sampler=sampler,
        step=step_fn,
        stats=stats,
    )
