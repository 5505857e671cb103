"""Control rewards: the same training with the real reward taken away, to see what the reward is responsible for.

A gain from RL with verifiable rewards can come from the reward, or from the update itself (the
clipping and the sampling sharpen the model's own most likely answers, whatever is rewarded —
Shao et al. 2025, "Spurious Rewards: Rethinking Training Signals in RLVR", arXiv 2506.10947). A
run with `rewards.control` keeps everything else and changes only what the correctness rewards pay:

* `random`: each correctness reward (`accuracy`, `code`) is replaced, at its weight, by `random`, a
  fair coin that ignores the answer (the paper's Bernoulli(½) reward);
* `format-only`: the correctness rewards are dropped; the others (`format`, …) stay.

The real correctness reward is still scored and logged (`reward/accuracy`), with no weight, so the
control's curves show what it does to accuracy. Deliberately left out: the paper's other spurious
rewards (incorrect-answer and majority-vote rewards).
"""

from __future__ import annotations

import hashlib
import json

from .registry import register

CORRECTNESS = ("accuracy", "code")  # the rewards a control takes away
CONTROLS = ("none", "random", "format-only")


@register("random")
def random_reward(completion: str, example: dict) -> float:
    """1.0 or 0.0 with probability ½ each, whatever the completion says: a coin seeded by the example
    and the completion's text (the same completion of the same problem always gets the same coin, so
    a run is repeatable; which completions win is unrelated to correctness).

    >>> random_reward("<answer>4</answer>", {"id": "a"}) in (0.0, 1.0)
    True
    """
    key = json.dumps([example.get("id"), example.get("prompt"), completion], sort_keys=True, default=str)
    return float(hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()[0] & 1)


def control_weights(weights: dict[str, float], control: str) -> tuple[dict[str, float], list[str]]:
    """(the weights the run trains on, the rewards it scores) under `rewards.control`.

    >>> control_weights({"accuracy": 1.0, "format": 0.5}, "random")
    ({'random': 1.0, 'format': 0.5}, ['random', 'format', 'accuracy'])
    >>> control_weights({"accuracy": 1.0, "format": 0.5}, "format-only")
    ({'format': 0.5}, ['format', 'accuracy'])
    """
    if control not in CONTROLS:
        raise ValueError(f"unknown rewards.control {control!r}; choose from {', '.join(CONTROLS)}")
    if control == "none":
        return dict(weights), list(weights)
    taken = {name: w for name, w in weights.items() if name in CORRECTNESS}
    kept = {name: w for name, w in weights.items() if name not in CORRECTNESS}
    trained = {"random": sum(taken.values()), **kept} if control == "random" and taken else kept
    return trained, [*trained, *taken]


def control_routes(routes: dict[str, list[str]], control: str) -> dict[str, list[str]]:
    """`rewards.routes` under a control: `random` is routed wherever a correctness reward it replaces is."""
    if control != "random" or not routes:
        return routes
    return {kind: [*names, "random"] if set(names) & set(CORRECTNESS) else names for kind, names in routes.items()}
