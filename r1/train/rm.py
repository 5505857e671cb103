"""Reward-model training (`r1 rm`): a one-logit head on a causal LM, Bradley–Terry on preference pairs.

Data: JSONL rows `{prompt, chosen, rejected}` (`rm.data`; the bundled `preference_pairs` was
written for this project by r1/data/general.py). Each response is rendered with its prompt as a
chat exchange (`rm_text`, exactly the text the `helpfulness`/`harmlessness` rewards score during
RL) and scored by the head on its last token. The loss of a step is the mean over its
`rm.batch_size` pairs of −log σ(r_chosen − r_rejected) (r1/rl/preference.py); each micro-batch of
`train.micro_batch_size` pairs (chosen and rejected in one forward pass) is normalized by the
step's pair count, so micro-batching does not change the update.

A share `rm.eval_fraction` of the *prompts*, with all their pairs, is held out, so no held-out
prompt is seen in training. Held-out pair accuracy (share of pairs where chosen scores higher)
and loss are measured before training (step 0) and at the end, logged to metrics.jsonl as
`rm/eval_accuracy` and `rm/eval_loss`, and written to `rm_eval.json` (what `r1 pipeline` reports).

Everything around the loop is SFT's and GRPO's machinery: run directory and config.yaml
(`loop.run_training`), AdamW and the guarded step (`optim.*`), the data order (`IndexSampler`), metrics
(`RunLogger`), atomic checkpoints with exact resume (`checkpoint.py`). The model starts from
`model.name` with a fresh head; `checkpoints/final` is a plain `save_pretrained`
sequence-classification model that `rewards.helpfulness_model`/`harmlessness_model` can name.

Deliberately left out: margin losses, ties, ensembles, bf16 autocast and adapters.
"""

from __future__ import annotations

import json
import math
import random
import time
from pathlib import Path
from typing import NamedTuple

import torch

from r1.config import Config
from r1.data import DataError
from r1.data.datasets import BUNDLED_DIR, json_lines
from r1.rewards.models import encode, load_scalar_rm, sequence_scores
from r1.rl import bradley_terry_loss, pair_accuracy
from r1.train import distributed as dist
from r1.train.optim import build_optimizer, optimizer_step
from r1.train.loop import Trainer, run_training
from r1.train.run import IndexSampler, console
from r1.train.stats import RunStats


class Pair(NamedTuple):
    chosen: list[int]  # token ids of the rendered exchange with the chosen response
    rejected: list[int]
    prompt: str
    style: str | None = None  # the data's optional label of what is wrong with `rejected`


def pairs_file(data: str | None) -> Path:
    """`rm.data` as a file: a JSONL path, or a bundled file by name (`preference_pairs`)."""
    if not data:
        raise DataError(
            "rm.data is not set: give a JSONL file of {prompt, chosen, rejected} rows (or the bundled preference_pairs)"
        )
    for path in (Path(data).expanduser(), BUNDLED_DIR / f"{data}.jsonl"):
        if path.is_file():
            return path
    bundled = ", ".join(sorted(p.stem for p in BUNDLED_DIR.glob("*pairs*.jsonl")))
    raise DataError(f"preference data not found: {data} (a JSONL path, or a bundled name: {bundled})")


def read_pairs(path: Path) -> list[dict]:
    """Rows with non-empty string `prompt`, `chosen` and `rejected` that differ; bad JSON is an error naming
    the line."""
    rows, skipped = [], 0
    for _, row in json_lines(path):
        fields = [row.get(k) for k in ("prompt", "chosen", "rejected")] if isinstance(row, dict) else [None]
        if all(isinstance(f, str) and f.strip() for f in fields) and row["chosen"] != row["rejected"]:
            rows.append(row)
        else:
            skipped += 1
    if skipped:
        console.print(f"\\[r1] {path}: skipped {skipped} row(s) without distinct prompt/chosen/rejected strings")
    if not rows:
        raise DataError(f"{path}: no usable preference pairs (rows need prompt, chosen and rejected strings)")
    return rows


def encode_pairs(rows: list[dict], tokenizer, *, max_length: int, on_overlong: str, where: str) -> list[Pair]:
    """Token ids of both rendered exchanges of each pair; an overlong pair is an error or dropped (`on_overlong`)."""
    pairs, too_long = [], 0
    for row in rows:
        chosen, rejected = (encode(tokenizer, row["prompt"], row[k]) for k in ("chosen", "rejected"))
        if max(len(chosen), len(rejected)) > max_length:
            if on_overlong == "error":
                raise DataError(
                    f"{where}: a pair of prompt {row['prompt'][:60]!r}… has {max(len(chosen), len(rejected))} tokens, "
                    f"over rm.max_length={max_length} (or set data.on_overlong_prompt=filter)"
                )
            too_long += 1
            continue
        pairs.append(Pair(chosen, rejected, row["prompt"], row.get("style")))
    if too_long:
        console.print(f"\\[r1] {where}: dropped {too_long} pair(s) over rm.max_length={max_length}")
    if not pairs:
        raise DataError(f"{where}: every pair is over rm.max_length={max_length}")
    return pairs


def split_by_prompt(pairs: list, prompts: list[str], fraction: float, seed: int) -> tuple[list, list]:
    """(train, held-out): a seeded `fraction` of the distinct prompts, at least one when `fraction` > 0
    and there are two or more, goes to held-out with all its pairs."""
    distinct = sorted(set(prompts))
    random.Random(seed).shuffle(distinct)
    n_out = min(len(distinct) - 1, max(1, round(fraction * len(distinct)))) if fraction > 0 else 0
    held = set(distinct[:n_out])
    return [p for p, q in zip(pairs, prompts) if q not in held], [p for p, q in zip(pairs, prompts) if q in held]


def score_pairs(model, pairs: list[Pair], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(chosen (P,), rejected (P,)) scores, chosen and rejected in one forward pass."""
    scores = sequence_scores(model, [p.chosen for p in pairs] + [p.rejected for p in pairs], pad_id)  # (2P,)
    return scores[: len(pairs)], scores[len(pairs) :]


def rm_step(
    model, optimizer, scheduler, pairs: list[Pair], *, pad_id: int, micro_batch_size: int, grad_clip: float
) -> dict:
    """One optimizer step of the mean Bradley–Terry loss over `pairs`, accumulated over micro-batches."""
    model.train()
    chosen_all, rejected_all, loss_sum = [], [], 0.0
    for start in range(0, len(pairs), micro_batch_size):
        chosen, rejected = score_pairs(model, pairs[start : start + micro_batch_size], pad_id)
        loss = bradley_terry_loss(chosen, rejected).sum() / len(pairs)  # normalized by the whole step
        loss.backward()
        loss_sum += float(loss.detach())
        chosen_all.append(chosen.detach())
        rejected_all.append(rejected.detach())
    grad_norm, applied = optimizer_step(model, optimizer, scheduler, grad_clip=grad_clip)
    chosen, rejected = torch.cat(chosen_all), torch.cat(rejected_all)
    return {
        "loss": loss_sum,
        "rm/accuracy": pair_accuracy(chosen, rejected),
        "rm/margin": float((chosen - rejected).mean()),
        "grad_norm": grad_norm,
        "skipped": int(not applied),
    }


def evaluate_pairs(model, pairs: list[Pair], *, pad_id: int, batch_size: int) -> dict:
    """Held-out pair accuracy, mean loss and mean margin r_chosen − r_rejected, and the accuracy per style."""
    model.eval()
    chosen, rejected = [], []
    with torch.no_grad():
        for start in range(0, len(pairs), batch_size):
            c, r = score_pairs(model, pairs[start : start + batch_size], pad_id)
            chosen.append(c)
            rejected.append(r)
    chosen, rejected = torch.cat(chosen), torch.cat(rejected)
    metrics = {
        "rm/eval_accuracy": pair_accuracy(chosen, rejected),
        "rm/eval_loss": float(bradley_terry_loss(chosen, rejected).mean()),
        "rm/eval_margin": float((chosen - rejected).mean()),
    }
    for style in sorted({p.style for p in pairs if p.style}):
        rows = [i for i, p in enumerate(pairs) if p.style == style]
        metrics[f"rm/eval_accuracy/{style}"] = pair_accuracy(chosen[rows], rejected[rows])
    return metrics


def train_rm(cfg: Config) -> Path:
    """Train a scalar reward model as configured (through the shared run loop, loop.py); returns the
    run directory (checkpoints/final holds it, rm_eval.json its held-out accuracy)."""
    held = {}  # what the trainer's setup built, for the summary at the end
    outcome = run_training(cfg, "rm", lambda resume_from: rm_trainer(cfg, resume_from, held))
    if outcome.finished_before:
        return outcome.run_dir
    after, heldout = held.get("after"), held["heldout"]
    if heldout and after is None:  # a resumed run whose steps were already done
        after = evaluate_pairs(held["model"], heldout, pad_id=held["pad_id"], batch_size=cfg.train.micro_batch_size)
    write_summary(
        outcome.run_dir,
        after,
        held["stats"].baseline,
        train_pairs=held["train_pairs"],
        heldout_pairs=len(heldout),
        steps=outcome.step,
    )
    return outcome.run_dir


def rm_trainer(cfg: Config, resume_from: Path | None, held: dict) -> Trainer:
    model, tokenizer = load_scalar_rm(str(resume_from) if resume_from else cfg.model.name, dtype=cfg.model.dtype)
    model = model.to(dist.device(cfg.run.device))  # run.device: auto = the GPU when there is one
    path = pairs_file(cfg.rm.data)
    rows = read_pairs(path)
    pairs = encode_pairs(
        rows, tokenizer, max_length=cfg.rm.max_length, on_overlong=cfg.data.on_overlong_prompt, where=str(path)
    )
    train, heldout = split_by_prompt(pairs, [p.prompt for p in pairs], cfg.rm.eval_fraction, cfg.run.seed)
    pad_id, micro = tokenizer.pad_token_id, cfg.train.micro_batch_size
    total_steps = cfg.rm.epochs * math.ceil(len(train) / cfg.rm.batch_size)
    optimizer, scheduler = build_optimizer(model, cfg.optim, total_steps)
    sampler, stats = IndexSampler(len(train), cfg.run.seed), RunStats()
    held.update(model=model, heldout=heldout, pad_id=pad_id, stats=stats, train_pairs=len(train))
    console.print(
        f"reward model: {len(train)} training pairs, {len(heldout)} held-out pairs, {cfg.rm.epochs} epoch(s), "
        f"{total_steps} steps of {cfg.rm.batch_size}"
    )

    def begin(logger, resumed: bool) -> None:
        if not resumed and heldout:
            stats.baseline = evaluate_pairs(model, heldout, pad_id=pad_id, batch_size=micro)
            logger.log(0, stats.baseline, show=False)

    def step_fn(step: int):
        t0 = time.perf_counter()
        batch = [train[i] for i in sampler.take(cfg.rm.batch_size)]
        m = rm_step(
            model, optimizer, scheduler, batch, pad_id=pad_id, micro_batch_size=micro, grad_clip=cfg.optim.grad_clip
        )
        stats.nonfinite_steps += m.pop("skipped")
        m.update(
            {
                "lr": scheduler.get_last_lr()[0],
                "epoch": sampler.epoch,
                "time/step": time.perf_counter() - t0,
                "nonfinite_steps": stats.nonfinite_steps,
            }
        )
        if step == total_steps and heldout:
            held["after"] = evaluate_pairs(model, heldout, pad_id=pad_id, batch_size=micro)
            m.update(held["after"])
        return m, None

    return Trainer(
        label="rm",
        total_steps=total_steps,
        model=model,
        tokenizer=tokenizer,
        optimizer=optimizer,
        scheduler=scheduler,
        sampler=sampler,
        step=step_fn,
        stats=stats,
        begin=begin,
        merge_final=False,
    )


def write_summary(
    run_dir: Path, after: dict | None, before: dict | None, *, train_pairs: int, heldout_pairs: int, steps: int
) -> dict:
    """`rm_eval.json`: held-out pair accuracy/loss/margin at the end (and before training, when measured)."""
    summary = {"train_pairs": train_pairs, "heldout_pairs": heldout_pairs, "steps": steps}
    summary.update({key.removeprefix("rm/eval_"): value for key, value in (after or {}).items()})
    if before:
        summary["before"] = {key.removeprefix("rm/eval_"): value for key, value in before.items()}
    (Path(run_dir) / "rm_eval.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    if after:
        was = f" (before training {summary['before']['accuracy']:.3f})" if before else ""
        console.print(
            f"held-out pair accuracy {summary['accuracy']:.3f}{was}, loss {summary['loss']:.4f} on {heldout_pairs} "
            "pairs"
        )
    return summary
