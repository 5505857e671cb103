"""The argument parser of the `r1` command: every subcommand, its options and its help text.

Kept apart from `cli.py` (the commands themselves and the error handling) because the help texts
are most of it. Only the standard library, `r1.config` (the defaults, one home) and
`r1.data.templates` are imported, so `r1 --help` is instant.
"""

from __future__ import annotations

import argparse

from r1.cli_subcommands import (
    add_bench_parser,
    add_config_args,
    add_data_parsers,
    add_export_parser,
    add_pipeline_parser,
    positive_int,
)
from r1.config import EvalConfig
from r1.data.templates import TEMPLATES

EPILOG = "Run `r1 COMMAND --help` for a command's options. Docs: README.md and docs/."


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
    add_config_args(p)

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
    add_config_args(p)

    p = sub.add_parser(
        "rm",
        help="train a scalar reward model on preference pairs (Bradley–Terry)",
        description="Train a reward model for the helpfulness/harmlessness rewards: a one-logit head on "
        "model.name, loss −log σ(r_chosen − r_rejected) on rm.data ({prompt, chosen, rejected} JSONL, "
        "or the bundled preference_pairs). A share rm.eval_fraction of the prompts is held out; their "
        "pair accuracy is reported and written to rm_eval.json. Same checkpoints, metrics and resume "
        "as sft; the result is RUN/checkpoints/final (use it as rewards.helpfulness_model).",
    )
    add_config_args(p)

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
    add_config_args(p)

    add_bench_parser(sub)
    add_data_parsers(sub)
    add_pipeline_parser(sub)
    add_export_parser(sub)
    return parser
