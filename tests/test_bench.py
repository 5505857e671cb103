"""`r1 bench grpo-step` and `r1 bench rollout` on the tiny model: they run the real step and
end with the machine-readable SUMMARY line the speed comparison parses."""

import re

from r1.cli import main
from r1.rollout.bench import bench_rollout
from r1.train.bench import bench_grpo_step


def summary_of(text: str) -> dict[str, float]:
    last = text.strip().splitlines()[-1]
    assert last.startswith("SUMMARY "), last
    return {k: float(v) for k, v in (item.split("=") for item in last.split()[1:])}


def test_grpo_step_bench_forces_the_length_and_summarizes_steps_two_on(tiny_model_dir, capsys):
    result = bench_grpo_step(
        "float32",
        steps=3,
        threads=1,
        overrides=[f"model.name={tiny_model_dir}", "rollout.max_new_tokens=6", "data.template=none"],
    )
    figures = summary_of(capsys.readouterr().out)
    assert set(figures) == {"step_s", "gen_s", "score_s", "train_s", "gen_tok_s", "peak_rss_mib"}
    assert len(result["steps"]) == 3
    later = sorted(r["step"] for r in result["steps"][1:])  # step 1 is warm-up; the median of steps 2–3
    assert abs(figures["step_s"] - (later[0] + later[1]) / 2) <= 0.006
    # every completion ran to the forced length: 4 prompts × 8 samples × 6 tokens per step
    assert all(abs(r["gen_tok_s"] * r["generate"] - 32 * 6) < 1e-6 for r in result["steps"])


def test_bench_cli_runs_both_benchmarks(tiny_model_dir, capsys):
    assert (
        main(
            [
                "bench",
                "grpo-step",
                "--dtype",
                "bfloat16",
                "--steps",
                "1",
                "--threads",
                "1",
                f"model.name={tiny_model_dir}",
                "rollout.max_new_tokens=4",
                "data.template=none",
            ]
        )
        == 0
    )
    assert summary_of(capsys.readouterr().out)["step_s"] > 0
    bench_rollout("float32", n_rows=16, new_tokens=5, repeats=2, threads=1, model_name=str(tiny_model_dir))
    out = capsys.readouterr().out
    assert len(re.findall(r"^run \d: fast float32 16x5 tokens", out, flags=re.M)) == 2
    assert summary_of(out)["tok_s"] > 0
