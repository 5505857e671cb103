"""Sample completions with our own decode loop over a Llama-shaped model's weights: fast on a CPU.

`generate` keeps the contract of `r1.rollout.hf.generate` (rows grouped by prompt, right-padded
completion ids, lengths up to and including the first stop token, truncated flags, texts) and is
~2× faster than HF `generate` on this CPU in float32 and ~4× in bfloat16 (docs/perf.md).
Where the time goes, and what this loop does about it:

* GRPO repeats every prompt n times: each prompt is prefilled once and its keys/values copied to
  its n rows. The prefill computes logits for the last prompt position only.
* The KV cache is two preallocated tensors (layers, B, kv_heads, S, head_dim) written in place;
  rows are left-padded so every row writes the same column, and one (B, S) bool tells which keys
  exist. No cache objects, no per-step mask building, no `generate` bookkeeping.
* Grouped-query attention without copying K/V: the n_rep query heads that share a KV head are fed
  to `scaled_dot_product_attention` as n_rep query rows of that head.
* q/k/v and gate/up are fused into one matmul each; RoPE cos/sin are computed once per call.
* Every weight matrix is reordered once per call into oneDNN's blocked layout (`Linear`), where
  `F.linear` would re-lay it out at every decode step: 336 → 580 tok/s fp32, 683 → 812 bf16.
* Sampling draws by inverse CDF (cumsum + searchsorted): `torch.multinomial` on a 64 × 49k batch
  cost as much as the whole bf16 model step.
* Finished rows are dropped from the batch once enough of them pile up (their cache rows are
  compacted), and the loop stops when every row has stopped.
* `dtype="bfloat16"` runs a bf16 copy of the weights while the model itself stays float32 for
  training; logits and sampling are always float32. `auto` takes bf16 only where this CPU measured
  it faster (r1/precision.py): on a CPU without AMX or avx512_bf16 it is 2-3x slower.

Numerics follow HF's Llama: RMSNorm in float32, position ids counted from the first real token of
a left-padded prompt, RoPE from the model's own `inv_freq`. Supported: `llama` and `qwen2`
(q/k/v biases) with SiLU MLPs; any other model (or a model on a GPU) goes to `hf.generate` with the
same `Sampling` object, and a notice printed once.

Deliberately left out: continuous batching (new prompts joining a running batch), paged or shared
prompt caches (each row holds a copy of its prompt's keys/values), top-k, repetition penalties,
and `torch.compile` (not measured yet; see docs/perf.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from r1.rollout import hf
from r1.rollout.hf import Rollout, stop_token_ids
from r1.rollout.sampling import FAST_FALLBACK, Sampling, say_once

SUPPORTED = ("llama", "qwen2")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def unsupported(model) -> str | None:
    """Why this loop cannot run `model` (None when it can): it takes Llama/Qwen2-shaped models on the CPU."""
    c = model.config
    device = next(model.parameters()).device
    if device.type != "cpu":  # a CPU loop: on a GPU, HF generate (or vllm) is the engine
        return f"the model is on {device.type}"
    if c.model_type not in SUPPORTED:
        return f"model type {c.model_type}"
    if c.hidden_act != "silu":
        return f"activation {c.hidden_act}"
    if getattr(c, "use_sliding_window", False) and getattr(c, "sliding_window", None):
        return "sliding-window attention"
    if getattr(model, "hf_quantizer", None):
        return "a quantized model"
    return None


def supports(model) -> bool:
    return unsupported(model) is None


class Decoder:
    """A Llama-shaped model's weights rearranged for decoding: fused q/k/v and gate/up, one dtype.

    `forward` runs T new positions for B rows against a KV cache and returns the final-normed
    hidden states; `logits` applies the LM head in float32 output.
    """

    def __init__(self, model, dtype: torch.dtype = torch.float32, batch: int = 64):
        c = model.config
        inner = model.model
        self.n_heads, self.n_kv = c.num_attention_heads, c.num_key_value_heads
        self.head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
        self.eps = c.rms_norm_eps
        self.dtype = dtype
        cast = lambda t: None if t is None else t.detach().to(dtype)  # noqa: E731
        linear = lambda w, b: Linear(cast(w), cast(b), batch)  # noqa: E731
        self.layers = []
        for layer in inner.layers:
            a, m = layer.self_attn, layer.mlp
            self.layers.append(
                {
                    "ln1": cast(layer.input_layernorm.weight),
                    "qkv": linear(
                        torch.cat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight]),
                        _cat_bias(a.q_proj, a.k_proj, a.v_proj),
                    ),
                    "o": linear(a.o_proj.weight, a.o_proj.bias),
                    "ln2": cast(layer.post_attention_layernorm.weight),
                    "gate_up": linear(
                        torch.cat([m.gate_proj.weight, m.up_proj.weight]), _cat_bias(m.gate_proj, m.up_proj)
                    ),
                    "down": linear(m.down_proj.weight, m.down_proj.bias),
                }
            )
        self.embed = cast(inner.embed_tokens.weight)  # (V, H)
        self.norm = cast(inner.norm.weight)
        head = model.get_output_embeddings()
        self.head = linear(head.weight, head.bias)
        self.inv_freq = inner.rotary_emb.inv_freq.float()  # (head_dim/2,) handles rope_theta and scaling
        self.rope_scale = getattr(inner.rotary_emb, "attention_scaling", 1.0)

    def new_cache(self, batch: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (len(self.layers), batch, self.n_kv, length, self.head_dim)  # (L, B, kv, S, hd)
        return torch.zeros(shape, dtype=self.dtype), torch.zeros(shape, dtype=self.dtype)

    def rope_table(self, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """cos, sin for positions 0..length-1, (length, head_dim), as HF computes them."""
        freqs = torch.arange(length).float()[:, None] * self.inv_freq[None, :]
        emb = torch.cat([freqs, freqs], dim=-1)
        return (emb.cos() * self.rope_scale).to(self.dtype), (emb.sin() * self.rope_scale).to(self.dtype)

    def forward(self, ids, positions, rope, cache, start: int, key_valid) -> torch.Tensor:
        """Run positions start..start+T-1 and write their keys/values into the cache.

        ids, positions: (B, T) long; rope: `rope_table` output; cache: `new_cache` output with
        batch B; key_valid: (B, >= start+T) bool, False for left padding. Returns (B, T, H) hidden
        states after the final norm.
        """
        B, T = ids.shape
        end = start + T
        cos, sin = rope[0][positions][:, :, None, :], rope[1][positions][:, :, None, :]  # (B, T, 1, hd)
        query_at, key_at = torch.arange(start, end)[:, None], torch.arange(end)[None, :]  # (T, 1), (1, end)
        mask = key_valid[:, None, None, :end] & (key_at <= query_at)  # (B, 1, T, end)
        if T > 1:  # a left-pad query sees no key: let it see itself, so its row stays finite
            mask = mask | (key_at == query_at)
            mask = mask.repeat(1, 1, self.n_heads // self.n_kv, 1)  # query rows are (rep, T)
        x = F.embedding(ids, self.embed)  # (B, T, H)
        for i, w in enumerate(self.layers):
            x = x + self._attention(i, w, _rms_norm(x, w["ln1"], self.eps), cos, sin, cache, start, mask)
            gate, up = w["gate_up"](_rms_norm(x, w["ln2"], self.eps)).chunk(2, dim=-1)
            x = x + w["down"](F.silu(gate) * up)
        return _rms_norm(x, self.norm, self.eps)

    def _attention(self, i, w, h, cos, sin, cache, start, mask):
        B, T, _ = h.shape
        nh, nkv, hd = self.n_heads, self.n_kv, self.head_dim
        rep = nh // nkv
        q, k, v = w["qkv"](h).split([nh * hd, nkv * hd, nkv * hd], dim=-1)
        q = _rope(q.view(B, T, nh, hd), cos, sin)
        k = _rope(k.view(B, T, nkv, hd), cos, sin)
        keys, values = cache[0][i], cache[1][i]  # (B, kv, S, hd)
        keys[:, :, start : start + T] = k.transpose(1, 2)
        values[:, :, start : start + T] = v.view(B, T, nkv, hd).transpose(1, 2)
        # query head j uses KV head j // rep (HF's repeat_kv): fold the rep heads into query rows
        q = q.view(B, T, nkv, rep, hd).permute(0, 2, 3, 1, 4).reshape(B, nkv, rep * T, hd)
        out = F.scaled_dot_product_attention(q, keys[:, :, : start + T], values[:, :, : start + T], attn_mask=mask)
        out = out.view(B, nkv, rep, T, hd).permute(0, 3, 1, 2, 4).reshape(B, T, nh * hd)
        return w["o"](out)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """(..., H) → (..., V) float32."""
        return self.head(hidden).float()


PACKED = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


class Linear:
    """y = x Wᵀ + b with W reordered once into oneDNN's blocked layout (`batch` rows is the size
    hint). `F.linear` re-lays the weight out at every call; at decode shapes (64 × 576 by 576 ×
    1728) the packed call measured 1.6–2.0× faster in bf16 and 2.4–3.6× in fp32 here."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, batch: int):
        self.out_features, self.bias = weight.shape[0], bias
        self.weight = torch.ops.mkldnn._reorder_linear_weight(weight, batch) if PACKED else weight

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if not PACKED:
            return F.linear(x, self.weight, self.bias)
        y = torch.ops.mkldnn._linear_pointwise(x.reshape(-1, x.shape[-1]), self.weight, self.bias, "none", [], "")
        return y.view(*x.shape[:-1], self.out_features)


def _cat_bias(*linears):
    if all(lin.bias is None for lin in linears):
        return None
    return torch.cat([lin.bias if lin.bias is not None else torch.zeros(lin.out_features) for lin in linears])


def _rms_norm(x, weight, eps):
    return weight * F.rms_norm(x.float(), (x.shape[-1],), eps=eps).to(x.dtype)


def _rope(x, cos, sin):  # x (B, T, heads, hd)
    half = x.shape[-1] // 2
    return x * cos + torch.cat([-x[..., half:], x[..., :half]], dim=-1) * sin


def sample(logits: torch.Tensor, temperature: float, top_p: float, generator=None) -> torch.Tensor:
    """Next tokens (B,) from float32 logits (B, V): temperature, then nucleus (top-p), no top-k.

    temperature 0 means greedy (argmax). Top-p keeps the smallest set of most likely tokens whose
    mass reaches top_p (the most likely token always stays).
    """
    if temperature == 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits / temperature, dim=-1)  # (B, V)
    if top_p >= 1.0:
        return _draw(probs, generator)
    # The nucleus is the head of the sorted distribution. When the 256 most likely tokens already
    # hold top_p of the mass (almost every row), the nucleus lies inside them and a top-k replaces
    # the full sort of the vocabulary; only the rows where it does not are sorted whole (a full
    # sort of 96 × 49k costs ~20× the top-k, so one flat row must not make the whole batch pay).
    head_p, order = probs.topk(min(256, probs.shape[-1]), dim=-1)  # (B, K) descending
    wide = head_p.sum(dim=-1) < top_p  # (B,) rows whose nucleus is wider than K
    if not bool(wide.any()):
        return _nucleus_draw(head_p, order, top_p, generator)
    tokens = torch.empty(probs.shape[0], dtype=torch.long)
    tokens[~wide] = _nucleus_draw(head_p[~wide], order[~wide], top_p, generator)
    tokens[wide] = _nucleus_draw(*probs[wide].sort(dim=-1, descending=True), top_p, generator)
    return tokens


def _nucleus_draw(sorted_p: torch.Tensor, order: torch.Tensor, top_p: float, generator=None) -> torch.Tensor:
    """Draw from the nucleus of rows sorted by probability: sorted_p (b, K) descending, order (b, K)
    their token ids → (b,) token ids. A token stays when the mass before it is below top_p."""
    if sorted_p.shape[0] == 0:
        return torch.empty(0, dtype=torch.long)
    sorted_p = sorted_p.clone()
    sorted_p[(sorted_p.cumsum(dim=-1) - sorted_p) >= top_p] = 0  # mass before this token already enough
    return order.gather(1, _draw(sorted_p, generator)[:, None])[:, 0]


def _draw(weights: torch.Tensor, generator=None) -> torch.Tensor:
    """One index per row (B, V) → (B,), with probability proportional to its weight.

    Inverse CDF: the first index whose cumulative weight exceeds u·total. On a CPU this is ~20×
    faster than `torch.multinomial` for a 64 × 49k batch (5 ms against 90 ms a step).
    """
    cdf = weights.cumsum(dim=-1)  # (B, V)
    u = torch.rand(weights.shape[0], 1, generator=generator) * cdf[:, -1:]  # (B, 1) in [0, total)
    return torch.searchsorted(cdf, u, right=True).clamp(max=weights.shape[-1] - 1)[:, 0]


def prefill(dec: Decoder, prompt_ids: list[list[int]], n: int, pad: int, total: int, rope) -> tuple:
    """Run each prompt once, then give its n rows a copy of its keys/values.

    Returns (logits (B, V) of each row's first token, the cache sized for `total` positions, key_valid (B, total))."""
    width = max(len(p) for p in prompt_ids)
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompt_ids])  # (U, P) left-padded
    real = torch.tensor([[False] * (width - len(p)) + [True] * len(p) for p in prompt_ids])  # (U, P)
    positions = (real.long().cumsum(dim=1) - 1).clamp(min=0)  # (U, P)
    small = dec.new_cache(len(prompt_ids), width)
    hidden = dec.forward(ids, positions, rope, small, 0, real)  # (U, P, H)
    logits = dec.logits(hidden[:, -1]).repeat_interleave(n, dim=0)  # (B, V)
    cache = dec.new_cache(len(prompt_ids) * n, total)
    for full, part in zip(cache, small):
        full[:, :, :, :width] = part.repeat_interleave(n, dim=1)
    key_valid = torch.ones(len(prompt_ids) * n, total, dtype=torch.bool)  # (B, S)
    key_valid[:, :width] = real.repeat_interleave(n, dim=0)
    return logits, cache, key_valid


def compact(cache: tuple[torch.Tensor, torch.Tensor], keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Move the rows `keep` (k,) of a (L, B, kv, S, hd) cache to its front, in place, and return
    views of the first k rows. Copying layer by layer needs a temporary of one layer's rows, not a
    second cache (at the demo's 96 rows × 176 positions in fp32 the cache is ~0.8 GB)."""
    for c in cache:
        for layer in c:  # (B, kv, S, hd)
            layer[: len(keep)] = layer[keep]  # the right side is gathered before it is written
    return tuple(c[:, : len(keep)] for c in cache)


@torch.no_grad()  # not inference_mode: the trainer feeds these tensors to autograd
def generate(model, tokenizer, prompt_ids: list[list[int]], sampling: Sampling = Sampling()) -> Rollout:
    """Sample `sampling.n` completions per prompt; same contract as `r1.rollout.hf.generate`.

    sampling.dtype: weights and KV cache for the rollout ("float32", "bfloat16" or "auto"; the model
    is not changed). Temperature 0 is greedy. A model this loop cannot run goes to `hf.generate`
    with the same settings (said once per process).
    """
    reason = unsupported(model)
    if reason:
        say_once(FAST_FALLBACK.format(reason=reason))
        return hf.generate(model, tokenizer, prompt_ids, sampling)
    n, max_new_tokens, seed = sampling.n, sampling.max_new_tokens, sampling.seed
    rows = [ids for ids in prompt_ids for _ in range(n)]
    pad = tokenizer.pad_token_id
    stops = torch.tensor([] if sampling.ignore_eos else stop_token_ids(model, tokenizer), dtype=torch.long)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    dec = Decoder(model, DTYPES[sampling.resolved_dtype("cpu")], batch=len(rows))

    width = max(len(ids) for ids in prompt_ids)
    total = width + max_new_tokens
    rope = dec.rope_table(total)
    logits, cache, key_valid = prefill(dec, prompt_ids, n, pad, total, rope)
    position = torch.tensor([len(p) for p in rows])  # (B,) the next token's position id

    out = torch.full((len(rows), max_new_tokens), pad, dtype=torch.long)  # (B, T)
    want_logp = sampling.logprobs and sampling.temperature > 0
    logp = torch.zeros((len(rows), max_new_tokens)) if want_logp else None  # (B, T) the engine's own
    lengths = torch.full((len(rows),), max_new_tokens, dtype=torch.long)
    truncated = torch.ones(len(rows), dtype=torch.bool)
    active = torch.arange(len(rows))  # batch row -> output row
    alive = torch.ones(len(rows), dtype=torch.bool)  # per batch row: not stopped yet
    steps = 0
    for t in range(max_new_tokens):
        token = sample(logits, sampling.temperature, sampling.top_p, generator)  # (b,)
        out[active[alive], t] = token[alive]
        if want_logp:  # at the precision it sampled in: these logits came from the rollout's matmuls
            logp[active[alive], t] = chosen_logprobs(logits[alive], token[alive], sampling.temperature)
        steps = t + 1
        stopped = alive & torch.isin(token, stops)
        if stopped.any():
            lengths[active[stopped]] = t + 1
            truncated[active[stopped]] = False
            alive &= ~stopped
            if not alive.any():
                break
        if t == max_new_tokens - 1:
            break
        dead = int((~alive).sum())
        if dead and dead * 4 >= len(alive):  # drop stopped rows once they are a quarter of the batch
            keep = alive.nonzero()[:, 0]
            cache = compact(cache, keep)
            token, position, key_valid, active = token[keep], position[keep], key_valid[keep], active[keep]
            alive = alive[keep]
        hidden = dec.forward(token[:, None], position[:, None], rope, cache, width + t, key_valid)  # (b, 1, H)
        logits = dec.logits(hidden[:, 0])  # (b, V)
        position = position + 1
    completion = out[:, :steps]
    texts = [tokenizer.decode(row[: int(length)], skip_special_tokens=True) for row, length in zip(completion, lengths)]
    logp = None if logp is None else logp[:, :steps]
    fields = dict(completion_ids=completion, lengths=lengths, truncated=truncated, texts=texts, logprobs=logp)
    return Rollout(prompt_ids=rows, **fields)


def chosen_logprobs(logits: torch.Tensor, tokens: torch.Tensor, temperature: float) -> torch.Tensor:
    """log softmax(logits / temperature) of the chosen tokens: (b, V), (b,) → (b,)."""
    return torch.log_softmax(logits / temperature, dim=-1).gather(1, tokens[:, None])[:, 0]
