"""Sampling completions from a policy (HF generate today; faster engines keep the same contract)."""

from r1.rollout.hf import Rollout, completion_lengths, generate, stop_token_ids

__all__ = ["Rollout", "completion_lengths", "generate", "stop_token_ids"]
