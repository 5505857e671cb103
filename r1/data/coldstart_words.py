"""GSM8K-style word problems written by program, with worked solutions: cold start without a teacher.

The `arithmetic` task (r1/data/arithmetic.py) is a chain of operations on one quantity. GSM8K asks
for more: two to four steps over several quantities of a small story (trays and cookies per tray,
hours and an hourly wage, prices and a bill), each step a different operation on results of
earlier ones. Each template below draws its numbers so that every step is exact whole-number
arithmetic (a division always divides, a subtraction never goes negative), and records the steps
as it computes them, so the solution cannot disagree with the answer:

    <think>
    Cookies baked: 4 * 12 = 48.
    Cookies left: 48 - 8 = 40.
    Bags filled: 40 / 5 = 8.
    So the answer is 8.
    </think>
    <answer>8</answer>

Step labels contain no digits, so every `a op b = c` in a solution is one computed step. Train and
test never overlap, by the same hash of the question text as `arithmetic` (`split_of`).

Deliberately left out: fractions, percentages and units conversion (GSM8K has them; each would be
a template of its own), and distractor sentences.
"""

from __future__ import annotations

import random

from r1.data.arithmetic import NAMES, SPLITS, split_of

OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, "/": lambda a, b: a // b}


class Story:
    """Computes a solution step by step and writes each step down as `label: a op b = c.`."""

    def __init__(self):
        self.steps: list[str] = []

    def step(self, label: str, a: int, op: str, b: int) -> int:
        if op == "/" and (b == 0 or a % b):
            raise ValueError(f"{a} / {b} is not a whole number")  # a template bug, never data
        c = OPS[op](a, b)
        if c < 0:
            raise ValueError(f"{a} {op} {b} is negative")
        self.steps.append(f"{label}: {a} {op} {b} = {c}.")
        return c


def bakery(rng: random.Random, name: str) -> tuple[str, Story, int]:
    trays, per, bag = rng.randint(2, 9), rng.randint(6, 12), rng.randint(2, 6)
    total = trays * per
    good = bag * rng.randint(1, (total - 1) // bag)  # at least one burnt cookie, bags come out whole
    s = Story()
    baked = s.step("Cookies baked", trays, "*", per)
    left = s.step("Cookies left", baked, "-", total - good)
    answer = s.step("Bags filled", left, "/", bag)
    question = (
        f"{name} bakes {trays} trays of cookies with {per} cookies on each tray. {total - good} cookies burn and "
        "are thrown away. "
        f"{name} packs the rest into bags of {bag} cookies. How many bags does {name} fill?"
    )
    return question, s, answer


def wages(rng: random.Random, name: str) -> tuple[str, Story, int]:
    rate, h1, h2 = rng.randint(8, 25), rng.randint(2, 8), rng.randint(2, 8)
    spent = rng.randint(5, rate * (h1 + h2) - 1)
    s = Story()
    hours = s.step("Hours worked", h1, "+", h2)
    pay = s.step("Pay in dollars", hours, "*", rate)
    answer = s.step("Dollars left", pay, "-", spent)
    question = (
        f"{name} earns ${rate} an hour, works {h1} hours on Monday and {h2} hours on Tuesday, "
        f"then spends ${spent} on groceries. How many dollars of the pay does {name} have left?"
    )
    return question, s, answer


def reading(rng: random.Random, name: str) -> tuple[str, Story, int]:
    per, days, extra = rng.randint(5, 30), rng.randint(2, 7), rng.choice([0, rng.randint(3, 20)])
    pages = per * days + extra + rng.randint(5, 120)
    s = Story()
    read = s.step("Pages read on weekdays", per, "*", days)
    if extra:
        read = s.step("Pages read in total", read, "+", extra)
    answer = s.step("Pages left", pages, "-", read)
    weekend = f", and {extra} more pages on Sunday" if extra else ""
    question = (
        f"A book has {pages} pages. {name} reads {per} pages a day for {days} days{weekend}. How many pages "
        "are left to read?"
    )
    return question, s, answer


def shopping(rng: random.Random, name: str) -> tuple[str, Story, int]:
    a, pa, b, pb = rng.randint(2, 6), rng.randint(2, 9), rng.randint(2, 8), rng.randint(1, 4)
    bill = next(v for v in (20, 50, 100) if v > a * pa + b * pb)
    s = Story()
    notebooks = s.step("Cost of the notebooks in dollars", a, "*", pa)
    pens = s.step("Cost of the pens in dollars", b, "*", pb)
    total = s.step("Total cost in dollars", notebooks, "+", pens)
    answer = s.step("Change in dollars", bill, "-", total)
    question = (
        f"{name} buys {a} notebooks at ${pa} each and {b} pens at ${pb} each, and pays with a ${bill} bill. "
        f"How many dollars of change does {name} get?"
    )
    return question, s, answer


def savings(rng: random.Random, name: str) -> tuple[str, Story, int]:
    start, save, weeks = rng.randint(5, 60), rng.randint(3, 15), rng.randint(2, 10)
    price = rng.randint(10, start + save * weeks)
    item = rng.choice(["bike", "game", "jacket", "kite", "watch"])
    s = Story()
    saved = s.step("Dollars saved", save, "*", weeks)
    total = s.step("Dollars in total", start, "+", saved)
    answer = s.step("Dollars left", total, "-", price)
    question = (
        f"{name} has ${start} and saves ${save} every week. After {weeks} weeks, {name} buys a {item} for ${price}. "
        f"How many dollars does {name} have left?"
    )
    return question, s, answer


def eggs(rng: random.Random, name: str) -> tuple[str, Story, int]:
    hens, per = rng.randint(3, 12), rng.randint(3, 7)
    total = hens * per
    box = rng.choice([b for b in (6, 10, 12) if b < total])  # at least one box is sold
    kept = total - box * rng.randint(1, (total - 1) // box)
    price = rng.choice([0, rng.randint(2, 5)])  # 0: the question stops at the boxes
    s = Story()
    laid = s.step("Eggs laid in a week", hens, "*", per)
    sold = s.step("Eggs sold", laid, "-", kept)
    answer = s.step("Boxes sold", sold, "/", box)
    ask = f"How many boxes does {name} sell?"
    if price:
        answer = s.step("Dollars earned", answer, "*", price)
        ask = f"If each box sells for ${price}, how many dollars does {name} earn?"
    question = (
        f"{name} keeps {hens} hens, and each hen lays {per} eggs a week. {name} keeps {kept} eggs and sells "
        f"the rest in boxes of {box}. {ask}"
    )
    return question, s, answer


def classroom(rng: random.Random, name: str) -> tuple[str, Story, int]:
    rooms, desks = rng.randint(2, 9), rng.randint(12, 30)
    students = rng.randint(rooms, rooms * desks - 1)
    s = Story()
    total = s.step("Desks in the school", rooms, "*", desks)
    answer = s.step("Empty desks", total, "-", students)
    question = (
        f"{name}'s school has {rooms} classrooms with {desks} desks each. Today {students} students are at school, "
        "one at each desk. How many desks are empty?"
    )
    return question, s, answer


def sharing(rng: random.Random, name: str) -> tuple[str, Story, int]:
    friend = rng.choice([n for n in NAMES if n != name])
    baskets = rng.randint(2, 6)
    left = baskets * rng.randint(2, 12)
    eaten = rng.randint(1, 9)
    a = rng.randint(1, left + eaten - 1)
    s = Story()
    picked = s.step("Apples picked", a, "+", left + eaten - a)
    rest = s.step("Apples left after eating", picked, "-", eaten)
    answer = s.step("Apples per basket", rest, "/", baskets)
    question = (
        f"{name} picks {a} apples and {friend} picks {left + eaten - a} apples. Together they eat {eaten} of them "
        f"and share the rest equally among {baskets} baskets. How many apples go in each basket?"
    )
    return question, s, answer


TEMPLATES = {fn.__name__: fn for fn in (bakery, wages, reading, shopping, savings, eggs, classroom, sharing)}


def make_word_problems(
    n: int, *, seed: int = 0, split: str = "train", min_steps: int = 2, max_steps: int = 4
) -> list[dict]:
    """`n` distinct word problems of `split` with 2–4 worked steps, deterministic in all arguments."""
    if split not in SPLITS:
        raise ValueError(f"word-problem split must be one of {SPLITS}, got '{split}'")
    if not 1 <= min_steps <= max_steps:
        raise ValueError(f"need 1 ≤ min_steps ≤ max_steps, got {min_steps}, {max_steps}")
    rng = random.Random(f"wordproblems:{seed}:{split}")
    problems, seen, misses = [], set(), 0
    while len(problems) < n:
        if misses == 20_000:  # nothing new for this long: these settings cannot give n problems
            raise ValueError(
                f"only {len(problems)} distinct '{split}' word problems with {min_steps}-{max_steps} steps; ask "
                "for fewer"
            )
        template = rng.choice(list(TEMPLATES))
        question, story, answer = TEMPLATES[template](rng, rng.choice(NAMES))
        if question in seen or split_of(question) != split or not min_steps <= len(story.steps) <= max_steps:
            misses += 1
            continue
        misses = 0
        seen.add(question)
        problems.append(
            {
                "id": f"wordproblem-{split}-{seed}-{len(problems)}",
                "prompt": question,
                "answer": str(answer),
                "steps": story.steps,
                "template": template,
                "style": "word-problem",
            }
        )
    return problems


def word_problem_completion(problem: dict) -> str:
    """The R1-format solution: one step per line in the think block, then the answer."""
    lines = [*problem["steps"], f"So the answer is {problem['answer']}."]
    return "<think>\n" + "\n".join(lines) + "\n</think>\n<answer>" + problem["answer"] + "</answer>"


def word_problem_worked_examples(n: int, *, seed: int = 0, split: str = "train", **settings) -> list[dict]:
    """`n` prompt/completion rows for SFT (plus `answer`), from `make_word_problems`."""
    return [
        {"id": p["id"], "prompt": p["prompt"], "completion": word_problem_completion(p), "answer": p["answer"]}
        for p in make_word_problems(n, seed=seed, split=split, **settings)
    ]
