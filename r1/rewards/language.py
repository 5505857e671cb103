"""The language-consistency reward (DeepSeek-R1 stage 2): the share of the chain of thought's
words written in the target language.

R1 adds it to the accuracy reward because RL on multilingual prompts makes the reasoning
drift between languages. We judge a word by its Unicode *script* (``unicodedata`` names,
no model): English/French/… are Latin, ``zh`` is Han, ``ja`` accepts kana and Han, ``ko``
Hangul, ``ru`` Cyrillic, ``ar`` Arabic, and so on (``LANGUAGE_SCRIPTS``). So it cannot tell
English from French — only a script switch is an inconsistency.

What counts as a word, in the think block (the whole completion if there is none):

* whitespace-separated chunks, outer punctuation stripped; a chunk with a digit or a
  math/code character (``$ \\ = ^ _ { } ( ) [ ] < > * / | # @ ~ +``) is math or code and is
  skipped entirely (``x^2``, ``\\frac``, ``f(x)``, ``var_name``);
* inside a chunk, each maximal run of letters of one script is a word; a one-letter run in
  an alphabetic script is a variable (``x``, ``π``) and is skipped;
* Han ideographs and kana are written without spaces, so each such character counts as
  one word (Hangul is space-separated: a run is one word). This weighs a Chinese sentence
  more than its English translation; for a consistency share that is acceptable.

The target comes from ``example["language"]`` (a code from ``LANGUAGE_SCRIPTS`` or a script
name such as ``"Latin"``), else from ``example["prompt"]``: the script with most words
(Han with any kana → Japanese). No countable words in the reasoning, or no detectable
prompt language, gives 1.0: nothing is inconsistent. An unknown language code raises.
"""

import unicodedata
from collections import Counter
from functools import lru_cache

from .extract import THINK_CLOSE, THINK_OPEN, apply_prefill
from .registry import register

_LATIN = frozenset({"LATIN"})
LANGUAGE_SCRIPTS: dict[str, frozenset[str]] = {
    **{code: _LATIN for code in "en fr de es it pt nl sv no da fi pl cs sk ro hu tr vi id ms tl sw".split()},
    "zh": frozenset({"CJK"}),
    "ja": frozenset({"HIRAGANA", "KATAKANA", "CJK"}),
    "ko": frozenset({"HANGUL"}),
    **{code: frozenset({"CYRILLIC"}) for code in "ru uk bg sr be kk mk".split()},
    **{code: frozenset({"ARABIC"}) for code in "ar fa ur".split()},
    "el": frozenset({"GREEK"}),
    "he": frozenset({"HEBREW"}),
    **{code: frozenset({"DEVANAGARI"}) for code in "hi mr ne".split()},
    "th": frozenset({"THAI"}),
    "bn": frozenset({"BENGALI"}),
    "ta": frozenset({"TAMIL"}),
}
_PER_CHARACTER = frozenset({"CJK", "HIRAGANA", "KATAKANA"})  # no spaces between words
_CODEISH = frozenset("0123456789$\\=^_{}()[]<>*/|#@~+")
_OUTER_PUNCT = "\"'`([{<«“‘（【「『.,;:!?)]}>»”’）】」』。，、；：！？…-–—*"


@lru_cache(maxsize=65536)
def _script(ch: str) -> str | None:
    """Script of a letter ("LATIN", "CJK", "HANGUL", …); None for non-letters."""
    category = unicodedata.category(ch)
    if category[0] not in "LM":
        return None
    name = unicodedata.name(ch, "UNKNOWN").replace("FULLWIDTH ", "").replace("HALFWIDTH ", "")
    script = name.split(" ", 1)[0]
    return "KATAKANA" if script == "KATAKANA-HIRAGANA" else script


def words_by_script(text: str) -> Counter[str]:
    """Count the words of ``text`` per script, per the module rules."""
    counts: Counter[str] = Counter()
    for chunk in text.split():
        chunk = chunk.strip(_OUTER_PUNCT)
        if not chunk or any(ch in _CODEISH for ch in chunk):
            continue
        run_script, run_length = None, 0
        for ch in chunk + " ":  # the trailing space flushes the last run
            script = _script(ch)
            if script == run_script and script is not None:
                run_length += 1
                continue
            _count_run(counts, run_script, run_length)
            run_script, run_length = script, 1
    return counts


def _count_run(counts: Counter[str], script: str | None, length: int) -> None:
    if script is None or length == 0:
        return
    if script in _PER_CHARACTER:
        counts[script] += length
    elif length > 1 or script == "HANGUL":  # one alphabetic letter is a variable name
        counts[script] += 1


def target_scripts(example: dict) -> frozenset[str] | None:
    """Scripts accepted for this example, from ``language`` or detected from ``prompt``."""
    language = example.get("language")
    if language:
        code = str(language).lower().split("-")[0].split("_")[0]
        if code in LANGUAGE_SCRIPTS:
            return LANGUAGE_SCRIPTS[code]
        if str(language).upper() in {s for scripts in LANGUAGE_SCRIPTS.values() for s in scripts}:
            return frozenset({str(language).upper()})
        raise ValueError(f"unknown language {str(language)[:40]!r}; known: {sorted(LANGUAGE_SCRIPTS)}")
    counts = words_by_script(str(example.get("prompt", "")))
    if not counts:
        return None
    top = counts.most_common(1)[0][0]
    if top == "CJK" and (counts["HIRAGANA"] or counts["KATAKANA"]):
        return LANGUAGE_SCRIPTS["ja"]
    if top in ("HIRAGANA", "KATAKANA"):
        return LANGUAGE_SCRIPTS["ja"]
    return frozenset({top})


def reasoning_text(completion: str, example: dict) -> str:
    """The chain of thought: the think block (to the end if unclosed), else everything."""
    text = apply_prefill(completion, example)
    start = text.find(THINK_OPEN)
    if start < 0:
        return text
    start += len(THINK_OPEN)
    end = text.find(THINK_CLOSE, start)
    return text[start:] if end < 0 else text[start:end]


@register("language")
def language(completion: str, example: dict) -> float:
    """Share in [0, 1] of the reasoning's words in the target language's script(s).

    >>> language("<think>先算 the sum</think><answer>3</answer>", {"language": "zh"})
    0.5
    """
    scripts = target_scripts(example)
    counts = words_by_script(reasoning_text(completion, example))
    total = sum(counts.values())
    if scripts is None or total == 0:
        return 1.0
    return sum(n for script, n in counts.items() if script in scripts) / total
