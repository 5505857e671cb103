"""Hub-ready checkpoints: the model card of final/ (r1/train/model_card.py) and `r1 export`
(r1/train/export.py) on tiny real SFT runs — plain and LoRA — on CPU, offline."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from huggingface_hub import ModelCard
from transformers import AutoModelForCausalLM, AutoTokenizer

from r1.cli import main
from r1.train import checkpoint as ckpt
from r1.train import lora
from r1.train.export import ExportError, export
from r1.train.model_card import build_model_card, find_results
from r1.train.sft import train_sft
from test_train_sft import make_cfg, write_rows

SFT = ["sft.batch_size=2", "sft.epochs=1", "train.micro_batch_size=2", "train.save_every=1"]  # 4 rows: 2 steps
STATE_FILES = {ckpt.STATE_FILE, ckpt.STEP_FILE, "checksums.json", "config.yaml", "reference.safetensors"}
PROMPT = "What is 2 + 3?"


@pytest.fixture(scope="module")
def base_dir(tiny_model_dir, tmp_path_factory):
    """The tiny model as if it were an earlier r1 checkpoint: its card names the Hub model at the root."""
    path = tmp_path_factory.mktemp("base") / "model"
    shutil.copytree(tiny_model_dir, path)
    (path / "README.md").write_text("---\nbase_model: org/tiny-root\nlicense: mit\ntags: [r1, sft]\n---\n\n# tiny\n")
    return path


def sft_run(base, out, *extra):
    data = write_rows(out.parent / f"{out.name}.jsonl", 4)
    return train_sft(make_cfg(base, out, f"sft.data={data}", *SFT, *extra))


@pytest.fixture(scope="module")
def run(base_dir, tmp_path_factory):
    return sft_run(base_dir, tmp_path_factory.mktemp("runs") / "sft-tiny")


def logits(folder) -> torch.Tensor:
    model = AutoModelForCausalLM.from_pretrained(str(folder)).eval()
    ids = AutoTokenizer.from_pretrained(str(folder))(PROMPT, return_tensors="pt").input_ids
    with torch.no_grad():
        return model(ids).logits


# --- the model card ------------------------------------------------------------------------------


def test_the_final_checkpoint_carries_a_model_card_the_hub_reads(run, base_dir):
    card = ModelCard.load(run / "checkpoints" / "final" / "README.md")
    assert card.data.base_model == "org/tiny-root"  # from the base folder's r1 card: the Hub model at the root
    assert card.data.license == "mit"
    assert card.data.library_name == "transformers"
    assert {"r1", "deepseek-r1", "sft"} <= set(card.data.tags)
    assert f"`{base_dir}`" in card.text  # the base as configured, in the body
    assert "`r1 sft`" in card.text and "| steps | 2 (all configured steps) |" in card.text
    config = (run / "checkpoints" / "final" / "config.yaml").read_text()
    assert f"```yaml\n{config.rstrip()}\n```" in card.text
    assert not (run / "checkpoints" / "step-000001" / "README.md").exists()  # step checkpoints: none
    assert ckpt.latest_checkpoint(run) == run / "checkpoints" / "final"  # checksums cover it; nothing else moved


def test_the_card_metadata_only_names_hub_models():
    def meta(name, **facts):
        return ModelCard(build_model_card(f"model:\n  name: {name}\n", **facts)).data

    assert meta("Qwen/Qwen2.5-0.5B", hub_base="Qwen/Qwen2.5-0.5B").base_model == "Qwen/Qwen2.5-0.5B"
    assert meta("/data/my-model").base_model is None  # a local folder: the Hub would refuse the card
    assert ModelCard(build_model_card(None)).data.tags == ["r1", "deepseek-r1"]  # nothing known: still parses


def test_base_model_facts_come_from_the_alias_the_cache_or_a_hub_id(tmp_path):
    from r1.train.model_card import base_model_facts

    assert base_model_facts("smollm2-135m") == ("HuggingFaceTB/SmolLM2-135M-Instruct", "apache-2.0")
    assert base_model_facts("Qwen/Qwen2.5-0.5B") == ("Qwen/Qwen2.5-0.5B", None)
    snapshot = tmp_path / "models--Qwen--Qwen2.5-0.5B-Instruct" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "README.md").write_text("---\nlicense: apache-2.0\nbase_model: Qwen/Qwen2.5-0.5B\n---\n")
    assert base_model_facts(str(snapshot)) == ("Qwen/Qwen2.5-0.5B-Instruct", "apache-2.0")  # itself, not its parent
    assert base_model_facts(str(tmp_path)) == (None, None)  # a plain local folder


def test_the_trainer_can_name_the_recipe(tiny, tmp_path):
    from r1.config import load_config
    from r1.train.optim import build_optimizer
    from r1.train.run import IndexSampler

    model, tokenizer = tiny
    optimizer, scheduler = build_optimizer(model, load_config().optim, total_steps=1)
    final = tmp_path / "my-run" / "checkpoints" / "final"
    kwargs = dict(optimizer=optimizer, scheduler=scheduler, sampler=IndexSampler(2, 0), counters={}, step=1)
    ckpt.save_training(final, model, tokenizer, **kwargs, final=True, config=load_config(), recipe="grpo")
    card = ModelCard.load(final / "README.md")
    assert "grpo" in card.data.tags and "accuracy` × 1" in card.text  # the GRPO rewards are listed
    assert card.data.base_model == "HuggingFaceTB/SmolLM2-135M-Instruct"  # the default model.name, an alias


def test_results_next_to_the_run_are_found(run, tmp_path):
    copy = tmp_path / "sft-copy"
    shutil.copytree(run, copy)
    final = copy / "checkpoints" / "final"
    results = {
        "model": str(final),
        "benchmark": "gsm8k",
        "metrics": {"pass@1": {"mean": 0.25, "low": 0.2, "high": 0.3}},
    }
    (tmp_path / "eval" / "final").mkdir(parents=True)
    (tmp_path / "eval" / "final" / "results.json").write_text(json.dumps(results))
    other = {**results, "model": "elsewhere/checkpoints/final"}
    (tmp_path / "eval" / "other").mkdir()
    (tmp_path / "eval" / "other" / "results.json").write_text(json.dumps(other))
    (tmp_path / "heldout").mkdir()
    (tmp_path / "heldout" / "sft-copy.json").write_text(json.dumps({"accuracy": 0.5, "accuracy_ci": [0.4, 0.6]}))
    found = find_results(copy, final)
    assert found == {
        "pipeline held-out set": {"accuracy": 0.5, "accuracy_ci": [0.4, 0.6]},
        "r1 eval: gsm8k (final)": {"pass@1": 0.25, "pass@1 95% interval": [0.2, 0.3]},
    }
    export(copy, tmp_path / "out")
    text = (tmp_path / "out" / "README.md").read_text()
    assert "**r1 eval: gsm8k (final)**" in text and "| pass@1 95% interval | [0.2, 0.3] |" in text


# --- r1 export -----------------------------------------------------------------------------------


def test_export_writes_a_clean_model_folder_that_generates_like_the_checkpoint(run, tmp_path, capsys):
    dest = tmp_path / "hub"
    assert main(["export", str(run), str(dest)]) == 0
    assert "exported" in capsys.readouterr().out
    names = {p.name for p in dest.rglob("*")}
    assert {"model.safetensors", "config.json", "generation_config.json", "tokenizer.json", "README.md"} <= names
    assert not names & STATE_FILES and not (dest / lora.ADAPTER_DIR).exists()
    assert torch.equal(logits(dest), logits(run / "checkpoints" / "final"))
    tokenizer = AutoTokenizer.from_pretrained(str(dest))
    assert tokenizer.chat_template == AutoTokenizer.from_pretrained(str(run / "checkpoints" / "final")).chat_template
    assert ModelCard.load(dest / "README.md").data.base_model == "org/tiny-root"
    assert not (tmp_path / "hub.tmp").exists()


def test_export_refuses_what_it_cannot_do(run, tmp_path, capsys):
    (tmp_path / "empty-run").mkdir()
    assert main(["export", str(tmp_path / "empty-run"), str(tmp_path / "a")]) == 2
    assert "holds no complete checkpoint" in capsys.readouterr().err
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    assert main(["export", str(run), str(busy)]) == 2
    assert "is not empty" in capsys.readouterr().err and (busy / "keep.txt").exists()
    assert main(["export", str(run), str(busy), "--force"]) == 0
    assert not (busy / "keep.txt").exists() and (busy / "model.safetensors").is_file()
    with pytest.raises(ExportError, match="holds the checkpoint"):
        export(run, run, force=True)  # never delete the run itself
    assert (run / "checkpoints" / "final").is_dir()


def test_export_refuses_a_damaged_checkpoint(run, tmp_path):
    copy = tmp_path / "sft-copy"
    shutil.copytree(run, copy)
    weights = copy / "checkpoints" / "final" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(ExportError, match="is damaged"):
        export(copy, tmp_path / "out")


def test_without_final_the_latest_checkpoint_is_exported_with_a_note(run, tmp_path):
    copy = tmp_path / "sft-copy"
    shutil.copytree(run, copy)
    shutil.rmtree(copy / "checkpoints" / "final")
    done = export(copy, tmp_path / "out")
    assert done.source.name == "step-000001" and done.step == 1
    assert any("no final checkpoint" in note for note in done.notes)
    assert torch.equal(logits(tmp_path / "out"), logits(copy / "checkpoints" / "step-000001"))
    assert "| steps | 1 (stopped early) |" in (tmp_path / "out" / "README.md").read_text()


def test_a_lora_run_exports_the_merged_model(tiny_model_dir, tmp_path):
    from peft import PeftModel

    run = sft_run(tiny_model_dir, tmp_path / "sft-lora", "model.lora.enabled=true", "model.lora.r=4", "optim.lr=1e-2")
    export(run, tmp_path / "final-out")
    assert not (tmp_path / "final-out" / lora.ADAPTER_DIR).exists()
    assert torch.equal(logits(tmp_path / "final-out"), logits(run / "checkpoints" / "final"))  # final/'s merged copy
    assert "lora" in ModelCard.load(tmp_path / "final-out" / "README.md").data.tags

    step = run / "checkpoints" / "step-000001"  # the adapter only: merged at export
    done = export(step, tmp_path / "step-out")
    assert any("merged the LoRA adapter" in note for note in done.notes)
    adapted = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)), str(step / "adapter")
    )
    ids = AutoTokenizer.from_pretrained(str(tiny_model_dir))(PROMPT, return_tensors="pt").input_ids
    with torch.no_grad():
        expected = adapted.eval()(ids).logits
    torch.testing.assert_close(logits(tmp_path / "step-out"), expected, rtol=0, atol=1e-5)  # merge rounding only
    assert not torch.equal(expected, logits(tiny_model_dir))  # the adapter changed something
