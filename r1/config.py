"""One typed configuration tree for every `r1` command.

The tree is plain dataclasses. A run is configured by a YAML file plus dotted command-line
overrides (`grpo.beta=0.001 rollout.samples_per_prompt=16`); both go through the same
validation: an unknown key lists the valid keys at that level and suggests the closest one, a
value of the wrong type names the key, the value and the expected type, and `check()` rejects
values that type-check but make no sense (a negative learning rate, `clip_low >= 1`). The
resolved tree is written as `config.yaml` into every run directory, so a run can be repeated
from its own folder.

Batch sizes have names that say what they count: `rollout.prompts_per_step` prompts are drawn
per optimizer step, each sampled `rollout.samples_per_prompt` times (the GRPO group size G);
`train.micro_batch_size` sequences go through one forward/backward pass.

Building the tree from plain data (type checks, dotted overrides) is r1/config_tree.py; this
module declares the tree, loads files and checks values.

Deliberately left out: config inheritance/includes and interpolation. A config is one file you
can read top to bottom.
"""

from __future__ import annotations


from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from r1.config_check import check
from r1.config_tree import ConfigError, apply_override, from_dict, merge, set_dotted, to_dict  # noqa: F401  (re-exported)


PRESETS = Path(__file__).parent / "presets"  # named configs shipped with the package


@dataclass
class LoraConfig:
    """Low-rank adapters (peft) instead of full fine-tuning; see r1/train/lora.py."""

    enabled: bool = False
    r: int = 16  # adapter rank
    alpha: float = 32.0  # the update is scaled by alpha / r
    dropout: float = 0.0
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )


@dataclass
class ModelConfig:
    name: str = "smollm2-135m"  # alias, local HF folder, .gguf file or hub id
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    lora: LoraConfig = field(default_factory=LoraConfig)


@dataclass
class ArithmeticConfig:
    """The procedural `arithmetic` task (see r1/data/arithmetic.py)."""

    min_digits: int = 1
    max_digits: int = 2
    min_steps: int = 1
    max_steps: int = 2
    ops: str = "+-*"
    word_fraction: float = 0.5  # share of problems phrased as word problems
    # standard: the templates training uses; alternate: the same problems said another way (held-out checks)
    phrasing: Literal["standard", "alternate"] = "standard"


@dataclass
class DataConfig:
    # bundled name (gsm8k, gsm8k-train, math500, aime24), arithmetic, a .jsonl path or a hub id
    source: str = "arithmetic"
    split: str = "train"  # for arithmetic (train/test never overlap) and hub datasets
    size: int = 2000  # number of problems generated for `arithmetic`
    seed: int = 0  # generator seed for `arithmetic`
    limit: int | None = None  # keep only the first N examples
    question_field: str | None = None  # defaults per source: question/problem/prompt
    answer_field: str | None = None  # defaults to `answer`
    template: Literal["r1-zero", "r1-brief", "none"] = "r1-zero"
    template_form: Literal["auto", "chat", "plain"] = "auto"
    prefill_think: bool = False  # open `<think>` for the model at the end of the prompt
    max_prompt_tokens: int = 512
    on_overlong_prompt: Literal["error", "filter"] = "error"
    arithmetic: ArithmeticConfig = field(default_factory=ArithmeticConfig)


@dataclass
class VllmConfig:
    """Options of the vLLM rollout engine (`rollout.engine=vllm`, r1/rollout/vllm_engine.py)."""

    kv_cache_gib: float = 1.0  # memory reserved for the KV cache (on a CPU, taken from RAM)
    # on a GPU: the share of device memory vLLM may take (it shares the device with training)
    gpu_memory_utilization: float = 0.3
    enforce_eager: bool = True  # no CUDA graphs or compilation: starts in seconds, slower per token on a GPU
    max_model_len: int = 4096  # prompt + completion tokens per row


@dataclass
class RolloutConfig:
    prompts_per_step: int = 8
    samples_per_prompt: int = 8  # the GRPO group size G
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 256
    # auto: fast (r1's KV-cache decode loop) for Llama/Qwen2 models on a CPU, vllm on CUDA when installed, else hf
    engine: Literal["auto", "fast", "hf", "vllm"] = "auto"
    # precision of the rollout's matmuls (logits and sampling stay fp32);
    # auto: bf16 where measured faster (r1/precision.py)
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    ignore_eos: bool = False  # benchmarks only: every completion runs to max_new_tokens
    vllm: VllmConfig = field(default_factory=VllmConfig)
    # 1: sample step t+1's batch while step t trains (one-step off-policy, corrected by
    # grpo.rollout_correction); 0: on-policy. (`async` is a Python keyword, so the name says what it bounds.)
    async_steps: int = 0


@dataclass
class RewardsConfig:
    weights: dict[str, float] = field(default_factory=lambda: {"accuracy": 1.0, "format": 0.5})
    workers: int | None = None  # accuracy verification processes (None = min(2, cores))
    timeout_s: float = 3.0  # wall-clock limit per verification
    max_error_rate: float = 0.1  # stop the run when a reward fails on more samples than this
    # example kind → rewards scored on it, e.g. {general: [helpfulness]}; empty = all rewards on every example
    routes: dict[str, list[str]] = field(default_factory=dict)
    # for the `helpfulness` reward: an `r1 rm` checkpoint, or a causal LM used as a 1–10 judge
    helpfulness_model: str | None = None
    harmlessness_model: str | None = None  # the same for `harmlessness`
    # a control run (r1/rewards/control.py): random = a coin instead of the correctness rewards,
    # format-only = without them; the real accuracy is still logged
    control: Literal["none", "random", "format-only"] = "none"


@dataclass
class GRPOConfig:
    beta: float = 0.001  # KL coefficient (paper: 0.001); 0 disables the reference model
    kl_estimator: Literal["k1", "k2", "k3"] = "k3"
    kl_placement: Literal["in_loss", "in_reward"] = "in_loss"
    clip_low: float = 0.2
    clip_high: float = 0.2  # > clip_low is DAPO's clip-higher
    dual_clip: float | None = None  # lower bound c > 1 on the loss of negative advantages
    advantage_scale: Literal["group", "batch", "none"] = "group"  # none = Dr. GRPO
    loss_aggregation: Literal["seq-mean-token-mean", "token-mean", "seq-mean-token-sum-norm"] = "seq-mean-token-mean"
    ppo_epochs: int = 1  # μ: optimizer passes over each rollout batch
    ref_reset_steps: int = 0  # replace the reference by the policy every N steps (paper: 400); 0 = never
    dynamic_sampling: bool = False  # drop groups whose rewards are all equal (DAPO)
    dynamic_sampling_rounds: int = 0  # extra prompt draws to refill the dropped groups
    overlong: Literal["none", "mask", "penalty"] = "none"
    overlong_buffer: int = 0  # tokens before max_new_tokens where the soft penalty starts
    entropy_coef: float = 0.0
    # the policy loss (r1/rl/surrogates.py): grpo = token ratios, hard clip; gspo = one ratio per sequence;
    # cispo = clipped, detached IS weight (every token keeps a gradient); sapo = soft gate; gmpo = geometric mean
    policy_loss: Literal["grpo", "gspo", "cispo", "sapo", "gmpo"] = "grpo"
    sapo_tau_pos: float = 1.0  # SAPO's gate temperature for A > 0
    sapo_tau_neg: float = 1.05  # and for A < 0
    # the baseline subtracted from each reward (r1/rl/advantages.py): group mean (GRPO), leave-one-out
    # mean (RLOO), batch mean (REINFORCE++); advantage_scale chooses the divisor
    advantage_baseline: Literal["group", "leave-one-out", "batch"] = "group"
    # the share ρ of each micro-batch's tokens, highest entropy first, that carry the policy loss
    # (the "forking tokens", arXiv 2506.01939: 0.2; TRL's top_entropy_quantile); 1 = every token
    top_entropy_quantile: float = 1.0
    # rollout–trainer mismatch correction (r1/rl/correction.py), from the engine's own log-probs:
    # tis = truncated importance weights (cap), mis = tokens/sequences with a ratio outside [low, high] masked
    rollout_correction: Literal["none", "tis-token", "tis-seq", "mis-token", "mis-seq"] = "none"
    correction_cap: float = 2.0
    correction_low: float = 0.5
    correction_high: float = 2.0


@dataclass
class OptimConfig:
    lr: float = 1e-6
    weight_decay: float = 0.0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.99])
    grad_clip: float = 1.0
    warmup_steps: int = 0
    schedule: Literal["constant", "cosine"] = "constant"
    min_lr_ratio: float = 0.0


@dataclass
class TrainConfig:
    steps: int = 100
    micro_batch_size: int = 8  # sequences per forward/backward pass
    # bf16 autocast for the training forward/backward (fp32 weights, fp32 log-softmax); auto: where measured faster
    bf16: bool | Literal["auto"] = "auto"
    log_every: int = 1
    save_every: int = 50
    sample_every: int = 10  # write completions with their rewards to samples.jsonl
    keep_checkpoints: int = 2  # most recent step checkpoints kept (the final one always is)
    # GRPO: stop after the step that crosses this wall time (a compute budget); None = run all steps
    max_time_s: float | None = None
    gradient_checkpointing: bool = False  # recompute activations in the backward pass: less memory, ~30% more compute
    # shard parameters, gradients and optimizer state over the processes with FSDP2 (r1/train/fsdp.py, docs/scale.md)
    fsdp: bool = False


@dataclass
class SFTConfig:
    data: str | None = None  # JSONL of {"messages": [...]} or {"prompt", "completion"} rows
    epochs: int = 1
    batch_size: int = 16  # sequences per optimizer step
    max_length: int = 1024  # prompt + completion tokens; longer rows are an error (or filtered)


@dataclass
class DistillConfig:
    """`r1 distill` (r1/pipeline/distill.py): how the student learns from the teacher."""

    # sft: the paper's — SFT on the teacher's rejection-sampled completions; on-policy: the student samples,
    # the teacher scores every sampled token, the student minimizes the per-token divergence (r1/train/on_policy.py);
    # mixed: sft, then on-policy from the SFT student (sft.* sizes the first part, train.steps the second)
    method: Literal["sft", "on-policy", "mixed"] = "sft"
    # the per-token divergence of on-policy distillation (r1/rl/distill.py): over the whole vocabulary
    # (reverse-kl, forward-kl, jsd with distill.beta)
    loss: Literal["reverse-kl", "forward-kl", "jsd"] = "reverse-kl"
    beta: float = 0.5  # the generalized JSD's mixture weight (loss=jsd)


@dataclass
class RMConfig:
    """Reward-model training (`r1 rm`): Bradley–Terry loss on preference pairs; optimizer in optim.*,
    micro-batches in train.*."""

    data: str | None = None  # JSONL of {prompt, chosen, rejected} rows, or a bundled name (preference_pairs)
    epochs: int = 1
    batch_size: int = 16  # pairs per optimizer step
    # tokens of one rendered exchange; longer pairs are an error (or filtered: data.on_overlong_prompt)
    max_length: int = 1024
    eval_fraction: float = 0.1  # share of the prompts held out (with all their pairs) for the pair accuracy


@dataclass
class EvalConfig:
    benchmark: str = "arithmetic"
    k: int = 4  # samples per problem
    limit: int | None = None
    temperature: float = 0.6  # the paper's evaluation settings
    top_p: float = 0.95
    max_new_tokens: int = 512
    # GRPO: evaluate on the first `periodic_limit` problems of `benchmark` every N steps; 0 = never
    every_steps: int = 0
    periodic_limit: int | None = None  # None: `limit`, else 32 (arithmetic: the pipeline's held-out problems)


FilterName = Literal["language", "paragraphs", "repetition", "code", "length"]  # r1/data/filters.py FILTERS


@dataclass
class SampleConfig:
    """Rejection sampling (`r1 sample`, R1 stage 3) and the readability filters `r1 coldstart` shares.

    Sampling itself uses `rollout.temperature/top_p/max_new_tokens/engine/dtype`.
    """

    k: int = 4  # completions drawn per prompt
    max_per_prompt: int = 2  # completions kept per prompt, after deduplication
    batch_size: int = 64  # rows (prompts × samples) generated together
    chunk_prompts: int = 32  # prompts per chunk: the unit of work a resumed run does not redo
    require_format: bool = True  # keep only completions the format reward accepts
    filters: list[FilterName] = field(
        default_factory=lambda: ["language", "paragraphs", "repetition", "code", "length"]
    )
    min_language: float = 0.95  # language-consistency reward below this → rejected
    max_paragraph_chars: int = 2000  # longest line
    repetition_ngram: int = 4  # word n-grams for the repetition filter
    max_repetition: float = 0.3  # share of repeated n-grams above this → rejected
    length_unit: Literal["chars", "tokens"] = "tokens"  # what min/max_length count (tokens of the policy's tokenizer)
    min_length: int = 0  # the length filter: completions shorter than this → rejected
    max_length: int | None = None  # None = no upper bound
    judge: str | None = None  # model judging answers rules cannot check (no reference); None = reject them
    judge_max_new_tokens: int = 16  # the verdict line only
    judge_temperature: float = 0.0  # 0 = greedy


StageKind = Literal["sft", "grpo", "sample", "rm"]  # r1/pipeline/stages.py RUNNERS


@dataclass
class StageConfig:
    """One stage of `r1 pipeline`: what it runs, on which model and data, with which settings."""

    name: str = ""  # unique; the stage's folder in the run directory
    kind: StageKind = "sft"
    model: str = "base"  # "base" (model.name) or an earlier stage whose checkpoint this one starts from
    # inputs (r1/pipeline/stages.py): earlier stages, generators, bundled names, JSONL paths
    data: list[str] = field(default_factory=list)
    set: dict[str, Any] = field(default_factory=dict)  # dotted settings for this stage only, e.g. {train.steps: 20}
    evaluate: bool = True  # held-out evaluation of the stage's checkpoint (sft and grpo stages)


@dataclass
class PipelineConfig:
    stages: list[StageConfig] = field(default_factory=list)
    heldout: str = "arithmetic"  # evaluated after every stage (eval.limit problems × eval.k samples)
    heldout_split: str = "test"
    heldout_seed: int = 20250122  # the arithmetic generator's seed for the held-out set; training never uses it


TrackerName = Literal["tensorboard", "jsonl", "wandb", "mlflow"]  # r1/train/trackers.py TRACKERS


@dataclass
class RunConfig:
    output_dir: str | None = None  # default: runs/<command>-<timestamp>
    seed: int = 0
    threads: int | None = None  # torch threads (None = all cores)
    # true: continue the latest checkpoint (an error without one); auto: or start afresh
    resume: bool | Literal["auto"] = False
    allow_config_change: bool = False  # on resume, apply changed settings that alter the run (docs/reliability.md)
    # where grpo/sft train: auto (cuda:LOCAL_RANK when CUDA is available, else cpu), cpu, cuda, cuda:N
    device: str = "auto"
    # experiment trackers (docs/tracking.md): tensorboard (tensorboard/), jsonl (metrics.jsonl), wandb, mlflow;
    # samples.jsonl is written whatever this lists; wandb and mlflow are optional installs (pip install 'r1[trackers]')
    report_to: list[TrackerName] = field(default_factory=lambda: ["tensorboard", "jsonl"])
    tracker_project: str = "r1"  # the wandb project and the MLflow experiment


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    rewards: RewardsConfig = field(default_factory=RewardsConfig)
    grpo: GRPOConfig = field(default_factory=GRPOConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    sft: SFTConfig = field(default_factory=SFTConfig)
    rm: RMConfig = field(default_factory=RMConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    run: RunConfig = field(default_factory=RunConfig)


# ---------------------------------------------------------------------------------------------
# YAML files and command-line overrides (the typed-tree machinery is r1/config_tree.py)


def load_config(path: str | Path | None = None, overrides: list[str] = (), cls: type = Config):
    """Defaults ← YAML file ← dotted overrides, validated. Raises ConfigError with a clear message."""
    data: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file() and (PRESETS / f"{path}.yaml").is_file():
            path = PRESETS / f"{path}.yaml"  # a preset shipped with r1, e.g. --config zero
        if not path.is_file():
            presets = ", ".join(sorted(p.stem for p in PRESETS.glob("*.yaml")))
            raise ConfigError(f"config file not found: {path} (presets shipped with r1: {presets})")
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML: {err}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections")
        data = loaded or {}
    # Start from the defaults so that an override inside a mapping (rewards.weights.language=0.1)
    # adds to the weights in force instead of replacing them all.
    merged = merge(to_dict(cls()), data, cls)
    for assignment in overrides:
        apply_override(merged, assignment, cls)
    cfg = from_dict(cls, merged)
    check(cfg)
    return cfg


def save_config(cfg: Any, path: str | Path, notes: list[str] = ()) -> None:
    """Write the tree as YAML; `notes` become comment lines at the end (e.g. why `auto` chose a precision)."""
    comments = "".join(f"# {line}\n" for line in notes)
    Path(path).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False) + comments, encoding="utf-8")
