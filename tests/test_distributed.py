"""Data-parallel GRPO and SFT: 2 processes (torchrun, gloo, CPU) make the 1-process update.

One torchrun launch runs every 2-process job of this file (this file is also the worker script:
see `main`); the 1-process references run in the test process. Both sides sample with
`per_prompt_engine`: the fast engine run prompt by prompt with a generator seeded by the prompt's
tokens, so a row's completion depends on its prompt and the weights only — not on which rank
samples it or what else is in its batch. (Training itself samples a rank's prompts together
from the rank's own RNG stream, seed + rank: faster, but a 2-process run then draws other
completions than a 1-process run, and nothing could be compared.) With identical completions
the global batch is identical, and the final weights must agree up to float summation order.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import torch

from r1.config import ConfigError, load_config
from r1.models import load_model
from r1.rewards import register
from r1.rollout import ENGINES, Rollout, Sampling, fast
from r1.train import checkpoint as ckpt
from r1.train import distributed as dist
from r1.train.errors import Preempted
from r1.train.grpo import train_grpo
from r1.train.run import IndexSampler
from r1.train.sft import train_sft

TORCHRUN = Path(sys.executable).with_name("torchrun")


@register("t_len", replace=True)
def t_len(completion: str, example: dict) -> float:
    return len(completion) / 10


def problem_index(example: dict) -> int:
    return int(example["id"].rsplit("-", 1)[-1])


@register("t_half", replace=True)
def t_half(completion: str, example: dict) -> float:
    """Constant on odd problem ids, so dynamic sampling drops those groups."""
    return 1.0 if problem_index(example) % 2 else len(completion) / 10


RANK1_FIRST_STEP = IndexSampler(64, 0).take(4)[2:]  # the problems rank 1 samples in step 1


@register("t_skip", replace=True)
def t_skip(completion: str, example: dict) -> float:
    """Constant on rank 1's first problems: with β = 0, rank 1 has no row to train in step 1."""
    return 1.0 if problem_index(example) in RANK1_FIRST_STEP else len(completion) / 10


def per_prompt_engine(policy, tokenizer, prompt_ids, sampling: Sampling) -> Rollout:
    parts = [fast.generate(policy, tokenizer, [p], sampling.but(seed=zlib.crc32(str(p).encode()))) for p in prompt_ids]
    T = max(r.completion_ids.shape[1] for r in parts)
    pad = lambda x: torch.nn.functional.pad(x, (0, T - x.shape[1]), value=tokenizer.pad_token_id)  # noqa: E731
    return Rollout(
        prompt_ids=[p for r in parts for p in r.prompt_ids],
        completion_ids=torch.cat([pad(r.completion_ids) for r in parts]),
        lengths=torch.cat([r.lengths for r in parts]),
        truncated=torch.cat([r.truncated for r in parts]),
        texts=[t for r in parts for t in r.texts],
    )


GRPO_COMMON = [
    "data.size=64",
    "rollout.prompts_per_step=4",
    "rollout.samples_per_prompt=4",
    "rollout.max_new_tokens=8",
    "train.micro_batch_size=3",
    "train.sample_every=1",
    "optim.lr=1e-3",
    "train.steps=2",
]
GRPO = {  # batch-wide statistics everywhere: batch-std advantages, token-mean loss, KL to a reference, μ = 2
    "kl": [
        *GRPO_COMMON,
        "rewards.weights={t_len: 1.0}",
        "grpo.advantage_scale=batch",
        "grpo.loss_aggregation=token-mean",
        "grpo.beta=0.1",
        "grpo.ppo_epochs=2",
    ],
    # dropped groups refilled in uneven shares (a rank may sample nothing in a round)
    "dynamic": [
        *GRPO_COMMON,
        "rewards.weights={t_half: 1.0}",
        "grpo.beta=0",
        "grpo.dynamic_sampling=true",
        "grpo.dynamic_sampling_rounds=2",
    ],
    # zero-advantage rows skipped: a rank without a trainable row still joins the gradient sum
    "skip": [
        *GRPO_COMMON,
        "rewards.weights={t_skip: 1.0}",
        "grpo.beta=0",
        "grpo.loss_aggregation=seq-mean-token-sum-norm",
    ],
    # LoRA: rank 0's random adapter init everywhere, adapter gradients summed, π_ref = adapter off
    "lora": [
        *GRPO_COMMON,
        "rewards.weights={t_len: 1.0}",
        "grpo.beta=0.1",
        "model.lora.enabled=true",
        "model.lora.r=4",
        "optim.lr=1e-2",
    ],
}
SFT = ["sft.batch_size=4", "train.micro_batch_size=1", "optim.lr=1e-3", "sft.epochs=1"]
FSDP = {"fsdp": "kl", "sft_fsdp": "sft"}  # FSDP-sharded 2-process jobs → the 1-process job they must equal


def overrides(model_dir, out, extra) -> list[str]:
    return [f"model.name={model_dir}", f"run.output_dir={out}", "run.threads=1", *extra]


def run_job(job: dict) -> None:
    """One training run; with "sigterm": [rank, step], that rank alone gets SIGTERM in that step and every
    rank records the Preempted it raised in "record"."""
    cfg = load_config(None, job["overrides"])
    if "sigterm" not in job:
        (train_grpo if job["cmd"] == "grpo" else train_sft)(cfg)
        return
    import r1.train.sft as sft

    real, calls, (rank, step) = sft.sft_step, [], job["sigterm"]

    def step_then_signal(*args, **kwargs):
        out = real(*args, **kwargs)
        calls.append(1)
        if dist.rank() == rank and len(calls) == step:
            os.kill(os.getpid(), signal.SIGTERM)
        return out

    sft.sft_step = step_then_signal
    try:
        train_sft(cfg)
        stopped = None
    except Preempted as stop:
        stopped = {"step": stop.step, "checkpoint": str(stop.checkpoint), "signal": stop.signal_name}
    finally:
        sft.sft_step = real
    Path(job["record"].format(rank=dist.rank())).write_text(json.dumps(stopped))


def main(jobs_file: str) -> None:
    """The worker torchrun starts on every rank: run the jobs in order, in one process group."""
    ENGINES["fast"] = per_prompt_engine
    for job in json.loads(Path(jobs_file).read_text()):
        run_job(job)


def sft_data(path: Path) -> Path:
    from r1.data import make_problems

    with open(path, "w") as f:
        for p in make_problems(8, seed=1):
            f.write(
                json.dumps(
                    {
                        "prompt": p["prompt"],
                        "completion": f"<think> {' , '.join(p['steps'])} </think> <answer> {p['answer']} </answer>",
                    }
                )
                + "\n"
            )
    return path


def one_process_runs(model_dir, root: Path, jobs: dict) -> None:
    """Run each job `name: (cmd, overrides)` in this process, into root/<name>, sampling like the workers."""
    saved = ENGINES["fast"]
    ENGINES["fast"] = per_prompt_engine
    try:
        for name, (cmd, extra) in jobs.items():
            run_job({"cmd": cmd, "overrides": overrides(model_dir, root / name, extra)})
    finally:
        ENGINES["fast"] = saved


@pytest.fixture(scope="module")
def runs(tiny_model_dir, tmp_path_factory):
    """Run directories: `1/<job>` from this process, `2/<job>` from one 2-process torchrun launch."""
    root = tmp_path_factory.mktemp("dp")
    data = sft_data(root / "sft.jsonl")
    jobs = {name: ("grpo", extra) for name, extra in GRPO.items()} | {"sft": ("sft", [*SFT, f"sft.data={data}"])}
    sharded = {name: (jobs[base][0], [*jobs[base][1], "train.fsdp=true"]) for name, base in FSDP.items()}
    two = [
        {"cmd": cmd, "overrides": overrides(tiny_model_dir, root / "2" / name, extra)}
        for name, (cmd, extra) in (jobs | sharded).items()
    ]
    for name, extra in {"resumed": GRPO["kl"], "resumed_fsdp": sharded["fsdp"][1]}.items():  # 1 step, then resumed to 2
        resume = overrides(tiny_model_dir, root / "2" / name, extra)
        two += [
            {"cmd": "grpo", "overrides": [*resume, "train.steps=1"]},
            {"cmd": "grpo", "overrides": [*resume, "run.resume=true", "run.allow_config_change=true"]},
        ]
    # SIGTERM to rank 1 only
    preempted = overrides(tiny_model_dir, root / "2" / "preempted", [*SFT, f"sft.data={data}"])
    two += [
        {"cmd": "sft", "overrides": preempted, "sigterm": [1, 1], "record": str(root / "preempted-{rank}.json")},
        {"cmd": "sft", "overrides": [*preempted, "run.resume=true"]},
    ]
    (root / "jobs.json").write_text(json.dumps(two))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launch = subprocess.Popen(
        [str(TORCHRUN), "--standalone", "--nproc_per_node", "2", __file__, str(root / "jobs.json")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:  # the 1-process references meanwhile
        one_process_runs(tiny_model_dir, root / "1", jobs)
    finally:
        out, _ = launch.communicate(timeout=600)
    assert launch.returncode == 0, out[-5000:]
    return root


def final_params(run_dir) -> dict[str, torch.Tensor]:
    return dict(load_model(str(run_dir / "checkpoints" / "final"))[0].state_dict())


def metrics(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def assert_close_params(a: dict, b: dict, atol: float) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=atol, msg=k)


@pytest.mark.parametrize("name", [*GRPO, "sft", *FSDP])
def test_two_processes_make_the_one_process_update(runs, tiny_model_dir, name):
    assert_same_update(runs / "1" / FSDP.get(name, name), runs / "2" / name, name, tiny_model_dir)


def assert_same_update(one: Path, two: Path, name: str, model_dir) -> None:
    """The 2-process run `two` logged the metrics and made the final weights of the 1-process run `one`.

    Tolerance 1e-5 on weights: both runs compute the same sums, only in another order (per-rank partial
    sums, then all-reduce), which moves fp32 results by ~1e-7 per step; measured max |Δ| 5e-7."""
    m1, m2 = metrics(one), metrics(two)
    assert [m["step"] for m in m2] == [1, 2]  # rank 0 alone wrote the log
    keys = ["loss", "grad_norm"] + (
        ["tokens"]
        if name.startswith("sft")
        else ["reward/mean", "samples", "groups/zero_variance_frac", "trained_rows", "completion_len/mean"]
    )
    keys += ["kl"] if name in ("kl", "fsdp") else []
    for a, b in zip(m1, m2):
        for key in keys:
            assert b[key] == pytest.approx(a[key], rel=1e-5, abs=1e-6), (a["step"], key)
    base, p1, p2 = dict(load_model(str(model_dir))[0].state_dict()), final_params(one), final_params(two)
    assert max(float((p1[k] - base[k]).abs().max()) for k in base) > 1e-4  # a real update happened
    assert_close_params(p2, p1, atol=1e-5)
    if not name.startswith("sft"):  # samples.jsonl holds every rank's completions, in the global order

        def rows(run):
            return [
                (r["id"], r["completion"]) for r in map(json.loads, (run / "samples.jsonl").read_text().splitlines())
            ]

        assert sorted(rows(two)) == sorted(rows(one))


def test_the_runs_exercise_refills_and_an_idle_rank(runs):
    dynamic, skip = metrics(runs / "2" / "dynamic"), metrics(runs / "2" / "skip")
    assert all(0 < m["groups/zero_variance_frac"] < 1 and m["samples"] == 16 for m in dynamic)  # dropped and refilled
    assert skip[0]["trained_rows"] <= 8  # rank 1 trained nothing in step 1


def test_a_checkpoint_records_the_world_size_and_every_rank_rng(runs):
    state = ckpt.load_state(runs / "2" / "kl" / "checkpoints" / "final")
    assert state["world_size"] == 2 and len(state["rng_per_rank"]) == 2
    # ranks sample differently
    assert not torch.equal(state["rng_per_rank"][0]["torch"], state["rng_per_rank"][1]["torch"])


@pytest.mark.parametrize("straight, resumed", [("kl", "resumed"), ("fsdp", "resumed_fsdp")])
def test_a_resumed_two_process_run_equals_the_straight_one(runs, straight, resumed):
    straight, resumed = runs / "2" / straight, runs / "2" / resumed
    for a, b in zip(metrics(straight), metrics(resumed), strict=True):
        for key in ("loss", "reward/mean", "kl", "grad_norm"):
            assert b[key] == pytest.approx(a[key], abs=1e-6), (a["step"], key)
    assert_close_params(final_params(resumed), final_params(straight), atol=1e-6)


def test_a_sigterm_to_one_rank_stops_every_rank_at_the_same_step_with_one_checkpoint(runs):
    """torchrun forwards a preemption notice to every rank, but a rank may see it a step later than another:
    the ranks agree at the step boundary, all save together and all stop; the resume equals the straight run."""
    stops = [json.loads((runs / f"preempted-{rank}.json").read_text()) for rank in (0, 1)]
    assert stops[0]["step"] == stops[1]["step"] == 1 and stops[0]["checkpoint"] == stops[1]["checkpoint"]
    assert stops[1]["signal"] == "SIGTERM" and stops[0]["signal"] == "SIGTERM"  # rank 0 learns which signal rank 1 got
    a, b = metrics(runs / "2" / "sft"), metrics(runs / "2" / "preempted")
    assert [m["step"] for m in b] == [m["step"] for m in a] == [1, 2]
    assert [m["loss"] for m in b] == pytest.approx([m["loss"] for m in a], abs=1e-6)
    assert_close_params(final_params(runs / "2" / "preempted"), final_params(runs / "2" / "sft"), atol=1e-6)


def test_resuming_with_another_number_of_processes_is_refused(runs, tiny_model_dir):
    cfg = load_config(
        None,
        [
            *overrides(tiny_model_dir, runs / "2" / "resumed", GRPO["kl"]),
            "run.resume=true",
            "train.steps=3",
            "run.allow_config_change=true",
        ],
    )
    with pytest.raises(
        ConfigError,
        match=r"written by a run of 2 process\(es\) and this run has 1: resume it with the same number \(torchrun "
        r"--nproc_per_node 2\)",
    ):
        train_grpo(cfg)


def test_a_global_batch_must_split_evenly(monkeypatch):
    monkeypatch.setattr(dist, "world", lambda: 2)
    monkeypatch.setattr(dist, "rank", lambda: 1)
    assert dist.shard(list(range(5))) == [2, 3, 4] and dist.shard([7]) == [7]
    with pytest.raises(
        ConfigError,
        match=r"rollout.prompts_per_step=3 is the global count and must be divisible by the number of processes \(2\)",
    ):
        dist.require_divisible("rollout.prompts_per_step", 3)


@pytest.mark.parametrize(
    "argv",
    [["pipeline", "--config", "configs/r1_smol.yaml"], ["eval", "--model", "m", "--benchmark", "gsm8k"], ["demo"]],
)
def test_only_grpo_and_sft_start_under_a_multi_process_launcher(monkeypatch, capsys, argv):
    from r1 import cli

    monkeypatch.setenv("WORLD_SIZE", "2")
    assert cli.main(argv) == 2
    assert (
        f"r1 {argv[0]} runs as one process (this launch started 2); only grpo and sft run data-parallel"
        in capsys.readouterr().err
    )
    dist.require_single_process("grpo")  # allowed


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without CUDA")
def test_device_placement_is_validated_and_auto_means_cpu_without_cuda():
    assert dist.device("auto") == torch.device("cpu") and dist.device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="run.device=cuda:1 but CUDA is not available here"):
        dist.device("cuda:1")
    with pytest.raises(ConfigError, match="run.device"):
        load_config(None, ["run.device=gpu"])


@pytest.mark.parametrize("other", ["model.lora.enabled=true", "grpo.dynamic_sampling=true", "grpo.ref_reset_steps=10"])
def test_fsdp_refuses_what_it_cannot_do(other):
    with pytest.raises(ConfigError, match="train.fsdp"):
        load_config(None, ["train.fsdp=true", other])


def test_an_fsdp_checkpoint_is_a_plain_model_with_a_parameter_named_optimizer_state(runs):
    final = runs / "2" / "fsdp" / "checkpoints" / "final"
    state = ckpt.load_state(final)
    assert state["optimizer_by_name"] and "model.embed_tokens.weight" in state["optimizer"]["state"]
    assert (final / "model.safetensors").is_file() and not (final / "adapter").exists()


if __name__ == "__main__":
    main(sys.argv[1])
