"""Prompt templates: the R1-Zero instruction, as plain text or through a model's chat template.

R1-Zero's template (docs/method.md §4) tells the model only *where* to put things — reasoning inside
`<think> </think>`, the final answer inside `<answer> </answer>` — and nothing about *how* to
reason. Our wording is below. It comes in two forms:
- `plain`, for base models: instruction, `User: …`, `Assistant:` as one text;
- `chat`, for instruct models: the instruction as the system message, the question as the user
  message, rendered by the tokenizer's own chat template with the assistant turn opened.
`auto` picks `chat` when the tokenizer has a chat template.

A known trap: some chat templates open `<think>` for the assistant themselves (reasoning models
such as DeepSeek-R1-Distill and Qwen3). The model then never writes `<think>`, and a format
reward that expects it scores 0 on every sample. We detect it by rendering the prompt and looking
at what follows the question; the example is marked `think_prefilled`, which the rewards read.
`prefill_think` does the same on purpose for models that need the nudge. A template that opens
*and closes* an empty think block (thinking switched off) is refused with an explanation.

Deliberately left out: few-shot prompting (the paper's R1-Zero uses none).
"""

from __future__ import annotations

from dataclasses import dataclass

R1_ZERO_INSTRUCTION = (
    "The user asks a question and the assistant solves it. The assistant first reasons about the "
    "problem step by step, then gives the final answer. The reasoning goes between <think> and "
    "</think>, and the final answer alone between <answer> and </answer>, like this: "
    "<think> reasoning here </think> <answer> final answer here </answer>"
)
# The same contract in a third of the tokens, for small models whose format comes from a cold start
# anyway: on a CPU the instruction is most of every prompt, so it sets the cost of every step.
R1_BRIEF_INSTRUCTION = (
    "Reason step by step inside <think> </think>, then give the final answer inside <answer> </answer>."
)
TEMPLATES = {"r1-zero": R1_ZERO_INSTRUCTION, "r1-brief": R1_BRIEF_INSTRUCTION, "none": None}
FORMS = ("auto", "chat", "plain")


class TemplateError(ValueError):
    pass


@dataclass(frozen=True)
class Prompt:
    text: str  # what the model is given, special tokens included
    think_prefilled: bool  # the text ends inside an open <think> block
    chat: bool  # rendered by the tokenizer's chat template (which writes its own special tokens)

    def token_ids(self, tokenizer) -> list[int]:
        return tokenizer(self.text, add_special_tokens=not self.chat)["input_ids"]


def render_prompt(
    tokenizer, question: str, *, template: str = "r1-zero", form: str = "auto", prefill_think: bool = False
) -> Prompt:
    """Render `question` with `template` in `form` (see module doc)."""
    if template not in TEMPLATES:
        raise TemplateError(f"unknown template '{template}'; choose one of {', '.join(TEMPLATES)}")
    if form not in FORMS:
        raise TemplateError(f"unknown template form '{form}'; choose one of {', '.join(FORMS)}")
    instruction = TEMPLATES[template]
    if form == "auto":
        form = "chat" if getattr(tokenizer, "chat_template", None) else "plain"
    if form == "chat":
        if not getattr(tokenizer, "chat_template", None):
            raise TemplateError("data.template_form=chat, but this tokenizer has no chat template; use plain")
        messages = ([{"role": "system", "content": instruction}] if instruction else []) + [
            {"role": "user", "content": question}
        ]
        # enable_thinking is read by templates that can switch thinking off, ignored by the rest.
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, enable_thinking=True)
        tail = text[text.rfind(question) + len(question) :]
    else:
        head = f"{instruction}\n" if instruction else ""
        text = f"{head}User: {question}\nAssistant:"
        tail = ""
    opened, closed = "<think>" in tail, "</think>" in tail
    if opened and closed:
        raise TemplateError(
            "this chat template opens and closes an empty <think> block for the assistant (thinking switched off), "
            "so the model cannot reason inside it; use data.template_form=plain or a template with thinking on"
        )
    if prefill_think and not opened:
        text += "<think>" if form == "chat" else " <think>"
        opened = True
    return Prompt(text=text, think_prefilled=opened, chat=form == "chat")


def prepare_prompts(
    examples: list[dict],
    tokenizer,
    *,
    template: str = "r1-zero",
    form: str = "auto",
    prefill_think: bool = False,
    max_prompt_tokens: int = 512,
    on_overlong: str = "error",
    quiet: bool = False,
) -> list[dict]:
    """Add `prompt_text`, `prompt_ids` and `think_prefilled` to each example.

    A prompt longer than `max_prompt_tokens` is an error naming the example (`on_overlong=error`)
    or is dropped and counted (`filter`); it is never truncated.
    """
    if on_overlong not in ("error", "filter"):
        raise TemplateError(f"on_overlong must be 'error' or 'filter', got '{on_overlong}'")
    kept, dropped = [], 0
    for example in examples:
        prompt = render_prompt(tokenizer, example["prompt"], template=template, form=form, prefill_think=prefill_think)
        ids = prompt.token_ids(tokenizer)
        if len(ids) > max_prompt_tokens:
            if on_overlong == "error":
                raise TemplateError(
                    f"example '{example.get('id')}' has a {len(ids)}-token prompt, over "
                    f"data.max_prompt_tokens={max_prompt_tokens}; "
                    "raise the limit or set data.on_overlong_prompt=filter to drop such examples"
                )
            dropped += 1
            continue
        kept.append(
            {**example, "prompt_text": prompt.text, "prompt_ids": ids, "think_prefilled": prompt.think_prefilled}
        )
    if dropped and not quiet:
        print(f"[r1] dropped {dropped} example(s) with prompts over {max_prompt_tokens} tokens")
    if not kept:
        raise TemplateError(f"every prompt is longer than data.max_prompt_tokens={max_prompt_tokens}")
    return kept
