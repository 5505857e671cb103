"""GRPO math as pure tensor functions (depends on torch only).

advantages.py  group-relative advantages, zero-variance groups, DAPO overlong penalty
logprobs.py    float32 per-token log-probs / entropies from (possibly bf16) logits or from hidden
               states and the output head, chunked
losses.py      clipped surrogate, KL estimators, loss aggregations, the GRPO loss
preference.py  the Bradley–Terry reward-model loss and pair accuracy

Variants are chosen by name from plain dicts: ADVANTAGE_SCALES, KL_ESTIMATORS,
LOSS_AGGREGATIONS.
"""

from r1.rl.advantages import (
    ADVANTAGE_SCALES,
    group_advantages,
    overlong_penalty,
    zero_variance_groups,
)
from r1.rl.logprobs import head_logprobs, token_entropy, token_logprobs
from r1.rl.losses import (
    KL_ESTIMATORS,
    LOSS_AGGREGATIONS,
    aggregate,
    clipped_surrogate,
    combine_metrics,
    grpo_loss,
    kl_divergence,
    kl_reward_penalty,
)
from r1.rl.preference import bradley_terry_loss, pair_accuracy

__all__ = [
    "ADVANTAGE_SCALES",
    "KL_ESTIMATORS",
    "LOSS_AGGREGATIONS",
    "aggregate",
    "bradley_terry_loss",
    "clipped_surrogate",
    "combine_metrics",
    "group_advantages",
    "head_logprobs",
    "grpo_loss",
    "kl_divergence",
    "kl_reward_penalty",
    "overlong_penalty",
    "pair_accuracy",
    "token_entropy",
    "token_logprobs",
    "zero_variance_groups",
]
