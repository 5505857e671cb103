"""The argument parser of the `r1` command: every subcommand, its options and its help text.

Kept apart from `cli.py` (the commands themselves and the error handling) because the help texts
are most of it. Only the standard library, `r1.config` (the defaults, one home) and
`r1.data.templates` are imported, so `r1 --help` is instant.
"""

from __future__ import annotations

import argparse

from r1.config import EvalConfig
from r1.data.templates import TEMPLATES

EPILOG = "Run `r1 COMMAND --help` for a command's options. Docs: README.md and docs/."


def _add_config_args(parser: argparse.ArgumentParser) -> None:
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="r1",
        description="The DeepSeek-R1 training system: GRPO with verifiable rewards, the R1 pipeline, evaluation.",
        epilog=EPILOG,
    )
    sub = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "demo",
        help="the R1 recipe in miniature: base eval → cold-start SFT → eval → GRPO → eval",
        description="Runs the R1 recipe on the bundled SmolLM2-135M-Instruct: held-out arithmetic eval of the base "
        "model, cold-start SFT on programmatic worked examples, eval, GRPO with accuracy + format "
        "rewards, eval; prints a before/after table and writes summary.json. Any demo setting can be "
        "overridden with key=value (see r1/pipeline/demo.py).",
    )
    p.add_argument("--output-dir", help="run directory (default: runs/demo-<time>)")
    p.add_argument("--coldstart-examples", type=positive_int, help="worked examples for the cold start (default 192)")
    p.add_argument(
        "--control",
        choices=["random", "format-only"],
        help="a control run: the GRPO stage trains on a coin (random) or on the format alone (rewards.control)",
    )
    p.add_argument("overrides", nargs="*", metavar="key=value", help="dotted config overrides, e.g. train.steps=40")

    p = sub.add_parser(
        "check",
        help="setup check: sample from the bundled model and score it with the rewards",
        description="End-to-end check of the setup: loads the bundled SmolLM2-135M-Instruct (converting it once), "
        "samples completions for held-out arithmetic problems with the R1-Zero template, scores them "
        "with the accuracy and format rewards and writes a run directory.",
    )
    p.add_argument("--output-dir", help="run directory (default: runs/check-<time>)")
    p.add_argument("--limit", type=int, default=16, help="number of held-out problems (default 16)")
    p.add_argument("--n", type=int, default=2, help="samples per problem (default 2)")
    p.add_argument("--max-new-tokens", type=int, default=128)

    p = sub.add_parser(
        "grpo",
        help="GRPO training (R1-Zero style RL with verifiable rewards)",
        description="Train a policy with GRPO: sample groups of completions, score them with rule-based rewards, "
        "update with the clipped group-relative objective. Writes checkpoints, metrics.jsonl, "
        "samples.jsonl and TensorBoard logs into the run directory; run.resume=true continues the "
        "latest checkpoint (auto: or starts afresh); SIGTERM/SIGINT save a checkpoint and exit 75 "
        "(docs/reliability.md). Data-parallel on N processes: torchrun --nproc_per_node N -m r1 grpo … "
        "(docs/scale.md).",
    )
    _add_config_args(p)

    p = sub.add_parser(
        "zero",
        help="the pure R1-Zero preset: GRPO with accuracy + format rewards, no SFT",
        description="R1-Zero (docs/method.md §4): GRPO straight from the model with the R1-Zero template and "
        "rule rewards, "
        "no cold start. Settings: r1/presets/zero.yaml, overridable with key=value. Needs a model that "
        "sometimes writes the format on its own: the bundled 135M model does not (0/64 samples), so it "
        "learns nothing here — use `r1 demo` for the cold-start recipe.",
    )
    p.add_argument(
        "overrides", nargs="*", metavar="key=value", help="dotted overrides, e.g. model.name=Qwen/Qwen2.5-1.5B"
    )

    p = sub.add_parser(
        "sft",
        help="supervised fine-tuning on prompt/completion or chat-message JSONL",
        description="Supervised fine-tuning with the loss on completion tokens only; same config, checkpoints, "
        "metrics and resume as grpo. Data: sft.data=FILE.jsonl with {prompt, completion} or {messages} "
        "rows. Data-parallel: torchrun --nproc_per_node N -m r1 sft … (docs/scale.md).",
    )
    _add_config_args(p)

    p = sub.add_parser(
        "rm",
        help="train a scalar reward model on preference pairs (Bradley–Terry)",
        description="Train a reward model for the helpfulness/harmlessness rewards: a one-logit head on "
        "model.name, loss −log σ(r_chosen − r_rejected) on rm.data ({prompt, chosen, rejected} JSONL, "
        "or the bundled preference_pairs). A share rm.eval_fraction of the prompts is held out; their "
        "pair accuracy is reported and written to rm_eval.json. Same checkpoints, metrics and resume "
        "as sft; the result is RUN/checkpoints/final (use it as rewards.helpfulness_model).",
    )
    _add_config_args(p)

    p = sub.add_parser(
        "eval",
        help="evaluate with the R1 protocol: pass@1 over k samples, pass@k, cons@k",
        description="Sample k completions per problem (temperature 0.6, top-p 0.95 by default, as the paper), "
        "score them, and write results.json and samples.jsonl. Several --model values produce a "
        "comparison table (markdown) and a bar chart (PNG).",
    )
    p.add_argument(
        "--model",
        nargs="+",
        required=True,
        help="one or more: alias (smollm2-135m), HF folder, r1 checkpoint, .gguf file or hub id",
    )
    p.add_argument(
        "--benchmark",
        required=True,
        help="gsm8k, math500, aime24, humaneval (code, sandboxed tests), arithmetic, or a .jsonl file",
    )
    p.add_argument("--k", type=int, default=4, help="samples per problem (default 4)")
    p.add_argument("--limit", type=int, help="first N problems only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--output-dir", help="where results.json and samples.jsonl go (default runs/eval-<benchmark>-<time>)"
    )
    p.add_argument("--question-field", help="JSONL field holding the question")
    p.add_argument("--answer-field", help="JSONL field holding the answer")
    p.add_argument(
        "--max-new-tokens", type=int, default=512, help="default 512 (sized for a CPU; the paper uses 32,768)"
    )
    p.add_argument("--temperature", type=float, default=EvalConfig.temperature)
    p.add_argument("--top-p", type=float, default=EvalConfig.top_p)
    p.add_argument("--batch-size", type=int, default=64, help="rows (problems × samples) generated together")
    p.add_argument(
        "--template",
        choices=list(TEMPLATES),
        default="r1-zero",
        help="instruction the prompts carry (default r1-zero; use the one the model was trained with)",
    )
    p.add_argument("--form", choices=["auto", "chat", "plain"], default="auto", help="R1-Zero template form")
    p.add_argument(
        "--engine",
        choices=["auto", "fast", "hf", "vllm"],
        default="auto",
        help="rollout engine (default auto: fast on a CPU, vllm on CUDA when installed, else hf = transformers "
        "generate)",
    )
    p.add_argument(
        "--dtype",
        choices=["auto", "float32", "bfloat16"],
        default="auto",
        help="precision of the sampling matmuls (default auto: bf16 where this machine measured it faster)",
    )
    p.add_argument(
        "--device", default="auto", help="where the model runs: auto (cuda when available, else cpu), cpu, cuda, cuda:N"
    )

    p = sub.add_parser(
        "report",
        help="plots and a markdown summary of a training run",
        description="Turn RUN_DIR/metrics.jsonl and samples.jsonl into PNG plots (reward, accuracy, format, KL, "
        "completion length, reflection-word frequency over steps) and summary.md, written to "
        "RUN_DIR/report/.",
    )
    p.add_argument("run_dir")
    p.add_argument("--html", action="store_true", help="also write one self-contained page (docs/viewer.md)")
    p.add_argument("--out", help="where the --html page goes (implies --html; default RUN_DIR/report.html)")

    p = sub.add_parser(
        "generate",
        help="sample completions for dataset prompts and show them with their rewards",
        description="Sample completions from a model for a dataset's prompts (R1-Zero template) and print each "
        "with its extracted answer and rewards.",
    )
    p.add_argument(
        "--model", default="smollm2-135m", help="alias, HF folder, .gguf file or hub id (default: smollm2-135m)"
    )
    p.add_argument(
        "--source", default="gsm8k", help="dataset: gsm8k, gsm8k-train, math500, aime24, arithmetic or a .jsonl path"
    )
    p.add_argument("--limit", type=int, default=1, help="number of prompts (default 1)")
    p.add_argument("--n", type=int, default=1, help="samples per prompt")
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--temperature", type=float, default=EvalConfig.temperature)
    p.add_argument("--top-p", type=float, default=EvalConfig.top_p)
    p.add_argument(
        "--form",
        choices=["auto", "chat", "plain"],
        default="auto",
        help="template form (default auto: chat if the tokenizer has a chat template)",
    )
    p.add_argument("--prefill-think", action="store_true", help="open <think> for the model at the end of the prompt")
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser(
        "data",
        help="load a dataset and show its first examples",
        description="Load a prompt dataset (bundled name, arithmetic, .jsonl file or hub id) and print its size "
        "and first examples.",
    )
    p.add_argument("source", help="gsm8k, gsm8k-train, math500, aime24, arithmetic, a .jsonl path or a hub id")
    p.add_argument("--split", default="train", help="arithmetic/hub split (default train)")
    p.add_argument("--question-field", help="field holding the question (default: question/problem/prompt)")
    p.add_argument("--answer-field", help="field holding the answer (default: answer)")
    p.add_argument("--size", type=int, default=2000, help="problems to generate for arithmetic")
    p.add_argument("--seed", type=int, default=0, help="arithmetic generator seed")
    p.add_argument("--show", type=int, default=3, help="examples to print")

    p = sub.add_parser(
        "config",
        help="print the resolved config (defaults ← file ← overrides), validated",
        description="Resolve and validate a config: defaults, then the YAML file, then dotted overrides. Prints "
        "the result as YAML.",
    )
    _add_config_args(p)

    _add_bench_parser(sub)
    _add_data_parsers(sub)
    _add_pipeline_parser(sub)
    _add_export_parser(sub)
    return parser


def _add_bench_parser(sub) -> None:
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


def _add_data_parsers(sub) -> None:
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
    _add_config_args(p)
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
    _add_config_args(c)
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
    _add_config_args(p)
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


def _add_pipeline_parser(sub) -> None:
    p = sub.add_parser(
        "pipeline",
        help="the four-stage R1 recipe as one resumable run (stages declared in the config)",
        description="Run pipeline.stages in order (cold-start SFT → reasoning RL → rejection sampling → SFT → "
        "all-scenario RL in configs/r1_smol.yaml), each feeding the next, with a held-out evaluation "
        "after every model stage. RUN/manifest.json records every stage's status, inputs, outputs, "
        "metrics and timings; RUN/report.md holds the stage table. Rerunning the same command resumes "
        "after the last finished stage.",
    )
    _add_config_args(p)
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


def _add_export_parser(sub) -> None:
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
