"""The `r1` command: thin wrappers over library functions, one subcommand each.

Every subcommand parses its arguments, calls one library function and turns the errors a user
can fix (a bad config key, a missing file, an uninstalled model package) into a one-paragraph
message and exit code 2 — never a traceback. Heavy imports (torch, transformers) happen inside
the subcommand, so `r1 --help` is instant.
"""

from __future__ import annotations

import sys

from r1 import allocator
from r1.train.errors import Preempted
from r1.cli_parser import build_parser


def cmd_config(args) -> int:
    import yaml

    from r1.config import load_config, to_dict

    cfg = load_config(args.config, args.overrides)
    print(yaml.safe_dump(to_dict(cfg), sort_keys=False), end="")
    return 0


def cmd_data(args) -> int:
    import json

    from r1.data import load_examples

    examples = load_examples(
        args.source,
        split=args.split,
        question_field=args.question_field,
        answer_field=args.answer_field,
        size=args.size,
        seed=args.seed,
    )
    print(f"{args.source}: {len(examples)} examples")
    for example in examples[: args.show]:
        shown = {k: v for k, v in example.items() if k in ("id", "prompt", "answer")}
        print(json.dumps(shown, ensure_ascii=False))
    return 0


def cmd_generate(args) -> int:
    from r1.pipeline.check import generate_and_score

    generate_and_score(
        model=args.model,
        source=args.source,
        limit=args.limit,
        n=args.n,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        form=args.form,
        prefill_think=args.prefill_think,
        seed=args.seed,
    )
    return 0


def cmd_demo(args) -> int:
    from r1.pipeline.demo import COLDSTART_EXAMPLES, run_demo

    overrides = list(args.overrides) + ([f"run.output_dir={args.output_dir}"] if args.output_dir else [])
    overrides += [f"rewards.control={args.control}"] if args.control else []
    run_demo(overrides, coldstart_examples=args.coldstart_examples or COLDSTART_EXAMPLES)
    return 0


def cmd_check(args) -> int:
    from r1.pipeline.check import setup_check

    setup_check(output_dir=args.output_dir, limit=args.limit, n=args.n, max_new_tokens=args.max_new_tokens)
    return 0


def cmd_grpo(args) -> int:
    from r1.config import load_config
    from r1.train.grpo import train_grpo

    train_grpo(load_config(args.config, args.overrides))
    return 0


def cmd_zero(args) -> int:
    from r1.config import load_config
    from r1.train.grpo import train_grpo

    train_grpo(load_config("zero", args.overrides))
    return 0


def cmd_sft(args) -> int:
    from r1.config import load_config
    from r1.train.sft import train_sft

    train_sft(load_config(args.config, args.overrides))
    return 0


def cmd_rm(args) -> int:
    from r1.config import load_config
    from r1.train.rm import train_rm

    train_rm(load_config(args.config, args.overrides))
    return 0


def cmd_eval(args) -> int:
    from r1.eval.command import run_eval
    from r1.eval.report import compare

    outputs = []
    for i, model in enumerate(args.model):
        out = args.output_dir if len(args.model) == 1 else (f"{args.output_dir}/{i}" if args.output_dir else None)
        outputs.append(
            run_eval(
                model,
                args.benchmark,
                k=args.k,
                limit=args.limit,
                seed=args.seed,
                output_dir=out,
                question_field=args.question_field,
                answer_field=args.answer_field,
                max_new_tokens=args.max_new_tokens,
                temperature=args.temperature,
                top_p=args.top_p,
                batch_size=args.batch_size,
                template=args.template,
                form=args.form,
                engine=args.engine,
                dtype=args.dtype,
                device=args.device,
            )
        )
    if len(outputs) > 1:
        compare(outputs, args.output_dir or "runs/compare")
    return 0


def cmd_report(args) -> int:
    from r1.eval.report import make_report

    paths = make_report(args.run_dir)
    for path in paths:
        print(path)
    if args.html or args.out:
        from r1.eval.viewer import write_viewer

        print(write_viewer(args.run_dir, args.out, report_paths=paths))
    return 0


def cmd_bench(args) -> int:
    if args.what == "rewards" and args.mode == "peer":
        from r1.rewards.peer import EXAMPLE, peer_bench

        peer_bench(args.file or EXAMPLE, with_peer=not args.no_peer)
    elif args.what == "rewards":
        from r1.rewards import bench

        bench.main([args.mode, "--n", str(args.n)])
    elif args.what == "rollout":
        from r1.rollout.bench import bench_rollout

        bench_rollout(args.dtype, args.rows, args.new_tokens, args.repeats, engine=args.engine, threads=args.threads)
    else:
        from r1.train.bench import bench_grpo_step

        bench_grpo_step(args.dtype, args.steps, threads=args.threads, overrides=args.overrides)
    return 0


def cmd_sample(args) -> int:
    from r1.config import load_config
    from r1.pipeline.sample import run_sample

    flags = {
        "model.name": args.model,
        "data.source": args.prompts,
        "data.limit": args.limit,
        "sample.k": args.k,
        "sample.max_per_prompt": args.max_per_prompt,
        "sample.judge": args.judge,
        "run.output_dir": args.output_dir,
    }
    run_sample(load_config(args.config, [f"{k}={v}" for k, v in flags.items() if v is not None] + list(args.overrides)))
    return 0


def cmd_coldstart(args) -> int:
    import json

    from r1.data.coldstart import GENERATORS, write_jsonl

    if args.how == "generate":
        path = write_jsonl(GENERATORS[args.task](args.n, seed=args.seed), args.output)
        print(f"wrote {args.n} worked {args.task} examples to {path}")
        return 0
    from r1.config import load_config
    from r1.data.coldstart_convert import coldstart_from_samples

    report = coldstart_from_samples(
        args.input, args.output, load_config(args.config, args.overrides), prompts=args.prompts
    )
    print(f"kept {report['kept']} of {report['candidates']} completions → {report['output']}")
    print(f"rejected: {json.dumps(report['rejected'])}")
    return 0


def cmd_distill(args) -> int:
    from r1.config import load_config
    from r1.pipeline.distill import run_distill

    flags = {"data.source": args.prompts, "data.limit": args.limit, "run.output_dir": args.output_dir}
    flags["distill.method"] = args.method
    cfg = load_config(args.config, [f"{k}={v}" for k, v in flags.items() if v is not None] + list(args.overrides))
    run_distill(cfg, teacher=args.teacher, student=args.student)
    return 0


def cmd_pipeline(args) -> int:
    from r1.config import load_config
    from r1.pipeline.pipeline import run_pipeline

    flags = [f"run.output_dir={args.output_dir}"] if args.output_dir else []
    run_pipeline(load_config(args.config, flags + list(args.overrides)), start_from=args.start_from, only=args.only)
    return 0


def cmd_export(args) -> int:
    from r1.train.export import export

    done = export(args.run_dir, args.dest, force=args.force, results=args.results or [])
    for note in done.notes:
        print(f"[r1] {note}")
    print(f"exported {done.source} (step {done.step}) to {done.dest}: {', '.join(done.files)}")
    return 0


COMMANDS = {  # subcommand -> its function (the parser is r1/cli_parser.py)
    "demo": cmd_demo,
    "check": cmd_check,
    "grpo": cmd_grpo,
    "zero": cmd_zero,
    "sft": cmd_sft,
    "rm": cmd_rm,
    "eval": cmd_eval,
    "report": cmd_report,
    "generate": cmd_generate,
    "data": cmd_data,
    "config": cmd_config,
    "bench": cmd_bench,
    "sample": cmd_sample,
    "coldstart": cmd_coldstart,
    "distill": cmd_distill,
    "pipeline": cmd_pipeline,
    "export": cmd_export,
}


def _user_errors() -> tuple[type[Exception], ...]:
    """Errors whose message tells the user what to fix (imported only when one is raised)."""
    from r1.config import ConfigError
    from r1.data import DataError, TemplateError
    from r1.models import ModelLoadError
    from r1.pipeline.pipeline import StageFailed
    from r1.rewards.peer import PeerFileError
    from r1.train.errors import RunError
    from r1.train.grpo import TrainingError

    return ConfigError, DataError, TemplateError, ModelLoadError, TrainingError, StageFailed, PeerFileError, RunError


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    allocator.tune()
    try:
        from r1.train.distributed import require_single_process

        require_single_process(args.command)  # before any work: N copies of e.g. `r1 pipeline` would each redo it all
        return COMMANDS[args.command](args)
    except _user_errors() as err:
        print(f"r1: error: {err}", file=sys.stderr)
        return 2
    except Preempted as stop:  # SIGTERM/SIGINT during training: a checkpoint was saved (docs/reliability.md)
        print(f"r1: {stop}", file=sys.stderr)
        return stop.exit_code
    except KeyboardInterrupt:
        print("r1: interrupted", file=sys.stderr)
        return 130
    except _system_errors() as err:  # the OS or a file format refused: the message names what and where
        print(f"r1: error: {_describe_system_error(err)}", file=sys.stderr)
        return 2


def _system_errors() -> tuple[type[Exception], ...]:
    import torch
    from safetensors import SafetensorError

    return OSError, SafetensorError, torch.OutOfMemoryError


def _describe_system_error(err: Exception) -> str:
    from r1.train.durable import disk_full

    where = getattr(err, "filename", None)
    if isinstance(err, OSError) and err.strerror and where:
        text = f"{err.strerror}: {where}"
    elif type(err).__name__ == "OutOfMemoryError":
        text = f"out of memory ({str(err).splitlines()[0]}): lower train.micro_batch_size or rollout.prompts_per_step"
    else:
        text = f"{type(err).__name__}: {err}"
    return text + (" (the disk is full: free some space and rerun with run.resume=true)" if disk_full(err) else "")
