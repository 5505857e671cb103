"""Value checks on a Config that types alone cannot express (ranges, combinations, rewards needing models).

`check(cfg)` raises ConfigError naming the first key that fails and why; `load_config` calls it on
every config it builds. Kept apart from `config.py`, whose dataclasses are the settings themselves.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from r1.config_tree import ConfigError

if TYPE_CHECKING:  # annotations only: config.py imports this module
    from r1.config import Config, RewardsConfig


def check(cfg: Config) -> None:
    rules = [
        ("rollout.prompts_per_step", cfg.rollout.prompts_per_step >= 1, "must be ≥ 1"),
        ("rollout.samples_per_prompt", cfg.rollout.samples_per_prompt >= 1, "must be ≥ 1"),
        ("rollout.temperature", cfg.rollout.temperature > 0, "must be > 0"),
        ("rollout.top_p", 0 < cfg.rollout.top_p <= 1, "must be in (0, 1]"),
        ("rollout.max_new_tokens", cfg.rollout.max_new_tokens >= 1, "must be ≥ 1"),
        (
            "run.device",
            cfg.run.device in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", cfg.run.device) is not None,
            "must be auto, cpu, cuda or cuda:N",
        ),
        ("run.report_to", len(set(cfg.run.report_to)) == len(cfg.run.report_to), "names a tracker twice"),
        ("rollout.vllm.kv_cache_gib", cfg.rollout.vllm.kv_cache_gib > 0, "must be > 0"),
        ("rollout.vllm.gpu_memory_utilization", 0 < cfg.rollout.vllm.gpu_memory_utilization <= 1, "must be in (0, 1]"),
        ("train.micro_batch_size", cfg.train.micro_batch_size >= 1, "must be ≥ 1"),
        ("train.steps", cfg.train.steps >= 0, "must be ≥ 0"),
        ("grpo.beta", cfg.grpo.beta >= 0, "must be ≥ 0"),
        ("grpo.clip_low", 0 <= cfg.grpo.clip_low < 1, "must be in [0, 1)"),
        ("grpo.clip_high", cfg.grpo.clip_high >= 0, "must be ≥ 0"),
        ("grpo.dual_clip", cfg.grpo.dual_clip is None or cfg.grpo.dual_clip > 1, "must be > 1 (or null)"),
        ("grpo.ppo_epochs", cfg.grpo.ppo_epochs >= 1, "must be ≥ 1"),
        ("distill.beta", 0 < cfg.distill.beta < 1, "must be in (0, 1) (the ends are forward-kl and reverse-kl)"),
        ("grpo.top_entropy_quantile", 0 < cfg.grpo.top_entropy_quantile <= 1, "must be in (0, 1]"),
        (
            "grpo.advantage_baseline",
            cfg.grpo.advantage_baseline != "batch" or cfg.grpo.advantage_scale != "group",
            "batch (REINFORCE++) needs grpo.advantage_scale=batch or none",
        ),
        ("grpo.correction_cap", cfg.grpo.correction_cap >= 1, "must be ≥ 1"),
        (
            "grpo.correction_low",
            0 <= cfg.grpo.correction_low <= 1 <= cfg.grpo.correction_high,
            "must be in [0, 1], with grpo.correction_high ≥ 1",
        ),
        ("grpo.sapo_tau_pos", cfg.grpo.sapo_tau_pos > 0 and cfg.grpo.sapo_tau_neg > 0, "and sapo_tau_neg must be > 0"),
        ("rollout.async_steps", cfg.rollout.async_steps in (0, 1), "must be 0 (on-policy) or 1 (one step stale)"),
        (
            "rollout.async_steps",
            not cfg.rollout.async_steps or cfg.grpo.rollout_correction != "none",
            "=1 samples from weights one update old: set grpo.rollout_correction (e.g. tis-token)",
        ),
        (
            "rollout.async_steps",
            not cfg.rollout.async_steps or not cfg.grpo.dynamic_sampling_rounds,
            "=1 does not refill dropped groups: set grpo.dynamic_sampling_rounds=0",
        ),
        (
            "grpo.overlong_buffer",
            0 <= cfg.grpo.overlong_buffer < cfg.rollout.max_new_tokens,
            "must be in [0, rollout.max_new_tokens)",
        ),
        ("optim.lr", cfg.optim.lr >= 0, "must be ≥ 0"),
        (
            "optim.betas",
            len(cfg.optim.betas) == 2 and all(0 <= b < 1 for b in cfg.optim.betas),
            "must be two numbers in [0, 1)",
        ),
        ("optim.grad_clip", cfg.optim.grad_clip >= 0, "must be ≥ 0 (0 disables clipping)"),
        ("rewards.weights", len(cfg.rewards.weights) > 0, "must name at least one reward"),
        ("rewards.timeout_s", cfg.rewards.timeout_s > 0, "must be > 0"),
        ("rewards.max_error_rate", 0 <= cfg.rewards.max_error_rate <= 1, "must be in [0, 1]"),
        ("data.max_prompt_tokens", cfg.data.max_prompt_tokens >= 1, "must be ≥ 1"),
        ("data.size", cfg.data.size >= 1, "must be ≥ 1"),
        ("data.limit", cfg.data.limit is None or cfg.data.limit >= 1, "must be ≥ 1 (or null for all)"),
        ("eval.limit", cfg.eval.limit is None or cfg.eval.limit >= 1, "must be ≥ 1 (or null for all)"),
        (
            "data.arithmetic.min_digits",
            1 <= cfg.data.arithmetic.min_digits <= cfg.data.arithmetic.max_digits,
            "must be ≥ 1 and ≤ max_digits",
        ),
        (
            "data.arithmetic.min_steps",
            1 <= cfg.data.arithmetic.min_steps <= cfg.data.arithmetic.max_steps,
            "must be ≥ 1 and ≤ max_steps",
        ),
        (
            "data.arithmetic.ops",
            bool(cfg.data.arithmetic.ops) and set(cfg.data.arithmetic.ops) <= set("+-*"),
            "must be a non-empty subset of '+-*'",
        ),
        ("eval.k", cfg.eval.k >= 1, "must be ≥ 1"),
        ("train.keep_checkpoints", cfg.train.keep_checkpoints >= 1, "must be ≥ 1"),
        ("grpo.dynamic_sampling_rounds", cfg.grpo.dynamic_sampling_rounds >= 0, "must be ≥ 0"),
        (
            "train.max_time_s",
            cfg.train.max_time_s is None or cfg.train.max_time_s > 0,
            "must be > 0 seconds (or null for no limit)",
        ),
        ("sft.epochs", cfg.sft.epochs >= 1, "must be ≥ 1"),
        ("sft.batch_size", cfg.sft.batch_size >= 1, "must be ≥ 1"),
        ("sample.k", cfg.sample.k >= 1, "must be ≥ 1"),
        ("sample.max_per_prompt", cfg.sample.max_per_prompt >= 1, "must be ≥ 1"),
        ("sample.batch_size", cfg.sample.batch_size >= 1, "must be ≥ 1"),
        ("sample.chunk_prompts", cfg.sample.chunk_prompts >= 1, "must be ≥ 1"),
        ("sample.min_language", 0 <= cfg.sample.min_language <= 1, "must be in [0, 1]"),
        ("sample.max_paragraph_chars", cfg.sample.max_paragraph_chars >= 1, "must be ≥ 1"),
        ("sample.repetition_ngram", cfg.sample.repetition_ngram >= 1, "must be ≥ 1"),
        ("sample.max_repetition", 0 <= cfg.sample.max_repetition <= 1, "must be in [0, 1]"),
        ("sample.min_length", cfg.sample.min_length >= 0, "must be ≥ 0"),
        (
            "sample.max_length",
            cfg.sample.max_length is None or cfg.sample.max_length >= max(cfg.sample.min_length, 1),
            "must be ≥ max(sample.min_length, 1) (or null for no bound)",
        ),
        ("sample.judge_max_new_tokens", cfg.sample.judge_max_new_tokens >= 1, "must be ≥ 1"),
        ("sample.judge_temperature", cfg.sample.judge_temperature >= 0, "must be ≥ 0 (0 = greedy)"),
        ("rm.epochs", cfg.rm.epochs >= 1, "must be ≥ 1"),
        ("rm.batch_size", cfg.rm.batch_size >= 1, "must be ≥ 1"),
        ("rm.max_length", cfg.rm.max_length >= 2, "must be ≥ 2"),
        ("rm.eval_fraction", 0 <= cfg.rm.eval_fraction < 1, "must be in [0, 1)"),
        ("model.lora.r", cfg.model.lora.r >= 1, "must be ≥ 1"),
        ("model.lora.dropout", 0 <= cfg.model.lora.dropout < 1, "must be in [0, 1)"),
        ("model.lora.target_modules", bool(cfg.model.lora.target_modules), "must name at least one module"),
        (
            "grpo.ref_reset_steps",
            not (cfg.model.lora.enabled and cfg.grpo.ref_reset_steps),
            "must be 0 with model.lora.enabled (the reference is the base model with the adapter off)",
        ),
        (
            "train.fsdp",
            not (cfg.train.fsdp and cfg.model.lora.enabled),
            "cannot be combined with model.lora.enabled (see docs/scale.md, 'FSDP')",
        ),
        (
            "train.fsdp",
            not (cfg.train.fsdp and cfg.grpo.dynamic_sampling),
            "cannot be combined with grpo.dynamic_sampling: ranks would run different numbers of passes",
        ),
        (
            "train.fsdp",
            not (cfg.train.fsdp and cfg.grpo.ref_reset_steps),
            "cannot be combined with grpo.ref_reset_steps yet",
        ),
        *_reward_rules(cfg.rewards),
    ]
    for key, ok, message in rules:
        if not ok:
            raise ConfigError(f"{key} {message} (got {_lookup(cfg, key)!r})")


def _reward_rules(r: RewardsConfig) -> list[tuple[str, bool, str]]:
    """A weighted reward that needs a model has one; routes name only weighted rewards, and all of them."""
    routed = {name for names in r.routes.values() for name in names}
    unknown, unrouted = sorted(routed - set(r.weights)), sorted(set(r.weights) - routed)
    needs_model = "must be set when rewards.weights uses {} (an `r1 rm` checkpoint, or a causal LM to use as a judge)"
    return [
        (
            "rewards.helpfulness_model",
            "helpfulness" not in r.weights or bool(r.helpfulness_model),
            needs_model.format("helpfulness"),
        ),
        (
            "rewards.harmlessness_model",
            "harmlessness" not in r.weights or bool(r.harmlessness_model),
            needs_model.format("harmlessness"),
        ),
        ("rewards.routes", not unknown, f"names rewards that are not in rewards.weights: {unknown}"),
        (
            "rewards.routes",
            not r.routes or not unrouted,
            f"sends no example kind to {unrouted}; route every reward in rewards.weights, or leave routes empty "
            "(every reward on every example)",
        ),
    ]


def _lookup(cfg: Any, dotted: str) -> Any:
    for key in dotted.split("."):
        cfg = getattr(cfg, key)
    return cfg
