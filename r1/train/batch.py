"""The scored rollout batch of a GRPO step (`Batch`) and the operations on whole batches.

Rows are grouped by prompt, G consecutive rows per group. `weighted_total` turns per-reward values
into one total per row; `concat` joins dynamic-sampling refills; `select_groups` keeps whole groups.
Deliberately left out: sampling and scoring (grpo.py) and the update (update.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from r1.rewards import applies


@dataclass
class Batch:
    """A scored rollout batch; rows are grouped by prompt, G consecutive rows per group."""

    examples: list[dict]  # (B,) the dataset row of each completion
    prompt_ids: list[list[int]]
    completion_ids: torch.Tensor  # (B, T)
    lengths: torch.Tensor  # (B,)
    truncated: torch.Tensor  # (B,) bool
    texts: list[str]
    rewards: dict[str, list[float | None]]  # per reward name, (B,); None = failed, NaN = not routed to the kind
    total: torch.Tensor  # (B,) weighted reward (NaN where invalid)
    valid: torch.Tensor  # (B,) bool: every weighted reward that applies produced a value
    engine_logp: torch.Tensor | None = None  # (B, T) the rollout engine's own log-probs of the sampled tokens (vllm)

    def __len__(self) -> int:
        return len(self.texts)

    @classmethod
    def empty(cls, reward_names: list[str]) -> Batch:
        """No rows (a data-parallel rank's share of a small dynamic-sampling refill)."""
        none = torch.zeros(0, dtype=torch.bool)
        return cls(
            examples=[],
            prompt_ids=[],
            completion_ids=torch.zeros((0, 1), dtype=torch.long),
            lengths=torch.zeros(0, dtype=torch.long),
            truncated=none,
            texts=[],
            rewards={name: [] for name in reward_names},
            total=torch.zeros(0),
            valid=none,
        )


def weighted_total(
    values: dict[str, list[float | None]], weights: dict[str, float]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Σ_name weight · reward per sample → (total (B,), valid (B,)).

    None (the reward failed) makes the sample invalid (total NaN); NaN (NOT_APPLICABLE: the reward
    is not routed to the sample's kind) adds nothing and leaves the sample valid.
    """
    failed = torch.tensor([[v is None for v in values[name]] for name in weights], dtype=torch.bool)  # (R, B)
    # (R, B)
    stacked = torch.tensor([[0.0 if v is None else v for v in values[name]] for name in weights], dtype=torch.float32)
    w = torch.tensor(list(weights.values()), dtype=torch.float32)[:, None]
    valid = ~failed.any(dim=0)
    return (w * stacked).nansum(dim=0).masked_fill(~valid, float("nan")), valid


def concat(batches: list[Batch]) -> Batch:
    """Join batches (e.g. dynamic-sampling refills), padding completions to a common width."""
    if len(batches) == 1:
        return batches[0]
    T = max(b.completion_ids.shape[1] for b in batches)
    pad = lambda x: torch.nn.functional.pad(x, (0, T - x.shape[1]))  # noqa: E731
    return Batch(
        examples=[e for b in batches for e in b.examples],
        prompt_ids=[p for b in batches for p in b.prompt_ids],
        completion_ids=torch.cat([pad(b.completion_ids) for b in batches]),
        lengths=torch.cat([b.lengths for b in batches]),
        truncated=torch.cat([b.truncated for b in batches]),
        texts=[t for b in batches for t in b.texts],
        rewards={k: [v for b in batches for v in b.rewards[k]] for k in batches[0].rewards},
        total=torch.cat([b.total for b in batches]),
        valid=torch.cat([b.valid for b in batches]),
        engine_logp=torch.cat([pad(b.engine_logp) for b in batches])
        if all(b.engine_logp is not None for b in batches)
        else None,
    )


def select_groups(batch: Batch, keep: torch.Tensor, G: int) -> Batch:
    """The groups whose `keep` (P,) is True, whole (G rows each), in order."""
    rows = [i for i, k in enumerate(keep.repeat_interleave(G).tolist()) if k]
    return Batch(
        examples=[batch.examples[i] for i in rows],
        prompt_ids=[batch.prompt_ids[i] for i in rows],
        completion_ids=batch.completion_ids[rows],
        lengths=batch.lengths[rows],
        truncated=batch.truncated[rows],
        texts=[batch.texts[i] for i in rows],
        rewards={k: [v[i] for i in rows] for k, v in batch.rewards.items()},
        total=batch.total[rows],
        valid=batch.valid[rows],
        engine_logp=batch.engine_logp[rows] if batch.engine_logp is not None else None,
    )


def batch_metrics(batch: Batch, zero_var_frac: float) -> dict:
    valid_total = batch.total[batch.valid]
    m = {
        "reward/mean": float(valid_total.mean()) if len(valid_total) else float("nan"),
        "reward/std": float(valid_total.std()) if len(valid_total) > 1 else 0.0,
        "groups/zero_variance_frac": zero_var_frac,
        "completion_len/mean": float(batch.lengths.float().mean()),
        "completion_len/max": int(batch.lengths.max()) if len(batch) else 0,
        "truncated_frac": float(batch.truncated.float().mean()),
        "samples": len(batch),
    }
    for name, values in batch.rewards.items():
        present = [v for v in values if v is not None and applies(v)]  # the samples it scored
        m[f"reward/{name}"] = sum(present) / len(present) if present else float("nan")
    return m


def sample_rows(batch: Batch, advantages: torch.Tensor) -> list[dict]:
    """One samples.jsonl row per completion: its text, length, rewards and advantage."""
    rows = []
    for i, (example, text, n, cut, a) in enumerate(
        zip(batch.examples, batch.texts, batch.lengths, batch.truncated, advantages)
    ):
        rewards = {f"reward/{k}": v[i] for k, v in batch.rewards.items() if applies(v[i])}
        rows.append(
            {
                "id": example["id"],
                "answer": example.get("answer"),
                "completion": text,
                "length": int(n),
                "truncated": bool(cut),
                "advantage": float(a),
                **rewards,
            }
        )
    return rows
