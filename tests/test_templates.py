"""Prompt templates: plain and chat forms, think prefilling and its detection, prepare_prompts."""

import pytest
from transformers import AutoTokenizer

from r1.data import TemplateError, prepare_prompts, render_prompt
from r1.data.templates import R1_ZERO_INSTRUCTION

Q = "What is 3 + 4?"

# ChatML as a reasoning model's template writes it: the assistant turn opens `<think>` itself.
THINKING_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' "
    "}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n<think>\n' }}{% endif %}"
)
# Thinking switched off: an empty think block opened and closed for the assistant (Qwen3 style).
NO_THINKING_TEMPLATE = THINKING_TEMPLATE.replace("<think>\n", "<think>\n\n</think>\n\n")


@pytest.fixture
def chat_tok(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture
def base_tok(tiny_base_model_dir):
    return AutoTokenizer.from_pretrained(tiny_base_model_dir)


def test_plain_form(base_tok):
    prompt = render_prompt(base_tok, Q)
    assert prompt.text == f"{R1_ZERO_INSTRUCTION}\nUser: {Q}\nAssistant:"
    assert (prompt.chat, prompt.think_prefilled) == (False, False)


def test_plain_form_without_instruction(base_tok):
    assert render_prompt(base_tok, Q, template="none").text == f"User: {Q}\nAssistant:"


def test_chat_form(chat_tok):
    prompt = render_prompt(chat_tok, Q)  # auto → chat: the tokenizer has a chat template
    assert prompt.text == (
        f"<|im_start|>system\n{R1_ZERO_INSTRUCTION}<|im_end|>\n<|im_start|>user\n{Q}<|im_end|>\n<|im_start|>assistant\n"
    )
    assert (prompt.chat, prompt.think_prefilled) == (True, False)


def test_chat_form_without_instruction_has_no_system_turn(chat_tok):
    text = render_prompt(chat_tok, Q, template="none").text
    assert text == f"<|im_start|>user\n{Q}<|im_end|>\n<|im_start|>assistant\n"


def test_auto_picks_by_chat_template(chat_tok, base_tok):
    assert render_prompt(chat_tok, Q, form="auto").chat is True
    assert render_prompt(base_tok, Q, form="auto").chat is False
    assert render_prompt(chat_tok, Q, form="plain").text == render_prompt(base_tok, Q).text  # plain can be forced


def test_chat_without_chat_template_is_an_error(base_tok):
    with pytest.raises(TemplateError, match="no chat template; use plain"):
        render_prompt(base_tok, Q, form="chat")


def test_unknown_template_and_form(chat_tok):
    with pytest.raises(TemplateError, match="unknown template 'r2'; choose one of r1-zero, r1-brief, none"):
        render_prompt(chat_tok, Q, template="r2")
    with pytest.raises(TemplateError, match="unknown template form 'html'"):
        render_prompt(chat_tok, Q, form="html")


def test_prefill_think(chat_tok, base_tok):
    chat = render_prompt(chat_tok, Q, prefill_think=True)
    assert chat.text == render_prompt(chat_tok, Q).text + "<think>"
    assert chat.think_prefilled is True
    plain = render_prompt(base_tok, Q, prefill_think=True)
    assert plain.text == f"{R1_ZERO_INSTRUCTION}\nUser: {Q}\nAssistant: <think>"
    assert plain.think_prefilled is True


def test_template_that_opens_think_is_detected(chat_tok):
    chat_tok.chat_template = THINKING_TEMPLATE
    prompt = render_prompt(chat_tok, Q)
    assert prompt.text.endswith("<|im_start|>assistant\n<think>\n")
    assert prompt.think_prefilled is True
    # prefill_think does not open a second block
    assert render_prompt(chat_tok, Q, prefill_think=True).text == prompt.text


def test_think_in_question_is_not_taken_for_a_prefill(chat_tok):
    prompt = render_prompt(chat_tok, "Explain what <think> means.")
    assert prompt.think_prefilled is False


def test_template_with_empty_think_block_is_refused(chat_tok):
    chat_tok.chat_template = NO_THINKING_TEMPLATE
    with pytest.raises(TemplateError, match="opens and closes an empty <think> block"):
        render_prompt(chat_tok, Q)


# ---------------------------------------------------------------------------------------------
# prepare_prompts


def examples(*questions):
    return [{"id": f"ex-{i}", "prompt": q, "answer": str(i)} for i, q in enumerate(questions)]


def test_prepare_prompts_adds_fields(chat_tok):
    prepared = prepare_prompts(examples(Q, "What is 5 * 6?"), chat_tok)
    assert [p["id"] for p in prepared] == ["ex-0", "ex-1"]
    first = prepared[0]
    assert first["answer"] == "0" and first["prompt"] == Q  # the example's own fields are kept
    assert first["prompt_text"] == render_prompt(chat_tok, Q).text
    assert first["prompt_ids"] == chat_tok(first["prompt_text"], add_special_tokens=False)["input_ids"]
    assert chat_tok.decode(first["prompt_ids"]) == first["prompt_text"]
    assert first["think_prefilled"] is False
    assert prepare_prompts(examples(Q), chat_tok, prefill_think=True)[0]["think_prefilled"] is True


def test_overlong_prompt_is_an_error_naming_the_example(chat_tok):
    long_question = "What is " + " + ".join(["12"] * 200) + "?"
    n = len(render_prompt(chat_tok, long_question).token_ids(chat_tok))
    with pytest.raises(TemplateError) as err:
        prepare_prompts(examples(Q, long_question), chat_tok, max_prompt_tokens=n - 1)
    assert f"example 'ex-1' has a {n}-token prompt, over data.max_prompt_tokens={n - 1}" in str(err.value)
    # the limit is inclusive
    assert len(prepare_prompts(examples(Q, long_question), chat_tok, max_prompt_tokens=n)) == 2


def test_overlong_prompts_filtered_and_counted(chat_tok, capsys):
    long_question = "What is " + " + ".join(["12"] * 200) + "?"
    limit = len(render_prompt(chat_tok, Q).token_ids(chat_tok))
    prepared = prepare_prompts(
        examples(long_question, Q, long_question), chat_tok, max_prompt_tokens=limit, on_overlong="filter"
    )
    assert [p["id"] for p in prepared] == ["ex-1"]
    assert f"dropped 2 example(s) with prompts over {limit} tokens" in capsys.readouterr().out


def test_all_overlong_is_an_error(chat_tok):
    with pytest.raises(TemplateError, match="every prompt is longer than data.max_prompt_tokens=5"):
        prepare_prompts(examples(Q, Q), chat_tok, max_prompt_tokens=5, on_overlong="filter")


def test_bad_on_overlong(chat_tok):
    with pytest.raises(TemplateError, match="on_overlong must be 'error' or 'filter'"):
        prepare_prompts(examples(Q), chat_tok, on_overlong="truncate")


def test_chat_prompts_get_no_extra_bos(chat_tok, base_tok):
    # Give both tokenizers a post-processor that adds BOS, as Llama-style tokenizers have.
    from tokenizers.processors import TemplateProcessing

    for tok in (chat_tok, base_tok):
        tok.backend_tokenizer.post_processor = TemplateProcessing(
            single="<|im_start|> $A", special_tokens=[("<|im_start|>", tok.bos_token_id)]
        )
    bos = chat_tok.bos_token_id
    chat_ids = prepare_prompts(examples(Q), chat_tok)[0]["prompt_ids"]
    assert chat_ids[0] == bos and chat_ids[1] != bos  # the template's own BOS, once
    assert chat_ids.count(bos) == 3  # one per turn: system, user, assistant
    plain_ids = prepare_prompts(examples(Q), base_tok)[0]["prompt_ids"]
    assert plain_ids[0] == bos and plain_ids.count(bos) == 1  # plain text gets the tokenizer's BOS


def test_brief_template_is_the_same_contract_in_fewer_tokens(chat_tok):
    from r1.data.templates import R1_BRIEF_INSTRUCTION

    brief = render_prompt(chat_tok, Q, template="r1-brief")
    assert (
        R1_BRIEF_INSTRUCTION in brief.text and "<think>" in R1_BRIEF_INSTRUCTION and "<answer>" in R1_BRIEF_INSTRUCTION
    )
    assert len(brief.token_ids(chat_tok)) < len(render_prompt(chat_tok, Q).token_ids(chat_tok))
