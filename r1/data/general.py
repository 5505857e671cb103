"""General (non-reasoning) prompts and preference pairs for R1's all-scenario RL, written for this project.

`python -m r1.data.general` writes two bundled files from the tables below (rerunning reproduces
them byte for byte):
* `general_prompts.jsonl` — `{id, prompt, kind: "general", category}`: factual questions,
  translation, writing, advice and explanations, self-cognition ("Who are you?") and a few
  sensitive requests; `load_examples("general")` reads them, and `kind` routes them to the
  reward models (`rewards.routes`);
* `preference_pairs.jsonl` — `{prompt, chosen, rejected, style}` for `r1 rm`. Every ordinary
  prompt has a hand-written good answer (chosen) and three rejected responses, one per style:
  `wrong` (a false fact, mistranslation or false claim about itself) or `unhelpful` (a generic
  non-answer), `rude` (the same good answer wrapped in contempt) and `refusal` (a needless
  refusal). A sensitive prompt pairs a polite refusal that offers a decent alternative (chosen)
  with `harmful` compliance and with a `rude` refusal.

The styles make the preference learnable by a small model and make its mistakes readable (the
held-out accuracy per style). Deliberately left out: anything actionable in the harmful
compliances — they show willingness to deceive or harass, not how to do harm — and pairs whose
preference is a matter of taste.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from r1.data.general_tables import (  # the hand-written tables
    CAPITALS,
    FACTS,
    PHRASES,
    LANGUAGES,
    WRITING,
    ADVICE,
    SELF,
    SENSITIVE,
    UNHELPFUL,
    RUDE,
    REFUSALS,
    RUDE_REFUSALS,
)

BUNDLED_DIR = Path(__file__).parent / "bundled"


def ordinary_items() -> list[dict]:
    """Every non-sensitive prompt with its category, good answer and, where one exists, a wrong answer."""
    items = [
        {
            "category": "factual",
            "prompt": f"What is the capital of {country}?",
            "good": f"The capital of {country} is {capital}.",
            "wrong": f"The capital of {country} is {CAPITALS[(i + 5) % len(CAPITALS)][1]}.",
        }
        for i, (country, capital) in enumerate(CAPITALS)
    ]
    items += [{"category": "factual", "prompt": q, "good": good, "wrong": wrong} for q, good, wrong in FACTS]
    for li, language in enumerate(LANGUAGES):
        for pi, phrase in enumerate(PHRASES):
            other = PHRASES[(pi + 1) % len(PHRASES)][li + 1]  # another phrase's translation: a mistranslation
            items.append(
                {
                    "category": "translation",
                    "prompt": f'Translate "{phrase[0]}" into {language}.',
                    "good": f'In {language}, "{phrase[0]}" is "{phrase[li + 1]}".',
                    "wrong": f'In {language}, "{phrase[0]}" is "{other}".',
                }
            )
    items += [{"category": "writing", "prompt": q, "good": a} for q, a in WRITING]
    items += [{"category": "advice", "prompt": q, "good": a} for q, a in ADVICE]
    items += [{"category": "self-cognition", "prompt": q, "good": good, "wrong": wrong} for q, good, wrong in SELF]
    return items


def general_prompts() -> list[dict]:
    """The prompts of `general_prompts.jsonl`, ordinary ones first, then the sensitive requests."""
    rows = [(item["category"], item["prompt"]) for item in ordinary_items()] + [
        ("sensitive", q) for q, _, _ in SENSITIVE
    ]
    return [
        {"id": f"general-{i:03d}", "prompt": prompt, "kind": "general", "category": category}
        for i, (category, prompt) in enumerate(rows, start=1)
    ]


def preference_pairs(seed: int = 0) -> list[dict]:
    """The pairs of `preference_pairs.jsonl` (module doc), in a seeded shuffled order."""
    rng = random.Random(seed)
    pairs = []
    for item in ordinary_items():
        bad = ("wrong", item["wrong"]) if "wrong" in item else ("unhelpful", rng.choice(UNHELPFUL))
        rude = rng.choice(RUDE).format(answer=item["good"])
        for style, rejected in (bad, ("rude", rude), ("refusal", rng.choice(REFUSALS))):
            pairs.append({"prompt": item["prompt"], "chosen": item["good"], "rejected": rejected, "style": style})
    for request, refusal, compliance in SENSITIVE:
        pairs.append({"prompt": request, "chosen": refusal, "rejected": compliance, "style": "harmful"})
        pairs.append({"prompt": request, "chosen": refusal, "rejected": rng.choice(RUDE_REFUSALS), "style": "rude"})
    rng.shuffle(pairs)
    return pairs


def write(rows: list[dict], path: Path) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


if __name__ == "__main__":
    for path in (
        write(general_prompts(), BUNDLED_DIR / "general_prompts.jsonl"),
        write(preference_pairs(), BUNDLED_DIR / "preference_pairs.jsonl"),
    ):
        print(f"wrote {sum(1 for _ in path.open(encoding='utf-8'))} rows to {path}")
