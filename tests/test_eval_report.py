"""`make_report`: plots and a summary from a synthetic training run, robust to what is missing."""

import json

from r1.eval.report import make_report, reflection_counts

PNG = b"\x89PNG\r\n\x1a\n"


def _write_jsonl(path, rows, extra_lines=()):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows) + "".join(extra_lines))


def test_reflection_counts():
    counts = reflection_counts("Wait, let me re-check. Double-check: verified. However... 等等，检查一下。잠깐 확인")
    assert counts["wait"] == 1 and counts["re-check"] == 1 and counts["check"] == 1  # re-check is not also "check"
    assert counts["verify"] == 1 and counts["however"] == 1
    assert counts["等等"] == counts["检查"] == counts["잠깐"] == counts["확인"] == 1 and counts["验证"] == 0
    assert sum(reflection_counts("awaited checkpoint unverifiable").values()) == 0  # whole words only


def test_full_run_dir(tmp_path):
    rows = [
        {
            "step": s,
            "reward/mean": 0.1 * s,
            "reward/accuracy": 0.05 * s,
            "reward/format": 0.1 * s,
            "rewards/accuracy_timeouts": 1,
            "kl": 0.001 * s,
            "completion_len/mean": 50 + 10 * s,
        }
        for s in range(1, 6)
    ]
    _write_jsonl(tmp_path / "metrics.jsonl", rows, extra_lines=["{not json\n"])
    samples = [
        {"step": 1, "completion": "<think> 2+2=4 </think>"},
        {"step": 1, "completion": "<think> wait </think>"},
        {"step": 5, "completion": "<think> wait, let me verify. 等等 </think>"},
        {"step": 5, "completion": "no"},
    ]
    _write_jsonl(tmp_path / "samples.jsonl", samples)
    written = make_report(tmp_path)
    names = sorted(p.name for p in written)
    assert names == [
        "accuracy.png",
        "completion_length.png",
        "format.png",
        "kl.png",
        "reflection.png",
        "reward.png",
        "summary.md",
    ]
    assert all(p.read_bytes()[:8] == PNG for p in written if p.suffix == ".png")
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert "5 logged steps (1 … 5)" in summary
    assert "| reward/mean | 0.1 | 0.5 | 0.1 | 0.5 |" in summary
    assert "| reflection words per completion | 0.5 | 1.5 | 0.5 | 1.5 |" in summary  # (0+1)/2, (3+0)/2
    assert "rewards/accuracy_timeouts" not in summary  # an event counter, not a reward
    assert "skipped 1 malformed line" in summary


def test_missing_keys_and_files_are_reported_not_fatal(tmp_path):
    _write_jsonl(tmp_path / "metrics.jsonl", [{"step": 1, "kl": 0.5}, {"step": 2, "kl": float("nan")}, {"step": 3}])
    written = make_report(tmp_path)
    assert sorted(p.name for p in written) == ["kl.png", "summary.md"]
    summary = written[-1].read_text()
    assert "no reward/* keys" in summary and "no accuracy plot" in summary and "no samples.jsonl" in summary


def test_empty_run_dir(tmp_path):
    written = make_report(tmp_path)
    assert [p.name for p in written] == ["summary.md"]
    assert "no metrics.jsonl" in written[0].read_text()


def test_a_periodic_eval_gets_its_held_out_curve(tmp_path):
    rows = [{"step": s, "reward/accuracy": 0.1} for s in range(1, 5)]
    rows[1].update({"eval/pass@1": 0.25, "eval/format": 0.9})  # eval.every_steps=2: steps 2 and 4 only
    rows[3].update({"eval/pass@1": 0.375, "eval/format": 1.0})
    _write_jsonl(tmp_path / "metrics.jsonl", rows)
    written = {p.name for p in make_report(tmp_path)}
    assert "heldout.png" in written
    assert "| eval/pass@1 | 0.25 | 0.375 | 0.25 | 0.375 |" in (tmp_path / "report" / "summary.md").read_text()
