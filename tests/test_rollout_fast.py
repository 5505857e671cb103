"""The fast decode loop: same logits as HF's forward, same greedy tokens as HF generate, same contract.

The tiny random-init model repeats one token whatever its context; a copy with its matrices scaled
×20 ("sharp") has context-dependent greedy output, which is what token-by-token comparisons need.
"""

import copy

import pytest
import torch

from r1.models import load_model
from r1.rollout import Sampling, completion_lengths, fast, stop_token_ids

PROMPTS = [[5, 6, 7, 8, 9, 10, 11, 12, 13], [20, 21, 22], [30, 31, 32, 33, 34, 35]]  # left-padded: 3 widths


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return load_model(str(tiny_model_dir))


@pytest.fixture(scope="module")
def sharp(tiny):
    model, tokenizer = tiny
    model = copy.deepcopy(model)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.mul_(20)
    return model, tokenizer


def left_pad(prompts, pad):
    width = max(map(len, prompts))
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])  # (B, P)
    real = torch.tensor([[False] * (width - len(p)) + [True] * len(p) for p in prompts])  # (B, P)
    positions = (real.long().cumsum(dim=1) - 1).clamp(min=0)
    return ids, real, positions


def hf_logits(model, ids, real, positions):
    with torch.no_grad():
        return model(ids, attention_mask=real.long(), position_ids=positions).logits  # (B, T, V)


def hf_greedy(model, tokenizer, prompts, max_new_tokens):
    ids, real, _ = left_pad(prompts, tokenizer.pad_token_id)
    stops = stop_token_ids(model, tokenizer)
    out = model.generate(
        input_ids=ids,
        attention_mask=real.long(),
        do_sample=False,
        max_new_tokens=max_new_tokens,
        eos_token_id=stops,
        pad_token_id=tokenizer.pad_token_id,
    )[:, ids.shape[1] :]
    return out, *completion_lengths(out, stops)


def test_prefill_and_decode_logits_match_hf_forward(sharp):
    # Teacher-forced: prefill three left-padded prompts, then feed 5 fixed tokens one at a time;
    # every position's logits must equal HF's forward over the whole sequence at once.
    model, tokenizer = sharp
    dec = fast.Decoder(model)
    follow = torch.tensor([[40, 41, 42, 43, 44], [50, 51, 52, 53, 54], [60, 61, 62, 63, 64]])  # (B, 5)
    ids, real, positions = left_pad(PROMPTS, tokenizer.pad_token_id)
    P = ids.shape[1]
    full_ids = torch.cat([ids, follow], dim=1)
    full_real = torch.cat([real, torch.ones_like(follow, dtype=torch.bool)], dim=1)
    full_positions = (full_real.long().cumsum(dim=1) - 1).clamp(min=0)
    expected = hf_logits(model, full_ids, full_real, full_positions)  # (B, P+5, V)

    cache, rope = dec.new_cache(3, P + 5), dec.rope_table(P + 5)
    with torch.inference_mode():
        prefill = dec.logits(dec.forward(ids, positions, rope, cache, 0, full_real))  # (B, P, V)
        torch.testing.assert_close(prefill[real], expected[:, :P][real], rtol=0, atol=1e-4)
        for t in range(5):
            step = dec.logits(
                dec.forward(follow[:, t : t + 1], full_positions[:, P + t : P + t + 1], rope, cache, P + t, full_real)
            )
            torch.testing.assert_close(step[:, 0], expected[:, P + t], rtol=0, atol=1e-4)


def test_greedy_tokens_equal_hf_greedy_generate(sharp):
    model, tokenizer = sharp
    out, lengths, truncated = hf_greedy(model, tokenizer, PROMPTS, 10)
    rollout = fast.generate(model, tokenizer, PROMPTS, Sampling(temperature=0, max_new_tokens=10))
    assert len(set(out[0].tolist())) > 3  # a completion that actually varies
    assert torch.equal(rollout.lengths, lengths) and torch.equal(rollout.truncated, truncated)
    assert torch.equal(rollout.completion_ids * rollout.mask.long(), out * rollout.mask.long())


def test_rows_stopping_at_different_steps_are_dropped_and_the_batch_ends_early(sharp):
    # Make three tokens the greedy completions reach at different steps into stop tokens: rows stop at
    # different times (the loop compacts its batch), every row stops, and HF agrees token for token.
    model, tokenizer = sharp
    model = copy.deepcopy(model)
    free, _, _ = hf_greedy(model, tokenizer, PROMPTS, 12)
    stops = {free[0, 2].item(), free[1, 5].item(), free[2, 8].item()}
    model.generation_config.eos_token_id = [tokenizer.eos_token_id, *sorted(stops)]
    out, lengths, truncated = hf_greedy(model, tokenizer, PROMPTS, 12)
    rollout = fast.generate(model, tokenizer, PROMPTS * 2, Sampling(temperature=0, max_new_tokens=12))
    assert len(set(lengths.tolist())) > 1 and not truncated.any()
    assert rollout.completion_ids.shape[1] == int(lengths.max()) < 12  # ended when the last row stopped
    assert torch.equal(rollout.lengths, lengths.repeat(2)) and not rollout.truncated.any()
    for row, length, expected in zip(rollout.completion_ids, rollout.lengths, out.repeat(2, 1)):
        assert row[:length].tolist() == expected[:length].tolist()
        assert (row[length:] == tokenizer.pad_token_id).all()  # nothing after the stop token


def test_contract_grouping_lengths_masks_and_texts(tiny):
    model, tokenizer = tiny
    rollout = fast.generate(model, tokenizer, PROMPTS[:2], Sampling(n=3, max_new_tokens=12, seed=0))
    assert rollout.prompt_ids == [PROMPTS[0]] * 3 + [PROMPTS[1]] * 3  # rows i*n … i*n+n-1 belong to prompt i
    B, T = rollout.completion_ids.shape
    assert B == 6 and 1 <= T <= 12 and rollout.completion_ids.dtype == torch.long
    lengths, truncated = completion_lengths(rollout.completion_ids, stop_token_ids(model, tokenizer))
    assert torch.equal(rollout.lengths, lengths) and torch.equal(rollout.truncated, truncated)
    assert rollout.mask.shape == (6, T)
    for row, length, text in zip(rollout.completion_ids, rollout.lengths, rollout.texts):
        assert text == tokenizer.decode(row[: int(length)], skip_special_tokens=True)


def test_seed_reproducibility(tiny):
    model, tokenizer = tiny
    a = fast.generate(model, tokenizer, PROMPTS, Sampling(n=4, max_new_tokens=16, seed=7))
    b = fast.generate(model, tokenizer, PROMPTS, Sampling(n=4, max_new_tokens=16, seed=7))
    c = fast.generate(model, tokenizer, PROMPTS, Sampling(n=4, max_new_tokens=16, seed=8))
    assert torch.equal(a.completion_ids, b.completion_ids) and a.texts == b.texts
    assert not torch.equal(a.completion_ids, c.completion_ids)
    assert len(set(a.texts)) > 1  # samples within a group differ


def test_max_new_tokens_one(tiny):
    model, tokenizer = tiny
    rollout = fast.generate(model, tokenizer, PROMPTS, Sampling(n=2, max_new_tokens=1, seed=0))
    assert rollout.completion_ids.shape == (6, 1)
    assert torch.equal(rollout.lengths, torch.ones(6, dtype=torch.long))
    assert torch.equal(rollout.truncated, rollout.completion_ids[:, 0] != tokenizer.eos_token_id)


def test_ignore_eos_always_runs_to_full_length(tiny):
    model, tokenizer = tiny
    model = copy.deepcopy(model)
    model.generation_config.eos_token_id = list(range(len(tokenizer)))  # every token would stop
    rollout = fast.generate(model, tokenizer, PROMPTS, Sampling(max_new_tokens=6, seed=0, ignore_eos=True))
    assert rollout.completion_ids.shape == (3, 6) and (rollout.lengths == 6).all() and rollout.truncated.all()
    stopped = fast.generate(model, tokenizer, PROMPTS, Sampling(max_new_tokens=6, seed=0))
    assert stopped.completion_ids.shape == (3, 1) and (stopped.lengths == 1).all() and not stopped.truncated.any()


def test_top_p_keeps_the_smallest_set_reaching_p():
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    logits = probs.log()
    seen = {int(fast.sample(logits, 1.0, 0.75, torch.Generator().manual_seed(s))) for s in range(200)}
    assert seen == {0, 1}  # 0.5 < 0.75 ≤ 0.5 + 0.3
    assert {int(fast.sample(logits, 1.0, 0.5, torch.Generator().manual_seed(s))) for s in range(50)} == {0}
    assert int(fast.sample(logits, 0, 1.0)) == 0  # temperature 0 is greedy


def test_bfloat16_rollout_stays_close_to_float32(sharp):
    model, tokenizer = sharp
    dec32, dec16 = fast.Decoder(model), fast.Decoder(model, torch.bfloat16)
    ids, real, positions = left_pad(PROMPTS, tokenizer.pad_token_id)
    with torch.inference_mode():
        a = dec32.logits(dec32.forward(ids, positions, dec32.rope_table(20), dec32.new_cache(3, 20), 0, real))[:, -1]
        b = dec16.logits(dec16.forward(ids, positions, dec16.rope_table(20), dec16.new_cache(3, 20), 0, real))[:, -1]
    assert b.dtype == torch.float32 and next(model.parameters()).dtype == torch.float32  # the model is untouched
    assert torch.equal(a.argmax(-1), b.argmax(-1))
    assert (a.softmax(-1) - b.softmax(-1)).abs().max() < 0.05


def test_unsupported_architecture_falls_back_to_hf_generate(tiny, capsys, monkeypatch):
    from r1.rollout import sampling

    monkeypatch.setattr(sampling, "_said", set())
    model, tokenizer = tiny
    model = copy.deepcopy(model)
    model.config.hidden_act = "gelu"  # not a shape the fast loop implements
    rollout = fast.generate(model, tokenizer, PROMPTS[:1], Sampling(n=2, max_new_tokens=4, seed=0))
    fast.generate(model, tokenizer, PROMPTS[:1], Sampling(n=2, max_new_tokens=4, seed=0))
    out = capsys.readouterr().out
    assert "(activation gelu): using hf" in out and out.count("[r1]") == 1  # said once, not at every call
    assert rollout.completion_ids.shape[0] == 2


@pytest.mark.slow
def test_smollm2_first_step_logits_match_hf(smollm2_dir):
    from r1.data import make_problems, prepare_prompts

    model, tokenizer = load_model(str(smollm2_dir))
    prompts = [p["prompt_ids"] for p in prepare_prompts(make_problems(2, seed=0), tokenizer)]
    assert len(prompts[0]) != len(prompts[1])  # so one is left-padded
    ids, real, positions = left_pad(prompts, tokenizer.pad_token_id)
    expected = hf_logits(model, ids, real, positions)[:, -1]
    dec = fast.Decoder(model)
    with torch.inference_mode():
        got = dec.logits(
            dec.forward(ids, positions, dec.rope_table(ids.shape[1]), dec.new_cache(2, ids.shape[1]), 0, real)[:, -1]
        )
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-3)


def test_draw_follows_the_weights_and_never_picks_a_zero():
    weights = torch.tensor([[0.0, 0.2, 0.0, 0.8, 0.0]]).repeat(20000, 1)
    picks = fast._draw(weights, torch.Generator().manual_seed(0))
    counts = torch.bincount(picks, minlength=5).float() / len(picks)
    assert counts[[0, 2, 4]].sum() == 0
    torch.testing.assert_close(counts, weights[0], rtol=0, atol=0.01)  # 4 sigma ≈ 0.011 at n = 20000


def _full_sort_top_p(logits, temperature, top_p, generator):
    """Reference nucleus sampling: sort the whole vocabulary, then the same inverse-CDF draw."""
    from r1.rollout.fast import _draw

    probs = torch.softmax(logits / temperature, dim=-1)
    sorted_p, order = probs.sort(dim=-1, descending=True)
    sorted_p[(sorted_p.cumsum(dim=-1) - sorted_p) >= top_p] = 0
    return order.gather(1, _draw(sorted_p, generator)[:, None])[:, 0]


@pytest.mark.parametrize("scale, top_p", [(4.0, 0.95), (4.0, 0.5), (0.0, 0.9), (0.05, 0.99)])
def test_top_p_with_top_k_head_draws_exactly_what_the_full_sort_draws(scale, top_p):
    # scale 4: peaked rows, the top-256 head holds the nucleus; scale 0 / 0.05: flat rows, the head
    # holds ~0.5% of the mass, so the full-sort fallback must run. Same generator → same tokens.
    from r1.rollout.fast import sample

    logits = torch.randn(32, 49152, generator=torch.Generator().manual_seed(0)) * scale
    for seed in range(3):
        got = sample(logits, 0.6, top_p, torch.Generator().manual_seed(seed))
        want = _full_sort_top_p(logits, 0.6, top_p, torch.Generator().manual_seed(seed))
        assert torch.equal(got, want)


def test_a_batch_mixing_peaked_and_flat_rows_sorts_only_the_flat_ones(monkeypatch):
    """Peaked rows are drawn from their top-k head, then the flat rows from their full sort, in that
    order from one generator: the same tokens as the full-sort reference drawn the same way, and
    the full sort sees only the flat rows."""
    from r1.rollout.fast import sample

    g = torch.Generator().manual_seed(1)
    logits = torch.cat([torch.randn(5, 49152, generator=g) * 4.0, torch.randn(3, 49152, generator=g) * 0.05])[
        [0, 5, 1, 6, 2, 3, 7, 4]
    ]
    flat = torch.tensor([False, True, False, True, False, False, True, False])
    sorted_rows = []
    real_sort = torch.Tensor.sort
    monkeypatch.setattr(
        torch.Tensor, "sort", lambda self, *a, **k: sorted_rows.append(self.shape[0]) or real_sort(self, *a, **k)
    )
    got = sample(logits, 0.6, 0.95, torch.Generator().manual_seed(3))
    monkeypatch.setattr(torch.Tensor, "sort", real_sort)
    assert sorted_rows == [3]
    ref = torch.Generator().manual_seed(3)
    want = torch.empty(8, dtype=torch.long)
    want[~flat] = _full_sort_top_p(logits[~flat], 0.6, 0.95, ref)
    want[flat] = _full_sort_top_p(logits[flat], 0.6, 0.95, ref)
    assert torch.equal(got, want)


def test_compact_moves_kept_rows_to_the_front_in_place():
    keys = torch.arange(2 * 5 * 3, dtype=torch.float32).view(2, 5, 1, 3, 1)  # (L, B, kv, S, hd)
    values = -keys.clone()
    expected = keys[:, [1, 3, 4]].clone(), values[:, [1, 3, 4]].clone()
    storage = keys.data_ptr()
    out = fast.compact((keys, values), torch.tensor([1, 3, 4]))
    assert out[0].data_ptr() == storage  # a view of the same cache, no second one
    assert torch.equal(out[0], expected[0]) and torch.equal(out[1], expected[1])
    again = fast.compact(out, torch.tensor([0, 2]))  # compacting a compacted cache
    assert torch.equal(again[0], expected[0][:, [0, 2]])
