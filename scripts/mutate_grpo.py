"""Check that the GRPO wiring tests kill the mutations listed in tests/test_grpo_wiring.py and
tests/test_grpo_algorithms.py.

Each mutation is one textual change to the GRPO step (r1/train/grpo.py, update.py, batch.py): it is
applied, the tests named run (they must fail), and the file is restored — also on Ctrl-C. Prints one
line per mutation and exits 1 if any survived or could not be run (a test name that selects nothing
is never a kill).

    .venv/bin/python scripts/mutate_grpo.py
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILES = [ROOT / "r1" / "train" / name for name in ("grpo.py", "update.py", "batch.py")]
WIRING = "tests/test_grpo_wiring.py"
MUTATIONS = [  # (name, original text, mutated text, tests that must fail)
    (
        "KL-in-reward sign",
        "total -= kl_reward_penalty(",
        "total += kl_reward_penalty(",
        [f"{WIRING}::test_kl_in_the_reward"],
    ),
    (
        "π_old = π_θ detached at μ > 1",
        "here(inputs.old_logp) if inputs.old_logp is not None else logp.detach()",
        "logp.detach()",
        [f"{WIRING}::test_a_second_ppo_epoch"],
    ),
    (
        "π_old only for KL in the reward",
        "if g.ppo_epochs > 1 or (g.beta > 0",
        "if (g.beta > 0",
        [f"{WIRING}::test_a_second_ppo_epoch"],
    ),
    (
        "entropy bonus dropped",
        "entropy_coef=g.entropy_coef,",
        "entropy_coef=0.0,",
        [f"{WIRING}::test_the_entropy_bonus"],
    ),
    (
        "entropy gradient cut",
        "entropy_grad=g.entropy_coef != 0",
        "entropy_grad=False",
        [f"{WIRING}::test_the_entropy_bonus"],
    ),
    (
        "sample rows' advantages misaligned",
        "zip(batch.examples, batch.texts, batch.lengths, batch.truncated, advantages)",
        "zip(batch.examples, batch.texts, batch.lengths, batch.truncated, advantages.flip(0))",
        [f"{WIRING}::test_samples_jsonl"],
    ),
    (
        "advantage scale hard-wired to none",
        "scale=g.advantage_scale",
        'scale="none"',
        [f"{WIRING}::test_kl_in_the_reward"],
    ),
    (
        "reference reset dropped",
        "reset_ref.load_state_dict(run.policy.state_dict())",
        "pass",
        ["tests/test_train_grpo_runs.py::test_reference_starts_as_the_policy_and_is_reset_to_it"],
    ),
    (
        "scheduler stepped on an empty step",
        "    if rows:\n        settings, pad_id",
        "    if not rows:\n        run.scheduler.step()\n    if rows:\n        settings, pad_id",
        [f"{WIRING}::test_the_lr_schedule"],
    ),
    (
        "policy loss not passed on",
        "policy_loss=g.policy_loss,",
        'policy_loss="grpo",',
        ["tests/test_grpo_algorithms.py::test_each_policy_loss_reaches_the_update"],
    ),
    (
        "advantage baseline not passed on",
        "baseline=g.advantage_baseline",
        'baseline="group"',
        ["tests/test_grpo_algorithms.py::test_leave_one_out_baseline"],
    ),
    (
        "top-entropy selection dropped",
        "keep=keep,",
        "keep=None,",
        ["tests/test_grpo_algorithms.py::test_top_entropy_tokens"],
    ),
    (
        "mismatch weights computed but not applied",
        "token_weights=here(inputs.token_weights),",
        "token_weights=None,",
        ["tests/test_grpo_algorithms.py::test_tokens_the_correction_masks"],
    ),
    (
        "control ignored",
        "weights, names = control_weights(run.cfg.rewards.weights, run.cfg.rewards.control)",
        "weights, names = control_weights(run.cfg.rewards.weights, 'none')",
        ["tests/test_grpo_algorithms.py::test_a_random_control"],
    ),
    (
        "engine gap measured after updates",
        "measure_gap=epoch == 0",
        "measure_gap=True",
        [f"{WIRING}::test_the_engine_gap"],
    ),
]


def survives(tests: list[str]) -> bool | None:
    """True when every test passes under the mutation, False when one fails, None when pytest could
    not run them (a test name that matches nothing must never count as a kill). Each entry is
    `file::name-prefix`, selected with -k."""
    files = sorted({t.split("::")[0] for t in tests})
    prefixes = " or ".join(t.split("::")[1] for t in tests if "::" in t)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-x",
            "-p",
            "no:randomly",
            *files,
            *(["-k", prefixes] if prefixes else []),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    ran = re.search(r"(\d+) (passed|failed)", done.stdout)
    if done.returncode not in (0, 1) or ran is None:
        return None
    return done.returncode == 0


def target(text: str) -> Path | None:
    """The one file of the GRPO step (grpo.py, update.py, batch.py) that holds `text` exactly once."""
    found = [p for p in FILES if p.read_text(encoding="utf-8").count(text) == 1]
    return found[0] if len(found) == 1 else None


def main() -> int:
    survivors = []
    for name, before, after, tests in MUTATIONS:
        path = target(before)
        if path is None:
            print(f"?  {name}: the text to mutate is not in the step's files exactly once (update this script)")
            survivors.append(name)
            continue
        original = path.read_text(encoding="utf-8")
        try:
            path.write_text(original.replace(before, after), encoding="utf-8")
            alive = survives(tests)
        finally:
            path.write_text(original, encoding="utf-8")
        verdict = {True: "SURVIVED", False: "killed", None: "NOT RUN (no test matched)"}[alive]
        print(f"{verdict}  {name} ({path.name})")
        survivors += [name] if alive is not False else []
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
