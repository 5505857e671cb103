"""Prompt datasets (bundled benchmarks, JSONL, hub, procedural arithmetic) and prompt templates."""

from r1.data.arithmetic import make_problems
from r1.data.datasets import (
    BUNDLED,
    DataError,
    gsm8k_final_answer,
    load_configured,
    load_examples,
    read_jsonl,
    unseen_heldout,
)
from r1.data.templates import TEMPLATES, Prompt, TemplateError, prepare_prompts, render_prompt

__all__ = [
    "BUNDLED",
    "DataError",
    "Prompt",
    "TEMPLATES",
    "TemplateError",
    "gsm8k_final_answer",
    "load_configured",
    "unseen_heldout",
    "load_examples",
    "make_problems",
    "prepare_prompts",
    "read_jsonl",
    "render_prompt",
]
