"""Evaluation (docs/method.md §7): k samples per problem at temperature 0.6, pass@1 / pass@k / cons@k with
95% intervals.

`metrics` holds the pure formulas, `harness` runs a model over a benchmark (`evaluate`,
`run_eval` for `r1 eval`), `report` turns results into tables and plots (`compare` across
models, `make_report` for a training run directory).
"""

from r1.eval.command import run_eval
from r1.eval.harness import EvalResult, compute_metrics, evaluate
from r1.eval.metrics import majority_vote, mean_ci, pass_at_1_mean, pass_at_k, pass_k_values, wilson_interval
from r1.eval.report import compare, make_report

__all__ = [
    "EvalResult",
    "compare",
    "compute_metrics",
    "evaluate",
    "make_report",
    "majority_vote",
    "mean_ci",
    "pass_at_1_mean",
    "pass_at_k",
    "pass_k_values",
    "run_eval",
    "wilson_interval",
]
