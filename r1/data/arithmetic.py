"""`arithmetic`: a seeded generator of arithmetic problems, as symbols or as word problems.

Why a procedural task: a model of 135M parameters learns it in minutes on a CPU, correctness is
exact, difficulty is a dial (digits per number, operations, number of steps), and an unlimited
supply means a held-out set is always available.

A problem is a chain `a op1 b op2 c …`, evaluated step by step from left to right (the symbol
form adds parentheses so the usual precedence gives the same value). Intermediate values never go
negative, so word problems stay sensible. Each example carries its worked `steps`
(`["23 + 7 = 30", "30 * 4 = 120"]`), which the cold-start data builder turns into reasoning.

Train and test never overlap, whatever the seeds: every problem text is hashed into one of ten
buckets; bucket 0 belongs to `test`, buckets 1–9 to `train`, and a generator only emits problems
of its own split. The same (n, seed, split, settings) always gives the same list. Texts, not
calculations: a test problem can ask for a calculation some training problem asks for in other
words (about 15% of the demo's test problems do), so held-out sets that must be new drop those
(`unseen`; r1.data.unseen_heldout).

Two phrasing families: `standard` (what training and the cold start use: "What is 23 + 7 * 4?",
"Ava has 23 apples. …") and `alternate` (the same problems said another way: "Start from 23,
add 7, then multiply by 4. …", "A box holds 23 eggs. …"), for checking that a gain transfers
beyond the templates a model was trained on.
"""

from __future__ import annotations

import hashlib
import random

SPLITS = ("train", "test")
NAMES = [
    "Ava",
    "Ben",
    "Chloe",
    "Dev",
    "Emma",
    "Farid",
    "Grace",
    "Hugo",
    "Iris",
    "Jun",
    "Kofi",
    "Lena",
    "Mateo",
    "Nora",
    "Omar",
    "Priya",
]
ITEMS = ["apples", "marbles", "stickers", "coins", "books", "shells", "pencils", "cards", "stamps", "cookies"]
# The `alternate` phrasing family: the same problems said another way (other sentence frames, a
# container instead of a person, other items), never used by training or the cold start, to check
# that a gain transfers beyond the templates it was trained on.
CONTAINERS = ["box", "jar", "crate", "basket", "bag", "drawer"]
ALT_ITEMS = ["eggs", "nails", "beads", "buttons", "tickets", "spoons", "candles", "bottles"]
ALT_WORDS = {
    "+": ["{b} more {items} are put into the {who}.", "Someone adds {b} {items} to the {who}."],
    "-": ["{b} {items} are taken out of the {who}.", "Someone removes {b} {items} from the {who}."],
    "*": ["The number of {items} in the {who} is multiplied by {b}."],
}
ALT_STEPS = {
    "+": ["add {b}", "increase it by {b}"],
    "-": ["subtract {b}", "take away {b}"],
    "*": ["multiply by {b}", "make it {b} times as large"],
}
PHRASINGS = ("standard", "alternate")
WORDS = {  # how a word problem phrases one step
    "+": ["{who} then gets {b} more {items}.", "{who} finds {b} more {items}.", "A friend gives {who} {b} {items}."],
    "-": ["{who} then gives away {b} {items}.", "{who} loses {b} {items}.", "{who} uses {b} of the {items}."],
    "*": ["Then the number of {items} {who} has becomes {b} times as large."],
}
STORIES = {  # phrasing → (who, items, first sentence, one sentence per step, question) of a word problem
    "standard": (NAMES, ITEMS, "{who} has {start} {items}.", WORDS, "How many {items} does {who} have now?"),
    "alternate": (
        CONTAINERS,
        ALT_ITEMS,
        "A {who} holds {start} {items}.",
        ALT_WORDS,
        "How many {items} are in the {who} at the end?",
    ),
}


def make_problems(
    n: int,
    *,
    seed: int = 0,
    split: str = "train",
    min_digits: int = 1,
    max_digits: int = 2,
    min_steps: int = 1,
    max_steps: int = 2,
    ops: str = "+-*",
    word_fraction: float = 0.5,
    phrasing: str = "standard",
) -> list[dict]:
    """`n` distinct problems of `split`, deterministic in all arguments (see module doc)."""
    if split not in SPLITS:
        raise ValueError(f"arithmetic split must be one of {SPLITS}, got '{split}'")
    if phrasing not in PHRASINGS:
        raise ValueError(f"arithmetic phrasing must be one of {PHRASINGS}, got '{phrasing}'")
    rng = random.Random(f"arithmetic:{seed}:{split}")
    problems, seen, misses = [], set(), 0
    while len(problems) < n:
        if misses == 20_000:  # nothing new for this long (~0.2 s): the settings cannot give n problems
            raise ValueError(
                f"only {len(problems)} distinct '{split}' arithmetic problems found for these settings "
                f"(digits {min_digits}-{max_digits}, steps {min_steps}-{max_steps}, ops '{ops}'); ask for fewer or "
                "widen them"
            )
        steps = rng.randint(min_steps, max_steps)
        problem = _one(rng, min_digits, max_digits, steps, ops, rng.random() < word_fraction, phrasing)
        if problem is None or problem["prompt"] in seen or split_of(problem["prompt"]) != split:
            misses += 1
            continue
        misses = 0
        seen.add(problem["prompt"])
        problem["id"] = f"arithmetic-{split}-{seed}-{len(problems)}"
        problems.append(problem)
    return problems


def split_of(text: str) -> str:
    return "test" if int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) % 10 == 0 else "train"


def _number(rng: random.Random, min_digits: int, max_digits: int) -> int:
    digits = rng.randint(min_digits, max_digits)
    return rng.randint(0 if digits == 1 else 10 ** (digits - 1), 10**digits - 1)


def _one(
    rng: random.Random, min_digits: int, max_digits: int, n_steps: int, ops: str, word: bool, phrasing: str
) -> dict | None:
    """One problem, or None when it would go negative and `ops` offers no other operation."""
    value = _number(rng, min_digits, max_digits)
    start, chain, steps = value, [], []
    for _ in range(n_steps):
        op, b = rng.choice(ops), _number(rng, min_digits, max_digits)
        if op == "-" and b > value:  # keep every intermediate value non-negative
            if "+" not in ops and "*" not in ops:
                return None
            op = "+" if "+" in ops else "*"
        if op == "*":
            b = min(b, 12)  # products stay of a size a person would compute in one line
        result = value + b if op == "+" else value - b if op == "-" else value * b
        steps.append(f"{value} {op} {b} = {result}")
        chain.append((op, b))
        value = result
    if word:
        prompt = _words(rng, start, chain, phrasing)
    else:
        prompt = _alt_steps(rng, start, chain) if phrasing == "alternate" else _symbols(start, chain)
    return {"prompt": prompt, "answer": str(value), "steps": steps, "style": "word" if word else "symbols"}


def _symbols(start: int, chain: list[tuple[str, int]]) -> str:
    expr, low_precedence = str(start), False
    for op, b in chain:
        if op == "*" and low_precedence:
            expr = f"({expr})"
        expr = f"{expr} {op} {b}"
        low_precedence = op in "+-"
    return f"What is {expr}?"


def _words(rng: random.Random, start: int, chain: list[tuple[str, int]], phrasing: str) -> str:
    people, stock, first, step_words, question = STORIES[phrasing]
    who, items = rng.choice(people), rng.choice(stock)
    sentences = [first.format(who=who, start=start, items=items)]
    sentences += [rng.choice(step_words[op]).format(who=who, b=b, items=items) for op, b in chain]
    sentences.append(question.format(who=who, items=items))
    return " ".join(sentences)


def _alt_steps(rng: random.Random, start: int, chain: list[tuple[str, int]]) -> str:
    steps = ", then ".join(rng.choice(ALT_STEPS[op]).format(b=b) for op, b in chain)
    return f"Start from {start}, {steps}. Which number do you end with?"


def unseen(problems: list[dict], training: list[dict]) -> list[dict]:
    """The `problems` whose calculation (their worked steps) appears in none of `training`'s: a held-out
    check that no phrasing, however different, asks for a computation training already showed."""
    seen = {tuple(p["steps"]) for p in training}
    return [p for p in problems if tuple(p["steps"]) not in seen]
