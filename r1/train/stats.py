"""What a training run counts: typed records instead of a string-keyed side channel.

* `StepCounts` — what sampling and scoring one GRPO step produced besides the batch: the seconds
  spent scoring, and the rewards' counted events (`accuracy_timeouts`, `format_errors`, …) with
  the first failure message per reward. Each data-parallel rank fills its own; `merged` adds them.
* `RunStats` — the run's totals across steps: samples seen, non-finite (skipped) steps, reference
  resets, reward events and first errors, and a reward model's held-out metrics before training.
  It is saved with every checkpoint (`state_dict`) and restored from it (`load_state_dict`, which
  also reads the flat dicts that checkpoints held before this record existed).

Deliberately left out: per-step metrics (the step functions return those as a dict for the logger).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

OLD_PREFIXES = ("rewards/", "first_error/")  # the keys of the flat dict checkpoints held before RunStats


def _add_events(into, events: dict[str, int], first_error: dict[str, str]) -> None:
    """Add reward event counts to `into.reward_events`; keep the first message per reward (StepCounts, RunStats)."""
    for key, count in events.items():
        into.reward_events[key] = into.reward_events.get(key, 0) + count
    for name, message in first_error.items():
        into.first_error.setdefault(name, message)


@dataclass
class StepCounts:
    """Sampling and scoring by-products of one step on one rank."""

    score_seconds: float = 0.0
    reward_events: dict[str, int] = field(default_factory=dict)  # "<reward>_<event>" -> count
    first_error: dict[str, str] = field(default_factory=dict)  # reward -> first failure message

    def add(self, events: dict[str, int], first_error: dict[str, str], seconds: float = 0.0) -> None:
        self.score_seconds += seconds
        _add_events(self, events, first_error)

    @staticmethod
    def merged(parts: list[StepCounts]) -> StepCounts:
        """Every rank's counts as one (seconds: the slowest rank's)."""
        out = StepCounts(score_seconds=max((p.score_seconds for p in parts), default=0.0))
        for part in parts:
            out.add(part.reward_events, part.first_error)
        return out


@dataclass
class RunStats:
    """A run's totals across steps, saved with its checkpoints."""

    samples_seen: int = 0
    nonfinite_steps: int = 0  # optimizer steps skipped for a non-finite gradient
    reference_resets: int = 0
    reward_events: dict[str, int] = field(default_factory=dict)  # "<reward>_<event>" -> count over the run
    first_error: dict[str, str] = field(default_factory=dict)  # reward -> the run's first failure message
    baseline: dict[str, float] | None = None  # reward-model training: held-out metrics before the first step
    teacher_tokens: int = 0  # on-policy distillation: tokens through the teacher's forward pass over the run

    def add_step(self, counts: StepCounts) -> None:
        _add_events(self, counts.reward_events, counts.first_error)

    def reward_errors(self) -> dict[str, int]:
        """reward -> samples it failed on (raised, returned None, or timed out) over the run."""
        return {key.removesuffix("_errors"): n for key, n in self.reward_events.items() if key.endswith("_errors")}

    def reward_metrics(self) -> dict[str, int]:
        """The run's reward events as logged metrics: `rewards/<reward>_<event>`."""
        return {f"rewards/{key}": count for key, count in self.reward_events.items()}

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        """Restore from `state_dict()`, or from the flat dict of a checkpoint written before RunStats."""
        if any(key.startswith(OLD_PREFIXES) or key == "before" for key in state):
            state = {
                "samples_seen": state.get("samples_seen", 0),
                "nonfinite_steps": state.get("nonfinite_steps", 0),
                "reference_resets": state.get("reference_resets", 0),
                "reward_events": {k[len("rewards/") :]: v for k, v in state.items() if k.startswith("rewards/")},
                "first_error": {k[len("first_error/") :]: v for k, v in state.items() if k.startswith("first_error/")},
                "baseline": state.get("before"),
            }
        fresh = RunStats(**{k: v for k, v in state.items() if k in RunStats.__dataclass_fields__})
        self.__dict__.update(fresh.__dict__)
