"""Rollouts: lengths and masks derived from the first stop token (pad == EOS), and `generate`."""

import copy

import pytest
import torch

from r1.data import load_examples, prepare_prompts
from r1.models import load_model
from r1.rollout import Rollout, Sampling, completion_lengths, stop_token_ids
from r1.rollout.hf import generate

EOS = 9  # pad == EOS in these hand-built rows, as in SmolLM2 / Qwen / Llama-3


def test_completion_lengths_with_pad_equal_to_eos():
    ids = torch.tensor(
        [
            [5, 6, EOS, EOS, EOS],  # EOS in the middle, then padding that is also EOS
            [EOS, EOS, EOS, EOS, EOS],  # EOS first: a length-1 completion (the EOS still counts)
            [5, 6, 7, 8, 4],  # no EOS: truncated, full length
            [5, EOS, 6, EOS, 7],  # several EOS: the first one ends it
            [5, 6, 7, 8, EOS],  # EOS as the last token: not truncated
        ]
    )
    lengths, truncated = completion_lengths(ids, [EOS])
    assert lengths.tolist() == [3, 1, 5, 2, 5]
    assert truncated.tolist() == [False, False, True, False, False]


def test_completion_lengths_with_several_stop_ids():
    ids = torch.tensor([[5, 3, 9, 9], [5, 6, 9, 3], [1, 2, 4, 4]])
    lengths, truncated = completion_lengths(ids, [9, 3])
    assert lengths.tolist() == [2, 3, 4]
    assert truncated.tolist() == [False, False, True]


def test_mask_includes_eos_and_nothing_after():
    ids = torch.tensor([[5, 6, EOS, EOS, EOS], [EOS, EOS, EOS, EOS, EOS], [5, 6, 7, 8, 4]])
    lengths, truncated = completion_lengths(ids, [EOS])
    rollout = Rollout(
        prompt_ids=[[1]] * 3, completion_ids=ids, lengths=lengths, truncated=truncated, texts=["", "", ""]
    )
    assert rollout.mask.dtype == torch.float32
    assert rollout.mask.tolist() == [[1, 1, 1, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 1, 1]]


# ---------------------------------------------------------------------------------------------
# generate on the tiny random-init model


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return load_model(str(tiny_model_dir))


def prompts(tokenizer, *questions):
    return [
        p["prompt_ids"]
        for p in prepare_prompts(
            [{"id": str(i), "prompt": q, "answer": "0"} for i, q in enumerate(questions)], tokenizer
        )
    ]


def test_stop_token_ids(tiny):
    model, tokenizer = tiny
    assert stop_token_ids(model, tokenizer) == [tokenizer.eos_token_id]


def test_generate_shapes_and_grouping(tiny):
    model, tokenizer = tiny
    ids = prompts(
        tokenizer, "What is 3 + 4?", "Ava has 12 apples. Ava finds 3 more apples. How many apples does Ava have now?"
    )
    rollout = generate(model, tokenizer, ids, Sampling(n=3, max_new_tokens=12, seed=0))
    assert rollout.prompt_ids == [ids[0]] * 3 + [ids[1]] * 3  # rows i*n … i*n+n-1 belong to prompt i
    B, T = rollout.completion_ids.shape
    assert B == 6 and 1 <= T <= 12
    assert rollout.completion_ids.dtype == torch.long
    assert rollout.lengths.shape == rollout.truncated.shape == (6,)
    assert rollout.mask.shape == (6, T)
    assert all(1 <= n <= 12 for n in rollout.lengths.tolist())
    expected_lengths, expected_truncated = completion_lengths(rollout.completion_ids, [tokenizer.eos_token_id])
    assert torch.equal(rollout.lengths, expected_lengths)
    assert torch.equal(rollout.truncated, expected_truncated)
    for row, length, text in zip(rollout.completion_ids, rollout.lengths, rollout.texts):
        assert text == tokenizer.decode(row[: int(length)], skip_special_tokens=True)
    assert not model.training  # eval mode is restored


def test_generate_restores_training_mode(tiny):
    model, tokenizer = tiny
    model.train()
    try:
        generate(model, tokenizer, prompts(tokenizer, "What is 1 + 1?"), Sampling(max_new_tokens=2, seed=0))
        assert model.training
    finally:
        model.eval()


def test_generate_is_reproducible_with_a_seed(tiny):
    model, tokenizer = tiny
    ids = prompts(tokenizer, "What is 3 + 4?", "What is 10 - 2?")
    a = generate(model, tokenizer, ids, Sampling(n=4, max_new_tokens=16, seed=7))
    b = generate(model, tokenizer, ids, Sampling(n=4, max_new_tokens=16, seed=7))
    c = generate(model, tokenizer, ids, Sampling(n=4, max_new_tokens=16, seed=8))
    assert torch.equal(a.completion_ids, b.completion_ids) and a.texts == b.texts
    assert not torch.equal(a.completion_ids, c.completion_ids)
    assert len(set(a.texts)) > 1  # a random-init model at temperature 1 samples different completions


def test_left_padding_does_not_change_the_next_token_logits(tiny):
    model, tokenizer = tiny
    short, long = prompts(tokenizer, "What is 3 + 4?", "What is " + " + ".join(["12"] * 20) + "?")
    pad = tokenizer.pad_token_id
    width = len(long)
    batch = torch.tensor([[pad] * (width - len(short)) + short, long])
    attention = torch.tensor([[0] * (width - len(short)) + [1] * len(short), [1] * width])
    with torch.no_grad():
        alone = model(torch.tensor([short])).logits[0, -1]
        padded = model(batch, attention_mask=attention).logits[0, -1]
    torch.testing.assert_close(padded, alone, rtol=0, atol=1e-5)


def test_left_padding_does_not_change_a_completion(tiny):
    # The random-init model repeats one token whatever its context; with its matrices scaled ×20
    # its greedy output depends on the context. Temperature 1e-4 makes sampling greedy (logit gaps
    # ≫ 1e-4), so a short prompt's completion must not change when a longer prompt shares the batch
    # (without the attention mask it does, from the 3rd token on).
    model, tokenizer = tiny
    sharp = copy.deepcopy(model)
    with torch.no_grad():
        for p in sharp.parameters():
            if p.dim() == 2:
                p.mul_(20)
    examples = [
        {"id": "0", "prompt": "What is 3 + 4?", "answer": "7"},
        {"id": "1", "prompt": "What is " + " + ".join(["12"] * 20) + "?", "answer": "240"},
    ]
    short, long = [e["prompt_ids"] for e in prepare_prompts(examples, tokenizer, template="none")]  # 22 and 58 tokens
    alone = generate(sharp, tokenizer, [short], Sampling(temperature=1e-4, max_new_tokens=8, seed=0))
    batched = generate(sharp, tokenizer, [short, long], Sampling(temperature=1e-4, max_new_tokens=8, seed=1))
    assert len(set(alone.completion_ids[0].tolist())) > 3  # a completion that actually varies
    assert int(batched.lengths[0]) == int(alone.lengths[0])
    assert (
        batched.completion_ids[0, : int(alone.lengths[0])].tolist()
        == alone.completion_ids[0, : int(alone.lengths[0])].tolist()
    )


# ---------------------------------------------------------------------------------------------
# The real bundled model


@pytest.mark.slow
def test_smollm2_answers_a_gsm8k_question_with_the_r1_zero_template(smollm2_dir):
    model, tokenizer = load_model(str(smollm2_dir))
    [example] = prepare_prompts(load_examples("gsm8k", limit=1), tokenizer, template="r1-zero")
    assert example["prompt_text"].startswith("<|im_start|>system\nThe user asks a question")
    assert example["prompt_text"].endswith("<|im_start|>assistant\n")
    rollout = generate(
        model, tokenizer, [example["prompt_ids"]], Sampling(n=1, max_new_tokens=16, seed=0, temperature=0.6, top_p=0.95)
    )
    assert rollout.completion_ids.shape[0] == 1
    assert 1 <= int(rollout.lengths[0]) <= 16
    assert rollout.texts[0].strip() != ""
