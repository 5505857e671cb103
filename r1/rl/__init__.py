"""GRPO math as pure tensor functions (depends on torch only).

advantages.py  advantages from a (P, G) reward grid (group / leave-one-out / batch baselines),
               zero-variance groups, DAPO overlong penalty
correction.py  rollout-engine / trainer mismatch: truncated and masked importance weights, stats
distill.py     on-policy distillation: student/teacher divergences over the vocabulary (DISTILL_LOSSES:
               reverse / forward KL, GKD's JSD) and the sampled-token reverse-KL policy loss
entropy.py     the high-entropy ("forking") token mask and its quantile threshold
logprobs.py    float32 per-token log-probs / entropies from (possibly bf16) logits or from hidden
               states and the output head, chunked
losses.py      KL estimators, loss aggregations, the GRPO loss (policy term + KL + entropy)
preference.py  the Bradley–Terry reward-model loss and pair accuracy
surrogates.py  policy losses: GRPO's clipped surrogate, GSPO, CISPO, SAPO, GMPO

Variants are chosen by name from plain dicts: ADVANTAGE_BASELINES, ADVANTAGE_SCALES,
KL_ESTIMATORS, LOSS_AGGREGATIONS, MISMATCH_CORRECTIONS, POLICY_LOSSES.
"""

from r1.rl.advantages import (
    ADVANTAGE_BASELINES,
    ADVANTAGE_SCALES,
    group_advantages,
    overlong_penalty,
    zero_variance_groups,
)
from r1.rl.correction import MISMATCH_CORRECTIONS, mismatch_stats, mismatch_weights
from r1.rl.distill import (
    DISTILL_LOSSES,
    distill_divergence,
    distill_metrics,
    distill_policy_loss,
    sampled_reverse_kl,
)
from r1.rl.entropy import entropy_threshold, top_entropy_mask
from r1.rl.logprobs import head_logprobs, token_entropy, token_logprobs
from r1.rl.losses import (
    KL_ESTIMATORS,
    LOSS_AGGREGATIONS,
    aggregate,
    combine_metrics,
    grpo_loss,
    kl_divergence,
    kl_reward_penalty,
)
from r1.rl.preference import bradley_terry_loss, pair_accuracy
from r1.rl.surrogates import POLICY_LOSSES, clipped_surrogate

__all__ = [
    "ADVANTAGE_BASELINES",
    "ADVANTAGE_SCALES",
    "DISTILL_LOSSES",
    "KL_ESTIMATORS",
    "LOSS_AGGREGATIONS",
    "MISMATCH_CORRECTIONS",
    "POLICY_LOSSES",
    "aggregate",
    "bradley_terry_loss",
    "clipped_surrogate",
    "combine_metrics",
    "distill_divergence",
    "distill_metrics",
    "distill_policy_loss",
    "entropy_threshold",
    "group_advantages",
    "head_logprobs",
    "grpo_loss",
    "kl_divergence",
    "kl_reward_penalty",
    "mismatch_stats",
    "mismatch_weights",
    "overlong_penalty",
    "pair_accuracy",
    "sampled_reverse_kl",
    "token_entropy",
    "token_logprobs",
    "top_entropy_mask",
    "zero_variance_groups",
]
