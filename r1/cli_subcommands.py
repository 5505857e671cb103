"""The parsers of `r1 bench`, `r1 sample`, `r1 coldstart`, `r1 distill`, `r1 pipeline` and `r1 export`, and the
option helpers every parser shares (cli_parser.py builds the whole parser from them).

Split from cli_parser.py only to keep each file readable in one sitting; the same rule holds: only the
standard library and light r1 modules are imported, so `r1 --help` stays instant.
"""

from __future__ import annotations

import argparse


def add_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", metavar="FILE", help="YAML config file (see configs/) or a preset name shipped with r1 (zero)"
    )
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="dotted overrides, e.g. grpo.beta=0.001 rollout.samples_per_prompt=16",
    )


def positive_int(text: str) -> int:
    value = int(text) if text.lstrip("-").isdigit() else 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ 1, got {text!r}")
    return value


def add_bench_parser(sub) -> None:
    """`r1 bench grpo-step | rollout | rewards`."""
    p = sub.add_parser(
        "bench",
        help="benchmarks: GRPO step time, rollout throughput, reward correctness and speed",
        description="Benchmarks; each prints its figures and ends with a machine-readable SUMMARY line (see "
        "docs/perf.md).",
    )
    bench = p.add_subparsers(title="benchmarks", dest="what", metavar="WHAT", required=True)
    b = bench.add_parser(
        "grpo-step",
        help="time GRPO steps on the standard work (SmolLM2-135M, 4 prompts × 8 samples × 128 tokens, β 0.04, μ 1)",
    )
    b.add_argument(
        "--dtype",
        default="auto",
        choices=["auto", "float32", "bfloat16"],
        help="rollout and training precision (default auto: bf16 where this machine measured it faster)",
    )
    b.add_argument(
        "--steps", type=int, default=6, help="steps to run; the summary is the median of steps 2–6 (default 6)"
    )
    b.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    b.add_argument(
        "overrides", nargs="*", metavar="key=value", help="changes to the standard work, e.g. train.micro_batch_size=32"
    )
    b = bench.add_parser("rollout", help="rollout throughput: 64 completions × 128 forced new tokens")
    b.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16"])
    b.add_argument(
        "--engine", default="fast", choices=["fast", "hf", "vllm"], help="vllm needs the optional vLLM package"
    )
    b.add_argument("--rows", type=int, default=64)
    b.add_argument("--new-tokens", type=int, default=128)
    b.add_argument("--repeats", type=int, default=3, help="runs; the summary is their median (default 3)")
    b.add_argument("--threads", type=int)
    b = bench.add_parser(
        "rewards",
        help="accuracy reward: reference check on GSM8K/MATH-500, throughput, or agreement with labelled pairs",
    )
    b.add_argument("mode", choices=["reference", "throughput", "peer"])
    b.add_argument(
        "file", nargs="?", help="peer: JSONL of {reference, prediction, expected} (default: the shipped example)"
    )
    b.add_argument("--no-peer", action="store_true", help="peer: do not also ask math-verify directly")
    b.add_argument("--n", type=int, default=10000, help="completions for the throughput benchmark")


def add_data_parsers(sub) -> None:
    """`r1 sample` (rejection sampling), `r1 coldstart generate | convert` (cold-start data) and `r1 distill`."""
    from r1.data.coldstart import GENERATORS

    p = sub.add_parser(
        "sample",
        help="rejection sampling (R1 stage 3): keep a model's correct, readable completions as SFT data",
        description="Draw sample.k completions per prompt, keep those that are correct (accuracy reward, or the "
        "generative judge for prompts without a reference) and readable (sample.filters), at most "
        "sample.max_per_prompt per prompt, no duplicates. Writes sft.jsonl (for `r1 sft`), report.json "
        "and report.md into the run directory; rerunning in the same directory resumes an interrupted "
        "run. Sampling settings: rollout.*; filter thresholds: sample.*.",
    )
    add_config_args(p)
    p.add_argument("--model", help="policy to sample from (model.name)")
    p.add_argument(
        "--prompts",
        help="prompt set (data.source): gsm8k-train, math500, arithmetic, a .jsonl file (rows may lack an answer) "
        "or a hub id",
    )
    p.add_argument("--limit", type=int, help="first N prompts only (data.limit)")
    p.add_argument("--k", type=int, help="completions per prompt (sample.k, default 4)")
    p.add_argument("--max-per-prompt", type=int, help="completions kept per prompt (sample.max_per_prompt, default 2)")
    p.add_argument(
        "--judge", help="model judging answers rules cannot check (sample.judge); without one they are rejected"
    )
    p.add_argument(
        "--output-dir", help="run directory (run.output_dir, default runs/sample-<time>); reuse it to resume"
    )

    p = sub.add_parser(
        "coldstart",
        help="cold-start SFT data (R1 stage 1): worked examples by program, or cleaned-up model outputs",
        description="Build cold-start SFT data in the R1 format (<think>reasoning</think><answer>…</answer>): "
        "`generate` writes worked examples by program; `convert` rewrites R1-Zero samples "
        "(samples.jsonl of r1 grpo / r1 eval) or a teacher's outputs and keeps the correct, readable "
        "ones.",
    )
    how = p.add_subparsers(title="ways", dest="how", metavar="HOW", required=True)
    g = how.add_parser("generate", help="worked examples written by program (no model needed)")
    g.add_argument(
        "--task",
        choices=list(GENERATORS),
        default="word-problems",
        help="arithmetic chains or GSM8K-style multi-step word problems (default)",
    )
    g.add_argument("--n", type=int, default=500, help="examples (default 500)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--output", required=True, help="JSONL file of {prompt, completion, answer} rows for `r1 sft`")
    c = how.add_parser(
        "convert",
        help="R1-Zero samples or teacher outputs → readable R1-format SFT data",
        description="Rewrite completions as <think>reasoning</think><answer>answer</answer>, keep those the "
        "accuracy and format rewards accept and sample.filters pass, at most sample.max_per_prompt per "
        "prompt; writes OUTPUT and OUTPUT's .report.json.",
    )
    add_config_args(c)
    c.add_argument(
        "--input",
        action="append",
        required=True,
        metavar="FILE",
        help="samples.jsonl of r1 grpo / r1 eval, or teacher JSONL ({question|prompt, completion|response, "
        "answer}); repeatable",
    )
    c.add_argument("--output", required=True, help="JSONL file of {prompt, completion, answer} rows for `r1 sft`")
    c.add_argument(
        "--prompts", help="dataset naming the prompts of r1 grpo samples (default: the config.yaml next to the samples)"
    )

    p = sub.add_parser(
        "distill",
        help="distillation: a teacher's rejection-sampled reasoning → SFT of a student, one resumable command",
        description="Rejection-sample the teacher on the prompts (as `r1 sample`, into RUN/sample/), then SFT the "
        "student on the kept completions with the same data.template (as `r1 sft`, into RUN/sft/; the "
        "result is RUN/sft/checkpoints/final). RUN/distill.json records each part's status, counts and "
        "wall time. Rerunning the same command in the same directory skips finished parts and resumes "
        "an interrupted one. Settings: rollout.* and sample.* for sampling, sft.*, optim.* and train.* "
        "for the SFT. --method on-policy instead lets the student sample and the teacher grade every token "
        "(distill.loss, into RUN/on-policy/; the teacher needs the student's tokenizer).",
    )
    add_config_args(p)
    p.add_argument(
        "--teacher", required=True, help="model to sample from: alias, HF folder, r1 checkpoint, .gguf file or hub id"
    )
    p.add_argument(
        "--student",
        required=True,
        help="model to fine-tune (may be the teacher's path; the result is a new checkpoint)",
    )
    p.add_argument(
        "--prompts",
        required=True,
        help="prompt set (data.source): gsm8k-train, math500, arithmetic, a .jsonl file or a hub id",
    )
    p.add_argument("--limit", type=int, help="first N prompts only (data.limit)")
    p.add_argument(
        "--method", choices=["sft", "on-policy", "mixed"], help="distill.method (default sft, the paper's; mixed: both)"
    )
    p.add_argument(
        "--output-dir", help="run directory (run.output_dir, default runs/distill-<time>); reuse it to resume"
    )


def add_pipeline_parser(sub) -> None:
    p = sub.add_parser(
        "pipeline",
        help="the four-stage R1 recipe as one resumable run (stages declared in the config)",
        description="Run pipeline.stages in order (cold-start SFT → reasoning RL → rejection sampling → SFT → "
        "all-scenario RL in configs/r1_smol.yaml), each feeding the next, with a held-out evaluation "
        "after every model stage. RUN/manifest.json records every stage's status, inputs, outputs, "
        "metrics and timings; RUN/report.md holds the stage table. Rerunning the same command resumes "
        "after the last finished stage.",
    )
    add_config_args(p)
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--from",
        dest="start_from",
        metavar="STAGE",
        help="redo STAGE and every later stage (their old folders are moved to NAME.prev)",
    )
    group.add_argument(
        "--only",
        metavar="STAGE",
        help="run only STAGE (its inputs must be finished; an old result is moved to NAME.prev)",
    )
    p.add_argument(
        "--output-dir", help="run directory (run.output_dir, default runs/pipeline-<time>); reuse it to resume"
    )


def add_export_parser(sub) -> None:
    p = sub.add_parser(
        "export",
        help="a run's checkpoint as a clean model folder for the Hub or vLLM (weights, tokenizer, model card)",
        description="Write RUN_DIR's final checkpoint (else its latest, with a note; RUN_DIR may be a checkpoint "
        "folder) to DEST: safetensors weights, config.json, generation_config.json, the tokenizer and a model card "
        "README.md with the results found next to the run — no optimizer, RNG or trainer state. A LoRA run "
        "exports the merged model. Ready for `huggingface-cli upload` or `vllm serve` (docs/interop.md).",
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("dest", metavar="DEST", help="must be absent or empty")
    p.add_argument("--force", action="store_true", help="replace a non-empty DEST")
    p.add_argument("--results", action="append", metavar="FILE", help="an r1 eval results.json for the card")
