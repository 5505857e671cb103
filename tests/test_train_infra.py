"""What the training loops share: the forward pass, LR schedule, guarded optimizer step, data order,
checkpoints (atomic, latest, pruned, loadable by plain transformers), the run directory."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch

from r1.config import load_config
from r1.train.forward import assemble, batched_logprobs, completion_logprobs
from r1.train.optim import build_optimizer, lr_factor, optimizer_step
from r1.train.run import IndexSampler


# --- forward -------------------------------------------------------------------------------------


def test_assemble_left_pads_prompts_and_counts_positions_over_real_tokens():
    ids, attention, positions = assemble([[5, 6, 7], [8]], torch.tensor([[1, 2], [3, 0]]), pad_id=0)
    assert ids.tolist() == [[5, 6, 7, 1, 2], [0, 0, 8, 3, 0]]
    assert attention.tolist() == [[1, 1, 1, 1, 1], [0, 0, 1, 1, 1]]
    assert positions.tolist() == [[0, 1, 2, 3, 4], [0, 0, 0, 1, 2]]


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_completion_logprobs_equal_a_plain_forward_on_each_unpadded_row(tiny, temperature):
    model, tokenizer = tiny
    gen = torch.Generator().manual_seed(0)
    prompt_lens, lengths = [3, 11, 7], [5, 2, 6]
    prompts = [torch.randint(3, len(tokenizer), (n,), generator=gen).tolist() for n in prompt_lens]
    completions = torch.full((3, 6), tokenizer.pad_token_id)
    for i, n in enumerate(lengths):
        completions[i, :n] = torch.randint(3, len(tokenizer), (n,), generator=gen)
    with torch.no_grad():
        logp, entropy = completion_logprobs(
            model, prompts, completions, pad_id=tokenizer.pad_token_id, temperature=temperature, entropy=True
        )
        for i, n in enumerate(lengths):
            sequence = prompts[i] + completions[i, :n].tolist()
            logits = model(torch.tensor([sequence])).logits[0, len(prompts[i]) - 1 : -1] / temperature  # (n, V)
            expected = torch.log_softmax(logits, -1)
            torch.testing.assert_close(
                logp[i, :n], expected.gather(-1, completions[i, :n, None])[:, 0], rtol=0, atol=1e-5
            )
            torch.testing.assert_close(entropy[i, :n], -(expected.exp() * expected).sum(-1), rtol=0, atol=1e-5)

        batched = batched_logprobs(
            model,
            prompts,
            completions,
            torch.tensor(lengths),
            pad_id=tokenizer.pad_token_id,
            temperature=temperature,
            micro_batch_size=2,
        )
    for i, n in enumerate(lengths):
        torch.testing.assert_close(batched[i, :n], logp[i, :n], rtol=0, atol=1e-5)
        assert torch.equal(batched[i, n:], torch.zeros(6 - n))


@pytest.mark.parametrize("T", [1, 6])
def test_shared_prompt_forward_equals_the_plain_layout_in_value_and_gradient(tiny, T):
    """Rows repeating prompts (two groups of 3, prompts of different lengths, ragged completions):
    running each prompt once must give the per-row forward's log-probs, entropies and gradients."""
    model, tokenizer = tiny
    gen = torch.Generator().manual_seed(1)
    prompts = [torch.randint(3, len(tokenizer), (n,), generator=gen).tolist() for n in (4, 9)]
    rows = [prompts[0]] * 3 + [prompts[1]] * 3
    completions = torch.randint(3, len(tokenizer), (6, T), generator=gen)
    mask = (torch.arange(T)[None, :] < torch.tensor([T, 2, 1, T, 3, T])[:, None].clamp(max=T)).float()
    results = []
    for share in (False, True):
        model.zero_grad()
        logp, entropy = completion_logprobs(
            model,
            rows,
            completions,
            pad_id=tokenizer.pad_token_id,
            temperature=0.7,
            entropy=True,
            entropy_grad=True,
            share_prompts=share,
        )
        ((logp * mask).sum() + 0.1 * (entropy * mask).sum()).backward()
        results.append((logp.detach(), entropy.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}))
    model.zero_grad()
    (plain_logp, plain_ent, plain_grads), (shared_logp, shared_ent, shared_grads) = results
    torch.testing.assert_close(shared_logp, plain_logp, rtol=0, atol=1e-5)
    torch.testing.assert_close(shared_ent, plain_ent, rtol=0, atol=1e-5)
    for name, grad in plain_grads.items():
        torch.testing.assert_close(shared_grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)
    assert max(float(g.abs().max()) for g in plain_grads.values()) > 1e-3  # the comparison is not between zeros


@pytest.mark.parametrize("kind", ["full", "lora", "lora-off"])
@pytest.mark.parametrize("share", [False, True])
def test_head_path_equals_the_full_logits_path_in_value_and_gradient(tiny, kind, share, monkeypatch):
    """Hidden states + the head chunk by chunk (no (B, T, V) logits) = the model's logits → log-softmax,
    for the plain model, its LoRA-wrapped (peft) version and that version's adapter-off view (π_ref)."""
    from r1.config import LoraConfig
    from r1.train import forward, lora

    model, tokenizer = tiny
    if kind != "full":
        model = lora.apply(copy.deepcopy(model), LoraConfig(enabled=True, r=4, alpha=8))
        for name, p in model.named_parameters():  # lora_B starts at 0: move it, so the adapter matters
            if "lora_B" in name:
                torch.nn.init.normal_(p, std=0.1)
        model = lora.AdapterOff(model) if kind == "lora-off" else model
    assert forward.output_head(forward.unwrap(model)[0])[0] is not None  # the head path is taken
    gen = torch.Generator().manual_seed(2)
    prompts = [torch.randint(3, len(tokenizer), (n,), generator=gen).tolist() for n in (5, 8)]
    rows = [prompts[0]] * 2 + [prompts[1]] * 2
    completions = torch.randint(3, len(tokenizer), (4, 6), generator=gen)
    a, b = torch.randn(4, 6, generator=gen), torch.randn(4, 6, generator=gen)
    params = [p for p in model.parameters() if p.requires_grad]
    results = []
    for head_path in (True, False):
        if not head_path:
            monkeypatch.setattr(forward, "output_head", lambda m: (None, None))
        logp, entropy = completion_logprobs(
            model,
            rows,
            completions,
            pad_id=tokenizer.pad_token_id,
            temperature=0.7,
            entropy=True,
            entropy_grad=True,
            share_prompts=share,
        )
        grads = torch.autograd.grad((a * logp + b * entropy).sum(), params) if params and kind != "lora-off" else ()
        results.append((logp.detach(), entropy.detach(), grads))
    (logp, entropy, grads), (ref_logp, ref_entropy, ref_grads) = results
    torch.testing.assert_close(logp, ref_logp, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(entropy, ref_entropy, rtol=1e-6, atol=1e-6)
    for grad, ref_grad in zip(grads, ref_grads):  # fp32 sums in another order: 1e-5 of the tensor's scale
        torch.testing.assert_close(grad, ref_grad, rtol=1e-5, atol=1e-5 * float(ref_grad.abs().max()))
    assert kind == "lora-off" or max(float(g.abs().max()) for g in ref_grads) > 1e-3


# --- learning rate and the optimizer step --------------------------------------------------------


def test_lr_factor_hand_values():
    warm = dict(warmup_steps=4, total_steps=10)
    assert [lr_factor(s, schedule="constant", **warm) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert [lr_factor(s, schedule="cosine", **warm) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    # cosine, warmup 2, 10 steps, floor 0.1: progress (s - 2) / 8 → 0.1 + 0.9 · ½(1 + cos(π · progress))
    cos = dict(warmup_steps=2, total_steps=10, schedule="cosine", min_ratio=0.1)
    assert lr_factor(2, **cos) == pytest.approx(1.0)
    assert lr_factor(4, **cos) == pytest.approx(0.1 + 0.45 * (1 + math.sqrt(0.5)))  # progress 1/4
    assert lr_factor(6, **cos) == pytest.approx(0.55)  # progress 1/2
    assert lr_factor(10, **cos) == pytest.approx(0.1)
    assert lr_factor(25, **cos) == pytest.approx(0.1)  # past the end: stays at the floor
    assert lr_factor(5, warmup_steps=0, total_steps=10, schedule="cosine") == pytest.approx(0.5)
    with pytest.raises(ValueError, match="unknown schedule"):
        lr_factor(5, warmup_steps=0, total_steps=10, schedule="linear")


def test_built_scheduler_follows_lr_factor_per_optimizer_step():
    model = torch.nn.Linear(2, 1)
    optim = load_config(
        None, ["optim.lr=0.1", "optim.warmup_steps=2", "optim.schedule=cosine", "optim.min_lr_ratio=0.2"]
    ).optim
    optimizer, scheduler = build_optimizer(model, optim, total_steps=6)
    seen = []
    for _ in range(7):
        seen.append(optimizer.param_groups[0]["lr"])
        model(torch.ones(1, 2)).sum().backward()
        optimizer_step(model, optimizer, scheduler, grad_clip=1.0)
    expected = [0.1 * lr_factor(s, warmup_steps=2, total_steps=6, schedule="cosine", min_ratio=0.2) for s in range(7)]
    assert seen == pytest.approx(expected, abs=1e-12)


def sgd(model):
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)


def test_optimizer_step_clips_to_the_global_norm():
    model = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.zero_()
    model.weight.grad = torch.tensor([[3.0, 4.0]])
    optimizer, scheduler = sgd(model)
    norm, applied = optimizer_step(model, optimizer, scheduler, grad_clip=1.0)
    assert (norm, applied) == (pytest.approx(5.0), True)
    torch.testing.assert_close(model.weight.detach(), torch.tensor([[-0.6, -0.8]]))  # the gradient scaled to norm 1
    assert model.weight.grad is None and scheduler.last_epoch == 1


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_optimizer_step_refuses_a_non_finite_gradient(bad):
    model = torch.nn.Linear(2, 2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.weight.grad = torch.tensor([[1.0, bad], [0.0, 1.0]])
    model.bias.grad = torch.ones(2)
    optimizer, scheduler = sgd(model)
    norm, applied = optimizer_step(model, optimizer, scheduler, grad_clip=0.0)
    assert not applied and not math.isfinite(norm)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    assert model.weight.grad is None and model.bias.grad is None  # not carried into the next step
    assert scheduler.last_epoch == 0  # the schedule did not advance


# --- data order ----------------------------------------------------------------------------------


def test_index_sampler_covers_every_index_once_per_epoch_and_is_deterministic():
    sampler = IndexSampler(7, seed=3)
    drawn = sampler.take(5) + sampler.take(5) + sampler.take(4)  # crosses the epoch boundary mid-take
    assert sorted(drawn[:7]) == sorted(drawn[7:]) == list(range(7))
    assert drawn[:7] != drawn[7:]  # a fresh permutation each epoch
    assert sampler.epoch == 1 and sampler.position == 7
    again = IndexSampler(7, seed=3)
    assert again.take(14) == drawn
    assert IndexSampler(7, seed=4).take(7) != drawn[:7]


def test_index_sampler_state_round_trip_continues_identically():
    a = IndexSampler(5, seed=0)
    a.take(8)
    b = IndexSampler(5, seed=0)
    b.load_state_dict(json.loads(json.dumps(a.state_dict())))
    assert b.take(12) == a.take(12)
