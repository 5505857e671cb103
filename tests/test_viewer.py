"""The HTML run viewer (`r1 report RUN_DIR --html`): its data from a synthetic run, its escaping, and the
page itself in a real headless browser (Debian's chromium; skipped with the reason when it is missing)."""

import json
import re
import shutil
import subprocess

import pytest

from r1.cli import main
from r1.eval.viewer import cut_middle, embed_json, load_samples, split_spans, write_viewer

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_browser = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH (scripts/install_browser.sh installs Debian's package)"
)
# a completion that tries to run code in the page: it must show as text, and never set data-pwned
INJECTED = (
    "<think>hi</think><answer><script>document.body.dataset.pwned = 'yes'</script>"
    "<img src=x onerror=\"document.body.dataset.pwned = 'yes'\"></answer>"
)


def _write_jsonl(path, rows, torn=""):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows) + torn, encoding="utf-8")


def _sample(step, i, truncated=False, completion=None, accuracy=1.0):
    return {
        "step": step,
        "id": f"p{i // 2}",
        "answer": "4",
        "completion": completion or f"<think>2+2, step {step} sample {i}</think> <answer>4</answer>",
        "length": 10 + i,
        "truncated": truncated,
        "advantage": 0.5 - i % 2,
        "reward/accuracy": accuracy,
        "reward/format": 1.0,
    }


@pytest.fixture
def run_dir(tmp_path):
    """4 logged steps; 4 samples at steps 2 and 4 (3 truncated, one injected <script>); a torn last line."""
    run = tmp_path / "run"
    run.mkdir()
    metrics = [{"step": s, "reward/accuracy": 0.2 * s, "reward/format": 0.9, "kl": 0.01 * s} for s in range(1, 5)]
    _write_jsonl(run / "metrics.jsonl", metrics)
    samples = [
        _sample(2, 0),
        _sample(2, 1, truncated=True, completion="<think>I keep going and going", accuracy=0.0),
        _sample(2, 2, completion=INJECTED, accuracy=0.0),
        _sample(2, 3),
        _sample(4, 0, truncated=True, completion="<think>long", accuracy=0.0),
        _sample(4, 1, truncated=True, completion="<think>longer", accuracy=0.0),
        _sample(4, 2),
        _sample(4, 3, completion="prefilled think</think><answer>4</answer>"),
    ]
    _write_jsonl(run / "samples.jsonl", samples, torn='{"step": 4, "completion": "cut by a kil')
    return run


def _page_data(page: str) -> dict:
    block = re.search(r'<script type="application/json" id="run-data">(.*?)</script>', page, re.S)
    return json.loads(block.group(1))


def test_split_spans():
    assert split_spans("<think>a</think> <answer>4</answer>") == [
        ["tag", "<think>"],
        ["think", "a"],
        ["tag", "</think>"],
        ["text", " "],
        ["tag", "<answer>"],
        ["answer", "4"],
        ["tag", "</answer>"],
    ]
    # the prompt opened <think> (think-prefilled templates): the text before </think> is thinking
    assert split_spans("hmm</think><answer>4</answer>")[:2] == [["think", "hmm"], ["tag", "</think>"]]
    assert split_spans("<think>truncated mid-thought") == [["tag", "<think>"], ["think", "truncated mid-thought"]]
    assert split_spans("no tags at all") == [["text", "no tags at all"]]
    assert split_spans("") == []


def test_cut_middle_and_embed_json():
    assert cut_middle("abcdef", 6) == "abcdef"
    cut = cut_middle("a" * 5 + "b" * 10 + "c" * 5, 10)
    assert cut.startswith("aaaaa\n") and cut.endswith("\nccccc") and "[… 10 characters cut" in cut
    embedded = embed_json({"x": "</script><!-- & -->"})
    assert "<" not in embedded and ">" not in embedded and "&" not in embedded
    assert json.loads(embedded) == {"x": "</script><!-- & -->"}


def test_page_is_self_contained_escaped_and_marked(run_dir):
    out = write_viewer(run_dir)
    assert out == run_dir / "report.html"
    page = out.read_text(encoding="utf-8")
    assert "http://" not in page and "https://" not in page  # no CDN, font or image fetched
    assert "url(" not in page and "@import" not in page  # nor from the CSS
    markup = page.replace(re.search(r'id="run-data">.*?</script>', page, re.S).group(), "")  # all but the data
    references = re.findall(r"""(?:src|href)=["']?([^"'\s>]*)""", markup)
    assert references and all(ref.startswith(("data:", "#")) for ref in references)  # inline images, in-page links
    assert "data:image/png;base64," in page  # the curves of `r1 report`
    assert page.count("<script") == 2  # the JSON block and the page's JS: the injected one is not a tag
    assert "dataset.pwned" in page and "<script>document" not in page

    data = _page_data(page)
    assert len(data["rows"]) == 8 and data["steps"] == [2, 4]
    assert data["reward_keys"] == ["reward/accuracy", "reward/format"]
    assert any("malformed" in note for note in data["notes"])  # the torn last line, skipped and said
    injected = data["rows"][2]
    assert "".join(text for _, text in injected["spans"]) == INJECTED  # spans lose nothing
    assert injected["spans"][4] == ["answer", INJECTED[len("<think>hi</think><answer>") : -len("</answer>")]]
    assert ["think", "hi"] in injected["spans"]
    assert data["rows"][7]["spans"][0] == ["think", "prefilled think"]
    stats = data["stats"]["4"]
    assert stats["samples"] == 4 and stats["truncated share"] == 0.5 and stats["mean reward/accuracy"] == 0.5


def test_huge_runs_are_capped(run_dir):
    data = load_samples(run_dir / "samples.jsonl", max_rows=3, max_chars=8)
    assert [row["step"] for row in data["rows"]] == [2, 4]  # 3 // 2 steps = the first row of each step
    assert any("showing 2 of 8 completions" in note for note in data["notes"])
    assert data["stats"]["2"]["samples"] == 4  # statistics over all rows, not only the embedded ones
    assert "characters cut by the viewer" in "".join(text for _, text in data["rows"][0]["spans"])


def test_no_samples_still_shows_curves(run_dir):
    (run_dir / "samples.jsonl").unlink()
    page = write_viewer(run_dir, run_dir / "out" / "v.html").read_text(encoding="utf-8")
    assert "no samples.jsonl in this run" in page
    assert "data:image/png;base64," in page
    assert _page_data(page)["rows"] == []


def test_cli_report_html(run_dir, tmp_path, capsys):
    out = tmp_path / "viewer.html"
    assert main(["report", str(run_dir), "--html", "--out", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[-1] == str(out) and str(run_dir / "report" / "summary.md") in printed
    assert out.read_text(encoding="utf-8").startswith("<!doctype html>")
    assert main(["report", str(run_dir)]) == 0 and not (run_dir / "report.html").exists()  # only with --html


def _chromium(tmp_path, *args) -> str:
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}"]
    done = subprocess.run([*command, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@needs_browser
def test_browser_screenshot(run_dir, tmp_path):
    page = write_viewer(run_dir)
    shot = tmp_path / "shot.png"
    _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,900", page.as_uri())
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000  # a blank 1280×900 page is ~5 kB
    assert int.from_bytes(png[16:20], "big") == 1280 and int.from_bytes(png[20:24], "big") == 900  # IHDR


@needs_browser
def test_browser_table_and_filter(run_dir, tmp_path):
    """The page's #selftest hook ticks "truncated only": 8 rows before, the 3 truncated ones after."""
    page = write_viewer(run_dir)
    dom = _chromium(tmp_path, "--dump-dom", "--virtual-time-budget=2000", page.as_uri() + "#selftest")
    body = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', re.search(r"<body[^>]*>", dom).group()))
    assert body.get("selftest") == "done", dom[:2000]
    assert body["selftest-rows-before"] == body["selftest-matching-before"] == "8"
    assert body["selftest-rows-after"] == body["selftest-matching-after"] == "3"
    assert "pwned" not in body  # the injected <script> did not run …
    assert "&lt;script&gt;document.body.dataset.pwned" in dom  # … it shows as text
    table = re.search(r'<table id="table">.*?</table>', dom, re.S).group()
    assert table.count('class="think"') == 3  # the three truncated rows, each one open think span
